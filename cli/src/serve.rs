//! `heartbeat serve`: an echo and broadcast server with server-side heartbeats.
//!
//! Every text or binary message is echoed to its sender; a text message starting with
//! `/all ` is broadcast (without the prefix) to every live client instead. Connects,
//! disconnects, dead-client removals with their reasons, and the live-client count
//! are logged. With `--json`, each connection's pings and pongs are events too
//! (`ping {seq, conn}`, `pong {seq, rtt_ms, conn}`, as `heartbeat ping --json`
//! prints them); in text they would drown the log, so text shows only the rest.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use heartbeat_core::Config;
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{accept_tcp, Error, Event, JsonCodec, Options, Registry};
use serde_json::json;
use tokio::net::TcpListener;

use crate::output::{ms, Out, Tone};
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
                "interval_ms": ms(config.ping_interval()),
                "timeout_ms": ms(config.pong_timeout()) }),
        Tone::Heading,
        &format!(
            "listening on ws://{local}  (heartbeat every {:?}, timeout {:?}{})",
            config.ping_interval(),
            config.pong_timeout(),
            if app_json { ", JSON heartbeat" } else { "" }
        ),
    );
    let registry = Registry::new();
    // Every accepted TCP connection gets the next number, whether or not its
    // upgrade succeeds: `conn` in its events, `client<conn>` in text.
    let next_conn = AtomicU64::new(1);
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
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        let options = observed(&options, conn, &out);
        let (registry, out) = (registry.clone(), out.clone());
        tokio::spawn(async move { serve_client(stream, peer, conn, options, registry, out).await });
    }
}

/// `options` for connection `conn`: with `--json`, an observer that prints its pings
/// and pongs.
///
/// It prints from the connection's driver task, at the moment the driver queued the
/// ping or took in the pong (a channel to another task would stamp them later): a
/// tool that stops this process at a `ping` line stops it right after the ping, and
/// a pong's `rtt_ms` is the machine's own measurement. One short line to stdout is
/// the same blocking every other event of this server does.
fn observed(options: &Options, conn: u64, out: &Out) -> Options {
    if !out.is_json() {
        return options.clone();
    }
    let (out, who) = (out.clone(), Arc::<str>::from(format!("client{conn}")));
    options.clone().observe(move |e: &Event| match *e {
        Event::PingSent { seq } => out.event(
            "ping",
            &who,
            json!({ "seq": seq, "conn": conn }),
            Tone::Plain,
            "",
        ),
        Event::Pong { seq, rtt } => out.event(
            "pong",
            &who,
            json!({ "seq": seq, "rtt_ms": ms(rtt), "conn": conn }),
            Tone::Plain,
            "",
        ),
        // The verdict is printed once, as `dead` or `closed`, when the connection's
        // owner gets it (see `serve_client`).
        _ => {}
    })
}

async fn serve_client(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    conn: u64,
    options: Options,
    registry: Registry,
    out: Out,
) {
    let who = format!("client{conn}");
    let keepalive = match accept_tcp(stream, &options, &registry).await {
        Ok((_, keepalive)) => keepalive,
        Err(e) => {
            out.event(
                "handshake_failed",
                &who,
                json!({ "peer": peer.to_string(), "error": e.to_string(), "conn": conn }),
                Tone::Bad,
                &format!("handshake from {peer} failed: {e}"),
            );
            return;
        }
    };
    out.event(
        "connected",
        &who,
        json!({ "peer": peer.to_string(), "clients": registry.len(), "conn": conn }),
        Tone::Good,
        &format!("connected from {peer}  ({} live)", registry.len()),
    );
    let status = keepalive.watch_status();
    let (tx, mut rx) = keepalive.split();
    let end: Error = loop {
        match rx.recv().await {
            Ok(Message::Text(text)) if text.starts_with("/all ") => {
                let msg = Message::Text(text.as_str()["/all ".len()..].into());
                let report = registry.broadcast(&msg);
                out.event(
                    "broadcast",
                    &who,
                    json!({ "queued": report.queued, "dropped": report.dropped, "conn": conn }),
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
    fields["conn"] = json!(conn);
    if let Some(w) = waited {
        fields["silent_ms"] = json!(ms(w));
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
