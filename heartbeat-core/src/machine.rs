//! [`HeartbeatMachine`]: every state transition of a connection's heartbeat, in one place.

use core::borrow::Borrow;
use core::time::Duration;

use crate::action::{is_sendable, Action, CloseCode, Payload};
use crate::backoff::BackoffState;
use crate::config::{Config, ConfigError, Field, Liveness, Role};
use crate::reason::{DeathReason, Health, ProtocolError, State};
use crate::rtt::RttStats;
use crate::stats::{bump, Stats};
use crate::time::Instant;
use crate::timer::{Deadline, TimerKind};

/// The sans-IO heartbeat of one logical connection (and, in the client role, of its
/// successors after reconnects).
///
/// The contract: **after any `handle_*` call, drain [`poll_action`](Self::poll_action)
/// until `None`, then sleep until [`poll_timeout`](Self::poll_timeout) and call
/// [`handle_timeout`](Self::handle_timeout).** Feed everything readable from the
/// transport before expiring deadlines at the same moment, so a pong already in the
/// socket buffer is never ignored. Calling `handle_timeout` early or twice is harmless.
///
/// The machine reads no clock: every `handle_*` takes `now`. A `now` earlier than
/// one already seen is clamped and counted in [`Stats::clock_anomalies`].
///
/// `C` is how the machine holds its [`Config`]: by value (the default), or shared
/// as `&Config` / `Arc<Config>` by a driver of many connections, which keeps each
/// machine small.
#[derive(Clone, Debug)]
pub struct HeartbeatMachine<C: Borrow<Config> = Config> {
    cfg: C,
    /// The latest `now` seen; time never runs backwards inside the machine.
    now: Instant,
    phase: Phase,
    /// Why the current (or last) connection ended. `None` while open.
    reason: Option<DeathReason>,
    /// Runtime-adjustable copies of the configured interval and timeout.
    interval: Duration,
    timeout: Duration,
    conn: Connection,
    out: Outbox,
    backoff: BackoffState,
    /// A server-requested minimum for the next reconnect delay.
    requested_delay: Option<Duration>,
    /// Next ping sequence number; never reused across reconnects, so a stale pong
    /// from an old connection can never match.
    next_seq: u64,
    rtt: RttStats,
    stats: Stats,
}

/// Coarse phase; `state()` derives the public [`State`] from it and `reason`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Connecting,
    Open,
    /// Our close is out; waiting for the peer's close or the transport's end.
    /// `local` holds the code when the application, not a fault, started the close.
    Closing {
        since: Instant,
        local: Option<CloseCode>,
    },
    Finished,
}

/// Per-connection timing state, reset by `handle_connected`.
#[derive(Clone, Copy, Debug, Default)]
struct Connection {
    connected_at: Instant,
    /// The last proof of life (see [`Liveness`]).
    last_evidence: Instant,
    /// The last inbound frame of any kind (for idle-only pinging).
    last_inbound: Instant,
    last_ping_at: Option<Instant>,
    probe: Option<Probe>,
    /// The oldest of our pings not yet acknowledged by a pong.
    first_unacked: u64,
    /// A deadline was missed because of a local stall and a fresh probe is out.
    /// Forgiveness is granted once per proof of life, so a driver that is always
    /// late still detects a dead peer.
    suspect: bool,
    flood: FloodWindow,
}

