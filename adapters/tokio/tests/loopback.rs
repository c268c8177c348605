//! Our client against our server on real loopback sockets: data, closes, a silent
//! half-open link, a ping flood, and our own stalls.

mod common;

use std::time::{Duration, Instant};

use common::{echo_server, ms, options};
use futures_util::{SinkExt, StreamExt};
use heartbeat_core::{CloseCode, Health, PingFlood, Role, State};
use heartbeat_test_support::SilentProxy;
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{connect, Error, Initiator, Options, Registry};

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

#[tokio::test]
async fn client_and_server_exchange_data_with_live_rtt() {
    common::init_tracing();
    let registry = Registry::new();
    let url = echo_server(options(Role::Server, 100, 300, 300), registry.clone()).await;
    let mut conns = connect(url, options(Role::Client, 100, 300, 300)).expect("a valid URL");
    let conn = conns.next().await.unwrap();
    let (tx, mut rx) = conn.split();

    for i in 0..20 {
        tx.send(Message::text(format!("hello {i}"))).await.unwrap();
        assert_eq!(
            rx.recv().await.unwrap(),
            Message::text(format!("hello {i}"))
        );
        tokio::time::sleep(ms(20)).await;
    }
    tx.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), Message::binary(vec![1, 2, 3]));

    let status = tx.status();
    assert_eq!(status.state, State::Open);
    assert_eq!(status.health, Health::Healthy);
    assert!(status.rtt.samples >= 2, "{status:?}");
    assert!(
        status.rtt.smoothed.unwrap() < ms(50),
        "loopback RTT with TCP_NODELAY"
    );
    assert_eq!(registry.len(), 1);
    let id = registry.ids()[0];
    let server_side = registry.status(id).unwrap();
    assert!(server_side.stats.pings_sent >= 2 && server_side.stats.pings_received >= 2);
    assert_eq!(server_side.stats.ignored_calls, 0, "{server_side:?}");
    assert!(registry.peer(id).unwrap().ip().is_loopback());
}

#[tokio::test]
async fn application_close_ends_both_sides_and_stops_reconnecting() {
    let registry = Registry::new();
    let url = echo_server(options(Role::Server, 100, 300, 300), registry.clone()).await;
    let closes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = closes.clone();
    let observed = options(Role::Client, 100, 300, 300).observe(move |e| {
        if let heartbeat_tokio::Event::Closed { code } = e {
            seen.lock().unwrap().push(*code);
        }
    });
    let mut conns = connect(url, observed).expect("a valid URL");
    let (tx, mut rx) = conns.next().await.unwrap().split();
    wait_until(ms(2000), || registry.len() == 1).await;

    tx.close(CloseCode::NORMAL).await.unwrap();

    let err = rx.recv().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Closed {
                code: Some(1000),
                initiator: Initiator::Local,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_fault());
    assert!(
        conns.next().await.is_none(),
        "a local close never reconnects"
    );
    wait_until(ms(2000), || registry.is_empty()).await;
    assert_eq!(
        *closes.lock().unwrap(),
        [1000],
        "one close event per close, though the peer's reply also carried 1000"
    );
}

#[tokio::test]
async fn dropping_every_handle_closes_with_1000() {
    let registry = Registry::new();
    let url = echo_server(options(Role::Server, 100, 300, 300), registry.clone()).await;
    let mut conns = connect(url, options(Role::Client, 100, 300, 300)).expect("a valid URL");
    let conn = conns.next().await.unwrap();
    wait_until(ms(2000), || registry.len() == 1).await;
    drop(conn);
    assert!(conns.next().await.is_none());
    wait_until(ms(2000), || registry.is_empty()).await;
}

