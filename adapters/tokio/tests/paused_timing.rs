//! Exact timing on tokio's paused clock.
//!
//! These run over an in-memory pipe (`tokio::io::duplex`), not TCP: with a paused
//! clock tokio auto-advances time whenever the runtime parks, and a loopback socket
//! wakes its reader through the I/O driver *during* such a park, so time can jump
//! while a frame is in flight. An in-memory pipe wakes the reader directly, so every
//! instant below is exact to the nanosecond. Real-socket behaviour is covered by
//! `loopback.rs` and `python.rs`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{backoff, duplex_pair, ms, options};
use futures_util::StreamExt;
use heartbeat_core::{Config, Role, State};
use heartbeat_tokio::tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use heartbeat_tokio::tokio_tungstenite::WebSocketStream;
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{connect_with, Error, KeepAlive, Options};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

/// A raw tungstenite peer that reads (and so auto-answers pings) and records when
/// each ping arrived, relative to `start`.
fn record_pings(
    mut ws: heartbeat_tokio::tokio_tungstenite::WebSocketStream<tokio::io::DuplexStream>,
    start: Instant,
) -> Arc<Mutex<Vec<Duration>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Ping(_) = msg {
                log.lock().unwrap().push(start.elapsed());
            }
        }
    });
    seen
}

#[tokio::test(start_paused = true)]
async fn pings_leave_exactly_every_interval() {
    let start = Instant::now();
    let (client, server) = duplex_pair(64 * 1024).await;
    let conn = KeepAlive::new(client, &options(Role::Client, 200, 300, 500));
    let pings = record_pings(server, start);

    tokio::time::sleep(ms(1050)).await;

    assert_eq!(
        *pings.lock().unwrap(),
        [ms(200), ms(400), ms(600), ms(800), ms(1000)]
    );
    let status = conn.status();
    assert_eq!(status.state, State::Open);
    assert_eq!(status.stats.pings_sent, 5);
    assert_eq!(status.stats.pongs_matched, 5);
    assert_eq!(status.rtt.samples, 5);
    assert_eq!(
        status.rtt.last,
        Some(Duration::ZERO),
        "paused clock: no time passes in flight"
    );
}

/// The status is stored by the driver, not published on a channel: handles read
/// it current without asking for a watch, and a watch asked for mid-life follows
/// the connection to its verdict.
#[tokio::test(start_paused = true)]
async fn status_is_current_without_a_watch_and_a_late_watch_sees_the_verdict() {
    let start = Instant::now();
    let (client, server) = duplex_pair(64 * 1024).await;
    let conn = KeepAlive::new(client, &options(Role::Client, 200, 300, 500));
    let (go_silent, silent) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut server = server;
        tokio::select! {
            _ = async { while let Some(Ok(_)) = server.next().await {} } => {} // answers pings
            _ = silent => core::future::pending::<()>().await, // holds the pipe, reads nothing
        }
    });

    tokio::time::sleep(ms(1050)).await;
    let mut watch = conn.watch_status(); // asked for late
    let (tx, rx) = conn.split();
    for status in [tx.status(), rx.status()] {
        assert_eq!(status.state, State::Open);
        assert_eq!(
            (status.stats.pings_sent, status.stats.pongs_matched),
            (5, 5)
        );
        assert_eq!(status.rtt.samples, 5);
        assert_eq!(status.local_lag, Duration::ZERO);
    }

    go_silent.send(()).unwrap(); // after the ping of 1000 ms was answered
    let over = watch.wait_for(|s| s.is_over()).await.unwrap().clone();
    assert_eq!(start.elapsed(), ms(1500), "the ping at 1200 ms + 300 ms");
    assert!(
        over.state.reason().is_some_and(|r| r.is_fault()),
        "{over:?}"
    );
    assert_eq!(over.stats.pong_timeouts, 1);
    assert_eq!(tx.status(), rx.status());
    assert!(tx.status().is_over());
}

