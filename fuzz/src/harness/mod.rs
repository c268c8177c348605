//! The driver the fuzzer controls, and the invariants checked after every call.
//!
//! Each call into the machine is followed by [`Harness::settle`]: drain every
//! action, check it against a small model of the current connection, then check
//! the deadline, the state and the counters. Op-specific expectations (what a
//! pong, a ping or a close must produce) are checked by the op itself. Every
//! action, deadline and state is recorded, so two runs can be compared.

use core::borrow::Borrow;
use core::time::Duration;
use std::collections::VecDeque;

use heartbeat_core::{
    Action, CloseCode, Config, Deadline, DeathReason, Health, HeartbeatMachine, Instant, Liveness,
    Payload, ProtocolError, Role, State, Stats, TimerKind,
};

use crate::input::{DriveMode, Op, PingBody, Step};

/// The outbox holds at most one action of each of its six kinds.
const MAX_ACTIONS_PER_DRAIN: usize = 6;
/// The most timer firings one [`Op::Drive`] may run.
const MAX_FIRINGS: u8 = 16;
/// A silent peer is declared dead within this many timer firings: at worst a
/// ping, a stalled pong deadline that re-probes, and the final pong deadline.
const FIRINGS_TO_DETECT_SILENCE: usize = 3;

/// Everything observable from one run, compared across runs for determinism.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Entry {
    Action(Action),
    Deadline(Option<Deadline>),
    State(State),
}

/// A driver plus the model it checks the machine against.
///
/// `C` is how the machine holds its config (by value, or shared by reference).
pub(crate) struct Harness<C: Borrow<Config>> {
    m: HeartbeatMachine<C>,
    cfg: Config,
    /// The driver's clock: may run backwards, the machine's may not.
    clock: Instant,
    /// Observations after the previous call.
    last_now: Instant,
    last_stats: Stats,
    last_samples: u64,
    last_state: State,
    conn: Conn,
    /// Every ping sequence number the machine emitted, across connections.
    pings: Vec<u64>,
    /// A `Reconnect` was emitted and no attempt result reported since.
    awaiting_attempt: bool,
    /// The call being settled is `handle_connect_failed`.
    attempt_failed: bool,
    /// The attempt number of the last `Reconnect` (0: none yet).
    last_attempt: u32,
    /// The last `handle_retry_after`, capped, not yet consumed by a `Reconnect`.
    requested: Option<Duration>,
    /// What `death_reason()` must say, once it has been set.
    sticky: Option<DeathReason>,
    /// The payload a `SendPong` may carry during the current call.
    answering: Option<Payload>,
    transcript: Vec<Entry>,
    /// Print every call and its outcome (for triaging a crash).
    trace: bool,
}

/// The model of one connection: from an accepted `handle_connected` to the next.
#[derive(Clone, Default, Debug)]
struct Conn {
    /// `handle_connected` was accepted (before the first one there is no connection).
    open: bool,
    connected_at: Instant,
    /// The last proof of life.
    evidence: Instant,
    /// The last inbound frame of any kind (idle-only pings wait for silence).
    last_inbound: Instant,
    first_seq: Option<u64>,
    latest: Option<OurPing>,
    max_matched: Option<u64>,
    deads: u32,
    reason: Option<DeathReason>,
    closes: u32,
    aborts: u32,
    /// A pong deadline was forgiven as a local stall and no proof of life came
    /// since: the next missed pong deadline is a verdict, however late.
    suspect: bool,
    /// Pings of at most 125 bytes received, and how many were refused.
    pings_in: u64,
    refused: u64,
    /// When pings were answered, as far back as one ping-flood window.
    answered_at: VecDeque<Instant>,
}

#[derive(Clone, Copy, Debug)]
struct OurPing {
    seq: u64,
    emitted: Instant,
    sent: Option<Instant>,
    acked: bool,
    /// A proof of life came after it: its pong deadline no longer counts.
    proven: bool,
}

impl Conn {
    /// The peer proved itself alive: nothing is overdue, nothing is forgiven.
    fn proof_of_life(&mut self, now: Instant) {
        self.evidence = now;
        self.suspect = false;
        if let Some(p) = self.latest.as_mut() {
            p.proven = true;
        }
    }
}

/// What kind of call [`Harness::settle`] follows, for the time checks.
#[derive(Clone, Copy, Debug)]
enum Call {
    /// A `handle_*` taking `now`.
    At(Instant),
    /// `handle_timeout(now)`.
    Timeout(Instant),
    /// `handle_elapsed(d)`.
    Elapsed(Duration),
    /// A call without time (`set_*`).
    Untimed,
}

impl<C: Borrow<Config>> Harness<C> {
    pub(crate) fn new(config: C, seed: u64) -> Harness<C> {
        let cfg = *config.borrow();
        let m = HeartbeatMachine::new(config, seed);
        Harness {
            cfg,
            clock: Instant::ZERO,
            last_now: m.now(),
            last_stats: m.stats(),
            last_samples: m.rtt().samples,
            last_state: m.state(),
            conn: Conn::default(),
            pings: Vec::new(),
            awaiting_attempt: false,
            attempt_failed: false,
            last_attempt: 0,
            requested: None,
            sticky: None,
            answering: None,
            transcript: Vec::new(),
            trace: false,
            m,
        }
    }