/// The most recent ping and its pong deadline.
#[derive(Clone, Copy, Debug)]
struct Probe {
    seq: u64,
    emitted_at: Instant,
    /// When the driver handed it to the transport; the pong timer runs from here.
    sent_at: Option<Instant>,
    /// Whether its pong deadline still counts; proof of life disarms it.
    armed: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct FloodWindow {
    start: Instant,
    count: u32,
    struck: bool,
    strikes: u32,
}

/// Fixed-capacity output queue: one slot per action kind, polled in field order.
/// A newer pong replaces an older one; nothing is sent after a queued close.
#[derive(Clone, Copy, Debug, Default)]
struct Outbox {
    pong: Option<Payload>,
    ping: Option<u64>,
    /// The reason itself is `HeartbeatMachine::reason`.
    dead: bool,
    close: Option<(CloseCode, &'static str)>,
    abort: bool,
    reconnect: Option<(Duration, u32)>,
}

enum PingVerdict {
    Answer,
    Refuse,
    Flood,
}

impl<C: Borrow<Config>> HeartbeatMachine<C> {
    /// A machine waiting for its first connection.
    ///
    /// `seed` drives reconnect jitter (use a different one per connection, e.g. from
    /// the OS RNG in the driver); the machine itself never reads randomness.
    pub fn new(config: C, seed: u64) -> HeartbeatMachine<C> {
        let (interval, timeout) = {
            let c: &Config = config.borrow();
            (c.ping_interval, c.pong_timeout)
        };
        HeartbeatMachine {
            interval,
            timeout,
            cfg: config,
            now: Instant::ZERO,
            phase: Phase::Connecting,
            reason: None,
            conn: Connection::default(),
            out: Outbox::default(),
            backoff: BackoffState::new(seed),
            requested_delay: None,
            next_seq: 0,
            rtt: RttStats::default(),
            stats: Stats::default(),
        }
    }

    // ----- events in -------------------------------------------------------------

    /// The transport is up (WebSocket handshake done). Starts the ping schedule.
    ///
    /// Valid while connecting (at start, or after a [`Action::Reconnect`]); ignored
    /// and counted otherwise.
    pub fn handle_connected(&mut self, now: Instant) {
        let now = self.observe(now);
        if self.phase != Phase::Connecting {
            bump(&mut self.stats.ignored_calls);
            return;
        }
        self.phase = Phase::Open;
        self.reason = None;
        self.out = Outbox::default();
        self.conn = Connection {
            connected_at: now,
            last_evidence: now,
            last_inbound: now,
            flood: FloodWindow {
                start: now,
                ..FloodWindow::default()
            },
            ..Connection::default()
        };
        bump(&mut self.stats.connects);
    }

    /// A connection attempt failed. In the client role this schedules the next
    /// attempt (or finishes once `max_attempts` is spent); in the server role it
    /// finishes.
    pub fn handle_connect_failed(&mut self, now: Instant) {
        self.observe(now);
        if self.phase != Phase::Connecting {
            bump(&mut self.stats.ignored_calls);
            return;
        }
        self.reason = Some(DeathReason::ConnectFailed);
        self.out.reconnect = None;
        self.end_connection(false);
    }

    /// The server asked for a delay before the next attempt (e.g. HTTP 503 with
    /// `Retry-After`). The next [`Action::Reconnect`] waits at least this long,
    /// capped at `backoff.max_requested_delay`.
    pub fn handle_retry_after(&mut self, now: Instant, delay: Duration) {
        self.observe(now);
        let delay = delay.min(self.cfg().backoff.max_requested_delay);
        match &mut self.out.reconnect {
            // Already scheduled and not yet polled: stretch it in place.
            Some((after, _)) => *after = (*after).max(delay),
            None => self.requested_delay = Some(delay),
        }
    }

    /// The driver handed the last [`Action::SendPing`] to the transport; the pong
    /// timer starts now. Until this call the timer runs from the ping's emission,
    /// so a transport that never accepts the ping still ends in a timeout.
    pub fn handle_ping_sent(&mut self, now: Instant) {
        let now = self.observe(now);
        match &mut self.conn.probe {
            Some(p) if p.sent_at.is_none() && self.out.ping.is_none() => p.sent_at = Some(now),
            _ => bump(&mut self.stats.ignored_calls),
        }
    }

    /// An inbound data frame arrived (text, binary, or an application message).
    /// Proves liveness under [`Liveness::AnyFrame`].
    pub fn handle_frame(&mut self, now: Instant) {
        let now = self.observe(now);
        if self.phase == Phase::Open {
            self.inbound(now);
        }
    }

