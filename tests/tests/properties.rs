//! Properties of `HeartbeatMachine`, checked after every simulation step against a
//! small reference model of what the machine has seen.
//!
//! The bound on detection, stated exactly: with the driver running its timers on
//! time and reporting each ping sent `write_delay` after emission, a connection is
//! never open later than
//! `last_proof_of_life + ping_interval + write_delay + pong_timeout`
//! (`Config::detection_bound`). Link jitter does not enter the bound: it delays
//! evidence, which only moves `last_proof_of_life`. A local stall of length `S`
//! extends it by at most `S + pong_timeout` (one fresh probe).

use core::time::Duration;

use heartbeat_core::{
    Action, Backoff, Bounds, CloseCode, Config, DeathReason, HeartbeatMachine, Instant, Jitter,
    Liveness, Role, State,
};
use heartbeat_sim::{Fault, Frame, Link, Peer, Record, Sim, SimConfig};
use proptest::prelude::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Everything a generated scenario needs.
#[derive(Clone, Debug)]
struct Scenario {
    config: Config,
    sim: SimConfig,
    fault: Option<Fault>,
    seed: u64,
}

fn config_strategy() -> impl Strategy<Value = Config> {
    (
        50u64..3000,
        50u64..3000,
        10u64..1000,
        any::<bool>(),
        any::<bool>(),
        prop::option::of((20u64..500, 0u64..3000)),
        any::<bool>(),
        prop_oneof![Just(Jitter::Full), Just(Jitter::Equal), Just(Jitter::None)],
        1u64..500,
    )
        .prop_map(
            |(interval, timeout, close, pong_only, idle, adaptive, server, jitter, base)| {
                let liveness = if pong_only {
                    Liveness::PongOnly
                } else {
                    Liveness::AnyFrame
                };
                Config::builder()
                    .role(if server { Role::Server } else { Role::Client })
                    .ping_interval(ms(interval))
                    .pong_timeout(ms(timeout))
                    .close_timeout(ms(close))
                    .liveness(liveness)
                    .idle_only(idle && !pong_only)
                    .stall_threshold(ms(100))
                    .adaptive_timeout(adaptive.map(|(min, extra)| Bounds {
                        min: ms(min),
                        max: ms(min + extra),
                    }))
                    .backoff(Backoff {
                        base: ms(base),
                        multiplier: 1.5,
                        cap: ms(base * 20),
                        jitter,
                        max_attempts: None,
                        reset_after: ms(1000),
                        max_requested_delay: ms(1000),
                    })
                    .build()
                    .expect("generated configs are valid")
            },
        )
}

fn scenario(with_faults: bool) -> impl Strategy<Value = Scenario> {
    (
        config_strategy(),
        0u64..100,
        0u64..100,
        0u64..50,
        prop::option::of(30u64..2000),
        0u64..50,
        0u8..20,
        any::<u64>(),
        0usize..6,
        1_000u64..20_000,
        1u64..10_000,
    )
        .prop_map(
            move |(config, latency, jitter, answer, data, write, loss, seed, fault, at, len)| {
                let from = Instant::from_millis(at);
                let until = Some(Instant::from_millis(at + len));
                let fault = match fault {
                    _ if !with_faults => None,
                    0 => Some(Fault::Blackhole { from, until: None }),
                    1 => Some(Fault::Blackhole { from, until }),
                    2 => Some(Fault::PeerHang { from, until }),
                    3 => Some(Fault::Partition { from, until: None }),
                    4 => Some(Fault::LocalStall {
                        at: from,
                        duration: ms(len),
                    }),
                    _ => Some(Fault::PeerClose {
                        at: from,
                        code: 1001,
                    }),
                };
                Scenario {
                    config,
                    sim: SimConfig {
                        link: Link {
                            latency: ms(latency),
                            jitter: ms(jitter),
                            loss_percent: if with_faults { loss } else { 0 },
                            retransmit_delay: ms(200),
                        },
                        peer: Peer {
                            answer_delay: ms(answer),
                            data_every: data.map(ms),
                            ping_every: None,
                        },
                        write_delay: ms(write),
                        seed,
                        ..SimConfig::default()
                    },
                    fault,
                    seed,
                }
            },
        )
}

