//! Connection attempts on real loopback sockets: every wait is the machine's.
//! A server that accepts TCP and never answers the upgrade is abandoned at
//! `connect_timeout` (client side), a client that never sends its upgrade is
//! dropped at `connect_timeout` (server side), the client loop spaces attempts by
//! the machine's backoff and stops when they are spent, and a bad URL is a typed
//! error at once, never retried.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use heartbeat_blocking::{run_client, tungstenite, Error, KeepAlive, Next, UrlError};
use heartbeat_core::{Backoff, CloseCode, Config, ConnectFailure, DeathReason, Jitter, Role};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Scheduling slack on a shared 2-core machine.
const SLACK: Duration = Duration::from_millis(150);

fn config(role: Role) -> Config {
    Config::builder()
        .role(role)
        .ping_interval(Duration::from_millis(100))
        .pong_timeout(Duration::from_millis(200))
        .close_timeout(Duration::from_secs(2))
        .connect_timeout(CONNECT_TIMEOUT)
        .backoff(Backoff {
            base: Duration::from_millis(50),
            multiplier: 2.0,
            cap: Duration::from_millis(400),
            jitter: Jitter::None,
            max_attempts: Some(2),
            reset_after: Duration::from_secs(1),
            max_requested_delay: Duration::from_secs(1),
        })
        .build()
        .unwrap()
}

/// A listener that accepts every connection, reads and discards what comes, and
/// never answers (a hung HTTP server). Returns its address and an accept counter.
fn silent_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    (addr, accepted)
}

fn is_timed_out(e: &Error) -> bool {
    matches!(
        e,
        Error::Dead(DeathReason::ConnectFailed(ConnectFailure::TimedOut { waited }))
            if *waited >= CONNECT_TIMEOUT
    )
}

#[test]
fn a_server_that_never_answers_the_upgrade_is_abandoned_at_the_connect_timeout() {
    let (addr, accepted) = silent_server();
    let started = Instant::now();
    let err = KeepAlive::connect(&format!("ws://{addr}/"), config(Role::Server))
        .err()
        .expect("no upgrade answer: no connection");
    let took = started.elapsed();
    println!("upgrade never answered: abandoned after {took:?} ({err:?})");
    assert!(is_timed_out(&err), "{err:?}");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the TCP connect succeeded"
    );
    assert!(took >= CONNECT_TIMEOUT, "{took:?}");
    assert!(took <= CONNECT_TIMEOUT + SLACK, "{took:?}");
}

#[test]
fn the_client_loop_spaces_attempts_by_the_backoff_and_stops_when_they_are_spent() {
    let (addr, accepted) = silent_server();
    let started = Instant::now();
    let mut sessions = 0;
    let end = run_client(&format!("ws://{addr}/"), config(Role::Client), |_| {
        sessions += 1;
        Next::Reconnect
    })
    .unwrap();
    let took = started.elapsed();
    // Three attempts (the first and two retries), each abandoned at the connect
    // timeout, with 50 ms and 100 ms of backoff between them.
    let expected = 3 * CONNECT_TIMEOUT + Duration::from_millis(150);
    println!("three silent attempts took {took:?} (expected {expected:?}), ended {end:?}");
    assert!(
        matches!(
            end,
            DeathReason::ConnectFailed(ConnectFailure::TimedOut { waited }) if waited >= CONNECT_TIMEOUT
        ),
        "{end:?}"
    );
    assert_eq!(sessions, 0);
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    assert!(took >= expected, "{took:?}");
    assert!(took <= expected + 2 * SLACK, "{took:?}");
}

#[test]
fn a_refused_connection_fails_at_once_and_the_loop_retries_it_with_backoff() {
    // A port nobody listens on: bind, learn it, close.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("ws://{addr}/");
    let started = Instant::now();
    let err = KeepAlive::connect(&url, config(Role::Server))
        .err()
        .expect("nobody listens");
    assert!(
        matches!(&err, Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{err:?}"
    );
    assert!(started.elapsed() < SLACK, "{:?}", started.elapsed());

    let started = Instant::now();
    let end = run_client(&url, config(Role::Client), |_| Next::Reconnect).unwrap();
    let took = started.elapsed();
    assert_eq!(end, DeathReason::ConnectFailed(ConnectFailure::Error));
    // Only the backoff between the three attempts: 50 ms + 100 ms.
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert!(took <= Duration::from_millis(150) + SLACK, "{took:?}");
}

#[test]
fn a_client_that_never_sends_its_upgrade_is_dropped_at_the_connect_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut silent = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (stream, _) = listener.accept().unwrap();
    let started = Instant::now();
    let err = KeepAlive::accept(stream, config(Role::Server), 7)
        .err()
        .expect("no request: no connection");
    let took = started.elapsed();
    assert!(is_timed_out(&err), "{err:?}");
    assert!(took >= CONNECT_TIMEOUT, "{took:?}");
    assert!(took <= CONNECT_TIMEOUT + SLACK, "{took:?}");
    // The server let go of the socket: the client sees the end of the stream.
    silent
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(silent.read(&mut [0u8; 16]).unwrap(), 0);
}

