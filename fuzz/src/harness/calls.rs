//! One method per event or command the driver feeds the machine: each makes the
//! call, works out with the model what it must have done, and settles it.

use core::borrow::Borrow;
use core::time::Duration;

use heartbeat_core::{
    Action, CloseCode, Config, DeathReason, Field, Health, Instant, Liveness, Payload, PingOutcome,
    PongOutcome, ProtocolError, MAX_CONTROL_PAYLOAD,
};

use super::checks::Call;
use super::model::{At, CloseWait, Conn, Expected, Phase};
use super::Harness;
use crate::input::PingBody;

impl<C: Borrow<Config>> Harness<C> {
    /// `connect`: the first attempt, from `Idle` only.
    pub(super) fn connect(&mut self, now: Instant) {
        let before = self.m.stats();
        self.m.connect(now);
        if self.model.phase != Phase::Idle {
            return self.settle_ignored(Call::At(now), before);
        }
        self.model.phase = Phase::Connecting {
            attempt: 0,
            since: self.m.now(),
        };
        let connect = Action::Connect { attempt: 0 };
        self.settle(Call::At(now), Expected::actions(&[connect]));
    }

    /// `handle_connected`: the attempt succeeded, or (from `Idle`) the driver was
    /// given a connection that is already open, which is a transport of its own.
    pub(super) fn connected(&mut self, now: Instant) {
        let before = self.m.stats();
        self.m.handle_connected(now);
        let t = self.m.now();
        match self.model.phase {
            Phase::Idle => {
                assert!(!self.model.holding, "a transport before any was started");
                self.model.holding = true;
            }
            Phase::Connecting { .. } => {}
            _ => return self.settle_ignored(Call::At(now), before),
        }
        self.model.phase = Phase::Open;
        self.model.conn = Conn::opened(t);
        self.settle(Call::At(now), Expected::nothing());
        assert_eq!(self.m.health(), Health::Healthy);
        assert_eq!(self.m.last_proof_of_life(), Some(t));
        assert_eq!(self.m.stats().connects, before.connects + 1);
    }

    /// `handle_connect_failed`: the attempt is let go, then a retry or the end.
    pub(super) fn connect_failed(&mut self, now: Instant) {
        let before = self.m.stats();
        self.m.handle_connect_failed(now);
        if !matches!(self.model.phase, Phase::Connecting { .. }) {
            return self.settle_ignored(Call::At(now), before);
        }
        let reason = DeathReason::ConnectFailed(heartbeat_core::ConnectFailure::Error);
        self.model.phase = self.model.after(&self.cfg, self.m.now(), reason, false);
        // A failed attempt is not a connection: no `Dead`, only the `Disconnect`.
        self.settle(Call::At(now), Expected::actions(&[Action::Disconnect]));
        assert_eq!(self.m.stats().connect_failures, before.connect_failures + 1);
    }

    /// `handle_retry_after`: a pending reconnect waits at least `delay` (capped)
    /// from now; otherwise the next reconnect scheduled does.
    pub(super) fn retry_after(&mut self, now: Instant, delay: Duration) {
        self.m.handle_retry_after(now, delay);
        let capped = delay.min(self.cfg.backoff().max_requested_delay);
        let t = self.m.now();
        match &mut self.model.phase {
            Phase::Reconnecting {
                at: At::Known(at), ..
            } => *at = (*at).max(t + capped),
            _ => self.model.requested = Some(capped),
        }
        self.settle(Call::At(now), Expected::nothing());
    }

    /// `handle_ping_sent`: the pong timer of the latest ping restarts from now,
    /// once; any other report is counted as misuse.
    pub(super) fn ping_sent(&mut self, now: Instant) {
        let before = self.m.stats();
        self.m.handle_ping_sent(now);
        let t = self.m.now();
        let open = self.model.phase == Phase::Open;
        match self.model.conn.latest.as_mut() {
            Some(p) if open && !p.acked && p.sent.is_none() => p.sent = Some(t),
            _ => return self.settle_ignored(Call::At(now), before),
        }
        self.settle(Call::At(now), Expected::nothing());
    }

    /// `handle_close_sent`: completes the handshake when our close answered the
    /// peer's; otherwise the machine keeps waiting for the peer.
    pub(super) fn close_sent(&mut self, now: Instant) {
        self.m.handle_close_sent(now);
        let expected = match self.model.phase {
            Phase::Closing {
                wait: CloseWait::OurReplyFlushed,
                ..
            } => self.model.finish_close(&self.cfg, self.m.now()),
            _ => Expected::nothing(),
        };
        self.settle(Call::At(now), expected);
    }

    /// `handle_frame`: inbound traffic; proof of life under `AnyFrame`.
    pub(super) fn frame(&mut self, now: Instant) {
        self.m.handle_frame(now);
        self.inbound();
        self.settle(Call::At(now), Expected::nothing());
    }

