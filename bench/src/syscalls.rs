//! System calls per round trip (`--syscalls`): `perf stat` attached to a child for
//! the measured window, counting the kernel's syscall-entry tracepoints.
//!
//! The same figure by hand, for one process (strace shows each call's share too,
//! but slows the process down many times over):
//!
//! ```text
//! perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto -p PID -- sleep 30
//! strace -c -f -p PID      # Ctrl-C after the window
//! ```

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A `perf stat` running over one child's window.
pub struct Counting(Result<(Child, PathBuf), String>);

/// Starts counting the system calls of process `pid` (every thread) for `secs`.
pub fn count(pid: u32, secs: u64) -> Counting {
    let out = std::env::temp_dir().join(format!("heartbeat-bench-perf-{pid}.csv"));
    let events: Vec<String> = std::iter::once("raw_syscalls:sys_enter".to_owned())
        .chain(CALLS.iter().map(|c| format!("syscalls:sys_enter_{c}")))
        .collect();
    let started = Command::new("perf")
        .args(["stat", "-x", ",", "-o"])
        .arg(&out)
        .args(["-e", &events.join(",")])
        .args(["-p", &pid.to_string(), "--", "sleep", &secs.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(|child| (child, out))
        .map_err(|e| format!("cannot run perf: {e} (apt-get install linux-perf)"));
    Counting(started)
}

/// The calls of one process over the window.
pub struct Counts {
    /// Every system call.
    pub total: u64,
    /// `(name, count)` of the calls in [`CALLS`] that happened.
    pub calls: Vec<(&'static str, u64)>,
}

impl Counting {
    /// Waits for the window's end and reads the counts.
    pub fn finish(self) -> Result<Counts, String> {
        let (child, out) = self.0?;
        let done = child.wait_with_output().map_err(|e| e.to_string())?;
        let csv = std::fs::read_to_string(&out);
        let _ = std::fs::remove_file(&out);
        if !done.status.success() {
            return Err(format!(
                "perf failed: {}",
                String::from_utf8_lossy(&done.stderr).trim()
            ));
        }
        parse(&csv.map_err(|e| e.to_string())?)
    }
}

impl Counts {
    /// "2.05 per round trip (recvfrom 0.98, sendto 0.75, ...)": the calls over
    /// `rts` round trips (the pair's, as for CPU).
    pub fn per_round_trip(&self, rts: u64) -> String {
        let per = |n: u64| n as f64 / rts.max(1) as f64;
        let parts: Vec<String> = self
            .calls
            .iter()
            .map(|(name, n)| format!("{name} {:.2}", per(*n)))
            .collect();
        format!(
            "{:.2} per round trip ({}; {} calls in the window)",
            per(self.total),
            parts.join(", "),
            self.total
        )
    }
}

/// Reads `perf stat -x ,` output: `value,unit,event,...` per line.
fn parse(csv: &str) -> Result<Counts, String> {
    let mut total = None;
    let mut calls = Vec::new();
    for line in csv.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let mut fields = line.split(',');
        let value = fields.next().unwrap_or("");
        let event = fields.nth(1).unwrap_or("");
        // `<not counted>`: the process never ran a call of this kind.
        let n: u64 = value.parse().unwrap_or(0);
        if event == "raw_syscalls:sys_enter" {
            total = Some(n);
        } else if let Some(name) = event.strip_prefix("syscalls:sys_enter_") {
            if let Some(c) = CALLS.iter().find(|c| **c == name) {
                if n > 0 {
                    calls.push((*c, n));
                }
            }
        }
    }
    let total = total.ok_or_else(|| format!("no total in perf output: {csv:?}"))?;
    Ok(Counts { total, calls })
}

/// The calls itemised: socket reads and writes and the event-loop waits, in the
/// forms the implementations here use.
const CALLS: [&str; 9] = [
    "recvfrom",
    "read",
    "sendto",
    "write",
    "writev",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "futex",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_csv_is_read_with_totals_and_the_calls_that_happened() {
        let csv = "# started on Mon\n\n12000,,raw_syscalls:sys_enter,100,100.00,,\n\
                   5000,,syscalls:sys_enter_recvfrom,100,100.00,,\n\
                   <not counted>,,syscalls:sys_enter_read,0,100.00,,\n";
        let c = parse(csv).unwrap();
        assert_eq!(c.total, 12000);
        assert_eq!(c.calls, [("recvfrom", 5000)]);
        assert_eq!(
            c.per_round_trip(6000),
            "2.00 per round trip (recvfrom 0.83; 12000 calls in the window)"
        );
    }
}
