//! A heartbeat server that lets in only clients presenting
//! `Authorization: Bearer <token>`; everyone else gets HTTP 401 before they exist
//! for the server (never registered, never pinged).
//!
//! ```text
//! cargo run -p heartbeat-tokio --example bearer_auth -- 127.0.0.1:9000 s3cr3t
//! heartbeat ping ws://127.0.0.1:9000/ -H 'Authorization: Bearer s3cr3t'
//! ```
//!
//! `tests/accept_hook.rs` runs this file's [`serve`] and [`authorize`].

use std::time::Duration;

use heartbeat_core::{Config, Role};
use heartbeat_tokio::{accept_with, Accept, Handshake, Options, Registry, Reject};
use tokio::net::TcpListener;

/// The hook: the right token is in, anything else is a 401 naming the scheme.
pub fn authorize(expected: &str, handshake: &Handshake<'_>) -> Result<Accept, Reject> {
    match handshake.bearer_token() {
        Some(token) if token == expected => Ok(Accept::new()),
        Some(_) => Err(Reject::new(401)
            .header("WWW-Authenticate", "Bearer error=\"invalid_token\"")
            .body("invalid token")),
        None => Err(Reject::new(401).header("WWW-Authenticate", "Bearer")),
    }
}

/// Accepts on `listener` forever: each client is checked by [`authorize`], then
/// kept alive by the heartbeat and echoed to.
pub async fn serve(listener: TcpListener, token: String, options: Options, registry: Registry) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let (token, options, registry) = (token.clone(), options.clone(), registry.clone());
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let hook = |hs: &Handshake<'_>| authorize(&token, hs);
            match accept_with(stream, Some(peer), &options, &registry, hook).await {
                Ok((id, conn)) => {
                    println!("client {id} from {peer} authorized");
                    let (tx, mut rx) = conn.split();
                    while let Ok(msg) = rx.recv().await {
                        if tx.send(msg).await.is_err() {
                            break;
                        }
                    }
                }
                Err(e) => println!("refused {peer}: {e}"),
            }
        });
    }
}

#[allow(dead_code)] // the tests use serve() and authorize() only
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:9000".into());
    let token = args.next().ok_or("usage: bearer_auth ADDR TOKEN")?;
    let config = Config::builder()
        .role(Role::Server)
        .ping_interval(Duration::from_secs(5))
        .pong_timeout(Duration::from_secs(5))
        .build()?;
    let listener = TcpListener::bind(&bind).await?;
    println!("listening on ws://{}", listener.local_addr()?);
    serve(listener, token, Options::new(config), Registry::new()).await;
    Ok(())
}
