//! Validated configuration: parsed once by [`ConfigBuilder::build`], never re-checked.
//!
//! Every way a configuration can be wrong is a [`ConfigError`] variant that names the
//! field and the relation it breaks, so a bad value is reported at construction and
//! the machine never meets one.

use core::fmt;
use core::time::Duration;

use crate::action::CloseCode;

/// Which end of the connection the machine drives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Role {
    /// Pings, detects death, and reconnects with backoff.
    Client,
    /// Pings and detects death too, but never reconnects: a dead connection is finished.
    Server,
}

/// Which inbound evidence proves the peer alive.
///
/// Our own sends never count: writing into a socket proves nothing about the peer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Liveness {
    /// Only a pong answering one of our pings (what Python `websockets` does).
    PongOnly,
    /// Any inbound frame: data, ping or pong (what gRPC, hyper and SignalR do).
    AnyFrame,
}

/// How random the reconnect delays are.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Jitter {
    /// Uniform in `[0, ceiling]` on every step ("full jitter"): spreads a herd of
    /// clients best.
    Full,
    /// Uniform in `[ceiling/2, ceiling]`.
    Equal,
    /// Exactly the ceiling: deterministic exponential backoff.
    None,
}

/// An inclusive range of durations a value must stay within.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
pub struct Bounds {
    /// The smallest allowed value.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub min: Duration,
    /// The largest allowed value.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub max: Duration,
}

impl Bounds {
    /// Clamps `d` into the range.
    pub fn clamp(&self, d: Duration) -> Duration {
        d.clamp(self.min, self.max)
    }

    /// Whether `d` lies within the range.
    pub fn contains(&self, d: Duration) -> bool {
        self.min <= d && d <= self.max
    }
}

/// Limits on inbound pings, as gRPC servers enforce with `too_many_pings`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
pub struct PingFlood {
    /// Pings answered per window; more in the same window are not answered.
    pub max_pings: u32,
    /// The window length (windows tumble: a new one starts at the first ping after
    /// the previous one ended).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub window: Duration,
    /// Windows that may exceed the budget; the next one over closes with 1008.
    pub max_strikes: u32,
}

/// Reconnect backoff: delay ceiling `min(cap, base * multiplier^(attempt-1))`,
/// randomised by [`Jitter`].
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case", default, deny_unknown_fields)
)]
pub struct Backoff {
    /// The first ceiling.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub base: Duration,
    /// Growth per attempt; at least 1.
    pub multiplier: f64,
    /// The largest ceiling.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub cap: Duration,
    /// How delays are randomised.
    pub jitter: Jitter,
    /// Give up after this many consecutive failed attempts (`None`: never).
    pub max_attempts: Option<u32>,
    /// A connection must prove liveness this long after connecting before the
    /// attempt counter resets; a flapping server keeps the backoff growing.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub reset_after: Duration,
    /// The largest server-requested delay honoured (see
    /// [`handle_retry_after`](crate::HeartbeatMachine::handle_retry_after)).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub max_requested_delay: Duration,
}

/// A validated heartbeat configuration. Build one with [`Config::builder`].
///
/// With the `serde` feature it also loads from TOML, JSON or env (field names as
/// the builder's methods, durations as text like `"20s"` or `"1h 30m"`, missing
/// fields at their defaults, unknown fields refused) and is validated as
/// [`ConfigBuilder::build`] validates: a loaded `Config` is always a valid one.
#[derive(Clone, Copy, PartialEq, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(remote = "Self", default, deny_unknown_fields)
)]
pub struct Config {
    pub(crate) role: Role,
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub(crate) ping_interval: Duration,
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub(crate) pong_timeout: Duration,
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub(crate) close_timeout: Duration,
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub(crate) connect_timeout: Duration,
    pub(crate) liveness: Liveness,
    pub(crate) idle_only: bool,
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub(crate) stall_threshold: Duration,
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
    pub(crate) max_local_lag: Duration,
    pub(crate) dead_close_code: CloseCode,
    pub(crate) adaptive_timeout: Option<Bounds>,
    pub(crate) interval_bounds: Bounds,
    pub(crate) timeout_bounds: Bounds,
    pub(crate) ping_flood: Option<PingFlood>,
    pub(crate) backoff: Backoff,
    pub(crate) reconnect_on_permanent_close: bool,
    pub(crate) ping_on_connect: bool,
}

