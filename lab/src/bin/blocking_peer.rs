//! `blocking_peer`: heartbeat-blocking as a lab process. `blocking_peer ping URL`
//! runs one client connection (exit 1 at its death, as `heartbeat ping` without
//! `--reconnect`); `blocking_peer serve --bind ADDR` accepts and pings every client
//! on a thread of its own and echoes their messages. Both take `--interval` and
//! `--timeout` and print JSON lines (`listening`, `connected`, `ping`, `pong`,
//! `dead`); see `heartbeat_lab::peer`.
//!
//! Each connection is the application's loop on `KeepAlive::read_until`, given the
//! machine's own next deadline (never earlier than 1 ms from now, as `read` itself
//! waits), so the adapter wakes exactly when it would inside `read` and returns
//! after each deadline's actions ran: its counters then become `ping`/`pong`
//! events, a pong stamped with the machine's last proof of life.

use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use heartbeat_blocking::{Error, KeepAlive};
use heartbeat_core::{Config, DeathReason, Role};
use heartbeat_lab::peer::{dead_fields, Mode, Out, PeerArgs, Tracker};
use heartbeat_transport::{seed, Clock};
use serde_json::json;

fn main() -> ExitCode {
    let args = match PeerArgs::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::from(1),
        Err(e) => {
            eprintln!("blocking_peer: {e}");
            ExitCode::from(3)
        }
    }
}

/// Returns (`Ok`) when the client's connection died.
fn run(args: &PeerArgs) -> Result<(), String> {
    let out = Out::new();
    match &args.mode {
        Mode::Ping { url } => {
            let config = args.config(Role::Client)?;
            let ka = KeepAlive::connect(url, config).map_err(|e| format!("connect {url}: {e}"))?;
            // Keep a copy of the connection's clock to hand `read_until` deadlines.
            let (ws, hb, clock) = ka.into_parts();
            let mut ka = KeepAlive::from_parts(ws, hb, clock);
            out.event("connected", "ping", json!({ "url": url }));
            let reason = session(&mut ka, clock, &out, "ping");
            out.event("dead", "ping", dead_fields(&reason));
            Ok(())
        }
        Mode::Serve { bind } => {
            let config = args.config(Role::Server)?;
            let listener = TcpListener::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            out.event("listening", "server", json!({ "addr": addr.to_string() }));
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let who = format!("client{}", n + 1);
                std::thread::spawn(move || serve(stream, config, out, &who));
            }
            Err("the listener ended".into())
        }
    }
}

fn serve(stream: TcpStream, config: Config, out: Out, who: &str) {
    let mut ka = match KeepAlive::accept(stream, config, seed()) {
        Ok(ka) => ka,
        Err(e) => {
            out.event("handshake_failed", who, json!({ "error": e.to_string() }));
            return;
        }
    };
    let (ws, hb, clock) = ka.into_parts();
    ka = KeepAlive::from_parts(ws, hb, clock);
    out.event("connected", who, json!({}));
    let reason = session(&mut ka, clock, &out, who);
    out.event("dead", who, dead_fields(&reason));
}

/// The application loop: echo messages, wake at the machine's deadlines, print
/// what the machine did. Returns the connection's death.
///
/// `read_until` is given the machine's next deadline, capped at the next ping's
/// due time (last ping + interval, the machine's fixed schedule): while a ping is
/// out, the machine's only deadline is the pong timeout and the next ping is armed
/// only when the pong is taken in, inside `read_until`; the cap makes the call
/// return right after that ping is sent, where the adapter would have woken anyway.
fn session(ka: &mut KeepAlive, clock: Clock, out: &Out, who: &str) -> DeathReason {
    let mut tracker = Tracker::default();
    let mut next_ping = None;
    loop {
        let floor = std::time::Instant::now() + MIN_WAIT;
        let due = ka.machine().poll_timeout().map(|d| d.at);
        let deadline = [due, next_ping]
            .into_iter()
            .flatten()
            .min()
            .map(|at| clock.to_std(at).max(floor));
        match ka.read_until(deadline) {
            Ok(Some(msg)) => {
                let _ = ka.send(msg);
            }
            Ok(None) => {}
            Err(Error::Dead(reason)) => return reason,
            Err(e) => {
                out.event("error", who, json!({ "error": e.to_string() }));
            }
        }
        let hb = ka.machine();
        let stats = hb.stats();
        if stats.pings_sent > tracker.pings() {
            next_ping = Some(hb.now() + hb.ping_interval());
        }
        let now = hb.now().as_duration();
        let taken_in = hb.last_proof_of_life().map_or(now, |t| t.as_duration());
        tracker.update(out, who, &stats, now, taken_in);
    }
}

/// As `KeepAlive::read` itself: never wait less than 1 ms.
const MIN_WAIT: Duration = Duration::from_millis(1);
