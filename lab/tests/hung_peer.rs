//! Hung peer: after a healthy start, the Python `websockets` peer (keepalive off) is
//! stopped with `SIGSTOP`. Its kernel keeps ACKing, so neither TCP keepalive nor
//! `TCP_USER_TIMEOUT` can notice; the adapter's pings must, within
//! `interval + timeout + 300 ms` of the stop. One case per adapter and role.

use std::time::Duration;

use heartbeat_lab::{detect, Adapter, Role, Timing};
use heartbeat_test_support::require_websockets;

const TIMING: Timing = Timing {
    interval: Duration::from_millis(500),
    timeout: Duration::from_millis(1000),
};

fn hung(adapter: Adapter, role: Role, test: &str) {
    if !require_websockets(test) {
        return;
    }
    let d = detect::hung_peer(adapter, role, TIMING).unwrap_or_else(|e| panic!("{test}: {e}"));
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
