//! [`HeartbeatMachine`]: every state transition of a connection's life, in one place.

use core::borrow::Borrow;
use core::time::Duration;

use crate::action::{is_sendable, Action, CloseCode, Payload};
use crate::backoff::BackoffState;
use crate::config::{Config, ConfigError, Field, Liveness, Role};
use crate::outcome::{PingOutcome, PongOutcome};
use crate::reason::{ConnectFailure, DeathReason, Health, ProtocolError, State};
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
    /// How late the driver reports its own loop runs (see `handle_local_lag`).
    local_lag: Duration,
    rtt: RttStats,
    stats: Stats,
}

/// Where the machine stands. The public [`State`] is this minus the timestamps, so
/// the reason a driver reads is the one stored here, never a guess.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Idle,
    Connecting {
        attempt: u32,
        since: Instant,
    },
    Open,
    /// Our close or our reply is out; the transport is kept until the handshake
    /// completes (`wait`) or `close_timeout` passes.
    Closing {
        reason: DeathReason,
        since: Instant,
        wait: CloseWait,
    },
    /// Waiting for the backoff delay. After a fault the dead connection's close may
    /// still be draining in the background until `draining_until`; it never
    /// delays `at` (the next attempt cuts it short).
    Reconnecting {
        reason: DeathReason,
        at: Instant,
        attempt: u32,
        draining_until: Option<Instant>,
    },
    Finished {
        reason: DeathReason,
    },
}

