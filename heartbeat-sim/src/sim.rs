//! [`Sim`]: the driver of the machine under test, its peer and the event loop.

use core::borrow::Borrow;
use core::fmt;

use heartbeat_core::{
    Action, Config, DeathReason, HeartbeatMachine, Instant, Payload, PingOutcome,
};

use crate::config::{SimConfig, Start};
use crate::event::{Event, EventKind, Queue};
use crate::fault::{Fault, Faults};
use crate::link::{Dir, Wire};
use crate::record::{Frame, Record};

/// A machine, its simulated driver, peer and network.
pub struct Sim<C: Borrow<Config> = Config> {
    machine: HeartbeatMachine<C>,
    cfg: SimConfig,
    now: Instant,
    queue: Queue,
    faults: Faults,
    wire: Wire,
    /// The transport the driver holds, if any (at most one: the machine always
    /// disconnects before it connects again).
    transport: Option<Transport>,
    next_conn: u32,
    /// The first step has started the machine.
    started: bool,
    log: Vec<(Instant, Record)>,
}

/// The transport the driver holds: a connection attempt, or an open connection.
#[derive(Clone, Copy, Debug)]
struct Transport {
    id: u32,
    open: bool,
    peer: PeerSide,
}

/// Where the peer's end of the current transport stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerSide {
    Open,
    /// The peer sent its close frame: it sends nothing else but the end of the stream.
    Closed,
    /// The peer's end is gone (it reset, or ended the stream after the handshake).
    Gone,
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

impl<C: Borrow<Config>> Sim<C> {
    /// A simulation at time zero with a freshly built (idle) machine. The first
    /// step starts it: the driver connects, or reports the connection already
    /// open (see [`Start`]), so faults added before running apply from time zero.
    pub fn new(machine: HeartbeatMachine<C>, cfg: SimConfig) -> Sim<C> {
        Sim {
            machine,
            cfg,
            now: Instant::ZERO,
            queue: Queue::default(),
            faults: Faults::default(),
            wire: Wire::new(cfg.link, cfg.seed),
            transport: None,
            next_conn: 0,
            started: false,
            log: Vec::new(),
        }
    }

