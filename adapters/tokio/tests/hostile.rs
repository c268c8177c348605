//! The Autobahn-style hostile cases (`heartbeat_test_support::raw::cases`:
//! pings, fragmentation, UTF-8, close, limits) played by a raw-frame peer over
//! real loopback sockets against this adapter as server and as client, with the
//! default limits. Each case must end with its RFC 6455 close code (1002, 1007,
//! 1009, or the echoed code), and a well-behaved connection of the same process
//! must be undisturbed throughout.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{echo_server, options};
use heartbeat_core::{Role, State};
use heartbeat_test_support::raw::{cases, RawPeer};
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{connect, KeepAlive, Receiver, Registry, Sender};

const WAIT: Duration = Duration::from_secs(5);

/// A well-behaved client of `url`, checked after every case.
async fn good_client(url: String) -> (Sender, Receiver) {
    let mut conns = connect(url, options(Role::Client, 200, 1000, 300)).unwrap();
    conns.next().await.expect("connected").split()
}

async fn still_fine(tx: &Sender, rx: &mut Receiver, case: &str) {
    tx.send(Message::text(case.to_owned())).await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), Message::text(case.to_owned()));
    let status = tx.status();
    assert_eq!(status.state, State::Open, "{case}: {status:?}");
    assert_eq!(status.stats.pong_timeouts, 0, "{case}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_server_every_hostile_case_gets_its_close_code_and_a_good_client_is_undisturbed() {
    let registry = Registry::new();
    let url = echo_server(options(Role::Server, 2000, 2000, 300), registry.clone()).await;
    let addr = url.trim_start_matches("ws://").parse().unwrap();
    let (tx, mut rx) = good_client(url).await;
    for case in cases() {
        let result = tokio::task::spawn_blocking(move || {
            let mut peer = RawPeer::connect(addr).map_err(|e| e.to_string())?;
            peer.play(&case, WAIT)
        })
        .await
        .unwrap();
        assert_eq!(result, Ok(()));
        still_fine(&tx, &mut rx, "after a hostile client").await;
    }
    // Every hostile connection was removed; the good one is the only one left.
    common::wait_registry(&registry, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_client_every_hostile_case_gets_its_close_code_and_a_good_connection_is_undisturbed() {
    let good = echo_server(options(Role::Server, 200, 1000, 300), Registry::new()).await;
    let (tx, mut rx) = good_client(good).await;
    for case in cases() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let name = case.name;
        let hostile = tokio::task::spawn_blocking(move || {
            let mut peer = RawPeer::accept(&listener).map_err(|e| e.to_string())?;
            peer.play(&case, WAIT)
        });
        let client = options(Role::Client, 2000, 2000, 300);
        let (ws, _) = heartbeat_tokio::tokio_tungstenite::connect_async_with_config(
            url,
            Some(client.websocket),
            false,
        )
        .await
        .unwrap();
        let conn = KeepAlive::new(ws, &client);
        let (_ctx, mut crx) = conn.split();
        assert_eq!(hostile.await.unwrap(), Ok(()), "{name}");
        // The attacked connection ends; its verdict is the application's.
        let end = tokio::time::timeout(WAIT, async { while crx.recv().await.is_ok() {} }).await;
        assert!(end.is_ok(), "{name}: the attacked connection did not end");
        still_fine(&tx, &mut rx, name).await;
    }
}
