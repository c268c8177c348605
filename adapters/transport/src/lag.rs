//! [`LagMeter`]: how late a driver's own timers and reads are running.
//!
//! A process that is paused or saturated runs every timer late. The machine cannot
//! tell that from a silent peer unless the driver says so
//! ([`handle_local_lag`](heartbeat_core::HeartbeatMachine::handle_local_lag)); this is
//! the measurement, the way Lifeguard (memberlist) and the phi-accrual detectors
//! let an overloaded node stop accusing healthy peers.

use core::time::Duration;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// The largest lateness seen over the last one to two windows.
///
/// Lock-free and shared: every connection of a driver records how late each of its
/// timers fired, so a runtime-wide slowdown shows up in every connection's verdicts.
/// `record` and `current` are a few atomic operations each.
#[derive(Debug)]
pub struct LagMeter {
    window: Duration,
    origin: OnceLock<Instant>,
    /// Two alternating buckets, each `(bucket index << 32) | lateness in µs`.
    slots: [AtomicU64; 2],
}

impl LagMeter {
    /// A meter remembering the worst lateness over the last `window` to `2 × window`.
    pub const fn new(window: Duration) -> LagMeter {
        LagMeter {
            window,
            origin: OnceLock::new(),
            slots: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// Records that a timer due at `due` ran at `now` (or a read that was ready at
    /// `due` was taken at `now`).
    pub fn record(&self, due: Instant, now: Instant) {
        let late = now.saturating_duration_since(due);
        let micros = u64::try_from(late.as_micros())
            .unwrap_or(u64::MAX)
            .min(u64::from(u32::MAX));
        let bucket = self.bucket(now);
        let slot = &self.slots[(bucket % 2) as usize];
        let mut seen = slot.load(Ordering::Relaxed);
        loop {
            let (b, m) = unpack(seen);
            // A new window starts afresh; within one, only a worse figure counts.
            if b == bucket && micros <= m {
                return;
            }
            let next = pack(bucket, micros);
            match slot.compare_exchange_weak(seen, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => seen = actual,
            }
        }
    }

    /// The worst lateness recorded in the current and the previous window.
    pub fn current(&self, now: Instant) -> Duration {
        let bucket = self.bucket(now);
        let mut worst = 0;
        for slot in &self.slots {
            let (b, m) = unpack(slot.load(Ordering::Relaxed));
            if b == bucket || b.wrapping_add(1) == bucket {
                worst = worst.max(m);
            }
        }
        Duration::from_micros(worst)
    }

    fn bucket(&self, now: Instant) -> u64 {
        let origin = *self.origin.get_or_init(|| now);
        let nanos = now.saturating_duration_since(origin).as_nanos();
        let window = self.window.as_nanos().max(1);
        // Bucket indices live in 32 bits; wrapping after 136 years of 1 s windows.
        ((nanos / window) as u64) & u64::from(u32::MAX)
    }
}

fn pack(bucket: u64, micros: u64) -> u64 {
    (bucket << 32) | micros
}

fn unpack(v: u64) -> (u64, u64) {
    (v >> 32, v & u64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_worst_lateness_for_one_to_two_windows() {
        let meter = LagMeter::new(Duration::from_millis(100));
        let t0 = Instant::now();
        assert_eq!(meter.current(t0), Duration::ZERO);
        meter.record(t0, t0 + Duration::from_millis(30));
        meter.record(t0, t0 + Duration::from_millis(10));
        let now = t0 + Duration::from_millis(30);
        assert_eq!(meter.current(now), Duration::from_millis(30));
        // Still remembered in the next window...
        assert_eq!(
            meter.current(t0 + Duration::from_millis(150)),
            Duration::from_millis(30)
        );
        // ...forgotten two windows later.
        assert_eq!(
            meter.current(t0 + Duration::from_millis(250)),
            Duration::ZERO
        );
    }
}
