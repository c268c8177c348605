//! The machine's connect timeout bounds every attempt: a client's TCP connect plus
//! upgrade, and a server's upgrade of an accepted socket. The driver owns no
//! handshake timer of its own; when the machine abandons the attempt it drops the
//! socket.

use std::io::{ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use heartbeat_core::{Backoff, Config, ConnectFailure, DeathReason, State};
use heartbeat_mio::{ConnId, Ctx, Driver, Handler, Options, UrlError};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Loop scheduling and the 5 ms turns of the tests.
const SLACK: Duration = Duration::from_millis(150);

#[derive(Default)]
struct Record {
    deaths: Vec<DeathReason>,
    closed: Vec<(ConnId, DeathReason, Instant)>,
}

impl Handler for Record {
    fn on_dead(&mut self, _: &mut Ctx<'_>, _: ConnId, reason: DeathReason) {
        self.deaths.push(reason);
    }
    fn on_closed(&mut self, _: &mut Ctx<'_>, id: ConnId, reason: DeathReason) {
        self.closed.push((id, reason, Instant::now()));
    }
}

fn config() -> Config {
    Config::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        // No second attempt while the test watches the first.
        .backoff(Backoff {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(30),
            ..Config::default().backoff()
        })
        .close_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Waits on a thread until `stream` reads EOF (or fails); sends when.
fn watch_for_eof(mut stream: TcpStream, tx: mpsc::Sender<Instant>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = tx.send(Instant::now());
    });
}

#[test]
fn a_server_that_never_answers_the_upgrade_is_abandoned_at_connect_timeout() {
    // Accepts TCP, reads the upgrade request, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (eof_tx, eof_rx) = mpsc::channel();
    let acceptor = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        watch_for_eof(stream, eof_tx);
        listener
    });

    let mut client = Driver::new(Options::new(config()), Record::default()).unwrap();
    let started = Instant::now();
    let id = client.connect(&format!("ws://{addr}/")).unwrap();
    let mut dropped = None;
    while dropped.is_none() && started.elapsed() < Duration::from_secs(3) {
        client.turn(Some(Duration::from_millis(5))).unwrap();
        dropped = eof_rx.try_recv().ok();
    }
    let _listener = acceptor.join().unwrap();
    let state = client.ctx().state(id);
    let stats = client.stats();
    println!("{state:?}; {stats:?}");

    let dropped = dropped.expect("the client never let go of the hung attempt") - started;
    println!("hung upgrade abandoned after {dropped:?} (connect_timeout {CONNECT_TIMEOUT:?})");
    assert!(dropped >= CONNECT_TIMEOUT, "{dropped:?}");
    assert!(dropped < CONNECT_TIMEOUT + SLACK, "{dropped:?}");
    match state {
        Some(State::Reconnecting {
            reason: DeathReason::ConnectFailed(ConnectFailure::TimedOut { waited }),
            attempt: 1,
            ..
        }) => assert!(waited >= CONNECT_TIMEOUT && waited < CONNECT_TIMEOUT + SLACK),
        other => panic!("expected a timed-out attempt and a scheduled retry: {other:?}"),
    }
    assert_eq!(stats.handshakes_failed, 1);
    assert_eq!(stats.connects_started, 1);
    assert!(client.handler().deaths.is_empty(), "never opened: no death");
}

#[test]
fn a_client_that_never_sends_the_upgrade_is_dropped_at_connect_timeout() {
    let mut server = Driver::new(Options::new(config()), Record::default()).unwrap();
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let silent = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    let (eof_tx, eof_rx) = mpsc::channel();
    watch_for_eof(silent.try_clone().unwrap(), eof_tx);
    while server.handler().closed.is_empty() && started.elapsed() < Duration::from_secs(3) {
        server.turn(Some(Duration::from_millis(5))).unwrap();
    }
    let eof = eof_rx.recv_timeout(Duration::from_secs(1));
    let r = server.handler();
    assert_eq!(r.closed.len(), 1, "the hung accept was never removed");
    let (_, reason, at) = r.closed[0];
    let after = at - started;
    println!("silent client removed after {after:?}: {reason}");
    assert!(
        matches!(
            reason,
            DeathReason::ConnectFailed(ConnectFailure::TimedOut { .. })
        ),
        "{reason:?}"
    );
    assert!(
        after >= CONNECT_TIMEOUT && after < CONNECT_TIMEOUT + SLACK,
        "{after:?}"
    );
    assert!(eof.is_ok(), "the socket was closed");
    assert!(r.deaths.is_empty(), "never opened: no death");
    assert_eq!(server.stats().connections, 0);
    assert_eq!(server.stats().handshakes_failed, 1);
    drop(silent);
}

#[test]
fn a_bad_url_is_an_invalid_input_error_saying_why() {
    let mut client = Driver::new(Options::new(config()), Record::default()).unwrap();
    for (url, why) in [
        ("ws://127.0.0.1:99999/", "invalid port"),
        ("http://127.0.0.1:80/", "unsupported scheme"),
        ("wss://127.0.0.1/", "TLS"),
    ] {
        let e = client.connect(url).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{url}");
        assert!(e.to_string().contains(why), "{url}: {e}");
    }
    let e = client.connect("ws://127.0.0.1:0/").unwrap_err();
    let url_error = e.get_ref().and_then(|e| e.downcast_ref::<UrlError>());
    assert_eq!(url_error, Some(&UrlError::Port("0".into())));
    assert_eq!(client.stats().connections, 0);
}

/// An HTTP server answering every request with `response`; sends each request's
/// arrival time.
fn refusing_server(response: &'static str) -> (std::net::SocketAddr, mpsc::Receiver<Instant>) {
    use std::io::Write;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let _ = tx.send(Instant::now());
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (addr, rx)
}

/// A client config whose backoff alone would retry within 100 ms, honouring a
/// server's delay up to 5 s.
fn quick_retry_config() -> Config {
    Config::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .backoff(Backoff {
            base: Duration::from_millis(50),
            cap: Duration::from_millis(100),
            max_requested_delay: Duration::from_secs(5),
            ..Config::default().backoff()
        })
        .build()
        .unwrap()
}

#[test]
fn a_503_retry_after_delays_the_next_attempt_by_that_much() {
    let (addr, requests) =
        refusing_server("HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n");
    let mut client = Driver::new(Options::new(quick_retry_config()), Record::default()).unwrap();
    client.connect(&format!("ws://{addr}/")).unwrap();
    let started = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < 2 && started.elapsed() < Duration::from_secs(4) {
        client.turn(Some(Duration::from_millis(5))).unwrap();
        seen.extend(requests.try_iter());
    }
    assert_eq!(seen.len(), 2, "a second attempt came");
    let gap = seen[1] - seen[0];
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    assert!(
        gap < Duration::from_secs(1) + SLACK * 3,
        "retried after {gap:?}"
    );
}

#[test]
fn a_401_finishes_the_client_after_one_attempt() {
    let (addr, requests) =
        refusing_server("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
    let mut client = Driver::new(Options::new(quick_retry_config()), Record::default()).unwrap();
    let id = client.connect(&format!("ws://{addr}/")).unwrap();
    let started = Instant::now();
    // Long enough for several backoff-paced retries, were there any.
    while started.elapsed() < Duration::from_millis(800) {
        client.turn(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(requests.try_iter().count(), 1, "not retried");
    let closed = &client.handler().closed;
    assert_eq!(closed.len(), 1, "the client is gone: {closed:?}");
    assert_eq!(closed[0].0, id);
    assert_eq!(
        closed[0].1,
        DeathReason::ConnectFailed(ConnectFailure::Error)
    );
}
