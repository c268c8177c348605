//! Command-line arguments: what each option means is in its `--help` text.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Heartbeats for WebSockets: see a dead peer detected, ping any server, or serve.
///
/// With no command, runs the demo.
#[derive(Parser, Debug)]
#[command(name = "heartbeat", version, about, long_about = None)]
pub struct Cli {
    /// What to run (default: demo).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options shared by every command.
    #[command(flatten)]
    pub common: Common,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Loopback demo: a server, clients, and injected faults (a silently dropped link, a hung server),
    /// showing detection against the configured bound and reconnection. Exits 0 in about 20 s.
    Demo,
    /// Ping a WebSocket server like ping(8): one line per pong with its RTT, a summary at the end.
    ///
    /// Exit codes: 0 all answered (or interrupted), 1 the peer became unresponsive (per --timeout),
    /// 2 invalid usage, 3 could not connect or the connection ended otherwise.
    Ping(PingArgs),
    /// Echo and broadcast server with server-side heartbeats; logs connects, disconnects and dead clients.
    Serve(ServeArgs),
}

/// `heartbeat ping` options.
#[derive(Args, Debug)]
pub struct PingArgs {
    /// The server, e.g. wss://example.com/feed or ws://127.0.0.1:9001
    pub url: String,
    /// Stop after N pongs (default: until Ctrl-C).
    #[arg(short = 'c', long, value_name = "N")]
    pub count: Option<u64>,
    /// On an unresponsive peer, reconnect with backoff and keep going instead of exiting 1.
    #[arg(long)]
    pub reconnect: bool,
    /// Use the JSON application heartbeat ({"type":"ping","timestamp":..} answered by
    /// {"type":"pong","timestamp":..}) instead of WebSocket ping/pong control frames.
    #[arg(long)]
    pub app_json: bool,
    /// TLS trust, headers and subprotocols (see connect_opts.rs).
    #[command(flatten)]
    pub connect: crate::connect_opts::ConnectOpts,
}

/// `heartbeat serve` options.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed first).
    #[arg(long, default_value = "127.0.0.1:9001", value_name = "ADDR")]
    pub bind: SocketAddr,
    /// Answer the JSON application heartbeat ({"type":"ping",...} -> {"type":"pong",...}).
    #[arg(long)]
    pub app_json: bool,
    /// wss:// (see connect_opts.rs).
    #[command(flatten)]
    pub tls: crate::connect_opts::ServeTlsOpts,
}

/// Heartbeat settings and output format, valid for every command.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Time between pings, e.g. 500ms, 2s, 1m [default: 1s; demo 500ms].
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Option<Duration>,
    /// How long to wait for a pong before declaring the peer dead [default: 2s; demo 1s].
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// How long to wait for the close handshake before dropping the connection [default: 1s; demo 500ms].
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub close_timeout: Option<Duration>,
    /// How long one connection attempt (TCP and the WebSocket upgrade) may take [default: 10s; demo 800ms].
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub connect_timeout: Option<Duration>,
    /// Which inbound traffic proves the peer alive: only pongs, or any frame.
    #[arg(long, global = true, value_enum, default_value_t = LivenessArg::Any)]
    pub liveness: LivenessArg,
    /// Adapt the pong timeout to the measured RTT (SRTT + 4·RTTVAR, between 10ms and --timeout).
    #[arg(long, global = true)]
    pub adaptive: bool,
    /// Print one JSON object per line (each with an "event" field) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `--liveness` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LivenessArg {
    /// Only pongs answering our pings.
    Pong,
    /// Any inbound frame.
    Any,
}

/// Parses `500ms`, `2s`, `1.5s`, `1m`, `250us`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (try 500ms, 2s or 1m)"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "unknown unit '{unit}' in '{text}' (use ms, s, m or h)"
            ))
        }
    };
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 365.0 * 24.0 * 3600.0 {
        return Err(format!(
            "'{text}' must be greater than zero and at most a year"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }
}
