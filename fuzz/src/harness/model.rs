//! The reference model: what the machine must be, rebuilt from the documented
//! rules and what the harness fed it.
//!
//! [`Phase`] mirrors [`State`] plus the timestamps its deadlines run from; the
//! transitions below ([`Model::after`], [`Model::die`]) are the documented rules
//! of a connection's life, written from the docs, not from the machine's code.
//! The one thing the model cannot know is a reconnect's jittered delay: it checks
//! that delay against the backoff's bounds and then adopts it.

use core::time::Duration;
use std::collections::VecDeque;

use heartbeat_core::{Action, CloseCode, Config, DeathReason, Instant, Role, State};

/// The model's view of where the machine stands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Phase {
    Idle,
    Connecting {
        attempt: u32,
        since: Instant,
    },
    Open,
    Closing {
        reason: DeathReason,
        since: Instant,
        wait: CloseWait,
    },
    Reconnecting {
        reason: DeathReason,
        at: At,
        attempt: u32,
        /// A fault's close still draining in the background, until then.
        draining_until: Option<Instant>,
    },
    Finished {
        reason: DeathReason,
    },
}

/// What completes a close handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CloseWait {
    /// We closed first: the peer's close, or the end of the stream.
    PeerReply,
    /// We answered the peer's close: our reply flushed, or the end of the stream.
    OurReplyFlushed,
}

/// When a reconnect is due.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum At {
    /// Just scheduled at `from`; the machine's jittered `at` is checked and adopted
    /// once the call is settled. `requested` is the server's delay it must honour.
    Pending {
        from: Instant,
        requested: Option<Duration>,
    },
    Known(Instant),
}

impl Phase {
    /// The public state this phase must show (`at` once adopted).
    pub(super) fn state(&self) -> Option<State> {
        Some(match *self {
            Phase::Idle => State::Idle,
            Phase::Connecting { attempt, .. } => State::Connecting { attempt },
            Phase::Open => State::Open,
            Phase::Closing { reason, .. } => State::Closing { reason },
            Phase::Reconnecting {
                reason,
                at: At::Known(at),
                attempt,
                ..
            } => State::Reconnecting {
                reason,
                at,
                attempt,
            },
            Phase::Reconnecting { .. } => return None,
            Phase::Finished { reason } => State::Finished { reason },
        })
    }

    /// Whether the driver must hold a transport in this phase (in `Reconnecting`
    /// only while the dead connection's close drains).
    pub(super) fn holds_transport(&self) -> bool {
        match self {
            Phase::Connecting { .. } | Phase::Open | Phase::Closing { .. } => true,
            Phase::Reconnecting { draining_until, .. } => draining_until.is_some(),
            Phase::Idle | Phase::Finished { .. } => false,
        }
    }
}

/// The model of one connection: from an accepted `handle_connected` to the next.
#[derive(Clone, Default, Debug)]
pub(super) struct Conn {
    pub(super) connected_at: Instant,
    /// The last proof of life.
    pub(super) evidence: Instant,
    /// The last inbound frame of any kind (idle-only pings wait for silence).
    pub(super) last_inbound: Instant,
    /// The oldest of our pings not acknowledged by a pong.
    pub(super) first_unacked: u64,
    pub(super) latest: Option<OurPing>,
    pub(super) deads: u32,
    pub(super) closes: u32,
    /// A pong deadline was forgiven as a local stall and no proof of life came
    /// since: the next missed pong deadline is a verdict, however late.
    pub(super) suspect: bool,
    /// Pings of at most 125 bytes received, and how many were refused.
    pub(super) pings_in: u64,
    pub(super) refused: u64,
    /// When pings were answered, as far back as one ping-flood window.
    pub(super) answered_at: VecDeque<Instant>,
}

/// Our latest ping on the connection.
#[derive(Clone, Copy, Debug)]
pub(super) struct OurPing {
    pub(super) seq: u64,
    pub(super) emitted: Instant,
    pub(super) sent: Option<Instant>,
    pub(super) acked: bool,
    /// A proof of life came after it: its pong deadline no longer counts.
    pub(super) proven: bool,
}

