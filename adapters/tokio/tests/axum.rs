//! `examples/axum_keepalive.rs` as a user runs it: an axum server whose handler
//! wraps the upgraded socket in the heartbeat. A Python `websockets` client (no
//! keepalive of its own) stays alive while it answers; once SIGSTOPped (its kernel
//! still ACKs) the handler learns "peer unresponsive" within interval + timeout.
//!
//! Needs the `axum` feature: `cargo test -p heartbeat-tokio --features axum`.

#![cfg(feature = "axum")]

mod common;

#[allow(dead_code)]
#[path = "../examples/axum_keepalive.rs"]
mod example;

use std::time::{Duration, Instant};

use common::{ms, off_runtime, options};
use heartbeat_core::Role;
use heartbeat_test_support::{require_websockets, PyPeer};
use heartbeat_tokio::Error;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const INTERVAL: u64 = 200;
const TIMEOUT: u64 = 300;
/// Scheduling slack on a shared 2-core machine.
const SLACK: Duration = Duration::from_millis(250);

#[tokio::test]
async fn an_axum_handler_keeps_a_live_client_and_detects_a_stopped_one() {
    if !require_websockets("an_axum_handler_keeps_a_live_client_and_detects_a_stopped_one") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let (ends, mut gone) = mpsc::unbounded_channel();
    let state = example::App {
        options: options(Role::Server, INTERVAL, TIMEOUT, 300),
        ends,
    };
    tokio::spawn(async move { axum::serve(listener, example::app(state)).await });

    let client = off_runtime(move || PyPeer::clients(&url, 1)).await.unwrap();
    // Several intervals with the client answering: no verdict.
    let quiet = tokio::time::timeout(ms(4 * INTERVAL), gone.recv()).await;
    assert!(quiet.is_err(), "a live client was declared over: {quiet:?}");

    client.stop();
    let stopped = Instant::now();
    let end = tokio::time::timeout(ms(3000), gone.recv())
        .await
        .expect("a verdict in time")
        .expect("the handler reports its end");
    let took = stopped.elapsed();
    assert!(matches!(end, Error::PeerUnresponsive { .. }), "{end}");
    assert!(
        took <= ms(INTERVAL + TIMEOUT) + SLACK,
        "detected after {took:?}"
    );
}