impl Default for Backoff {
    /// The defaults listed on [`ConfigBuilder`].
    fn default() -> Backoff {
        ConfigBuilder::DEFAULTS.backoff
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Config {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The derived field-by-field form (`serde(remote = "Self")`).
        Config::serialize(self, s)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Config {
    /// The fields as written, then every check of [`ConfigBuilder::build`]; the
    /// error names the field as the builder does.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Config, D::Error> {
        let config = Config::deserialize(d)?;
        ConfigBuilder { config }
            .build()
            .map_err(serde::de::Error::custom)
    }
}

impl Default for Config {
    /// The defaults listed on [`ConfigBuilder`]; they always validate.
    fn default() -> Config {
        ConfigBuilder::DEFAULTS
    }
}

impl Config {
    /// A builder starting from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::new()
    }

    /// The same configuration for another role: one validated config can serve a
    /// server's accepted connections and a client's. No relation depends on the role,
    /// so nothing needs re-validating.
    pub fn with_role(mut self, role: Role) -> Config {
        self.role = role;
        self
    }

    /// A builder holding this configuration, to change a few fields and validate
    /// again (a loaded file overridden by command-line options, say).
    pub fn to_builder(self) -> ConfigBuilder {
        ConfigBuilder { config: self }
    }

    /// Client or server.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Time between pings (the initial value; see
    /// [`set_ping_interval`](crate::HeartbeatMachine::set_ping_interval)).
    pub fn ping_interval(&self) -> Duration {
        self.ping_interval
    }
    /// How long to wait for a pong (the initial value when not adaptive).
    pub fn pong_timeout(&self) -> Duration {
        self.pong_timeout
    }
    /// How long to wait for the close handshake before letting the transport go.
    pub fn close_timeout(&self) -> Duration {
        self.close_timeout
    }
    /// How long a connection attempt (TCP, TLS and the upgrade) may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// Which inbound evidence proves liveness.
    pub fn liveness(&self) -> Liveness {
        self.liveness
    }
    /// Whether pings are sent only when the connection is idle.
    pub fn idle_only(&self) -> bool {
        self.idle_only
    }
    /// How late a timer may fire before the lateness is blamed on a local stall
    /// (the allowance is the smaller of this and a quarter of the pong timeout).
    pub fn stall_threshold(&self) -> Duration {
        self.stall_threshold
    }
    /// The most local lag (see
    /// [`handle_local_lag`](crate::HeartbeatMachine::handle_local_lag)) a pong
    /// deadline is extended by.
    pub fn max_local_lag(&self) -> Duration {
        self.max_local_lag
    }
    /// The close code sent when the peer is declared dead.
    pub fn dead_close_code(&self) -> CloseCode {
        self.dead_close_code
    }
    /// Adaptive pong timeout bounds, if enabled.
    pub fn adaptive_timeout(&self) -> Option<Bounds> {
        self.adaptive_timeout
    }
    /// Allowed range for runtime ping-interval changes.
    pub fn interval_bounds(&self) -> Bounds {
        self.interval_bounds
    }
    /// Allowed range for runtime pong-timeout changes.
    pub fn timeout_bounds(&self) -> Bounds {
        self.timeout_bounds
    }
    /// Inbound ping limits, if enabled.
    pub fn ping_flood(&self) -> Option<PingFlood> {
        self.ping_flood
    }
    /// Reconnect backoff.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }
    /// Whether permanent close codes (1002, 1003, 1007, 1008, 1009, 1010) still reconnect.
    pub fn reconnect_on_permanent_close(&self) -> bool {
        self.reconnect_on_permanent_close
    }
    /// Whether the first ping goes out as the connection opens, rather than one
    /// interval later.
    pub fn ping_on_connect(&self) -> bool {
        self.ping_on_connect
    }

    /// The longest a connection can stay open after its last proof of life, when
    /// the driver reports each ping sent `write_delay` after it was emitted and runs
    /// its timers on time: `ping_interval + write_delay + pong_timeout` (the largest
    /// adaptive timeout if adaptive), with `write_delay` itself capped at the pong
    /// timeout. A local stall adds at most one more pong timeout plus the stall, and
    /// reported local lag at most [`max_local_lag`](Self::max_local_lag).
    pub fn detection_bound(&self, write_delay: Duration) -> Duration {
        let timeout = match self.adaptive_timeout {
            Some(b) => b.max.max(self.pong_timeout),
            None => self.pong_timeout,
        };
        self.ping_interval
            .saturating_add(write_delay.min(timeout))
            .saturating_add(timeout)
    }
}

/// Builds a [`Config`]; [`build`](ConfigBuilder::build) validates every field.
///
/// Defaults: client role, ping every 20 s, pong timeout 20 s, close timeout 10 s
/// (Python `websockets`' values), connect timeout 10 s, any inbound frame proves
/// liveness, pings on a fixed schedule (not idle-only), stall threshold 1 s, local
/// lag honoured up to 5 s, close code 1011 on death, fixed timeout, intervals
/// allowed within 10 ms–24 h and timeouts within 10 ms–1 h at runtime, ping budget
/// 10 per second with 2 strikes, backoff 1 s ×2 up to 60 s with full jitter,
/// unlimited attempts, reset after 10 s of proven health, server-requested delays
/// honoured up to 10 min, permanent close codes stop reconnection, first ping one
/// interval after connecting (not at connect).
///
/// The builder holds the [`Config`] it will return: each field is declared once,
/// in [`Config`], and [`build`](Self::build) only checks it.
#[derive(Clone, Copy, Debug)]
pub struct ConfigBuilder {
    config: Config,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        ConfigBuilder::new()
    }
}

