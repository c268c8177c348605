//! Helpers shared by the integration tests: configs, in-memory and loopback peers.
//! Python `websockets` peers and the silent proxy come from `heartbeat-test-support`.

#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use heartbeat_core::{Backoff, Config, Jitter, Role};
use heartbeat_tokio::tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use heartbeat_tokio::tokio_tungstenite::WebSocketStream;
use heartbeat_tokio::{Options, Registry};
use tokio::io::DuplexStream;
use tokio::net::TcpListener;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "heartbeat_tokio=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A deterministic backoff: base, doubling, capped, no jitter.
pub fn backoff(base: u64, cap: u64, max_attempts: Option<u32>) -> Backoff {
    Backoff {
        base: ms(base),
        multiplier: 2.0,
        cap: ms(cap),
        jitter: Jitter::None,
        max_attempts,
        reset_after: ms(100),
        max_requested_delay: ms(1000),
    }
}

/// Interval, timeout and close timeout in ms, a 1 s connect timeout, fixed backoff.
pub fn config(role: Role, interval: u64, timeout: u64, close: u64) -> Config {
    config_connect(role, interval, timeout, close, 1000)
}

/// [`config`] with the connect timeout in ms too.
pub fn config_connect(role: Role, interval: u64, timeout: u64, close: u64, connect: u64) -> Config {
    Config::builder()
        .role(role)
        .ping_interval(ms(interval))
        .pong_timeout(ms(timeout))
        .close_timeout(ms(close))
        .connect_timeout(ms(connect))
        .backoff(backoff(100, 400, None))
        .build()
        .expect("valid test config")
}

pub fn options(role: Role, interval: u64, timeout: u64, close: u64) -> Options {
    Options::new(config(role, interval, timeout, close)).seed(1)
}

/// A connected client/server WebSocket pair over an in-memory pipe of `capacity`
/// bytes: no I/O driver involved, so paused-clock tests are exact.
pub async fn duplex_pair(
    capacity: usize,
) -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (a, b) = tokio::io::duplex(capacity);
    let client = WebSocketStream::from_raw_socket(a, WsRole::Client, None).await;
    let server = WebSocketStream::from_raw_socket(b, WsRole::Server, None).await;
    (client, server)
}

/// A server on 127.0.0.1 (random port) accepting into `registry`; every accepted
/// connection echoes data back to its client. Returns the `ws://` URL.
pub async fn echo_server(options: Options, registry: Registry) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let options = options.clone();
            let registry = registry.clone();
            tokio::spawn(async move {
                let Ok((_id, conn)) = heartbeat_tokio::accept_tcp(tcp, &options, &registry).await
                else {
                    return;
                };
                let (tx, mut rx) = conn.split();
                while let Ok(msg) = rx.recv().await {
                    if tx.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

/// Runs a blocking `heartbeat_test_support` call (starting a Python peer waits for
/// its first line) off the runtime, so this runtime keeps serving the peer
/// meanwhile (our server accepting a Python client).
pub async fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking helper panicked")
}

/// Waits (up to 5 s) until `registry` holds exactly `n` clients.
pub async fn wait_registry(registry: &Registry, n: usize) {
    let end = std::time::Instant::now() + Duration::from_secs(5);
    while registry.len() != n {
        assert!(
            std::time::Instant::now() < end,
            "registry holds {} clients, not {n}",
            registry.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
