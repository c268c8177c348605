//! What the fuzzer's bytes decode to: a configuration (hostile values included)
//! and a sequence of driver steps.
//!
//! Every optional field falls back to the default, so short inputs mostly build a
//! valid [`Config`] and spend their bytes on operations; longer ones reach zero,
//! huge and inverted values, NaN multipliers and unsendable close codes.

use core::time::Duration;

use arbitrary::{Arbitrary, Result, Unstructured};
use heartbeat_core::{
    Backoff, Bounds, CloseCode, Config, ConfigBuilder, Field, Instant, Jitter, Liveness, PingFlood,
    Role,
};

/// The most steps one input may drive.
pub(crate) const MAX_STEPS: usize = 200;

/// Decodes steps until the input runs out or [`MAX_STEPS`] is reached.
pub(crate) fn steps(u: &mut Unstructured<'_>) -> Vec<Step> {
    let mut steps = Vec::new();
    while steps.len() < MAX_STEPS && !u.is_empty() {
        match Step::arbitrary(u) {
            Ok(step) => steps.push(step),
            Err(_) => break,
        }
    }
    steps
}

/// A duration drawn from the ranges that matter: zero, tiny, human-sized, huge, `MAX`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dur(pub(crate) Duration);

impl<'a> Arbitrary<'a> for Dur {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        let d = match u.int_in_range(0u8..=7)? {
            0 => Duration::ZERO,
            1 => Duration::MAX,
            2 => Duration::from_nanos(u64::from(u.arbitrary::<u16>()?)),
            3 => Duration::from_micros(u64::from(u.arbitrary::<u16>()?)),
            4 => Duration::from_millis(u64::from(u.arbitrary::<u16>()?)),
            5 => Duration::from_secs(u64::from(u.arbitrary::<u16>()?)),
            6 => Duration::from_nanos(u.arbitrary()?),
            _ => Duration::new(u.arbitrary()?, u.arbitrary::<u32>()? % 1_000_000_000),
        };
        Ok(Dur(d))
    }
}

/// Builder input; `None` keeps the builder's default.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(crate) struct ConfigInput {
    server: bool,
    ping_interval: Option<Dur>,
    pong_timeout: Option<Dur>,
    close_timeout: Option<Dur>,
    pong_only: bool,
    idle_only: bool,
    stall_threshold: Option<Dur>,
    dead_close_code: Option<u16>,
    adaptive_timeout: Option<BoundsInput>,
    interval_bounds: Option<BoundsInput>,
    timeout_bounds: Option<BoundsInput>,
    ping_flood: FloodInput,
    backoff: Option<BackoffInput>,
    reconnect_on_permanent_close: bool,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum BoundsInput {
    /// 1 ns to `Duration::MAX`: lets hostile intervals and timeouts through.
    Wide,
    Range(Dur, Dur),
}

