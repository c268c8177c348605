//! `KeepAliveStream`: the heartbeat in the application's own task.

mod common;

use std::time::Duration;

use common::{duplex_pair, ms, options};
use futures_util::{SinkExt, StreamExt};
use heartbeat_core::{CloseCode, Role, State};
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{Error, KeepAliveStream};
use tokio::net::TcpListener;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_dead_exactly_at_interval_plus_timeout_then_the_stream_ends() {
    let (client, _server) = duplex_pair(64 * 1024).await; // the server never reads
    let start = Instant::now();
    let mut ws = KeepAliveStream::new(client, &options(Role::Server, 200, 300, 150));
    match ws.next().await {
        Some(Err(Error::PeerUnresponsive { waited })) => assert_eq!(waited, ms(300)),
        other => panic!("expected the verdict, got {other:?}"),
    }
    assert_eq!(start.elapsed(), ms(500), "interval + timeout");
    assert!(ws.send(Message::text("late")).await.is_err());
    assert!(ws.next().await.is_none(), "ends once the machine lets go");
    assert_eq!(start.elapsed(), ms(650), "after the close window");
    assert!(matches!(ws.status().state, State::Finished { .. }));
}

#[tokio::test]
async fn two_inline_streams_keep_each_other_alive_exchange_data_and_close_cleanly() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = KeepAliveStream::accept(tcp, &options(Role::Server, 50, 200, 500))
            .await
            .unwrap();
        let mut echoed = 0;
        while let Some(item) = ws.next().await {
            match item {
                Ok(msg) => {
                    ws.send(msg).await.unwrap();
                    echoed += 1;
                }
                Err(e) => {
                    assert!(!e.is_fault(), "{e}");
                }
            }
        }
        (echoed, ws.status())
    });
    let (raw, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    let mut ws = KeepAliveStream::new(raw, &options(Role::Client, 50, 200, 500));
    for i in 0..10 {
        ws.send(Message::text(format!("m{i}"))).await.unwrap();
        let echo = tokio::time::timeout(Duration::from_secs(2), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echo, Message::text(format!("m{i}")));
        tokio::time::sleep(ms(40)).await;
    }
    let status = ws.status();
    assert_eq!(status.state, State::Open);
    assert!(status.stats.pongs_matched >= 4, "{status:?}");
    ws.close(CloseCode::NORMAL);
    match ws.next().await {
        Some(Err(Error::Closed {
            code: Some(1000), ..
        })) => {}
        other => panic!("expected our close, got {other:?}"),
    }
    assert!(ws.next().await.is_none());
    let (echoed, server_status) = server.await.unwrap();
    assert_eq!(echoed, 10);
    assert!(server_status.stats.pongs_matched >= 4, "{server_status:?}");
    assert!(matches!(server_status.state, State::Finished { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_flooding_data_without_pongs_still_gets_a_verdict_under_pong_only_liveness() {
    // The peer writes as fast as it can and never reads, so it never answers a ping:
    // data is readable at every check, which must not postpone the verdict.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let flooder = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let msg = Message::text("x".repeat(512));
        while ws.send(msg.clone()).await.is_ok() {}
    });
    let (raw, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .unwrap();
    let config = heartbeat_core::Config::builder()
        .ping_interval(ms(100))
        .pong_timeout(ms(200))
        .liveness(heartbeat_core::Liveness::PongOnly)
        .build()
        .unwrap();
    let start = Instant::now();
    let mut ws = KeepAliveStream::new(raw, &heartbeat_tokio::Options::new(config));
    let verdict = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return e,
                None => panic!("ended without a verdict"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no verdict: {:?}", ws.status()));
    assert!(
        matches!(verdict, Error::PeerUnresponsive { .. }),
        "{verdict:?}"
    );
    // Under a flood the verdict may be late by a stall allowance and the lag the
    // flood itself causes; what must never happen is no verdict at all.
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "dead after {:?}",
        start.elapsed()
    );
    flooder.abort();
}
