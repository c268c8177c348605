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
use heartbeat_lab::{client, server, Adapter, Place, Role, Timing};
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
    if !require_websockets(test) {
        return;
    }
    let mut rng = Rng::from_env(test, seed);
    let cases: Vec<PauseCase> = pause::plan(&mut rng, TIMING, CASES);
    // The adapter and its peer, with the delay proxy between them.
    let (mut proc, _peer, _path) = match role {
        Role::Client => {
            let peer = PyPeer::echo_server(None).expect("python echo server");
            let path = DelayProxy::start(peer.addr.expect("address"), ONE_WAY).expect("proxy");
            let url = format!("ws://{}/", path.addr());
            let proc = client(adapter, Place::Host, &url, TIMING).unwrap_or_else(|e| panic!("{e}"));
            (proc, peer, path)
        }
        Role::Server => {
            let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let (proc, addr) =
                server(adapter, Place::Host, bind, TIMING).unwrap_or_else(|e| panic!("{e}"));
            let path = DelayProxy::start(addr, ONE_WAY).expect("proxy");
            let peer =
                PyPeer::clients(&format!("ws://{}/", path.addr()), 1).expect("python client");
            (proc, peer, path)
        }
    };
    let results = pause::run(&mut proc, TIMING, &cases).unwrap_or_else(|e| panic!("{test}: {e}"));
    let report = pause::table(&results);
    eprintln!("{test}: {CASES} pauses, 0 false deaths\n{report}");
    assert_eq!(results.len(), CASES);
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