    /// Prints every call and its outcome to stderr when `on`.
    pub(crate) fn traced_if(mut self, on: bool) -> Harness<C> {
        self.trace = on;
        self
    }

    /// Runs every step and returns the transcript.
    pub(crate) fn run(mut self, steps: &[Step]) -> Vec<Entry> {
        assert_eq!(self.m.state(), State::Connecting);
        assert_eq!(
            self.m.poll_timeout(),
            None,
            "nothing is armed before connecting"
        );
        for step in steps {
            self.clock = step.clock.apply(self.clock);
            if self.trace {
                eprintln!("{:?} {:?}", self.clock, step.op);
            }
            self.step(&step.op);
            self.check_health();
        }
        self.transcript
    }

    fn step(&mut self, op: &Op) {
        let now = self.clock;
        match op {
            Op::Connected => self.connected(now),
            Op::ConnectFailed => self.connect_failed(now),
            Op::RetryAfter(d) => {
                self.m.handle_retry_after(now, d.0);
                self.requested = Some(d.0.min(self.cfg.backoff().max_requested_delay));
                self.settle_quiet(Call::At(now));
            }
            Op::PingSent => self.ping_sent(now),
            Op::Frame => self.frame(now),
            Op::PongEcho(back) => {
                let payload = match self.pings.len() {
                    0 => Vec::new(),
                    n => self.pings[n - 1 - usize::from(*back) % n]
                        .to_be_bytes()
                        .to_vec(),
                };
                self.pong(now, &payload);
            }
            Op::Pong(bytes) => self.pong(now, bytes),
            Op::PongSeq(seq) => self.pong(now, &seq.to_be_bytes()),
            Op::Ping(body) => self.ping(now, body),
            Op::PingBurst { count, gap_micros } => {
                let gap = Duration::from_micros(u64::from(*gap_micros));
                for i in 0..*count {
                    if i > 0 {
                        self.clock = self.clock + gap;
                    }
                    self.ping(self.clock, &PingBody::Bytes(vec![i]));
                }
            }
            Op::PeerClose(code) => self.peer_close(now, *code),
            Op::TransportClosed => self.transport_closed(now),
            Op::ProtocolError => self.protocol_error(now),
            Op::LocalClose(code) => {
                self.local_close(now, CloseCode::new(*code).unwrap_or(CloseCode::NORMAL))
            }
            Op::Timeout => {
                self.timeout(now);
            }
            Op::TimeoutAtDeadline => {
                if let Some(d) = self.m.poll_timeout() {
                    self.clock = d.at;
                }
                self.timeout(self.clock);
            }
            Op::Elapsed(d) => {
                self.fire(Call::Elapsed(d.0));
                // A relative-time driver has no clock of its own: follow the machine's.
                self.clock = self.clock.max(self.m.now());
            }
            Op::SetPingInterval(d) => self.set_ping_interval(d.0),
            Op::SetPongTimeout(d) => self.set_pong_timeout(d.0),
            Op::Drive { mode, firings } => self.drive(*mode, *firings),
        }
    }

    // ----- one method per kind of call ------------------------------------------

    fn connected(&mut self, now: Instant) {
        let before = self.m.stats();
        self.m.handle_connected(now);
        self.awaiting_attempt = false;
        let accepted = self.m.stats().connects > before.connects;
        if accepted {
            assert!(
                !matches!(self.last_state, State::Open | State::Closing),
                "a second connection while one is live"
            );
            self.conn = Conn {
                open: true,
                connected_at: self.m.now(),
                evidence: self.m.now(),
                last_inbound: self.m.now(),
                ..Conn::default()
            };
            self.sticky = None;
        }
        let acts = self.settle(Call::At(now));
        if accepted {
            assert_eq!(self.m.state(), State::Open);
            assert_eq!(self.m.health(), Health::Healthy);
            assert_eq!(self.m.death_reason(), None);
            assert_eq!(self.m.last_proof_of_life(), Some(self.m.now()));
            assert!(acts.is_empty(), "connecting emits nothing: {acts:?}");
        } else {
            self.assert_ignored(before, &acts);
        }
    }

    fn connect_failed(&mut self, now: Instant) {
        let before = self.m.stats();
        self.m.handle_connect_failed(now);
        self.awaiting_attempt = false;
        let accepted = self.m.stats().ignored_calls == before.ignored_calls;
        if accepted {
            self.sticky = Some(DeathReason::ConnectFailed);
        }
        self.attempt_failed = true;
        let acts = self.settle(Call::At(now));
        self.attempt_failed = false;
        if accepted {
            // A failed attempt is not a connection: no `Dead`, at most a `Reconnect`.
            assert!(
                acts.iter().all(|a| matches!(a, Action::Reconnect { .. })),
                "{acts:?}"
            );
            match self.m.state() {
                State::Dead {
                    reason: DeathReason::ConnectFailed,
                } => assert!(!acts.is_empty(), "a retry must be scheduled"),
                State::Finished {
                    reason: DeathReason::ConnectFailed,
                } => assert!(acts.is_empty()),
                s => panic!("after a failed attempt: {s:?}"),
            }
        } else {
            self.assert_ignored(before, &acts);
        }
    }