    /// `handle_pong`: the outcome must be what the model predicts from our pings.
    pub(super) fn pong(&mut self, now: Instant, payload: &[u8]) {
        let before = self.m.stats();
        let samples = self.m.rtt().samples;
        let outcome = self.m.handle_pong(now, payload);
        let t = self.m.now();
        let expected = self.expected_pong(t, payload);
        assert_eq!(outcome, expected, "pong {payload:?}");
        self.inbound();
        let after = self.m.stats();
        let rtt = self.m.rtt();
        if let PongOutcome::Matched { seq, rtt: sample } = outcome {
            assert_eq!(after.pongs_matched, before.pongs_matched + 1);
            assert_eq!(after.unsolicited_pongs, before.unsolicited_pongs);
            let c = &mut self.model.conn;
            c.first_unacked = seq.wrapping_add(1);
            if let Some(p) = c.latest.as_mut().filter(|p| p.seq == seq) {
                p.acked = true;
            }
            c.proof_of_life(t);
            // Only the latest ping's send time is kept, so only it gives a sample.
            assert_eq!(rtt.samples, samples + u64::from(sample.is_some()));
            if sample.is_some() {
                assert_eq!(rtt.last, sample, "the RTT sample is the one reported");
            }
        } else {
            assert_eq!(after.pongs_matched, before.pongs_matched);
            assert_eq!(after.unsolicited_pongs, before.unsolicited_pongs + 1);
            assert_eq!(rtt.samples, samples);
        }
        self.settle(Call::At(now), Expected::nothing());
        if matches!(outcome, PongOutcome::Matched { .. }) {
            assert_eq!(self.m.last_proof_of_life(), Some(t));
            assert_eq!(self.m.health(), Health::Healthy);
        }
    }

    /// What a pong carrying `payload` must mean: a match for one of our
    /// unacknowledged pings on this connection (with an RTT from the ping's sent
    /// report, or emission, when it is the latest), stale for an older ping of
    /// ours, unsolicited for anything else or while not open.
    fn expected_pong(&self, t: Instant, payload: &[u8]) -> PongOutcome {
        if self.model.phase != Phase::Open {
            return PongOutcome::Unsolicited;
        }
        let Ok(bytes) = <[u8; 8]>::try_from(payload) else {
            return PongOutcome::Unsolicited;
        };
        let seq = u64::from_be_bytes(bytes);
        let c = &self.model.conn;
        match c.probe() {
            Some(p) if c.first_unacked <= seq && seq <= p.seq => PongOutcome::Matched {
                seq,
                rtt: (seq == p.seq).then(|| t - p.started()),
            },
            _ if seq < self.model.next_seq => PongOutcome::Stale { seq },
            _ => PongOutcome::Unsolicited,
        }
    }

    /// `handle_ping`: answered, refused over budget, or a violation that ends the
    /// connection; ignored when no connection is open.
    pub(super) fn ping(&mut self, now: Instant, body: &PingBody) {
        let bytes = body.bytes();
        let before = self.m.stats();
        self.answering = Payload::from_slice(&bytes);
        let outcome = self.m.handle_ping(now, &bytes);
        let t = self.m.now();
        let phase = self.model.phase;
        let expected = match phase {
            Phase::Open => self.ping_on_open(t, &bytes, outcome, before.pings_refused),
            _ => {
                assert_eq!(outcome, PingOutcome::Ignored, "a ping while {phase:?}");
                Expected::nothing()
            }
        };
        match phase {
            Phase::Open => {
                self.settle(Call::At(now), expected);
                assert_eq!(self.m.stats().pings_received, before.pings_received + 1);
            }
            // The peer may still ping while a close is in flight: normal, not misuse.
            Phase::Closing { .. } | Phase::Reconnecting { .. } => {
                self.settle(Call::At(now), expected);
                let after = self.m.stats();
                assert_eq!(after.ignored_calls, before.ignored_calls, "not misuse");
                assert_eq!(after.pings_received, before.pings_received);
            }
            _ => self.settle_ignored(Call::At(now), before),
        }
        self.answering = None;
    }

