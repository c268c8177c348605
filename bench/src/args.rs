//! Command line: the bench's options, and the hidden `role` subcommand the bench
//! uses to start its own server and client processes.

use core::fmt;
use core::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Load bench: for each implementation, one server process and one client process
/// hold N WebSocket connections on loopback, both ends pinging at the interval.
#[derive(Parser, Debug)]
#[command(name = "heartbeat-bench")]
pub struct Cli {
    /// Connections per implementation (up to about 19,900: the per-process fd limit).
    #[arg(long, default_value_t = 1000)]
    pub conns: usize,
    /// Ping interval, both ends (e.g. 1s, 500ms).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Pong timeout, both ends.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 30)]
    pub secs: u64,
    /// Time between "all connected" and the start of the measured window.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// The client opens its connections evenly over this time (default: one ping
    /// interval), so their pings are spread over the interval as a server's clients'
    /// are, not fired in one burst. `0s` opens them as fast as possible.
    #[arg(long, value_parser = parse_duration_or_zero)]
    pub ramp: Option<Duration>,
    /// Implementations to run, in this order (comma-separated).
    #[arg(
        long = "impl",
        value_delimiter = ',',
        default_value = "tokio,tokio-stream,mio,loop4k,loop,python"
    )]
    pub impls: Vec<Impl>,
    /// Repetitions; each repetition runs every implementation once (interleaved).
    #[arg(long, default_value_t = 1)]
    pub reps: u32,
    /// Run a busy-loop CPU hog on one core from warmup to the end of the window.
    #[arg(long)]
    pub hog: bool,
    /// Count each process's system calls over the measured window with
    /// `perf stat` (tracepoints `raw_syscalls:sys_enter` and the I/O calls; needs
    /// perf and root or `perf_event_paranoid` <= 1), reported per round trip in
    /// the notes. Counting adds a little CPU to every syscall of both processes.
    #[arg(long)]
    pub syscalls: bool,
    /// heartbeat-mio's server pings only idle connections (`idle_only`, with
    /// `Liveness::AnyFrame`, and twice the interval so the client's ping always
    /// comes first): a client that pings it proves its life by that, so the server
    /// sends no pings of its own. Compare CPU per connection-second (in the notes)
    /// with a run without it.
    #[arg(long)]
    pub idle_only: bool,
    /// Plant this many truly dead peers among the N connections: a separate client
    /// process opens them first and is SIGSTOPped when the measured window starts,
    /// so the server's connections to it fall silent (its kernel still ACKs). The
    /// server must declare each dead; those verdicts are detections, not false
    /// deaths. Not for `python`.
    #[arg(long, default_value_t = 0)]
    pub planted: usize,
    /// Server addresses 127.0.0.1 .. 127.0.0.K the connections are spread over
    /// (default: one per 5,000 connections).
    #[arg(long)]
    pub addrs: Option<u8>,
    /// How long the client may take to open its connections (default 30 s + 1 s per
    /// 500 connections).
    #[arg(long)]
    pub connect_secs: Option<u64>,
    /// Internal: run as one of the bench's own processes.
    #[command(subcommand)]
    pub role: Option<RoleCmd>,
}

/// The bench's child processes (hidden).
#[derive(Subcommand, Debug)]
pub enum RoleCmd {
    /// A server or client of one implementation, reporting JSON lines on stdout.
    #[command(hide = true)]
    Role(RoleArgs),
}

/// Which child, and what it holds.
#[derive(Args, Debug, Clone)]
pub struct RoleArgs {
    /// `server`, `client` or `hog`.
    pub which: Which,
    /// The implementation.
    #[arg(long = "impl", default_value = "tokio")]
    pub imp: Impl,
    /// Connections (client: opened; server: expected).
    #[arg(long, default_value_t = 0)]
    pub conns: usize,
    /// Ping interval.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Pong timeout.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Server addresses 127.0.0.1 .. 127.0.0.K.
    #[arg(long, default_value_t = 1)]
    pub addrs: u8,
    /// Client: open the connections evenly over this time.
    #[arg(long, default_value = "0s", value_parser = parse_duration_or_zero)]
    pub ramp: Duration,
    /// The server's port (client only).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The child exits by itself after this many seconds, whatever happens.
    #[arg(long, default_value_t = 600)]
    pub lifetime: u64,
    /// Server: ping only idle connections (heartbeat-mio).
    #[arg(long)]
    pub idle_only: bool,
    /// Client: this is the planted dead peers' process; each connection first
    /// sends the planted mark (server: ignored).
    #[arg(long, default_value_t = 0)]
    pub planted: usize,
}

/// A child's role.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// Accepts the connections.
    Server,
    /// Opens the connections.
    Client,
    /// Spins one core.
    Hog,
}

/// An implementation under test.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    /// heartbeat-tokio's `KeepAlive` (a driver task and channels per connection):
    /// `accept_tcp` + `Registry`, `connect` (reconnecting) + `Options::observe`.
    Tokio,
    /// heartbeat-tokio's lean path, `KeepAliveStream` (the heartbeat in the
    /// application's task): `accept_stream` + `Registry`, `KeepAliveStream::connect`.
    TokioStream,
    /// heartbeat-mio: one `Driver` per process.
    Mio,
    /// A hand-written tokio-tungstenite loop with a 4 KiB read buffer.
    Loop4k,
    /// The same loop at tungstenite's defaults (128 KiB read buffer).
    Loop,
    /// Python websockets 17, keepalive on.
    Python,
}

impl fmt::Display for Impl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Impl::Tokio => "heartbeat-tokio KeepAlive",
            Impl::TokioStream => "heartbeat-tokio stream",
            Impl::Mio => "heartbeat-mio",
            Impl::Loop4k => "loop4k",
            Impl::Loop => "loop",
            Impl::Python => "python",
        })
    }
}

impl Impl {
    /// The value the `--impl` option takes.
    pub fn arg(self) -> &'static str {
        match self {
            Impl::Tokio => "tokio",
            Impl::TokioStream => "tokio-stream",
            Impl::Mio => "mio",
            Impl::Loop4k => "loop4k",
            Impl::Loop => "loop",
            Impl::Python => "python",
        }
    }
}

/// Parses `1s`, `500ms`, `1.5s`, `250us`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (try 1s or 500ms)"))?;
    let secs = match unit {
        "s" | "" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} in {s:?} (s, ms, us)")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 3600.0 {
        return Err(format!("{s:?} is out of range (0 < d <= 1h)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// [`parse_duration`], or zero (`0`, `0s`).
pub fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    match s.trim() {
        "0" | "0s" | "0ms" => Ok(Duration::ZERO),
        _ => parse_duration(s),
    }
}

/// `1.5s` -> "1.5s", `500ms` -> "500ms": the form `parse_duration` reads back.
pub fn fmt_duration(d: Duration) -> String {
    if d.is_zero() {
        "0s".into()
    } else if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}us", d.as_micros())
    }
}

/// Seconds as a decimal number ("0.5"), for the Python script.
pub fn fmt_secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for s in ["1s", "500ms", "1.5s", "250us", "2m"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&fmt_duration(d)).unwrap(), d, "{s}");
        }
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("3x").is_err());
    }
}
