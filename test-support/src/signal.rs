//! Pausing and resuming processes: `SIGSTOP` / `SIGCONT` by pid.
//!
//! A stopped process does nothing at all, yet its kernel keeps its sockets up and
//! ACKs what arrives: for the process itself this is the honest "own stall" (timers,
//! readiness and completed writes all become due at once on resume), and for its
//! peers it is a hung peer that only an application-level ping can notice.
//!
//! These call `kill(2)` directly (no `kill` command to spawn), so a stop can follow
//! an event within microseconds.

use std::io;

use rustix::process::{kill_process, Pid, Signal};

/// Sends `SIGSTOP` to `pid`: the process stops at once, wherever it is.
pub fn stop(pid: u32) -> io::Result<()> {
    send(pid, Signal::STOP)
}

/// Sends `SIGCONT` to `pid`: a stopped process resumes.
pub fn resume(pid: u32) -> io::Result<()> {
    send(pid, Signal::CONT)
}

/// Sends `SIGKILL` to `pid`.
pub fn kill(pid: u32) -> io::Result<()> {
    send(pid, Signal::KILL)
}

/// Whether the effective user is root (network namespaces and nftables need it).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn send(pid: u32, signal: Signal) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("bad pid {pid}")))?;
    kill_process(pid, signal).map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Duration;

    /// Reads the state letter of `/proc/PID/stat` (`T` = stopped).
    fn state(pid: u32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.chars().next().unwrap()
    }

    #[test]
    fn a_stopped_child_is_in_state_t_until_resumed() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        stop(pid).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(state(pid), 'T');
        resume(pid).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_ne!(state(pid), 'T');
        kill(pid).unwrap();
        child.wait().unwrap();
    }
}
