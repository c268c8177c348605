//! Interoperability with Python `websockets` 17 as the reference peer, including a
//! peer that hangs (SIGSTOP: its kernel keeps ACKing, so only heartbeats notice).
//!
//! Python is required under CI (CI=true fails without it); locally a missing
//! `websockets` skips these tests with a message.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ms, off_runtime, options};
use heartbeat_core::{Config, Health, Liveness, Role, State};
use heartbeat_test_support::{require_websockets, PyPeer, ServerOptions};
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{connect, Error, JsonCodec, Options, Registry};
use tokio::net::TcpListener;

/// Slack on top of `interval + timeout` for a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(250);

/// A Python echo server running `options`, and its URL.
async fn python_server(options: ServerOptions) -> (PyPeer, String) {
    let peer = off_runtime(move || PyPeer::server(&options))
        .await
        .expect("python server");
    let url = peer.url().expect("a server has an address");
    (peer, url)
}

/// A Python client connected to `url`, echoing, with no keepalive of its own.
async fn python_client(url: &str) -> PyPeer {
    let url = url.to_owned();
    off_runtime(move || PyPeer::clients(&url, 1))
        .await
        .expect("python client")
}

#[tokio::test]
async fn python_server_pinging_every_200ms_and_our_client_exchange_data_without_spurious_close() {
    if !require_websockets(
        "python_server_pinging_every_200ms_and_our_client_exchange_data_without_spurious_close",
    ) {
        return;
    }
    common::init_tracing();
    let (_py, url) = python_server(ServerOptions::default().keepalive(ms(200), ms(500))).await;
    let mut conns = connect(url, options(Role::Client, 300, 500, 500)).expect("a valid URL");
    let mut conn = conns.next().await.unwrap();

    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < ms(3000) {
        conn.send(Message::text(format!("msg {i}"))).await.unwrap();
        let echo = tokio::time::timeout(ms(1000), conn.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(echo, Message::text(format!("msg {i}")));
        i += 1;
        tokio::time::sleep(ms(100)).await;
    }

    let status = conn.status();
    assert_eq!(status.state, State::Open, "{status:?}");
    assert_eq!(status.stats.pong_timeouts, 0);
    assert!(
        status.stats.pings_received >= 10,
        "Python pinged us: {status:?}"
    );
    assert!(
        status.stats.pongs_matched >= 8,
        "Python answered us: {status:?}"
    );
    assert_eq!(conns.status().stats.connects, 1, "no reconnect happened");
}

#[tokio::test]
async fn stopped_python_server_is_detected_within_bound_then_reconnected_after_sigcont() {
    if !require_websockets(
        "stopped_python_server_is_detected_within_bound_then_reconnected_after_sigcont",
    ) {
        return;
    }
    common::init_tracing();
    let (py, url) = python_server(ServerOptions::default()).await; // no Python keepalive: only ours runs
    let opts = Options::new(common::config_connect(Role::Client, 200, 300, 300, 400)).seed(1);
    let mut conns = connect(url, opts).expect("a valid URL");
    let mut conn = conns.next().await.unwrap();
    conn.send(Message::text("before")).await.unwrap();
    assert_eq!(conn.recv().await.unwrap(), Message::text("before"));
    tokio::time::sleep(ms(300)).await;

    let stopped_at = Instant::now();
    py.stop();
    let err = conn.dead().await;
    let detected = stopped_at.elapsed();
    eprintln!("SIGSTOPped Python server detected after {detected:?}");
    assert!(matches!(err, Error::PeerUnresponsive { .. }), "{err:?}");
    assert!(detected <= ms(500) + SLACK, "took {detected:?}");
    assert!(matches!(
        conn.recv().await,
        Err(Error::PeerUnresponsive { .. })
    ));

    // While stopped, attempts connect at TCP level but never finish the handshake.
    tokio::time::sleep(ms(1000)).await;
    assert!(matches!(
        conns.last_connect_error(),
        Some(Error::ConnectTimeout(_))
    ));
    let resumed_at = Instant::now();
    py.resume();
    let mut again = tokio::time::timeout(ms(5000), conns.next())
        .await
        .expect("reconnected within 5 s of SIGCONT")
        .unwrap();
    eprintln!("reconnected {:?} after SIGCONT", resumed_at.elapsed());
    again.send(Message::text("after")).await.unwrap();
    assert_eq!(again.recv().await.unwrap(), Message::text("after"));
}

#[tokio::test]
async fn our_server_removes_a_stopped_python_client_within_bound_and_keeps_the_live_one() {
    if !require_websockets(
        "our_server_removes_a_stopped_python_client_within_bound_and_keeps_the_live_one",
    ) {
        return;
    }
    common::init_tracing();
    let registry = Registry::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (inbox_tx, mut inbox) = tokio::sync::mpsc::unbounded_channel();
    let opts = options(Role::Server, 200, 300, 200);
    {
        let registry = registry.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (registry, opts, inbox_tx) = (registry.clone(), opts.clone(), inbox_tx.clone());
                tokio::spawn(async move {
                    let (id, mut conn) = heartbeat_tokio::accept_tcp(tcp, &opts, &registry)
                        .await
                        .unwrap();
                    while let Ok(msg) = conn.recv().await {
                        let _ = inbox_tx.send((id, msg));
                    }
                });
            }
        });
    }

    let hung = python_client(&url).await;
    wait_for(|| registry.len() == 1).await;
    let hung_id = registry.ids()[0];
    let _live = python_client(&url).await;
    wait_for(|| registry.len() == 2).await;
    let live_id = *registry.ids().iter().find(|&&id| id != hung_id).unwrap();
    tokio::time::sleep(ms(400)).await;

    let stopped_at = Instant::now();
    hung.stop();
    wait_for(|| !registry.contains(hung_id)).await;
    let removed = stopped_at.elapsed();
    eprintln!("SIGSTOPped Python client removed from the registry after {removed:?}");
    assert!(removed <= ms(500) + SLACK, "took {removed:?}");

    // The live client is still registered, healthy, and reachable by broadcast.
    tokio::time::sleep(ms(600)).await;
    assert!(registry.contains(live_id));
    assert_eq!(registry.len(), 1);
    assert_eq!(registry.status(live_id).unwrap().health, Health::Healthy);
    let report = registry.broadcast(&Message::text("to everyone"));
    assert_eq!((report.queued, report.dropped, report.gone), (1, 0, 0));
    let (from, msg) = tokio::time::timeout(ms(2000), inbox.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((from, msg), (live_id, Message::text("to everyone")));
    hung.resume();
}

