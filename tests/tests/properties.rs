//! Properties of `HeartbeatMachine`, checked after every simulation step against a
//! small reference model of what the machine has seen and done.
//!
//! The bound on detection, stated exactly: with the driver running its timers on
//! time and reporting each ping sent `write_delay` after emission, a connection is
//! never open later than
//! `last_proof_of_life + ping_interval + write_delay + pong_timeout`
//! (`Config::detection_bound`). Link jitter does not enter the bound: it delays
//! evidence, which only moves `last_proof_of_life`. A local stall of length `S`
//! extends it by at most `S + pong_timeout + allowance`, where the allowance (how
//! late a deadline may be found before the lateness is ours) is
//! `min(stall_threshold, pong_timeout / 4)`.
//!
//! Half of the scenarios have the driver pull its ping forward to go out with the
//! pong it owes (`HeartbeatMachine::ping_early`, any window up to 3 s): every
//! property, the bound included, holds with it.
//!
//! The life of a connection, checked on every transcript: every transport (an
//! `Action::Connect`, or `handle_connected` for one already open) ends with exactly
//! one `Action::Disconnect`, always before the next `Connect`; each connection that
//! opened has exactly one `Action::Dead`, and every later state carries its reason;
//! a client whose connection died by fault is `Reconnecting` at the verdict and its
//! next `Connect` comes exactly the backoff delay later, however long the close
//! timeout.

use core::time::Duration;

use heartbeat_core::{
    Action, Backoff, Bounds, CloseCode, Config, DeathReason, HeartbeatMachine, Instant, Jitter,
    Liveness, PingOutcome, PongOutcome, Role, State,
};
use heartbeat_sim::{Fault, Frame, Link, Peer, Record, Sim, SimConfig, Start, StepLimitExceeded};
use proptest::prelude::*;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Everything a generated scenario needs.
#[derive(Clone, Debug)]
struct Scenario {
    config: Config,
    sim: SimConfig,
    faults: Vec<Fault>,
    seed: u64,
}

fn config_strategy() -> impl Strategy<Value = Config> {
    (
        (50u64..3000, 50u64..3000, 10u64..1000, 500u64..5000),
        any::<bool>(),
        any::<bool>(),
        prop::option::of((20u64..500, 0u64..3000)),
        any::<bool>(),
        prop_oneof![Just(Jitter::Full), Just(Jitter::Equal), Just(Jitter::None)],
        1u64..500,
        10u64..2000,
        any::<bool>(),
    )
        .prop_map(
            |(
                (interval, timeout, close, connect),
                pong_only,
                idle,
                adaptive,
                server,
                jitter,
                base,
                stall,
                permanent,
            )| {
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
                    .connect_timeout(ms(connect))
                    .liveness(liveness)
                    .idle_only(idle && !pong_only)
                    .stall_threshold(ms(stall))
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
                    .reconnect_on_permanent_close(permanent)
                    .build()
                    .expect("generated configs are valid")
            },
        )
}

/// One fault, starting between 0 and 20 s and lasting up to 10 s when it heals.
fn fault_strategy() -> impl Strategy<Value = Fault> {
    (
        0usize..8,
        0u64..20_000,
        1u64..10_000,
        prop_oneof![
            Just(1000u16),
            Just(1001),
            Just(1002),
            Just(1008),
            Just(1011),
            Just(4000)
        ],
        prop::option::of(1u64..2_000),
    )
        .prop_map(|(kind, at, len, code, retry_after)| {
            let from = Instant::from_millis(at);
            let until = Some(Instant::from_millis(at + len));
            match kind {
                0 => Fault::Blackhole { from, until: None },
                1 => Fault::Blackhole { from, until },
                2 => Fault::PeerHang { from, until },
                3 => Fault::Partition { from, until: None },
                4 => Fault::LocalStall {
                    at: from,
                    duration: ms(len),
                },
                5 => Fault::PeerClose { at: from, code },
                6 => Fault::PeerReset { at: from },
                _ => Fault::Refuse {
                    from,
                    until,
                    retry_after: retry_after.map(ms),
                },
            }
        })
}

