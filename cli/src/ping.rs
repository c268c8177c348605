//! `heartbeat ping`: ping(8) for WebSocket servers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use heartbeat_core::{CloseCode, Config, DeathReason};
use heartbeat_tokio::{Event, JsonCodec, Limits, Options, Sender};
use serde_json::json;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

use crate::args::{show, PingArgs};
use crate::output::{ms, Out, Tone};
use crate::report::{describe_connect_error, describe_death};
use crate::{rtt, Exit};

/// How the run loop ended.
enum End {
    /// `--count`, `--deadline` or Ctrl-C: the exit code follows from the pongs.
    Stopped,
    /// The connection ended (or could not be made): this exit code.
    Ended(Exit),
}

/// Pings `args.url` until `--count` pongs, `--deadline`, Ctrl-C, or (without
/// `--reconnect`) the end of the connection. Returns the documented exit code.
///
/// It finishes what it started: when stopped it closes with 1000, on a verdict the
/// machine closes (1011 for an unresponsive peer); either way it waits until the
/// connection's driver has let go of the socket (the peer's reply, or
/// close_timeout) before it returns, and prints every event the connection emitted
/// before that.
pub async fn run(args: PingArgs, config: Config, limits: Limits, out: Out) -> Exit {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut options = Options::new(config)
        .limits(limits)
        .observe(move |e: &Event| {
            let _ = events_tx.send(e.clone());
        });
    if args.app_json {
        options = options.codec(JsonCodec);
    }
    let mut connections = match args.connect.connect(&args.url, options) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let (finished_tx, mut finished) = mpsc::channel::<()>(1);
    // The live connection's sender, to close it when the run is stopped.
    let current: Arc<Mutex<Option<Sender>>> = Arc::default();
    // One message per connection whose driver let go of its socket.
    let (released_tx, mut released) = mpsc::unbounded_channel::<()>();
    let holder = current.clone();
    // Hold each live connection and drain its application messages.
    let supervisor = tokio::spawn(async move {
        while let Some(conn) = connections.next().await {
            let mut status = conn.watch_status();
            let (tx, mut rx) = conn.split();
            *lock(&holder) = Some(tx);
            while rx.recv().await.is_ok() {}
            // The watch ends when the driver is gone: the close handshake is over.
            while status.changed().await.is_ok() {}
            lock(&holder).take();
            let _ = released_tx.send(());
        }
        let _ = finished_tx.send(()).await;
    });

    let deadline = until(args.deadline);
    tokio::pin!(deadline);
    let mut summary = Summary::default();
    let mut connected = false;
    let mut verdict = false;
    let who = "ping";
    let mut handle = |event: Event, summary: &mut Summary, verdict: &mut bool| -> Option<End> {
        match event {
            Event::Connected { attempt } => {
                connected = true;
                out.event(
                    "connected",
                    who,
                    json!({ "url": args.url, "attempt": attempt }),
                    Tone::Good,
                    &format!(
                        "connected to {} (heartbeat {}every {}, timeout {})",
                        args.url,
                        if args.app_json { "JSON " } else { "" },
                        show(config.ping_interval()),
                        show(config.pong_timeout())
                    ),
                );
            }
            Event::PingSent { seq } => {
                summary.sent += 1;
                out.event("ping", who, json!({ "seq": seq }), Tone::Plain, "");
            }
            Event::Pong { seq, rtt } => {
                summary.pong(rtt);
                out.event(
                    "pong",
                    who,
                    json!({ "seq": seq, "rtt_ms": ms(rtt) }),
                    Tone::Plain,
                    &format!("pong seq={seq} rtt={:.3} ms", ms(rtt)),
                );
                if args.count.is_some_and(|n| summary.received >= n) {
                    return Some(End::Stopped);
                }
            }
            Event::Dead { reason, .. } => {
                let fault = reason.is_fault();
                out.event(
                    "dead",
                    who,
                    dead_fields(&reason),
                    if fault { Tone::Bad } else { Tone::Plain },
                    &describe_death(&reason),
                );
                if !args.reconnect {
                    *verdict = true;
                    return Some(End::Ended(match reason {
                        DeathReason::PongTimeout { .. } => Exit::Unresponsive,
                        _ => Exit::ConnectionEnded,
                    }));
                }
            }
            Event::Closed { code } => out.event(
                "closed",
                who,
                json!({ "code": code }),
                Tone::Plain,
                &format!("closed with {code}"),
            ),
            Event::Reconnecting { after, attempt } => out.event(
                "reconnecting",
                who,
                json!({ "delay_ms": ms(after), "attempt": attempt }),
                Tone::Plain,
                &format!("reconnecting in {} (attempt {attempt})", show(after)),
            ),
            Event::ConnectFailed { error } => {
                let cause = describe_connect_error(&error);
                if !args.reconnect {
                    // Fatal: the one error line, on stderr as every other.
                    if out.is_json() {
                        out.event(
                            "connect_failed",
                            who,
                            json!({ "error": cause }),
                            Tone::Bad,
                            "",
                        );
                    } else {
                        eprintln!("heartbeat: cannot connect to {}: {cause}", args.url);
                    }
                    return Some(End::Ended(Exit::ConnectionEnded));
                }
                out.event(
                    "connect_failed",
                    who,
                    json!({ "error": cause }),
                    Tone::Bad,
                    &format!("cannot connect: {cause}"),
                );
            }
            _ => {}
        }
        None
    };
    // Registered once, before the loop: a Ctrl-C between two turns is not lost.
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let end = loop {
        // Biased: every event already emitted is printed before an end is taken.
        tokio::select! {
            biased;
            event = events.recv() => {
                let Some(event) = event else { break End::Ended(Exit::ConnectionEnded) };
                if let Some(end) = handle(event, &mut summary, &mut verdict) {
                    break end;
                }
            }
            _ = finished.recv() => break End::Ended(Exit::ConnectionEnded),
            _ = recv_signal(&mut interrupt) => break End::Stopped,
            _ = &mut deadline => break End::Stopped,
        }
    };
    // Finish what was started: close a connection still open (Ctrl-C, --count,
    // --deadline), then wait for its driver to let go of the socket: the peer's
    // reply to our close, or close_timeout. After a verdict the machine's own
    // close runs.
    let open = lock(&current).clone();
    if let Some(tx) = open.filter(|_| !verdict) {
        let _ = tx.close(CloseCode::NORMAL).await;
    }
    let bound = config.close_timeout() + Duration::from_millis(500);
    if lock(&current).is_some() || verdict {
        let _ = tokio::time::timeout(bound, released.recv()).await;
    }
    supervisor.abort();
    // Events the connection emitted while it closed (its close, say) are printed too.
    while let Ok(event) = events.try_recv() {
        let _ = handle(event, &mut summary, &mut verdict);
    }
    if connected {
        summary.print(&out, &args.url);
    }
    match end {
        End::Ended(exit) => exit,
        End::Stopped => summary.exit_code(args.count, args.deadline.is_some()),
    }
}