#[tokio::test]
async fn json_heartbeats_against_a_python_server_answering_and_sending_them() {
    if !require_websockets("json_heartbeats_against_a_python_server_answering_and_sending_them") {
        return;
    }
    common::init_tracing();
    let (_py, url) = python_server(ServerOptions::default().json(Some(ms(200)))).await;
    let config = Config::builder()
        .ping_interval(ms(200))
        .pong_timeout(ms(300))
        // Only our JSON pongs prove liveness, so the RTT samples below are real matches.
        .liveness(Liveness::PongOnly)
        .build()
        .unwrap();
    let mut conns =
        connect(url, Options::new(config).codec(JsonCodec).seed(1)).expect("a valid URL");
    let mut conn = conns.next().await.unwrap();

    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < ms(1500) {
        conn.send(Message::text(format!("data {i}"))).await.unwrap();
        // Heartbeat messages are consumed by the driver: only our data comes back.
        let echo = tokio::time::timeout(ms(1000), conn.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(echo, Message::text(format!("data {i}")));
        i += 1;
        tokio::time::sleep(ms(50)).await;
    }
    conn.send(Message::text("pongs?")).await.unwrap();
    let answer = conn.recv().await.unwrap();
    let n: u32 = answer
        .to_text()
        .unwrap()
        .trim_start_matches("pongs=")
        .parse()
        .unwrap();

    let status = conn.status();
    eprintln!(
        "JSON codec: {n} Python pings answered, {} of ours matched",
        status.stats.pongs_matched
    );
    assert!(n >= 4, "Python matched our JSON pongs: {n}");
    assert!(status.stats.pongs_matched >= 4, "{status:?}");
    assert!(status.stats.pings_received >= 4, "{status:?}");
    assert_eq!(status.stats.pong_timeouts, 0);
    assert_eq!(status.state, State::Open);
}

async fn wait_for(mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < ms(5000), "condition not met within 5 s");
        tokio::time::sleep(ms(2)).await;
    }
}

#[tokio::test]
async fn after_a_stopped_server_is_declared_dead_the_first_reconnect_attempt_waits_for_the_backoff_alone(
) {
    // A SIGSTOPped server will never answer our close. With close_timeout 10 s the
    // old driver waited the whole 10 s before its first attempt; now the attempt
    // follows the verdict by the backoff delay alone (100 ms here, no jitter).
    if !require_websockets("after_a_stopped_server_is_declared_dead_the_first_reconnect_attempt_waits_for_the_backoff_alone") {
        return;
    }
    common::init_tracing();
    let (py, url) = python_server(ServerOptions::default()).await;
    let events: Arc<Mutex<Vec<(Instant, &'static str)>>> = Arc::default();
    let log = events.clone();
    let config = common::config_connect(Role::Client, 200, 300, 10_000, 400);
    let opts = Options::new(config)
        .seed(1)
        .observe(move |e: &heartbeat_tokio::Event| {
            let what = match e {
                heartbeat_tokio::Event::Dead { .. } => "dead",
                heartbeat_tokio::Event::ConnectFailed { .. } => "attempt failed",
                _ => return,
            };
            log.lock().unwrap().push((Instant::now(), what));
        });
    let mut conns = connect(url, opts).expect("a valid URL");
    let conn = conns.next().await.unwrap();
    tokio::time::sleep(ms(300)).await;
    py.stop();
    let err = conn.dead().await;
    assert!(matches!(err, Error::PeerUnresponsive { .. }), "{err:?}");
    // The first attempt hangs in the upgrade (the server is stopped) until the
    // 400 ms connect timeout: it started at (failure time - 400 ms).
    tokio::time::sleep(ms(1500)).await;
    py.resume();
    let events = events.lock().unwrap().clone();
    let dead = events.iter().find(|e| e.1 == "dead").expect("a verdict").0;
    let failed = events
        .iter()
        .find(|e| e.1 == "attempt failed")
        .expect("an attempt while stopped")
        .0;
    let first_attempt = failed.duration_since(dead).saturating_sub(ms(400));
    eprintln!("verdict to first reconnect attempt: {first_attempt:?} (backoff 100 ms, close timeout 10 s)");
    assert!(
        first_attempt >= ms(90) && first_attempt <= ms(100) + SLACK,
        "first attempt {first_attempt:?} after the verdict"
    );
}
