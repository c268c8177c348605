//! The configuration half of an input: builder calls with hostile values.
//!
//! Each field is one builder call, made only when the input sets it, so the
//! builder's own defaults fill the rest and no field is listed twice: the input
//! is the list of calls ([`ConfigInput::builder`]). Short inputs mostly build a
//! valid [`Config`] and spend their bytes on operations; longer ones reach zero,
//! huge and inverted values, NaN multipliers and unsendable close codes.

use core::time::Duration;

use arbitrary::Arbitrary;
use heartbeat_core::{
    Backoff, Bounds, CloseCode, Config, ConfigBuilder, Field, Jitter, Liveness, PingFlood, Role,
};

use super::Dur;

/// A builder call that sets one duration.
type SetDuration = fn(ConfigBuilder, Duration) -> ConfigBuilder;

/// Builder input; `None` leaves the builder's default in place.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(crate) struct ConfigInput {
    server: bool,
    ping_interval: Option<Dur>,
    pong_timeout: Option<Dur>,
    close_timeout: Option<Dur>,
    connect_timeout: Option<Dur>,
    pong_only: bool,
    idle_only: bool,
    stall_threshold: Option<Dur>,
    max_local_lag: Option<Dur>,
    /// Any number: unsendable ones cannot become a [`CloseCode`] at all.
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

impl ConfigInput {
    /// The builder calls this input asks for.
    pub(crate) fn builder(&self) -> ConfigBuilder {
        let mut b = Config::builder()
            .role(if self.server {
                Role::Server
            } else {
                Role::Client
            })
            .liveness(self.liveness())
            .idle_only(self.idle_only)
            .reconnect_on_permanent_close(self.reconnect_on_permanent_close)
            .adaptive_timeout(self.adaptive_timeout.map(BoundsInput::resolve))
            .ping_flood(self.ping_flood());
        let durations: [(Option<Dur>, SetDuration); 6] = [
            (self.ping_interval, ConfigBuilder::ping_interval),
            (self.pong_timeout, ConfigBuilder::pong_timeout),
            (self.close_timeout, ConfigBuilder::close_timeout),
            (self.connect_timeout, ConfigBuilder::connect_timeout),
            (self.stall_threshold, ConfigBuilder::stall_threshold),
            (self.max_local_lag, ConfigBuilder::max_local_lag),
        ];
        for (value, call) in durations {
            if let Some(Dur(d)) = value {
                b = call(b, d);
            }
        }
        if let Some(code) = self.dead_close_code.and_then(CloseCode::new) {
            b = b.dead_close_code(code);
        }
        if let Some(r) = self.interval_bounds.map(BoundsInput::resolve) {
            b = b.interval_bounds(r.min, r.max);
        }
        if let Some(r) = self.timeout_bounds.map(BoundsInput::resolve) {
            b = b.timeout_bounds(r.min, r.max);
        }
        if self.backoff.is_some() {
            b = b.backoff(self.backoff());
        }
        b
    }

    /// Every field that breaks a rule documented on the builder, `Backoff`,
    /// `PingFlood` or `ConfigError`: `build` must fail exactly when this is
    /// non-empty, naming one of these fields. Unset fields take the defaults, which
    /// break nothing.
    pub(crate) fn violations(&self) -> Vec<Field> {
        let d = Config::default();
        let or = |v: Option<Dur>, default: Duration| v.map_or(default, |x| x.0);
        let ping_interval = or(self.ping_interval, d.ping_interval());
        let pong_timeout = or(self.pong_timeout, d.pong_timeout());
        let interval_bounds = self
            .interval_bounds
            .map_or(d.interval_bounds(), BoundsInput::resolve);
        let timeout_bounds = self
            .timeout_bounds
            .map_or(d.timeout_bounds(), BoundsInput::resolve);

        let mut v = Vec::new();
        let mut rule = |broken: bool, field: Field| {
            if broken {
                v.push(field);
            }
        };
        let zero = |x: Option<Dur>| x.is_some_and(|x| x.0.is_zero());
        let bad_bounds = |b: Bounds| b.min.is_zero() || b.max < b.min;
        rule(ping_interval.is_zero(), Field::PingInterval);
        rule(pong_timeout.is_zero(), Field::PongTimeout);
        rule(zero(self.close_timeout), Field::CloseTimeout);
        rule(zero(self.connect_timeout), Field::ConnectTimeout);
        rule(zero(self.stall_threshold), Field::StallThreshold);
        rule(bad_bounds(interval_bounds), Field::IntervalBounds);
        rule(bad_bounds(timeout_bounds), Field::TimeoutBounds);
        rule(
            !interval_bounds.contains(ping_interval),
            Field::PingInterval,
        );
        rule(!timeout_bounds.contains(pong_timeout), Field::PongTimeout);
        rule(
            self.adaptive_timeout
                .map(BoundsInput::resolve)
                .is_some_and(bad_bounds),
            Field::AdaptiveTimeout,
        );
        rule(
            self.idle_only && self.liveness() != Liveness::AnyFrame,
            Field::IdleOnly,
        );
        if let Some(f) = self.ping_flood() {
            rule(f.max_pings == 0, Field::PingFloodMaxPings);
            rule(f.window.is_zero(), Field::PingFloodWindow);
        }
        let b = self.backoff();
        rule(b.base.is_zero(), Field::BackoffBase);
        rule(
            !(b.multiplier.is_finite() && b.multiplier >= 1.0),
            Field::BackoffMultiplier,
        );
        rule(b.cap < b.base, Field::BackoffCap);
        rule(b.max_attempts == Some(0), Field::BackoffMaxAttempts);
        v
    }

    /// `CloseCode::new` accepts exactly the codes RFC 6455 lets on the wire, so the
    /// builder cannot be given a reserved one.
    pub(crate) fn check_dead_close_code(&self) {
        if let Some(n) = self.dead_close_code {
            let sendable = matches!(n, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(
                CloseCode::new(n).map(CloseCode::get),
                sendable.then_some(n),
                "CloseCode::new({n})"
            );
        }
    }

    fn liveness(&self) -> Liveness {
        if self.pong_only {
            Liveness::PongOnly
        } else {
            Liveness::AnyFrame
        }
    }

    fn ping_flood(&self) -> Option<PingFlood> {
        match self.ping_flood {
            FloodInput::Default => Config::default().ping_flood(),
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
        }
    }

    /// The backoff this input asks for, its unset parts from the defaults.
    fn backoff(&self) -> Backoff {
        let b = Config::default().backoff();
        let Some(i) = self.backoff else {
            return b;
        };
        Backoff {
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
        }
    }
}