    fn ping_sent(&mut self, now: Instant) {
        self.m.handle_ping_sent(now);
        if self.last_state == State::Open {
            if let Some(p) = self.conn.latest.as_mut() {
                if !p.acked && p.sent.is_none() {
                    p.sent = Some(self.m.now());
                }
            }
        }
        self.settle_quiet(Call::At(now));
    }

    fn frame(&mut self, now: Instant) {
        let was_open = self.last_state == State::Open;
        let before = self.m.last_proof_of_life();
        self.m.handle_frame(now);
        self.inbound(was_open);
        self.settle_quiet(Call::At(now));
        if was_open {
            assert_eq!(self.m.state(), State::Open, "a data frame ends nothing");
            let expected = match self.cfg.liveness() {
                Liveness::AnyFrame => Some(self.m.now()),
                Liveness::PongOnly => before,
            };
            assert_eq!(self.m.last_proof_of_life(), expected);
        }
    }

    fn pong(&mut self, now: Instant, payload: &[u8]) {
        let was_open = self.last_state == State::Open;
        let before = self.m.stats();
        let samples = self.m.rtt().samples;
        let seq = <[u8; 8]>::try_from(payload).ok().map(u64::from_be_bytes);
        let for_latest = was_open
            && self
                .conn
                .latest
                .is_some_and(|p| !p.acked && Some(p.seq) == seq);
        self.m.handle_pong(now, payload);
        self.inbound(was_open);
        let after = self.m.stats();
        let matched = after.pongs_matched - before.pongs_matched;
        let unsolicited = after.unsolicited_pongs - before.unsolicited_pongs;
        assert_eq!(matched + unsolicited, 1, "every pong is counted once");
        if for_latest {
            assert_eq!(matched, 1, "the pong for our latest ping must match");
        }
        if matched == 1 {
            self.conn.proof_of_life(self.m.now());
        }
        if matched == 1 {
            assert!(was_open, "a pong matched while not open");
            let Some(s) = seq else {
                panic!("a pong without our payload shape matched: {payload:?}")
            };
            let c = &mut self.conn;
            let (Some(first), Some(latest)) = (c.first_seq, c.latest.as_mut()) else {
                panic!("pong {s} matched, but no ping was sent on this connection")
            };
            assert!(
                first <= s && s <= latest.seq,
                "pong {s} matched outside this connection's pings {first}..={}",
                latest.seq
            );
            assert!(
                c.max_matched < Some(s), // `None` sorts first: nothing matched yet
                "pong {s} matched twice or out of order (last matched {:?})",
                c.max_matched
            );
            c.max_matched = Some(s);
            let rtt = self.m.rtt();
            if s == latest.seq {
                latest.acked = true;
                assert_eq!(
                    rtt.samples,
                    samples + 1,
                    "the latest ping gives an RTT sample"
                );
                let sent = latest.sent.unwrap_or(latest.emitted);
                assert_eq!(
                    rtt.last,
                    Some(self.m.now() - sent),
                    "RTT runs from handle_ping_sent (or emission)"
                );
            } else {
                assert_eq!(rtt.samples, samples, "only the latest ping gives a sample");
            }
        }
        self.settle_quiet(Call::At(now));
        if matched == 1 {
            assert_eq!(self.m.last_proof_of_life(), Some(self.m.now()));
            assert_eq!(self.m.health(), Health::Healthy);
        }
    }

    fn ping(&mut self, now: Instant, body: &PingBody) {
        let bytes = body.bytes();
        let was_open = self.last_state == State::Open;
        // Closing: the transport is still in use, so a peer ping is normal traffic.
        let closing = !was_open && self.m.needs_transport();
        let before = self.m.stats();
        self.answering = Payload::from_slice(&bytes);
        self.m.handle_ping(now, &bytes);
        self.inbound(was_open);
        let acts = self.settle(Call::At(now));
        self.answering = None;
        if closing {
            let after = self.m.stats();
            assert_eq!(
                after.ignored_calls, before.ignored_calls,
                "not caller misuse"
            );
            assert_eq!(after.pings_received, before.pings_received);
            assert_eq!(after.pongs_sent, before.pongs_sent);
            assert!(acts.is_empty(), "a ping while closing emitted {acts:?}");
            return;
        }
        if !was_open {
            self.assert_ignored(before, &acts);
            return;
        }
        let after = self.m.stats();
        assert_eq!(after.pings_received, before.pings_received + 1);

        if bytes.len() > heartbeat_core::MAX_CONTROL_PAYLOAD {
            let reason =
                DeathReason::ProtocolError(ProtocolError::ControlFrameTooLong { len: bytes.len() });
            assert_dead_and_closed(&acts, reason, Some(CloseCode::PROTOCOL_ERROR));
            return;
        }
        if self.m.state() == State::Open && self.cfg.liveness() == Liveness::AnyFrame {
            assert_eq!(self.m.last_proof_of_life(), Some(self.m.now()));
        }
        let answered = acts.iter().any(|a| matches!(a, Action::SendPong(_)));
        let refused = after.pings_refused - before.pings_refused;
        assert_eq!(
            u64::from(answered) + refused,
            1,
            "answered or refused: {acts:?}"
        );
        let c = &mut self.conn;
        c.pings_in += 1;
        c.refused += refused;
        let Some(limit) = self.cfg.ping_flood() else {
            assert!(
                answered,
                "without a ping budget every ping is answered: {acts:?}"
            );
            assert_eq!(acts.len(), 1, "{acts:?}");
            return;
        };
        if answered {
            assert_eq!(acts.len(), 1, "{acts:?}");
            // Windows tumble and last at least `window`, so any span shorter than
            // one window overlaps at most two of them.
            let t = self.m.now();
            c.answered_at.push_back(t);
            while c
                .answered_at
                .front()
                .is_some_and(|&a| t - a >= limit.window)
            {
                c.answered_at.pop_front();
            }
            assert!(
                c.answered_at.len() as u64 <= 2 * u64::from(limit.max_pings),
                "{} pings answered within one ping-flood window of {:?} (budget {})",
                c.answered_at.len(),
                limit.window,
                limit.max_pings
            );
        } else if !acts.is_empty() {
            assert_dead_and_closed(
                &acts,
                DeathReason::PingFlood,
                Some(CloseCode::POLICY_VIOLATION),
            );
            // `max_strikes` windows over budget are tolerated; it takes one more.
            let windows = u64::from(limit.max_strikes) + 1;
            assert!(
                c.refused >= windows && c.pings_in >= windows * (u64::from(limit.max_pings) + 1),
                "flood verdict after {} pings ({} refused) with {limit:?}",
                c.pings_in,
                c.refused
            );
        }
    }

