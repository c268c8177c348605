//! The real-process fault lab (issue 9): each adapter runs in its own process and
//! meets real faults, never simulated ones.
//!
//! - **Self-pause** ([`pause`]): the process running the adapter (the `heartbeat`
//!   CLI for tokio, [`Adapter::Mio`]'s and [`Adapter::Blocking`]'s lab binaries) is
//!   stopped with `SIGSTOP` and resumed with `SIGCONT`, at random phases including
//!   the instant it reports a ping, for pauses from 0.2×T to 10×(I+T), against a
//!   healthy Python `websockets` peer whose keepalive is off, as client and as
//!   server: 0 false deaths.
//! - **Blackhole** ([`detect::blackhole`]): the adapter in one network namespace,
//!   the Python peer in another, joined by a veth pair; then nftables drop rules in
//!   both receiving namespaces' prerouting hooks (a silent cut: no RST, both ends
//!   ESTABLISHED). The adapter, as client and as server, declares the peer dead
//!   within [`Timing::detection_bound`].
//! - **Hung peer** ([`detect::hung_peer`]): the Python peer is `SIGSTOP`ped (its
//!   kernel keeps ACKing): still detected within the same bound, and right after
//!   the adapter's own 1 s pause within the bound plus that pause (local-health
//!   awareness may extend a verdict by the lag it measured, never hide a dead
//!   peer).
//!
//! [`peer`] holds what the lab binaries share (`src/bin/mio_peer.rs`,
//! `src/bin/blocking_peer.rs`).
//!
//! # The event protocol
//! Every program under test prints one JSON object per line, as `heartbeat --json`
//! does: `{"event": NAME, "t": seconds since start, ...}` with `NAME` among
//! `listening {addr}` (servers, first line), `connected`, `ping {seq}`,
//! `pong {seq, rtt_ms}`, `dead {reason, waited_ms?}` (`reason` is `pong_timeout`
//! for a silent peer), `closed`. A server prints them for every connection, with
//! `who` naming it (`client1`, ...; the CLI's `serve --json` also adds `conn`, its
//! number); the lab runs one connection per server. The lab binaries `mio_peer` and
//! `blocking_peer` take the CLI's arguments: `ping URL` or `serve --bind ADDR`, with
//! `--interval`, `--timeout` and `--json`.
//!
//! Failures print the tail of every process's event log, each line stamped with
//! when the test read it, so a failing CI run can be read without re-running.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod detect;
pub mod pause;
pub mod peer;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use heartbeat_test_support::binaries::heartbeat_cli;
use heartbeat_test_support::{JsonProc, NetnsPair, Side};

/// Which driver runs in the process under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// `heartbeat-tokio`, through the `heartbeat` CLI (`ping` / `serve`, both with
    /// `--json`, which prints every ping and pong).
    Tokio,
    /// `heartbeat-mio`, through the lab binary `mio_peer`.
    Mio,
    /// `heartbeat-blocking`, through the lab binary `blocking_peer`.
    Blocking,
}

impl Adapter {
    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Adapter::Tokio => "tokio",
            Adapter::Mio => "mio",
            Adapter::Blocking => "blocking",
        }
    }

    /// The program that runs this adapter.
    ///
    /// Tokio: the CLI built from this workspace. Mio and blocking: this package's
    /// binaries, which Cargo builds next to the test executable
    /// (`<target>/<profile>/`, where `CARGO_BIN_EXE_*` also points) before it runs
    /// the tests.
    pub fn program(self) -> PathBuf {
        let bin = match self {
            Adapter::Tokio => return heartbeat_cli(),
            Adapter::Mio => "mio_peer",
            Adapter::Blocking => "blocking_peer",
        };
        let path = std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.parent()?.join(bin)))
            .unwrap_or_else(|| PathBuf::from(bin));
        assert!(
            path.exists(),
            "{} not found (run the lab with `cargo test -p heartbeat-lab`)",
            path.display()
        );
        path
    }
}

/// Which end of the connection the adapter under test is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// It connects and pings (`ping URL`).
    Client,
    /// It accepts and pings its clients (`serve --bind ADDR`).
    Server,
}

