//! The invariants checked after every call: actions against the model of the
//! connection and the transport, then time, deadline, state, health and counters.

use core::borrow::Borrow;
use core::time::Duration;

use heartbeat_core::{
    Action, CloseCode, Config, Deadline, Health, Instant, State, Stats, TimerKind,
};

use super::model::{At, Expected, OurPing, Phase};
use super::{Entry, Harness};

/// The outbox holds at most one action of each of its six kinds.
const MAX_ACTIONS_PER_DRAIN: usize = 6;

/// What kind of call [`Harness::settle`] follows, for the time checks.
#[derive(Clone, Copy, Debug)]
pub(super) enum Call {
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
    /// Drains the actions of the call just made, checks that they are the
    /// `expected` ones, and checks every invariant against the model (whose phase
    /// the call already moved on).
    pub(super) fn settle(&mut self, call: Call, expected: Expected) -> Vec<Action> {
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
        assert!(
            expected.matches(&acts),
            "{call:?} emitted {acts:?}, the model expected {:?} (now {:?})",
            expected.actions,
            self.model.phase
        );
        for &a in &acts {
            self.check_action(a);
            self.transcript.push(Entry::Action(a));
        }

        self.adopt_reconnect_time(now);
        let state = self.m.state();
        let deadline = self.m.poll_timeout();
        if self.trace {
            eprintln!("    {call:?} -> {acts:?}, {state:?}, {deadline:?}");
        }
        self.check_state(state, &acts);
        self.check_deadline(call, now, deadline);
        self.check_counters();

        self.transcript.push(Entry::Deadline(deadline));
        self.transcript.push(Entry::State(state));
        self.last_now = now;
        acts
    }

