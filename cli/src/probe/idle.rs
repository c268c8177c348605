//! The idle search: connections held idle for different spans at once, then
//! narrowed, to find how long the path lets a silent connection live.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use heartbeat_tokio::tungstenite::{self, Message};
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use super::{open, Limits};
use crate::args::{show, ProbeArgs};
use crate::output::{ms, Out, Tone};

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum How {
    /// The server's close frame (its code, if any).
    CloseFrame(Option<u16>),
    /// The stream ended without a close frame.
    Fin,
    /// A reset.
    Rst,
}

impl How {
    pub(super) fn word(self) -> &'static str {
        match self {
            How::CloseFrame(_) => "close_frame",
            How::Fin => "fin",
            How::Rst => "rst",
        }
    }

    pub(super) fn describe(self) -> String {
        match self {
            How::CloseFrame(Some(code)) => format!("closed by the server (close frame {code})"),
            How::CloseFrame(None) => "closed by the server (close frame)".to_owned(),
            How::Fin => "closed (FIN, no close frame)".to_owned(),
            How::Rst => "reset (RST)".to_owned(),
        }
    }
}

/// What one idle connection showed.
#[derive(Clone, Debug)]
enum Outcome {
    /// Answered a ping after its idle span.
    Alive,
    /// Ended while idle, this long after it opened.
    Closed { after: Duration, how: How },
    /// Its ping after the idle span went unanswered: silently dropped.
    Silent,
    /// Its ping after the idle span was answered with an end (a path that forgot
    /// the flow and resets it when used).
    EndedOnUse(How),
    /// Could not connect.
    Failed(String),
}

/// Opens a connection, sends nothing for `span`, then pings it.
async fn trial(url: String, span: Duration, limits: Limits) -> Outcome {
    let mut ws = match open(&url, limits.connect).await {
        Ok(ws) => ws,
        Err(e) => return Outcome::Failed(e),
    };
    let opened = Instant::now();
    loop {
        tokio::select! {
            _ = sleep_until(opened + span) => break,
            msg = ws.next() => match seen(msg) {
                Seen::Traffic => {}
                Seen::End(how) => return Outcome::Closed { after: opened.elapsed(), how },
            },
        }
    }
    if let Err(e) = ws.send(Message::Ping(b"probe".to_vec().into())).await {
        return Outcome::EndedOnUse(how_of(&e));
    }
    let limit = Instant::now() + limits.pong;
    loop {
        tokio::select! {
            _ = sleep_until(limit) => return Outcome::Silent,
            msg = ws.next() => match msg {
                Some(Ok(Message::Pong(_))) => return Outcome::Alive,
                other => match seen(other) {
                    Seen::Traffic => {}
                    Seen::End(how) => return Outcome::EndedOnUse(how),
                },
            },
        }
    }
}

/// A message that keeps the connection going, or its end.
pub(super) enum Seen {
    Traffic,
    End(How),
}

pub(super) fn seen(msg: Option<Result<Message, tungstenite::Error>>) -> Seen {
    match msg {
        None => Seen::End(How::Fin),
        Some(Ok(Message::Close(frame))) => Seen::End(How::CloseFrame(frame.map(|f| f.code.into()))),
        Some(Ok(_)) => Seen::Traffic,
        Some(Err(e)) => Seen::End(how_of(&e)),
    }
}

fn how_of(e: &tungstenite::Error) -> How {
    match e {
        tungstenite::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionReset => How::Rst,
        _ => How::Fin,
    }
}

/// What the idle search found.
#[derive(Default)]
pub(super) struct Idle {
    /// Longest span a connection survived (and answered a ping after).
    pub(super) lo: Duration,
    /// Shortest span after which a connection was gone, if any.
    pub(super) hi: Option<Duration>,
    /// Ends observed while idle: (after how long, how).
    pub(super) closes: Vec<(Duration, How)>,
    /// How a forgotten flow showed when pinged (`None`: it did not, silent).
    pub(super) on_use: Option<How>,
    pub(super) rounds: u32,
    pub(super) trials: u32,
    pub(super) failures: Vec<String>,
}

/// Holds `--parallel` idle connections at once for spans spread up to
/// `--max-idle` (doubling), then narrows between the longest that lived and the
/// shortest that died, round after round, until within `--precision`.
pub(super) async fn idle_search(args: &ProbeArgs, limits: Limits, out: &Out) -> Idle {
    let k = usize::from(args.parallel);
    let mut idle = Idle::default();
    let mut spans: Vec<Duration> = (0..k)
        .map(|i| args.max_idle / 2u32.saturating_pow((k - 1 - i) as u32))
        .filter(|s| !s.is_zero())
        .collect();
    while idle.rounds < MAX_ROUNDS && !spans.is_empty() {
        idle.rounds += 1;
        out.event(
            "round",
            "probe",
            json!({ "round": idle.rounds, "spans_ms": spans.iter().map(|s| ms(*s)).collect::<Vec<_>>() }),
            Tone::Plain,
            &format!(
                "round {}: {} idle connections, {} to {}",
                idle.rounds,
                spans.len(),
                show(spans[0]),
                show(spans[spans.len() - 1])
            ),
        );
        let mut set = JoinSet::new();
        let mut handles = Vec::new();
        for &span in &spans {
            let url = args.url.clone();
            let h = set.spawn(async move { (span, trial(url, span, limits).await) });
            handles.push((span, h));
        }
        while let Some(joined) = set.join_next().await {
            let Ok((span, outcome)) = joined else {
                continue;
            }; // aborted: longer than a death
            idle.trials += 1;
            match outcome {
                Outcome::Alive => idle.lo = idle.lo.max(span),
                Outcome::Closed { after, how } => idle.closes.push((after, how)),
                Outcome::Silent => idle.hi = Some(idle.hi.map_or(span, |h| h.min(span))),
                Outcome::EndedOnUse(how) => {
                    idle.hi = Some(idle.hi.map_or(span, |h| h.min(span)));
                    idle.on_use = Some(how);
                }
                Outcome::Failed(e) => idle.failures.push(e),
            }
            // A longer span than one that died can teach nothing more.
            if let Some(hi) = idle.hi {
                for (s, h) in &handles {
                    if *s > hi {
                        h.abort();
                    }
                }
            }
        }
        if !idle.closes.is_empty() {
            break; // measured directly, to the millisecond
        }
        let Some(hi) = idle.hi else { break }; // alive through --max-idle
        if hi <= idle.lo {
            break; // inconsistent (a flaky path): report what was seen
        }
        let width = hi - idle.lo;
        let mid = idle.lo + width / 2;
        if width.as_secs_f64() / 2.0 <= args.precision * mid.as_secs_f64() {
            break;
        }
        spans = (1..=k)
            .map(|i| idle.lo + width.mul_f64(i as f64 / (k + 1) as f64))
            .collect();
    }
    idle
}

/// Narrowing rounds at most (each divides the range by `--parallel` + 1).
const MAX_ROUNDS: u32 = 5;