impl ConfigBuilder {
    /// The defaults, as listed above.
    const DEFAULTS: Config = Config {
        role: Role::Client,
        ping_interval: Duration::from_secs(20),
        pong_timeout: Duration::from_secs(20),
        close_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(10),
        liveness: Liveness::AnyFrame,
        idle_only: false,
        stall_threshold: Duration::from_secs(1),
        max_local_lag: Duration::from_secs(5),
        dead_close_code: CloseCode::INTERNAL_ERROR,
        adaptive_timeout: None,
        interval_bounds: Bounds {
            min: Duration::from_millis(10),
            max: Duration::from_secs(24 * 3600),
        },
        timeout_bounds: Bounds {
            min: Duration::from_millis(10),
            max: Duration::from_secs(3600),
        },
        ping_flood: Some(PingFlood {
            max_pings: 10,
            window: Duration::from_secs(1),
            max_strikes: 2,
        }),
        backoff: Backoff {
            base: Duration::from_secs(1),
            multiplier: 2.0,
            cap: Duration::from_secs(60),
            jitter: Jitter::Full,
            max_attempts: None,
            reset_after: Duration::from_secs(10),
            max_requested_delay: Duration::from_secs(600),
        },
        reconnect_on_permanent_close: false,
        ping_on_connect: false,
    };

    /// A builder holding the defaults.
    pub const fn new() -> ConfigBuilder {
        ConfigBuilder {
            config: Self::DEFAULTS,
        }
    }

