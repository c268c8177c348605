//! `heartbeat serve`: an echo and broadcast server with server-side heartbeats.
//!
//! Every text or binary message is echoed to its sender; a text message starting with
//! `/all ` is broadcast (without the prefix) to every live client instead. Connects,
//! disconnects, dead-client removals with their reasons, and the live-client count
//! are logged.

use std::net::SocketAddr;

use heartbeat_core::Config;
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{accept_tcp, Error, JsonCodec, Options, Registry};
use serde_json::json;
use tokio::net::TcpListener;

use crate::output::{Out, Tone};
use crate::report::{describe_end, end_fields};

/// Binds `bind` and serves until the process is stopped. Returns only on a bind error.
pub async fn run(
    bind: SocketAddr,
    app_json: bool,
    config: Config,
    out: Out,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(bind).await?;
    let local = listener.local_addr()?;
    let mut options = Options::new(config);
    if app_json {
        options = options.codec(JsonCodec);
    }
    out.event(
        "listening",
        "server",
        json!({ "addr": local.to_string(), "app_json": app_json,
                "interval_ms": crate::output::ms(config.ping_interval()),
                "timeout_ms": crate::output::ms(config.pong_timeout()) }),
        Tone::Heading,
        &format!(
            "listening on ws://{local}  (heartbeat every {:?}, timeout {:?}{})",
            config.ping_interval(),
            config.pong_timeout(),
            if app_json { ", JSON heartbeat" } else { "" }
        ),
    );
    let registry = Registry::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                // Out of descriptors or a reset before accept: keep serving the others.
                out.event(
                    "error",
                    "server",
                    json!({ "error": e.to_string() }),
                    Tone::Bad,
                    &format!("accept failed: {e}"),
                );
                continue;
            }
        };
        let (options, registry, out) = (options.clone(), registry.clone(), out.clone());
        tokio::spawn(async move { serve_client(stream, peer, options, registry, out).await });
    }
}

async fn serve_client(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    options: Options,
    registry: Registry,
    out: Out,
) {
    let (id, conn) = match accept_tcp(stream, &options, &registry).await {
        Ok(accepted) => accepted,
        Err(e) => {
            out.event(
                "handshake_failed",
                "server",
                json!({ "peer": peer.to_string(), "error": e.to_string() }),
                Tone::Bad,
                &format!("handshake from {peer} failed: {e}"),
            );
            return;
        }
    };
    let who = format!("client{id}");
    out.event(
        "connected",
        &who,
        json!({ "peer": peer.to_string(), "clients": registry.len() }),
        Tone::Good,
        &format!("connected from {peer}  ({} live)", registry.len()),
    );
    let status = conn.watch_status();
    let (tx, mut rx) = conn.split();
    let end: Error = loop {
        match rx.recv().await {
            Ok(Message::Text(text)) if text.starts_with("/all ") => {
                let msg = Message::Text(text.as_str()["/all ".len()..].into());
                let report = registry.broadcast(&msg);
                out.event(
                    "broadcast",
                    &who,
                    json!({ "queued": report.queued, "dropped": report.dropped }),
                    Tone::Plain,
                    &format!(
                        "broadcast to {} clients ({} dropped)",
                        report.queued, report.dropped
                    ),
                );
            }
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                if let Err(e) = tx.send(msg).await {
                    break e;
                }
            }
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    let waited = status.borrow().last_proof_of_life.map(|t| t.elapsed());
    let mut fields = end_fields(&end);
    fields["clients"] = json!(registry.len());
    if let Some(w) = waited {
        fields["silent_ms"] = json!(crate::output::ms(w));
    }
    let (event, tone) = if end.is_fault() {
        ("dead", Tone::Bad)
    } else {
        ("closed", Tone::Plain)
    };
    out.event(
        event,
        &who,
        fields,
        tone,
        &format!("{}; removed ({} live)", describe_end(&end), registry.len()),
    );
}