/// The next delivery of `signal`; never, if it could not be registered.
async fn recv_signal(signal: &mut Option<Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only an Option is stored; a panic elsewhere cannot leave it inconsistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Resolves after `deadline`, or never.
async fn until(deadline: Option<Duration>) {
    match deadline {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// JSON fields for a death: the reason as a word, plus what it carries.
pub fn dead_fields(reason: &DeathReason) -> serde_json::Value {
    match *reason {
        DeathReason::PongTimeout { waited } => {
            json!({ "reason": "pong_timeout", "waited_ms": ms(waited) })
        }
        DeathReason::PeerClosed { code } => json!({ "reason": "peer_closed", "code": code }),
        DeathReason::TransportClosed => json!({ "reason": "transport_closed" }),
        DeathReason::ProtocolError(e) => {
            json!({ "reason": "protocol_error", "detail": e.to_string() })
        }
        DeathReason::PingFlood => json!({ "reason": "ping_flood" }),
        DeathReason::LocalClose { code } => json!({ "reason": "local_close", "code": code }),
        DeathReason::ConnectFailed(cause) => {
            json!({ "reason": "connect_failed", "detail": cause.to_string() })
        }
        _ => json!({ "reason": "other", "detail": reason.to_string() }),
    }
}

/// ping(8)-style statistics.
#[derive(Default)]
pub struct Summary {
    /// Pings sent.
    pub sent: u64,
    /// Pongs received.
    pub received: u64,
    rtts: Vec<f64>,
}

impl Summary {
    /// Records one pong's RTT.
    pub fn pong(&mut self, rtt: Duration) {
        self.received += 1;
        self.rtts.push(ms(rtt));
    }

    /// How a run that was stopped (count, deadline or Ctrl-C) ends, as ping(8) says:
    /// 1 if no pong ever came, or if a count and a deadline were both given and the
    /// deadline came first; 0 otherwise.
    pub fn exit_code(&self, count: Option<u64>, deadline: bool) -> Exit {
        let short = deadline && count.is_some_and(|n| self.received < n);
        if self.received == 0 || short {
            Exit::Unresponsive
        } else {
            Exit::Ok
        }
    }

    /// (min, avg, max, mdev) in milliseconds, as ping(8) computes them.
    pub fn rtt_stats(&self) -> Option<(f64, f64, f64, f64)> {
        if self.rtts.is_empty() {
            return None;
        }
        let n = self.rtts.len() as f64;
        let min = self.rtts.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.rtts.iter().copied().fold(0.0, f64::max);
        let avg = self.rtts.iter().sum::<f64>() / n;
        let sq = self.rtts.iter().map(|x| x * x).sum::<f64>() / n;
        Some((min, avg, max, (sq - avg * avg).max(0.0).sqrt()))
    }

    fn print(&self, out: &Out, url: &str) {
        // A ping still in flight when the run stops is not lost.
        let answered = self.received.min(self.sent);
        let loss = if self.sent == 0 {
            0.0
        } else {
            100.0 * (self.sent - answered) as f64 / self.sent as f64
        };
        let stats = self.rtt_stats();
        let mut fields = json!({ "sent": self.sent, "received": self.received, "loss_pct": (loss * 10.0).round() / 10.0 });
        let mut sorted = self.rtts.clone();
        sorted.sort_by(f64::total_cmp);
        let p = |q| rtt::percentile(&sorted, q).unwrap_or(0.0);
        let (p50, p90, p99) = (p(50.0), p(90.0), p(99.0));
        let histogram = rtt::histogram(&sorted);
        if let Some((min, avg, max, mdev)) = stats {
            fields["rtt_min_ms"] = json!(min);
            fields["rtt_avg_ms"] = json!(avg);
            fields["rtt_max_ms"] = json!(max);
            fields["rtt_mdev_ms"] = json!(mdev);
            fields["rtt_p50_ms"] = json!(p50);
            fields["rtt_p90_ms"] = json!(p90);
            fields["rtt_p99_ms"] = json!(p99);
        }
        if let Some((edges, counts)) = &histogram {
            fields["rtt_histogram"] = json!({ "edges_ms": edges, "counts": counts });
        }
        out.event(
            "summary",
            "ping",
            fields,
            Tone::Heading,
            &format!("--- {url} heartbeat statistics ---"),
        );
        out.line(&format!(
            "{} pings sent, {} pongs received, {loss:.1}% loss",
            self.sent, self.received
        ));
        if let Some((min, avg, max, mdev)) = stats {
            out.line(&format!(
                "rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms"
            ));
            out.line(&format!("rtt p50/p90/p99 = {p50:.3}/{p90:.3}/{p99:.3} ms"));
        }
        if let Some((edges, counts)) = histogram {
            out.line(&format!(
                "rtt histogram {:.3} ms |{}| {:.3} ms",
                edges[0],
                rtt::sparkline(&counts),
                edges[edges.len() - 1]
            ));
        }
    }
}