impl OurPing {
    /// When its pong timer started: the sent report, else emission.
    pub(super) fn started(&self) -> Instant {
        self.sent.unwrap_or(self.emitted)
    }
}

impl Conn {
    /// A connection opened at `now`.
    pub(super) fn opened(now: Instant) -> Conn {
        Conn {
            connected_at: now,
            evidence: now,
            last_inbound: now,
            ..Conn::default()
        }
    }

    /// The peer proved itself alive: nothing is overdue, nothing is forgiven.
    pub(super) fn proof_of_life(&mut self, now: Instant) {
        self.evidence = now;
        self.suspect = false;
        if let Some(p) = self.latest.as_mut() {
            p.proven = true;
        }
    }

    /// Our latest ping, while its pong is outstanding.
    pub(super) fn probe(&self) -> Option<OurPing> {
        self.latest.filter(|p| !p.acked)
    }

    /// Our latest ping, while its pong deadline counts.
    pub(super) fn armed(&self) -> Option<OurPing> {
        self.probe().filter(|p| !p.proven)
    }
}

/// Everything the harness knows about the machine besides its config.
#[derive(Clone, Debug)]
pub(super) struct Model {
    pub(super) phase: Phase,
    /// The current (or last) connection.
    pub(super) conn: Conn,
    /// A transport is held: a polled `Connect`, or a `handle_connected` from
    /// `Idle`, not yet ended by its `Disconnect`.
    pub(super) holding: bool,
    /// Consecutive attempts counted by the backoff.
    pub(super) attempts: u32,
    /// The last `handle_retry_after`, capped, not yet consumed by a reconnect.
    pub(super) requested: Option<Duration>,
    /// The next sequence number a ping of ours carries (never reused).
    pub(super) next_seq: u64,
    /// The local lag last reported.
    pub(super) lag: Duration,
    /// Every `Dead` so far, across connections.
    pub(super) deaths: u64,
}

impl Model {
    pub(super) fn new() -> Model {
        Model {
            phase: Phase::Idle,
            conn: Conn::default(),
            holding: false,
            attempts: 0,
            requested: None,
            next_seq: 0,
            lag: Duration::ZERO,
            deaths: 0,
        }
    }

    /// What follows a connection (or attempt) that ended for `reason`: a reconnect
    /// with backoff, or the end. The attempt counter restarts only after a
    /// connection that proved healthy for `reset_after`, and the client gives up
    /// only once `max_attempts` are spent.
    pub(super) fn after(
        &mut self,
        cfg: &Config,
        now: Instant,
        reason: DeathReason,
        was_open: bool,
    ) -> Phase {
        if cfg.role() == Role::Server || !may_reconnect(cfg, reason) {
            return Phase::Finished { reason };
        }
        let b = cfg.backoff();
        let healthy_for = self.conn.evidence - self.conn.connected_at;
        if was_open && healthy_for >= b.reset_after {
            self.attempts = 0;
        }
        if b.max_attempts.is_some_and(|max| self.attempts >= max) {
            return Phase::Finished { reason };
        }
        self.attempts = self.attempts.saturating_add(1);
        Phase::Reconnecting {
            reason,
            at: At::Pending {
                from: now,
                requested: self.requested.take(),
            },
            attempt: self.attempts,
            draining_until: None,
        }
    }

