//! `heartbeat.Config`: the core's validated configuration, built from keyword
//! arguments in float seconds.
//!
//! Defaults are read from heartbeat-core at call time, so Python and Rust can never
//! disagree on them. Values no duration can have (NaN, negative, infinite) are
//! rejected here; every relation (bounds, zero, inverted ranges) is the core's
//! `ConfigBuilder::build`, whose message names the field, the value and the range.

use heartbeat_core::{
    Backoff, Bounds, CloseCode, Config, ConfigError as CoreError, Field, Jitter, Liveness,
    PingFlood, Role,
};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::numbers::{Int, Real};
use crate::seconds::{secs, span};
use crate::values::opt;

create_exception!(
    heartbeat,
    ConfigError,
    PyValueError,
    "A configuration value was rejected; `field` names it (as the keyword argument)."
);

/// A validated heartbeat configuration. Every argument is keyword-only, defaults to
/// heartbeat-core's default, and durations are float seconds (like websockets'):
///
/// - `role` = "client": "client" (reconnects) or "server" (a dead connection is finished).
/// - `ping_interval` = 20.0: seconds between pings.
/// - `pong_timeout` = 20.0: seconds to wait for a pong after the ping was handed to the transport.
/// - `close_timeout` = 10.0: seconds to wait for the close handshake.
/// - `connect_timeout` = 10.0: seconds one connection attempt (TCP, TLS, upgrade) may take.
/// - `liveness` = "any": "pong" (only pongs prove the peer alive) or "any" (any inbound frame).
/// - `idle_only` = False: ping only when nothing arrived for a whole interval (needs "any").
/// - `stall_threshold` = 1.0: how late a timer may fire before it counts as a local stall.
/// - `max_local_lag` = 5.0: the most a pong deadline is extended by measured local lag.
/// - `dead_close_code` = 1011: the close code sent when the peer is declared dead.
/// - `adaptive` = None: `(min, max)` seconds for a pong timeout that follows the RTT.
/// - `interval_bounds` = (0.01, 86400.0): allowed ping interval, also at runtime.
/// - `timeout_bounds` = (0.01, 3600.0): allowed fixed pong timeout, also at runtime.
/// - `ping_flood` = (10, 1.0, 2): inbound ping budget `(max_pings, window, max_strikes)`, or None.
/// - `backoff_base` = 1.0, `backoff_multiplier` = 2.0, `backoff_cap` = 60.0: reconnect delay
///   ceilings (base, growth per attempt, largest).
/// - `jitter` = "full": "full", "equal" or "none".
/// - `max_attempts` = None: consecutive failed attempts before giving up (None: never).
/// - `reset_after` = 10.0: seconds a connection must stay healthy before attempts reset.
/// - `max_requested_delay` = 600.0: the largest server-requested delay (Retry-After) honoured.
/// - `reconnect_on_permanent_close` = False: whether 1002, 1003, 1007-1010 still reconnect.
///
/// A bad value raises `ConfigError` (a `ValueError`) naming the field, the value and the
/// allowed range.
#[pyclass(frozen, eq, name = "Config", module = "heartbeat")]
#[derive(Clone, PartialEq)]
pub(crate) struct PyConfig {
    pub(crate) inner: Config,
}

/// The core's defaults: the single source of every default value below.
fn d() -> Config {
    Config::default()
}

/// The core's default ping budget, as the `ping_flood` argument.
fn default_flood() -> Option<(Int, Real, Int)> {
    d().ping_flood().map(|f| {
        (
            Int::of(f.max_pings.into()),
            Real::of(secs(f.window)),
            Int::of(f.max_strikes.into()),
        )
    })
}

fn flood_tuple(f: Option<PingFlood>) -> Option<(i64, f64, i64)> {
    f.map(|f| (f.max_pings.into(), secs(f.window), f.max_strikes.into()))
}