#[test]
fn bad_urls_are_typed_errors_at_once_and_never_retried() {
    let started = Instant::now();
    for (url, expected) in [
        ("ws://127.0.0.1:99999/", UrlError::Port("99999".into())),
        ("ws://127.0.0.1:0/", UrlError::Port("0".into())),
        ("http://x/", UrlError::Scheme("http".into())),
        ("ws://", UrlError::NoHost),
    ] {
        match KeepAlive::connect(url, config(Role::Server)) {
            Err(Error::Url(e)) => assert_eq!(e, expected, "{url}"),
            other => panic!("{url}: {:?}", other.err()),
        }
        let mut sessions = 0;
        match run_client(url, config(Role::Client), |_| {
            sessions += 1;
            Next::Reconnect
        }) {
            Err(Error::Url(e)) => assert_eq!(e, expected, "{url}"),
            other => panic!("{url}: {other:?}"),
        }
        assert_eq!(sessions, 0);
    }
    assert!(matches!(
        KeepAlive::connect("wss://127.0.0.1:1/", config(Role::Server)),
        Err(Error::TlsUnsupported)
    ));
    let took = started.elapsed();
    assert!(took < Duration::from_millis(100), "{took:?}");
}

#[test]
fn a_blocking_server_and_client_keep_each_other_alive_and_close_with_one_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = KeepAlive::accept(stream, config(Role::Server), 1).unwrap();
        loop {
            match ws.read() {
                Ok(msg) => ws.send(msg).unwrap(),
                Err(Error::Dead(reason)) => {
                    // The reply went out at once; the handshake is over.
                    return (reason, ws.close(CloseCode::NORMAL), ws.machine().stats());
                }
                Err(e) => panic!("{e:?}"),
            }
        }
    });
    let mut ws = KeepAlive::connect(&url, config(Role::Server)).unwrap();
    ws.send("echo".into()).unwrap();
    assert_eq!(ws.read().unwrap().into_text().unwrap(), "echo");
    let idle = ws
        .read_until(Some(Instant::now() + Duration::from_millis(600)))
        .unwrap();
    assert!(idle.is_none());
    let started = Instant::now();
    assert_eq!(
        ws.close(CloseCode::NORMAL),
        DeathReason::LocalClose { code: 1000 }
    );
    let closing = started.elapsed();
    let (theirs, their_end, their_stats) = server.join().unwrap();
    let ours = ws.machine().stats();
    println!("close handshake took {closing:?}; ours {ours:?}; theirs {their_stats:?}");
    assert_eq!(theirs, DeathReason::PeerClosed { code: Some(1000) });
    assert_eq!(their_end, theirs);
    // The peer answered: no close timeout ran on either side.
    assert!(closing < Duration::from_millis(500), "{closing:?}");
    assert_eq!(ours.close_timeouts, 0);
    assert_eq!(their_stats.close_timeouts, 0);
    for s in [ours, their_stats] {
        assert!(s.pongs_matched >= 4, "{s:?}");
        assert_eq!(s.pong_timeouts, 0, "{s:?}");
    }
}

/// A server that answers every upgrade with HTTP 401; counts the requests.
fn unauthorized_server() -> (SocketAddr, Arc<AtomicUsize>) {
    use std::io::Write;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            count.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (addr, requests)
}

#[test]
fn run_client_stops_after_one_401_instead_of_retrying() {
    let (addr, requests) = unauthorized_server();
    let mut cfg = config(Role::Client);
    // Plenty of attempts allowed: only the classification can stop it after one.
    cfg = Config::builder()
        .role(Role::Client)
        .ping_interval(cfg.ping_interval())
        .pong_timeout(cfg.pong_timeout())
        .connect_timeout(CONNECT_TIMEOUT)
        .backoff(Backoff {
            max_attempts: Some(5),
            ..cfg.backoff()
        })
        .build()
        .unwrap();
    let start = Instant::now();
    let result = run_client(&format!("ws://{addr}/"), cfg, |_| Next::Reconnect);
    match result {
        Err(Error::Connect(tungstenite::Error::Http(r))) => assert_eq!(r.status(), 401),
        other => panic!("expected the 401, got {other:?}"),
    }
    assert_eq!(requests.load(Ordering::SeqCst), 1, "not retried");
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn run_client_waits_out_a_503_retry_after() {
    use std::io::Write;
    use std::sync::Mutex;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            log.lock().unwrap().push(Instant::now());
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream
                .write_all(b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n");
        }
    });
    // max_attempts 2: three attempts, 50-100 ms of backoff apart unless the server asks for more.
    let result = run_client(&format!("ws://{addr}/"), config(Role::Client), |_| {
        Next::Reconnect
    });
    assert!(
        matches!(result, Ok(DeathReason::ConnectFailed(_))),
        "{result:?}"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    for pair in seen.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
        assert!(
            gap < Duration::from_secs(1) + SLACK * 2,
            "retried after {gap:?}"
        );
    }
}
