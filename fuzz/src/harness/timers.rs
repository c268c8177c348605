//! Time passing: `handle_timeout` and `handle_elapsed` against the model's
//! deadlines, and short driver loops that sleep until each deadline.

use core::borrow::Borrow;
use core::time::Duration;

use heartbeat_core::{Action, Config, ConnectFailure, DeathReason, Instant, Stats};

use super::checks::Call;
use super::model::{At, Expected, Phase};
use super::Harness;
use crate::input::DriveMode;

/// The most timer firings one [`Op::Drive`](crate::input::Op::Drive) may run.
const MAX_FIRINGS: u8 = 16;
/// A silent peer is declared dead within this many timer firings: at worst a
/// ping, a stalled pong deadline that re-probes, and the final pong deadline.
const FIRINGS_TO_DETECT_SILENCE: usize = 3;

/// The counters a firing moves, and by how much.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Fired {
    missed_deadlines: u64,
    pong_timeouts: u64,
    connect_timeouts: u64,
    connect_failures: u64,
    close_timeouts: u64,
}

impl Fired {
    fn between(before: &Stats, after: &Stats) -> Fired {
        Fired {
            missed_deadlines: after.missed_deadlines - before.missed_deadlines,
            pong_timeouts: after.pong_timeouts - before.pong_timeouts,
            connect_timeouts: after.connect_timeouts - before.connect_timeouts,
            connect_failures: after.connect_failures - before.connect_failures,
            close_timeouts: after.close_timeouts - before.close_timeouts,
        }
    }
}

impl<C: Borrow<Config>> Harness<C> {
    /// `handle_timeout(now)`.
    pub(super) fn timeout(&mut self, now: Instant) -> Vec<Action> {
        self.fire(Call::Timeout(now))
    }

    /// `handle_elapsed(d)`.
    pub(super) fn elapsed(&mut self, d: Duration) -> Vec<Action> {
        self.fire(Call::Elapsed(d))
    }

    /// Fires the timers, and exactly what the model says was due must happen.
    fn fire(&mut self, call: Call) -> Vec<Action> {
        let before = self.m.stats();
        // Read before the call: the timeout and interval in force when it fired.
        let timeout = self.m.pong_timeout();
        let interval = self.m.ping_interval();
        match call {
            Call::Timeout(now) => self.m.handle_timeout(now),
            Call::Elapsed(d) => self.m.handle_elapsed(d),
            Call::At(_) | Call::Untimed => unreachable!("{call:?} fires no timers"),
        }
        let t = self.m.now();
        let (expected, fired) = self.expire(t, timeout, interval);
        let acts = self.settle(call, expected);
        let counted = Fired::between(&before, &self.m.stats());
        assert_eq!(counted, fired, "counters after firing at {t:?}");
        acts
    }

    /// What `handle_timeout` at `t` must do: the documented rules for each deadline.
    fn expire(&mut self, t: Instant, timeout: Duration, interval: Duration) -> (Expected, Fired) {
        let cfg = self.cfg;
        let mut fired = Fired::default();
        let expected = match self.model.phase {
            Phase::Open => self.expire_open(t, timeout, interval, &mut fired),
            Phase::Connecting { since, .. } if t >= since + cfg.connect_timeout() => {
                fired.connect_timeouts = 1;
                fired.connect_failures = 1;
                let waited = t - since;
                let reason = DeathReason::ConnectFailed(ConnectFailure::TimedOut { waited });
                self.model.phase = self.model.after(&cfg, t, reason, false);
                Expected::actions(&[Action::Disconnect])
            }
            Phase::Closing { since, .. } if t >= since + cfg.close_timeout() => {
                fired.close_timeouts = 1;
                self.model.finish_close(&cfg, t)
            }
            Phase::Reconnecting {
                at: At::Known(at),
                attempt,
                draining_until,
                ..
            } => {
                let mut expected = Expected::nothing();
                // The close still draining ends at its deadline, or when the next
                // attempt starts, whichever comes first.
                if draining_until.is_some_and(|d| t >= d) || (t >= at && draining_until.is_some()) {
                    fired.close_timeouts = 1;
                    if let Phase::Reconnecting { draining_until, .. } = &mut self.model.phase {
                        *draining_until = None;
                    }
                    expected = Expected::actions(&[Action::Disconnect]);
                }
                if t >= at {
                    self.model.phase = Phase::Connecting { attempt, since: t };
                    expected = expected.then(Expected::actions(&[Action::Connect { attempt }]));
                }
                expected
            }
            _ => Expected::nothing(),
        };
        (expected, fired)
    }