#[pymethods]
impl PyConfig {
    #[new]
    // The defaults spelled out for `help()` and stubtest (PyO3 prints computed defaults
    // as `...`); tests/test_config.py checks that they are the ones in force.
    #[pyo3(
        text_signature = "(*, role=\"client\", ping_interval=20.0, pong_timeout=20.0, close_timeout=10.0, connect_timeout=10.0, liveness=\"any\", idle_only=False, stall_threshold=1.0, max_local_lag=5.0, dead_close_code=1011, adaptive=None, interval_bounds=(0.01, 86400.0), timeout_bounds=(0.01, 3600.0), ping_flood=(10, 1.0, 2), backoff_base=1.0, backoff_multiplier=2.0, backoff_cap=60.0, jitter=\"full\", max_attempts=None, reset_after=10.0, max_requested_delay=600.0, reconnect_on_permanent_close=False)"
    )]
    #[pyo3(signature = (
        *,
        role = "client",
        ping_interval = Real::of(secs(d().ping_interval())),
        pong_timeout = Real::of(secs(d().pong_timeout())),
        close_timeout = Real::of(secs(d().close_timeout())),
        connect_timeout = Real::of(secs(d().connect_timeout())),
        liveness = "any",
        idle_only = d().idle_only(),
        stall_threshold = Real::of(secs(d().stall_threshold())),
        max_local_lag = Real::of(secs(d().max_local_lag())),
        dead_close_code = Int::of(d().dead_close_code().get().into()),
        adaptive = None,
        interval_bounds = (Real::of(secs(d().interval_bounds().min)), Real::of(secs(d().interval_bounds().max))),
        timeout_bounds = (Real::of(secs(d().timeout_bounds().min)), Real::of(secs(d().timeout_bounds().max))),
        ping_flood = default_flood(),
        backoff_base = Real::of(secs(d().backoff().base)),
        backoff_multiplier = Real::of(d().backoff().multiplier),
        backoff_cap = Real::of(secs(d().backoff().cap)),
        jitter = "full",
        max_attempts = None,
        reset_after = Real::of(secs(d().backoff().reset_after)),
        max_requested_delay = Real::of(secs(d().backoff().max_requested_delay)),
        reconnect_on_permanent_close = d().reconnect_on_permanent_close(),
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        role: &str,
        ping_interval: Real,
        pong_timeout: Real,
        close_timeout: Real,
        connect_timeout: Real,
        liveness: &str,
        idle_only: bool,
        stall_threshold: Real,
        max_local_lag: Real,
        dead_close_code: Int,
        adaptive: Option<(Real, Real)>,
        interval_bounds: (Real, Real),
        timeout_bounds: (Real, Real),
        ping_flood: Option<(Int, Real, Int)>,
        backoff_base: Real,
        backoff_multiplier: Real,
        backoff_cap: Real,
        jitter: &str,
        max_attempts: Option<Int>,
        reset_after: Real,
        max_requested_delay: Real,
        reconnect_on_permanent_close: bool,
    ) -> PyResult<PyConfig> {
        let role = match role {
            "client" => Role::Client,
            "server" => Role::Server,
            other => return Err(choice("role", other, "\"client\" or \"server\"")),
        };
        let liveness = match liveness {
            "pong" => Liveness::PongOnly,
            "any" => Liveness::AnyFrame,
            other => return Err(choice("liveness", other, "\"pong\" or \"any\"")),
        };
        let jitter = match jitter {
            "full" => Jitter::Full,
            "equal" => Jitter::Equal,
            "none" => Jitter::None,
            other => return Err(choice("jitter", other, "\"full\", \"equal\" or \"none\"")),
        };
        let code = dead_close_code
            .fit::<u16>()
            .and_then(CloseCode::new)
            .ok_or_else(|| {
                config_error(
                    "dead_close_code",
                    format!(
                        "dead_close_code = {} cannot be sent in a close frame; \
                         it must lie within 1000 to 1003, 1007 to 1014 or 3000 to 4999",
                        dead_close_code.shown()
                    ),
                )
            })?;
        let adaptive = match adaptive {
            Some((min, max)) => Some(Bounds {
                min: duration("adaptive min", &min)?,
                max: duration("adaptive max", &max)?,
            }),
            None => None,
        };
        let ping_flood = match ping_flood {
            Some((max_pings, window, max_strikes)) => Some(PingFlood {
                max_pings: count("ping_flood max_pings", &max_pings)?,
                window: duration("ping_flood window", &window)?,
                max_strikes: count("ping_flood max_strikes", &max_strikes)?,
            }),
            None => None,
        };
        let max_attempts = match max_attempts {
            Some(n) => Some(count("max_attempts", &n)?),
            None => None,
        };
        let backoff = Backoff {
            base: duration("backoff_base", &backoff_base)?,
            // NaN, infinite and < 1 are the core's InvalidMultiplier, with the value.
            multiplier: backoff_multiplier.value,
            cap: duration("backoff_cap", &backoff_cap)?,
            jitter,
            max_attempts,
            reset_after: duration("reset_after", &reset_after)?,
            max_requested_delay: duration("max_requested_delay", &max_requested_delay)?,
        };
        Config::builder()
            .role(role)
            .ping_interval(duration("ping_interval", &ping_interval)?)
            .pong_timeout(duration("pong_timeout", &pong_timeout)?)
            .close_timeout(duration("close_timeout", &close_timeout)?)
            .connect_timeout(duration("connect_timeout", &connect_timeout)?)
            .liveness(liveness)
            .idle_only(idle_only)
            .stall_threshold(duration("stall_threshold", &stall_threshold)?)
            .max_local_lag(duration("max_local_lag", &max_local_lag)?)
            .dead_close_code(code)
            .adaptive_timeout(adaptive)
            .interval_bounds(
                duration("interval_bounds min", &interval_bounds.0)?,
                duration("interval_bounds max", &interval_bounds.1)?,
            )
            .timeout_bounds(
                duration("timeout_bounds min", &timeout_bounds.0)?,
                duration("timeout_bounds max", &timeout_bounds.1)?,
            )
            .ping_flood(ping_flood)
            .backoff(backoff)
            .reconnect_on_permanent_close(reconnect_on_permanent_close)
            .build()
            .map(|inner| PyConfig { inner })
            .map_err(from_core)
    }

    /// "client" (reconnects) or "server" (a dead connection is finished).
    #[getter]
    fn role(&self) -> &'static str {
        match self.inner.role() {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
    /// Seconds between pings.
    #[getter]
    fn ping_interval(&self) -> f64 {
        secs(self.inner.ping_interval())
    }
    /// Seconds to wait for a pong after the ping was handed to the transport.
    #[getter]
    fn pong_timeout(&self) -> f64 {
        secs(self.inner.pong_timeout())
    }
    /// Seconds to wait for the close handshake.
    #[getter]
    fn close_timeout(&self) -> f64 {
        secs(self.inner.close_timeout())
    }
    /// Seconds one connection attempt (TCP, TLS, upgrade) may take.
    #[getter]
    fn connect_timeout(&self) -> f64 {
        secs(self.inner.connect_timeout())
    }
    /// "pong" (only pongs prove the peer alive) or "any" (any inbound frame).
    #[getter]
    fn liveness(&self) -> &'static str {
        match self.inner.liveness() {
            Liveness::PongOnly => "pong",
            _ => "any",
        }
    }
    /// Whether pings are sent only when nothing arrived for a whole interval.
    #[getter]
    fn idle_only(&self) -> bool {
        self.inner.idle_only()
    }
    /// Seconds a timer may fire late before the lateness is blamed on a local stall.
    #[getter]
    fn stall_threshold(&self) -> f64 {
        secs(self.inner.stall_threshold())
    }
    /// The most local lag, in seconds, a pong deadline is extended by.
    #[getter]
    fn max_local_lag(&self) -> f64 {
        secs(self.inner.max_local_lag())
    }
    /// The close code sent when the peer is declared dead.
    #[getter]
    fn dead_close_code(&self) -> u16 {
        self.inner.dead_close_code().get()
    }
    /// Adaptive pong timeout bounds `(min, max)` in seconds, or None (fixed timeout).
    #[getter]
    fn adaptive(&self) -> Option<(f64, f64)> {
        self.inner
            .adaptive_timeout()
            .map(|b| (secs(b.min), secs(b.max)))
    }
    /// Allowed range of the ping interval, at construction and at runtime.
    #[getter]
    fn interval_bounds(&self) -> (f64, f64) {
        let b = self.inner.interval_bounds();
        (secs(b.min), secs(b.max))
    }
    /// Allowed range of the fixed pong timeout, at construction and at runtime.
    #[getter]
    fn timeout_bounds(&self) -> (f64, f64) {
        let b = self.inner.timeout_bounds();
        (secs(b.min), secs(b.max))
    }
    /// Inbound ping budget `(max_pings, window_seconds, max_strikes)`, or None.
    #[getter]
    fn ping_flood(&self) -> Option<(i64, f64, i64)> {
        flood_tuple(self.inner.ping_flood())
    }
    /// The first reconnect delay ceiling, in seconds.
    #[getter]
    fn backoff_base(&self) -> f64 {
        secs(self.inner.backoff().base)
    }
    /// Growth of the delay ceiling per attempt.
    #[getter]
    fn backoff_multiplier(&self) -> f64 {
        self.inner.backoff().multiplier
    }
    /// The largest delay ceiling, in seconds.
    #[getter]
    fn backoff_cap(&self) -> f64 {
        secs(self.inner.backoff().cap)
    }
    /// "full", "equal" or "none".
    #[getter]
    fn jitter(&self) -> &'static str {
        match self.inner.backoff().jitter {
            Jitter::Full => "full",
            Jitter::Equal => "equal",
            Jitter::None => "none",
        }
    }
    /// Consecutive failed attempts before giving up, or None (never).
    #[getter]
    fn max_attempts(&self) -> Option<u32> {
        self.inner.backoff().max_attempts
    }
    /// Seconds a connection must prove healthy before the attempt counter resets.
    #[getter]
    fn reset_after(&self) -> f64 {
        secs(self.inner.backoff().reset_after)
    }
    /// The largest server-requested delay honoured, in seconds.
    #[getter]
    fn max_requested_delay(&self) -> f64 {
        secs(self.inner.backoff().max_requested_delay)
    }
    /// Whether permanent close codes (1002, 1003, 1007-1010) still reconnect.
    #[getter]
    fn reconnect_on_permanent_close(&self) -> bool {
        self.inner.reconnect_on_permanent_close()
    }

    /// The same configuration for another role ("client" or "server").
    fn with_role(&self, role: &str) -> PyResult<PyConfig> {
        let role = match role {
            "client" => Role::Client,
            "server" => Role::Server,
            other => return Err(choice("role", other, "\"client\" or \"server\"")),
        };
        Ok(PyConfig {
            inner: self.inner.with_role(role),
        })
    }

    /// The longest a connection stays open after its last proof of life, in
    /// seconds, when pings reach the transport `write_delay` seconds after they are
    /// emitted and timers run on time: interval + write delay + pong timeout (the
    /// largest adaptive timeout if adaptive).
    #[pyo3(signature = (write_delay = Real::of(0.0)), text_signature = "($self, write_delay=0.0)")]
    fn detection_bound(&self, write_delay: Real) -> PyResult<f64> {
        Ok(secs(
            self.inner
                .detection_bound(duration("write_delay", &write_delay)?),
        ))
    }

    fn __repr__(&self) -> String {
        format!(
            "Config(role={:?}, ping_interval={}, pong_timeout={}, close_timeout={}, liveness={:?}, adaptive={})",
            self.role(),
            self.ping_interval(),
            self.pong_timeout(),
            self.close_timeout(),
            self.liveness(),
            opt(self.adaptive().map(|(a, b)| format!("({a}, {b})")))
        )
    }
}