#[tokio::test]
async fn silent_half_open_link_is_detected_by_both_sides_and_others_are_undisturbed() {
    common::init_tracing();
    // interval 200 + timeout 300: each side must give its verdict within 500 ms of
    // the freeze plus scheduling slack on a shared 2-core machine.
    const BOUND: Duration = Duration::from_millis(500);
    const SLACK: Duration = Duration::from_millis(250);
    let registry = Registry::new();
    let url = echo_server(options(Role::Server, 200, 300, 200), registry.clone()).await;
    let server_addr: std::net::SocketAddr = url.trim_start_matches("ws://").parse().unwrap();
    let proxy = SilentProxy::start(server_addr).unwrap();

    let mut bystander_conns =
        connect(url.clone(), options(Role::Client, 200, 300, 200)).expect("a valid URL");
    let bystander = bystander_conns.next().await.unwrap();
    let mut conns = connect(
        format!("ws://{}", proxy.addr()),
        options(Role::Client, 200, 300, 200),
    )
    .expect("a valid URL");
    let victim = conns.next().await.unwrap();
    wait_until(ms(2000), || registry.len() == 2).await;
    tokio::time::sleep(ms(300)).await; // a few healthy round trips first
    assert_eq!(victim.status().health, Health::Healthy);

    let frozen_at = Instant::now();
    proxy.set_connection_silent(0, true);
    let client_seen = tokio::spawn({
        let victim = victim.sender();
        async move { (victim.dead().await, frozen_at.elapsed()) }
    });
    let server_gone = wait_until(BOUND + SLACK + ms(500), || registry.len() == 1).await;
    let (err, client_gone) = client_seen.await.unwrap();
    eprintln!("half-open: client detected after {client_gone:?}, server after {server_gone:?}");
    assert!(matches!(err, Error::PeerUnresponsive { .. }), "{err:?}");
    assert!(client_gone <= BOUND + SLACK, "client took {client_gone:?}");
    assert!(server_gone <= BOUND + SLACK, "server took {server_gone:?}");

    // The bystander never noticed.
    let status = bystander.status();
    assert_eq!(status.state, State::Open);
    assert_eq!(status.stats.pong_timeouts, 0);
    bystander.send(Message::text("still here")).await.unwrap();
    let mut bystander = bystander;
    assert_eq!(bystander.recv().await.unwrap(), Message::text("still here"));

    // The victim reconnects through the proxy on a fresh (unfrozen) connection.
    let mut again = tokio::time::timeout(ms(3000), conns.next())
        .await
        .unwrap()
        .unwrap();
    again.send(Message::text("back")).await.unwrap();
    assert_eq!(again.recv().await.unwrap(), Message::text("back"));
    assert_eq!(proxy.connections(), 2);
    assert_eq!(conns.status().stats.connects, 2);
}

