//! heartbeat-tokio's lean path, as its README shows it: `KeepAliveStream`, the
//! heartbeat inside the application's own task (one task per connection, no
//! channels), polled in a `while let Some(..) = ws.next().await` loop as a
//! hand-written loop would be. The server accepts with `accept_stream` into a
//! `Registry`; the client opens each connection with `KeepAliveStream::connect`
//! and reconnects after one interval when it ends, like the hand-written loop.
//! `Options::observe` counts pongs, RTT and verdicts.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use heartbeat_core::DeathReason;
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{accept_stream, Error, Event, KeepAliveStream, Options, Registry};
use tokio::sync::Semaphore;

use crate::args::{RoleArgs, Which};
use crate::child::{self, Counters};

pub fn run(args: &RoleArgs) -> Result<(), Box<dyn std::error::Error>> {
    let counters = Arc::new(Counters::new());
    let rt = super::runtime()?;
    let c = counters.clone();
    // Shared: each connection's task holds a pointer, not its own 448-byte copy.
    let server = args.which == Which::Server;
    let options = Arc::new(super::tokio_options(args, move |e| observe(&c, e, server))?);
    let rx = child::commands(|| {});
    match args.which {
        Which::Server => {
            let registry = Registry::new();
            let (port, listeners) = rt.block_on(super::bind_all(args.addrs))?;
            for listener in listeners {
                let (options, registry) = (options.clone(), registry.clone());
                rt.spawn(serve(listener, options, registry, counters.clone()));
            }
            child::emit(&serde_json::json!({ "ev": "listening", "port": port }));
            child::serve_commands(&rx, &counters, || registry.len() as u64, || {});
        }
        _ => {
            child::emit(&serde_json::json!({ "ev": "ready" }));
            let gate = Arc::new(Semaphore::new(child::CONNECT_CONCURRENCY));
            let held = counters.clone();
            let interval = args.interval;
            let mark = args.planted > 0;
            child::serve_commands(
                &rx,
                &counters,
                || held.live_now(),
                || {
                    super::spawn_clients(&rt, args, |url| {
                        let (options, gate, counters) =
                            (options.clone(), gate.clone(), counters.clone());
                        client(url, options, gate, counters, args.conns, interval, mark)
                    })
                },
            );
        }
    }
    std::process::exit(0);
}

/// Counts what the connection reports. A server counts verdicts per connection
/// instead (in `serve`), where it knows a planted peer's from the others.
fn observe(c: &Counters, e: &Event, server: bool) {
    match e {
        Event::Pong { rtt, .. } => c.pong(*rtt),
        Event::Dead { reason, .. } if !server => {
            c.end(matches!(reason, DeathReason::PongTimeout { .. }))
        }
        _ => {}
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    options: Arc<Options>,
    registry: Registry,
    counters: Arc<Counters>,
) {
    super::accept_loop(listener, "tokio-stream", move |tcp| {
        let (options, registry) = (options.clone(), registry.clone());
        let counters = counters.clone();
        async move {
            let Ok((_id, mut ws)) = accept_stream(tcp, &options, &registry).await else {
                return;
            };
            counters.open();
            // Counted at the verdict (detection time); the stream then runs the
            // close handshake before it ends.
            let (mut counted, mut planted) = (false, false);
            while let Some(item) = ws.next().await {
                if let Ok(msg) = &item {
                    planted |= child::is_mark(msg);
                }
                if let (Err(e), false) = (item, counted) {
                    counted = true;
                    let timeout = matches!(e, Error::PeerUnresponsive { .. });
                    counters.end_of(planted, timeout, Some(ws.status().local_lag));
                }
            }
            if !counted {
                counters.end_of(planted, false, None);
            }
        }
    })
    .await
}

async fn client(
    url: String,
    options: Arc<Options>,
    gate: Arc<Semaphore>,
    counters: Arc<Counters>,
    n: usize,
    interval: std::time::Duration,
    mark: bool,
) {
    let mut permit = Some(gate.acquire_owned().await);
    loop {
        if let Ok(mut ws) = KeepAliveStream::connect(&url, &options).await {
            if permit.take().is_some() {
                counters.first_open(n);
            }
            counters.open();
            if mark {
                let _ = ws.send(Message::text(child::PLANTED_MARK)).await;
            }
            while ws.next().await.is_some() {}
        }
        tokio::time::sleep(interval).await;
    }
}
