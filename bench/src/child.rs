//! What every child process shares: counters, the stdin command channel, the
//! stdout JSON-lines report, the server addresses, and a lifetime bound.
//!
//! Protocol (one JSON object per stdout line, one word per stdin line):
//! - server: `{"ev":"listening","port":P}` once its listeners are bound;
//! - client: `{"ev":"ready"}`, then it waits for `connect`, then opens its
//!   connections and prints `{"ev":"opened"}` when all of them have opened once;
//! - `mark`: zero the round-trip counter and the RTT histogram, answer `{"ev":"mark",…}`;
//! - `report`: answer `{"ev":"report",…}` with the counters (see [`Counters::json`]);
//! - `quit` or end of stdin: exit at once (the kernel closes the sockets).

use core::time::Duration;
use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::hist::Histogram;

/// A child's counters, updated from any thread.
pub struct Counters {
    /// Matched pongs (round trips this process's pings completed) since `mark`.
    pub pongs: AtomicU64,
    /// This process's own pong-timeout verdicts, since the start.
    pub timeouts: AtomicU64,
    /// Connections that ended for any reason (own verdicts included), since the start.
    pub lost: AtomicU64,
    /// Connections that opened (reconnects included), since the start.
    pub opened: AtomicU64,
    /// Connections open now, for implementations without a count of their own.
    pub live: AtomicI64,
    /// First connections opened (client), to know when all N are up.
    first: AtomicU64,
    /// RTT of matched pongs since `mark`.
    pub rtt: Histogram,
    /// Server: our pong-timeout verdicts on planted peers, as (wall-clock µs since
    /// the Unix epoch, local lag the verdict allowed for in µs if known).
    detections: Mutex<Vec<(u64, Option<u64>)>>,
}

impl Counters {
    /// All zero.
    pub fn new() -> Counters {
        Counters {
            detections: Mutex::new(Vec::new()),
            pongs: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            live: AtomicI64::new(0),
            first: AtomicU64::new(0),
            rtt: Histogram::new(),
        }
    }

    /// One matched pong after `rtt`.
    pub fn pong(&self, rtt: Duration) {
        self.pongs.fetch_add(1, Relaxed);
        self.rtt.record(rtt.as_micros() as u64);
    }

    /// A connection opened.
    pub fn open(&self) {
        self.opened.fetch_add(1, Relaxed);
        self.live.fetch_add(1, Relaxed);
    }

    /// A connection ended; `timeout` if by this process's own pong-timeout verdict.
    pub fn end(&self, timeout: bool) {
        self.lost.fetch_add(1, Relaxed);
        self.live.fetch_sub(1, Relaxed);
        if timeout {
            self.timeouts.fetch_add(1, Relaxed);
        }
    }

    /// A connection ended; `planted` if it was a planted dead peer's, whose
    /// pong-timeout verdict is a detection (timed on the wall clock, which the
    /// parent also reads when it stops the peer), never a false death.
    pub fn end_of(&self, planted: bool, timeout: bool, lag: Option<Duration>) {
        if !planted {
            return self.end(timeout);
        }
        self.lost.fetch_add(1, Relaxed);
        self.live.fetch_sub(1, Relaxed);
        if timeout {
            let at = unix_us();
            let lag = lag.map(|l| l.as_micros() as u64);
            lock(&self.detections).push((at, lag));
        }
    }

    /// A client's connection opened for the first time; prints `opened` when this
    /// was the `n`th.
    pub fn first_open(&self, n: usize) {
        if self.first.fetch_add(1, Relaxed) + 1 == n as u64 {
            emit(&serde_json::json!({ "ev": "opened" }));
        }
    }

    /// Starts the measured window.
    pub fn mark(&self) {
        self.pongs.store(0, Relaxed);
        self.rtt.reset();
    }

