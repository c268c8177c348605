//! Silent blackhole: the adapter and a Python `websockets` peer (keepalive off) in
//! two network namespaces joined by a veth pair; after a healthy start, nftables
//! drops every packet in both receiving namespaces' prerouting hooks (no RST, both
//! ends stay ESTABLISHED). The adapter must declare the peer dead (`pong_timeout`)
//! within `interval + timeout + 300 ms` of the cut, and the rules must have dropped
//! packets. One case per adapter and role. Needs root, `ip` and `nft`; skips with a
//! printed reason otherwise (never under `CI=true`).

use std::time::Duration;

use heartbeat_lab::{detect, Adapter, Role, Timing};
use heartbeat_test_support::{require_netns, require_websockets};

const TIMING: Timing = Timing {
    interval: Duration::from_millis(500),
    timeout: Duration::from_millis(1000),
};

fn cut(adapter: Adapter, role: Role, test: &str) {
    if !require_netns(test) || !require_websockets(test) {
        return;
    }
    let d = detect::blackhole(adapter, role, TIMING).unwrap_or_else(|e| panic!("{test}: {e}"));
    eprintln!(
        "{test}: detected {:.0} ms after the cut (bound {:.0} ms, {} packets dropped): {}",
        d.latency.as_secs_f64() * 1e3,
        d.bound.as_secs_f64() * 1e3,
        d.dropped_packets.unwrap_or(0),
        d.event.line
    );
}

#[test]
fn tokio_client_detects_a_blackhole() {
    cut(
        Adapter::Tokio,
        Role::Client,
        "tokio_client_detects_a_blackhole",
    );
}

#[test]
fn tokio_server_detects_a_blackhole() {
    cut(
        Adapter::Tokio,
        Role::Server,
        "tokio_server_detects_a_blackhole",
    );
}

#[test]
fn mio_client_detects_a_blackhole() {
    cut(Adapter::Mio, Role::Client, "mio_client_detects_a_blackhole");
}

#[test]
fn mio_server_detects_a_blackhole() {
    cut(Adapter::Mio, Role::Server, "mio_server_detects_a_blackhole");
}

#[test]
fn blocking_client_detects_a_blackhole() {
    cut(
        Adapter::Blocking,
        Role::Client,
        "blocking_client_detects_a_blackhole",
    );
}

#[test]
fn blocking_server_detects_a_blackhole() {
    cut(
        Adapter::Blocking,
        Role::Server,
        "blocking_server_detects_a_blackhole",
    );
}