#[tokio::test]
async fn ping_flood_is_answered_within_budget_then_closed_with_1008() {
    let registry = Registry::new();
    let mut server_opts = options(Role::Server, 1000, 1000, 300);
    server_opts.heartbeat = heartbeat_core::Config::builder()
        .role(Role::Server)
        .ping_interval(ms(1000))
        .pong_timeout(ms(1000))
        .close_timeout(ms(300))
        .ping_flood(Some(PingFlood {
            max_pings: 5,
            window: ms(1000),
            max_strikes: 0,
        }))
        .build()
        .unwrap();
    let url = echo_server(server_opts, registry.clone()).await;
    // A raw tungstenite client: no heartbeat of its own, just pings.
    let (mut ws, _) = heartbeat_tokio::tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    wait_until(ms(2000), || registry.len() == 1).await;

    // Within budget: every ping is answered.
    for i in 0u8..5 {
        ws.send(Message::Ping(vec![i].into())).await.unwrap();
        loop {
            match ws.next().await.unwrap().unwrap() {
                Message::Pong(p) => {
                    assert_eq!(&p[..], &[i]);
                    break;
                }
                Message::Ping(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // Over budget: a burst, then the machine's verdict.
    for i in 5u8..50 {
        if ws.send(Message::Ping(vec![i].into())).await.is_err() {
            break;
        }
    }
    let close = tokio::time::timeout(ms(2000), async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Close(frame) = msg {
                return frame;
            }
        }
        None
    })
    .await
    .expect("close within 2 s")
    .expect("a close frame");
    assert_eq!(u16::from(close.code), 1008);
    wait_until(ms(1000), || registry.is_empty()).await;
}

#[tokio::test]
async fn our_own_stall_is_not_a_false_death() {
    common::init_tracing();
    // The server runs on its own runtime thread, so it keeps answering while this
    // test's (single-threaded) runtime is blocked.
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let url = echo_server(options(Role::Server, 1000, 1000, 300), Registry::new()).await;
            url_tx.send(url).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let url = url_rx.recv().unwrap();
    let mut opts: Options = options(Role::Client, 100, 150, 300);
    opts.heartbeat = heartbeat_core::Config::builder()
        .ping_interval(ms(100))
        .pong_timeout(ms(150))
        .stall_threshold(ms(50))
        .build()
        .unwrap();
    let mut conns = connect(url, opts).expect("a valid URL");
    let mut conn = conns.next().await.unwrap();
    tokio::time::sleep(ms(300)).await;
    assert_eq!(conn.status().health, Health::Healthy);

    // Block the only runtime thread for 4x (interval + timeout).
    std::thread::sleep(ms(1000));
    tokio::time::sleep(ms(500)).await;

    let status = conn.status();
    assert_eq!(status.state, State::Open, "{status:?}");
    assert_eq!(status.stats.pong_timeouts, 0);
    assert!(
        status.stats.missed_deadlines >= 1,
        "the stall was noticed: {status:?}"
    );
    assert_eq!(status.health, Health::Healthy);
    conn.send(Message::text("after the stall")).await.unwrap();
    assert_eq!(conn.recv().await.unwrap(), Message::text("after the stall"));
}

#[tokio::test]
async fn broadcast_never_waits_on_a_stalled_client_which_the_heartbeat_then_removes() {
    common::init_tracing();
    let registry = Registry::new();
    let mut server_opts = options(Role::Server, 200, 300, 200);
    server_opts.outbound_capacity = 16;
    let url = echo_server(server_opts, registry.clone()).await;

    // A healthy client that keeps reading, and a raw one that never reads again.
    let mut conns =
        connect(url.clone(), options(Role::Client, 200, 300, 200)).expect("a valid URL");
    let (_healthy_tx, mut healthy_rx) = conns.next().await.unwrap().split();
    let received = tokio::spawn(async move {
        let mut n = 0;
        while let Ok(Message::Binary(_)) = healthy_rx.recv().await {
            n += 1;
            if n == 200 {
                break;
            }
        }
        n
    });
    wait_until(ms(2000), || registry.len() == 1).await;
    let healthy_id = registry.ids()[0];
    let (_stalled, _) = heartbeat_tokio::tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    wait_until(ms(2000), || registry.len() == 2).await;
    let stalled_id = *registry.ids().iter().find(|&&id| id != healthy_id).unwrap();

    let big = Message::binary(vec![0u8; 64 * 1024]);
    let started = Instant::now();
    let mut dropped = 0;
    for _ in 0..200 {
        let report = registry.broadcast(&big);
        dropped += report.dropped;
        tokio::task::yield_now().await; // let the drivers write
        if report.dropped > 0 {
            continue;
        }
    }
    let spent = started.elapsed();
    eprintln!("200 broadcasts of 64 KiB took {spent:?}; {dropped} dropped");
    assert!(spent < ms(1000), "broadcast must not wait: {spent:?}");
    assert!(registry.dropped(stalled_id).unwrap_or(0) > 0 || !registry.contains(stalled_id));

    // The stalled client's socket buffers are full, so its pings cannot leave: the
    // pong timer (from emission) ends it within the bound; the healthy one stays.
    wait_until(ms(500) + ms(500), || !registry.contains(stalled_id)).await;
    assert!(registry.contains(healthy_id));
    assert_eq!(registry.status(healthy_id).unwrap().stats.pong_timeouts, 0);
    let got = received.await.unwrap();
    eprintln!("healthy client received {got} of 200");
    assert!(got > 0);
}

#[tokio::test]
async fn json_codec_works_on_our_client_and_our_server() {
    let registry = Registry::new();
    let server_opts = options(Role::Server, 100, 300, 300).codec(heartbeat_tokio::JsonCodec);
    let url = echo_server(server_opts, registry.clone()).await;
    let mut conns = connect(
        url,
        options(Role::Client, 100, 300, 300).codec(heartbeat_tokio::JsonCodec),
    )
    .expect("a valid URL");
    let mut conn = conns.next().await.unwrap();
    for i in 0..10 {
        conn.send(Message::text(format!("{{\"type\":\"chat\",\"n\":{i}}}")))
            .await
            .unwrap();
        let echo = conn.recv().await.unwrap();
        assert_eq!(
            echo,
            Message::text(format!("{{\"type\":\"chat\",\"n\":{i}}}"))
        );
        tokio::time::sleep(ms(50)).await;
    }
    let client = conn.status();
    let server = registry.status(registry.ids()[0]).unwrap();
    assert!(client.stats.pongs_matched >= 3 && server.stats.pongs_matched >= 3);
    assert!(client.stats.pings_received >= 3 && server.stats.pings_received >= 3);
}

#[tokio::test]
async fn a_pong_that_arrived_during_our_stall_counts_before_the_expired_deadline() {
    // A blocking peer on its own thread answers our first ping 250 ms late (at about
    // 450 ms; the pong is due at 500 ms). Meanwhile this runtime's only thread is
    // blocked from 400 to 600 ms, so when it resumes the pong is readable *and* the
    // deadline has expired, both at once. Input goes first: alive. (The lateness,
    // 100 ms, is under the 1 s stall threshold, so the machine would convict.)
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_nodelay(true).unwrap();
        let mut ws = heartbeat_tokio::tungstenite::accept(tcp).unwrap();
        let mut first = true;
        // read() queues the pong; it leaves on the next flush or read.
        while let Ok(msg) = ws.read() {
            if msg.is_ping() && first {
                first = false;
                std::thread::sleep(ms(250));
                let _ = ws.flush();
            }
        }
    });
    let mut conns =
        connect(format!("ws://{addr}"), options(Role::Client, 200, 300, 300)).expect("a valid URL");
    let conn = conns.next().await.unwrap();
    tokio::time::sleep(ms(400)).await;
    std::thread::sleep(ms(200)); // block the runtime across the pong and the deadline
    tokio::time::sleep(ms(50)).await;

    let status = conn.status();
    assert_eq!(status.state, State::Open, "{status:?}");
    assert_eq!(status.stats.pong_timeouts, 0);
    assert!(status.rtt.samples >= 1);
}
