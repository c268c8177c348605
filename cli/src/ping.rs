//! `heartbeat ping`: ping(8) for WebSocket servers.

use std::time::Duration;

use heartbeat_core::{Config, DeathReason};
use heartbeat_tokio::{connect, Event, JsonCodec, Options};
use serde_json::json;
use tokio::sync::mpsc;

use crate::args::PingArgs;
use crate::output::{ms, Out, Tone};
use crate::Exit;

/// Pings `args.url` until `--count` pongs, Ctrl-C, or (without `--reconnect`) the end
/// of the connection. Returns the documented exit code.
pub async fn run(args: PingArgs, config: Config, out: Out) -> Exit {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut options = Options::new(config).observe(move |e: &Event| {
        let _ = events_tx.send(e.clone());
    });
    if args.app_json {
        options = options.codec(JsonCodec);
    }
    let request = match args.connect.request(&args.url) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("heartbeat: {e}");
            return Exit::Usage;
        }
    };
    let mut connections = match connect(request, options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("heartbeat: {e}");
            return Exit::Usage;
        }
    };
    let (finished_tx, mut finished) = mpsc::channel::<()>(1);
    // Hold each live connection and drain its application messages.
    tokio::spawn(async move {
        while let Some(conn) = connections.next().await {
            let (_tx, mut rx) = conn.split();
            while rx.recv().await.is_ok() {}
        }
        let _ = finished_tx.send(()).await;
    });

    let mut summary = Summary::default();
    let who = "ping";
    let exit = loop {
        tokio::select! {
            // Events before the end: the failure that ended the client is reported.
            biased;
            _ = tokio::signal::ctrl_c() => break Exit::Ok,
            event = events.recv() => {
                let Some(event) = event else { break Exit::ConnectionEnded };
                match event {
                    Event::Connected { attempt } => out.event("connected", who,
                        json!({ "url": args.url, "attempt": attempt }), Tone::Good,
                        &format!("connected to {} (heartbeat {}{:?}, timeout {:?})", args.url,
                            if args.app_json { "JSON every " } else { "every " },
                            config.ping_interval(), config.pong_timeout())),
                    Event::PingSent { seq } => {
                        summary.sent += 1;
                        out.event("ping", who, json!({ "seq": seq }), Tone::Plain, "");
                    }
                    Event::Pong { seq, rtt } => {
                        summary.pong(rtt);
                        out.event("pong", who, json!({ "seq": seq, "rtt_ms": ms(rtt) }), Tone::Plain,
                            &format!("pong seq={seq} rtt={:.3} ms", ms(rtt)));
                        if args.count.is_some_and(|n| summary.received >= n) {
                            break Exit::Ok;
                        }
                    }
                    Event::Dead { reason, .. } => {
                        let fault = reason.is_fault();
                        out.event("dead", who, dead_fields(&reason), if fault { Tone::Bad } else { Tone::Plain },
                            &format!("{reason}"));
                        if !args.reconnect {
                            break match reason {
                                DeathReason::PongTimeout { .. } => Exit::Unresponsive,
                                _ => Exit::ConnectionEnded,
                            };
                        }
                    }
                    Event::Closed { code } => out.event("closed", who, json!({ "code": code }), Tone::Plain,
                        &format!("closed with {code}")),
                    Event::Reconnecting { after, attempt } => out.event("reconnecting", who,
                        json!({ "delay_ms": ms(after), "attempt": attempt }), Tone::Plain,
                        &format!("reconnecting in {:.0} ms (attempt {attempt})", ms(after))),
                    Event::ConnectFailed { error } => {
                        out.event("connect_failed", who, json!({ "error": error.to_string() }), Tone::Bad,
                            &error.to_string());
                        if !args.reconnect {
                            break Exit::ConnectionEnded;
                        }
                    }
                    _ => {}
                }
            }
            _ = finished.recv() => break Exit::ConnectionEnded,
        }
    };
    summary.print(&out, &args.url);
    exit
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
        if let Some((min, avg, max, mdev)) = stats {
            fields["rtt_min_ms"] = json!(min);
            fields["rtt_avg_ms"] = json!(avg);
            fields["rtt_max_ms"] = json!(max);
            fields["rtt_mdev_ms"] = json!(mdev);
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
        }
    }
}