/// A configuration duration from float seconds: NaN, negative, infinite and too
/// large values are rejected here (the core's `Duration` cannot hold them), naming
/// the argument and the range.
fn duration(field: &str, seconds: &Real) -> PyResult<core::time::Duration> {
    span(field, seconds).map_err(|message| config_error(field, message))
}

/// A count (pings, strikes, attempts) as the core's `u32`.
fn count(field: &str, n: &Int) -> PyResult<u32> {
    n.fit::<u32>().ok_or_else(|| {
        config_error(
            field,
            format!(
                "{field} = {} is not a count; it must lie within 0 to {}",
                n.shown(),
                u32::MAX
            ),
        )
    })
}

fn choice(field: &str, got: &str, allowed: &str) -> PyErr {
    config_error(
        field,
        format!("{field} = {got:?} is not known; it must be {allowed}"),
    )
}

/// A `ConfigError` (a `ValueError`) whose `field` attribute names the argument.
pub(crate) fn config_error(field: &str, message: String) -> PyErr {
    let err = ConfigError::new_err(message);
    Python::attach(|py| {
        // Setting an attribute on a fresh exception instance cannot fail in practice;
        // if it did, the message alone still names the field.
        let _ = err
            .value(py)
            .setattr("field", field.split(' ').next().unwrap_or(field));
    });
    err
}

