//! Hung peer: after a healthy start, the Python `websockets` peer (keepalive off) is
//! stopped with `SIGSTOP`. Its kernel keeps ACKing, so neither TCP keepalive nor
//! `TCP_USER_TIMEOUT` can notice; the adapter's pings must, within
//! `interval + timeout + 300 ms` of the stop. One case per adapter and role.
//!
//! Then the same right after the adapter's own process was stopped for 1 s: it has
//! just measured a second of local lag and may extend its verdicts by that much
//! (local-health awareness), but no more: the bound becomes
//! `interval + timeout + 300 ms + the pause`. Local-health awareness must not hide
//! a dead peer.

use std::time::Duration;

use heartbeat_lab::{detect, Adapter, Role, Timing};
use heartbeat_test_support::require_websockets;

const TIMING: Timing = Timing {
    interval: Duration::from_millis(500),
    timeout: Duration::from_millis(1000),
};

/// The adapter's own pause before the peer hangs, in the `_after_its_own_pause` cases.
const OWN_PAUSE: Duration = Duration::from_secs(1);

fn hung(adapter: Adapter, role: Role, test: &str) {
    hung_after(adapter, role, test, None);
}

fn hung_after(adapter: Adapter, role: Role, test: &str, own_pause: Option<Duration>) {
    if !require_websockets(test) {
        return;
    }
    let d = detect::hung_peer(adapter, role, TIMING, own_pause)
        .unwrap_or_else(|e| panic!("{test}: {e}"));
    eprintln!(
        "{test}: detected {:.0} ms after the stop (bound {:.0} ms): {}",
        d.latency.as_secs_f64() * 1e3,
        d.bound.as_secs_f64() * 1e3,
        d.event.line
    );
}

#[test]
fn tokio_client_detects_a_hung_server() {
    hung(
        Adapter::Tokio,
        Role::Client,
        "tokio_client_detects_a_hung_server",
    );
}

#[test]
fn tokio_server_detects_a_hung_client() {
    hung(
        Adapter::Tokio,
        Role::Server,
        "tokio_server_detects_a_hung_client",
    );
}

#[test]
fn mio_client_detects_a_hung_server() {
    hung(
        Adapter::Mio,
        Role::Client,
        "mio_client_detects_a_hung_server",
    );
}

#[test]
fn mio_server_detects_a_hung_client() {
    hung(
        Adapter::Mio,
        Role::Server,
        "mio_server_detects_a_hung_client",
    );
}

#[test]
fn blocking_client_detects_a_hung_server() {
    hung(
        Adapter::Blocking,
        Role::Client,
        "blocking_client_detects_a_hung_server",
    );
}

#[test]
fn blocking_server_detects_a_hung_client() {
    hung(
        Adapter::Blocking,
        Role::Server,
        "blocking_server_detects_a_hung_client",
    );
}

#[test]
fn tokio_client_detects_a_hung_server_after_its_own_pause() {
    let test = "tokio_client_detects_a_hung_server_after_its_own_pause";
    hung_after(Adapter::Tokio, Role::Client, test, Some(OWN_PAUSE));
}

#[test]
fn tokio_server_detects_a_hung_client_after_its_own_pause() {
    let test = "tokio_server_detects_a_hung_client_after_its_own_pause";
    hung_after(Adapter::Tokio, Role::Server, test, Some(OWN_PAUSE));
}

#[test]
fn mio_client_detects_a_hung_server_after_its_own_pause() {
    let test = "mio_client_detects_a_hung_server_after_its_own_pause";
    hung_after(Adapter::Mio, Role::Client, test, Some(OWN_PAUSE));
}

#[test]
fn mio_server_detects_a_hung_client_after_its_own_pause() {
    let test = "mio_server_detects_a_hung_client_after_its_own_pause";
    hung_after(Adapter::Mio, Role::Server, test, Some(OWN_PAUSE));
}

#[test]
fn blocking_client_detects_a_hung_server_after_its_own_pause() {
    let test = "blocking_client_detects_a_hung_server_after_its_own_pause";
    hung_after(Adapter::Blocking, Role::Client, test, Some(OWN_PAUSE));
}

#[test]
fn blocking_server_detects_a_hung_client_after_its_own_pause() {
    let test = "blocking_server_detects_a_hung_client_after_its_own_pause";
    hung_after(Adapter::Blocking, Role::Server, test, Some(OWN_PAUSE));
}