    /// Client (reconnects) or server (never reconnects).
    pub fn role(mut self, role: Role) -> Self {
        self.config.role = role;
        self
    }
    /// Time between pings. Must be > 0 and within the interval bounds.
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.config.ping_interval = d;
        self
    }
    /// How long to wait for the pong after the ping was handed to the transport.
    /// Must be > 0 and within the timeout bounds.
    pub fn pong_timeout(mut self, d: Duration) -> Self {
        self.config.pong_timeout = d;
        self
    }
    /// How long to wait for the close handshake before letting the transport go.
    /// Must be > 0. A client whose peer died does not wait for it: the next attempt
    /// starts after the backoff delay and cuts the handshake short.
    pub fn close_timeout(mut self, d: Duration) -> Self {
        self.config.close_timeout = d;
        self
    }
    /// How long one connection attempt may take, TCP, TLS and the WebSocket
    /// upgrade together (a server: the upgrade of an accepted socket). Must be > 0.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }
    /// Which inbound evidence proves the peer alive.
    pub fn liveness(mut self, l: Liveness) -> Self {
        self.config.liveness = l;
        self
    }
    /// Ping only when nothing has arrived for a whole interval. Requires
    /// [`Liveness::AnyFrame`]: otherwise inbound traffic proves nothing.
    ///
    /// A server whose clients ping it can use this to send no pings of its own:
    /// their pings prove them alive. Give it an interval longer than theirs
    /// (twice, say): at equal intervals a client pinging a little late loses the
    /// race to the server's own timer about half the time. A client that goes
    /// silent is then detected within the server's interval plus its timeout.
    pub fn idle_only(mut self, on: bool) -> Self {
        self.config.idle_only = on;
        self
    }
    /// How late a timer may fire before the lateness is blamed on a local stall
    /// (process stopped, machine asleep, loop saturated) rather than the peer. The
    /// allowance in force is the smaller of this and a quarter of the pong timeout,
    /// so a short timeout is protected too. Must be > 0.
    pub fn stall_threshold(mut self, d: Duration) -> Self {
        self.config.stall_threshold = d;
        self
    }
    /// The most local lag a pong deadline is extended by (see
    /// [`handle_local_lag`](crate::HeartbeatMachine::handle_local_lag)); zero turns
    /// the extension off. A dead peer is detected at most this much later.
    pub fn max_local_lag(mut self, d: Duration) -> Self {
        self.config.max_local_lag = d;
        self
    }
    /// The close code sent when the peer is declared dead (default 1011).
    /// [`CloseCode::new`] accepts only sendable codes.
    pub fn dead_close_code(mut self, code: CloseCode) -> Self {
        self.config.dead_close_code = code;
        self
    }
    /// Use `clamp(SRTT + 4·RTTVAR, min, max)` as the pong timeout once an RTT
    /// sample exists (`None`: always the fixed timeout).
    pub fn adaptive_timeout(mut self, bounds: Option<Bounds>) -> Self {
        self.config.adaptive_timeout = bounds;
        self
    }
    /// Allowed range for the interval, at construction and at runtime.
    pub fn interval_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.config.interval_bounds = Bounds { min, max };
        self
    }
    /// Allowed range for the fixed pong timeout, at construction and at runtime.
    pub fn timeout_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.config.timeout_bounds = Bounds { min, max };
        self
    }
    /// Inbound ping limits (`None`: answer every ping).
    pub fn ping_flood(mut self, limit: Option<PingFlood>) -> Self {
        self.config.ping_flood = limit;
        self
    }
    /// Reconnect backoff (client role).
    pub fn backoff(mut self, b: Backoff) -> Self {
        self.config.backoff = b;
        self
    }
    /// Reconnect even after a permanent close code (1002, 1003, 1007, 1008, 1009, 1010).
    pub fn reconnect_on_permanent_close(mut self, on: bool) -> Self {
        self.config.reconnect_on_permanent_close = on;
        self
    }

    /// Send the first ping as the connection opens (queued by
    /// [`handle_connected`](crate::HeartbeatMachine::handle_connected)) instead of one
    /// interval later, as ping(8) does: a tool learns the RTT, and a dead path shows,
    /// at once. Later pings follow every interval from that one. Default off.
    pub fn ping_on_connect(mut self, on: bool) -> Self {
        self.config.ping_on_connect = on;
        self
    }

    /// Validates every field and relation; the first violation is returned.
    pub fn build(self) -> Result<Config, ConfigError> {
        use ConfigError as E;
        use Field as F;
        let c = self.config;
        nonzero(F::PingInterval, c.ping_interval)?;
        nonzero(F::PongTimeout, c.pong_timeout)?;
        nonzero(F::CloseTimeout, c.close_timeout)?;
        nonzero(F::ConnectTimeout, c.connect_timeout)?;
        nonzero(F::StallThreshold, c.stall_threshold)?;
        bounds(F::IntervalBounds, c.interval_bounds)?;
        bounds(F::TimeoutBounds, c.timeout_bounds)?;
        if !c.interval_bounds.contains(c.ping_interval) {
            return Err(out_of(
                F::PingInterval,
                c.ping_interval,
                F::IntervalBounds,
                c.interval_bounds,
            ));
        }
        if !c.timeout_bounds.contains(c.pong_timeout) {
            return Err(out_of(
                F::PongTimeout,
                c.pong_timeout,
                F::TimeoutBounds,
                c.timeout_bounds,
            ));
        }
        if let Some(b) = c.adaptive_timeout {
            bounds(F::AdaptiveTimeout, b)?;
        }
        if c.idle_only && c.liveness != Liveness::AnyFrame {
            return Err(E::Requires {
                field: F::IdleOnly,
                requires: F::Liveness,
            });
        }
        if let Some(f) = c.ping_flood {
            if f.max_pings == 0 {
                return Err(E::Zero {
                    field: F::PingFloodMaxPings,
                });
            }
            nonzero(F::PingFloodWindow, f.window)?;
        }
        let b = c.backoff;
        nonzero(F::BackoffBase, b.base)?;
        if !(b.multiplier.is_finite() && b.multiplier >= 1.0) {
            return Err(E::InvalidMultiplier {
                field: F::BackoffMultiplier,
                value: b.multiplier,
            });
        }
        if b.cap < b.base {
            return Err(E::Below {
                field: F::BackoffCap,
                value: b.cap,
                min: F::BackoffBase,
                min_value: b.base,
            });
        }
        if b.max_attempts == Some(0) {
            return Err(E::Zero {
                field: F::BackoffMaxAttempts,
            });
        }
        Ok(c)
    }
}