impl BoundsInput {
    fn resolve(self) -> Bounds {
        match self {
            BoundsInput::Wide => Bounds {
                min: Duration::from_nanos(1),
                max: Duration::MAX,
            },
            BoundsInput::Range(min, max) => Bounds {
                min: min.0,
                max: max.0,
            },
        }
    }
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum FloodInput {
    Default,
    Off,
    Limit {
        max_pings: u8,
        window: Dur,
        max_strikes: u8,
    },
}

#[derive(Arbitrary, Clone, Copy, Debug)]
struct BackoffInput {
    base: Option<Dur>,
    multiplier: Multiplier,
    cap: Option<Dur>,
    jitter: JitterInput,
    max_attempts: Option<u8>,
    reset_after: Option<Dur>,
    max_requested_delay: Option<Dur>,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Multiplier {
    Default,
    One,
    /// `1 + n/8`.
    Grow(u8),
    /// `n/256`: below 1, invalid.
    Shrink(u8),
    Nan,
    Infinite,
    NegativeInfinite,
    Raw(f64),
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum JitterInput {
    Full,
    Equal,
    None,
}

/// Every builder field, with defaults filled in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) role: Role,
    pub(crate) ping_interval: Duration,
    pub(crate) pong_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) liveness: Liveness,
    pub(crate) idle_only: bool,
    pub(crate) stall_threshold: Duration,
    pub(crate) dead_close_code: u16,
    pub(crate) adaptive_timeout: Option<Bounds>,
    pub(crate) interval_bounds: Bounds,
    pub(crate) timeout_bounds: Bounds,
    pub(crate) ping_flood: Option<PingFlood>,
    pub(crate) backoff: Backoff,
    pub(crate) reconnect_on_permanent_close: bool,
}

impl ConfigInput {
    /// The settings this input asks for, defaults filled in from [`Config::default`].
    pub(crate) fn resolve(&self) -> Settings {
        let d = Config::default();
        let b = d.backoff();
        let backoff = match self.backoff {
            None => b,
            Some(i) => Backoff {
                base: i.base.map_or(b.base, |x| x.0),
                multiplier: match i.multiplier {
                    Multiplier::Default => b.multiplier,
                    Multiplier::One => 1.0,
                    Multiplier::Grow(n) => 1.0 + f64::from(n) / 8.0,
                    Multiplier::Shrink(n) => f64::from(n) / 256.0,
                    Multiplier::Nan => f64::NAN,
                    Multiplier::Infinite => f64::INFINITY,
                    Multiplier::NegativeInfinite => f64::NEG_INFINITY,
                    Multiplier::Raw(x) => x,
                },
                cap: i.cap.map_or(b.cap, |x| x.0),
                jitter: match i.jitter {
                    JitterInput::Full => Jitter::Full,
                    JitterInput::Equal => Jitter::Equal,
                    JitterInput::None => Jitter::None,
                },
                max_attempts: i.max_attempts.map(u32::from),
                reset_after: i.reset_after.map_or(b.reset_after, |x| x.0),
                max_requested_delay: i.max_requested_delay.map_or(b.max_requested_delay, |x| x.0),
            },
        };
        Settings {
            role: if self.server {
                Role::Server
            } else {
                Role::Client
            },
            ping_interval: self.ping_interval.map_or(d.ping_interval(), |x| x.0),
            pong_timeout: self.pong_timeout.map_or(d.pong_timeout(), |x| x.0),
            close_timeout: self.close_timeout.map_or(d.close_timeout(), |x| x.0),
            liveness: if self.pong_only {
                Liveness::PongOnly
            } else {
                Liveness::AnyFrame
            },
            idle_only: self.idle_only,
            stall_threshold: self.stall_threshold.map_or(d.stall_threshold(), |x| x.0),
            dead_close_code: self.dead_close_code.unwrap_or(d.dead_close_code().get()),
            adaptive_timeout: self.adaptive_timeout.map(BoundsInput::resolve),
            interval_bounds: self
                .interval_bounds
                .map_or(d.interval_bounds(), BoundsInput::resolve),
            timeout_bounds: self
                .timeout_bounds
                .map_or(d.timeout_bounds(), BoundsInput::resolve),
            ping_flood: match self.ping_flood {
                FloodInput::Default => d.ping_flood(),
                FloodInput::Off => None,
                FloodInput::Limit {
                    max_pings,
                    window,
                    max_strikes,
                } => Some(PingFlood {
                    max_pings: u32::from(max_pings),
                    window: window.0,
                    max_strikes: u32::from(max_strikes),
                }),
            },
            backoff,
            reconnect_on_permanent_close: self.reconnect_on_permanent_close,
        }
    }
}

impl Settings {
    /// A builder with every field set.
    pub(crate) fn builder(&self) -> ConfigBuilder {
        Config::builder()
            .role(self.role)
            .ping_interval(self.ping_interval)
            .pong_timeout(self.pong_timeout)
            .close_timeout(self.close_timeout)
            .liveness(self.liveness)
            .idle_only(self.idle_only)
            .stall_threshold(self.stall_threshold)
            .dead_close_code(self.dead_close_code)
            .adaptive_timeout(self.adaptive_timeout)
            .interval_bounds(self.interval_bounds.min, self.interval_bounds.max)
            .timeout_bounds(self.timeout_bounds.min, self.timeout_bounds.max)
            .ping_flood(self.ping_flood)
            .backoff(self.backoff)
            .reconnect_on_permanent_close(self.reconnect_on_permanent_close)
    }

