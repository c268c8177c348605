//! Which connect failures the reconnecting client retries, and which end it at once
//! with a typed error: a bad URL at the call, a permanent refusal (HTTP 4xx other
//! than 408/429) after one attempt, transient ones (refused, 503) with backoff and
//! the server's `Retry-After`.
//!
//! The refusing servers are a few lines of real HTTP over real loopback sockets.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{backoff, ms};
use heartbeat_core::{Config, ConnectFailure, DeathReason, Role, State};
use heartbeat_tokio::{connect, ConnectRequest, Error, Options, Permanent, UrlError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A client config with a fast, deterministic backoff (100 ms doubling to 400 ms)
/// and `max_requested` as the cap on a server's `Retry-After`.
fn client(max_requested: Duration) -> Options {
    let mut b = backoff(100, 400, None);
    b.max_requested_delay = max_requested;
    let config = Config::builder()
        .role(Role::Client)
        .ping_interval(ms(200))
        .pong_timeout(ms(300))
        .connect_timeout(ms(1000))
        .backoff(b)
        .build()
        .unwrap();
    Options::new(config).seed(1)
}

/// An HTTP server on loopback that answers the `n`th request (from 0) with
/// `respond(n)` and closes; returns its address and when each request arrived.
async fn refusing_server(
    respond: impl Fn(usize) -> String + Send + 'static,
) -> (SocketAddr, Arc<Mutex<Vec<Instant>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for n in 0.. {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            log.lock().unwrap().push(Instant::now());
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(k) => request.extend_from_slice(&buf[..k]),
                }
            }
            let _ = stream.write_all(respond(n).as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (addr, seen)
}

fn status(code: u16, extra: &str) -> String {
    format!("HTTP/1.1 {code} Nope\r\nContent-Length: 0\r\n{extra}\r\n")
}

#[tokio::test]
async fn bad_urls_are_typed_errors_at_the_call_and_nothing_is_attempted() {
    let opts = || client(ms(1000));
    let cases: [(&str, UrlError); 4] = [
        ("ws://127.0.0.1:99999/", UrlError::Port("99999".into())),
        ("ws://127.0.0.1:0/", UrlError::Port("0".into())),
        ("http://127.0.0.1/", UrlError::Scheme("http".into())),
        ("wss://", UrlError::NoHost),
    ];
    for (url, expected) in cases {
        match connect(url, opts()) {
            Err(Error::Url(e)) => assert_eq!(e, expected, "{url}"),
            other => panic!("{url}: expected a URL error, got {other:?}"),
        }
    }
    assert!(matches!(
        connect("not a url", opts()),
        Err(Error::Url(UrlError::Invalid(_)))
    ));
    let e = ConnectRequest::new("ws://127.0.0.1:99999/").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid URL: invalid port \"99999\" (use 1-65535)"
    );
    assert!(e.is_permanent());
}

#[cfg(not(feature = "_rustls"))]
#[tokio::test]
async fn wss_without_a_tls_feature_is_an_error_at_the_call() {
    assert!(matches!(
        connect("wss://127.0.0.1:1/", client(ms(1000))),
        Err(Error::TlsUnavailable)
    ));
}

#[tokio::test]
async fn http_401_ends_the_client_after_one_attempt_with_a_permanent_error() {
    let (addr, seen) = refusing_server(|_| status(401, "")).await;
    let mut conns = connect(format!("ws://{addr}/"), client(ms(1000))).unwrap();
    let next = tokio::time::timeout(ms(3000), conns.next()).await;
    assert!(matches!(next, Ok(None)), "the sequence ends by itself");
    match conns.last_connect_error() {
        Some(Error::Permanent {
            cause: Permanent::Rejected { status: 401 },
            ..
        }) => {}
        other => panic!("expected a permanent 401, got {other:?}"),
    }
    assert_eq!(
        conns.status().state,
        State::Finished {
            reason: DeathReason::ConnectFailed(ConnectFailure::Error)
        }
    );
    // Well past the first backoff delays (100, 200, 400 ms): no second attempt.
    tokio::time::sleep(ms(800)).await;
    assert_eq!(seen.lock().unwrap().len(), 1, "a 401 is never retried");
}