fn scenario(with_faults: bool) -> impl Strategy<Value = Scenario> {
    (
        config_strategy(),
        (0u64..100, 0u64..100, 0u64..50),
        prop::option::of(30u64..2000),
        prop::option::of(150u64..3000),
        0u64..50,
        0u8..20,
        any::<u64>(),
        prop::collection::vec(fault_strategy(), 0..4),
        any::<bool>(),
        prop::option::of(0u64..3000),
    )
        .prop_map(
            move |(
                config,
                (latency, jitter, answer),
                data,
                pings,
                write,
                loss,
                seed,
                faults,
                open,
                ping_with_pong,
            )| {
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
                            ping_every: pings.map(ms),
                        },
                        start: if open { Start::Open } else { Start::Connect },
                        write_delay: ms(write),
                        seed,
                        ping_with_pong: ping_with_pong.map(ms),
                        ..SimConfig::default()
                    },
                    faults: if with_faults { faults } else { Vec::new() },
                    seed,
                }
            },
        )
}

/// Where the reference model thinks the machine's current transport stands.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Life {
    /// Nothing started yet.
    Idle,
    /// `Connect { attempt }` was emitted; no connection yet.
    Attempt(u32),
    /// A connection opened; `dead` is its one `Dead`, once emitted.
    Opened { dead: Option<DeathReason> },
}

/// The reference model: what the machine was shown and what it did, rebuilt from
/// the transcript, and the properties that must hold of it.
struct Reference {
    cfg: Config,
    /// Local stalls and sleeps: `(start, end)`, to know when our timers really ran.
    stalls: Vec<(Instant, Instant)>,
    life: Life,
    /// A transport is held: a `Connect` or a `handle_connected` not yet ended by
    /// its `Disconnect`.
    holding: bool,
    /// When the outstanding ping's pong timer started (emission, or the sent report).
    probe_started: Option<Instant>,
    /// The sequence number of our latest ping.
    latest_seq: Option<u64>,
    /// The last inbound evidence of life on the open connection, per the liveness.
    last_evidence: Option<Instant>,
    closed_this_connection: bool,
    /// A fault verdict of a client in this step: the state must be `Reconnecting`
    /// now, the backoff delay after it.
    fault_verdict: Option<(Instant, DeathReason)>,
    /// The `Reconnecting` state seen after the last step: the next `Connect` comes
    /// exactly at `at` (later only if our process was stalled then).
    reconnecting: Option<(Instant, u32)>,
    /// A `Retry-After` reported in this step.
    requested: Option<Duration>,
}

impl Reference {
    fn new(cfg: Config, faults: &[Fault]) -> Reference {
        let stalls = faults
            .iter()
            .filter_map(|f| match *f {
                Fault::LocalStall { at, duration } | Fault::LocalSleep { at, duration } => {
                    Some((at, at + duration))
                }
                _ => None,
            })
            .collect();
        Reference {
            cfg,
            stalls,
            life: Life::Idle,
            holding: false,
            probe_started: None,
            latest_seq: None,
            last_evidence: None,
            closed_this_connection: false,
            fault_verdict: None,
            reconnecting: None,
            requested: None,
        }
    }

    /// When a timer due at `t` runs: at `t`, or at the end of the stall it falls in.
    fn runs_at(&self, t: Instant) -> Instant {
        let mut t = t;
        // Stalls may touch each other; each one can move `t` once.
        for _ in 0..=self.stalls.len() {
            match self.stalls.iter().find(|&&(a, b)| a <= t && t < b) {
                Some(&(_, end)) => t = end,
                None => break,
            }
        }
        t
    }

    fn open(&self) -> bool {
        self.life == Life::Opened { dead: None }
    }