/// The heartbeat settings of a lab run.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Time between pings (`--interval`).
    pub interval: Duration,
    /// Pong timeout (`--timeout`).
    pub timeout: Duration,
}

impl Timing {
    /// The longest a silent peer may go undetected, counted from the fault:
    /// `interval + timeout + SLACK`.
    ///
    /// The last proof of life came at or before the fault; the next ping is due at
    /// most `interval` after it, and its pong deadline is `timeout` after that (no
    /// jitter on pings; an adaptive timeout is not used in the lab). [`SLACK`] covers
    /// the rest: timer wake-up and scheduling on a loaded 2-core machine, writing
    /// and reading the JSON line, and the `nft`/`kill` call that starts the fault
    /// (the clock starts before it).
    pub fn detection_bound(&self) -> Duration {
        self.interval + self.timeout + SLACK
    }

    /// `--interval X --timeout Y --json`.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--interval".into(),
            format!("{}ms", self.interval.as_millis()),
            "--timeout".into(),
            format!("{}ms", self.timeout.as_millis()),
            "--json".into(),
        ]
    }
}

/// What [`Timing::detection_bound`] allows beyond `interval + timeout`: 300 ms.
///
/// Measured here, a verdict comes 1–15 ms after its deadline on a quiet machine;
/// the rest is headroom for CI neighbours (other test binaries, builds) on 2 cores,
/// still well below one ping interval of the lab's settings, so a detector that
/// waited one ping cycle too long fails.
pub const SLACK: Duration = Duration::from_millis(300);

/// Where a process runs: on the host (loopback) or inside one side of a pair.
#[derive(Clone, Copy)]
pub enum Place<'a> {
    /// The test's own network namespace.
    Host,
    /// Inside `side` of `pair`.
    Netns(&'a NetnsPair, Side),
}

impl Place<'_> {
    /// A command running `program` here.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match self {
            Place::Host => Command::new(program),
            Place::Netns(pair, side) => pair.command(*side, program),
        }
    }

    /// The namespace name, if any (for the Python launchers).
    pub fn netns(&self) -> Option<&str> {
        match self {
            Place::Host => None,
            Place::Netns(pair, side) => Some(pair.name(*side)),
        }
    }
}

/// Starts `adapter` as a client pinging `url`.
pub fn client(
    adapter: Adapter,
    place: Place<'_>,
    url: &str,
    timing: Timing,
) -> Result<JsonProc, String> {
    let mut cmd = place.command(adapter.program());
    cmd.arg("ping").arg(url).args(timing.args());
    JsonProc::spawn(&format!("{} client", adapter.name()), cmd).map_err(|e| e.to_string())
}

/// Starts `adapter` as a server on `bind` (port 0: any) and waits for its
/// `listening` line; returns the process and the address it listens on.
pub fn server(
    adapter: Adapter,
    place: Place<'_>,
    bind: SocketAddr,
    timing: Timing,
) -> Result<(JsonProc, SocketAddr), String> {
    server_with(adapter, place, bind, timing, &[])
}

/// [`server`] with more arguments for the adapter's program (e.g. `mio_peer`'s
/// `--events N`).
pub fn server_with(
    adapter: Adapter,
    place: Place<'_>,
    bind: SocketAddr,
    timing: Timing,
    extra: &[&str],
) -> Result<(JsonProc, SocketAddr), String> {
    let mut cmd = place.command(adapter.program());
    cmd.args(["serve", "--bind", &bind.to_string()])
        .args(timing.args())
        .args(extra);
    let mut proc =
        JsonProc::spawn(&format!("{} server", adapter.name()), cmd).map_err(|e| e.to_string())?;
    let listening = proc.wait_for("listening", STARTUP, |e| e.is("listening"))?;
    let addr = listening
        .get("addr")
        .as_str()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("no address in {}", listening.line))?;
    Ok((proc, addr))
}

/// How long a process may take to start (a debug build on a busy machine).
pub const STARTUP: Duration = Duration::from_secs(20);