    /// A pong arrived with `payload`. A pong for one of our pings acknowledges it and
    /// every earlier one, proves liveness and (for the latest ping) gives an RTT
    /// sample; any other pong is ignored and counted.
    pub fn handle_pong(&mut self, now: Instant, payload: &[u8]) {
        let now = self.observe(now);
        if self.phase != Phase::Open {
            bump(&mut self.stats.unsolicited_pongs);
            return;
        }
        self.inbound(now);
        let matched = match (self.conn.probe, Payload::seq(payload)) {
            (Some(p), Some(seq)) if self.conn.first_unacked <= seq && seq <= p.seq => {
                Some((p, seq))
            }
            _ => None,
        };
        let Some((probe, seq)) = matched else {
            bump(&mut self.stats.unsolicited_pongs);
            return;
        };
        bump(&mut self.stats.pongs_matched);
        if seq == probe.seq {
            // Only the latest ping's send time is kept, so only it yields a sample.
            let sent = probe.sent_at.unwrap_or(probe.emitted_at);
            self.rtt.sample(now - sent);
            self.conn.probe = None;
        }
        self.conn.first_unacked = seq.wrapping_add(1);
        self.prove_alive(now);
    }

    /// A ping arrived with `payload`: queues a pong echoing it (coalesced with any
    /// pong not yet polled), unless the ping budget is exceeded. A payload over 125
    /// bytes is a protocol error (close 1002); repeated floods close with 1008.
    pub fn handle_ping(&mut self, now: Instant, payload: &[u8]) {
        let now = self.observe(now);
        match self.phase {
            Phase::Open => {}
            // The peer may still ping while our close is in flight: normal, not misuse.
            Phase::Closing { .. } => return,
            Phase::Connecting | Phase::Finished => {
                bump(&mut self.stats.ignored_calls);
                return;
            }
        }
        bump(&mut self.stats.pings_received);
        self.inbound(now);
        let Some(payload) = Payload::from_slice(payload) else {
            let len = payload.len();
            self.die(
                now,
                DeathReason::ProtocolError(ProtocolError::ControlFrameTooLong { len }),
                Some((CloseCode::PROTOCOL_ERROR, "control frame too long")),
            );
            return;
        };
        match self.admit_ping(now) {
            PingVerdict::Answer => self.out.pong = Some(payload),
            PingVerdict::Refuse => bump(&mut self.stats.pings_refused),
            PingVerdict::Flood => {
                bump(&mut self.stats.pings_refused);
                self.die(
                    now,
                    DeathReason::PingFlood,
                    Some((CloseCode::POLICY_VIOLATION, "too many pings")),
                );
            }
        }
    }

    /// The peer sent a close frame (`code`: its status code, if any).
    ///
    /// While open: the connection is over ([`DeathReason::PeerClosed`]); the close is
    /// answered with the same code. While closing: our close handshake is complete.
    /// A code that may never be on the wire is a protocol error (answered with 1002).
    pub fn handle_close(&mut self, now: Instant, code: Option<u16>) {
        self.observe(now);
        match self.phase {
            Phase::Open => {
                self.clear_probe();
                let (reason, reply) = match code {
                    Some(c) if !is_sendable(c) => (
                        DeathReason::ProtocolError(ProtocolError::InvalidCloseCode { code: c }),
                        CloseCode::PROTOCOL_ERROR,
                    ),
                    // `c` was just checked to be sendable.
                    Some(c) => (
                        DeathReason::PeerClosed { code: Some(c) },
                        CloseCode::new(c).unwrap_or(CloseCode::NORMAL),
                    ),
                    None => (DeathReason::PeerClosed { code: None }, CloseCode::NORMAL),
                };
                self.report(reason);
                self.out.close = Some((reply, ""));
                // Our reply completes the handshake: nothing left to wait for.
                self.end_connection(true);
            }
            Phase::Closing { local, .. } => self.finish_close(local),
            _ => bump(&mut self.stats.ignored_calls),
        }
    }