    /// One line of the transcript.
    fn observe(&mut self, at: Instant, record: &Record) -> Result<(), String> {
        let cfg = self.cfg;
        match *record {
            Record::Action(Action::Connect { attempt }) => {
                if self.holding {
                    return Err(format!("{at:?}: Connect while a transport is held"));
                }
                if cfg.role() == Role::Server && attempt > 0 {
                    return Err(format!("{at:?}: a server reconnected"));
                }
                match self.reconnecting.take() {
                    Some((due, expected)) => {
                        if at != self.runs_at(due) || attempt != expected {
                            return Err(format!(
                                "{at:?}: Connect {{ attempt: {attempt} }}, but the state said \
                                 attempt {expected} at {due:?}"
                            ));
                        }
                    }
                    None if self.life == Life::Idle && attempt == 0 => {}
                    None => return Err(format!("{at:?}: Connect {attempt} nobody scheduled")),
                }
                self.holding = true;
                self.life = Life::Attempt(attempt);
            }
            Record::Connected => {
                match self.life {
                    Life::Idle if !self.holding => {}
                    Life::Attempt(_) if self.holding => {}
                    other => return Err(format!("{at:?}: connected while {other:?}")),
                }
                self.holding = true;
                self.life = Life::Opened { dead: None };
                self.probe_started = None;
                self.last_evidence = Some(at);
                self.closed_this_connection = false;
            }
            Record::Action(Action::Disconnect) => {
                if !self.holding {
                    return Err(format!("{at:?}: Disconnect without a transport"));
                }
                if self.open() {
                    return Err(format!(
                        "{at:?}: Disconnect of an open connection before Dead"
                    ));
                }
                self.holding = false;
            }
            Record::Action(Action::Dead(reason)) => {
                if !self.open() {
                    return Err(format!("{at:?}: Dead({reason:?}) while {:?}", self.life));
                }
                self.life = Life::Opened { dead: Some(reason) };
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
                // A peer's close completes once our reply is flushed: the handshake
                // waits for nobody, so it keeps the `Closing` state even for a fault code.
                let peer_closed = matches!(reason, DeathReason::PeerClosed { .. });
                if cfg.role() == Role::Client
                    && reason.is_fault()
                    && !peer_closed
                    && self.may_reconnect(reason)
                {
                    self.fault_verdict = Some((at, reason));
                }
            }
            Record::Action(Action::SendPing(p)) => {
                if self.closed_this_connection {
                    return Err(format!("{at:?}: ping after close"));
                }
                if !self.open() {
                    return Err(format!("{at:?}: ping while {:?}", self.life));
                }
                self.probe_started = Some(at);
                self.latest_seq = p.as_slice().try_into().ok().map(u64::from_be_bytes);
            }
            Record::Action(Action::SendPong(_)) if self.closed_this_connection => {
                return Err(format!("{at:?}: pong after close"));
            }
            Record::Action(Action::SendClose { code, .. }) => {
                self.closed_this_connection = true;
                if CloseCode::new(code.get()) != Some(code) {
                    return Err(format!("{at:?}: unsendable close code {code}"));
                }
            }
            Record::PingSent => self.probe_started = Some(at),
            Record::Received(frame) => {
                let any = cfg.liveness() == Liveness::AnyFrame;
                if self.open()
                    && any
                    && matches!(frame, Frame::Data | Frame::Ping(_) | Frame::Pong(_))
                {
                    self.last_evidence = Some(at);
                }
            }
            Record::Pong(outcome) if self.open() => {
                // The peer echoes only our pings, in order, on this connection: every
                // pong it sends answers one of them, the latest with an RTT sample.
                let PongOutcome::Matched { seq, rtt } = outcome else {
                    return Err(format!("{at:?}: the peer's pong was {outcome:?}"));
                };
                let latest = Some(seq) == self.latest_seq;
                let expected = latest.then(|| at - self.probe_started.unwrap_or(at));
                if rtt != expected {
                    return Err(format!(
                        "{at:?}: pong {seq} gave rtt {rtt:?}, expected {expected:?}"
                    ));
                }
                self.last_evidence = Some(at);
            }
            Record::Ping(PingOutcome::Ignored) if self.open() => {
                return Err(format!("{at:?}: a ping on an open connection was ignored"));
            }
            Record::RetryAfter(d) => {
                self.requested = Some(d.min(cfg.backoff().max_requested_delay))
            }
            _ => {}
        }
        Ok(())
    }

