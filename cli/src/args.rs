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
    /// Resource limits (`--max-*`), for every command.
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
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
    /// Talk to a WebSocket server, with a real heartbeat: stdin lines become text
    /// messages, received messages go to stdout, heartbeat status to stderr.
    ///
    /// When stdin ends, messages still arriving are printed until the connection has
    /// been quiet for --linger, then it closes with 1000. Exit codes as `ping`: 0 stdin
    /// ended (or Ctrl-C, or the server closed with 1000/1001) after at least one pong,
    /// 1 no pong ever came or the peer became unresponsive (per --timeout), 2 invalid
    /// usage, 3 could not connect or the connection ended otherwise.
    Connect(ConnectArgs),
    /// Measure what keepalive a path needs: whether the server answers pings (RTT
    /// p50/p99), whether it pings us and how often, whether idle connections are
    /// closed (close frame, FIN or RST) or silently dropped, the path's idle timeout,
    /// and a recommended --interval and --timeout with the reasoning.
    ///
    /// The idle timeout is found by holding several connections idle for different
    /// spans at once, then narrowing between the longest that lived and the shortest
    /// that died, within --max-idle. A silent drop is found by a ping after the span
    /// (unanswered within --timeout). Exit codes: 0 measured, 2 invalid usage,
    /// 3 could not connect.
    Probe(ProbeArgs),
    /// Echo and broadcast server with server-side heartbeats; logs connects, disconnects and dead clients.
    Serve(ServeArgs),
}

/// `heartbeat ping` options.
#[derive(Args, Debug)]
pub struct PingArgs {
    /// The server, e.g. wss://example.com/feed or ws://127.0.0.1:9001
    pub url: String,
    /// Stop after N pongs (default: until Ctrl-C or --deadline).
    #[arg(short = 'c', long, value_name = "N", value_parser = parse_count)]
    pub count: Option<u64>,
    /// Stop after this long in total, e.g. 10s or 1h30m, whatever --count says.
    #[arg(short = 'w', long, value_name = "DURATION", value_parser = parse_positive)]
    pub deadline: Option<Duration>,
    /// Print only the summary at the end (with --json: only the summary object).
    #[arg(short = 'q', long)]
    pub quiet: bool,
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

/// `heartbeat connect` options.
#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// The server, e.g. ws://127.0.0.1:9001
    pub url: String,
    /// On a dead connection, reconnect with backoff and keep going (lines typed
    /// meanwhile are sent on the next connection) instead of exiting.
    #[arg(long)]
    pub reconnect: bool,
    /// After stdin ends, wait until nothing has arrived for this long before closing.
    #[arg(long, default_value = "500ms", value_name = "DURATION", value_parser = parse_duration)]
    pub linger: Duration,
    /// Use the JSON application heartbeat instead of WebSocket ping/pong frames.
    #[arg(long)]
    pub app_json: bool,
    /// TLS trust, headers and subprotocols (see connect_opts.rs).
    #[command(flatten)]
    pub connect: crate::connect_opts::ConnectOpts,
}

/// `heartbeat probe` options.
#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// The server, e.g. wss://example.com/socket
    pub url: String,
    /// The longest idle span tried; the probe takes about this long, plus narrowing.
    #[arg(long, default_value = "2m", value_name = "DURATION", value_parser = parse_positive)]
    pub max_idle: Duration,
    /// Idle connections held at once in each round (the search's resolution).
    #[arg(long, default_value_t = 6, value_name = "N", value_parser = clap::value_parser!(u16).range(2..=64))]
    pub parallel: u16,
    /// Pings sent to measure the RTT.
    #[arg(long, default_value_t = 10, value_name = "N", value_parser = parse_count)]
    pub pings: u64,
    /// How long to watch for the server's own pings [default: 5s].
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = parse_positive)]
    pub watch: Duration,
    /// Stop narrowing once the idle timeout is known within this fraction.
    #[arg(long, default_value_t = 0.05, value_name = "FRACTION")]
    pub precision: f64,
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
    /// Serve Prometheus metrics on http://ADDR/metrics: live connections, deaths by
    /// reason, pings, pongs, an RTT histogram, reconnects and the local lag.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// wss:// (see connect_opts.rs).
    #[command(flatten)]
    pub tls: crate::connect_opts::ServeTlsOpts,
}