    /// The transport ended (EOF, reset, I/O error) without a close handshake on our
    /// side, or after our close was sent.
    pub fn handle_transport_closed(&mut self, now: Instant) {
        self.observe(now);
        match self.phase {
            Phase::Open => {
                self.clear_probe();
                self.report(DeathReason::TransportClosed);
                self.end_connection(true);
            }
            Phase::Closing { local, .. } => self.finish_close(local),
            _ => bump(&mut self.stats.ignored_calls),
        }
    }

    /// The driver saw a malformed frame: the connection is closed with 1002.
    pub fn handle_protocol_error(&mut self, now: Instant) {
        let now = self.observe(now);
        if self.phase == Phase::Open {
            self.die(
                now,
                DeathReason::ProtocolError(ProtocolError::Malformed),
                Some((CloseCode::PROTOCOL_ERROR, "protocol error")),
            );
        } else {
            bump(&mut self.stats.ignored_calls);
        }
    }

    /// The application wants to end: close with `code` and never reconnect.
    ///
    /// While open, a close is sent and the handshake bounded by `close_timeout`;
    /// the [`Action::Dead`] that follows says [`DeathReason::LocalClose`] (or
    /// [`DeathReason::CloseTimeout`] if the peer never answered). While connecting,
    /// pending reconnects are cancelled and the machine finishes at once.
    pub fn close(&mut self, now: Instant, code: CloseCode) {
        let now = self.observe(now);
        match self.phase {
            Phase::Open => {
                self.clear_probe();
                self.out.close = Some((code, "closing"));
                self.phase = Phase::Closing {
                    since: now,
                    local: Some(code),
                };
            }
            Phase::Connecting => {
                self.out.reconnect = None;
                self.reason = Some(DeathReason::LocalClose { code: code.get() });
                self.phase = Phase::Finished;
            }
            _ => bump(&mut self.stats.ignored_calls),
        }
    }

    /// Time has reached `now`: fire every deadline that is due.
    ///
    /// A pong deadline found more than `stall_threshold` late is blamed on a local
    /// stall, not the peer: one fresh probe is sent with a full timeout instead of a
    /// retroactive verdict (once per proof of life). A late ping timer sends one
    /// ping, never a burst.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.observe(now);
        match self.phase {
            Phase::Open => self.expire_open(now),
            Phase::Closing { since, local } => {
                if now >= since + self.cfg().close_timeout {
                    bump(&mut self.stats.close_timeouts);
                    if local.is_some() {
                        self.report(DeathReason::CloseTimeout {
                            waited: now - since,
                        });
                    }
                    self.out.abort = true;
                    self.end_connection(true);
                }
            }
            Phase::Connecting | Phase::Finished => {}
        }
    }

    /// Relative-time driving, for loops without a clock: advance the machine's time
    /// by `elapsed` and fire what is due (`handle_timeout(now() + elapsed)`).
    pub fn handle_elapsed(&mut self, elapsed: Duration) {
        self.handle_timeout(self.now + elapsed);
    }

    // ----- runtime changes -------------------------------------------------------

    /// Changes the ping interval on a live machine (e.g. after an application
    /// handshake, or when the server asks for fewer pings). Takes effect for the next
    /// ping and persists across reconnects. Rejected outside `interval_bounds`.
    pub fn set_ping_interval(&mut self, interval: Duration) -> Result<(), ConfigError> {
        if !self.cfg().interval_bounds.contains(interval) {
            return Err(ConfigError::OutOfBounds {
                field: Field::PingInterval,
                bounds: Field::IntervalBounds,
            });
        }
        self.interval = interval;
        Ok(())
    }