    /// After every step: the machine's state against the model.
    fn check_state(&mut self, m: &HeartbeatMachine, sim_holds: bool) -> Result<(), String> {
        let state = m.state();
        let now = m.now();
        if sim_holds != self.holding {
            return Err(format!(
                "the driver holds a transport: {sim_holds}, the actions say {}",
                self.holding
            ));
        }
        match self.life {
            Life::Idle => {
                if state != State::Idle {
                    return Err(format!("{state:?} before anything started"));
                }
            }
            Life::Attempt(n) => match state {
                State::Connecting { attempt } if attempt == n => {}
                State::Reconnecting {
                    reason: DeathReason::ConnectFailed(_),
                    ..
                }
                | State::Finished {
                    reason: DeathReason::ConnectFailed(_),
                } => {}
                s => return Err(format!("attempt {n}: {s:?}")),
            },
            Life::Opened { dead: None } => {
                if state != State::Open {
                    return Err(format!("{state:?} without a Dead"));
                }
                if m.last_proof_of_life() != self.last_evidence {
                    return Err(format!(
                        "last proof of life {:?}, the model saw {:?}",
                        m.last_proof_of_life(),
                        self.last_evidence
                    ));
                }
            }
            Life::Opened { dead: Some(reason) } => {
                let ended = matches!(
                    state,
                    State::Closing { .. } | State::Reconnecting { .. } | State::Finished { .. }
                );
                if !ended || state.reason() != Some(reason) {
                    return Err(format!("{state:?} after Dead({reason:?})"));
                }
            }
        }
        if let Some((verdict, reason)) = self.fault_verdict.take() {
            let State::Reconnecting { at, attempt, .. } = state else {
                return Err(format!(
                    "a client's fault death ({reason:?}) left it {state:?}, not reconnecting"
                ));
            };
            self.check_backoff(at - verdict, attempt)?;
        }
        match state {
            State::Reconnecting { at, attempt, .. } => {
                if self.reconnecting.is_none() {
                    self.check_backoff(at - now, attempt)?;
                }
                self.reconnecting = Some((at, attempt));
            }
            State::Finished { .. } if self.holding => {
                return Err("finished, but a transport was never disconnected".into());
            }
            _ => {}
        }
        self.requested = None;
        Ok(())
    }

    /// A reconnect delay lies within the backoff's bounds for `attempt` (or is the
    /// server's requested delay).
    fn check_backoff(&self, delay: Duration, attempt: u32) -> Result<(), String> {
        if self.cfg.role() == Role::Server {
            return Err("a server is reconnecting".into());
        }
        let b = self.cfg.backoff();
        let mut ceiling = b.base.as_secs_f64();
        for _ in 1..attempt {
            ceiling = (ceiling * b.multiplier).min(b.cap.as_secs_f64());
        }
        let ceiling = ceiling.min(b.cap.as_secs_f64());
        let mut lower = match b.jitter {
            Jitter::Equal => ceiling / 2.0,
            Jitter::None => ceiling,
            Jitter::Full => 0.0,
        };
        let mut upper = ceiling;
        if let Some(r) = self.requested {
            lower = lower.max(r.as_secs_f64());
            upper = upper.max(r.as_secs_f64());
        }
        let d = delay.as_secs_f64();
        if d > upper + 1e-6 || d + 1e-6 < lower {
            return Err(format!(
                "backoff {d} s outside [{lower}, {upper}] at attempt {attempt}"
            ));
        }
        Ok(())
    }

    /// Whether a connection that ended for `reason` may be followed by another
    /// (`Config::reconnect_on_permanent_close` lists the permanent codes).
    fn may_reconnect(&self, reason: DeathReason) -> bool {
        match reason {
            DeathReason::LocalClose { .. } => false,
            DeathReason::PeerClosed {
                code: Some(1002 | 1003 | 1007 | 1008 | 1009 | 1010),
            } => self.cfg.reconnect_on_permanent_close(),
            _ => true,
        }
    }
}

/// Our host falls asleep for `duration`, `offset` after the first ping it sends
/// at or after `not_before`: while that ping's pong is on its way.
#[derive(Clone, Copy, Debug)]
struct SleepAfterPing {
    not_before: Instant,
    offset: Duration,
    duration: Duration,
}

/// Runs a scenario for `secs` simulated seconds, checking every property after every
/// step; returns the transcript for determinism checks.
fn run_checked(s: &Scenario, secs: u64) -> Result<Vec<(Instant, Record)>, TestCaseError> {
    run_with_sleep(s, None, secs)
}

