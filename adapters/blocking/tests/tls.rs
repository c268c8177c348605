//! [`KeepAlive`] over rustls's `StreamOwned`: `wss://` opened by the application
//! (its own `ClientConfig`, trusting a CA the test made) against a Python
//! `websockets` TLS server, with the same heartbeat as over plain TCP: pongs
//! matched, and a server that hangs (SIGSTOP) declared dead within the bound.
//!
//! Needs the `rustls` feature: `cargo test -p heartbeat-blocking --features rustls`.

#![cfg(feature = "rustls")]

use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use heartbeat_blocking::tungstenite::{self, Message};
use heartbeat_blocking::{small_buffers, Error, KeepAlive};
use heartbeat_core::{Config, DeathReason, Role};
use heartbeat_test_support::{require_websockets, PyPeer, ServerOptions, TestCerts};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

const INTERVAL: Duration = Duration::from_millis(200);
const TIMEOUT: Duration = Duration::from_millis(300);
/// Scheduling slack on a shared 2-core machine.
const SLACK: Duration = Duration::from_millis(250);

/// A client TLS configuration trusting only `ca` (ring provider).
fn trusting(ca: &std::path::Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

#[test]
fn keepalive_over_rustls_stream_owned_pings_and_detects_a_hung_tls_server() {
    if !require_websockets("keepalive_over_rustls_stream_owned_pings_and_detects_a_hung_tls_server")
    {
        return;
    }
    let certs = TestCerts::new().unwrap();
    let py = PyPeer::server(&ServerOptions::default().tls(&certs.cert, &certs.key)).unwrap();
    let url = py.url().unwrap();
    let addr = py.addr.unwrap();

    let tcp = TcpStream::connect(addr).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = ClientConnection::new(trusting(&certs.ca), name).unwrap();
    let stream = StreamOwned::new(tls, tcp);
    let (ws, _) =
        tungstenite::client::client_with_config(url.as_str(), stream, Some(small_buffers()))
            .unwrap();
    let config = Config::builder()
        .role(Role::Server) // one connection, never reconnected
        .ping_interval(INTERVAL)
        .pong_timeout(TIMEOUT)
        .build()
        .unwrap();
    let mut ka: KeepAlive<Config, StreamOwned<ClientConnection, TcpStream>> =
        KeepAlive::new(ws, config, 7);

    ka.send(Message::text("over tls")).unwrap();
    assert_eq!(ka.read().unwrap(), Message::text("over tls"));
    let until = Instant::now() + INTERVAL * 3;
    while ka.read_until(Some(until)).unwrap().is_some() {}
    assert!(
        ka.machine().stats().pongs_matched >= 2,
        "{:?}",
        ka.machine().stats()
    );

    py.stop();
    let stopped = Instant::now();
    let end = loop {
        match ka.read() {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    let took = stopped.elapsed();
    assert!(
        matches!(end, Error::Dead(DeathReason::PongTimeout { .. })),
        "{end}"
    );
    assert!(
        took <= INTERVAL + TIMEOUT + SLACK,
        "detected after {took:?}"
    );
}
