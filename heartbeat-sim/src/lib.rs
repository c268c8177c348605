//! A deterministic simulation harness for [`HeartbeatMachine`]: a simulated clock,
//! a seeded link model and a scripted peer, so you can check your own heartbeat
//! configuration against latency, jitter, loss, blackholes, partitions, a hung peer
//! and your own process stalling, in microseconds of real time.
//!
//! The simulation never ticks: each [`Sim::step`] jumps exactly to the next event
//! (a frame delivery, a driver report, a scheduled fault, or the machine's own
//! [`poll_timeout`](HeartbeatMachine::poll_timeout)). The driver it plays follows the
//! machine's contract exactly: input before timers at the same instant, every action
//! executed, `handle_ping_sent` once the write is done.
//!
//! ```
//! use core::time::Duration;
//! use heartbeat_core::{Config, DeathReason, HeartbeatMachine, Instant};
//! use heartbeat_sim::{Fault, Link, Sim, SimConfig};
//!
//! let config = Config::builder()
//!     .ping_interval(Duration::from_secs(2))
//!     .pong_timeout(Duration::from_secs(2))
//!     .build()?;
//! let mut sim = Sim::new(HeartbeatMachine::new(config, 1), SimConfig {
//!     link: Link { latency: Duration::from_millis(40), ..Link::default() },
//!     ..SimConfig::default()
//! });
//! sim.add_fault(Fault::Blackhole { from: Instant::from_secs(10), until: None });
//! sim.run_until(Instant::from_secs(30)).expect("bounded");
//! let (at, reason) = sim.deaths().next().expect("the blackhole was detected");
//! assert!(matches!(reason, DeathReason::PongTimeout { .. }));
//! assert!(at <= Instant::from_secs(10) + config.detection_bound(Duration::ZERO));
//! # Ok::<(), heartbeat_core::ConfigError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use core::borrow::Borrow;
use core::fmt;
use core::time::Duration;

use heartbeat_core::{Action, Config, DeathReason, HeartbeatMachine, Instant, Payload};

/// The network between the machine and its peer. Deliveries are in order per
/// direction, as on a TCP stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// One-way base latency.
    pub latency: Duration,
    /// Extra one-way delay, uniform in `[0, jitter]` per frame.
    pub jitter: Duration,
    /// Per-frame chance (0–100 %) of a lost segment, which TCP repairs by
    /// retransmission: the frame arrives `retransmit_delay` later.
    pub loss_percent: u8,
    /// The delay a loss adds.
    pub retransmit_delay: Duration,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss_percent: 0,
            retransmit_delay: Duration::from_millis(200),
        }
    }
}

/// How the scripted peer behaves while it is running.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Peer {
    /// Time the peer takes to answer a ping.
    pub answer_delay: Duration,
    /// The peer sends a data frame this often (`None`: never).
    pub data_every: Option<Duration>,
    /// The peer pings this often (`None`: never).
    pub ping_every: Option<Duration>,
}

impl Default for Peer {
    fn default() -> Self {
        Peer {
            answer_delay: Duration::ZERO,
            data_every: None,
            ping_every: None,
        }
    }
}

/// Everything about a simulation except the machine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimConfig {
    /// The network.
    pub link: Link,
    /// The peer.
    pub peer: Peer,
    /// How long our transport takes to accept a ping before `handle_ping_sent`.
    pub write_delay: Duration,
    /// How long a failed connection attempt takes to fail.
    pub connect_timeout: Duration,
    /// Seed of the link's randomness (jitter, loss).
    pub seed: u64,
    /// Upper bound on steps per [`Sim::run_until`] call.
    pub max_steps: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            link: Link::default(),
            peer: Peer::default(),
            write_delay: Duration::ZERO,
            connect_timeout: Duration::from_secs(1),
            seed: 0,
            max_steps: 1_000_000,
        }
    }
}

/// A scheduled fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Both directions silently drop everything from `from` (no FIN, no RST); TCP
    /// delivers what was held once the link heals at `until` (never, if `None`).
    Blackhole {
        /// Start of the fault.
        from: Instant,
        /// End of the fault, if it heals.
        until: Option<Instant>,
    },
    /// One direction only: frames from the peer to us vanish (a partition the peer
    /// cannot see).
    Partition {
        /// Start of the fault.
        from: Instant,
        /// End of the fault, if it heals.
        until: Option<Instant>,
    },
    /// The peer process stops (SIGSTOP): its kernel keeps the connection up but it
    /// answers nothing until `until`, then processes what it missed.
    PeerHang {
        /// Start of the fault.
        from: Instant,
        /// When it resumes, if ever.
        until: Option<Instant>,
    },
    /// Our own process stalls for `duration`: no input, no timers, then everything
    /// readable is fed first and timers fire late.
    LocalStall {
        /// Start of the stall.
        at: Instant,
        /// Its length.
        duration: Duration,
    },
    /// Our whole host sleeps for `duration` (a suspended laptop or VM): like a
    /// stall, and frames the peer sent meanwhile were lost with our NIC, so they
    /// arrive only after TCP retransmits them, `retransmit_delay` after waking. This is
    /// the case where a late timer must not convict the peer.
    LocalSleep {
        /// Start of the sleep.
        at: Instant,
        /// Its length.
        duration: Duration,
    },
    /// The peer sends a close frame with `code`.
    PeerClose {
        /// When.
        at: Instant,
        /// The code.
        code: u16,
    },
}

