//! heartbeat-tokio as its README shows it: the server accepts with `accept_tcp`
//! into a `Registry` and reads each connection until it ends; the client opens each
//! connection with `connect` (which reconnects by itself) and reads it until it
//! ends. `Options::observe` counts pongs, RTT and verdicts on both sides.

use std::sync::Arc;

use heartbeat_core::DeathReason;
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{accept_tcp, connect, Error, Event, Options, Registry};
use tokio::sync::Semaphore;

use crate::args::{RoleArgs, Which};
use crate::child::{self, Counters};

pub fn run(args: &RoleArgs) -> Result<(), Box<dyn std::error::Error>> {
    let counters = Arc::new(Counters::new());
    let rt = super::runtime()?;
    let c = counters.clone();
    let server = args.which == Which::Server;
    let options = super::tokio_options(args, move |e| observe(&c, e, server))?;
    let rx = child::commands(|| {});
    match args.which {
        Which::Server => {
            let registry = Registry::new();
            // Shared: each connection's task holds a pointer, not its own copy.
            let options = Arc::new(options);
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
            let mark = args.planted > 0;
            let gate = Arc::new(Semaphore::new(child::CONNECT_CONCURRENCY));
            let held = counters.clone();
            child::serve_commands(
                &rx,
                &counters,
                || held.live_now(),
                || {
                    super::spawn_clients(&rt, args, |url| {
                        let (options, gate, counters) =
                            (options.clone(), gate.clone(), counters.clone());
                        client(url, options, gate, counters, args.conns, mark)
                    })
                },
            );
        }
    }
    // Exit without tearing down thousands of connections one by one.
    std::process::exit(0);
}

/// Counts what the driver reports. A server counts verdicts per connection
/// instead (in `serve`), where it knows a planted peer's from the others.
fn observe(c: &Counters, e: &Event, server: bool) {
    match e {
        Event::Pong { rtt, .. } => c.pong(*rtt),
        Event::Connected { .. } => c.open(),
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
    super::accept_loop(listener, "tokio", move |tcp| {
        let (options, registry, counters) = (options.clone(), registry.clone(), counters.clone());
        async move {
            let Ok((_id, conn)) = accept_tcp(tcp, &options, &registry).await else {
                return;
            };
            let (_tx, mut rx) = conn.split();
            let mut planted = false;
            let verdict = loop {
                match rx.recv().await {
                    Ok(msg) => planted |= child::is_mark(&msg),
                    Err(e) => break e,
                }
            };
            let timeout = matches!(verdict, Error::PeerUnresponsive { .. });
            counters.end_of(planted, timeout, Some(rx.status().local_lag));
        }
    })
    .await
}

async fn client(
    url: String,
    options: Options,
    gate: Arc<Semaphore>,
    counters: Arc<Counters>,
    n: usize,
    mark: bool,
) {
    let permit = gate.acquire_owned().await;
    let Ok(mut connections) = connect(url, options) else {
        // The URL is built by the bench from a bound address; it is always valid.
        return;
    };
    let mut first = Some(permit);
    while let Some(conn) = connections.next().await {
        if first.take().is_some() {
            counters.first_open(n);
        }
        let (tx, mut rx) = conn.split();
        if mark {
            let _ = tx.send(Message::text(child::PLANTED_MARK)).await;
        }
        while rx.recv().await.is_ok() {}
    }
}