/// The reference model: what the machine was shown, rebuilt from the transcript.
#[derive(Default)]
struct Reference {
    /// When the outstanding ping's pong timer started (emission, or the sent report).
    probe_started: Option<Instant>,
    /// The last inbound evidence of life, per the configured liveness.
    last_evidence: Option<Instant>,
    deaths_this_connection: u32,
    closed_this_connection: bool,
}

impl Reference {
    fn observe(&mut self, at: Instant, record: &Record, cfg: &Config) -> Result<(), String> {
        match *record {
            Record::Connected => {
                *self = Reference {
                    last_evidence: Some(at),
                    ..Reference::default()
                }
            }
            Record::Action(Action::SendPing(_)) => {
                if self.closed_this_connection {
                    return Err(format!("{at:?}: ping after close"));
                }
                self.probe_started = Some(at);
            }
            Record::Action(Action::SendPong(_)) if self.closed_this_connection => {
                return Err(format!("{at:?}: pong after close"));
            }
            Record::PingSent => self.probe_started = Some(at),
            Record::Received(frame) => {
                let counts =
                    matches!(frame, Frame::Pong(_)) || cfg.liveness() == Liveness::AnyFrame;
                if counts {
                    self.last_evidence = Some(at);
                }
            }
            Record::Action(Action::SendClose { code, .. }) => {
                self.closed_this_connection = true;
                if matches!(code.get(), 1005 | 1006 | 1015) {
                    return Err(format!("{at:?}: reserved close code {code}"));
                }
            }
            Record::Action(Action::Dead(reason)) => {
                self.deaths_this_connection += 1;
                if self.deaths_this_connection > 1 {
                    return Err(format!("{at:?}: two deaths in one connection"));
                }
                if let DeathReason::PongTimeout { .. } = reason {
                    // Death only after a full minimum timeout of silence since a probe.
                    let started = self
                        .probe_started
                        .ok_or_else(|| format!("{at:?}: pong timeout without a ping"))?;
                    let min_timeout = match cfg.adaptive_timeout() {
                        Some(b) => b.min.min(cfg.pong_timeout()),
                        None => cfg.pong_timeout(),
                    };
                    if at - started < min_timeout {
                        return Err(format!(
                            "{at:?}: declared dead {:?} after the probe at {started:?}",
                            at - started
                        ));
                    }
                }
            }
            Record::Action(Action::Reconnect { after, attempt }) => {
                if cfg.role() == Role::Server {
                    return Err(format!("{at:?}: a server reconnected"));
                }
                let b = cfg.backoff();
                let mut ceiling = b.base.as_secs_f64();
                for _ in 1..attempt {
                    ceiling = (ceiling * b.multiplier).min(b.cap.as_secs_f64());
                }
                let ceiling = ceiling.min(b.cap.as_secs_f64());
                let lower = match b.jitter {
                    Jitter::Equal => ceiling / 2.0,
                    Jitter::None => ceiling,
                    Jitter::Full => 0.0,
                };
                let after = after.as_secs_f64();
                if after > ceiling + 1e-6 || after + 1e-6 < lower {
                    return Err(format!(
                        "{at:?}: backoff {after} s outside [{lower}, {ceiling}] at attempt {attempt}"
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Runs a scenario for `secs` simulated seconds, checking every property after every
/// step; returns the transcript for determinism checks.
fn run_checked(s: &Scenario, secs: u64) -> Result<Vec<(Instant, Record)>, TestCaseError> {
    let machine = HeartbeatMachine::new(s.config, s.seed);
    let mut sim = Sim::new(machine, s.sim);
    let mut stall = Duration::ZERO;
    if let Some(f) = s.fault {
        if let Fault::LocalStall { duration, .. } | Fault::LocalSleep { duration, .. } = f {
            stall = duration + s.sim.link.retransmit_delay;
        }
        sim.add_fault(f);
    }
    let cfg = s.config;
    let timeout_max = cfg
        .adaptive_timeout()
        .map_or(cfg.pong_timeout(), |b| b.max.max(cfg.pong_timeout()));
    let mut bound = cfg.detection_bound(s.sim.write_delay);
    if !stall.is_zero() {
        bound += stall + timeout_max + cfg.stall_threshold();
    }
    let mut reference = Reference::default();
    let mut seen = 0;
    let mut failure: Option<String> = None;
    sim.run_until_with(Instant::from_secs(secs), |sim| {
        if failure.is_some() {
            return;
        }
        let m = sim.machine();
        let log = sim.log();
        let new = &log[seen..];
        seen = log.len();
        let actions = new
            .iter()
            .filter(|(_, r)| matches!(r, Record::Action(_)))
            .count();
        let mut check = || -> Result<(), String> {
            for (at, record) in new {
                reference.observe(*at, record, &cfg)?;
            }
            if actions > 6 {
                return Err(format!("{actions} actions in one step"));
            }
            if let Some(d) = m.poll_timeout() {
                if d.at < m.now() {
                    return Err(format!("deadline {:?} in the past at {:?}", d.at, m.now()));
                }
            }
            if m.now() > sim.now() {
                return Err(format!(
                    "machine at {:?} ahead of sim at {:?}",
                    m.now(),
                    sim.now()
                ));
            }
            if let (State::Open, Some(last)) = (m.state(), m.last_proof_of_life()) {
                if m.now() > last + bound {
                    return Err(format!(
                        "still open at {:?}, last proof of life {last:?}, bound {bound:?}",
                        m.now()
                    ));
                }
            }
            Ok(())
        };
        if let Err(e) = check() {
            failure = Some(e);
        }
    })
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    if let Some(f) = failure {
        return Err(TestCaseError::fail(f));
    }
    Ok(sim.log().to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, max_global_rejects: 1_000_000, ..ProptestConfig::default() })]

    /// Every property holds after every step, under any link and any single fault.
    #[test]
    fn invariants_hold_after_every_step(s in scenario(true)) {
        run_checked(&s, 40)?;
    }

    /// A peer that always answers within the timeout is never declared dead.
    #[test]
    fn no_false_death_while_the_peer_answers_in_time(s in scenario(false)) {
        let rtt = (s.sim.link.latency + s.sim.link.jitter) * 2 + s.sim.peer.answer_delay;
        let min_timeout = s.config.adaptive_timeout()
            .map_or(s.config.pong_timeout(), |b| b.min.min(s.config.pong_timeout()));
        // A ping the transport has not taken within the timeout is a death by design.
        prop_assume!(rtt < min_timeout && s.sim.write_delay < min_timeout);
        let log = run_checked(&s, 40)?;
        let deaths: Vec<_> = log.iter().filter(|(_, r)| matches!(r, Record::Action(Action::Dead(_)))).collect();
        prop_assert!(deaths.is_empty(), "false death: {deaths:?}");
    }

    /// Our own process stalling (stopped, asleep, saturated) while the peer keeps
    /// answering in time is never blamed on the peer.
    #[test]
    fn our_own_stall_is_never_a_false_death(s in scenario(false), at in 100u64..5_000, len in 1u64..30_000, sleep in any::<bool>()) {
        let rtt = (s.sim.link.latency + s.sim.link.jitter) * 2 + s.sim.peer.answer_delay;
        let min_timeout = s.config.adaptive_timeout()
            .map_or(s.config.pong_timeout(), |b| b.min.min(s.config.pong_timeout()));
        // A ping the transport has not taken within the timeout is a death by design.
        prop_assume!(rtt + s.sim.write_delay < min_timeout);
        let timeout_max = s.config.adaptive_timeout()
            .map_or(s.config.pong_timeout(), |b| b.max.max(s.config.pong_timeout()));
        let at = Instant::from_millis(at);
        let mut s = s;
        let fault = if sleep {
            // A host sleep loses inbound packets; TCP retransmits them after waking and
            // delivers nothing else until then (head-of-line blocking). The promise:
            // a deadline found late gets a fresh probe with a full timeout. So the
            // sleep outlasts the deadline by the stall threshold, and the timeout
            // exceeds the retransmission plus a round trip (README, "What the machine
            // cannot know", covers the other cases).
            s.sim.link.retransmit_delay = (min_timeout - rtt - s.sim.write_delay) / 2;
            let duration = ms(len) + timeout_max + s.config.stall_threshold() + ms(1);
            Fault::LocalSleep { at, duration }
        } else {
            Fault::LocalStall { at, duration: ms(len) }
        };
        let s = Scenario { fault: Some(fault), ..s };
        let log = run_checked(&s, 40)?;
        let deaths: Vec<_> = log.iter().filter(|(_, r)| matches!(r, Record::Action(Action::Dead(_)))).collect();
        prop_assert!(deaths.is_empty(), "false death after our own stall: {deaths:?}");
    }

    /// A peer that goes silent forever is declared dead within the bound.
    #[test]
    fn a_silent_peer_is_always_detected_within_the_bound(s in scenario(false), at in 500u64..10_000, hang in any::<bool>()) {
        // A peer answering in time until the fault, so the connection is open then.
        let rtt = (s.sim.link.latency + s.sim.link.jitter) * 2 + s.sim.peer.answer_delay;
        let min_timeout = s.config.adaptive_timeout()
            .map_or(s.config.pong_timeout(), |b| b.min.min(s.config.pong_timeout()));
        // A ping the transport has not taken within the timeout is a death by design.
        prop_assume!(rtt < min_timeout && s.sim.write_delay < min_timeout);
        let from = Instant::from_millis(at);
        let fault = if hang { Fault::PeerHang { from, until: None } } else { Fault::Blackhole { from, until: None } };
        let s = Scenario { fault: Some(fault), ..s };
        let log = run_checked(&s, 60)?;
        let bound = s.config.detection_bound(s.sim.write_delay);
        let death = log.iter().find_map(|&(t, r)| match r {
            Record::Action(Action::Dead(reason)) if t >= from => Some((t, reason)),
            _ => None,
        });
        let (t, reason) = death.ok_or_else(|| TestCaseError::fail("never detected"))?;
        prop_assert!(matches!(reason, DeathReason::PongTimeout { .. }), "{reason:?}");
        // The last evidence is at most one link delay after the fault started.
        let slack = s.sim.link.latency + s.sim.link.jitter + s.sim.peer.answer_delay;
        prop_assert!(t <= from + slack + bound, "detected at {t:?}, fault at {from:?}, bound {bound:?}");
    }

    /// The same inputs give the same outputs.
    #[test]
    fn simulation_is_deterministic(s in scenario(true)) {
        prop_assert_eq!(run_checked(&s, 20)?, run_checked(&s, 20)?);
    }

    /// Arbitrary calls with arbitrary (also backwards and huge) times never panic or
    /// overflow, and never leave a deadline in the past.
    #[test]
    fn arbitrary_time_jumps_never_panic(cfg in config_strategy(), ops in prop::collection::vec((0u8..12, any::<u64>(), any::<u16>()), 0..200)) {
        let mut m = HeartbeatMachine::new(cfg, 7);
        for (op, raw, code) in ops {
            let now = Instant::from_nanos(raw);
            match op {
                0 => m.handle_connected(now),
                1 => m.handle_timeout(now),
                2 => m.handle_elapsed(Duration::from_nanos(raw)),
                3 => m.handle_elapsed(Duration::MAX),
                4 => m.handle_pong(now, &raw.wrapping_rem(4).to_be_bytes()),
                5 => m.handle_ping(now, &[0; 200][..(code as usize % 200)]),
                6 => m.handle_frame(now),
                7 => m.handle_close(now, Some(code)),
                8 => m.handle_transport_closed(now),
                9 => m.handle_connect_failed(now),
                10 => m.handle_ping_sent(now),
                _ => m.close(now, CloseCode::new(code).unwrap_or(CloseCode::NORMAL)),
            }
            let mut n = 0;
            while m.poll_action().is_some() {
                n += 1;
                prop_assert!(n <= 6);
            }
            if let Some(d) = m.poll_timeout() {
                prop_assert!(d.at >= m.now());
            }
        }
    }
}
