//! What the lab binaries `mio_peer` and `blocking_peer` share: the CLI's
//! arguments, its JSON-lines events, and turning a machine's counters into `ping`
//! and `pong` events.
//!
//! The binaries run an adapter the way an application would (`Driver::turn` for
//! mio, `KeepAlive::read_until` for blocking) and only *observe* its machines
//! between calls, so the adapter's own waits and wake-ups are unchanged: mio's loop
//! returns after every batch of readiness and every due deadline; blocking's
//! `read_until` is given the machine's own next deadline.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use heartbeat_core::{Config, DeathReason, Role, Stats};
use serde_json::{json, Map, Value};

/// What to run.
#[derive(Clone, Debug)]
pub enum Mode {
    /// `ping URL`: one client connection; the process exits 1 at its death.
    Ping {
        /// The server, `ws://host:port/`.
        url: String,
    },
    /// `serve --bind ADDR`: accept and ping every client; print the bound address.
    Serve {
        /// Where to listen (port 0: any).
        bind: SocketAddr,
    },
}

/// The command line, as the `heartbeat` CLI spells it.
#[derive(Clone, Debug)]
pub struct PeerArgs {
    /// What to run.
    pub mode: Mode,
    /// `--interval` (default 1 s).
    pub interval: Duration,
    /// `--timeout` (default 2 s).
    pub timeout: Duration,
}

impl PeerArgs {
    /// Parses `ping URL | serve --bind ADDR` with `--interval D`, `--timeout D`
    /// (`500ms`, `2s`) and `--json` (accepted; output is always JSON).
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<PeerArgs, String> {
        let command = args.next().ok_or(USAGE)?;
        let mut url = None;
        let mut bind = None;
        let mut interval = Duration::from_secs(1);
        let mut timeout = Duration::from_secs(2);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--interval" => interval = duration(&value()?)?,
                "--timeout" => timeout = duration(&value()?)?,
                "--bind" => bind = Some(value()?.parse().map_err(|e| format!("--bind: {e}"))?),
                "--json" => {}
                other if !other.starts_with('-') && url.is_none() => url = Some(other.to_owned()),
                other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
            }
        }
        let mode = match command.as_str() {
            "ping" => Mode::Ping {
                url: url.ok_or(USAGE)?,
            },
            "serve" => Mode::Serve {
                bind: bind.ok_or(USAGE)?,
            },
            _ => return Err(USAGE.into()),
        };
        Ok(PeerArgs {
            mode,
            interval,
            timeout,
        })
    }

    /// The heartbeat config for `role`: the interval and timeout, defaults otherwise.
    pub fn config(&self, role: Role) -> Result<Config, String> {
        Config::builder()
            .role(role)
            .ping_interval(self.interval)
            .pong_timeout(self.timeout)
            .build()
            .map_err(|e| e.to_string())
    }
}

/// Prints events as JSON lines on stdout, flushed at once.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    start: std::time::Instant,
}

impl Out {
    /// Times are seconds since now.
    pub fn new() -> Out {
        Out {
            start: std::time::Instant::now(),
        }
    }

    /// Time since the program started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Prints `{"event": event, "t": .., "who": who, ...fields}`.
    pub fn event(&self, event: &str, who: &str, fields: Value) {
        let mut obj = Map::new();
        obj.insert("event".into(), json!(event));
        obj.insert("t".into(), json!(round3(self.elapsed().as_secs_f64())));
        if !who.is_empty() {
            obj.insert("who".into(), json!(who));
        }
        if let Value::Object(fields) = fields {
            obj.extend(fields);
        }
        let mut stdout = std::io::stdout().lock();
        // A closed stdout must not crash the peer.
        let _ = writeln!(stdout, "{}", Value::Object(obj)).and_then(|()| stdout.flush());
    }
}

impl Default for Out {
    fn default() -> Self {
        Out::new()
    }
}

/// The `dead` event's fields, with the CLI's words for the reasons.
pub fn dead_fields(reason: &DeathReason) -> Value {
    match *reason {
        DeathReason::PongTimeout { waited } => {
            json!({ "reason": "pong_timeout", "waited_ms": ms(waited) })
        }
        DeathReason::PeerClosed { code } => json!({ "reason": "peer_closed", "code": code }),
        DeathReason::TransportClosed => json!({ "reason": "transport_closed" }),
        DeathReason::ProtocolError(e) => {
            json!({ "reason": "protocol_error", "detail": e.to_string() })
        }
        DeathReason::PingFlood => json!({ "reason": "ping_flood" }),
        DeathReason::LocalClose { code } => json!({ "reason": "local_close", "code": code }),
        DeathReason::ConnectFailed(cause) => {
            json!({ "reason": "connect_failed", "detail": cause.to_string() })
        }
        _ => json!({ "reason": "other", "detail": reason.to_string() }),
    }
}

/// Turns one connection's machine counters into `ping` and `pong` events.
///
/// Sequence numbers count pings from 0, as the CLI's do. A pong's `rtt_ms` runs
/// from when the ping was seen sent to when its pong was taken in, both on the
/// caller's clock: it exceeds a pause exactly when the pong waited in the socket
/// buffer through it.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    pings: u64,
    pongs: u64,
    ping: Option<(u64, Duration)>,
}

impl Tracker {
    /// Pings reported so far.
    pub fn pings(&self) -> u64 {
        self.pings
    }

    /// Compares `stats` with the last call and prints what changed: first the pong
    /// (taken in at `taken_in`), then a new ping (sent by `now`).
    pub fn update(
        &mut self,
        out: &Out,
        who: &str,
        stats: &Stats,
        now: Duration,
        taken_in: Duration,
    ) {
        if stats.pongs_matched > self.pongs {
            self.pongs = stats.pongs_matched;
            let (seq, rtt) = match self.ping {
                Some((seq, sent)) => (Some(seq), Some(ms(taken_in.saturating_sub(sent)))),
                None => (None, None),
            };
            out.event("pong", who, json!({ "seq": seq, "rtt_ms": rtt }));
        }
        if stats.pings_sent > self.pings {
            self.pings = stats.pings_sent;
            let seq = stats.pings_sent - 1;
            self.ping = Some((seq, now));
            out.event("ping", who, json!({ "seq": seq }));
        }
    }
}

/// Milliseconds with three decimals.
pub fn ms(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1e3)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Parses `500ms`, `2s`, `1.5s`, `250us`; a bare number is seconds.
fn duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" => 1e-6,
        _ => return Err(format!("bad unit in {text:?}")),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))
}

const USAGE: &str =
    "usage: PEER ping URL | serve --bind ADDR  [--interval D] [--timeout D] [--json]";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<PeerArgs, String> {
        PeerArgs::parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn the_cli_spelling_parses() {
        let a = parse("ping ws://127.0.0.1:1/ --interval 200ms --timeout 0.5s --json").unwrap();
        assert!(matches!(a.mode, Mode::Ping { ref url } if url == "ws://127.0.0.1:1/"));
        assert_eq!(a.interval, Duration::from_millis(200));
        assert_eq!(a.timeout, Duration::from_millis(500));
        let s = parse("serve --bind 10.250.0.1:0").unwrap();
        assert!(matches!(s.mode, Mode::Serve { bind } if bind.port() == 0));
        assert!(parse("serve").is_err());
        assert!(parse("ping").is_err());
        assert!(parse("ping ws://x/ --interval fast").is_err());
        assert!(parse("dance").is_err());
    }
}
