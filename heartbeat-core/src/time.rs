//! The machine's own notion of a point in time.
//!
//! `no_std` has no `Instant`, and the machine must never read a clock anyway, so it
//! works on [`Instant`]: nanoseconds since an origin that the driver picks (its own
//! start, usually). Adapters convert from `std::time::Instant` or
//! `tokio::time::Instant` by measuring the distance from that origin. All
//! arithmetic saturates: a hostile or buggy `now` can never overflow or panic.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time: nanoseconds since a driver-chosen origin.
///
/// Only differences between two `Instant`s fed to the same machine mean anything.
/// `u64` nanoseconds cover 584 years, far beyond any connection's life.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
pub struct Instant(u64);

impl Instant {
    /// The origin (time zero).
    pub const ZERO: Instant = Instant(0);
    /// The latest representable instant.
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant(nanos)
    }

    /// An instant `millis` milliseconds after the origin (saturating).
    pub const fn from_millis(millis: u64) -> Instant {
        Instant(millis.saturating_mul(1_000_000))
    }

    /// An instant `secs` seconds after the origin (saturating).
    pub const fn from_secs(secs: u64) -> Instant {
        Instant(secs.saturating_mul(1_000_000_000))
    }

    /// The instant `since_origin` after the origin (saturating at [`Instant::MAX`]).
    pub const fn from_duration(since_origin: Duration) -> Instant {
        Instant(duration_to_nanos(since_origin))
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time since the origin, as a [`Duration`].
    pub const fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0)
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    pub const fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(duration_to_nanos(d)))
    }

    /// `self - d`, saturating at [`Instant::ZERO`].
    pub const fn saturating_sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(duration_to_nanos(d)))
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating addition; never panics.
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturating difference (zero if `rhs` is later); never panics.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Milliseconds with microsecond precision read best in transcripts.
        write!(f, "t={}.{:06}ms", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// A `Duration` as whole nanoseconds, saturating at `u64::MAX` (584 years).
pub(crate) const fn duration_to_nanos(d: Duration) -> u64 {
    let secs = d.as_secs();
    if secs >= u64::MAX / 1_000_000_000 {
        return u64::MAX;
    }
    secs * 1_000_000_000 + d.subsec_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn arithmetic_saturates_instead_of_overflowing() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO.saturating_sub(Duration::MAX), Instant::ZERO);
        assert_eq!(Instant::ZERO - Instant::MAX, Duration::ZERO);
        assert_eq!(Instant::from_duration(Duration::MAX), Instant::MAX);
    }

    #[test]
    fn conversions_round_trip() {
        let t = Instant::from_millis(1_500);
        assert_eq!(t.as_duration(), Duration::from_millis(1_500));
        assert_eq!(Instant::from_secs(2) - t, Duration::from_millis(500));
        assert_eq!(format!("{:?}", t), "t=1500.000000ms");
    }
}