    /// The open connection dies for `reason`, with a close frame (`close`) or
    /// without (the transport is gone): the actions that say so, and the next
    /// phase. A client's fault death reconnects at once while the close drains.
    pub(super) fn die(
        &mut self,
        cfg: &Config,
        now: Instant,
        reason: DeathReason,
        close: Option<CloseCode>,
    ) -> Expected {
        let Some(code) = close else {
            self.phase = self.after(cfg, now, reason, true);
            return Expected::actions(&[Action::Dead(reason), Action::Disconnect]);
        };
        let closing = Phase::Closing {
            reason,
            since: now,
            wait: CloseWait::PeerReply,
        };
        self.phase = if reason.is_fault() {
            match self.after(cfg, now, reason, true) {
                Phase::Reconnecting {
                    reason,
                    at,
                    attempt,
                    ..
                } => Phase::Reconnecting {
                    reason,
                    at,
                    attempt,
                    draining_until: Some(now + cfg.close_timeout()),
                },
                _ => closing,
            }
        } else {
            closing
        };
        Expected::closing(reason, code)
    }

    /// The close handshake is over (completed or timed out): let go, then retry or
    /// finish.
    pub(super) fn finish_close(&mut self, cfg: &Config, now: Instant) -> Expected {
        let Phase::Closing { reason, .. } = self.phase else {
            unreachable!("finish_close while {:?}", self.phase)
        };
        self.phase = self.after(cfg, now, reason, true);
        Expected::actions(&[Action::Disconnect])
    }

    /// The pong deadline of the armed probe on an open connection: a full pong timeout (the one in force)
    /// after the ping was handed over, extended by the capped local lag.
    pub(super) fn pong_deadline(&self, timeout: Duration, cfg: &Config) -> Option<Instant> {
        if self.phase != Phase::Open {
            return None;
        }
        let p = self.conn.armed()?;
        Some(p.started() + timeout + self.lag.min(cfg.max_local_lag()))
    }

    /// When the next ping is due on an open connection: one interval after the last ping (or the
    /// connect), or after the last inbound frame when pinging only when idle.
    pub(super) fn ping_due(&self, interval: Duration, cfg: &Config) -> Option<Instant> {
        if self.phase != Phase::Open || self.conn.armed().is_some() {
            return None;
        }
        let c = &self.conn;
        let mut base = c.latest.map_or(c.connected_at, |p| p.emitted);
        if cfg.idle_only() {
            base = base.max(c.last_inbound);
        }
        Some(base + interval)
    }
}

/// What a call must emit, as far as the model can say.
#[derive(Clone, Debug, Default)]
pub(super) struct Expected {
    /// Exactly these actions, in this order (`SendClose` compared by code).
    pub(super) actions: Vec<Action>,
}

impl Expected {
    pub(super) fn nothing() -> Expected {
        Expected::default()
    }

    pub(super) fn actions(actions: &[Action]) -> Expected {
        Expected {
            actions: actions.to_vec(),
        }
    }

    /// `Dead(reason)` then a close with `code`.
    pub(super) fn closing(reason: DeathReason, code: CloseCode) -> Expected {
        Expected::actions(&[Action::Dead(reason), Action::SendClose { code, reason: "" }])
    }

    /// `self` followed by `more`.
    pub(super) fn then(mut self, more: Expected) -> Expected {
        self.actions.extend(more.actions);
        self
    }

    /// Whether `acts` are exactly these actions (a close's reason text aside).
    pub(super) fn matches(&self, acts: &[Action]) -> bool {
        self.actions.len() == acts.len()
            && self.actions.iter().zip(acts).all(|(e, a)| match (e, a) {
                (Action::SendClose { code: x, .. }, Action::SendClose { code: y, .. }) => x == y,
                (Action::SendPing(_), Action::SendPing(_)) => true,
                (e, a) => e == a,
            })
    }
}

/// Whether a connection that ended for `reason` may be followed by another: not
/// after the application closed, nor (unless configured) after a permanent close
/// code of the peer (1002, 1003, 1007, 1008, 1009, 1010).
pub(super) fn may_reconnect(cfg: &Config, reason: DeathReason) -> bool {
    match reason {
        DeathReason::LocalClose { .. } => false,
        DeathReason::PeerClosed {
            code: Some(1002 | 1003 | 1007 | 1008 | 1009 | 1010),
        } => cfg.reconnect_on_permanent_close(),
        _ => true,
    }
}