#[tokio::test(start_paused = true)]
async fn silent_peer_is_dead_exactly_at_interval_plus_timeout() {
    let start = Instant::now();
    let (client, _silent_server) = duplex_pair(64 * 1024).await; // never read: no pongs
    let conn = KeepAlive::new(client, &options(Role::Client, 200, 300, 500));

    let err = conn.dead().await;

    assert_eq!(start.elapsed(), ms(500), "ping at 200 ms + 300 ms timeout");
    assert!(
        matches!(err, Error::PeerUnresponsive { waited } if waited == ms(300)),
        "{err:?}"
    );
    let (tx, mut rx) = conn.split();
    // Delivered at detection time, not a close timeout later.
    assert!(matches!(
        rx.recv().await,
        Err(Error::PeerUnresponsive { .. })
    ));
    assert_eq!(start.elapsed(), ms(500));
    assert!(matches!(
        tx.send(Message::text("late")).await,
        Err(Error::PeerUnresponsive { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn pong_timer_starts_when_the_ping_is_flushed_not_when_emitted() {
    // A 1 KiB pipe: the application's 32 KiB message fills it, and the ping emitted
    // at 200 ms waits behind it until the peer drains the pipe at 450 ms. The peer
    // answers at 600 ms. Timed from emission the pong was due at 500 ms (a false
    // death); timed from the flush it is due at 750 ms: alive, with RTT 150 ms.
    let start = Instant::now();
    let (a, mut raw_peer) = tokio::io::duplex(1024);
    let client = WebSocketStream::from_raw_socket(a, WsRole::Client, None).await;
    let conn = KeepAlive::new(client, &options(Role::Client, 200, 300, 500));
    conn.send(Message::binary(vec![7u8; 32 * 1024]))
        .await
        .unwrap();

    tokio::time::sleep_until(start + ms(450)).await;
    // 32 KiB data frame (8-byte masked header) + ping frame (2 + 4 mask + 8 payload).
    let mut wire = vec![0u8; 8 + 32 * 1024 + 14];
    raw_peer.read_exact(&mut wire).await.unwrap();
    assert_eq!(
        wire[8 + 32 * 1024] & 0x0f,
        0x9,
        "the ping frame follows the data"
    );

    tokio::time::sleep_until(start + ms(600)).await;
    let mut peer = WebSocketStream::from_partially_read(raw_peer, wire, WsRole::Server, None).await;
    tokio::spawn(async move { while let Some(Ok(_)) = peer.next().await {} });

    tokio::time::sleep_until(start + ms(700)).await;
    let status = conn.status();
    assert_eq!(
        status.state,
        State::Open,
        "no death at the emission-based 500 ms"
    );
    assert_eq!(status.stats.pong_timeouts, 0);
    // Samples: 150 ms (flushed at 450, answered at 600), then 0 ms for the ping sent
    // at 600 and answered at once. Had the timer run from emission the first would
    // be 400 ms. RFC 6298: SRTT = 150 * 7/8 + 0/8.
    assert_eq!(status.rtt.samples, 2);
    assert_eq!(status.rtt.smoothed, Some(Duration::from_micros(131_250)));
}

#[tokio::test(start_paused = true)]
async fn reconnect_backoff_follows_the_machine_exactly() {
    // Every attempt fails at once; the machine's deterministic backoff (100 ms x2,
    // capped at 400 ms, no jitter, 5 attempts) is the only thing spacing them.
    let start = Instant::now();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let log = attempts.clone();
    let config = Config::builder()
        .ping_interval(ms(200))
        .pong_timeout(ms(300))
        .backoff(backoff(100, 400, Some(5)))
        .build()
        .unwrap();
    let mut conns = connect_with(
        move || {
            log.lock().unwrap().push(start.elapsed());
            async {
                Err::<heartbeat_tokio::tokio_tungstenite::WebSocketStream<tokio::io::DuplexStream>, _>(
                    Error::ConnectTimeout(ms(0)),
                )
            }
        },
        Options::new(config).seed(1),
    );

    assert!(conns.next().await.is_none(), "gives up after max_attempts");
    assert_eq!(
        *attempts.lock().unwrap(),
        [ms(0), ms(100), ms(300), ms(700), ms(1100), ms(1500)]
    );
    assert!(matches!(conns.status().state, State::Finished { .. }));
    assert_eq!(conns.status().stats.reconnects, 5);
}

#[tokio::test(start_paused = true)]
async fn dead_connection_is_replaced_after_the_backoff_alone_not_the_close_timeout() {
    // First connection: a silent peer. Second: a peer that answers.
    let start = Instant::now();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let log = attempts.clone();
    let mut n = 0;
    let mut conns = connect_with(
        move || {
            n += 1;
            let first = n == 1;
            log.lock().unwrap().push(start.elapsed());
            async move {
                let (client, mut server) = duplex_pair(64 * 1024).await;
                tokio::spawn(async move {
                    if first {
                        std::future::pending::<()>().await; // hold, never read
                    }
                    while let Some(Ok(_)) = server.next().await {}
                });
                Ok(client)
            }
        },
        // A 10 s close timeout: a dead peer will never answer our close, and its
        // close must not delay the next connection.
        options(Role::Client, 200, 300, 10_000),
    );

    let first = conns.next().await.unwrap();
    let err = first.dead().await;
    assert!(matches!(err, Error::PeerUnresponsive { .. }), "{err:?}");
    assert_eq!(start.elapsed(), ms(500));

    let second = conns.next().await.unwrap();
    // Dead at 500, then the first backoff step of 100 ms: the second attempt
    // starts at 600 ms, while the dead connection's close drains in the background.
    assert_eq!(*attempts.lock().unwrap(), [ms(0), ms(600)]);
    tokio::time::sleep(ms(1000)).await;
    assert_eq!(second.status().state, State::Open);
    assert_eq!(conns.status().stats.connects, 2);
}

#[tokio::test(start_paused = true)]
async fn the_observer_sees_every_step_in_order_with_its_time() {
    // First connection answers twice then goes silent; the second answers.
    use heartbeat_core::DeathReason;
    use heartbeat_tokio::Event;
    let start = Instant::now();
    let seen: Arc<Mutex<Vec<(Duration, String)>>> = Arc::default();
    let log = seen.clone();
    let mut n = 0;
    let options = options(Role::Client, 200, 300, 150).observe(move |e: &Event| {
        let what = match e {
            Event::Connected { attempt } => format!("connected {attempt}"),
            Event::PingSent { seq } => format!("ping {seq}"),
            Event::Pong { seq, rtt } => format!("pong {seq} {rtt:?}"),
            Event::Dead {
                reason: DeathReason::PongTimeout { waited },
                ..
            } => format!("dead {waited:?}"),
            Event::Closed { code } => format!("close {code}"),
            Event::Reconnecting { after, attempt } => format!("reconnect {after:?} {attempt}"),
            other => format!("{other:?}"),
        };
        log.lock().unwrap().push((start.elapsed(), what));
    });
    let mut conns = connect_with(
        move || {
            n += 1;
            let first = n == 1;
            async move {
                let (client, mut server) = duplex_pair(64 * 1024).await;
                tokio::spawn(async move {
                    let mut answered = 0;
                    while let Some(Ok(msg)) = server.next().await {
                        if first && matches!(msg, Message::Ping(_)) {
                            answered += 1;
                            if answered == 2 {
                                std::future::pending::<()>().await; // hang
                            }
                        }
                    }
                });
                Ok(client)
            }
        },
        options,
    );
    let first = conns.next().await.unwrap();
    first.dead().await;
    let _second = conns.next().await.unwrap();
    tokio::time::sleep(ms(250)).await;
    let seen = seen.lock().unwrap().clone();
    let expected: Vec<(Duration, String)> = [
        (0, "connected 0"),
        (200, "ping 0"),
        (200, "pong 0 0ns"),
        (400, "ping 1"),
        // The peer hangs while reading ping 1: tungstenite never answers it.
        (700, "dead 300ms"),
        // The next attempt is scheduled at the verdict: backoff alone.
        (700, "reconnect 100ms 1"),
        (700, "close 1011"),
        (800, "connected 1"),
        (1000, "ping 2"),
        (1000, "pong 2 0ns"),
    ]
    .iter()
    .map(|&(t, s)| (ms(t), s.to_string()))
    .collect();
    assert_eq!(seen, expected);
}

#[tokio::test(start_paused = true)]
async fn sends_beyond_the_drivers_queue_are_not_held_until_the_next_timer() {
    // 20 sends to a peer that reads but never writes, with pings 20 s apart: no
    // read or timer wakes the driver, so the commands alone must keep it moving.
    let (client, mut server) = duplex_pair(1 << 20).await;
    tokio::spawn(async move { while let Some(Ok(_)) = server.next().await {} });
    let start = Instant::now();
    let conn = KeepAlive::new(client, &options(Role::Client, 20_000, 20_000, 150));
    for i in 0..20 {
        conn.send(Message::text(format!("m{i}"))).await.unwrap();
    }
    conn.close(heartbeat_core::CloseCode::NORMAL).await.unwrap();
    assert!(
        start.elapsed() < ms(1000),
        "sends waited {:?} for a timer",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_send_blocked_by_a_hung_peer_ends_with_the_verdict() {
    // The peer never reads: a large send fills the pipe and can never flush. The
    // heartbeat keeps running inside the send and ends it with the verdict.
    let (client, _server) = duplex_pair(1024).await;
    let start = Instant::now();
    let mut ws =
        heartbeat_tokio::KeepAliveStream::new(client, &options(Role::Client, 200, 300, 150));
    use futures_util::SinkExt;
    let sent = tokio::time::timeout(ms(5000), ws.send(Message::binary(vec![0u8; 64 * 1024])))
        .await
        .expect("the send ends");
    assert!(
        matches!(sent, Err(Error::PeerUnresponsive { .. })),
        "{sent:?}"
    );
    assert_eq!(start.elapsed(), ms(500), "interval + timeout");
    // The stream then reports the same verdict and ends; one connection never
    // reconnects, whatever role its config names.
    assert!(matches!(
        ws.next().await,
        Some(Err(Error::PeerUnresponsive { .. }))
    ));
    assert!(ws.next().await.is_none());
    assert!(matches!(ws.status().state, State::Finished { .. }));
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_after_the_peers_clean_close_is_announced() {
    use heartbeat_tokio::Event;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let options = options(Role::Client, 200, 300, 150).observe(move |e: &Event| {
        if let Event::Reconnecting { after, attempt } = e {
            log.lock()
                .unwrap()
                .push(format!("reconnect {after:?} {attempt}"));
        }
    });
    let mut n = 0;
    let mut conns = connect_with(
        move || {
            n += 1;
            let first = n == 1;
            async move {
                let (client, mut server) = duplex_pair(64 * 1024).await;
                tokio::spawn(async move {
                    if first {
                        tokio::time::sleep(ms(50)).await;
                        let _ = server.close(None).await; // a clean close by the peer
                    }
                    while let Some(Ok(_)) = server.next().await {}
                });
                Ok(client)
            }
        },
        options,
    );
    let first = conns.next().await.unwrap();
    let _ = first.dead().await;
    let _second = conns.next().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["reconnect 100ms 1"]);
}