    /// A ping on an open connection, given what the machine made of it.
    fn ping_on_open(
        &mut self,
        t: Instant,
        bytes: &[u8],
        outcome: PingOutcome,
        refused_before: u64,
    ) -> Expected {
        self.inbound();
        if bytes.len() > MAX_CONTROL_PAYLOAD {
            assert_eq!(outcome, PingOutcome::Violation, "an oversized ping");
            let len = bytes.len();
            let reason = DeathReason::ProtocolError(ProtocolError::ControlFrameTooLong { len });
            return self
                .model
                .die(&self.cfg, t, reason, Some(CloseCode::PROTOCOL_ERROR));
        }
        let refused = self.m.stats().pings_refused - refused_before;
        let c = &mut self.model.conn;
        c.pings_in += 1;
        c.refused += refused;
        let Some(limit) = self.cfg.ping_flood() else {
            assert_eq!(
                outcome,
                PingOutcome::Answered,
                "no budget: every ping is answered"
            );
            return Expected::actions(&[Action::SendPong(Payload::from_slice(bytes).unwrap())]);
        };
        match outcome {
            PingOutcome::Answered => {
                assert_eq!(refused, 0);
                // Windows tumble and last at least `window`, so any span shorter than
                // one window overlaps at most two of them.
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
                let pong = Payload::from_slice(bytes).expect("at most 125 bytes");
                Expected::actions(&[Action::SendPong(pong)])
            }
            PingOutcome::Refused => {
                assert_eq!(refused, 1, "a refused ping is counted");
                Expected::nothing()
            }
            PingOutcome::Violation => {
                assert_eq!(refused, 1, "the last straw is counted as refused");
                // `max_strikes` windows over budget are tolerated; it takes one more.
                let windows = u64::from(limit.max_strikes) + 1;
                assert!(
                    c.refused >= windows
                        && c.pings_in >= windows * (u64::from(limit.max_pings) + 1),
                    "flood verdict after {} pings ({} refused) with {limit:?}",
                    c.pings_in,
                    c.refused
                );
                let code = CloseCode::POLICY_VIOLATION;
                self.model
                    .die(&self.cfg, t, DeathReason::PingFlood, Some(code))
            }
            other => panic!("a ping on an open connection: {other:?}"),
        }
    }

    /// `handle_close`: the peer's close ends an open connection (answered with its
    /// code, 1000 without one, 1002 for an unsendable one), completes ours, or ends
    /// a close still draining.
    pub(super) fn peer_close(&mut self, now: Instant, code: Option<u16>) {
        let before = self.m.stats();
        self.m.handle_close(now, code);
        let t = self.m.now();
        let expected = match self.model.phase {
            Phase::Open => match code {
                Some(c) if CloseCode::new(c).is_none() => {
                    let reason =
                        DeathReason::ProtocolError(ProtocolError::InvalidCloseCode { code: c });
                    self.model
                        .die(&self.cfg, t, reason, Some(CloseCode::PROTOCOL_ERROR))
                }
                _ => {
                    let reason = DeathReason::PeerClosed { code };
                    let reply = code.and_then(CloseCode::new).unwrap_or(CloseCode::NORMAL);
                    self.model.phase = Phase::Closing {
                        reason,
                        since: t,
                        wait: CloseWait::OurReplyFlushed,
                    };
                    Expected::closing(reason, reply)
                }
            },
            Phase::Closing { .. } => self.model.finish_close(&self.cfg, t),
            Phase::Reconnecting { .. } => self.stop_draining(),
            _ => return self.settle_ignored(Call::At(now), before),
        };
        self.settle(Call::At(now), expected);
    }

    /// `handle_transport_closed`: the end of the stream ends an open connection
    /// (no close to send), completes a close, fails an attempt, or ends a close
    /// still draining.
    pub(super) fn transport_closed(&mut self, now: Instant) {
        let before = self.m.stats();
        self.m.handle_transport_closed(now);
        let t = self.m.now();
        let expected = match self.model.phase {
            Phase::Open => self
                .model
                .die(&self.cfg, t, DeathReason::TransportClosed, None),
            Phase::Closing { .. } => self.model.finish_close(&self.cfg, t),
            Phase::Connecting { .. } => {
                let reason = DeathReason::ConnectFailed(heartbeat_core::ConnectFailure::Error);
                self.model.phase = self.model.after(&self.cfg, t, reason, false);
                Expected::actions(&[Action::Disconnect])
            }
            Phase::Reconnecting { .. } => self.stop_draining(),
            Phase::Idle | Phase::Finished { .. } => {
                return self.settle_ignored(Call::At(now), before)
            }
        };
        self.settle(Call::At(now), expected);
    }

    /// `handle_protocol_error`: closes an open connection with 1002; noise from a
    /// connection already over is ignored without counting.
    pub(super) fn protocol_error(&mut self, now: Instant) {
        let before = self.m.stats();
        self.m.handle_protocol_error(now);
        let expected = match self.model.phase {
            Phase::Open => {
                let reason = DeathReason::ProtocolError(ProtocolError::Malformed);
                let code = Some(CloseCode::PROTOCOL_ERROR);
                self.model.die(&self.cfg, self.m.now(), reason, code)
            }
            Phase::Closing { .. } | Phase::Reconnecting { .. } => Expected::nothing(),
            _ => return self.settle_ignored(Call::At(now), before),
        };
        self.settle(Call::At(now), expected);
    }

