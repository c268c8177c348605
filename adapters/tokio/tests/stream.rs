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