    /// Schedules a fault.
    pub fn add_fault(&mut self, fault: Fault) {
        match fault {
            Fault::PeerClose { at, code } => self.queue.schedule(at, EventKind::PeerClose { code }),
            Fault::PeerReset { at } => self.queue.schedule(at, EventKind::PeerReset),
            _ => {}
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

    /// Runs the next event, or the machine's timer when it comes first; returns
    /// its time, or `None` if nothing is scheduled.
    pub fn step(&mut self) -> Option<Instant> {
        if !self.started {
            self.start();
            return Some(self.now);
        }
        let at = self.next_at()?;
        match self.next_event() {
            Some((i, ev)) if self.effective_at(&ev) <= at => {
                self.queue.remove(i);
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
        self.faults.stalled_until(t)
    }

    /// Whether the driver holds a transport (an attempt or a connection) now.
    pub fn holds_transport(&self) -> bool {
        self.transport.is_some()
    }

    // ----- the event loop --------------------------------------------------------

    fn next_at(&self) -> Option<Instant> {
        if !self.started {
            return Some(self.now);
        }
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
        self.queue.peek(|e| self.effective_at(e))
    }

    /// Events on our side wait out a local stall; the peer's side does not stall.
    fn effective_at(&self, e: &Event) -> Instant {
        if e.kind.ours() {
            self.defer_for_stall(e.at)
        } else {
            e.at
        }
    }

    fn defer_for_stall(&self, t: Instant) -> Instant {
        self.faults.stalled_until(t).unwrap_or(t)
    }

    fn run(&mut self, kind: EventKind) {
        match kind {
            EventKind::ToUs { conn, frame } => self.receive(conn, frame),
            EventKind::PingSent { conn, payload } => {
                if self.open_id() == Some(conn) {
                    self.log.push((self.now, Record::PingSent));
                    self.send(conn, Dir::ToPeer, Frame::Ping(payload));
                    self.machine.handle_ping_sent(self.now);
                    self.execute();
                }
            }
            EventKind::CloseSent { conn, code } => {
                if self.open_id() == Some(conn) {
                    self.log.push((self.now, Record::CloseSent));
                    self.send(conn, Dir::ToPeer, Frame::Close(code));
                    self.machine.handle_close_sent(self.now);
                    self.execute();
                }
            }
            EventKind::ToPeer { conn, frame } => self.peer_receives(conn, frame),
            EventKind::ConnectResult { conn, refused } => self.attempt_ended(conn, refused),
            EventKind::PeerClose { code } => {
                if let Some(t) = self.peer_side(PeerSide::Open) {
                    self.set_peer(PeerSide::Closed);
                    self.send(t, Dir::ToUs, Frame::Close(code));
                }
            }
            EventKind::PeerReset => {
                if let Some(t) = self.open_id() {
                    self.set_peer(PeerSide::Gone);
                    self.send(t, Dir::ToUs, Frame::End);
                }
            }
            EventKind::PeerData { conn } | EventKind::PeerPing { conn } => {
                self.peer_traffic(conn, kind)
            }
        }
    }

    // ----- our driver ------------------------------------------------------------

    /// The first step: connect, or report the connection that is already open.
    fn start(&mut self) {
        self.started = true;
        match self.cfg.start {
            Start::Connect => {
                self.machine.connect(self.now);
                self.execute();
            }
            Start::Open => {
                self.transport = Some(self.new_transport());
                self.opened();
            }
        }
    }

    /// Drains the machine's actions and carries each one out.
    fn execute(&mut self) {
        let now = self.now;
        let write = self.cfg.write_delay;
        while let Some(action) = self.machine.poll_action() {
            self.log.push((now, Record::Action(action)));
            match action {
                Action::Connect { .. } => self.start_attempt(),
                Action::Disconnect => self.transport = None,
                Action::SendPing(payload) => {
                    if let Some(conn) = self.open_id() {
                        let ev = EventKind::PingSent { conn, payload };
                        self.queue.schedule(now + write, ev);
                    }
                }
                Action::SendPong(p) => {
                    if let Some(conn) = self.open_id() {
                        self.send(conn, Dir::ToPeer, Frame::Pong(p));
                    }
                }
                Action::SendClose { code, .. } => {
                    if let Some(conn) = self.open_id() {
                        let ev = EventKind::CloseSent {
                            conn,
                            code: code.get(),
                        };
                        self.queue.schedule(now + write, ev);
                    }
                }
                // Dead is for the application; nothing to carry out.
                _ => {}
            }
        }
    }

    /// A frame from the peer reaches us: fed to the machine if its transport is
    /// still the one we hold.
    fn receive(&mut self, conn: u32, frame: Frame) {
        if self.open_id() != Some(conn) {
            return;
        }
        let now = self.now;
        self.log.push((now, Record::Received(frame)));
        match frame {
            Frame::Ping(p) => {
                let outcome = self.machine.handle_ping(now, p.as_slice());
                self.log.push((now, Record::Ping(outcome)));
                if let (PingOutcome::Answered, Some(within)) = (outcome, self.cfg.ping_with_pong) {
                    let _ = self.machine.ping_early(now, within);
                }
            }
            Frame::Pong(p) => {
                let outcome = self.machine.handle_pong(now, p.as_slice());
                self.log.push((now, Record::Pong(outcome)));
            }
            Frame::Data => self.machine.handle_frame(now),
            Frame::Close(code) => self.machine.handle_close(now, Some(code)),
            Frame::End => self.machine.handle_transport_closed(now),
        }
        self.execute();
    }

    /// Opens a simulated transport and schedules the end of its handshake: after
    /// two round trips once the peer is reachable (never, if it is not), one round
    /// trip if the peer refuses.
    fn start_attempt(&mut self) {
        let t = self.new_transport();
        self.transport = Some(t);
        let link = self.cfg.link;
        let Some(ready) = self.faults.reachable_from(self.now, link.retransmit_delay) else {
            // It hangs; the machine's connect timer ends it.
            return;
        };
        let refused = self.faults.refusing(ready);
        let took = match refused {
            Some(None) => link.refusal(),
            _ => link.handshake(),
        };
        let ev = EventKind::ConnectResult {
            conn: t.id,
            refused,
        };
        self.queue.schedule(ready + took, ev);
    }

    fn new_transport(&mut self) -> Transport {
        let id = self.next_conn;
        self.next_conn += 1;
        Transport {
            id,
            open: false,
            peer: PeerSide::Open,
        }
    }

    /// The attempt `conn` ended; void if the machine already gave up on it.
    fn attempt_ended(&mut self, conn: u32, refused: Option<Option<core::time::Duration>>) {
        if !self.transport.is_some_and(|t| t.id == conn && !t.open) {
            return;
        }
        let now = self.now;
        match refused {
            None => return self.opened(),
            Some(Some(delay)) => {
                self.log.push((now, Record::RetryAfter(delay)));
                self.machine.handle_retry_after(now, delay);
            }
            Some(None) => {}
        }
        self.log.push((now, Record::ConnectFailed));
        self.machine.handle_connect_failed(now);
        self.execute();
    }

    /// The transport we hold is open: report it, start the peer's traffic.
    fn opened(&mut self) {
        let Some(t) = self.transport.as_mut() else {
            return;
        };
        t.open = true;
        let (conn, now, peer) = (t.id, self.now, self.cfg.peer);
        self.log.push((now, Record::Connected));
        self.machine.handle_connected(now);
        if let Some(every) = peer.data_every {
            self.queue
                .schedule(now + every, EventKind::PeerData { conn });
        }
        if let Some(every) = peer.ping_every {
            self.queue
                .schedule(now + every, EventKind::PeerPing { conn });
        }
        self.execute();
    }

    fn open_id(&self) -> Option<u32> {
        self.transport.filter(|t| t.open).map(|t| t.id)
    }

    // ----- the peer --------------------------------------------------------------

    /// A frame reaches the peer: a stopped peer's kernel buffers it until resume.
    fn peer_receives(&mut self, conn: u32, frame: Frame) {
        if self.open_id() != Some(conn) || self.peer_side(PeerSide::Gone).is_some() {
            return;
        }
        if let Some(resume) = self.faults.peer_hung_until(self.now) {
            if let Some(resume) = resume {
                self.queue
                    .schedule(resume, EventKind::ToPeer { conn, frame });
            }
            return;
        }
        match frame {
            Frame::Ping(p) if self.peer_side(PeerSide::Open).is_some() => {
                let at = self.now + self.cfg.peer.answer_delay;
                self.send_at(at, conn, Dir::ToUs, Frame::Pong(p));
            }
            Frame::Close(code) => {
                // Our close (or our reply to the peer's): reply if the peer has not
                // closed yet, then end the stream.
                if self.peer_side(PeerSide::Open).is_some() {
                    self.send(conn, Dir::ToUs, Frame::Close(code));
                }
                self.set_peer(PeerSide::Gone);
                self.send(conn, Dir::ToUs, Frame::End);
            }
            _ => {}
        }
    }

    fn peer_traffic(&mut self, conn: u32, kind: EventKind) {
        if self.open_id() != Some(conn) || self.peer_side(PeerSide::Open).is_none() {
            return;
        }
        let peer = self.cfg.peer;
        let (every, frame) = match kind {
            EventKind::PeerData { .. } => (peer.data_every, Frame::Data),
            _ => (
                peer.ping_every,
                Frame::Ping(Payload::from_slice(b"peer").unwrap_or(Payload::EMPTY)),
            ),
        };
        if self.faults.peer_hung_until(self.now).is_none() {
            self.send(conn, Dir::ToUs, frame);
        }
        if let Some(every) = every {
            self.queue.schedule(self.now + every, kind);
        }
    }

    /// The open transport's id if the peer's end is in `side`.
    fn peer_side(&self, side: PeerSide) -> Option<u32> {
        self.transport
            .filter(|t| t.open && t.peer == side)
            .map(|t| t.id)
    }

    fn set_peer(&mut self, side: PeerSide) {
        if let Some(t) = self.transport.as_mut() {
            t.peer = side;
        }
    }

    // ----- the wire --------------------------------------------------------------

    /// Puts `frame` on the wire now.
    fn send(&mut self, conn: u32, dir: Dir, frame: Frame) {
        self.send_at(self.now, conn, dir, frame);
    }

    /// Puts `frame` on the wire at `at` towards `dir`; a fault may swallow it.
    fn send_at(&mut self, at: Instant, conn: u32, dir: Dir, frame: Frame) {
        let Some(deliver) = self.wire.delivery(at, dir, &self.faults) else {
            return;
        };
        let kind = match dir {
            Dir::ToUs => EventKind::ToUs { conn, frame },
            Dir::ToPeer => EventKind::ToPeer { conn, frame },
        };
        self.queue.schedule(deliver, kind);
    }
}
