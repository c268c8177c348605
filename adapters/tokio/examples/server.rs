//! An echo server with a live-client registry:
//! `cargo run -p heartbeat-tokio --example server -- 127.0.0.1:9000`
//!
//! Echoes every message, broadcasts the number of live clients every 2 s, and drops
//! clients whose heartbeat fails (try `kill -STOP` on a client: it disappears from
//! the count within ping interval + pong timeout).

use std::time::Duration;

use heartbeat_core::{Config, Role};
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{accept_tcp, Options, Registry};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "heartbeat_tokio=info".into()),
        )
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let config = Config::builder()
        .role(Role::Server)
        .ping_interval(Duration::from_secs(2))
        .pong_timeout(Duration::from_secs(2))
        .build()?;
    let options = Options::new(config);
    let registry = Registry::new();
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on ws://{addr}");

    let reg = registry.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            let report = reg.broadcast(&Message::text(format!("{} clients live", reg.len())));
            if report.dropped > 0 {
                println!("broadcast: {report:?}");
            }
        }
    });

    loop {
        let (tcp, peer) = listener.accept().await?;
        let (options, registry) = (options.clone(), registry.clone());
        tokio::spawn(async move {
            let (id, conn) = match accept_tcp(tcp, &options, &registry).await {
                Ok(ok) => ok,
                Err(e) => return println!("{peer}: handshake failed: {e}"),
            };
            println!("client {id} ({peer}) connected; {} live", registry.len());
            let (tx, mut rx) = conn.split();
            let err = loop {
                match rx.recv().await {
                    Ok(msg) => {
                        if let Err(e) = tx.send(msg).await {
                            break e;
                        }
                    }
                    Err(e) => break e,
                }
            };
            println!("client {id} gone: {err}; {} live", registry.len());
        });
    }
}