    /// Every field that breaks a rule documented on the builder, `Backoff`,
    /// `PingFlood` or `ConfigError`: `build` must fail exactly when this is non-empty,
    /// naming one of these fields.
    pub(crate) fn violations(&self) -> Vec<Field> {
        let mut v = Vec::new();
        let mut rule = |broken: bool, field: Field| {
            if broken {
                v.push(field);
            }
        };
        let bad_bounds = |b: Bounds| b.min.is_zero() || b.max < b.min;
        rule(self.ping_interval.is_zero(), Field::PingInterval);
        rule(self.pong_timeout.is_zero(), Field::PongTimeout);
        rule(self.close_timeout.is_zero(), Field::CloseTimeout);
        rule(self.stall_threshold.is_zero(), Field::StallThreshold);
        rule(bad_bounds(self.interval_bounds), Field::IntervalBounds);
        rule(bad_bounds(self.timeout_bounds), Field::TimeoutBounds);
        rule(
            !self.interval_bounds.contains(self.ping_interval),
            Field::PingInterval,
        );
        rule(
            !self.timeout_bounds.contains(self.pong_timeout),
            Field::PongTimeout,
        );
        rule(
            self.adaptive_timeout.is_some_and(bad_bounds),
            Field::AdaptiveTimeout,
        );
        rule(
            self.idle_only && self.liveness != Liveness::AnyFrame,
            Field::IdleOnly,
        );
        rule(
            CloseCode::new(self.dead_close_code).is_none(),
            Field::DeadCloseCode,
        );
        if let Some(f) = self.ping_flood {
            rule(f.max_pings == 0, Field::PingFloodMaxPings);
            rule(f.window.is_zero(), Field::PingFloodWindow);
        }
        let b = self.backoff;
        rule(b.base.is_zero(), Field::BackoffBase);
        rule(
            !(b.multiplier.is_finite() && b.multiplier >= 1.0),
            Field::BackoffMultiplier,
        );
        rule(b.cap < b.base, Field::BackoffCap);
        rule(b.max_attempts == Some(0), Field::BackoffMaxAttempts);
        v
    }
}

/// One driver step: move the driver's clock, then do one thing.
#[derive(Arbitrary, Clone, Debug)]
pub(crate) struct Step {
    pub(crate) clock: ClockStep,
    pub(crate) op: Op,
}

/// How the driver's clock moves before a step; it may run backwards.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(crate) enum ClockStep {
    Same,
    Nanos(u16),
    Micros(u16),
    Millis(u16),
    Secs(u16),
    Forward(Dur),
    BackMillis(u16),
    Back(Dur),
    To(u64),
    ToMax,
}

impl ClockStep {
    /// The clock after this step (saturating at both ends).
    pub(crate) fn apply(self, t: Instant) -> Instant {
        let ms = |n: u16| Duration::from_millis(u64::from(n));
        match self {
            ClockStep::Same => t,
            ClockStep::Nanos(n) => t + Duration::from_nanos(u64::from(n)),
            ClockStep::Micros(n) => t + Duration::from_micros(u64::from(n)),
            ClockStep::Millis(n) => t + ms(n),
            ClockStep::Secs(n) => t + Duration::from_secs(u64::from(n)),
            ClockStep::Forward(d) => t + d.0,
            ClockStep::BackMillis(n) => t.saturating_sub(ms(n)),
            ClockStep::Back(d) => t.saturating_sub(d.0),
            ClockStep::To(nanos) => Instant::from_nanos(nanos),
            ClockStep::ToMax => Instant::MAX,
        }
    }
}

/// One call into the machine (or a short driver loop of them).
#[derive(Arbitrary, Clone, Debug)]
pub(crate) enum Op {
    Connected,
    ConnectFailed,
    RetryAfter(Dur),
    PingSent,
    Frame,
    /// A pong echoing one of our earlier pings (`n` counts back from the latest,
    /// across connections).
    PongEcho(u8),
    /// A pong with any payload.
    Pong(Vec<u8>),
    /// A pong carrying an 8-byte sequence number of the fuzzer's choice.
    PongSeq(u64),
    Ping(PingBody),
    /// `count` small pings from the peer, `gap_micros` apart: a ping flood.
    PingBurst {
        count: u8,
        gap_micros: u16,
    },
    /// The peer's close frame.
    PeerClose(Option<u16>),
    TransportClosed,
    ProtocolError,
    /// The application's close; an unsendable code is replaced by 1000.
    LocalClose(u16),
    /// `handle_timeout` at the driver's clock.
    Timeout,
    /// `handle_timeout` exactly at `poll_timeout().at` (the clock jumps there).
    TimeoutAtDeadline,
    Elapsed(Dur),
    SetPingInterval(Dur),
    SetPongTimeout(Dur),
    /// A driver loop that sleeps until each deadline and fires it.
    Drive {
        mode: DriveMode,
        firings: u8,
    },
}

/// A ping from the peer.
#[derive(Arbitrary, Clone, Debug)]
pub(crate) enum PingBody {
    Bytes(Vec<u8>),
    /// `126 + n` bytes: longer than any control frame may be.
    Oversized(u8),
    /// An 8-byte payload, shaped like one of our own pings.
    Seq(u64),
}

impl PingBody {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        match self {
            PingBody::Bytes(b) => b.clone(),
            PingBody::Oversized(n) => vec![0xa5; 126 + usize::from(*n)],
            PingBody::Seq(s) => s.to_be_bytes().to_vec(),
        }
    }
}

/// How the peer and the driver behave during a [`Op::Drive`] loop.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(crate) enum DriveMode {
    /// The peer says nothing; timers fire on time.
    Silent { report_sent: bool },
    /// The peer says nothing; every timer fires `late` after its deadline.
    Late { late: Dur, report_sent: bool },
    /// The driver reports each ping sent `write_delay` after it was emitted (a ping
    /// stuck behind a large write) and the peer answers it within the pong timeout
    /// (`rtt`, capped just below the timeout in force).
    Responsive { write_delay: Dur, rtt: Dur },
}