    fn peer_close(&mut self, now: Instant, code: Option<u16>) {
        let was_open = self.last_state == State::Open;
        self.m.handle_close(now, code);
        let acts = self.settle(Call::At(now));
        if was_open {
            let (reason, reply) = match code {
                Some(c) if CloseCode::new(c).is_none() => (
                    DeathReason::ProtocolError(ProtocolError::InvalidCloseCode { code: c }),
                    Some(CloseCode::PROTOCOL_ERROR),
                ),
                Some(c) => (DeathReason::PeerClosed { code: Some(c) }, CloseCode::new(c)),
                None => (DeathReason::PeerClosed { code: None }, None),
            };
            assert_dead_and_closed(&acts, reason, reply);
            assert!(
                acts.iter().any(|a| matches!(a, Action::SendClose { .. })),
                "the peer's close is answered: {acts:?}"
            );
        }
    }

    fn transport_closed(&mut self, now: Instant) {
        let was_open = self.last_state == State::Open;
        self.m.handle_transport_closed(now);
        let acts = self.settle(Call::At(now));
        if was_open {
            assert_dead_and_closed(&acts, DeathReason::TransportClosed, None);
            assert!(
                !acts.iter().any(|a| matches!(a, Action::SendClose { .. })),
                "nothing to close on a transport that is gone: {acts:?}"
            );
        }
    }

    fn protocol_error(&mut self, now: Instant) {
        let was_open = self.last_state == State::Open;
        self.m.handle_protocol_error(now);
        let acts = self.settle(Call::At(now));
        if was_open {
            assert_dead_and_closed(
                &acts,
                DeathReason::ProtocolError(ProtocolError::Malformed),
                Some(CloseCode::PROTOCOL_ERROR),
            );
        }
    }

    fn local_close(&mut self, now: Instant, code: CloseCode) {
        let was_open = self.last_state == State::Open;
        let before = self.m.stats();
        self.m.close(now, code);
        let accepted = self.m.stats().ignored_calls == before.ignored_calls;
        let finished_now = accepted && !was_open;
        if finished_now {
            self.sticky = Some(DeathReason::LocalClose { code: code.get() });
        }
        let acts = self.settle(Call::At(now));
        if was_open {
            assert!(
                matches!(acts.as_slice(), [Action::SendClose { code: c, .. }] if *c == code),
                "a local close sends exactly that close: {acts:?}"
            );
            assert_eq!(self.m.state(), State::Closing);
        } else if finished_now {
            assert!(acts.is_empty(), "{acts:?}");
            assert_eq!(
                self.m.state(),
                State::Finished {
                    reason: DeathReason::LocalClose { code: code.get() }
                }
            );
        } else {
            self.assert_ignored(before, &acts);
        }
    }

    /// `handle_timeout(now)`, checked like every firing.
    fn timeout(&mut self, now: Instant) -> Vec<Action> {
        self.fire(Call::Timeout(now))
    }

