//! Float seconds in and out: the one place Python's time values meet the core's.
//!
//! Python clocks (`time.monotonic()`, `loop.time()`) and websockets' settings are
//! float seconds. The core takes [`Instant`] (nanoseconds since an origin the caller
//! picks) and [`Duration`]. A NaN, negative, infinite or too large value cannot come
//! from any clock, so it is the caller's mistake: the message names the field, the
//! value and the range, and the caller picks the exception (`ValueError` for a time
//! or a measured span, `ConfigError` for a configured one).

use core::time::Duration;

use heartbeat_core::Instant;
use pyo3::exceptions::PyValueError;
use pyo3::PyResult;

use crate::numbers::Real;

/// The largest span accepted, in seconds: about 584 years, the core's `Instant` range.
pub(crate) const MAX_SECONDS: f64 = 18_446_744_073.0;

/// A span from float seconds, or the message that names `field`, the value and the
/// range: the one check every duration argument goes through.
pub(crate) fn span(field: &str, seconds: &Real) -> Result<Duration, String> {
    let s = seconds.value;
    if s.is_finite() && (0.0..=MAX_SECONDS).contains(&s) {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!(
            "{field} = {} is not a duration; it must be a finite number of seconds within 0 to {MAX_SECONDS}",
            seconds.shown()
        ))
    }
}

/// A measured span (a delay, a lag) from float seconds: `ValueError` naming `field`.
pub(crate) fn duration(field: &str, seconds: &Real) -> PyResult<Duration> {
    span(field, seconds).map_err(PyValueError::new_err)
}

/// A point in time from the caller's monotonic clock, in float seconds.
pub(crate) fn instant(field: &str, seconds: &Real) -> PyResult<Instant> {
    let s = seconds.value;
    if s.is_finite() && (0.0..=MAX_SECONDS).contains(&s) {
        // Rounded to the nearest nanosecond, so a deadline handed out by `at` comes
        // back as the same instant (exact while the clock reads under ~52 days).
        Ok(Instant::from_nanos((s * 1e9).round() as u64))
    } else {
        Err(PyValueError::new_err(format!(
            "{field} = {} is not a time; it must be a finite number of seconds within 0 to {MAX_SECONDS} \
             from a monotonic clock (time.monotonic(), loop.time())",
            seconds.shown()
        )))
    }
}

/// Float seconds of a span.
pub(crate) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Float seconds of an instant (its distance from the caller's origin).
pub(crate) fn at(t: Instant) -> f64 {
    t.as_nanos() as f64 / 1e9
}