/// [`run_checked`], with a host sleep placed right after a ping.
fn run_with_sleep(
    s: &Scenario,
    sleep: Option<SleepAfterPing>,
    secs: u64,
) -> Result<Vec<(Instant, Record)>, TestCaseError> {
    let machine = HeartbeatMachine::new(s.config, s.seed);
    let mut sim = Sim::new(machine, s.sim);
    let mut stall = sleep.map_or(Duration::ZERO, |z| z.duration + s.sim.link.retransmit_delay);
    for &f in &s.faults {
        if let Fault::LocalStall { duration, .. } | Fault::LocalSleep { duration, .. } = f {
            stall += duration + s.sim.link.retransmit_delay;
        }
        sim.add_fault(f);
    }
    let cfg = s.config;
    let timeout_max = cfg
        .adaptive_timeout()
        .map_or(cfg.pong_timeout(), |b| b.max.max(cfg.pong_timeout()));
    let allowance = cfg.stall_threshold().min(timeout_max / 4);
    let mut bound = cfg.detection_bound(s.sim.write_delay);
    if !stall.is_zero() {
        bound += stall + timeout_max + allowance;
    }
    let mut checker = Checker {
        reference: Reference::new(cfg, &s.faults),
        seen: 0,
        bound,
        failure: None,
    };
    let end = Instant::from_secs(secs);
    let fail = |e: StepLimitExceeded| TestCaseError::fail(e.to_string());
    if let Some(z) = sleep {
        sim.run_until_with(z.not_before, |sim| checker.step(sim))
            .map_err(fail)?;
        for _ in 0..s.sim.max_steps {
            let before = sim.log().len();
            match sim.step() {
                Some(t) if t <= end => checker.step(&sim),
                _ => break,
            }
            if let Some(&(t, _)) = sim.log()[before..]
                .iter()
                .find(|(_, r)| *r == Record::PingSent)
            {
                let at = t + z.offset;
                sim.add_fault(Fault::LocalSleep {
                    at,
                    duration: z.duration,
                });
                checker.reference.stalls.push((at, at + z.duration));
                break;
            }
        }
    }
    sim.run_until_with(end, |sim| checker.step(sim))
        .map_err(fail)?;
    if let Some(f) = checker.failure {
        return Err(TestCaseError::fail(format!("{f}\n{:#?}", sim.log())));
    }
    Ok(sim.log().to_vec())
}

/// The checks run after every step: the reference model, and the properties that
/// need no model.
struct Checker {
    reference: Reference,
    /// How much of the log the reference has seen.
    seen: usize,
    /// The detection bound, stalls included.
    bound: Duration,
    /// The first property broken.
    failure: Option<String>,
}

impl Checker {
    fn step(&mut self, sim: &Sim) {
        if self.failure.is_none() {
            self.failure = self.check(sim).err();
        }
    }

    fn check(&mut self, sim: &Sim) -> Result<(), String> {
        let m = sim.machine();
        let log = sim.log();
        let new = &log[self.seen..];
        self.seen = log.len();
        for (at, record) in new {
            self.reference.observe(*at, record)?;
        }
        self.reference.check_state(m, sim.holds_transport())?;
        let actions = new
            .iter()
            .filter(|(_, r)| matches!(r, Record::Action(_)))
            .count();
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
            if m.now() > last + self.bound {
                return Err(format!(
                    "still open at {:?}, last proof of life {last:?}, bound {:?}",
                    m.now(),
                    self.bound
                ));
            }
        }
        Ok(())
    }
}

/// The round trip of a ping through this scenario's link and peer, at worst.
fn worst_rtt(s: &Scenario) -> Duration {
    (s.sim.link.latency + s.sim.link.jitter) * 2 + s.sim.peer.answer_delay
}

/// The smallest pong timeout the machine may use.
fn min_timeout(c: &Config) -> Duration {
    c.adaptive_timeout()
        .map_or(c.pong_timeout(), |b| b.min.min(c.pong_timeout()))
}

