//! An axum server whose WebSocket handler wraps the upgraded socket in the
//! heartbeat: a client that hangs (its process stopped, its kernel still ACKing)
//! is declared dead within `interval + timeout` and the handler learns why.
//!
//! ```text
//! cargo run -p heartbeat-tokio --features axum --example axum_keepalive -- 127.0.0.1:9000
//! heartbeat ping ws://127.0.0.1:9000/ws      # then Ctrl-Z it: "client gone: peer unresponsive"
//! ```
//!
//! `tests/axum.rs` runs this file's [`app`] against a Python client it SIGSTOPs.

use std::time::Duration;

use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use heartbeat_core::{Config, Role};
use heartbeat_tokio::{Compat, Error, KeepAlive, Options};
use tokio::sync::mpsc;

/// What every handler shares: the heartbeat settings and where verdicts go.
#[derive(Clone)]
pub struct App {
    /// The heartbeat for every connection.
    pub options: Options,
    /// Each connection's end, as the handler saw it.
    pub ends: mpsc::UnboundedSender<Error>,
}

/// The router: `/ws` upgrades, keeps alive and echoes.
pub fn app(state: App) -> Router {
    Router::new().route("/ws", get(upgrade)).with_state(state)
}

async fn upgrade(ws: WebSocketUpgrade, State(app): State<App>) -> Response {
    ws.on_upgrade(move |socket| serve(socket, app))
}

/// One client: axum's socket under the heartbeat's driver; echo until it ends.
async fn serve(socket: WebSocket, app: App) {
    let conn = KeepAlive::from_socket(Compat::new(socket), &app.options);
    let (tx, mut rx) = conn.split();
    let end = loop {
        match rx.recv().await {
            Ok(msg) => {
                if let Err(e) = tx.send(msg).await {
                    break e;
                }
            }
            Err(e) => break e,
        }
    };
    println!("client gone: {end}");
    let _ = app.ends.send(end);
}

#[allow(dead_code)] // the test uses app() only
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let config = Config::builder()
        .role(Role::Server)
        .ping_interval(Duration::from_secs(1))
        .pong_timeout(Duration::from_secs(2))
        .build()?;
    let (ends, mut gone) = mpsc::unbounded_channel();
    tokio::spawn(async move { while gone.recv().await.is_some() {} });
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on ws://{}/ws", listener.local_addr()?);
    let state = App {
        options: Options::new(config),
        ends,
    };
    axum::serve(listener, app(state)).await?;
    Ok(())
}
