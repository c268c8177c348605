//! The report: what was measured, and the interval and timeout to configure,
//! each with its reason in one line.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::busy::Pings;
use super::idle::{How, Idle};
use crate::args::{show, ProbeArgs};
use crate::output::{ms, Out, Tone};
use crate::rtt;

/// Everything measured, and what to configure.
pub(super) struct Report {
    fields: Value,
    lines: Vec<String>,
}

impl Report {
    pub(super) fn new(args: &ProbeArgs, p: &Pings, idle: &Idle) -> Report {
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

        // A silent drop is told by an unanswered ping: meaningless when the server
        // answers none. Ends seen while idle (close frame, FIN, RST) still count.
        let knowable = answers || !idle.closes.is_empty();
        let timeout = idle_timeout(idle).filter(|_| knowable);
        let (closes_word, idle_line) = match (&timeout, idle.hi) {
            _ if !knowable => (
                "unknown",
                "closes idle connections: cannot tell (the server answers no pings, so a silent drop looks like a live connection)"
                    .to_owned(),
            ),
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

    pub(super) fn print(&self, out: &Out) {
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

/// The interval recommended when nothing on the path needs a shorter one.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(20);
/// The shortest timeout recommended, whatever the RTT.
const MIN_TIMEOUT: Duration = Duration::from_secs(1);