    /// `handle_timeout` or `handle_elapsed`, and what was due must have happened.
    fn fire(&mut self, call: Call) -> Vec<Action> {
        // Actions were drained, so this is a real deadline. `poll_timeout` clamps a
        // deadline already past to `now()`; only an unclamped one is exact.
        let due = self.m.poll_timeout();
        let exact = due.is_some_and(|d| d.at > self.m.now());
        let state = self.last_state;
        let missed = self.m.stats().missed_deadlines;
        let probe = self.conn.latest.filter(|p| !p.acked);
        match call {
            Call::Timeout(now) => self.m.handle_timeout(now),
            Call::Elapsed(d) => self.m.handle_elapsed(d),
            Call::At(_) | Call::Untimed => unreachable!("{call:?} fires no timers"),
        }
        let acts = self.settle(call);
        let t = self.m.now();
        let Some(due) = due.filter(|d| d.at <= t) else {
            assert!(
                acts.is_empty(),
                "handle_timeout before any deadline emitted {acts:?}"
            );
            assert_eq!(
                self.m.state(),
                state,
                "an early handle_timeout changed the state"
            );
            return acts;
        };
        // At least this late (more if the deadline was clamped).
        let late = t - due.at;
        let stall = self.cfg.stall_threshold();
        let missed = self.m.stats().missed_deadlines - missed;
        match due.kind {
            TimerKind::Ping => {
                assert!(
                    matches!(acts.as_slice(), [Action::SendPing(_)]),
                    "a due ping timer sends one ping: {acts:?}"
                );
                if late > stall {
                    assert_eq!(missed, 1, "a ping timer {late:?} late is a missed deadline");
                } else if exact {
                    assert_eq!(missed, 0, "a ping timer {late:?} late is on time");
                }
            }
            TimerKind::PongTimeout => {
                let Some(probe) = probe else {
                    panic!("a pong deadline without an outstanding ping: {due:?}")
                };
                // Forgiven as a local stall: one fresh probe, no verdict.
                let forgiven = matches!(acts.as_slice(), [Action::SendPing(_)]);
                if forgiven {
                    assert!(
                        !self.conn.suspect,
                        "a second stall forgiven without a proof of life in between"
                    );
                    assert!(
                        late > stall || !exact,
                        "a pong deadline {late:?} late (not a stall) was forgiven"
                    );
                    assert_eq!(missed, 1, "a forgiven stall is a missed deadline");
                    assert_eq!(self.m.health(), Health::Suspect);
                    self.conn.suspect = true;
                } else {
                    assert!(
                        late <= stall || self.conn.suspect,
                        "a pong deadline {late:?} late is a local stall: one fresh probe, \
                         no verdict: {acts:?}"
                    );
                    let waited = t - probe.sent.unwrap_or(probe.emitted);
                    assert_dead_and_closed(
                        &acts,
                        DeathReason::PongTimeout { waited },
                        Some(self.cfg.dead_close_code()),
                    );
                    assert_eq!(missed, 0);
                }
            }
            TimerKind::CloseTimeout => {
                assert!(
                    acts.contains(&Action::Abort),
                    "close timeout aborts: {acts:?}"
                );
            }
            TimerKind::Actions => unreachable!("actions were drained"),
        }
        acts
    }

    fn set_ping_interval(&mut self, d: Duration) {
        let old = self.m.ping_interval();
        let result = self.m.set_ping_interval(d);
        assert_eq!(result.is_ok(), self.cfg.interval_bounds().contains(d));
        match result {
            Ok(()) => assert_eq!(self.m.ping_interval(), d),
            Err(e) => {
                assert_eq!(e.field(), heartbeat_core::Field::PingInterval);
                assert!(!e.to_string().is_empty());
                assert_eq!(self.m.ping_interval(), old);
            }
        }
        self.settle_quiet(Call::Untimed);
    }

    fn set_pong_timeout(&mut self, d: Duration) {
        let result = self.m.set_pong_timeout(d);
        assert_eq!(result.is_ok(), self.cfg.timeout_bounds().contains(d));
        if let Err(e) = result {
            assert_eq!(e.field(), heartbeat_core::Field::PongTimeout);
            assert!(!e.to_string().is_empty());
        } else if self.cfg.adaptive_timeout().is_none() || self.m.rtt().samples == 0 {
            assert_eq!(self.m.pong_timeout(), d, "the fixed timeout is in force");
        }
        self.settle_quiet(Call::Untimed);
    }

