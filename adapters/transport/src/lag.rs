//! [`LagMeter`]: how late a driver's own timers and reads are running.
//!
//! A process that is paused or saturated runs every timer late. The machine cannot
//! tell that from a silent peer unless the driver says so
//! ([`handle_local_lag`](heartbeat_core::HeartbeatMachine::handle_local_lag)); this is
//! the measurement, the way Lifeguard (memberlist) and the phi-accrual detectors
//! let an overloaded node stop accusing healthy peers.
//!
//! Two signals, the larger wins:
//! - **timer lateness**: how late this process's own timers fire (a stopped or
//!   starved process);
//! - **systemic delay**: the round trip that most of this process's connections
//!   are seeing right now (the 90th percentile of recent pongs, once at least
//!   [`SYSTEMIC_MIN_SAMPLES`] arrived in the window). When nearly every peer answers
//!   slowly at once, the slowness is ours or the host's (a saturated machine, where
//!   our reads and the peers' answers are late together), not each peer's death. A
//!   single dead peer sends no pongs and moves nothing; a single slow peer among
//!   many does not move the 90th percentile.

use core::time::Duration;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// The local lag of a driver: the worst timer lateness over the last one to two
/// windows, or the systemic round trip of its connections, whichever is larger.
///
/// Lock-free and shared: every connection of a driver records how late each of its
/// timers fired and each round trip it measured, so a process- or host-wide
/// slowdown shows up in every connection's verdicts. Each call is a few atomic
/// operations.
#[derive(Debug)]
pub struct LagMeter {
    window: Duration,
    origin: OnceLock<Instant>,
    /// Two alternating buckets, each `(bucket index << 32) | lateness in µs`.
    slots: [AtomicU64; 2],
    /// Two alternating round-trip histograms (current and previous window).
    rtts: [Histogram; 2],
}

/// Round trips of one window, in power-of-two microsecond buckets.
#[derive(Debug)]
struct Histogram {
    /// Which window these counts belong to.
    window: AtomicU64,
    counts: [AtomicU64; BUCKETS],
}

impl Histogram {
    const fn new() -> Histogram {
        Histogram {
            window: AtomicU64::new(u64::MAX),
            counts: [const { AtomicU64::new(0) }; BUCKETS],
        }
    }
}

/// Pongs needed in the last one to two windows before their round trips count
/// as a systemic delay: fewer connections than that cannot tell "everyone is
/// slow" from "my one peer is slow".
pub const SYSTEMIC_MIN_SAMPLES: u64 = 64;

/// Round-trip buckets: `[2^k, 2^(k+1))` µs for k < 32 (up to ~70 minutes).
const BUCKETS: usize = 32;

impl LagMeter {
    /// A meter remembering the worst lateness over the last `window` to `2 × window`.
    pub const fn new(window: Duration) -> LagMeter {
        LagMeter {
            window,
            origin: OnceLock::new(),
            slots: [AtomicU64::new(0), AtomicU64::new(0)],
            rtts: [Histogram::new(), Histogram::new()],
        }
    }

    /// Records a round trip one connection measured (a matched pong), at `now`.
    pub fn record_rtt(&self, now: Instant, rtt: Duration) {
        let bucket = self.bucket(now);
        let h = &self.rtts[(bucket % 2) as usize];
        let seen = h.window.load(Ordering::Relaxed);
        if seen != bucket
            && h.window
                .compare_exchange(seen, bucket, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            // A new window starts afresh (a count racing with this reset may be
            // lost: the figure is a statistic, not a ledger).
            for c in &h.counts {
                c.store(0, Ordering::Relaxed);
            }
        }
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
        let k = (63 - micros.leading_zeros() as usize).min(BUCKETS - 1);
        h.counts[k].fetch_add(1, Ordering::Relaxed);
    }

    /// The systemic delay: the upper edge of the power-of-two bucket holding the
    /// 90th percentile of the round trips of the current and previous window (an
    /// overestimate of at most 2×, which only delays verdicts, within the machine's
    /// `max_local_lag`); zero with fewer than [`SYSTEMIC_MIN_SAMPLES`] of them.
    pub fn systemic(&self, now: Instant) -> Duration {
        let bucket = self.bucket(now);
        let mut counts = [0u64; BUCKETS];
        for h in &self.rtts {
            let w = h.window.load(Ordering::Relaxed);
            if w == bucket || w.wrapping_add(1) == bucket {
                for (sum, c) in counts.iter_mut().zip(&h.counts) {
                    *sum += c.load(Ordering::Relaxed);
                }
            }
        }
        let total: u64 = counts.iter().sum();
        if total < SYSTEMIC_MIN_SAMPLES {
            return Duration::ZERO;
        }
        // The 90th percentile: the first bucket at which 90 % are counted.
        let target = total - total / 10;
        let mut seen = 0;
        for (k, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Duration::from_micros(2 << k);
            }
        }
        Duration::ZERO
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

    /// The local lag to report to a machine: the worst timer lateness of the
    /// current and previous window, or the systemic round trip, whichever is larger.
    pub fn current(&self, now: Instant) -> Duration {
        self.lateness(now).max(self.systemic(now))
    }

    /// The worst timer lateness recorded in the current and the previous window.
    pub fn lateness(&self, now: Instant) -> Duration {
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
    fn a_systemic_round_trip_counts_only_when_most_of_many_connections_see_it() {
        let meter = LagMeter::new(Duration::from_millis(100));
        let t0 = Instant::now();
        meter.record(t0, t0); // starts the clock at t0
                              // A few slow pongs: too few to call it systemic.
        for _ in 0..10 {
            meter.record_rtt(t0, Duration::from_millis(900));
        }
        assert_eq!(meter.systemic(t0), Duration::ZERO);
        // Many fast pongs and one slow peer: the 90th percentile stays fast.
        for _ in 0..200 {
            meter.record_rtt(t0, Duration::from_micros(300));
        }
        assert!(meter.systemic(t0) < Duration::from_millis(1));
        // Nearly everyone slow at once: that is us, or the host.
        for _ in 0..2000 {
            meter.record_rtt(t0, Duration::from_millis(900));
        }
        let s = meter.systemic(t0);
        assert!(
            s >= Duration::from_millis(900) && s <= Duration::from_millis(1100),
            "{s:?}"
        );
        assert_eq!(meter.current(t0), s, "the larger signal wins");
        // Forgotten two windows later.
        assert_eq!(
            meter.systemic(t0 + Duration::from_millis(250)),
            Duration::ZERO
        );
    }

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
