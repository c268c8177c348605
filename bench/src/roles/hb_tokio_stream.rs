//! heartbeat-tokio's lean path: `KeepAliveStream`, the heartbeat inside the
//! application's own task (one task per connection, no channels), polled in a
//! `while let Some(..) = ws.next().await` loop as a hand-written loop would be. The
//! client reconnects after one interval when a connection ends, like the
//! hand-written loop. `Options::observe` counts pongs, RTT and verdicts.

use std::sync::Arc;

use futures_util::StreamExt;
use heartbeat_core::DeathReason;
use heartbeat_tokio::{small_buffers, Event, KeepAliveStream, Options};
use tokio::sync::Semaphore;

use crate::args::{RoleArgs, Which};
use crate::child::{self, Counters};

pub fn run(args: &RoleArgs) -> Result<(), Box<dyn std::error::Error>> {
    let counters = Arc::new(Counters::new());
    let rt = super::runtime()?;
    let c = counters.clone();
    let options = super::tokio_options(args, move |e| observe(&c, e))?;
    let rx = child::commands(|| {});
    match args.which {
        Which::Server => {
            let (port, listeners) = rt.block_on(super::bind_all(args.addrs))?;
            for listener in listeners {
                rt.spawn(serve(listener, options.clone(), counters.clone()));
            }
            child::emit(&serde_json::json!({ "ev": "listening", "port": port }));
            let held = counters.clone();
            child::serve_commands(&rx, &counters, || held.live_now(), || {});
        }
        _ => {
            child::emit(&serde_json::json!({ "ev": "ready" }));
            let gate = Arc::new(Semaphore::new(child::CONNECT_CONCURRENCY));
            let held = counters.clone();
            let interval = args.interval;
            child::serve_commands(
                &rx,
                &counters,
                || held.live_now(),
                || {
                    super::spawn_clients(&rt, args, |url| {
                        let (options, gate, counters) =
                            (options.clone(), gate.clone(), counters.clone());
                        client(url, options, gate, counters, args.conns, interval)
                    })
                },
            );
        }
    }
    std::process::exit(0);
}

/// Counts what the connection reports.
fn observe(c: &Counters, e: &Event) {
    match e {
        Event::Pong { rtt, .. } => c.pong(*rtt),
        Event::Dead { reason, .. } => c.end(matches!(reason, DeathReason::PongTimeout { .. })),
        _ => {}
    }
}

async fn serve(listener: tokio::net::TcpListener, options: Options, counters: Arc<Counters>) {
    super::accept_loop(listener, "tokio-stream", move |tcp| {
        let (options, counters) = (options.clone(), counters.clone());
        async move {
            let Ok(mut ws) = KeepAliveStream::accept(tcp, &options).await else {
                return;
            };
            counters.open();
            while ws.next().await.is_some() {}
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
    interval: std::time::Duration,
) {
    let mut permit = Some(gate.acquire_owned().await);
    loop {
        let connected =
            tokio_tungstenite::connect_async_with_config(url.as_str(), Some(small_buffers()), true)
                .await;
        if let Ok((raw, _)) = connected {
            if permit.take().is_some() {
                counters.first_open(n);
            }
            counters.open();
            let mut ws = KeepAliveStream::new(raw, &options);
            while ws.next().await.is_some() {}
        }
        tokio::time::sleep(interval).await;
    }
}