    /// The counters as the report line `ev` (with `held` connections open now).
    pub fn json(&self, ev: &str, held: u64) -> serde_json::Value {
        let s = self.rtt.summary();
        serde_json::json!({
            "ev": ev,
            "pongs": self.pongs.load(Relaxed),
            "timeouts": self.timeouts.load(Relaxed),
            "lost": self.lost.load(Relaxed),
            "opened": self.opened.load(Relaxed),
            "held": held,
            "samples": s.samples,
            "p50_us": s.p50,
            "p99_us": s.p99,
            "max_us": s.max,
            "planted": lock(&self.detections).clone(),
        })
    }

    /// Connections open now, by the [`live`](Self::live) count.
    pub fn live_now(&self) -> u64 {
        self.live.load(Relaxed).max(0) as u64
    }
}

/// A command from the parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// Client: open the connections now.
    Connect,
    /// Start the measured window.
    Mark,
    /// Report the counters.
    Report,
    /// Exit (also sent at the end of stdin).
    Quit,
}

/// Reads commands from stdin on a thread; `wake` is called after each one (to wake
/// an event loop). End of stdin becomes [`Cmd::Quit`].
pub fn commands(wake: impl Fn() + Send + 'static) -> mpsc::Receiver<Cmd> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let cmd = match line.as_deref().map(str::trim) {
                Ok("connect") => Cmd::Connect,
                Ok("mark") => Cmd::Mark,
                Ok("report") => Cmd::Report,
                Ok("quit") | Err(_) => break,
                Ok(_) => continue,
            };
            if tx.send(cmd).is_err() {
                return;
            }
            wake();
        }
        let _ = tx.send(Cmd::Quit);
        wake();
    });
    rx
}

/// Answers `mark` and `report` from `counters` until `quit`; calls `connect` on
/// `connect`. For children whose connections run on other threads.
pub fn serve_commands(
    rx: &mpsc::Receiver<Cmd>,
    counters: &Counters,
    held: impl Fn() -> u64,
    mut connect: impl FnMut(),
) {
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Cmd::Connect => connect(),
            Cmd::Mark => {
                counters.mark();
                emit(&counters.json("mark", held()));
            }
            Cmd::Report => emit(&counters.json("report", held())),
            Cmd::Quit => return,
        }
    }
}

/// Microseconds since the Unix epoch: the one clock the parent and its children
/// can compare.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A push cannot leave the list half-written.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Prints one JSON line on stdout.
pub fn emit(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// The server addresses 127.0.0.1 .. 127.0.0.`k`.
pub fn addrs(k: u8) -> Vec<Ipv4Addr> {
    (1..=k.max(1))
        .map(|i| Ipv4Addr::new(127, 0, 0, i))
        .collect()
}

/// The address client connection `i` goes to.
pub fn target(i: usize, k: u8, port: u16) -> SocketAddr {
    let a = addrs(k);
    SocketAddr::from((a[i % a.len()], port))
}

/// When client connection `i` of `n` may start: connections open evenly over `ramp`.
pub fn start_offset(i: usize, n: usize, ramp: Duration) -> Duration {
    ramp.mul_f64(i as f64 / n.max(1) as f64)
}

/// Ends the process after `secs` whatever happens, so no child outlives a broken
/// parent.
pub fn bound_lifetime(secs: u64) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        eprintln!("heartbeat-bench child: lifetime of {secs} s over, exiting");
        std::process::exit(3);
    });
}

/// The text message a planted peer's client sends first on each of its
/// connections, so the server tells them from the others whatever order they
/// open in (reconnects included).
pub const PLANTED_MARK: &str = "planted dead peer";

/// Whether `msg` is [`PLANTED_MARK`].
pub fn is_mark(msg: &tokio_tungstenite::tungstenite::Message) -> bool {
    matches!(msg, tokio_tungstenite::tungstenite::Message::Text(t) if t.as_str() == PLANTED_MARK)
}

/// Connection attempts in flight at once on a client: more would overflow the
/// listen backlog and turn into SYN retransmissions (1 s, 3 s, ...).
pub const CONNECT_CONCURRENCY: usize = 256;

/// The listen backlog the bench's own listeners ask for.
pub const BACKLOG: u32 = 4096;
