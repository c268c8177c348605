//! A reconnecting client: `cargo run -p heartbeat-tokio --example client -- ws://127.0.0.1:9000`
//!
//! Sends a line every second, prints what comes back and the heartbeat status, and
//! reconnects with backoff when the server dies or hangs (try `kill -STOP` on it).
//! `RUST_LOG=heartbeat_tokio=debug` shows every verdict.

use std::time::Duration;

use heartbeat_core::{Config, Role};
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{connect, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "heartbeat_tokio=info".into()),
        )
        .init();
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9000".into());
    let config = Config::builder()
        .role(Role::Client)
        .ping_interval(Duration::from_secs(2))
        .pong_timeout(Duration::from_secs(2))
        .build()?;
    println!(
        "a hung server is detected within {:?}",
        config.detection_bound(Duration::ZERO)
    );
    let mut connections = connect(url, Options::new(config))?;
    while let Some(conn) = connections.next().await {
        println!("connected");
        let (tx, mut rx) = conn.split();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    n += 1;
                    if tx.send(Message::text(format!("hello {n}"))).await.is_err() {
                        continue; // the receiver reports why
                    }
                    let s = tx.status();
                    println!("rtt {:?} health {:?} pings {}", s.rtt.smoothed, s.health, s.stats.pings_sent);
                }
                msg = rx.recv() => match msg {
                    Ok(msg) => println!("< {msg}"),
                    Err(e) => { println!("connection over: {e}"); break; }
                },
            }
        }
    }
    println!("no more connections: {:?}", connections.status().state);
    Ok(())
}
