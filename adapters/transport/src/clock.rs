//! [`Clock`]: the monotonic clock, read by adapters and passed to the machine.

use core::time::Duration;

use heartbeat_core::Instant;

/// Maps `std::time::Instant` to the machine's [`Instant`] (nanoseconds since the
/// clock's creation) and back.
///
/// One clock per driver; every machine the driver owns must be fed from the same one.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Clock {
        Clock {
            origin: std::time::Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.from_std(std::time::Instant::now())
    }

    /// Converts a `std::time::Instant` (saturating at the origin).
    pub fn from_std(&self, t: std::time::Instant) -> Instant {
        Instant::from_duration(t.saturating_duration_since(self.origin))
    }

    /// Converts back to `std::time::Instant` (saturating far in the future).
    pub fn to_std(&self, t: Instant) -> std::time::Instant {
        self.origin
            .checked_add(t.as_duration())
            .unwrap_or_else(|| self.origin + Duration::from_secs(86_400 * 365 * 100))
    }

    /// Time left until `deadline` (zero if it passed).
    pub fn until(&self, deadline: Instant) -> Duration {
        deadline - self.now()
    }
}

/// A seed for a machine's reconnect jitter: different per call and per process,
/// so a herd of clients restarted together spreads out. Not cryptographic.
pub fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is keyed from the OS once per process, then varied per instance.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}