/// The core's error, with its field names spelled as this binding's arguments.
pub(crate) fn from_core(e: CoreError) -> PyErr {
    let mut message = e.to_string();
    for field in FIELDS {
        let core_name = field.to_string();
        let py_name = python_name(field);
        if core_name != py_name {
            message = message.replace(&core_name, py_name);
        }
    }
    message = message.replace("= AnyFrame", "= \"any\"");
    // Durations print as the core's `Debug` (`50ms`, `1.5s`), units included.
    config_error(python_name(e.field()), message)
}

const FIELDS: [Field; 7] = [
    Field::BackoffMaxAttempts,
    Field::AdaptiveTimeout,
    Field::PingFloodMaxPings,
    Field::PingFloodWindow,
    Field::BackoffBase,
    Field::BackoffMultiplier,
    Field::BackoffCap,
];

/// The keyword argument that sets `field`.
fn python_name(field: Field) -> &'static str {
    match field {
        Field::PingInterval => "ping_interval",
        Field::PongTimeout => "pong_timeout",
        Field::CloseTimeout => "close_timeout",
        Field::ConnectTimeout => "connect_timeout",
        Field::Liveness => "liveness",
        Field::IdleOnly => "idle_only",
        Field::StallThreshold => "stall_threshold",
        Field::AdaptiveTimeout => "adaptive",
        Field::IntervalBounds => "interval_bounds",
        Field::TimeoutBounds => "timeout_bounds",
        Field::PingFloodMaxPings => "ping_flood max_pings",
        Field::PingFloodWindow => "ping_flood window",
        Field::BackoffBase => "backoff_base",
        Field::BackoffMultiplier => "backoff_multiplier",
        Field::BackoffCap => "backoff_cap",
        Field::BackoffMaxAttempts => "max_attempts",
        _ => "config",
    }
}
