//! A WebSocket opened with tokio-tungstenite 0.30 (this crate is built on 0.29)
//! gets the same keepalive through `Compat`: messages both ways, pongs matched, a
//! SIGSTOPped Python server detected within interval + timeout.
//!
//! Needs the `tokio-tungstenite-030` feature.

#![cfg(feature = "tokio-tungstenite-030")]

mod common;

use std::time::{Duration, Instant};

use common::{ms, off_runtime, options};
use heartbeat_core::Role;
use heartbeat_test_support::{require_websockets, PyPeer};
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{Compat, Error, KeepAlive};
use tokio_tungstenite_030::tungstenite::Message as Message030;

const INTERVAL: u64 = 200;
const TIMEOUT: u64 = 300;
/// Scheduling slack on a shared 2-core machine.
const SLACK: Duration = Duration::from_millis(250);

#[tokio::test]
async fn a_tokio_tungstenite_030_stream_is_kept_alive_and_a_hung_server_detected() {
    if !require_websockets(
        "a_tokio_tungstenite_030_stream_is_kept_alive_and_a_hung_server_detected",
    ) {
        return;
    }
    let py = off_runtime(|| PyPeer::echo_server(None)).await.unwrap();
    let (ws, _) = tokio_tungstenite_030::connect_async(py.url().unwrap())
        .await
        .unwrap();
    let socket: Compat<_, Message030> = Compat::new(ws);
    let mut conn = KeepAlive::from_socket(socket, &options(Role::Client, INTERVAL, TIMEOUT, 300));

    conn.send(Message::text("from 0.30")).await.unwrap();
    assert_eq!(conn.recv().await.unwrap(), Message::text("from 0.30"));
    tokio::time::sleep(ms(3 * INTERVAL)).await;
    assert!(
        conn.status().stats.pongs_matched >= 2,
        "{:?}",
        conn.status().stats
    );

    py.stop();
    let stopped = Instant::now();
    let end = tokio::time::timeout(ms(3000), conn.recv()).await.unwrap();
    let took = stopped.elapsed();
    assert!(
        matches!(end, Err(Error::PeerUnresponsive { .. })),
        "{end:?}"
    );
    assert!(
        took <= ms(INTERVAL + TIMEOUT) + SLACK,
        "detected after {took:?}"
    );
}