fn nonzero(field: Field, d: Duration) -> Result<(), ConfigError> {
    if d.is_zero() {
        Err(ConfigError::Zero { field })
    } else {
        Ok(())
    }
}

fn bounds(field: Field, b: Bounds) -> Result<(), ConfigError> {
    if b.min.is_zero() {
        return Err(ConfigError::Zero { field });
    }
    if b.max < b.min {
        return Err(ConfigError::Inverted {
            field,
            min: b.min,
            max: b.max,
        });
    }
    Ok(())
}

/// `field = value` outside the range `bounds` holds.
pub(crate) fn out_of(field: Field, value: Duration, bounds: Field, range: Bounds) -> ConfigError {
    ConfigError::OutOfBounds {
        field,
        value,
        bounds,
        min: range.min,
        max: range.max,
    }
}

/// A configuration field, named as its builder method is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Field {
    /// [`ConfigBuilder::ping_interval`]
    PingInterval,
    /// [`ConfigBuilder::pong_timeout`]
    PongTimeout,
    /// [`ConfigBuilder::close_timeout`]
    CloseTimeout,
    /// [`ConfigBuilder::connect_timeout`]
    ConnectTimeout,
    /// [`ConfigBuilder::liveness`]
    Liveness,
    /// [`ConfigBuilder::idle_only`]
    IdleOnly,
    /// [`ConfigBuilder::stall_threshold`]
    StallThreshold,
    /// [`ConfigBuilder::adaptive_timeout`]
    AdaptiveTimeout,
    /// [`ConfigBuilder::interval_bounds`]
    IntervalBounds,
    /// [`ConfigBuilder::timeout_bounds`]
    TimeoutBounds,
    /// [`PingFlood::max_pings`]
    PingFloodMaxPings,
    /// [`PingFlood::window`]
    PingFloodWindow,
    /// [`Backoff::base`]
    BackoffBase,
    /// [`Backoff::multiplier`]
    BackoffMultiplier,
    /// [`Backoff::cap`]
    BackoffCap,
    /// [`Backoff::max_attempts`]
    BackoffMaxAttempts,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::PingInterval => "ping_interval",
            Field::PongTimeout => "pong_timeout",
            Field::CloseTimeout => "close_timeout",
            Field::ConnectTimeout => "connect_timeout",
            Field::Liveness => "liveness",
            Field::IdleOnly => "idle_only",
            Field::StallThreshold => "stall_threshold",
            Field::AdaptiveTimeout => "adaptive_timeout",
            Field::IntervalBounds => "interval_bounds",
            Field::TimeoutBounds => "timeout_bounds",
            Field::PingFloodMaxPings => "ping_flood.max_pings",
            Field::PingFloodWindow => "ping_flood.window",
            Field::BackoffBase => "backoff.base",
            Field::BackoffMultiplier => "backoff.multiplier",
            Field::BackoffCap => "backoff.cap",
            Field::BackoffMaxAttempts => "backoff.max_attempts",
        })
    }
}

