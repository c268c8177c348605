//! `accept_stream`: lean `KeepAliveStream`s in a `Registry` (no driver task, no
//! channel), on real loopback sockets.

mod common;

use std::time::{Duration, Instant};

use common::{ms, options};
use futures_util::StreamExt;
use heartbeat_core::Role;
use heartbeat_tokio::tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{accept_stream, Options, Registry};
use tokio::net::{TcpListener, TcpStream};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A server whose connections are registered streams, each polled (and so
/// heartbeating) in its own task until it ends. Returns the `ws://` URL.
async fn stream_server(options: Options, registry: Registry) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (options, registry) = (options.clone(), registry.clone());
            tokio::spawn(async move {
                let Ok((_id, mut ws)) = accept_stream(tcp, &options, &registry).await else {
                    return;
                };
                while ws.next().await.is_some() {}
            });
        }
    });
    url
}

async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(ms(5)).await;
    }
    start.elapsed()
}

/// The next text message a client reads (its pings are answered meanwhile).
async fn next_text(ws: &mut Client) -> String {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
            Some(Ok(_)) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_broadcast_reaches_every_registered_stream_at_once_not_at_its_next_ping() {
    common::init_tracing();
    let registry = Registry::new();
    // Pings every 10 s: a stream only woken by its timer would deliver late.
    let url = stream_server(options(Role::Server, 10_000, 10_000, 500), registry.clone()).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(connect_async(url.as_str()).await.unwrap().0);
    }
    wait_until(ms(2000), || registry.len() == 3).await;
    for id in registry.ids() {
        assert!(registry.peer(id).is_some(), "a TCP peer's address is known");
        assert!(
            registry.status(id).is_none(),
            "a stream's status is the stream's"
        );
        assert!(
            registry.sender(id).is_none(),
            "a stream has no driver to send through"
        );
    }
    // The streams have gone idle: their tasks wait on the socket and a 10 s timer.
    tokio::time::sleep(ms(100)).await;

    let started = Instant::now();
    let report = registry.broadcast(&Message::text("hello"));
    assert_eq!((report.queued, report.dropped, report.gone), (3, 0, 0));
    for ws in &mut clients {
        let got = tokio::time::timeout(ms(1000), next_text(ws))
            .await
            .expect("the broadcast wakes the stream's task");
        assert_eq!(got, "hello");
    }
    eprintln!("3 clients had the broadcast after {:?}", started.elapsed());
}

#[tokio::test]
async fn a_silent_client_leaves_the_registry_at_detection_time_not_after_the_close() {
    common::init_tracing();
    let registry = Registry::new();
    // A 3 s close window: a stream that left the registry only when it ended
    // would stay there long after the verdict.
    let url = stream_server(options(Role::Server, 200, 300, 3000), registry.clone()).await;

    let mut healthy = connect_async(url.as_str()).await.unwrap().0;
    wait_until(ms(2000), || registry.len() == 1).await;
    let healthy_id = registry.ids()[0];
    let reader = tokio::spawn(async move {
        // Reading answers the server's pings (tungstenite queues each pong).
        let mut texts = 0;
        while let Some(Ok(msg)) = healthy.next().await {
            texts += usize::from(msg.is_text());
        }
        texts
    });
    let (_silent, _) = connect_async(url.as_str()).await.unwrap(); // never read again
    wait_until(ms(2000), || registry.len() == 2).await;
    let silent_id = *registry.ids().iter().find(|&&id| id != healthy_id).unwrap();
    let joined = Instant::now();

    // Dead within interval + timeout (+ slack for a busy machine), long before its
    // close window ends.
    let waited = wait_until(ms(1500), || !registry.contains(silent_id)).await;
    eprintln!(
        "silent client removed {:?} after it joined",
        joined.elapsed()
    );
    assert!(waited < ms(1500));
    assert!(registry.contains(healthy_id), "the healthy client stays");
    assert_eq!(registry.broadcast(&Message::text("still here")).queued, 1);
    assert!(!reader.is_finished());
}

#[tokio::test]
async fn a_lean_client_stream_heartbeats_with_a_registered_server_stream() {
    common::init_tracing();
    let registry = Registry::new();
    let url = stream_server(options(Role::Server, 100, 500, 500), registry.clone()).await;
    let client_options = options(Role::Client, 100, 500, 500);
    let mut ws = heartbeat_tokio::KeepAliveStream::connect(&url, &client_options)
        .await
        .unwrap();
    wait_until(ms(2000), || registry.len() == 1).await;
    // Poll it for a few intervals: both ends ping, and both see pongs.
    let _ = tokio::time::timeout(ms(450), ws.next()).await;
    let status = ws.status();
    assert!(status.stats.pongs_matched >= 2, "{status:?}");
    assert!(status.rtt.last.is_some());
    assert_eq!(status.stats.pong_timeouts, 0);
}

#[tokio::test]
async fn a_lean_client_gives_up_an_unanswered_upgrade_at_the_connect_timeout() {
    // Accepts TCP, never answers the upgrade.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let _held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let opts = Options::new(common::config_connect(Role::Client, 100, 100, 100, 300));
    let started = Instant::now();
    let result = heartbeat_tokio::KeepAliveStream::connect(&url, &opts).await;
    let took = started.elapsed();
    assert!(
        matches!(result, Err(heartbeat_tokio::Error::ConnectTimeout(t)) if t == ms(300)),
        "{:?}",
        result.err()
    );
    assert!(took >= ms(300) && took < ms(1300), "{took:?}");
}
