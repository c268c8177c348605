//! A child process that prints one JSON object per line (each with an `"event"`
//! field), read as it runs: every line is stamped with the instant the test saw it.
//!
//! The `heartbeat` CLI with `--json` and the lab's own adapter binaries print this
//! format. [`JsonProc`] keeps the whole log (for assertions and for the context a
//! failure prints), hands events out one by one ([`JsonProc::wait_for`]), and can
//! stop the process from its reader thread the moment a chosen event is printed
//! ([`JsonProc::stop_on`]): microseconds after the line, before the process has had
//! time to read what its peer answered.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::signal;

/// One line a process printed, stamped when the test read it.
#[derive(Clone, Debug)]
pub struct Event {
    /// When the reader thread got the line (the process printed it just before).
    pub at: Instant,
    /// The line as printed.
    pub line: String,
    /// The line parsed as JSON (`Value::Null` if it is not JSON).
    pub value: Value,
}

impl Event {
    /// The `"event"` field (`""` if there is none).
    pub fn name(&self) -> &str {
        self.value["event"].as_str().unwrap_or("")
    }

    /// Whether this is the event `name`.
    pub fn is(&self, name: &str) -> bool {
        self.name() == name
    }

    /// A field of the event (`Value::Null` if absent).
    pub fn get(&self, field: &str) -> &Value {
        &self.value[field]
    }

    /// The `"seq"` field as a number.
    pub fn seq(&self) -> Option<u64> {
        self.value["seq"].as_u64()
    }

    /// The `"reason"` field as text (`""` if absent).
    pub fn reason(&self) -> &str {
        self.value["reason"].as_str().unwrap_or("")
    }
}

/// A running child whose stdout is read as JSON lines. Dropping it resumes (if
/// stopped), kills and reaps the process.
pub struct JsonProc {
    name: String,
    child: Child,
    started: Instant,
    events: Receiver<Event>,
    shared: Arc<Shared>,
}

/// A stop armed by [`JsonProc::stop_on`], fired by the reader thread.
type Trigger = (Box<dyn Fn(&Event) -> bool + Send>, Sender<Stopped>);

struct Shared {
    log: Mutex<Vec<Event>>,
    stderr: Mutex<VecDeque<String>>,
    trigger: Mutex<Option<Trigger>>,
}

/// What [`JsonProc::stop_on`] reports once it has stopped the process.
#[derive(Clone, Debug)]
pub struct Stopped {
    /// The event that triggered the stop.
    pub event: Event,
    /// When `SIGSTOP` was sent (just after the event was read).
    pub at: Instant,
}

impl JsonProc {
    /// Spawns `cmd` with stdout and stderr piped (stdin closed). `name` labels the
    /// process in failure messages.
    pub fn spawn(name: &str, mut cmd: Command) -> io::Result<JsonProc> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("spawn {name} ({cmd:?}): {e}")))?;
        let started = Instant::now();
        let pid = child.id();
        let shared = Arc::new(Shared {
            log: Mutex::new(Vec::new()),
            stderr: Mutex::new(VecDeque::new()),
            trigger: Mutex::new(None),
        });
        let (tx, events) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            let shared = shared.clone();
            std::thread::spawn(move || read_stdout(stdout, pid, &shared, &tx));
        }
        if let Some(stderr) = child.stderr.take() {
            let shared = shared.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut tail = lock(&shared.stderr);
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            });
        }
        Ok(JsonProc {
            name: name.to_owned(),
            child,
            started,
            events,
            shared,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The label given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When the process was spawned.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The next event not yet handed out, waiting up to `timeout`.
    pub fn next_event(&self, timeout: Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Hands out events until one satisfies `pred` and returns it. Fails (with
    /// [`context`](Self::context) in the message) after `timeout`, or when the
    /// process closed its stdout. `what` names the awaited event in that message.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Result<Event, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if pred(&e) => return Ok(e),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: no {what} within {timeout:?}\n{}",
                        self.name,
                        self.context(30)
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!(
                        "{}: output ended before {what}\n{}",
                        self.name,
                        self.context(30)
                    ))
                }
            }
        }
    }

    /// Arms a stop: the reader thread sends `SIGSTOP` as soon as it reads an event
    /// satisfying `pred` (before handing it out), then reports it on the returned
    /// channel. Replaces any stop armed earlier and not yet fired.
    pub fn stop_on(&self, pred: impl Fn(&Event) -> bool + Send + 'static) -> Receiver<Stopped> {
        let (tx, rx) = mpsc::channel();
        *lock(&self.shared.trigger) = Some((Box::new(pred), tx));
        rx
    }

    /// Sends `SIGSTOP` now; returns when it was sent.
    pub fn stop(&self) -> io::Result<Instant> {
        signal::stop(self.pid())?;
        Ok(Instant::now())
    }

    /// Sends `SIGCONT` now; returns the instant just *before* it was sent (nothing
    /// the process prints after resuming can be stamped earlier, even if the test
    /// thread is descheduled right after the signal).
    pub fn resume(&self) -> io::Result<Instant> {
        let at = Instant::now();
        signal::resume(self.pid())?;
        Ok(at)
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// A copy of every event read so far (handed out or not).
    pub fn events(&self) -> Vec<Event> {
        lock(&self.shared.log).clone()
    }

    /// The events named `name` read so far.
    pub fn events_named(&self, name: &str) -> Vec<Event> {
        lock(&self.shared.log)
            .iter()
            .filter(|e| e.is(name))
            .cloned()
            .collect()
    }

    /// What to print when a check fails: the last `n` lines of stdout, each with the
    /// seconds since spawn at which the test read it, the stderr tail, and the exit
    /// status if any.
    pub fn context(&self, n: usize) -> String {
        let mut out = String::new();
        let log = lock(&self.shared.log);
        let _ = writeln!(
            out,
            "--- {} (pid {}): last {} of {} lines, +s = when the test read them",
            self.name,
            self.child.id(),
            n.min(log.len()),
            log.len()
        );
        for e in log.iter().skip(log.len().saturating_sub(n)) {
            let _ = writeln!(
                out,
                "  +{:8.3}s {}",
                e.at.duration_since(self.started).as_secs_f64(),
                e.line
            );
        }
        drop(log);
        let stderr = lock(&self.shared.stderr);
        if !stderr.is_empty() {
            let _ = writeln!(
                out,
                "--- {} stderr (last {} lines)",
                self.name,
                stderr.len()
            );
            for line in stderr.iter() {
                let _ = writeln!(out, "  {line}");
            }
        }
        out
    }
}