    /// An open connection's deadlines: a pong deadline found later than the stall
    /// allowance (the smaller of `stall_threshold` and a quarter of the pong
    /// timeout) sends one fresh probe, once per proof of life; otherwise it is
    /// `Dead(PongTimeout)` with the exact wait. A late ping timer sends one ping
    /// and counts a missed deadline.
    fn expire_open(
        &mut self,
        t: Instant,
        timeout: Duration,
        interval: Duration,
        fired: &mut Fired,
    ) -> Expected {
        let cfg = self.cfg;
        let allowance = cfg.stall_threshold().min(timeout / 4);
        if let Some(deadline) = self.model.pong_deadline(timeout, &cfg) {
            if t < deadline {
                return Expected::nothing();
            }
            let c = &mut self.model.conn;
            if t - deadline > allowance && !c.suspect {
                // Our own stall, not the peer's silence: probe afresh.
                fired.missed_deadlines = 1;
                c.suspect = true;
                return ping();
            }
            fired.pong_timeouts = 1;
            let started = c.armed().map_or(t, |p| p.started());
            let reason = DeathReason::PongTimeout {
                waited: t - started,
            };
            let code = Some(cfg.dead_close_code());
            return self.model.die(&cfg, t, reason, code);
        }
        match self.model.ping_due(interval, &cfg) {
            Some(due) if t >= due => {
                fired.missed_deadlines = u64::from(t - due > allowance);
                ping()
            }
            _ => Expected::nothing(),
        }
    }

    /// A driver loop: sleep until each deadline (plus `late`), fire it, carry out
    /// what comes out. The peer is silent or answers every ping in time.
    pub(super) fn drive(&mut self, mode: DriveMode, firings: u8) {
        let started_open = self.model.phase == Phase::Open;
        let (late, report_sent, write_delay, rtt) = match mode {
            DriveMode::Silent { report_sent } => {
                (Duration::ZERO, report_sent, Duration::ZERO, None)
            }
            DriveMode::Late { late, report_sent } => (late.0, report_sent, Duration::ZERO, None),
            DriveMode::Responsive { write_delay, rtt } => {
                (Duration::ZERO, true, write_delay.0, Some(rtt.0))
            }
        };
        let deaths_before = self.model.deaths;
        let mut missed_after_first = None;
        for i in 0..usize::from(firings.min(MAX_FIRINGS)) {
            let Some(deadline) = self.m.poll_timeout() else {
                break;
            };
            self.clock = deadline.at + late;
            let deaths = self.model.deaths;
            let acts = self.timeout(self.clock);
            for a in acts {
                match a {
                    Action::SendPing(p) => {
                        if report_sent {
                            // Nothing else happens while the ping waits behind a write.
                            self.clock = self.clock + write_delay;
                            self.ping_sent(self.clock);
                        }
                        if let Some(rtt) = rtt {
                            self.answer(p.as_slice(), rtt);
                        }
                    }
                    // A responsive peer accepts at once; a silent one never answers.
                    Action::Connect { .. } if rtt.is_some() => self.connected(self.clock),
                    Action::SendClose { .. } if report_sent => self.close_sent(self.clock),
                    _ => {}
                }
            }
            if !started_open {
                continue;
            }
            if rtt.is_some() && i > 0 {
                assert_eq!(
                    self.model.deaths, deaths,
                    "a peer answering every ping in time was declared dead"
                );
            }
            if rtt.is_none() && i + 1 == FIRINGS_TO_DETECT_SILENCE {
                assert!(
                    self.model.deaths > deaths_before,
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

    /// The peer answers our ping `rtt` after it was sent (capped just below the
    /// pong timeout in force); the driver keeps firing timers meanwhile, and none
    /// may be due before the pong arrives.
    fn answer(&mut self, payload: &[u8], rtt: Duration) {
        let timeout = self.m.pong_timeout();
        let rtt = rtt.min(timeout.saturating_sub(Duration::from_nanos(1)));
        let arrival = self.clock + rtt;
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
        self.pong(self.clock, payload);
    }
}

/// One ping (its payload is checked against the model as it is drained).
fn ping() -> Expected {
    Expected::actions(&[Action::SendPing(heartbeat_core::Payload::EMPTY)])
}