/// Why a configuration (or a runtime change) was rejected: the field, the value it
/// was given and the relation or range it breaks, so that a message built from it
/// (its `Display`) tells the user what to change without reading the docs.
#[derive(Clone, Copy, PartialEq, Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// `field` must be greater than zero (it was zero).
    Zero {
        /// The offending field.
        field: Field,
    },
    /// `field`'s minimum is above its maximum.
    Inverted {
        /// The offending range.
        field: Field,
        /// The minimum given.
        min: Duration,
        /// The maximum given, below `min`.
        max: Duration,
    },
    /// `field` lies outside the range configured in `bounds`.
    OutOfBounds {
        /// The offending field.
        field: Field,
        /// The value given.
        value: Duration,
        /// The range it must lie within.
        bounds: Field,
        /// The range's minimum.
        min: Duration,
        /// The range's maximum.
        max: Duration,
    },
    /// `field` must be at least `min`.
    Below {
        /// The offending field.
        field: Field,
        /// The value given.
        value: Duration,
        /// The field it must not be below.
        min: Field,
        /// That field's value.
        min_value: Duration,
    },
    /// `field` is only valid together with a setting of `requires`.
    Requires {
        /// The offending field.
        field: Field,
        /// The field whose setting it needs.
        requires: Field,
    },
    /// The multiplier must be finite and at least 1.
    InvalidMultiplier {
        /// The offending field.
        field: Field,
        /// The value given (may be NaN or infinite).
        value: f64,
    },
}

impl ConfigError {
    /// The field that was rejected.
    pub fn field(&self) -> Field {
        match *self {
            ConfigError::Zero { field }
            | ConfigError::Inverted { field, .. }
            | ConfigError::OutOfBounds { field, .. }
            | ConfigError::Below { field, .. }
            | ConfigError::Requires { field, .. }
            | ConfigError::InvalidMultiplier { field, .. } => field,
        }
    }
}

/// Durations print as `Duration`'s `Debug` does (`250ms`, `1.5s`): short, exact and
/// available without `std`.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Zero { field } => {
                write!(f, "{field} is zero; it must be greater than zero")
            }
            ConfigError::Inverted { field, min, max } => {
                write!(f, "{field}: min {min:?} is above max {max:?}")
            }
            ConfigError::OutOfBounds {
                field,
                value,
                bounds,
                min,
                max,
            } => write!(
                f,
                "{field} = {value:?} is outside {bounds}; it must lie within {min:?} to {max:?}"
            ),
            ConfigError::Below {
                field,
                value,
                min,
                min_value,
            } => write!(
                f,
                "{field} = {value:?} is below {min} ({min_value:?}); it must be at least that"
            ),
            ConfigError::Requires { field, requires } => {
                write!(f, "{field} requires {requires} = AnyFrame")
            }
            ConfigError::InvalidMultiplier { field, value } => {
                write!(f, "{field} = {value} must be a finite number of at least 1")
            }
        }
    }
}

impl core::error::Error for ConfigError {}
