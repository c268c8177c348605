//! The markdown table: one row per implementation and process, with ratios against
//! the `loop4k` run of the same repetition.

use core::fmt::Write;

use crate::args::{Cli, Impl};
use crate::parent::{Figures, Run};

/// Renders every run of `cli` as one markdown table plus notes.
pub fn render(cli: &Cli, runs: &[Run]) -> String {
    let mut s = String::new();
    let per_proc = cli.conns as f64 * cli.secs as f64 / cli.interval.as_secs_f64();
    let reps = cli.reps > 1;
    let _ = writeln!(
        s,
        "{}| process | held | false deaths | lost | round trips | CPU µs/RT | × loop4k | RSS KiB/conn | × loop4k | RTT p50 ms | p99 ms | max ms |",
        if reps { "| rep | impl " } else { "| impl " }
    );
    let _ = writeln!(
        s,
        "{}|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        if reps { "|---|---" } else { "|---" }
    );
    for run in runs {
        let base = runs
            .iter()
            .find(|r| r.rep == run.rep && r.imp == Impl::Loop4k)
            .and_then(|r| r.result.as_ref().ok());
        let lead = if reps {
            format!("| {} | {} ", run.rep + 1, run.imp)
        } else {
            format!("| {} ", run.imp)
        };
        let figs = match &run.result {
            Ok(f) => f,
            Err(e) => {
                let _ = writeln!(s, "{lead}| – | failed: {e} | | | | | | | | | | |");
                continue;
            }
        };
        let total = figs[0].pongs + figs[1].pongs;
        for (i, name) in ["server", "client"].into_iter().enumerate() {
            let f = &figs[i];
            let cpu = cpu_per_rt(f, total);
            let rss = rss_per_conn(f);
            let ratio = |mine: Option<f64>, theirs: Option<f64>| match (mine, theirs) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "–".into(),
            };
            let base_cpu = base.and_then(|b| cpu_per_rt(&b[i], b[0].pongs + b[1].pongs));
            let base_rss = base.map(|b| rss_per_conn(&b[i]));
            let _ = writeln!(
                s,
                "{lead}| {name} | {}/{} | {} | {} | {} ({:.0} %) | {} | {} | {:.1} | {} | {} | {} | {} |",
                f.held,
                cli.conns,
                f.timeouts,
                f.lost,
                f.pongs,
                100.0 * f.pongs as f64 / per_proc,
                cpu.map_or("–".into(), |c| format!("{c:.1}")),
                ratio(cpu, base_cpu),
                rss,
                ratio(Some(rss), base_rss),
                ms(f.p50_us),
                ms(f.p99_us),
                ms(f.max_us),
            );
        }
    }
    let mut notes = String::new();
    for run in runs {
        for n in &run.notes {
            let _ = writeln!(notes, "- {} (rep {}): {n}", run.imp, run.rep + 1);
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(s, "\n{notes}");
    }
    s
}

/// The legend printed under the table.
pub fn legend(cli: &Cli) -> String {
    let per_proc = cli.conns as f64 * cli.secs as f64 / cli.interval.as_secs_f64();
    format!(
        "- held: connections open at the end. false deaths: the process's own pong-timeout verdicts \
         over the whole run (every peer is healthy here, so each one is false). lost: connections \
         it saw end for any reason (its own verdicts, the peer's, errors).\n\
         - round trips: pongs matching the process's own pings during the {} s window (% of the \
         {per_proc:.0} a process pinging exactly on time would get).\n\
         - CPU µs/RT: the process's utime+stime over the window (/proc/PID/stat, 10 ms ticks) divided \
         by all round trips of the pair (server's plus client's): both processes take part in every \
         round trip, one pinging, one answering.\n\
         - RSS KiB/conn: (VmRSS at the end of the window − VmRSS before the first connection) / the \
         connections the process opened ({}, less any planted ones for the client: those are \
         another process's).\n\
         - RTT: the pinging process's own measure, from its ping to the matching pong.\n",
        cli.secs, cli.conns
    )
}

fn cpu_per_rt(f: &Figures, total: u64) -> Option<f64> {
    (total > 0).then(|| f.cpu_us as f64 / total as f64)
}

fn rss_per_conn(f: &Figures) -> f64 {
    f.rss_end.saturating_sub(f.rss_base) as f64 / f.conns.max(1) as f64
}

/// The planted dead peers of each run: how many the server declared dead, how
/// long after their process was stopped, against the stated bound.
pub fn render_planted(cli: &Cli, runs: &[Run]) -> String {
    if !runs.iter().any(|r| r.planted.is_some()) {
        return String::new();
    }
    let base = cli.interval + cli.timeout * 2;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Planted dead peers (server side), bound = interval + 2 × timeout + 5 × local lag = {:.2} s + 5 × lag:\n",
        base.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "| rep | impl | planted | detected | detection p50 s | max s | max lag at verdict s | within bound |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        let Some(p) = &run.planted else { continue };
        let mut delays: Vec<u64> = p.detections.iter().map(|d| d.0).collect();
        delays.sort_unstable();
        let pick = |q: f64| {
            delays
                .get(((delays.len() as f64 - 1.0) * q).round() as usize)
                .map_or("–".into(), |&us| format!("{:.2}", us as f64 / 1e6))
        };
        let lags: Vec<u64> = p.detections.iter().filter_map(|d| d.1).collect();
        let max_lag = lags
            .iter()
            .max()
            .map_or("n/a".into(), |&us| format!("{:.2}", us as f64 / 1e6));
        let within = p
            .detections
            .iter()
            .filter(|(delay, lag)| {
                let lag = lag.unwrap_or(0).min(MAX_LOCAL_LAG_US);
                *delay <= base.as_micros() as u64 + 5 * lag
            })
            .count();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {}/{} |",
            run.rep + 1,
            run.imp,
            p.k,
            p.detections.len(),
            pick(0.5),
            pick(1.0),
            max_lag,
            within,
            p.detections.len(),
        );
    }
    let _ = writeln!(
        s,
        "\n- detected: the server's pong-timeout verdicts on planted peers (not counted as false \
         deaths), as the application learns them. Delays run from the SIGSTOP (wall clock, read by \
         the parent and the server). Lag L: what the verdict allowed for (`Status::local_lag`, \
         capped at the default `max_local_lag`, 5 s); n/a where the implementation does not report \
         it (counted as 0).\n\
         - bound: the next ping is due within the interval and its timer may run late by l; its pong \
         deadline is the timeout plus L, found late by l; a deadline found later than timeout / 4 is \
         taken for our own stall and gets one fresh probe (timeout + L, late by l) before the \
         verdict: interval + 2 × (timeout + L) + 3 × l, with l, the timers' lateness, measured by L."
    );
    s
}

/// `Config`'s default `max_local_lag`, µs: the most a verdict may be extended.
const MAX_LOCAL_LAG_US: u64 = 5_000_000;

fn ms(us: u64) -> String {
    if us >= 100_000 {
        format!("{:.0}", us as f64 / 1000.0)
    } else {
        format!("{:.2}", us as f64 / 1000.0)
    }
}