impl Drop for JsonProc {
    fn drop(&mut self) {
        let _ = signal::resume(self.pid());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_stdout(stdout: std::process::ChildStdout, pid: u32, shared: &Shared, tx: &Sender<Event>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let event = Event {
            at: Instant::now(),
            value: serde_json::from_str(&line).unwrap_or(Value::Null),
            line,
        };
        let mut trigger = lock(&shared.trigger);
        if trigger.as_ref().is_some_and(|(pred, _)| pred(&event)) {
            let _ = signal::stop(pid);
            let at = Instant::now();
            if let Some((_, done)) = trigger.take() {
                let _ = done.send(Stopped {
                    event: event.clone(),
                    at,
                });
            }
        }
        drop(trigger);
        lock(&shared.log).push(event.clone());
        if tx.send(event).is_err() {
            // Nobody hands events out any more; keep logging for `context`.
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

const STDERR_TAIL: usize = 40;

#[cfg(test)]
mod tests {
    use super::*;

    fn printer(script: &str) -> JsonProc {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        JsonProc::spawn("sh", cmd).unwrap()
    }

    #[test]
    fn events_are_parsed_logged_and_handed_out_in_order() {
        let mut p = printer(
            r#"echo '{"event":"ping","seq":1}'; echo 'not json'; echo '{"event":"pong","seq":1}'; echo oops >&2"#,
        );
        let pong = p
            .wait_for("pong", Duration::from_secs(5), |e| e.is("pong"))
            .unwrap();
        assert_eq!(pong.seq(), Some(1));
        let names: Vec<String> = p.events().iter().map(|e| e.name().to_owned()).collect();
        assert_eq!(names, ["ping", "", "pong"]);
        let err = p
            .wait_for("dead", Duration::from_secs(5), |e| e.is("dead"))
            .unwrap_err();
        assert!(err.contains("output ended before dead"), "{err}");
        assert!(err.contains("not json"), "{err}");
        std::thread::sleep(Duration::from_millis(100));
        assert!(p.context(10).contains("oops"), "{}", p.context(10));
    }

    #[test]
    fn stop_on_stops_the_process_at_the_chosen_line() {
        // Prints a ping after 300 ms, then (unless stopped) a pong 300 ms later.
        let p =
            printer(r#"sleep 0.3; echo '{"event":"ping"}'; sleep 0.3; echo '{"event":"pong"}'"#);
        let stopped = p.stop_on(|e| e.is("ping"));
        let s = stopped.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(s.event.is("ping"));
        assert!(p
            .next_event(Duration::from_secs(5))
            .is_some_and(|e| e.is("ping")));
        // Stopped: no pong before the resume, although it was due 300 ms later.
        assert!(p.next_event(Duration::from_millis(1000)).is_none());
        p.resume().unwrap();
        let pong = p.next_event(Duration::from_secs(5)).unwrap();
        assert!(pong.is("pong"));
        let gap = pong.at.duration_since(s.at);
        assert!(gap >= Duration::from_millis(1000), "{gap:?}");
    }
}