    /// Changes the fixed pong timeout (used until the adaptive timeout has a sample,
    /// or always when not adaptive). Applies to the outstanding ping too. Rejected
    /// outside `timeout_bounds`.
    pub fn set_pong_timeout(&mut self, timeout: Duration) -> Result<(), ConfigError> {
        if !self.cfg().timeout_bounds.contains(timeout) {
            return Err(ConfigError::OutOfBounds {
                field: Field::PongTimeout,
                bounds: Field::TimeoutBounds,
            });
        }
        self.timeout = timeout;
        Ok(())
    }

    // ----- actions and deadlines out --------------------------------------------

    /// The next action for the driver to execute, or `None` when all are drained.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        let out = &mut self.out;
        if let Some(p) = out.pong.take() {
            bump(&mut self.stats.pongs_sent);
            return Some(Action::SendPong(p));
        }
        if let Some(seq) = out.ping.take() {
            return Some(Action::SendPing(Payload::from_seq(seq)));
        }
        if core::mem::take(&mut out.dead) {
            if let Some(reason) = self.reason {
                return Some(Action::Dead(reason));
            }
        }
        if let Some((code, reason)) = out.close.take() {
            return Some(Action::SendClose { code, reason });
        }
        if core::mem::take(&mut out.abort) {
            return Some(Action::Abort);
        }
        if let Some((after, attempt)) = out.reconnect.take() {
            return Some(Action::Reconnect { after, attempt });
        }
        None
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next, and why.
    ///
    /// The earliest armed deadline, never earlier than the last `now` seen; the last
    /// `now` while actions are queued; `None` only when nothing is armed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Deadline> {
        if self.has_actions() {
            return Some(Deadline {
                at: self.now,
                kind: TimerKind::Actions,
            });
        }
        let deadline = match self.phase {
            Phase::Open => {
                let pong = self.pong_deadline().map(|at| (at, TimerKind::PongTimeout));
                let ping = self.ping_due().map(|at| (at, TimerKind::Ping));
                match (pong, ping) {
                    (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
                    (a, b) => a.or(b),
                }
            }
            Phase::Closing { since, .. } => {
                Some((since + self.cfg().close_timeout, TimerKind::CloseTimeout))
            }
            Phase::Connecting | Phase::Finished => None,
        };
        deadline.map(|(at, kind)| Deadline {
            at: at.max(self.now),
            kind,
        })
    }

    // ----- queries ---------------------------------------------------------------

    /// Where the machine stands.
    pub fn state(&self) -> State {
        match (self.phase, self.reason) {
            (Phase::Open, _) => State::Open,
            (Phase::Closing { local: Some(_), .. }, None) => State::Closing,
            (Phase::Finished, Some(reason)) => State::Finished { reason },
            (_, Some(reason)) => State::Dead { reason },
            (_, None) => State::Connecting,
        }
    }

    /// A graded view of the peer's liveness, as of the last `now` seen.
    ///
    /// Suspect while open means a deadline was missed but no verdict is due yet:
    /// the outstanding pong is later than the RTT estimate predicts
    /// (`SRTT + 4·RTTVAR`), or a local stall forced a fresh probe.
    pub fn health(&self) -> Health {
        match self.phase {
            Phase::Open if self.conn.suspect || self.pong_overdue() => Health::Suspect,
            Phase::Open => Health::Healthy,
            Phase::Connecting if self.reason.is_none() => Health::Suspect,
            _ => Health::Dead,
        }
    }

    /// Why the current or last connection ended (`None` while open or before any).
    pub fn death_reason(&self) -> Option<DeathReason> {
        self.reason
    }