/// A frame on the simulated wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A ping and its payload.
    Ping(Payload),
    /// A pong and its payload.
    Pong(Payload),
    /// An application data frame.
    Data,
    /// A close frame with its code.
    Close(u16),
}

/// One line of the simulation's transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// The machine emitted an action.
    Action(Action),
    /// A frame from the peer was fed to the machine.
    Received(Frame),
    /// The driver reported the ping handed to the transport.
    PingSent,
    /// A connection was established.
    Connected,
    /// A connection attempt failed.
    ConnectFailed,
    /// The driver called `handle_timeout`.
    Timeout,
}

/// The simulation exceeded its step budget (a livelock in the machine or the model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepLimitExceeded {
    /// Simulated time when the budget ran out.
    pub at: Instant,
}

impl fmt::Display for StepLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "simulation step limit exceeded at {:?}", self.at)
    }
}

impl std::error::Error for StepLimitExceeded {}

/// A machine, its simulated peer and network.
pub struct Sim<C: Borrow<Config> = Config> {
    machine: HeartbeatMachine<C>,
    cfg: SimConfig,
    now: Instant,
    rng: u64,
    order: u64,
    queue: Vec<Event>,
    faults: Vec<Fault>,
    /// The id of the live connection, if any; frames of older ones are dropped.
    conn: Option<u32>,
    next_conn: u32,
    /// The latest scheduled delivery per direction (to us, to the peer), for FIFO order.
    last_delivery: [Instant; 2],
    log: Vec<(Instant, Record)>,
}

#[derive(Clone, Copy, Debug)]
struct Event {
    at: Instant,
    /// Lower runs first at equal times: input to us before our reports before
    /// everything else (the machine's own timer runs after all of them).
    rank: u8,
    order: u64,
    kind: EventKind,
}

#[derive(Clone, Copy, Debug)]
enum EventKind {
    ToUs { conn: u32, frame: Frame },
    ToPeer { conn: u32, frame: Frame },
    PingSent { conn: u32, payload: Payload },
    ConnectResult { ok: bool },
    PeerData { conn: u32 },
    PeerPing { conn: u32 },
    PeerClose { code: u16 },
}

const US: usize = 0;
const PEER: usize = 1;

impl<C: Borrow<Config>> Sim<C> {
    /// Starts a simulation at time zero with the machine connected.
    pub fn new(machine: HeartbeatMachine<C>, cfg: SimConfig) -> Sim<C> {
        let mut sim = Sim {
            machine,
            cfg,
            now: Instant::ZERO,
            rng: cfg.seed,
            order: 0,
            queue: Vec::new(),
            faults: Vec::new(),
            conn: None,
            next_conn: 0,
            last_delivery: [Instant::ZERO; 2],
            log: Vec::new(),
        };
        sim.connected();
        sim
    }

    /// Schedules a fault.
    pub fn add_fault(&mut self, fault: Fault) {
        if let Fault::PeerClose { at, code } = fault {
            self.schedule(at, 5, EventKind::PeerClose { code });
        }
        self.faults.push(fault);
    }

    /// Runs every event up to and including `until`, then leaves the clock at `until`.
    pub fn run_until(&mut self, until: Instant) -> Result<(), StepLimitExceeded> {
        self.run_until_with(until, |_| {})
    }

    /// Like [`run_until`](Self::run_until), calling `check` after every step: the
    /// place for property checks.
    pub fn run_until_with(
        &mut self,
        until: Instant,
        mut check: impl FnMut(&Sim<C>),
    ) -> Result<(), StepLimitExceeded> {
        for _ in 0..self.cfg.max_steps {
            match self.next_at() {
                Some(at) if at <= until => {
                    self.step();
                    check(self);
                }
                _ => {
                    self.now = self.now.max(until);
                    return Ok(());
                }
            }
        }
        Err(StepLimitExceeded { at: self.now })
    }