#[tokio::test]
async fn retry_permanent_keeps_retrying_a_401_with_backoff() {
    let (addr, seen) = refusing_server(|_| status(401, "")).await;
    let conns = connect(
        format!("ws://{addr}/"),
        client(ms(1000)).retry_permanent(true),
    )
    .unwrap();
    tokio::time::sleep(ms(1200)).await;
    let attempts = seen.lock().unwrap().len();
    assert!(attempts >= 3, "retried: {attempts} attempts in 1.2 s");
    assert!(matches!(
        conns.last_connect_error(),
        Some(Error::Permanent { .. })
    ));
}

#[tokio::test]
async fn a_refused_port_is_transient_and_retried() {
    // Bind then drop: the port is closed, so every connect is refused at once.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let conns = connect(format!("ws://{addr}/"), client(ms(1000))).unwrap();
    tokio::time::sleep(ms(900)).await;
    let s = conns.status();
    assert!(
        matches!(
            s.state,
            State::Reconnecting { .. } | State::Connecting { .. }
        ),
        "still trying: {:?}",
        s.state
    );
    assert!(s.stats.connect_failures >= 2, "{:?}", s.stats);
    match conns.last_connect_error() {
        Some(Error::Connect(e)) => assert!(e.to_string().contains("refused"), "{e}"),
        other => panic!("expected a refused connect, got {other:?}"),
    }
}

#[tokio::test]
async fn a_503_with_retry_after_2_is_retried_after_2_seconds() {
    let (addr, seen) = refusing_server(|_| status(503, "Retry-After: 2\r\n")).await;
    let _conns = connect(format!("ws://{addr}/"), client(ms(5000))).unwrap();
    wait_for_attempts(&seen, 2, ms(4000)).await;
    let seen = seen.lock().unwrap();
    let gap = seen[1] - seen[0];
    // Without Retry-After the backoff would retry after at most 100 ms.
    assert!(gap >= ms(1950), "retried after {gap:?}");
    assert!(
        gap < ms(2800),
        "retried after {gap:?} (2 s asked, slack for a busy machine)"
    );
}

#[tokio::test]
async fn a_retry_after_as_an_http_date_is_honoured_and_a_long_one_is_capped() {
    // A date 1-2 s ahead (whole seconds): the retry waits until then.
    let (addr, seen) = refusing_server(|_| {
        let at = std::time::SystemTime::now() + Duration::from_secs(1);
        status(503, &format!("Retry-After: {}\r\n", http_date(at)))
    })
    .await;
    let _conns = connect(format!("ws://{addr}/"), client(ms(5000))).unwrap();
    wait_for_attempts(&seen, 2, ms(4000)).await;
    let gap = {
        let seen = seen.lock().unwrap();
        seen[1] - seen[0]
    };
    assert!(
        gap >= ms(950) && gap < ms(2800),
        "HTTP-date retried after {gap:?}"
    );

    // An hour asked, 700 ms allowed by `max_requested_delay`.
    let (addr, seen) = refusing_server(|_| status(429, "Retry-After: 3600\r\n")).await;
    let _conns = connect(format!("ws://{addr}/"), client(ms(700))).unwrap();
    wait_for_attempts(&seen, 2, ms(3000)).await;
    let seen = seen.lock().unwrap();
    let gap = seen[1] - seen[0];
    assert!(
        gap >= ms(650) && gap < ms(1500),
        "capped retry after {gap:?}"
    );
}

async fn wait_for_attempts(seen: &Mutex<Vec<Instant>>, n: usize, limit: Duration) {
    let start = Instant::now();
    while seen.lock().unwrap().len() < n {
        assert!(
            start.elapsed() < limit,
            "fewer than {n} attempts in {limit:?}"
        );
        tokio::time::sleep(ms(20)).await;
    }
}

/// `at` as an IMF-fixdate, rounded up to the next whole second.
fn http_date(at: std::time::SystemTime) -> String {
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 1;
    let out = std::process::Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("@{secs}"),
            "+%a, %d %b %Y %H:%M:%S GMT",
        ])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
