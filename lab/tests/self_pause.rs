//! Self-pause: the process running the adapter (the `heartbeat` CLI's `ping` and
//! `serve` for tokio, the lab binaries for mio and blocking; each as client and as
//! server) is really stopped and resumed (`SIGSTOP`/`SIGCONT`) while a healthy
//! Python `websockets` peer (keepalive off) answers every ping at once, over a
//! loopback path with 10 ms of latency each way (a [`DelayProxy`]). 12 pauses per adapter, from 0.2×T to 10×(I+T) (see
//! [`pause::plan`]); 9 of them stop the process the instant it reports a ping, so
//! the pong, 20 ms behind, lands in the stopped process's socket buffer and waits
//! there through the pause; the others stop at a random phase. Seeded
//! (`HEARTBEAT_LAB_SEED` replays a run). 0 false deaths allowed, and at least half
//! of the at-ping cases must have held their pong through the pause (else the
//! test did not test what it claims).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use heartbeat_lab::pause::{self, PauseCase, Phase};
use heartbeat_lab::{client, server_with, Adapter, Place, Role, Timing};
use heartbeat_test_support::{require_websockets, DelayProxy, PyPeer, Rng};

/// The settings: interval 200 ms, timeout 500 ms.
const TIMING: Timing = Timing {
    interval: Duration::from_millis(200),
    timeout: Duration::from_millis(500),
};

/// Pauses per adapter.
const CASES: usize = 12;

/// Latency each way between the adapter and its peer.
const ONE_WAY: Duration = Duration::from_millis(10);

fn self_pause(adapter: Adapter, role: Role, test: &str, seed: u64) {
    let mut rng = Rng::from_env(test, seed);
    let cases = pause::plan(&mut rng, TIMING, CASES);
    self_pause_with(adapter, role, test, TIMING, &cases, Clients::ONE, &[]);
}

/// The Python clients of a server under test.
#[derive(Clone, Copy)]
struct Clients {
    n: usize,
    /// Each also pings the server this often (no timeout of its own).
    pinging: Option<Duration>,
}

impl Clients {
    const ONE: Clients = Clients {
        n: 1,
        pinging: None,
    };
}

/// [`self_pause`] with these Python clients (server role) and more arguments for
/// the adapter's program.
fn self_pause_with(
    adapter: Adapter,
    role: Role,
    test: &str,
    timing: Timing,
    cases: &[PauseCase],
    clients: Clients,
    extra: &[&str],
) {
    if !require_websockets(test) {
        return;
    }
    // The adapter and its peer, with the delay proxy between them.
    let (mut proc, _peer, _path) = match role {
        Role::Client => {
            let peer = PyPeer::echo_server(None).expect("python echo server");
            let path = DelayProxy::start(peer.addr.expect("address"), ONE_WAY).expect("proxy");
            let url = format!("ws://{}/", path.addr());
            let proc = client(adapter, Place::Host, &url, timing).unwrap_or_else(|e| panic!("{e}"));
            (proc, peer, path)
        }
        Role::Server => {
            let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let (proc, addr) = server_with(adapter, Place::Host, bind, timing, extra)
                .unwrap_or_else(|e| panic!("{e}"));
            let path = DelayProxy::start(addr, ONE_WAY).expect("proxy");
            let url = format!("ws://{}/", path.addr());
            let peer = match clients.pinging {
                Some(every) => PyPeer::pinging_clients(&url, clients.n, every),
                None => PyPeer::clients(&url, clients.n),
            }
            .expect("python clients");
            (proc, peer, path)
        }
    };
    let results = pause::run(&mut proc, timing, cases).unwrap_or_else(|e| panic!("{test}: {e}"));
    let report = pause::table(&results);
    eprintln!("{test}: {} pauses, 0 false deaths\n{report}", cases.len());
    assert_eq!(results.len(), cases.len());
    // The hard case must have happened: pongs that waited out a pause in the buffer.
    let at_ping = cases.iter().filter(|c| c.phase == Phase::AtPing).count();
    let held = results.iter().filter(|r| r.pong_held).count();
    assert!(
        held * 2 >= at_ping,
        "{test}: only {held} of {at_ping} stops at a ping held a pong through the pause, \
         so the test did not test the buffered-pong case\n{report}"
    );
}

#[test]
fn tokio_client_survives_its_own_pauses() {
    let test = "tokio_client_survives_its_own_pauses";
    self_pause(Adapter::Tokio, Role::Client, test, 9001);
}

#[test]
fn tokio_server_survives_its_own_pauses() {
    let test = "tokio_server_survives_its_own_pauses";
    self_pause(Adapter::Tokio, Role::Server, test, 9006);
}

#[test]
fn mio_client_survives_its_own_pauses() {
    let test = "mio_client_survives_its_own_pauses";
    self_pause(Adapter::Mio, Role::Client, test, 9002);
}

#[test]
fn mio_server_survives_its_own_pauses() {
    let test = "mio_server_survives_its_own_pauses";
    self_pause(Adapter::Mio, Role::Server, test, 9003);
}

/// heartbeat-mio reads a socket only when readiness said something arrived, so
/// every readiness event that happened before a deadline must be collected before
/// it is judged, even when one `poll` cannot return them all.
///
/// The server (interval 5 s, timeout 500 ms, one readiness event per `poll`)
/// holds 9 clients that also ping it every 200 ms, so its own pings go out early
/// with its pongs to theirs (`ping_with_pong`) and few of its ping timers ever
/// fire. It is stopped the instant it reports a ping and stays stopped 1.05–2.1×T.
/// The pong of that ping lands in its buffer 20 ms into the pause, usually after
/// some other client's ping, so on resume it is usually not the first ready
/// socket, and its deadline is the first one due, found late by less than the
/// stall allowance (no other late timer fired first to raise the local lag that
/// would excuse it). Every socket must be read before any verdict: the driver
/// polls again, without waiting, until the kernel has no more events. With those
/// extra polls removed this test fails (a false `pong_timeout` in one of the first
/// few pauses; the odds of a pause passing anyway are about one in two). Pauses
/// stay short: after a long one the clients' queued pings arrive as a burst, which
/// the ping-flood budget would rightly refuse.
#[test]
fn mio_server_with_more_ready_sockets_than_one_poll_returns_survives_its_own_pauses() {
    let test = "mio_server_with_more_ready_sockets_than_one_poll_returns_survives_its_own_pauses";
    let timing = Timing {
        interval: Duration::from_secs(5),
        timeout: Duration::from_millis(500),
    };
    let clients = Clients {
        n: 9,
        pinging: Some(Duration::from_millis(200)),
    };
    let cases: Vec<PauseCase> = [1.05, 1.1, 1.2, 1.05, 1.1, 1.2, 1.05, 1.1, 1.6, 2.1]
        .map(|k| PauseCase {
            pause: timing.timeout.mul_f64(k),
            phase: Phase::AtPing,
        })
        .to_vec();
    self_pause_with(
        Adapter::Mio,
        Role::Server,
        test,
        timing,
        &cases,
        clients,
        &["--events", "1"],
    );
}

#[test]
fn blocking_client_survives_its_own_pauses() {
    let test = "blocking_client_survives_its_own_pauses";
    self_pause(Adapter::Blocking, Role::Client, test, 9004);
}

#[test]
fn blocking_server_survives_its_own_pauses() {
    let test = "blocking_server_survives_its_own_pauses";
    self_pause(Adapter::Blocking, Role::Server, test, 9005);
}