    /// A driver loop: sleep until each deadline (plus `late`), fire it, execute
    /// what comes out. The peer is silent or answers every ping in time.
    fn drive(&mut self, mode: DriveMode, firings: u8) {
        let started_open = self.last_state == State::Open;
        let (late, report_sent, write_delay, rtt) = match mode {
            DriveMode::Silent { report_sent } => {
                (Duration::ZERO, report_sent, Duration::ZERO, None)
            }
            DriveMode::Late { late, report_sent } => (late.0, report_sent, Duration::ZERO, None),
            DriveMode::Responsive { write_delay, rtt } => {
                (Duration::ZERO, true, write_delay.0, Some(rtt.0))
            }
        };
        let mut missed_after_first = None;
        for i in 0..usize::from(firings.min(MAX_FIRINGS)) {
            let Some(deadline) = self.m.poll_timeout() else {
                break;
            };
            self.clock = deadline.at + late;
            let deads = self.conn.deads;
            let acts = self.timeout(self.clock);
            let pinged = acts.iter().find_map(|a| match a {
                Action::SendPing(p) => Some(*p),
                _ => None,
            });
            if let Some(p) = pinged {
                if report_sent {
                    // Nothing else happens while the ping waits behind a write.
                    self.clock = self.clock + write_delay;
                    self.ping_sent(self.clock);
                }
                if let Some(rtt) = rtt {
                    let timeout = self.m.pong_timeout();
                    let rtt = rtt.min(timeout.saturating_sub(Duration::from_nanos(1)));
                    let arrival = self.clock + rtt;
                    // The driver keeps firing timers while the pong is on its way;
                    // none may be due before it arrives.
                    for _ in 0..2 {
                        match self.m.poll_timeout() {
                            Some(d) if d.at < arrival => {
                                self.clock = d.at;
                                self.timeout(d.at);
                            }
                            _ => break,
                        }
                    }
                    self.clock = arrival;
                    self.pong(self.clock, p.as_slice());
                }
            }
            if !started_open {
                continue;
            }
            if rtt.is_some() && i > 0 {
                assert_eq!(
                    self.conn.deads, deads,
                    "a peer answering every ping in time was declared dead"
                );
            }
            if rtt.is_none() && i + 1 == FIRINGS_TO_DETECT_SILENCE {
                assert_eq!(
                    self.conn.deads, 1,
                    "a silent peer must be dead after {FIRINGS_TO_DETECT_SILENCE} timer firings"
                );
            }
            if rtt.is_none() && late.is_zero() {
                let missed = self.m.stats().missed_deadlines;
                match missed_after_first {
                    None => missed_after_first = Some(missed),
                    Some(m) => assert_eq!(m, missed, "a stall was seen by an on-time driver"),
                }
            }
        }
    }

    // ----- checks after every call -------------------------------------------------

    /// Drains the actions of the call just made and checks every invariant.
    fn settle(&mut self, call: Call) -> Vec<Action> {
        let now = self.m.now();
        let stats = self.m.stats();
        self.check_time(call, now, &stats);

        let pending = self.m.poll_timeout();
        let mut acts = Vec::new();
        while let Some(a) = self.m.poll_action() {
            acts.push(a);
            assert!(
                acts.len() <= MAX_ACTIONS_PER_DRAIN,
                "unbounded output: {acts:?}"
            );
        }
        let queued = pending.filter(|d| d.kind == TimerKind::Actions);
        assert_eq!(
            queued.is_some(),
            !acts.is_empty(),
            "poll_timeout says Actions exactly while actions are queued ({pending:?}, {acts:?})"
        );
        if let Some(d) = queued {
            assert_eq!(d.at, now, "queued actions are due now");
        }
        for &a in &acts {
            self.check_action(a);
            self.transcript.push(Entry::Action(a));
        }

        let state = self.m.state();
        let deadline = self.m.poll_timeout();
        if self.trace {
            eprintln!("    {call:?} -> {acts:?}, {state:?}, {deadline:?}");
        }
        self.check_deadline(call, now, state, deadline);
        self.check_state(state, &acts);
        self.check_counters();

        self.transcript.push(Entry::Deadline(deadline));
        self.transcript.push(Entry::State(state));
        self.last_now = now;
        self.last_state = state;
        acts
    }

    /// [`settle`](Self::settle) for a call that must emit nothing.
    fn settle_quiet(&mut self, call: Call) {
        let acts = self.settle(call);
        assert!(acts.is_empty(), "{call:?} emitted {acts:?}");
    }

    fn check_time(&self, call: Call, now: Instant, stats: &Stats) {
        assert!(now >= self.last_now, "machine time ran backwards");
        let anomalies = stats.clock_anomalies - self.last_stats.clock_anomalies;
        match call {
            Call::At(t) | Call::Timeout(t) => {
                assert_eq!(now, t.max(self.last_now), "now is the latest time fed");
                assert_eq!(
                    anomalies,
                    u64::from(t < self.last_now),
                    "a backwards now is counted once, a forward one never"
                );
            }
            Call::Elapsed(d) => {
                assert_eq!(now, self.last_now + d);
                assert_eq!(anomalies, 0);
            }
            Call::Untimed => {
                assert_eq!(now, self.last_now);
                assert_eq!(anomalies, 0);
            }
        }
    }

