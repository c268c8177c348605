//! The hand-written heartbeat users write today with tokio-tungstenite: one task
//! per connection, `tokio::select!` over the next frame, a ping interval and a pong
//! deadline. `loop` runs it at tungstenite's defaults (128 KiB read buffer),
//! `loop4k` with a 4 KiB read buffer. TCP_NODELAY on both ends. A client whose
//! connection ends reconnects after one ping interval.

use core::time::Duration;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::args::{Impl, RoleArgs, Which};
use crate::child::{self, Counters};

pub fn run(args: &RoleArgs) -> Result<(), Box<dyn std::error::Error>> {
    let counters = Arc::new(Counters::new());
    let rt = super::runtime()?;
    let ws_config = match args.imp {
        Impl::Loop4k => WebSocketConfig::default().read_buffer_size(4096),
        _ => WebSocketConfig::default(),
    };
    let timing = Timing {
        interval: args.interval,
        timeout: args.timeout,
    };
    let rx = child::commands(|| {});
    let held = counters.clone();
    match args.which {
        Which::Server => {
            let (port, listeners) = rt.block_on(super::bind_all(args.addrs))?;
            for listener in listeners {
                rt.spawn(serve(listener, ws_config, timing, counters.clone()));
            }
            child::emit(&serde_json::json!({ "ev": "listening", "port": port }));
            child::serve_commands(&rx, &counters, || held.live_now(), || {});
        }
        _ => {
            child::emit(&serde_json::json!({ "ev": "ready" }));
            let gate = Arc::new(Semaphore::new(child::CONNECT_CONCURRENCY));
            child::serve_commands(
                &rx,
                &counters,
                || held.live_now(),
                || {
                    super::spawn_clients(&rt, args, |url| {
                        let client = Client {
                            url,
                            ws_config,
                            timing,
                            counters: counters.clone(),
                            n: args.conns,
                            mark: args.planted > 0,
                        };
                        client.run(gate.clone())
                    });
                },
            );
        }
    }
    std::process::exit(0);
}

#[derive(Clone, Copy)]
struct Timing {
    interval: Duration,
    timeout: Duration,
}

/// How one connection ended.
enum End {
    /// No pong within the timeout: our verdict.
    Timeout,
    /// Closed, EOF or an error.
    Closed,
}

/// The loop itself: ping every interval, expect the pong within the timeout.
/// `planted` is set when the peer sends the planted mark.
async fn heartbeat<S>(
    mut ws: WebSocketStream<S>,
    t: Timing,
    counters: &Counters,
    planted: &mut bool,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut tick = tokio::time::interval_at(Instant::now() + t.interval, t.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = tokio::time::sleep(t.timeout);
    tokio::pin!(deadline);
    // The ping awaiting its pong: (sequence number, when sent).
    let mut outstanding: Option<(u64, Instant)> = None;
    let mut seq = 0u64;
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Pong(payload))) => {
                    if let Some((s, sent)) = outstanding {
                        if payload[..] == s.to_be_bytes() {
                            counters.pong(sent.elapsed());
                            outstanding = None;
                        }
                    }
                }
                // tungstenite queues the pong for a ping and writes it on the next read.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return End::Closed,
                Some(Ok(msg)) => *planted |= child::is_mark(&msg),
            },
            _ = tick.tick() => {
                if outstanding.is_none() {
                    seq += 1;
                    let ping = Message::Ping(seq.to_be_bytes().to_vec().into());
                    if ws.send(ping).await.is_err() {
                        return End::Closed;
                    }
                    let now = Instant::now();
                    outstanding = Some((seq, now));
                    deadline.as_mut().reset(now + t.timeout);
                }
            }
            _ = &mut deadline, if outstanding.is_some() => return End::Timeout,
        }
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    ws_config: WebSocketConfig,
    t: Timing,
    counters: Arc<Counters>,
) {
    super::accept_loop(listener, "loop", move |tcp| {
        let counters = counters.clone();
        async move {
            let _ = tcp.set_nodelay(true);
            let Ok(ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(ws_config)).await
            else {
                return;
            };
            counters.open();
            let mut planted = false;
            let end = heartbeat(ws, t, &counters, &mut planted).await;
            counters.end_of(planted, matches!(end, End::Timeout), None);
        }
    })
    .await
}

struct Client {
    url: String,
    ws_config: WebSocketConfig,
    timing: Timing,
    counters: Arc<Counters>,
    n: usize,
    /// This is the planted peers' process: send the mark first.
    mark: bool,
}

impl Client {
    async fn run(self, gate: Arc<Semaphore>) {
        let mut permit = Some(gate.acquire_owned().await);
        loop {
            let connected = tokio_tungstenite::connect_async_with_config(
                self.url.as_str(),
                Some(self.ws_config),
                true, // TCP_NODELAY
            )
            .await;
            if let Ok((mut ws, _)) = connected {
                if permit.take().is_some() {
                    self.counters.first_open(self.n);
                }
                self.counters.open();
                if self.mark {
                    let _ = ws.send(Message::text(child::PLANTED_MARK)).await;
                }
                let end = heartbeat(ws, self.timing, &self.counters, &mut false).await;
                self.counters.end(matches!(end, End::Timeout));
            }
            tokio::time::sleep(self.timing.interval).await;
        }
    }
}