/// Heartbeat settings and output format, valid for every command.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Time between pings, e.g. 250ms, 2s, 1m, between 10ms and 24h [default: 1s; demo 500ms].
    #[arg(short = 'i', long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub interval: Option<Duration>,
    /// How long to wait for each pong before declaring the peer dead, between 10ms and 1h
    /// [default: 2s; demo 1s].
    #[arg(short = 'W', long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Option<Duration>,
    /// How long to wait for the close handshake before dropping the connection [default: 1s; demo 500ms].
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub close_timeout: Option<Duration>,
    /// How long one connection attempt (TCP and the WebSocket upgrade) may take [default: 10s; demo 800ms].
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub connect_timeout: Option<Duration>,
    /// Which inbound traffic proves the peer alive: only pongs, or any frame [default: any].
    #[arg(long, global = true, value_enum)]
    pub liveness: Option<LivenessArg>,
    /// Adapt the pong timeout to the measured RTT (SRTT + 4·RTTVAR, between 10ms and --timeout).
    #[arg(long, global = true)]
    pub adaptive: bool,
    /// Heartbeat settings from a TOML (or, named *.json, JSON) file: heartbeat-core's
    /// `Config` fields, e.g. `ping_interval = "20s"`; options given here override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
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

/// Parses a humantime duration (`250ms`, `2s`, `1h30m`, `2d`). A bare number is
/// refused with the units it could mean: `500` is 500 s to some and 500 ms to others.
///
/// Ranges are not checked here: the heartbeat config owns them, and the error for a
/// value outside one names it (see `main::usage_error`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("a duration needs a unit: {text}s or {text}ms?"));
    }
    humantime::parse_duration(text)
        .map_err(|_| "expected a number and a unit, e.g. 250ms, 2s or 1h30m".to_owned())
}

/// [`parse_duration`], greater than zero.
pub fn parse_positive(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be greater than zero".to_owned()),
        d => Ok(d),
    }
}

/// A count of pongs: 1 or more (0 would ask for nothing, not for "forever").
pub fn parse_count(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1 (leave it out to ping until stopped)".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a whole number of at least 1".to_owned()),
    }
}

/// A duration as people write it: humantime's form, rounded to what matters at its
/// size (`2s`, `1h 30m`, `250ms`, `1ms 500us`) rather than `2.000629591s`.
pub fn show(d: Duration) -> String {
    let rounded = if d >= Duration::from_secs(10) {
        Duration::from_secs(d.as_secs_f64().round() as u64)
    } else if d >= Duration::from_millis(10) {
        Duration::from_millis((d.as_secs_f64() * 1e3).round() as u64)
    } else {
        Duration::from_micros((d.as_secs_f64() * 1e6).round() as u64)
    };
    humantime::format_duration(rounded).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_as_humantime_writes_them() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn a_bare_number_is_refused_with_the_units_it_could_mean() {
        let e = parse_duration("500").unwrap_err();
        assert!(e.contains("500s") && e.contains("500ms"), "{e}");
    }

    #[test]
    fn count_zero_is_refused() {
        assert!(parse_count("0").is_err());
        assert_eq!(parse_count("3"), Ok(3));
    }

    #[test]
    fn durations_print_rounded_to_their_scale() {
        assert_eq!(show(Duration::from_nanos(2_000_629_591)), "2s 1ms");
        assert_eq!(show(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(show(Duration::from_micros(1500)), "1ms 500us");
        assert_eq!(show(Duration::from_millis(250)), "250ms");
    }
}