    fn check_deadline(&self, call: Call, now: Instant, state: State, d: Option<Deadline>) {
        // The transport is needed while open or while a close handshake (bounded
        // by the close timeout) is in progress, and never after.
        let closing = d.is_some_and(|d| d.kind == TimerKind::CloseTimeout);
        assert_eq!(
            self.m.needs_transport(),
            state == State::Open || closing,
            "needs_transport in {state:?} with {d:?}"
        );
        if let Some(d) = d {
            assert!(d.at >= now, "deadline {d:?} before now {now:?}");
            assert_ne!(d.kind, TimerKind::Actions, "all actions were drained");
            if d.kind == TimerKind::Ping {
                // One interval after the last ping (or the connect), or after the
                // last inbound frame when pinging only an idle connection.
                let c = &self.conn;
                let mut base = c.latest.map_or(c.connected_at, |p| p.emitted);
                if self.cfg.idle_only() {
                    base = base.max(c.last_inbound);
                }
                let due = base + self.m.ping_interval();
                assert_eq!(d.at, due.max(now), "ping schedule (base {base:?})");
            }
            if d.kind == TimerKind::PongTimeout {
                let p = self.conn.latest;
                assert!(
                    p.is_some_and(|p| !p.acked && !p.proven),
                    "a pong deadline for {p:?}, which was answered or outlived by a proof of life"
                );
                if let Some(p) = p {
                    // The pong timer runs from handle_ping_sent, else from emission.
                    let due = p.sent.unwrap_or(p.emitted) + self.m.pong_timeout();
                    assert_eq!(d.at, due.max(now), "pong deadline of {p:?}");
                }
            }
        }
        match state {
            State::Open | State::Closing => {
                assert!(d.is_some(), "a live connection always has a deadline")
            }
            State::Connecting | State::Finished { .. } => {
                assert_eq!(d, None, "nothing is armed in {state:?}")
            }
            State::Dead { .. } => {}
        }
        if let (Call::Timeout(_) | Call::Elapsed(_), Some(d)) = (call, d) {
            let t = match call {
                Call::Timeout(t) => t,
                _ => now,
            };
            assert!(
                d.at >= t,
                "after handle_timeout({t:?}) the deadline is {d:?}"
            );
            // Everything due was fired: a driver that sleeps until the deadline
            // and fires it again would spin. Only saturation at the end of time
            // leaves a deadline at `now`.
            assert!(
                d.at > now || now == Instant::MAX,
                "handle_timeout({t:?}) left {d:?} due: a driver would busy-loop"
            );
        }
    }

    fn check_action(&mut self, a: Action) {
        let c = &mut self.conn;
        let over = c.deads > 0 || c.closes > 0;
        match a {
            Action::SendPing(p) => {
                assert!(!over, "ping after the connection ended or closed");
                assert_eq!(self.m.state(), State::Open, "ping while not open");
                let seq = <[u8; 8]>::try_from(p.as_slice())
                    .map(u64::from_be_bytes)
                    .unwrap_or_else(|_| panic!("our ping payload is an 8-byte seq: {p:?}"));
                if let Some(&last) = self.pings.last() {
                    assert!(seq > last, "ping seq {seq} reused (last {last})");
                }
                self.pings.push(seq);
                c.first_seq.get_or_insert(seq);
                c.latest = Some(OurPing {
                    seq,
                    emitted: self.m.now(),
                    sent: None,
                    acked: false,
                    proven: false,
                });
            }
            Action::SendPong(p) => {
                assert!(!over, "pong after the connection ended or closed");
                assert_eq!(Some(p), self.answering, "a pong must echo this call's ping");
            }
            Action::Dead(reason) => {
                assert!(c.open, "Dead without a connection: {reason:?}");
                c.deads += 1;
                assert_eq!(c.deads, 1, "a second Dead on one connection: {reason:?}");
                c.reason = Some(reason);
                self.sticky = Some(reason);
            }
            Action::SendClose { code, reason } => {
                assert!(c.open, "close without a connection");
                let n = code.get();
                assert_eq!(CloseCode::new(n), Some(code), "unsendable close code {n}");
                assert!(!matches!(n, 1004 | 1005 | 1006 | 1015), "reserved code {n}");
                assert!(reason.len() <= 123, "close reason too long");
                c.closes += 1;
                assert_eq!(c.closes, 1, "a second close on one connection");
            }
            Action::Abort => {
                assert!(c.closes == 1, "abort without a close handshake");
                c.aborts += 1;
                assert_eq!(c.aborts, 1, "a second abort on one connection");
            }
            Action::Reconnect { after, attempt } => self.check_reconnect(after, attempt),
        }
    }

    fn check_reconnect(&mut self, after: Duration, attempt: u32) {
        let b = self.cfg.backoff();
        assert_eq!(self.cfg.role(), Role::Client, "a server never reconnects");
        assert!(
            !self.awaiting_attempt,
            "two Reconnects without an attempt in between"
        );
        self.awaiting_attempt = true;
        assert_eq!(
            attempt,
            self.attempt_base().saturating_add(1),
            "consecutive attempts count up from 1, and restart only after a \
             connection proved healthy for reset_after ({:?}) (conn {:?})",
            b.reset_after,
            self.conn
        );
        self.last_attempt = attempt;
        if let Some(max) = b.max_attempts {
            assert!(
                attempt <= max,
                "attempt {attempt} beyond max_attempts {max}"
            );
        }
        assert!(
            after <= b.cap.max(b.max_requested_delay),
            "reconnect after {after:?} exceeds cap {:?} and max requested {:?}",
            b.cap,
            b.max_requested_delay
        );
        if let Some(r) = self.requested.take() {
            assert!(
                after >= r,
                "server asked for {r:?}, reconnect after {after:?}"
            );
        }
        if let Some(reason) = self.conn.reason {
            assert!(
                self.may_reconnect(reason),
                "reconnect after {reason:?}: the application closed, or the \
                 peer's close code is permanent"
            );
        }
    }

