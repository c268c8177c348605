//! A tiny seeded random source for fault schedules (SplitMix64), so a failing lab
//! run can be replayed with the seed it printed.

use std::time::Duration;

/// SplitMix64: small, fast, and good enough to draw pause lengths and phases.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The seed from the environment variable `HEARTBEAT_LAB_SEED` if set (decimal),
    /// else `default`. Prints which one is used, so every run can be replayed.
    pub fn from_env(test: &str, default: u64) -> Rng {
        let seed = std::env::var("HEARTBEAT_LAB_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default);
        eprintln!("{test}: seed {seed} (replay with HEARTBEAT_LAB_SEED={seed})");
        Rng::new(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        let (lo, hi) = (lo.as_secs_f64(), hi.as_secs_f64().max(lo.as_secs_f64()));
        Duration::from_secs_f64(lo + (hi - lo) * self.unit())
    }

    /// Log-uniform in `[lo, hi)`: as many short pauses as long ones per decade.
    pub fn log_duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        let (lo, hi) = (lo.as_secs_f64().ln(), hi.as_secs_f64().ln());
        Duration::from_secs_f64((lo + (hi - lo) * self.unit()).exp())
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_reproducible_and_in_range() {
        let (lo, hi) = (Duration::from_millis(100), Duration::from_secs(7));
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let d = a.log_duration(lo, hi);
            assert_eq!(d, b.log_duration(lo, hi));
            assert!(d >= lo && d <= hi, "{d:?}");
            let u = a.duration(lo, hi);
            assert_eq!(u, b.duration(lo, hi));
            assert!(u >= lo && u <= hi, "{u:?}");
        }
    }
}
