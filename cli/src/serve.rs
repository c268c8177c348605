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

use std::time::Duration;

use heartbeat_core::{CloseCode, Config};
use heartbeat_tokio::metrics::Metrics;
use heartbeat_tokio::tls::ServerTls;
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{
    AcceptBackoff, AcceptPause, Error, Event, JsonCodec, Limits, Options, Registry,
};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::task::JoinSet;

use crate::args::show;
use crate::connect_opts::accept_client;
use crate::metrics_http;
use crate::output::{ms, Out, Tone};
use crate::report::{describe_end, end_fields};

/// Binds `bind` and serves until SIGINT or SIGTERM, then closes every client with
/// 1001 (going away), waits for their close handshakes (bounded by
/// close_timeout) and returns `Ok`. Returns an error only if it cannot listen.
///
/// Connections past `limits.max_connections` or `limits.max_handshakes` are
/// refused; out of file descriptors, accepting backs off (10–100 ms, one log line
/// per episode) and resumes by itself when descriptors free up.
pub async fn run(
    bind: SocketAddr,
    app_json: bool,
    metrics_addr: Option<SocketAddr>,
    tls: Option<ServerTls>,
    config: Config,
    limits: Limits,
    out: Out,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(bind).await?;
    let local = listener.local_addr()?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut options = Options::new(config).limits(limits);
    if app_json {
        options = options.codec(JsonCodec);
    }
    let metrics = Metrics::new();
    out.event(
        "listening",
        "server",
        json!({ "addr": local.to_string(), "app_json": app_json, "tls": tls.is_some(),
                "interval_ms": ms(config.ping_interval()),
                "timeout_ms": ms(config.pong_timeout()) }),
        Tone::Heading,
        &format!(
            "listening on {}://{local}  (heartbeat every {}, timeout {}{})",
            if tls.is_some() { "wss" } else { "ws" },
            show(config.ping_interval()),
            show(config.pong_timeout()),
            if app_json { ", JSON heartbeat" } else { "" }
        ),
    );
    if let Some(addr) = metrics_addr {
        let bound = metrics_http::serve(addr, metrics.clone(), options.clone()).await?;
        out.event(
            "metrics",
            "server",
            json!({ "addr": bound.to_string(), "path": "/metrics" }),
            Tone::Plain,
            &format!("metrics on http://{bound}/metrics"),
        );
    }
    let registry = Registry::with_limits(&limits);
    // Every accepted TCP connection gets the next number, whether or not its
    // upgrade succeeds: `conn` in its events, `client<conn>` in text.
    let next_conn = AtomicU64::new(1);
    let mut clients = JoinSet::new();
    let mut backoff = AcceptBackoff::new();
    let signal = loop {
        let accepted = tokio::select! {
            biased;
            _ = interrupt.recv() => break "SIGINT",
            _ = terminate.recv() => break "SIGTERM",
            r = listener.accept() => r,
        };
        while clients.try_join_next().is_some() {} // reap finished clients
        let (stream, peer) = match accepted {
            Ok(conn) => {
                if let Some(errors) = backoff.accepted() {
                    out.event(
                        "accept_resumed",
                        "server",
                        json!({ "errors": errors }),
                        Tone::Good,
                        &format!("accepting again ({errors} accept errors while exhausted)"),
                    );
                }
                conn
            }
            Err(e) => {
                match backoff.failed(&e) {
                    // Out of descriptors: retrying at once would spin a core; wait,
                    // then retry the listener itself (the backlog is still there).
                    AcceptPause::Wait { delay, first } => {
                        if first {
                            out.event(
                                "accept_paused",
                                "server",
                                json!({ "error": e.to_string() }),
                                Tone::Bad,
                                &format!("accept failed: {e}; backing off until resources free up"),
                            );
                        }
                        tokio::time::sleep(delay).await;
                    }
                    // A connection reset before it was accepted: keep serving.
                    AcceptPause::Retry => out.event(
                        "error",
                        "server",
                        json!({ "error": e.to_string() }),
                        Tone::Bad,
                        &format!("accept failed: {e}"),
                    ),
                }
                continue;
            }
        };
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        let (options, beats) = observed(&options, &out, &metrics);
        let client = Client {
            conn,
            registry: registry.clone(),
            out: out.clone(),
            beats,
            tls: tls.clone(),
        };
        clients.spawn(async move { serve_client(stream, peer, options, client).await });
    };
    shut_down(signal, &registry, clients, config, &out).await;
    Ok(())
}

/// Closes every live client with 1001 and waits for the connection tasks, which
/// end once their close handshake is over (the peer's reply or close_timeout).
/// Handshakes still in progress are abandoned after that bound.
async fn shut_down(
    signal: &str,
    registry: &Registry,
    mut clients: JoinSet<()>,
    config: Config,
    out: &Out,
) {
    let live = registry.ids();
    out.event(
        "shutdown",
        "server",
        json!({ "signal": signal, "clients": live.len() }),
        Tone::Heading,
        &format!("{signal}: closing {} clients with 1001", live.len()),
    );
    for id in live {
        if let Some(sender) = registry.sender(id) {
            // Concurrently, and within the same bound: a client whose queue is
            // full must not hold up the others' closes, or the exit.
            clients.spawn(async move {
                let _ = sender.close(CloseCode::GOING_AWAY).await;
            });
        }
    }
    let grace = config.close_timeout() + Duration::from_millis(500);
    let _ = tokio::time::timeout(grace, async {
        while clients.join_next().await.is_some() {}
    })
    .await;
    clients.shutdown().await;
}

/// With `--json`, `options` plus an observer that forwards the connection's pings
/// and pongs to the returned channel; [`serve_client`] prints them, in order with
/// the connection's other events.
///
/// The observer runs in the connection's driver task and must not block (a stdout
/// pipe nobody reads would stall the heartbeat). The line comes once the driver's
/// turn is over, when the ping it queued is on the wire, as with `ping --json`: a
/// tool that stops this process at a `ping` line stops it with the ping sent.
///
/// Every event is counted in `metrics` too (served with `--metrics`).
fn observed(
    options: &Options,
    out: &Out,
    metrics: &Metrics,
) -> (Options, Option<UnboundedReceiver<Event>>) {
    let metrics = metrics.clone();
    if !out.is_json() {
        let options = options.clone().observe(move |e: &Event| metrics.record(e));
        return (options, None);
    }
    let (beats_tx, beats) = mpsc::unbounded_channel();
    let options = options.clone().observe(move |e: &Event| {
        metrics.record(e);
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
    let mut status = keepalive.watch_status();
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
                match tx.send(msg).await {
                    Ok(()) => {}
                    // An echo over --max-outbound: refused, the connection goes on.
                    Err(Error::TooLarge { len, max }) => out.event(
                        "send_refused",
                        &who,
                        json!({ "len": len, "max": max, "conn": conn }),
                        Tone::Bad,
                        &format!("echo of {len} bytes refused (limit {max})"),
                    ),
                    Err(e) => break e,
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
    // The task ends when the driver has let go of the socket, so a shutdown that
    // waits for the tasks waits for every close handshake.
    while status.changed().await.is_ok() {}
}
