//! `heartbeat probe`: what keepalive does this path need? Measures whether the
//! server answers our pings (and how fast), whether it pings us, whether and how
//! idle connections are closed or silently dropped, the path's idle timeout, and
//! recommends an interval and a timeout.
//!
//! Every measurement uses plain WebSocket connections with no heartbeat of ours: an
//! idle connection must carry nothing but what the server sends.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use heartbeat_tokio::tokio_tungstenite::{self, MaybeTlsStream, WebSocketStream};
use heartbeat_tokio::tungstenite::{self, Message};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use crate::args::{show, Common, ProbeArgs};
use crate::output::{ms, Out, Tone};
use crate::{rtt, Exit};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Runs every measurement (the RTT and server-ping watch alongside the idle
/// search) and prints the report. Exit 0 once measured, 3 if the first connection
/// fails.
pub async fn run(args: ProbeArgs, common: &Common, out: Out) -> Exit {
    let limits = Limits {
        connect: common.connect_timeout.unwrap_or(Duration::from_secs(10)),
        pong: common.timeout.unwrap_or(Duration::from_secs(2)),
    };
    let ws = match open(&args.url, limits.connect).await {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("heartbeat: cannot connect to {}: {e}", args.url);
            return Exit::ConnectionEnded;
        }
    };
    out.event(
        "probing",
        "probe",
        json!({ "url": args.url, "max_idle_ms": ms(args.max_idle) }),
        Tone::Heading,
        &format!(
            "probing {} (idle spans up to {}, {} at a time)",
            args.url,
            show(args.max_idle),
            args.parallel
        ),
    );
    let (pings, idle) = tokio::join!(
        ping_and_watch(ws, &args, limits),
        idle_search(&args, limits, &out)
    );
    Report::new(&args, &pings, &idle).print(&out);
    Exit::Ok
}

/// How long a connect and a pong may take.
#[derive(Clone, Copy)]
struct Limits {
    connect: Duration,
    pong: Duration,
}

async fn open(url: &str, limit: Duration) -> Result<Ws, String> {
    let config = heartbeat_tokio::small_buffers();
    let connecting = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
    match tokio::time::timeout(limit, connecting).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "not connected within {} (connect timeout)",
            show(limit)
        )),
    }
}

// ----- RTT and the server's own pings -------------------------------------------

/// What the busy connection saw.
#[derive(Default)]
struct Pings {
    sent: u64,
    rtts: Vec<Duration>,
    /// When each of the server's pings arrived.
    server_pings: Vec<Instant>,
    /// How the connection ended early, if it did.
    ended: Option<How>,
}

/// Sends `--pings` pings 100 ms apart and watches for the server's pings for
/// `--watch`, on one connection.
async fn ping_and_watch(mut ws: Ws, args: &ProbeArgs, limits: Limits) -> Pings {
    let start = Instant::now();
    let mut p = Pings::default();
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut next_ping = start;
    let last_ping_by = start + PING_SPACING * (args.pings as u32);
    let done_at = (last_ping_by + limits.pong).max(start + args.watch);
    loop {
        let pinging = p.sent < args.pings;
        tokio::select! {
            _ = sleep_until(next_ping), if pinging => {
                let seq = p.sent;
                if ws.send(Message::Ping(seq.to_be_bytes().to_vec().into())).await.is_err() {
                    p.ended = Some(How::Fin);
                    break;
                }
                sent_at.push(Instant::now());
                p.sent += 1;
                next_ping += PING_SPACING;
            }
            _ = sleep_until(done_at) => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Pong(payload))) => {
                    let seq = <[u8; 8]>::try_from(payload.as_ref()).map(u64::from_be_bytes);
                    if let Some(at) = seq.ok().and_then(|s| sent_at.get(s as usize)) {
                        p.rtts.push(at.elapsed());
                    }
                }
                Some(Ok(Message::Ping(_))) => p.server_pings.push(Instant::now()),
                other => match seen(other) {
                    Seen::Traffic => {}
                    Seen::End(how) => {
                        p.ended = Some(how);
                        break;
                    }
                },
            },
        }
    }
    let _ = ws.close(None).await;
    p
}