fn deaths(log: &[(Instant, Record)]) -> Vec<(Instant, DeathReason)> {
    log.iter()
        .filter_map(|&(t, r)| match r {
            Record::Action(Action::Dead(reason)) => Some((t, reason)),
            _ => None,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, max_global_rejects: 1_000_000, ..ProptestConfig::default() })]

    /// Every property holds after every step, under any link and up to three faults
    /// (blackholes, partitions, a hung, closing, resetting or refusing peer, our own
    /// stalls).
    #[test]
    fn invariants_hold_after_every_step(s in scenario(true)) {
        run_checked(&s, 40)?;
    }

    /// A peer that always answers within the timeout is never declared dead.
    #[test]
    fn no_false_death_while_the_peer_answers_in_time(s in scenario(false)) {
        // A ping the transport has not taken within the timeout is a death by design.
        prop_assume!(worst_rtt(&s) < min_timeout(&s.config) && s.sim.write_delay < min_timeout(&s.config));
        let log = run_checked(&s, 40)?;
        let deaths = deaths(&log);
        prop_assert!(deaths.is_empty(), "false death: {deaths:?}");
    }

    /// Our own process stalling (stopped, asleep, saturated) while the peer keeps
    /// answering in time is never blamed on the peer, whatever the stall allowance
    /// (`min(stall_threshold, pong_timeout / 4)`) makes of the late deadline. The
    /// host sleep starts while a ping's pong is on its way, so its deadline passes
    /// during the sleep.
    #[test]
    fn our_own_stall_is_never_a_false_death(
        s in scenario(false),
        at in 100u64..5_000,
        len in prop_oneof![0u64..200, 1u64..30_000],
        offset in 0u64..100,
        sleep in any::<bool>(),
    ) {
        let rtt = worst_rtt(&s);
        let min_timeout = min_timeout(&s.config);
        // A ping the transport has not taken within the timeout is a death by design.
        prop_assume!(rtt + s.sim.write_delay < min_timeout);
        let timeout_max = s.config.adaptive_timeout()
            .map_or(s.config.pong_timeout(), |b| b.max.max(s.config.pong_timeout()));
        let mut s = s;
        let log = if sleep {
            // A host sleep loses inbound packets; TCP retransmits them after waking and
            // delivers nothing else until then (head-of-line blocking). The promise:
            // a deadline found late by more than the allowance gets a fresh probe with
            // a full timeout. So the sleep outlasts any deadline armed before it by
            // more than the largest allowance the timeout in force can give (with a
            // short timeout, a quarter of it, well under the stall threshold), and
            // the timeout exceeds the retransmission plus a round trip (README, "What
            // the machine cannot know", covers the other cases).
            s.sim.link.retransmit_delay = (min_timeout - rtt - s.sim.write_delay) / 2;
            let allowance = s.config.stall_threshold().min(timeout_max / 4);
            let sleep = SleepAfterPing {
                not_before: Instant::from_millis(at),
                offset: ms(offset).min(rtt),
                duration: ms(len) + timeout_max + allowance + ms(1),
            };
            run_with_sleep(&s, Some(sleep), 40)?
        } else {
            let fault = Fault::LocalStall { at: Instant::from_millis(at), duration: ms(len.max(1)) };
            run_checked(&Scenario { faults: vec![fault], ..s }, 40)?
        };
        let deaths = deaths(&log);
        prop_assert!(deaths.is_empty(), "false death after our own stall: {deaths:?}");
    }

    /// A peer that goes silent forever is declared dead within the bound.
    #[test]
    fn a_silent_peer_is_always_detected_within_the_bound(s in scenario(false), at in 500u64..10_000, hang in any::<bool>()) {
        // A peer answering in time until the fault, so the connection is open then.
        prop_assume!(worst_rtt(&s) < min_timeout(&s.config) && s.sim.write_delay < min_timeout(&s.config));
        let from = Instant::from_millis(at);
        let fault = if hang { Fault::PeerHang { from, until: None } } else { Fault::Blackhole { from, until: None } };
        let s = Scenario { faults: vec![fault], ..s };
        let log = run_checked(&s, 60)?;
        let bound = s.config.detection_bound(s.sim.write_delay);
        let death = deaths(&log).into_iter().find(|&(t, _)| t >= from);
        let (t, reason) = death.ok_or_else(|| TestCaseError::fail("never detected"))?;
        prop_assert!(matches!(reason, DeathReason::PongTimeout { .. }), "{reason:?}");
        // The last evidence is at most one link delay after the fault started.
        let slack = s.sim.link.latency + s.sim.link.jitter + s.sim.peer.answer_delay;
        prop_assert!(t <= from + slack + bound, "detected at {t:?}, fault at {from:?}, bound {bound:?}");
    }

    /// After a fault death, a client reconnects the backoff delay after the verdict:
    /// a hung or blackholed peer never answers our close, and the close timeout
    /// (here 10–60 s, longer than any backoff delay) never delays the next attempt.
    /// The dead transport is let go before the next one starts.
    #[test]
    fn recovery_after_a_fault_is_the_backoff_delay_alone(s in scenario(false), at in 500u64..10_000, hang in any::<bool>(), close in 10u64..60) {
        prop_assume!(worst_rtt(&s) < min_timeout(&s.config) && s.sim.write_delay < min_timeout(&s.config));
        let config = Config::builder()
            .role(Role::Client)
            .ping_interval(s.config.ping_interval())
            .pong_timeout(s.config.pong_timeout())
            .close_timeout(Duration::from_secs(close))
            .liveness(s.config.liveness())
            .idle_only(s.config.idle_only())
            .stall_threshold(s.config.stall_threshold())
            .adaptive_timeout(s.config.adaptive_timeout())
            .backoff(s.config.backoff())
            .build()
            .expect("valid");
        let from = Instant::from_millis(at);
        let fault = if hang { Fault::PeerHang { from, until: None } } else { Fault::Blackhole { from, until: None } };
        let s = Scenario { config, faults: vec![fault], ..s };
        let log = run_checked(&s, 60)?;
        let (verdict, reason) = deaths(&log).into_iter().find(|&(t, _)| t >= from)
            .ok_or_else(|| TestCaseError::fail("never detected"))?;
        prop_assert!(reason.is_fault(), "{reason:?}");
        let next = log.iter().find_map(|&(t, r)| match r {
            Record::Action(Action::Connect { attempt }) if t >= verdict => Some((t, attempt)),
            _ => None,
        });
        let (t, attempt) = next.ok_or_else(|| TestCaseError::fail("no reconnect"))?;
        let cap = s.config.backoff().cap;
        prop_assert!(t - verdict <= cap, "Connect {attempt} {:?} after the verdict (cap {cap:?})", t - verdict);
        let released = log.iter().any(|&(d, r)| {
            matches!(r, Record::Action(Action::Disconnect)) && verdict <= d && d <= t
        });
        prop_assert!(released, "the dead transport was not let go before the next attempt");
    }

    /// The same inputs give the same outputs.
    #[test]
    fn simulation_is_deterministic(s in scenario(true)) {
        prop_assert_eq!(run_checked(&s, 20)?, run_checked(&s, 20)?);
    }

    /// Arbitrary calls with arbitrary (also backwards and huge) times never panic or
    /// overflow, and never leave a deadline in the past.
    #[test]
    fn arbitrary_time_jumps_never_panic(cfg in config_strategy(), ops in prop::collection::vec((0u8..17, any::<u64>(), any::<u16>()), 0..200)) {
        let mut m = HeartbeatMachine::new(cfg, 7);
        for (op, raw, code) in ops {
            let now = Instant::from_nanos(raw);
            match op {
                0 => m.handle_connected(now),
                1 => m.handle_timeout(now),
                2 => m.handle_elapsed(Duration::from_nanos(raw)),
                3 => m.handle_elapsed(Duration::MAX),
                4 => { m.handle_pong(now, &raw.wrapping_rem(4).to_be_bytes()); }
                5 => { m.handle_ping(now, &[0; 200][..(code as usize % 200)]); }
                6 => m.handle_frame(now),
                7 => m.handle_close(now, Some(code)),
                8 => m.handle_transport_closed(now),
                9 => m.handle_connect_failed(now),
                10 => m.handle_ping_sent(now),
                11 => m.connect(now),
                12 => m.handle_close_sent(now),
                13 => m.handle_retry_after(now, Duration::from_nanos(raw)),
                14 => m.handle_local_lag(now, Duration::from_millis(u64::from(code))),
                15 => { m.ping_early(now, Duration::from_nanos(raw)); }
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