    fn check_state(&self, state: State, acts: &[Action]) {
        match (self.last_state, state) {
            (State::Finished { .. }, _) => {
                assert_eq!(state, self.last_state, "Finished is terminal");
                assert!(acts.is_empty(), "actions after Finished: {acts:?}");
            }
            // A client gives up on its own only once max_attempts is spent.
            (_, State::Finished { reason })
                if self.cfg.role() == Role::Client && self.may_reconnect(reason) =>
            {
                let max = self.cfg.backoff().max_attempts;
                assert!(
                    max.is_some_and(|max| self.attempt_base() >= max),
                    "finished after {reason:?} with {} attempts of {max:?} spent",
                    self.attempt_base()
                );
            }
            _ => {}
        }
        assert_eq!(self.m.last_proof_of_life().is_some(), state == State::Open);
        if matches!(state, State::Open | State::Closing) {
            assert_eq!(self.m.death_reason(), None, "{state:?} has no death reason");
        }
        if self.conn.open {
            let live = matches!(state, State::Open | State::Closing);
            assert_eq!(
                self.conn.deads == 0,
                live,
                "exactly one Dead once a connection is over ({state:?})"
            );
        }
        if let Some(r) = self.sticky {
            assert_eq!(self.m.death_reason(), Some(r), "the death reason is sticky");
        }
        if let Some(b) = self.cfg.adaptive_timeout() {
            if self.m.rtt().samples > 0 {
                assert!(
                    b.contains(self.m.pong_timeout()),
                    "adaptive timeout out of bounds"
                );
            }
        }
    }

    fn check_counters(&mut self) {
        let (old, new) = (counters(&self.last_stats), counters(&self.m.stats()));
        for (i, (o, n)) in old.iter().zip(new.iter()).enumerate() {
            assert!(n >= o, "counter #{i} went down: {o} -> {n}");
        }
        let samples = self.m.rtt().samples;
        assert!(samples >= self.last_samples, "RTT samples went down");
        self.last_stats = self.m.stats();
        self.last_samples = samples;
    }

    /// The attempts already counted when the connection or attempt that just
    /// ended asks for another: none if it was a connection that stayed healthy
    /// for `reset_after`.
    fn attempt_base(&self) -> u32 {
        let c = &self.conn;
        let healthy_for = c.evidence - c.connected_at;
        if !self.attempt_failed && c.open && healthy_for >= self.cfg.backoff().reset_after {
            0
        } else {
            self.last_attempt
        }
    }

    /// Whether a connection that ended for `reason` may be followed by another.
    fn may_reconnect(&self, reason: DeathReason) -> bool {
        match reason {
            DeathReason::LocalClose { .. } | DeathReason::CloseTimeout { .. } => false,
            DeathReason::PeerClosed {
                code: Some(1002 | 1003 | 1007 | 1008 | 1009 | 1010),
            } => self.cfg.reconnect_on_permanent_close(),
            _ => true,
        }
    }

    /// Health and proof of life against the model, once a step is complete.
    fn check_health(&self) {
        let health = self.m.health();
        match self.m.state() {
            State::Open => {
                assert_eq!(self.m.last_proof_of_life(), Some(self.conn.evidence));
                let armed = self.conn.latest.filter(|p| !p.acked && !p.proven);
                let overdue = match (armed, self.m.rtt().rto()) {
                    (Some(p), Some(rto)) => self.m.now() - p.sent.unwrap_or(p.emitted) > rto,
                    _ => false,
                };
                let expected = if self.conn.suspect || overdue {
                    Health::Suspect
                } else {
                    Health::Healthy
                };
                assert_eq!(health, expected, "overdue {overdue}, {:?}", self.conn);
            }
            State::Connecting => assert_eq!(health, Health::Suspect),
            s => assert_eq!(health, Health::Dead, "{s:?}"),
        }
    }

    /// Records an inbound frame (data, ping or pong) that reached an open
    /// connection: it counts for idle-only pinging, and proves liveness when any
    /// frame does.
    fn inbound(&mut self, was_open: bool) {
        if was_open {
            let now = self.m.now();
            self.conn.last_inbound = now;
            if self.cfg.liveness() == Liveness::AnyFrame {
                self.conn.proof_of_life(now);
            }
        }
    }

    /// A call that makes no sense in the current state is counted and changes nothing.
    fn assert_ignored(&self, before: Stats, acts: &[Action]) {
        assert_eq!(
            self.m.stats().ignored_calls,
            before.ignored_calls + 1,
            "a call in the wrong state is counted"
        );
        assert!(acts.is_empty(), "an ignored call emitted {acts:?}");
    }
}

/// The connection died for `reason`, said so once, and (if `reply` is given)
/// sent that close code.
fn assert_dead_and_closed(acts: &[Action], reason: DeathReason, reply: Option<CloseCode>) {
    assert!(
        acts.contains(&Action::Dead(reason)),
        "expected Dead({reason:?}) in {acts:?}"
    );
    if let Some(code) = reply {
        assert!(
            acts.iter()
                .any(|a| matches!(a, Action::SendClose { code: c, .. } if *c == code)),
            "expected a close with {code} in {acts:?}"
        );
    }
}

fn counters(s: &Stats) -> [u64; 13] {
    [
        s.pings_sent,
        s.pongs_matched,
        s.unsolicited_pongs,
        s.pings_received,
        s.pongs_sent,
        s.pings_refused,
        s.missed_deadlines,
        s.pong_timeouts,
        s.close_timeouts,
        s.connects,
        s.reconnects,
        s.clock_anomalies,
        s.ignored_calls,
    ]
}
