//! Float seconds in and out: the one place Python's time values meet the core's.
//!
//! Python clocks (`time.monotonic()`, `loop.time()`) and websockets' settings are
//! float seconds. The core takes [`Instant`] (nanoseconds since an origin the caller
//! picks) and [`Duration`]. A NaN, negative or infinite value cannot come from any
//! clock, so it is the caller's mistake: `ValueError` naming the value and the range.

use core::time::Duration;

use heartbeat_core::Instant;
use pyo3::exceptions::PyValueError;
use pyo3::PyResult;

/// The largest span accepted, in seconds: about 584 years, the core's `Instant` range.
pub(crate) const MAX_SECONDS: f64 = 18_446_744_073.0;

/// A configuration duration from float seconds; `field` names it in the error.
pub(crate) fn duration(field: &str, seconds: f64) -> PyResult<Duration> {
    if seconds.is_finite() && (0.0..=MAX_SECONDS).contains(&seconds) {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        Err(PyValueError::new_err(format!(
            "{field} = {seconds} is not a duration; it must be a finite number of seconds within 0 to {MAX_SECONDS}"
        )))
    }
}

/// A point in time from the caller's monotonic clock, in float seconds.
pub(crate) fn instant(field: &str, seconds: f64) -> PyResult<Instant> {
    if seconds.is_finite() && (0.0..=MAX_SECONDS).contains(&seconds) {
        // Rounded to the nearest nanosecond, so a deadline handed out by `at` comes
        // back as the same instant (exact while the clock reads under ~52 days).
        Ok(Instant::from_nanos((seconds * 1e9).round() as u64))
    } else {
        Err(PyValueError::new_err(format!(
            "{field} = {seconds} is not a time; it must be a finite number of seconds within 0 to {MAX_SECONDS} \
             from a monotonic clock (time.monotonic(), loop.time())"
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
