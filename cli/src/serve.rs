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

use heartbeat_core::Config;
use heartbeat_tokio::tls::ServerTls;
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{Error, Event, JsonCodec, Options, Registry};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{self, UnboundedReceiver};

use crate::connect_opts::accept_client;
use crate::output::{ms, Out, Tone};
use crate::report::{describe_end, end_fields};

/// Binds `bind` and serves until the process is stopped. Returns only on a bind error.
pub async fn run(
    bind: SocketAddr,
    app_json: bool,
    tls: Option<ServerTls>,
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
        json!({ "addr": local.to_string(), "app_json": app_json, "tls": tls.is_some(),
                "interval_ms": ms(config.ping_interval()),
                "timeout_ms": ms(config.pong_timeout()) }),
        Tone::Heading,
        &format!(
            "listening on {}://{local}  (heartbeat every {:?}, timeout {:?}{})",
            if tls.is_some() { "wss" } else { "ws" },
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
        let (options, beats) = observed(&options, &out);
        let client = Client {
            conn,
            registry: registry.clone(),
            out: out.clone(),
            beats,
            tls: tls.clone(),
        };
        tokio::spawn(async move { serve_client(stream, peer, options, client).await });
    }
}

/// With `--json`, `options` plus an observer that forwards the connection's pings
/// and pongs to the returned channel; [`serve_client`] prints them, in order with
/// the connection's other events.
///
/// The observer runs in the connection's driver task and must not block (a stdout
/// pipe nobody reads would stall the heartbeat). The line comes once the driver's
/// turn is over, when the ping it queued is on the wire, as with `ping --json`: a
/// tool that stops this process at a `ping` line stops it with the ping sent.
fn observed(options: &Options, out: &Out) -> (Options, Option<UnboundedReceiver<Event>>) {
    if !out.is_json() {
        return (options.clone(), None);
    }
    let (beats_tx, beats) = mpsc::unbounded_channel();
    let options = options.clone().observe(move |e: &Event| {
        if matches!(e, Event::PingSent { .. } | Event::Pong { .. }) {
            let _ = beats_tx.send(e.clone());
        }
    });
    (options, Some(beats))
}

/// Prints a ping or pong of connection `conn` (JSON only: nothing in text).
fn print_beat(out: &Out, who: &str, conn: u64, e: &Event) {
    let (event, fields) = match *e {
        Event::PingSent { seq } => ("ping", json!({ "seq": seq, "conn": conn })),
        Event::Pong { seq, rtt } => (
            "pong",
            json!({ "seq": seq, "rtt_ms": ms(rtt), "conn": conn }),
        ),
        // The verdict is printed once, as `dead` or `closed`, when the connection's
        // owner gets it (see `serve_client`).
        _ => return,
    };
    out.event(event, who, fields, Tone::Plain, "");
}

/// The next ping or pong to print; never, without `--json` or once the driver is gone.
async fn next_beat(beats: &mut Option<UnboundedReceiver<Event>>) -> Event {
    match beats {
        Some(rx) => match rx.recv().await {
            Some(e) => e,
            None => {
                *beats = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// What one connection's task needs besides its socket and options.
struct Client {
    /// Its number, in accept order.
    conn: u64,
    /// The server's live clients.
    registry: Registry,
    /// Where events go.
    out: Out,
    /// Its pings and pongs, with `--json` (see [`observed`]).
    beats: Option<UnboundedReceiver<Event>>,
    /// The server's certificate when serving `wss://`.
    tls: Option<ServerTls>,
}

async fn serve_client(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    options: Options,
    client: Client,
) {
    let Client {
        conn,
        registry,
        out,
        mut beats,
        tls,
    } = client;
    let who = format!("client{conn}");
    let accepted = accept_client(stream, peer, tls.as_ref(), &options, &registry).await;
    let keepalive = match accepted {
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
        let next = tokio::select! {
            e = next_beat(&mut beats) => {
                print_beat(&out, &who, conn, &e);
                continue;
            }
            next = rx.recv() => next,
        };
        match next {
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
    // What the driver reported before its verdict comes first.
    while let Some(e) = beats.as_mut().and_then(|b| b.try_recv().ok()) {
        print_beat(&out, &who, conn, &e);
    }
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