    /// [`settle`](Self::settle) for a call that made no sense in this state: it is
    /// counted and changes nothing.
    pub(super) fn settle_ignored(&mut self, call: Call, before: Stats) {
        self.settle(call, Expected::nothing());
        assert_eq!(
            self.m.stats().ignored_calls,
            before.ignored_calls + 1,
            "a call in the wrong state is counted ({:?})",
            self.model.phase
        );
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

    /// One action, against the model of the connection and the transport.
    fn check_action(&mut self, a: Action) {
        let now = self.m.now();
        let model = &mut self.model;
        let c = &mut model.conn;
        let over = c.deads > 0 || c.closes > 0;
        match a {
            Action::SendPing(p) => {
                assert!(!over, "ping after the connection ended or closed");
                assert_eq!(model.phase, Phase::Open, "ping while not open");
                let seq = <[u8; 8]>::try_from(p.as_slice())
                    .map(u64::from_be_bytes)
                    .unwrap_or_else(|_| panic!("our ping payload is an 8-byte seq: {p:?}"));
                assert_eq!(seq, model.next_seq, "ping seqs count up, never reused");
                model.next_seq += 1;
                if c.probe().is_none() {
                    c.first_unacked = seq;
                }
                c.latest = Some(OurPing {
                    seq,
                    emitted: now,
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
                assert!(model.holding, "Dead without a transport: {reason:?}");
                c.deads += 1;
                assert_eq!(c.deads, 1, "a second Dead on one connection: {reason:?}");
                model.deaths += 1;
            }
            Action::SendClose { code, reason } => {
                assert_eq!(c.deads, 1, "a close without its Dead first");
                let n = code.get();
                assert_eq!(CloseCode::new(n), Some(code), "unsendable close code {n}");
                assert!(reason.len() <= 123, "close reason too long");
                c.closes += 1;
                assert_eq!(c.closes, 1, "a second close on one connection");
            }
            Action::Disconnect => {
                assert!(model.holding, "Disconnect without a transport");
                assert!(
                    model.phase != Phase::Open,
                    "Disconnect of an open connection"
                );
                model.holding = false;
            }
            Action::Connect { attempt } => {
                assert!(
                    !model.holding,
                    "Connect while a transport is held: a Disconnect must come first"
                );
                model.holding = true;
                assert!(
                    matches!(model.phase, Phase::Connecting { attempt: a, .. } if a == attempt),
                    "Connect {{ attempt: {attempt} }} while {:?}",
                    model.phase
                );
            }
            other => panic!("an action the model does not know: {other:?}"),
        }
    }

    /// A reconnect just scheduled: its delay must lie within the backoff's bounds
    /// (and honour the server's request); then the model adopts it.
    fn adopt_reconnect_time(&mut self, now: Instant) {
        let Phase::Reconnecting {
            reason,
            at: At::Pending { from, requested },
            attempt,
            draining_until,
        } = self.model.phase
        else {
            return;
        };
        let State::Reconnecting {
            reason: r,
            at,
            attempt: n,
        } = self.m.state()
        else {
            panic!(
                "the model expected a reconnect (attempt {attempt} after {reason:?}), the \
                 machine is {:?}",
                self.m.state()
            )
        };
        assert_eq!((r, n), (reason, attempt), "reconnect after {reason:?}");
        assert_eq!(from, now, "a reconnect is scheduled from the verdict");
        let b = self.cfg.backoff();
        let delay = at - from;
        let req = requested.unwrap_or_default();
        assert!(
            delay <= b.cap.max(req),
            "reconnect after {delay:?} exceeds cap {:?} and the requested {req:?}",
            b.cap,
        );
        assert!(
            delay >= req || at == Instant::MAX,
            "server asked for {req:?}, reconnect after {delay:?}"
        );
        if let Some(max) = b.max_attempts {
            assert!(
                attempt <= max,
                "attempt {attempt} beyond max_attempts {max}"
            );
        }
        self.model.phase = Phase::Reconnecting {
            reason,
            at: At::Known(at),
            attempt,
            draining_until,
        };
    }

    fn check_state(&self, state: State, acts: &[Action]) {
        if let Some(State::Finished { .. }) = self.last_state {
            assert_eq!(Some(state), self.last_state, "Finished is terminal");
            assert!(acts.is_empty(), "actions after Finished: {acts:?}");
        }
        assert_eq!(
            Some(state),
            self.model.phase.state(),
            "the state against the model ({:?})",
            self.model.phase
        );
        assert_eq!(
            self.model.holding,
            self.model.phase.holds_transport(),
            "a transport held in {:?}",
            self.model.phase
        );
        assert_eq!(self.m.last_proof_of_life().is_some(), state == State::Open);
        if let Some(b) = self.cfg.adaptive_timeout() {
            if self.m.rtt().samples > 0 {
                assert!(
                    b.contains(self.m.pong_timeout()),
                    "adaptive timeout out of bounds"
                );
            }
        }
    }

    /// The deadline is exactly the model's, and after `handle_timeout(t)` none is
    /// due before `t` (nor at `now`, but a reconnect whose delay was zero).
    fn check_deadline(&self, call: Call, now: Instant, d: Option<Deadline>) {
        let expected = self.model_deadline().map(|(at, kind)| Deadline {
            at: at.max(now),
            kind,
        });
        assert_eq!(
            d, expected,
            "the deadline against the model ({:?})",
            self.model.phase
        );
        let Some(d) = d else { return };
        assert!(d.at >= now, "deadline {d:?} before now {now:?}");
        if let Call::Timeout(_) | Call::Elapsed(_) = call {
            let t = match call {
                Call::Timeout(t) => t,
                _ => now,
            };
            assert!(
                d.at >= t,
                "after handle_timeout({t:?}) the deadline is {d:?}"
            );
            // Everything due was fired: a driver that sleeps until the deadline and
            // fires it again would spin. Only saturation at the end of time, or a
            // reconnect just scheduled with a zero delay (firing it connects),
            // leaves a deadline at `now`.
            assert!(
                d.at > now || now == Instant::MAX || d.kind == TimerKind::Reconnect,
                "handle_timeout({t:?}) left {d:?} due: a driver would busy-loop"
            );
        }
    }

    /// The earliest deadline the model has armed, and why.
    fn model_deadline(&self) -> Option<(Instant, TimerKind)> {
        let cfg = &self.cfg;
        match self.model.phase {
            Phase::Idle | Phase::Finished { .. } => None,
            Phase::Connecting { since, .. } => {
                Some((since + cfg.connect_timeout(), TimerKind::Connect))
            }
            Phase::Open => {
                let timeout = self.m.pong_timeout();
                match self.model.pong_deadline(timeout, cfg) {
                    Some(at) => Some((at, TimerKind::PongTimeout)),
                    None => self
                        .model
                        .ping_due(self.m.ping_interval(), cfg)
                        .map(|at| (at, TimerKind::Ping)),
                }
            }
            Phase::Closing { since, .. } => {
                Some((since + cfg.close_timeout(), TimerKind::CloseTimeout))
            }
            Phase::Reconnecting {
                at: At::Known(at),
                draining_until,
                ..
            } => match draining_until {
                Some(d) if d <= at => Some((d, TimerKind::CloseTimeout)),
                _ => Some((at, TimerKind::Reconnect)),
            },
            Phase::Reconnecting { .. } => unreachable!("adopted before the check"),
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
        self.last_state = Some(self.m.state());
    }

    /// Health and proof of life against the model, once a step is complete.
    pub(super) fn check_health(&self) {
        let health = self.m.health();
        match self.m.state() {
            State::Open => {
                let c = &self.model.conn;
                assert_eq!(self.m.last_proof_of_life(), Some(c.evidence));
                let overdue = match (c.armed(), self.m.rtt().rto()) {
                    (Some(p), Some(rto)) => self.m.now() - p.started() > rto,
                    _ => false,
                };
                let expected = if c.suspect || overdue {
                    Health::Suspect
                } else {
                    Health::Healthy
                };
                assert_eq!(health, expected, "overdue {overdue}, {c:?}");
            }
            State::Idle | State::Connecting { .. } => assert_eq!(health, Health::Suspect),
            s => assert_eq!(health, Health::Dead, "{s:?}"),
        }
    }
}

fn counters(s: &Stats) -> [u64; 16] {
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
        s.connect_failures,
        s.connect_timeouts,
        s.lag_extensions,
        s.reconnects,
        s.clock_anomalies,
        s.ignored_calls,
    ]
}