    /// RTT figures from matched pongs.
    pub fn rtt(&self) -> RttStats {
        self.rtt
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The latest `now` the machine has seen.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &Config {
        self.cfg.borrow()
    }

    /// The ping interval in force.
    pub fn ping_interval(&self) -> Duration {
        self.interval
    }

    /// The pong timeout in force: the adaptive one once it has a sample, else the
    /// fixed one.
    pub fn pong_timeout(&self) -> Duration {
        match (self.cfg().adaptive_timeout, self.rtt.rto()) {
            (Some(bounds), Some(rto)) => bounds.clamp(rto),
            _ => self.timeout,
        }
    }

    /// Whether the driver must keep the current transport: the connection is open, or
    /// a close handshake is in progress (bounded by `close_timeout`). Once `false`
    /// (the connection ended: waiting to reconnect, or finished), drop the transport.
    ///
    /// [`State::Dead`] alone cannot say this: it covers both "closing after the
    /// verdict" and "over, a reconnect may follow".
    pub fn needs_transport(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Closing { .. })
    }

    /// The last proof of life on the current connection (`None` unless open).
    pub fn last_proof_of_life(&self) -> Option<Instant> {
        (self.phase == Phase::Open).then_some(self.conn.last_evidence)
    }

    // ----- transitions (all of them live below) ---------------------------------

    fn cfg(&self) -> &Config {
        self.cfg.borrow()
    }

    /// Clamps a backwards `now` and records the latest time seen.
    fn observe(&mut self, now: Instant) -> Instant {
        if now < self.now {
            bump(&mut self.stats.clock_anomalies);
        } else {
            self.now = now;
        }
        self.now
    }

    fn expire_open(&mut self, now: Instant) {
        if let Some(deadline) = self.pong_deadline() {
            if now >= deadline {
                let late = now - deadline;
                if late > self.cfg().stall_threshold && !self.conn.suspect {
                    // We, not the peer, were silent: the process was stopped or the
                    // loop saturated. Probe afresh instead of convicting the peer.
                    bump(&mut self.stats.missed_deadlines);
                    self.conn.suspect = true;
                    self.emit_ping(now);
                } else {
                    let sent = self
                        .conn
                        .probe
                        .and_then(|p| p.sent_at.or(Some(p.emitted_at)));
                    let waited = now - sent.unwrap_or(now);
                    bump(&mut self.stats.pong_timeouts);
                    self.die(
                        now,
                        DeathReason::PongTimeout { waited },
                        Some((self.cfg().dead_close_code, "keepalive ping timeout")),
                    );
                }
                return;
            }
        }
        if let Some(due) = self.ping_due() {
            if now >= due {
                if now - due > self.cfg().stall_threshold {
                    bump(&mut self.stats.missed_deadlines);
                }
                self.emit_ping(now);
            }
        }
    }

    fn emit_ping(&mut self, now: Instant) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        if self.conn.probe.is_none() {
            self.conn.first_unacked = seq;
        }
        self.conn.probe = Some(Probe {
            seq,
            emitted_at: now,
            sent_at: None,
            armed: true,
        });
        self.conn.last_ping_at = Some(now);
        self.out.ping = Some(seq);
        bump(&mut self.stats.pings_sent);
    }

    /// Any inbound frame: counts for idle-only pinging, and as proof of life when
    /// every frame does.
    fn inbound(&mut self, now: Instant) {
        self.conn.last_inbound = now;
        if self.cfg().liveness == Liveness::AnyFrame {
            self.prove_alive(now);
        }
    }

    fn prove_alive(&mut self, now: Instant) {
        self.conn.last_evidence = now;
        self.conn.suspect = false;
        if let Some(p) = &mut self.conn.probe {
            // The ping stays known so its pong still matches, but nothing is overdue.
            p.armed = false;
        }
    }

    fn admit_ping(&mut self, now: Instant) -> PingVerdict {
        let Some(limit) = self.cfg().ping_flood else {
            return PingVerdict::Answer;
        };
        let w = &mut self.conn.flood;
        if now - w.start >= limit.window {
            w.start = now;
            w.count = 0;
            w.struck = false;
        }
        w.count = w.count.saturating_add(1);
        if w.count <= limit.max_pings {
            return PingVerdict::Answer;
        }
        if !w.struck {
            w.struck = true;
            w.strikes = w.strikes.saturating_add(1);
            if w.strikes > limit.max_strikes {
                return PingVerdict::Flood;
            }
        }
        PingVerdict::Refuse
    }