    /// `close`: the application ends everything. While open: `Dead` at once, then
    /// our close; otherwise the attempt (or a close still draining) is dropped and
    /// the machine finishes.
    pub(super) fn local_close(&mut self, now: Instant, code: CloseCode) {
        let before = self.m.stats();
        self.m.close(now, code);
        let t = self.m.now();
        let local = DeathReason::LocalClose { code: code.get() };
        let mut cut_short = false;
        let expected = match self.model.phase {
            Phase::Open => {
                self.model.phase = Phase::Closing {
                    reason: local,
                    since: t,
                    wait: CloseWait::PeerReply,
                };
                Expected::closing(local, code)
            }
            Phase::Idle => {
                self.model.phase = Phase::Finished { reason: local };
                Expected::nothing()
            }
            Phase::Connecting { .. } => {
                self.model.phase = Phase::Finished { reason: local };
                Expected::actions(&[Action::Disconnect])
            }
            Phase::Reconnecting {
                reason,
                draining_until,
                ..
            } => {
                // The last connection ended for `reason`; that stays its reason.
                self.model.phase = Phase::Finished { reason };
                cut_short = draining_until.is_some();
                if cut_short {
                    Expected::actions(&[Action::Disconnect])
                } else {
                    Expected::nothing()
                }
            }
            Phase::Closing { .. } | Phase::Finished { .. } => {
                return self.settle_ignored(Call::At(now), before)
            }
        };
        self.settle(Call::At(now), expected);
        let counted = self.m.stats().close_timeouts - before.close_timeouts;
        assert_eq!(counted, u64::from(cut_short), "a draining close cut short");
    }

    /// `handle_local_lag`: pong deadlines move by the lag, capped, and never back
    /// while a ping is out; a report that moves an armed deadline later is counted.
    pub(super) fn local_lag(&mut self, now: Instant, lag: Duration) {
        let before = self.m.stats();
        let timeout = self.m.pong_timeout();
        let old = self.model.pong_deadline(timeout, &self.cfg);
        self.m.handle_local_lag(now, lag);
        self.model.lag = match old {
            Some(_) => lag.max(self.model.lag),
            None => lag,
        };
        let lag = self.model.lag;
        let new = self.model.pong_deadline(timeout, &self.cfg);
        self.settle(Call::At(now), Expected::nothing());
        assert_eq!(self.m.local_lag(), lag.min(self.cfg.max_local_lag()));
        let extended = matches!((old, new), (Some(o), Some(n)) if n > o);
        assert_eq!(
            self.m.stats().lag_extensions,
            before.lag_extensions + u64::from(extended),
            "lag extensions ({old:?} -> {new:?})"
        );
    }

    pub(super) fn set_ping_interval(&mut self, d: Duration) {
        let old = self.m.ping_interval();
        let result = self.m.set_ping_interval(d);
        assert_eq!(result.is_ok(), self.cfg.interval_bounds().contains(d));
        match result {
            Ok(()) => assert_eq!(self.m.ping_interval(), d),
            Err(e) => {
                assert_eq!(e.field(), Field::PingInterval);
                assert!(!e.to_string().is_empty());
                assert_eq!(self.m.ping_interval(), old);
            }
        }
        self.settle(Call::Untimed, Expected::nothing());
    }

    pub(super) fn set_pong_timeout(&mut self, d: Duration) {
        let result = self.m.set_pong_timeout(d);
        assert_eq!(result.is_ok(), self.cfg.timeout_bounds().contains(d));
        if let Err(e) = result {
            assert_eq!(e.field(), Field::PongTimeout);
            assert!(!e.to_string().is_empty());
        } else if self.cfg.adaptive_timeout().is_none() || self.m.rtt().samples == 0 {
            assert_eq!(self.m.pong_timeout(), d, "the fixed timeout is in force");
        }
        self.settle(Call::Untimed, Expected::nothing());
    }

    /// The dead connection still draining while we wait to reconnect ended by
    /// itself (the peer's close or the end of the stream): let go of it.
    fn stop_draining(&mut self) -> Expected {
        match &mut self.model.phase {
            Phase::Reconnecting { draining_until, .. } if draining_until.is_some() => {
                *draining_until = None;
                Expected::actions(&[Action::Disconnect])
            }
            _ => Expected::nothing(),
        }
    }

    /// An inbound frame (data, ping or pong) reached the connection: it counts for
    /// idle-only pinging, and proves liveness when any frame does.
    fn inbound(&mut self) {
        if self.model.phase == Phase::Open {
            let now = self.m.now();
            self.model.conn.last_inbound = now;
            if self.cfg.liveness() == Liveness::AnyFrame {
                self.model.conn.proof_of_life(now);
            }
        }
    }
}
