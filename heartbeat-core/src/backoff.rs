//! Reconnect delays: exponential growth, capped, with seeded jitter.

use core::time::Duration;

use crate::config::{Backoff, Jitter};
use crate::time::duration_to_nanos;

/// The reconnect delay generator: the attempt counter plus a seeded PRNG.
///
/// Deterministic by construction: the same seed and the same sequence of calls give
/// the same delays, which is what makes simulated runs reproducible.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BackoffState {
    /// Consecutive attempts since the last reset (0: none yet).
    pub(crate) attempt: u32,
    rng: SplitMix64,
}

impl BackoffState {
    pub(crate) fn new(seed: u64) -> Self {
        BackoffState {
            attempt: 0,
            rng: SplitMix64(seed),
        }
    }

    /// Counts one more attempt and returns its delay, or `None` once
    /// `max_attempts` is exhausted.
    pub(crate) fn next_delay(&mut self, cfg: &Backoff) -> Option<(Duration, u32)> {
        if cfg.max_attempts.is_some_and(|max| self.attempt >= max) {
            return None;
        }
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = ceiling_nanos(cfg, self.attempt);
        let nanos = match cfg.jitter {
            Jitter::None => ceiling,
            Jitter::Full => self.rng.below_inclusive(ceiling),
            Jitter::Equal => {
                let half = ceiling / 2;
                half + self.rng.below_inclusive(ceiling - half)
            }
        };
        Some((Duration::from_nanos(nanos), self.attempt))
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// `min(cap, base * multiplier^(attempt-1))` in nanoseconds.
///
/// Computed by repeated multiplication in `f64` (no `powi` in `core`), stopping as
/// soon as the cap is reached, so at most ~64 iterations for any valid config.
/// Float-to-int `as` saturates, so no input can overflow.
pub(crate) fn ceiling_nanos(cfg: &Backoff, attempt: u32) -> u64 {
    let cap = duration_to_nanos(cfg.cap);
    let mut ceiling = duration_to_nanos(cfg.base).min(cap);
    for _ in 1..attempt {
        if ceiling >= cap {
            break;
        }
        let grown = (ceiling as f64 * cfg.multiplier) as u64;
        if grown <= ceiling {
            // multiplier == 1 (or rounding): the ceiling is fixed from here on.
            break;
        }
        ceiling = grown.min(cap);
    }
    ceiling
}

/// SplitMix64: tiny, fast, and good enough to spread reconnecting clients.
/// Not cryptographic, and need not be.
#[derive(Clone, Copy, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, max]` (Lemire's multiply-shift; bias below 2^-64 per unit).
    fn below_inclusive(&mut self, max: u64) -> u64 {
        let span = max as u128 + 1;
        ((self.next_u64() as u128 * span) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(jitter: Jitter) -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            multiplier: 2.0,
            cap: Duration::from_secs(1),
            jitter,
            max_attempts: Some(6),
            reset_after: Duration::from_secs(1),
            max_requested_delay: Duration::from_secs(10),
        }
    }

    #[test]
    fn ceilings_grow_geometrically_then_cap() {
        let c = cfg(Jitter::None);
        let ms: [u64; 6] = core::array::from_fn(|i| ceiling_nanos(&c, i as u32 + 1) / 1_000_000);
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn full_jitter_stays_within_ceiling_and_attempts_are_bounded() {
        let c = cfg(Jitter::Full);
        let mut b = BackoffState::new(7);
        for attempt in 1..=6 {
            let (d, n) = b.next_delay(&c).expect("within max_attempts");
            assert_eq!(n, attempt);
            assert!(duration_to_nanos(d) <= ceiling_nanos(&c, attempt));
        }
        assert_eq!(b.next_delay(&c), None);
    }

    #[test]
    fn equal_jitter_keeps_at_least_half_the_ceiling() {
        let c = cfg(Jitter::Equal);
        let mut b = BackoffState::new(1);
        for attempt in 1..=6 {
            let (d, _) = b.next_delay(&c).unwrap();
            let ceil = ceiling_nanos(&c, attempt);
            assert!(duration_to_nanos(d) >= ceil / 2 && duration_to_nanos(d) <= ceil);
        }
    }

    #[test]
    fn same_seed_same_delays() {
        let c = cfg(Jitter::Full);
        let (mut a, mut b) = (BackoffState::new(42), BackoffState::new(42));
        for _ in 0..6 {
            assert_eq!(a.next_delay(&c), b.next_delay(&c));
        }
    }
}