    /// Runs the next event; returns its time, or `None` if nothing is scheduled.
    pub fn step(&mut self) -> Option<Instant> {
        let at = self.next_at()?;
        let next = self.next_event();
        match next {
            Some((i, ev)) if self.effective_at(&ev) <= at => {
                self.queue.swap_remove(i);
                self.now = at;
                self.run(ev.kind);
            }
            _ => {
                self.now = at;
                self.log.push((at, Record::Timeout));
                self.machine.handle_timeout(at);
                self.execute();
            }
        }
        Some(at)
    }

    /// The machine under test.
    pub fn machine(&self) -> &HeartbeatMachine<C> {
        &self.machine
    }

    /// Simulated time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Everything that happened, in order.
    pub fn log(&self) -> &[(Instant, Record)] {
        &self.log
    }

    /// Each [`Action::Dead`] the machine emitted, with its time.
    pub fn deaths(&self) -> impl Iterator<Item = (Instant, DeathReason)> + '_ {
        self.log.iter().filter_map(|&(at, r)| match r {
            Record::Action(Action::Dead(reason)) => Some((at, reason)),
            _ => None,
        })
    }

    /// Whether our own process is stalled at `t`, and until when.
    pub fn stalled_until(&self, t: Instant) -> Option<Instant> {
        self.faults.iter().find_map(|f| match *f {
            Fault::LocalStall { at, duration } | Fault::LocalSleep { at, duration }
                if at <= t && t < at + duration =>
            {
                Some(at + duration)
            }
            _ => None,
        })
    }

    // ----- the driver ------------------------------------------------------------

    fn next_at(&self) -> Option<Instant> {
        let ev = self.next_event().map(|(_, e)| self.effective_at(&e));
        let timer = self
            .machine
            .poll_timeout()
            .map(|d| self.defer_for_stall(d.at));
        match (ev, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn next_event(&self) -> Option<(usize, Event)> {
        self.queue
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|(_, e)| (self.effective_at(e), e.rank, e.order))
    }

    /// Events on our side wait out a local stall; the peer's side does not stall.
    fn effective_at(&self, e: &Event) -> Instant {
        match e.kind {
            EventKind::ToUs { .. }
            | EventKind::PingSent { .. }
            | EventKind::ConnectResult { .. } => self.defer_for_stall(e.at),
            _ => e.at,
        }
    }

    fn defer_for_stall(&self, t: Instant) -> Instant {
        self.stalled_until(t).unwrap_or(t)
    }

    fn run(&mut self, kind: EventKind) {
        let now = self.now;
        match kind {
            EventKind::ToUs { conn, frame } => {
                if self.conn != Some(conn) {
                    return;
                }
                self.log.push((now, Record::Received(frame)));
                match frame {
                    Frame::Ping(p) => self.machine.handle_ping(now, p.as_slice()),
                    Frame::Pong(p) => self.machine.handle_pong(now, p.as_slice()),
                    Frame::Data => self.machine.handle_frame(now),
                    Frame::Close(code) => self.machine.handle_close(now, Some(code)),
                }
                self.execute();
            }
            EventKind::ToPeer { conn, frame } => {
                if self.conn != Some(conn) {
                    return;
                }
                if let Some(resume) = self.peer_hung_until(now) {
                    // A stopped peer's kernel buffers the frame; it is handled on resume.
                    if let Some(resume) = resume {
                        self.schedule(resume, 3, EventKind::ToPeer { conn, frame });
                    }
                    return;
                }
                match frame {
                    Frame::Ping(p) => {
                        let at = now + self.cfg.peer.answer_delay;
                        self.send(at, conn, US, Frame::Pong(p));
                    }
                    Frame::Close(code) => self.send(now, conn, US, Frame::Close(code)),
                    Frame::Pong(_) | Frame::Data => {}
                }
            }
            EventKind::PingSent { conn, payload } => {
                if self.conn != Some(conn) {
                    return;
                }
                self.log.push((now, Record::PingSent));
                self.send(now, conn, PEER, Frame::Ping(payload));
                self.machine.handle_ping_sent(now);
                self.execute();
            }
            EventKind::ConnectResult { ok } => {
                if ok {
                    self.connected();
                } else {
                    self.log.push((now, Record::ConnectFailed));
                    self.machine.handle_connect_failed(now);
                    self.execute();
                }
            }
            EventKind::PeerData { conn } | EventKind::PeerPing { conn } => {
                if self.conn != Some(conn) {
                    return;
                }
                let (every, frame, rank) = match kind {
                    EventKind::PeerData { .. } => (self.cfg.peer.data_every, Frame::Data, 6),
                    _ => (
                        self.cfg.peer.ping_every,
                        Frame::Ping(Payload::from_slice(b"peer").unwrap_or(Payload::EMPTY)),
                        7,
                    ),
                };
                if self.peer_hung_until(now).is_none() {
                    self.send(now, conn, US, frame);
                }
                if let Some(every) = every {
                    self.schedule(now + every, rank, kind);
                }
            }
            EventKind::PeerClose { code } => {
                if let Some(conn) = self.conn {
                    self.send(now, conn, US, Frame::Close(code));
                }
            }
        }
    }

    fn connected(&mut self) {
        let now = self.now;
        let conn = self.next_conn;
        self.next_conn += 1;
        self.conn = Some(conn);
        self.log.push((now, Record::Connected));
        self.machine.handle_connected(now);
        if let Some(every) = self.cfg.peer.data_every {
            self.schedule(now + every, 6, EventKind::PeerData { conn });
        }
        if let Some(every) = self.cfg.peer.ping_every {
            self.schedule(now + every, 7, EventKind::PeerPing { conn });
        }
        self.execute();
    }

    /// Drains the machine's actions and carries each one out.
    fn execute(&mut self) {
        let now = self.now;
        while let Some(action) = self.machine.poll_action() {
            self.log.push((now, Record::Action(action)));
            let Some(conn) = self.conn else {
                if let Action::Reconnect { after, .. } = action {
                    self.schedule_connect(now + after);
                }
                continue;
            };
            match action {
                Action::SendPing(payload) => self.schedule(
                    now + self.cfg.write_delay,
                    2,
                    EventKind::PingSent { conn, payload },
                ),
                Action::SendPong(p) => self.send(now, conn, PEER, Frame::Pong(p)),
                Action::SendClose { code, .. } => {
                    self.send(now, conn, PEER, Frame::Close(code.get()))
                }
                Action::Dead(_) => {}
                Action::Abort => self.conn = None,
                Action::Reconnect { after, .. } => {
                    self.conn = None;
                    self.schedule_connect(now + after);
                }
            }
        }
        if matches!(self.machine.state(), heartbeat_core::State::Finished { .. }) {
            self.conn = None;
        }
    }

    fn schedule_connect(&mut self, at: Instant) {
        let up = self.peer_hung_until(at).is_none() && !self.blackholed(at, US);
        let done = if up {
            at + self.cfg.link.latency * 2
        } else {
            at + self.cfg.connect_timeout
        };
        self.schedule(done, 4, EventKind::ConnectResult { ok: up });
    }

    /// Puts `frame` on the wire at `at` towards `to` (US or PEER).
    fn send(&mut self, at: Instant, conn: u32, to: usize, frame: Frame) {
        let link = self.cfg.link;
        let mut delay = link.latency + self.random_upto(link.jitter);
        if link.loss_percent > 0
            && self.random_upto(Duration::from_nanos(99)).as_nanos() < u128::from(link.loss_percent)
        {
            delay += link.retransmit_delay;
        }
        let mut deliver = (at + delay).max(self.last_delivery[to]);
        if let Some(heal) = self.fault_window(deliver, to) {
            match heal {
                Some(heal) => deliver = heal + link.latency,
                None => return,
            }
        }
        self.last_delivery[to] = deliver;
        let kind = if to == US {
            EventKind::ToUs { conn, frame }
        } else {
            EventKind::ToPeer { conn, frame }
        };
        self.schedule(deliver, if to == US { 1 } else { 3 }, kind);
    }

    fn schedule(&mut self, at: Instant, rank: u8, kind: EventKind) {
        self.order += 1;
        self.queue.push(Event {
            at,
            rank,
            order: self.order,
            kind,
        });
    }

    /// `Some(heal)` if a blackhole or partition swallows a frame towards `to` at `t`.
    fn fault_window(&self, t: Instant, to: usize) -> Option<Option<Instant>> {
        self.faults.iter().find_map(|f| match *f {
            Fault::Blackhole { from, until } if in_window(t, from, until) => Some(until),
            Fault::Partition { from, until } if to == US && in_window(t, from, until) => {
                Some(until)
            }
            Fault::LocalSleep { at, duration }
                if to == US && in_window(t, at, Some(at + duration)) =>
            {
                Some(Some(at + duration + self.cfg.link.retransmit_delay))
            }
            _ => None,
        })
    }

    fn blackholed(&self, t: Instant, to: usize) -> bool {
        self.fault_window(t, to).is_some()
    }

    /// `Some(resume)` if the peer is stopped at `t` (`resume` is `None` if forever).
    fn peer_hung_until(&self, t: Instant) -> Option<Option<Instant>> {
        self.faults.iter().find_map(|f| match *f {
            Fault::PeerHang { from, until } if in_window(t, from, until) => Some(until),
            _ => None,
        })
    }

    fn random_upto(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let max = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(((u128::from(z) * (u128::from(max) + 1)) >> 64) as u64)
    }
}

fn in_window(t: Instant, from: Instant, until: Option<Instant>) -> bool {
    from <= t && until.is_none_or(|u| t < u)
}