/// What completes a close handshake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CloseWait {
    /// We closed first: the peer's close, or the end of the stream.
    PeerReply,
    /// We answered the peer's close: our reply flushed, or the end of the stream.
    OurReplyFlushed,
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
/// A newer pong replaces an older one; nothing is sent after a queued close; a
/// disconnect always precedes the next connect.
#[derive(Clone, Copy, Debug, Default)]
struct Outbox {
    pong: Option<Payload>,
    ping: Option<u64>,
    dead: Option<DeathReason>,
    close: Option<(CloseCode, &'static str)>,
    disconnect: bool,
    connect: Option<u32>,
}

impl<C: Borrow<Config>> HeartbeatMachine<C> {
    /// A machine with nothing started ([`State::Idle`]).
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
            phase: Phase::Idle,
            conn: Connection::default(),
            out: Outbox::default(),
            backoff: BackoffState::new(seed),
            requested_delay: None,
            next_seq: 0,
            local_lag: Duration::ZERO,
            rtt: RttStats::default(),
            stats: Stats::default(),
        }
    }

    // ----- commands from the application -----------------------------------------

    /// Starts the first connection attempt: queues [`Action::Connect`] with attempt
    /// 0 and bounds the attempt with `connect_timeout`.
    ///
    /// A server calls it when it accepts a socket (the attempt is the upgrade). A
    /// driver given a connection that is already open calls
    /// [`handle_connected`](Self::handle_connected) instead. Ignored and counted
    /// unless [`State::Idle`].
    pub fn connect(&mut self, now: Instant) {
        let now = self.observe(now);
        if self.phase != Phase::Idle {
            bump(&mut self.stats.ignored_calls);
            return;
        }
        self.start_attempt(now, 0);
    }

    /// The application wants to end: close with `code` and never reconnect.
    ///
    /// While open: [`Action::Dead`] with [`DeathReason::LocalClose`] at once, then a
    /// close handshake bounded by `close_timeout`, then [`Action::Disconnect`].
    /// While connecting or waiting to reconnect: the attempt (and any close still
    /// draining) is dropped and the machine finishes at once.
    pub fn close(&mut self, now: Instant, code: CloseCode) {
        let now = self.observe(now);
        let local = DeathReason::LocalClose { code: code.get() };
        match self.phase {
            Phase::Open => {
                self.clear_probe();
                self.out.dead = Some(local);
                self.out.close = Some((code, "closing"));
                self.phase = Phase::Closing {
                    reason: local,
                    since: now,
                    wait: CloseWait::PeerReply,
                };
            }
            Phase::Idle => self.phase = Phase::Finished { reason: local },
            Phase::Connecting { .. } => {
                self.drop_attempt();
                self.phase = Phase::Finished { reason: local };
            }
            Phase::Reconnecting {
                reason,
                draining_until,
                ..
            } => {
                if draining_until.is_some() {
                    bump(&mut self.stats.close_timeouts);
                    self.out.disconnect = true;
                }
                // The last connection ended for `reason`; that stays its reason.
                self.phase = Phase::Finished { reason };
            }
            Phase::Closing { .. } | Phase::Finished { .. } => bump(&mut self.stats.ignored_calls),
        }
    }

    // ----- events in: the connection ---------------------------------------------

    /// The transport is up (WebSocket handshake done). Starts the ping schedule; with
    /// [`ConfigBuilder::ping_on_connect`](crate::ConfigBuilder::ping_on_connect) the
    /// first [`Action::SendPing`] is queued now.
    ///
    /// Valid while connecting, or from [`State::Idle`] for a connection that was
    /// already open when the machine was built; ignored and counted otherwise.
    pub fn handle_connected(&mut self, now: Instant) {
        let now = self.observe(now);
        if !matches!(self.phase, Phase::Idle | Phase::Connecting { .. }) {
            bump(&mut self.stats.ignored_calls);
            return;
        }
        self.phase = Phase::Open;
        self.out.connect = None;
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
        if self.cfg().ping_on_connect {
            self.emit_ping(now);
        }
    }

    /// The connection attempt failed (refused, unreachable, TLS or upgrade
    /// rejected). A client schedules the next attempt with backoff (or finishes once
    /// `max_attempts` is spent); a server finishes. Ignored and counted unless
    /// connecting.
    pub fn handle_connect_failed(&mut self, now: Instant) {
        let now = self.observe(now);
        if !matches!(self.phase, Phase::Connecting { .. }) {
            bump(&mut self.stats.ignored_calls);
            return;
        }
        self.fail_attempt(now, ConnectFailure::Error);
    }

    /// The server asked for a delay before the next attempt (e.g. HTTP 503 with
    /// `Retry-After`). The next attempt waits at least this long from now, capped
    /// at `backoff.max_requested_delay`.
    pub fn handle_retry_after(&mut self, now: Instant, delay: Duration) {
        let now = self.observe(now);
        let delay = delay.min(self.cfg().backoff.max_requested_delay);
        match &mut self.phase {
            Phase::Reconnecting { at, .. } => *at = (*at).max(now + delay),
            _ => self.requested_delay = Some(delay),
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

    /// The driver flushed the close frame of the last [`Action::SendClose`]. When
    /// that close answered the peer's, the handshake is complete and
    /// [`Action::Disconnect`] follows; otherwise the machine keeps waiting for the
    /// peer's close.
    pub fn handle_close_sent(&mut self, now: Instant) {
        let now = self.observe(now);
        if let Phase::Closing {
            wait: CloseWait::OurReplyFlushed,
            ..
        } = self.phase
        {
            self.finish_close(now);
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

    /// A pong arrived with `payload`, and what it meant.
    ///
    /// A pong for one of our pings acknowledges it and every earlier one and proves
    /// liveness; the latest ping's pong gives an RTT sample. Any other pong is
    /// ignored and counted.
    pub fn handle_pong(&mut self, now: Instant, payload: &[u8]) -> PongOutcome {
        let now = self.observe(now);
        if self.phase != Phase::Open {
            bump(&mut self.stats.unsolicited_pongs);
            return PongOutcome::Unsolicited;
        }
        self.inbound(now);
        let Some(seq) = Payload::seq(payload) else {
            bump(&mut self.stats.unsolicited_pongs);
            return PongOutcome::Unsolicited;
        };
        let probe = match self.conn.probe {
            Some(p) if self.conn.first_unacked <= seq && seq <= p.seq => p,
            _ => {
                bump(&mut self.stats.unsolicited_pongs);
                return if seq < self.next_seq {
                    PongOutcome::Stale { seq }
                } else {
                    PongOutcome::Unsolicited
                };
            }
        };
        bump(&mut self.stats.pongs_matched);
        let mut rtt = None;
        if seq == probe.seq {
            // Only the latest ping's send time is kept, so only it yields a sample.
            let sample = now - probe.sent_at.unwrap_or(probe.emitted_at);
            self.rtt.sample(sample);
            rtt = Some(sample);
            self.conn.probe = None;
        }
        self.conn.first_unacked = seq.wrapping_add(1);
        self.prove_alive(now);
        PongOutcome::Matched { seq, rtt }
    }

    /// A ping arrived with `payload`, and what it meant: a pong is queued (coalesced
    /// with any pong not yet polled) unless the ping budget is exceeded. A payload
    /// over 125 bytes is a protocol error (close 1002); repeated floods close with
    /// 1008.
    pub fn handle_ping(&mut self, now: Instant, payload: &[u8]) -> PingOutcome {
        let now = self.observe(now);
        match self.phase {
            Phase::Open => {}
            // The peer may still ping while a close is in flight: normal, not misuse.
            Phase::Closing { .. } | Phase::Reconnecting { .. } => return PingOutcome::Ignored,
            Phase::Idle | Phase::Connecting { .. } | Phase::Finished { .. } => {
                bump(&mut self.stats.ignored_calls);
                return PingOutcome::Ignored;
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
            return PingOutcome::Violation;
        };
        match self.admit_ping(now) {
            PingOutcome::Answered => {
                self.out.pong = Some(payload);
                PingOutcome::Answered
            }
            PingOutcome::Violation => {
                bump(&mut self.stats.pings_refused);
                self.die(
                    now,
                    DeathReason::PingFlood,
                    Some((CloseCode::POLICY_VIOLATION, "too many pings")),
                );
                PingOutcome::Violation
            }
            other => {
                bump(&mut self.stats.pings_refused);
                other
            }
        }
    }

    /// The peer sent a close frame (`code`: its status code, if any).
    ///
    /// While open: the connection is over ([`DeathReason::PeerClosed`]); the close is
    /// answered with the same code and the machine waits for the reply to be flushed
    /// ([`handle_close_sent`](Self::handle_close_sent)). While closing: our close
    /// handshake is complete. A code that may never be on the wire is a protocol
    /// error (answered with 1002).
    pub fn handle_close(&mut self, now: Instant, code: Option<u16>) {
        let now = self.observe(now);
        match self.phase {
            Phase::Open => match code {
                Some(c) if !is_sendable(c) => self.die(
                    now,
                    DeathReason::ProtocolError(ProtocolError::InvalidCloseCode { code: c }),
                    Some((CloseCode::PROTOCOL_ERROR, "")),
                ),
                _ => {
                    self.clear_probe();
                    let reason = DeathReason::PeerClosed { code };
                    let reply = code.and_then(CloseCode::new).unwrap_or(CloseCode::NORMAL);
                    self.out.dead = Some(reason);
                    self.out.close = Some((reply, ""));
                    self.phase = Phase::Closing {
                        reason,
                        since: now,
                        wait: CloseWait::OurReplyFlushed,
                    };
                }
            },
            Phase::Closing { .. } => self.finish_close(now),
            Phase::Reconnecting { .. } => self.stop_draining(false),
            Phase::Idle | Phase::Connecting { .. } | Phase::Finished { .. } => {
                bump(&mut self.stats.ignored_calls)
            }
        }
    }

    /// The transport ended (EOF, reset, I/O error): while open, without a close
    /// handshake; while closing, the handshake is over; while connecting, the
    /// attempt failed.
    pub fn handle_transport_closed(&mut self, now: Instant) {
        let now = self.observe(now);
        match self.phase {
            Phase::Open => self.die(now, DeathReason::TransportClosed, None),
            Phase::Closing { .. } => self.finish_close(now),
            Phase::Connecting { .. } => self.fail_attempt(now, ConnectFailure::Error),
            Phase::Reconnecting { .. } => self.stop_draining(false),
            Phase::Idle | Phase::Finished { .. } => bump(&mut self.stats.ignored_calls),
        }
    }

    /// The driver saw a malformed frame: the connection is closed with 1002.
    /// Same as [`handle_violation`](Self::handle_violation) with
    /// [`ProtocolError::Malformed`].
    pub fn handle_protocol_error(&mut self, now: Instant) {
        self.handle_violation(now, ProtocolError::Malformed);
    }

    /// The driver saw the peer break the protocol in the way `error` names: while
    /// open, the connection is closed with the code RFC 6455 gives that violation
    /// ([`ProtocolError::close_code`]: 1007 invalid UTF-8, 1009 too big, 1002 the
    /// rest). Later noise from a connection already closing is ignored.
    pub fn handle_violation(&mut self, now: Instant, error: ProtocolError) {
        let now = self.observe(now);
        match self.phase {
            Phase::Open => self.die(
                now,
                DeathReason::ProtocolError(error),
                Some((error.close_code(), violation_text(error))),
            ),
            // Noise from a connection that is already over.
            Phase::Closing { .. } | Phase::Reconnecting { .. } => {}
            _ => bump(&mut self.stats.ignored_calls),
        }
    }

    // ----- events in: time -------------------------------------------------------

    /// Time has reached `now`: fire every deadline that is due.
    ///
    /// A pong deadline found late by more than the stall allowance (the smaller of
    /// `stall_threshold` and a quarter of the pong timeout) is blamed on a local
    /// stall, not the peer: one fresh probe is sent with a full timeout instead of a
    /// retroactive verdict (once per proof of life). A late ping timer sends one
    /// ping, never a burst.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.observe(now);
        match self.phase {
            Phase::Open => self.expire_open(now),
            Phase::Connecting { since, .. } => {
                if now >= since + self.cfg().connect_timeout {
                    bump(&mut self.stats.connect_timeouts);
                    let waited = now - since;
                    self.fail_attempt(now, ConnectFailure::TimedOut { waited });
                }
            }
            Phase::Closing { since, .. } => {
                if now >= since + self.cfg().close_timeout {
                    bump(&mut self.stats.close_timeouts);
                    self.finish_close(now);
                }
            }
            Phase::Reconnecting {
                at,
                attempt,
                draining_until,
                ..
            } => {
                if draining_until.is_some_and(|d| now >= d)
                    || (now >= at && draining_until.is_some())
                {
                    self.stop_draining(true);
                }
                if now >= at {
                    self.start_attempt(now, attempt);
                }
            }
            Phase::Idle | Phase::Finished { .. } => {}
        }
    }

    /// Relative-time driving, for loops without a clock: advance the machine's time
    /// by `elapsed` and fire what is due (`handle_timeout(now() + elapsed)`).
    pub fn handle_elapsed(&mut self, elapsed: Duration) {
        self.handle_timeout(self.now + elapsed);
    }

    /// The driver measured its own lateness: how late its timers and reads run
    /// right now (a saturated process, a busy runtime). Pong deadlines are extended
    /// by this lag, capped at [`Config::max_local_lag`], so an overloaded process
    /// pings late but does not accuse peers whose pongs it has not read yet.
    ///
    /// Report the current figure whenever it changes (zero once the lag is gone).
    /// While a ping awaits its pong the figure only grows: a deadline once extended
    /// is not pulled back. A dead peer is still declared dead, at most the capped
    /// lag later.
    pub fn handle_local_lag(&mut self, now: Instant, lag: Duration) {
        self.observe(now);
        let before = self.pong_deadline();
        // A deadline already extended is never pulled back while its probe is out:
        // the driver armed its timer for it, and waking on time for the longer
        // deadline must not read as a stall against the shorter one.
        self.local_lag = match before {
            Some(_) => lag.max(self.local_lag),
            None => lag,
        };
        if matches!((before, self.pong_deadline()), (Some(b), Some(a)) if a > b) {
            bump(&mut self.stats.lag_extensions);
        }
    }

    /// Queues the next ping now if it is due within `within`: call it right after
    /// a ping from the peer queued a pong, so both go out in one write (one TCP
    /// segment instead of two). Returns whether a ping was queued.
    ///
    /// Only a ping whose timer is armed moves, and only forward: nothing happens
    /// unless the connection is open, no ping awaits its pong or its report of
    /// being sent, and the ping is due at or before `now + within`. The ping is
    /// then emitted at `now` (its pong timer starts when the driver reports it
    /// handed over, as always) and the next one is due a full interval later. A
    /// ping that goes out early only brings the verdict on a silent peer earlier,
    /// so [`Config::detection_bound`] still holds. Once two ends that both ping
    /// have done this, their pings stay in step: each end's ping meets the other's
    /// pong, and a heartbeat costs each end one write and one read fewer.
    ///
    /// With `idle_only` the peer's ping itself postpones ours by a whole interval,
    /// so this never fires.
    pub fn ping_early(&mut self, now: Instant, within: Duration) -> bool {
        let now = self.observe(now);
        // A ping the driver has not reported handed over yet is still ours: its
        // report must not be taken for the next one's.
        if self.phase != Phase::Open || self.conn.probe.is_some_and(|p| p.sent_at.is_none()) {
            return false;
        }
        match self.ping_due() {
            Some(due) if due <= now.saturating_add(within) => {
                self.emit_ping(now);
                true
            }
            _ => false,
        }
    }

    // ----- runtime changes -------------------------------------------------------

    /// Changes the ping interval on a live machine (e.g. after an application
    /// handshake, or when the server asks for fewer pings). Takes effect for the next
    /// ping and persists across reconnects. Rejected outside `interval_bounds`.
    pub fn set_ping_interval(&mut self, interval: Duration) -> Result<(), ConfigError> {
        if !self.cfg().interval_bounds.contains(interval) {
            return Err(crate::config::out_of(
                Field::PingInterval,
                interval,
                Field::IntervalBounds,
                self.cfg().interval_bounds,
            ));
        }
        self.interval = interval;
        Ok(())
    }

    /// Changes the fixed pong timeout (used until the adaptive timeout has a sample,
    /// or always when not adaptive). Applies to the outstanding ping too. Rejected
    /// outside `timeout_bounds`.
    pub fn set_pong_timeout(&mut self, timeout: Duration) -> Result<(), ConfigError> {
        if !self.cfg().timeout_bounds.contains(timeout) {
            return Err(crate::config::out_of(
                Field::PongTimeout,
                timeout,
                Field::TimeoutBounds,
                self.cfg().timeout_bounds,
            ));
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
        if let Some(reason) = out.dead.take() {
            return Some(Action::Dead(reason));
        }
        if let Some((code, reason)) = out.close.take() {
            return Some(Action::SendClose { code, reason });
        }
        if core::mem::take(&mut out.disconnect) {
            return Some(Action::Disconnect);
        }
        if let Some(attempt) = out.connect.take() {
            return Some(Action::Connect { attempt });
        }
        None
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next, and why.
    ///
    /// The earliest armed deadline, never earlier than the last `now` seen; the last
    /// `now` while actions are queued; `None` only when nothing is armed (idle or
    /// finished).
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
                earliest(pong, ping)
            }
            Phase::Connecting { since, .. } => {
                Some((since + self.cfg().connect_timeout, TimerKind::Connect))
            }
            Phase::Closing { since, .. } => {
                Some((since + self.cfg().close_timeout, TimerKind::CloseTimeout))
            }
            Phase::Reconnecting {
                at, draining_until, ..
            } => earliest(
                draining_until.map(|d| (d, TimerKind::CloseTimeout)),
                Some((at, TimerKind::Reconnect)),
            ),
            Phase::Idle | Phase::Finished { .. } => None,
        };
        deadline.map(|(at, kind)| Deadline {
            at: at.max(self.now),
            kind,
        })
    }

    // ----- queries ---------------------------------------------------------------

    /// Where the machine stands, with the reason on every state after a connection
    /// ended.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Idle => State::Idle,
            Phase::Connecting { attempt, .. } => State::Connecting { attempt },
            Phase::Open => State::Open,
            Phase::Closing { reason, .. } => State::Closing { reason },
            Phase::Reconnecting {
                reason,
                at,
                attempt,
                ..
            } => State::Reconnecting {
                reason,
                at,
                attempt,
            },
            Phase::Finished { reason } => State::Finished { reason },
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
            Phase::Idle | Phase::Connecting { .. } => Health::Suspect,
            Phase::Closing { .. } | Phase::Reconnecting { .. } | Phase::Finished { .. } => {
                Health::Dead
            }
        }
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
    /// fixed one. Local lag extends deadlines on top of it (see
    /// [`local_lag`](Self::local_lag)).
    pub fn pong_timeout(&self) -> Duration {
        match (self.cfg().adaptive_timeout, self.rtt.rto()) {
            (Some(bounds), Some(rto)) => bounds.clamp(rto),
            _ => self.timeout,
        }
    }

    /// The local lag in force: the last figure the driver reported with
    /// [`handle_local_lag`](Self::handle_local_lag), capped at
    /// [`Config::max_local_lag`]. Pong deadlines are extended by it.
    pub fn local_lag(&self) -> Duration {
        self.local_lag.min(self.cfg().max_local_lag)
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

    fn start_attempt(&mut self, now: Instant, attempt: u32) {
        self.phase = Phase::Connecting {
            attempt,
            since: now,
        };
        self.out.connect = Some(attempt);
    }

    /// The attempt is over without a connection: let go of it, then retry or finish.
    fn fail_attempt(&mut self, now: Instant, cause: ConnectFailure) {
        bump(&mut self.stats.connect_failures);
        self.drop_attempt();
        self.phase = self.after(now, DeathReason::ConnectFailed(cause), false);
    }

    /// Lets go of the current attempt: a [`Action::Connect`] not yet polled is
    /// withdrawn (nothing was started, so there is nothing to disconnect);
    /// otherwise the driver is told to drop the attempt.
    fn drop_attempt(&mut self) {
        if self.out.connect.take().is_none() {
            self.out.disconnect = true;
        }
    }

    fn expire_open(&mut self, now: Instant) {
        if let Some(deadline) = self.pong_deadline() {
            if now >= deadline {
                let late = now - deadline;
                if late > self.stall_allowance() && !self.conn.suspect {
                    // We, not the peer, were silent: the process was stopped or the
                    // loop saturated. Probe afresh instead of convicting the peer.
                    bump(&mut self.stats.missed_deadlines);
                    self.conn.suspect = true;
                    self.emit_ping(now);
                } else {
                    let sent = self
                        .conn
                        .probe
                        .map_or(now, |p| p.sent_at.unwrap_or(p.emitted_at));
                    bump(&mut self.stats.pong_timeouts);
                    self.die(
                        now,
                        DeathReason::PongTimeout { waited: now - sent },
                        Some((self.cfg().dead_close_code, "keepalive ping timeout")),
                    );
                }
                return;
            }
        }
        if let Some(due) = self.ping_due() {
            if now >= due {
                if now - due > self.stall_allowance() {
                    bump(&mut self.stats.missed_deadlines);
                }
                self.emit_ping(now);
            }
        }
    }

    /// How late a deadline may be found before the lateness is ours, not the peer's.
    fn stall_allowance(&self) -> Duration {
        self.cfg().stall_threshold.min(self.pong_timeout() / 4)
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

    /// `Answered`, `Refused` (over budget this window) or `Violation` (the strike
    /// that ends the connection).
    fn admit_ping(&mut self, now: Instant) -> PingOutcome {
        let Some(limit) = self.cfg().ping_flood else {
            return PingOutcome::Answered;
        };
        let w = &mut self.conn.flood;
        if now - w.start >= limit.window {
            w.start = now;
            w.count = 0;
            w.struck = false;
        }
        w.count = w.count.saturating_add(1);
        if w.count <= limit.max_pings {
            return PingOutcome::Answered;
        }
        if !w.struck {
            w.struck = true;
            w.strikes = w.strikes.saturating_add(1);
            if w.strikes > limit.max_strikes {
                return PingOutcome::Violation;
            }
        }
        PingOutcome::Refused
    }

    /// The open connection is over for `reason`: tell the application now, then
    /// close or, without a close (the transport is gone), let go at once.
    ///
    /// A client whose connection died by fault schedules its next attempt now; the
    /// close drains in the background and never delays it. Otherwise the machine
    /// stays closing until the handshake ends or `close_timeout` passes.
    fn die(&mut self, now: Instant, reason: DeathReason, close: Option<(CloseCode, &'static str)>) {
        self.clear_probe();
        self.out.dead = Some(reason);
        let Some(close) = close else {
            self.out.disconnect = true;
            self.phase = self.after(now, reason, true);
            return;
        };
        self.out.close = Some(close);
        let closing = Phase::Closing {
            reason,
            since: now,
            wait: CloseWait::PeerReply,
        };
        self.phase = if reason.is_fault() {
            match self.after(now, reason, true) {
                Phase::Reconnecting {
                    reason,
                    at,
                    attempt,
                    ..
                } => Phase::Reconnecting {
                    reason,
                    at,
                    attempt,
                    draining_until: Some(now + self.cfg().close_timeout),
                },
                _ => closing,
            }
        } else {
            closing
        };
    }

    /// The close handshake is over (completed or timed out): let go of the
    /// transport, then retry or finish.
    fn finish_close(&mut self, now: Instant) {
        if let Phase::Closing { reason, .. } = self.phase {
            self.out.disconnect = true;
            self.phase = self.after(now, reason, true);
        }
    }

    /// The dead connection still draining while we wait to reconnect is done with:
    /// it ended by itself, its close timed out, or the next attempt starts.
    fn stop_draining(&mut self, cut_short: bool) {
        if let Phase::Reconnecting { draining_until, .. } = &mut self.phase {
            if draining_until.take().is_some() {
                if cut_short {
                    bump(&mut self.stats.close_timeouts);
                }
                self.out.disconnect = true;
            }
        }
    }

    fn clear_probe(&mut self) {
        self.conn.probe = None;
        self.out.ping = None;
    }

    /// What follows a connection (or attempt) that ended for `reason`: a reconnect
    /// with backoff, or the end.
    fn after(&mut self, now: Instant, reason: DeathReason, was_open: bool) -> Phase {
        if self.cfg().role == Role::Server || !self.may_reconnect(reason) {
            return Phase::Finished { reason };
        }
        let healthy_for = self.conn.last_evidence - self.conn.connected_at;
        if was_open && healthy_for >= self.cfg().backoff.reset_after {
            self.backoff.reset();
        }
        let backoff = self.cfg().backoff;
        match self.backoff.next_delay(&backoff) {
            Some((delay, attempt)) => {
                let after = delay.max(self.requested_delay.take().unwrap_or_default());
                bump(&mut self.stats.reconnects);
                Phase::Reconnecting {
                    reason,
                    at: now + after,
                    attempt,
                    draining_until: None,
                }
            }
            None => Phase::Finished { reason },
        }
    }

    fn may_reconnect(&self, reason: DeathReason) -> bool {
        match reason {
            DeathReason::LocalClose { .. } => false,
            DeathReason::PeerClosed { code: Some(c) } if is_permanent(c) => {
                self.cfg().reconnect_on_permanent_close
            }
            _ => true,
        }
    }

    fn pong_deadline(&self) -> Option<Instant> {
        let p = self.conn.probe.filter(|p| p.armed)?;
        Some(p.sent_at.unwrap_or(p.emitted_at) + self.pong_timeout() + self.local_lag())
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
            || o.dead.is_some()
            || o.close.is_some()
            || o.disconnect
            || o.connect.is_some()
    }
}

/// The earlier of two optional deadlines (the first on a tie).
fn earliest(
    a: Option<(Instant, TimerKind)>,
    b: Option<(Instant, TimerKind)>,
) -> Option<(Instant, TimerKind)> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Close codes after which reconnecting cannot help: the peer rejected what we are
/// (protocol, data, policy, size, extensions), not a passing condition.
fn is_permanent(code: u16) -> bool {
    matches!(code, 1002 | 1003 | 1007 | 1008 | 1009 | 1010)
}

/// The reason text of the close frame sent for a peer's violation.
fn violation_text(error: ProtocolError) -> &'static str {
    match error {
        ProtocolError::InvalidUtf8 => "invalid UTF-8",
        ProtocolError::TooBig => "message too big",
        _ => "protocol error",
    }
}