// ----- the idle timeout -----------------------------------------------------------

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// The server's close frame (its code, if any).
    CloseFrame(Option<u16>),
    /// The stream ended without a close frame.
    Fin,
    /// A reset.
    Rst,
}

impl How {
    fn word(self) -> &'static str {
        match self {
            How::CloseFrame(_) => "close_frame",
            How::Fin => "fin",
            How::Rst => "rst",
        }
    }

    fn describe(self) -> String {
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
enum Seen {
    Traffic,
    End(How),
}

fn seen(msg: Option<Result<Message, tungstenite::Error>>) -> Seen {
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
struct Idle {
    /// Longest span a connection survived (and answered a ping after).
    lo: Duration,
    /// Shortest span after which a connection was gone, if any.
    hi: Option<Duration>,
    /// Ends observed while idle: (after how long, how).
    closes: Vec<(Duration, How)>,
    /// How a forgotten flow showed when pinged (`None`: it did not, silent).
    on_use: Option<How>,
    rounds: u32,
    trials: u32,
    failures: Vec<String>,
}

/// Holds `--parallel` idle connections at once for spans spread up to
/// `--max-idle` (doubling), then narrows between the longest that lived and the
/// shortest that died, round after round, until within `--precision`.
async fn idle_search(args: &ProbeArgs, limits: Limits, out: &Out) -> Idle {
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

// ----- the report -------------------------------------------------------------------

/// Everything measured, and what to configure.
struct Report {
    fields: Value,
    lines: Vec<String>,
}

impl Report {
    fn new(args: &ProbeArgs, p: &Pings, idle: &Idle) -> Report {
        let mut lines = Vec::new();
        let mut sorted: Vec<f64> = p.rtts.iter().map(|d| ms(*d)).collect();
        sorted.sort_by(f64::total_cmp);
        let p50 = rtt::percentile(&sorted, 50.0);
        let p99 = rtt::percentile(&sorted, 99.0);
        let answers = !p.rtts.is_empty();
        lines.push(match (p50, p99) {
            (Some(a), Some(b)) => format!(
                "answers our pings: yes, RTT p50 {a:.3} ms, p99 {b:.3} ms ({} of {} answered)",
                p.rtts.len(),
                p.sent
            ),
            _ => format!("answers our pings: no ({} sent, none answered)", p.sent),
        });

        let server_interval = median_gap(&p.server_pings);
        lines.push(match (p.server_pings.len(), server_interval) {
            (0, _) => format!("pings us:          no (none in {})", show(args.watch)),
            (_, Some(every)) => format!(
                "pings us:          yes, every ~{} ({} pings seen)",
                show(every),
                p.server_pings.len()
            ),
            (n, None) => format!("pings us:          yes ({n} ping in {})", show(args.watch)),
        });

        let timeout = idle_timeout(idle);
        let (closes_word, idle_line) = match (&timeout, idle.hi) {
            (Some((x, Some(how))), _) => (
                how.word(),
                format!(
                    "closes idle connections: yes, {} after ~{} idle",
                    how.describe(),
                    show(*x)
                ),
            ),
            (Some((x, None)), Some(hi)) => (
                match idle.on_use {
                    Some(how) => how.word(),
                    None => "silent",
                },
                format!(
                    "closes idle connections: {} after ~{} idle (alive after {}, gone after {})",
                    match idle.on_use {
                        Some(how) => format!("dropped, then {} when used", how.describe()),
                        None => "silently dropped (a ping got no answer)".to_owned(),
                    },
                    show(*x),
                    show(idle.lo),
                    show(hi)
                ),
            ),
            _ => (
                "none",
                format!(
                    "closes idle connections: no, not within {}",
                    show(args.max_idle)
                ),
            ),
        };
        lines.push(idle_line);
        if p.server_pings.len() > 1 && timeout.is_none() {
            lines.push(
                "  (the server's own pings keep connections active; an idle timeout shorter than their interval would not show)"
                    .to_owned(),
            );
        }

        let rec = recommend(
            args,
            p99.map(|v| Duration::from_secs_f64(v / 1e3)),
            &timeout,
        );
        lines.push(format!(
            "recommend --interval {}: {}",
            show(rec.interval),
            rec.interval_why
        ));
        lines.push(format!(
            "recommend --timeout {}: {}",
            show(rec.timeout),
            rec.timeout_why
        ));

        let fields = json!({
            "url": args.url,
            "answers_pings": answers,
            "pings_sent": p.sent,
            "pongs": p.rtts.len(),
            "rtt_p50_ms": p50,
            "rtt_p99_ms": p99,
            "server_pings": p.server_pings.len(),
            "server_ping_interval_ms": server_interval.map(ms),
            "closes_idle": closes_word,
            "idle_timeout_ms": timeout.map(|(x, _)| ms(x)),
            "idle_alive_ms": ms(idle.lo),
            "idle_gone_ms": idle.hi.map(ms),
            "idle_closes_seen": idle.closes.len(),
            "max_idle_ms": ms(args.max_idle),
            "rounds": idle.rounds,
            "idle_connections": idle.trials,
            "connect_failures": idle.failures.len(),
            "busy_connection_ended": p.ended.map(How::word),
            "recommend": {
                "interval_ms": ms(rec.interval),
                "interval_reason": rec.interval_why,
                "timeout_ms": ms(rec.timeout),
                "timeout_reason": rec.timeout_why,
            },
        });
        Report { fields, lines }
    }

    fn print(&self, out: &Out) {
        out.event(
            "probe",
            "probe",
            self.fields.clone(),
            Tone::Heading,
            "--- probe results ---",
        );
        for line in &self.lines {
            out.line(line);
        }
    }
}

/// The idle timeout and how it showed: measured directly from closes seen while
/// idle (their median), or the middle of the narrowed range (how: `None`).
fn idle_timeout(idle: &Idle) -> Option<(Duration, Option<How>)> {
    if !idle.closes.is_empty() {
        let mut afters: Vec<Duration> = idle.closes.iter().map(|c| c.0).collect();
        afters.sort();
        return Some((afters[afters.len() / 2], Some(idle.closes[0].1)));
    }
    let hi = idle.hi?;
    Some((idle.lo + hi.saturating_sub(idle.lo) / 2, None))
}

/// The typical gap between instants (their median), if there are two.
fn median_gap(at: &[Instant]) -> Option<Duration> {
    let mut gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort();
    gaps.get(gaps.len() / 2).copied()
}

/// What to configure, with the reasoning in one line each.
struct Recommendation {
    interval: Duration,
    interval_why: String,
    timeout: Duration,
    timeout_why: String,
}

fn recommend(
    args: &ProbeArgs,
    p99: Option<Duration>,
    idle: &Option<(Duration, Option<How>)>,
) -> Recommendation {
    let (interval, interval_why) = match idle {
        Some((x, _)) => {
            let interval = round_ms(*x / 2).max(Duration::from_millis(10));
            (
                interval,
                format!(
                    "connections idle for ~{} are dropped; a ping every {} keeps the longest silence at half that",
                    show(*x),
                    show(interval)
                ),
            )
        }
        None => {
            let interval = DEFAULT_INTERVAL.min(round_ms(args.max_idle / 2));
            (
                interval,
                format!(
                    "no idle timeout within {}; {} bounds how long a dead peer goes unnoticed at little cost",
                    show(args.max_idle),
                    show(interval)
                ),
            )
        }
    };
    let (timeout, timeout_why) = match p99 {
        Some(p99) => {
            let timeout = round_ms(p99 * 10).max(MIN_TIMEOUT);
            (
                timeout,
                format!(
                    "RTT p99 is {}; {} is ample headroom for a slow moment, and a dead peer shows within {}",
                    show(p99),
                    show(timeout),
                    show(interval + timeout)
                ),
            )
        }
        None => (
            interval,
            "the server did not answer pings: use --app-json if it speaks that heartbeat, or --liveness any"
                .to_owned(),
        ),
    };
    Recommendation {
        interval,
        interval_why,
        timeout,
        timeout_why,
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

/// Time between the RTT pings.
const PING_SPACING: Duration = Duration::from_millis(100);
/// Narrowing rounds at most (each divides the range by `--parallel` + 1).
const MAX_ROUNDS: u32 = 5;
/// The interval recommended when nothing on the path needs a shorter one.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(20);
/// The shortest timeout recommended, whatever the RTT.
const MIN_TIMEOUT: Duration = Duration::from_secs(1);