    /// The connection is over for `reason`: tell the application now, then close
    /// (bounded by `close_timeout`) or, without a close, end at once.
    fn die(&mut self, now: Instant, reason: DeathReason, close: Option<(CloseCode, &'static str)>) {
        self.clear_probe();
        self.report(reason);
        match close {
            Some(close) => {
                self.out.close = Some(close);
                self.phase = Phase::Closing {
                    since: now,
                    local: None,
                };
            }
            None => self.end_connection(true),
        }
    }

    /// Records the sticky reason and queues the one [`Action::Dead`] of this connection.
    fn report(&mut self, reason: DeathReason) {
        self.reason = Some(reason);
        self.out.dead = true;
    }

    /// Our close was answered (peer's close or transport end).
    fn finish_close(&mut self, local: Option<CloseCode>) {
        if let Some(code) = local {
            self.report(DeathReason::LocalClose { code: code.get() });
        }
        self.end_connection(true);
    }

    fn clear_probe(&mut self) {
        self.conn.probe = None;
        self.out.ping = None;
    }

    /// The transport is gone (or about to be): reconnect with backoff or finish.
    fn end_connection(&mut self, was_open: bool) {
        self.clear_probe();
        let reason = self.reason.unwrap_or(DeathReason::TransportClosed);
        if self.cfg().role == Role::Server || !self.may_reconnect(reason) {
            self.phase = Phase::Finished;
            return;
        }
        let healthy_for = self.conn.last_evidence - self.conn.connected_at;
        if was_open && healthy_for >= self.cfg().backoff.reset_after {
            self.backoff.reset();
        }
        let backoff = self.cfg().backoff;
        match self.backoff.next_delay(&backoff) {
            Some((delay, attempt)) => {
                let after = delay.max(self.requested_delay.take().unwrap_or_default());
                self.out.reconnect = Some((after, attempt));
                bump(&mut self.stats.reconnects);
                self.phase = Phase::Connecting;
            }
            None => self.phase = Phase::Finished,
        }
    }

    fn may_reconnect(&self, reason: DeathReason) -> bool {
        match reason {
            DeathReason::LocalClose { .. } | DeathReason::CloseTimeout { .. } => false,
            DeathReason::PeerClosed { code: Some(c) } if is_permanent(c) => {
                self.cfg().reconnect_on_permanent_close
            }
            _ => true,
        }
    }

    fn pong_deadline(&self) -> Option<Instant> {
        let p = self.conn.probe.filter(|p| p.armed)?;
        Some(p.sent_at.unwrap_or(p.emitted_at) + self.pong_timeout())
    }

    fn ping_due(&self) -> Option<Instant> {
        if self.conn.probe.is_some_and(|p| p.armed) || self.out.ping.is_some() {
            return None;
        }
        let mut base = self.conn.last_ping_at.unwrap_or(self.conn.connected_at);
        if self.cfg().idle_only {
            base = base.max(self.conn.last_inbound);
        }
        Some(base + self.interval)
    }

    /// The armed probe has waited longer than the RTT estimate allows.
    fn pong_overdue(&self) -> bool {
        match (self.conn.probe, self.rtt.rto()) {
            (Some(p), Some(rto)) if p.armed => self.now - p.sent_at.unwrap_or(p.emitted_at) > rto,
            _ => false,
        }
    }

    fn has_actions(&self) -> bool {
        let o = &self.out;
        o.pong.is_some()
            || o.ping.is_some()
            || o.dead
            || o.close.is_some()
            || o.abort
            || o.reconnect.is_some()
    }
}

/// Close codes after which reconnecting cannot help: the peer rejected what we are
/// (protocol, data, policy, size, extensions), not a passing condition.
fn is_permanent(code: u16) -> bool {
    matches!(code, 1002 | 1003 | 1007 | 1008 | 1009 | 1010)
}
