//! `wss://` against Python `websockets` TLS servers, with a throwaway CA made by
//! the test: the CA given to the client connects; a certificate nobody vouched for
//! is a typed, permanent verification error after one attempt; `insecure` connects
//! anyway.
//!
//! Needs a TLS feature: `cargo test -p heartbeat-tokio --features rustls-native-roots`.

#![cfg(feature = "_rustls")]

mod common;

use common::{ms, off_runtime, options};
use heartbeat_core::Role;
use heartbeat_test_support::{require_websockets, PyPeer, ServerOptions, TestCerts};
use heartbeat_tokio::tls::TlsConfig;
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{connect, ConnectRequest, Error, KeepAliveStream, Permanent};

/// A Python echo server speaking `wss://` with `certs`' server certificate.
async fn tls_server(certs: &TestCerts) -> (PyPeer, String) {
    let options = ServerOptions::default().tls(&certs.cert, &certs.key);
    let peer = off_runtime(move || PyPeer::server(&options))
        .await
        .expect("python TLS server");
    let url = peer.url().expect("a server has an address");
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    (peer, url)
}

#[tokio::test]
async fn wss_with_the_servers_ca_trusted_connects_and_echoes() {
    if !require_websockets("wss_with_the_servers_ca_trusted_connects_and_echoes") {
        return;
    }
    let certs = TestCerts::new().unwrap();
    let (_py, url) = tls_server(&certs).await;
    let request = ConnectRequest::new(&url)
        .unwrap()
        .tls(TlsConfig::with_ca_file(&certs.ca).unwrap());
    let mut conns = connect(request, options(Role::Client, 200, 500, 300)).unwrap();
    let mut conn = tokio::time::timeout(ms(5000), conns.next())
        .await
        .expect("connected in time")
        .expect("a connection");
    conn.send(Message::text("over tls")).await.unwrap();
    let echo = tokio::time::timeout(ms(2000), conn.recv()).await.unwrap();
    assert_eq!(echo.unwrap(), Message::text("over tls"));
    // Heartbeats flow over TLS too.
    tokio::time::sleep(ms(700)).await;
    assert!(
        conn.status().stats.pongs_matched >= 2,
        "{:?}",
        conn.status().stats
    );
}

/// The lean client takes the same request: `wss://` with the CA given, heartbeats
/// over TLS while the stream is polled.
#[tokio::test]
async fn the_lean_stream_connects_over_wss_with_the_servers_ca_trusted() {
    if !require_websockets("the_lean_stream_connects_over_wss_with_the_servers_ca_trusted") {
        return;
    }
    use futures_util::{SinkExt, StreamExt};
    let certs = TestCerts::new().unwrap();
    let (_py, url) = tls_server(&certs).await;
    let request = ConnectRequest::new(&url)
        .unwrap()
        .tls(TlsConfig::with_ca_file(&certs.ca).unwrap());
    let mut ws = KeepAliveStream::connect(request, &options(Role::Client, 200, 500, 300))
        .await
        .expect("connects over wss://");
    ws.send(Message::text("lean over tls")).await.unwrap();
    let echo = tokio::time::timeout(ms(2000), ws.next()).await.unwrap();
    assert_eq!(echo.unwrap().unwrap(), Message::text("lean over tls"));
    // Heartbeats run while the stream is polled.
    let _ = tokio::time::timeout(ms(700), ws.next()).await;
    assert!(
        ws.status().stats.pongs_matched >= 2,
        "{:?}",
        ws.status().stats
    );
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_a_permanent_error_with_no_retry_loop() {
    if !require_websockets(
        "a_certificate_from_an_unknown_ca_is_a_permanent_error_with_no_retry_loop",
    ) {
        return;
    }
    let certs = TestCerts::new().unwrap();
    let (_py, url) = tls_server(&certs).await;
    // Trusts the system roots and another throwaway CA, not the server's.
    let other = TestCerts::new().unwrap();
    let request = ConnectRequest::new(&url)
        .unwrap()
        .tls(TlsConfig::with_ca_file(&other.ca).unwrap());
    let mut conns = connect(request, options(Role::Client, 200, 500, 300)).unwrap();
    let next = tokio::time::timeout(ms(3000), conns.next()).await;
    assert!(matches!(next, Ok(None)), "the client ends by itself");
    match conns.last_connect_error() {
        Some(
            e @ Error::Permanent {
                cause: Permanent::Certificate(_),
                ..
            },
        ) => {
            assert!(e.to_string().contains("certificate"), "{e}");
        }
        other => panic!("expected a rejected certificate, got {other:?}"),
    }
    assert_eq!(conns.status().stats.connect_failures, 1, "one attempt only");
}

#[tokio::test]
async fn insecure_connects_to_a_server_whose_certificate_is_not_trusted() {
    if !require_websockets("insecure_connects_to_a_server_whose_certificate_is_not_trusted") {
        return;
    }
    let certs = TestCerts::new().unwrap();
    let (_py, url) = tls_server(&certs).await;
    let tls = TlsConfig::insecure();
    assert!(!tls.is_verified());
    let request = ConnectRequest::new(&url).unwrap().tls(tls);
    let mut conns = connect(request, options(Role::Client, 200, 500, 300)).unwrap();
    let mut conn = tokio::time::timeout(ms(5000), conns.next())
        .await
        .expect("connected in time")
        .expect("a connection");
    conn.send(Message::text("unverified")).await.unwrap();
    let echo = tokio::time::timeout(ms(2000), conn.recv()).await.unwrap();
    assert_eq!(echo.unwrap(), Message::text("unverified"));
}

#[test]
fn a_ca_file_that_holds_no_certificate_is_an_error_naming_the_file() {
    let certs = TestCerts::new().unwrap();
    let e = TlsConfig::with_ca_file(&certs.key).unwrap_err();
    assert!(e.to_string().contains("key.pem"), "{e}");
    let e = TlsConfig::with_ca_file(certs.dir().join("missing.pem")).unwrap_err();
    assert!(e.to_string().contains("cannot read CA file"), "{e}");
}
