//! A lock-free log-linear histogram of RTT samples in microseconds (about 3 %
//! precision, exact maximum), shared by every task of a child process.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// RTT samples, recordable from any thread without locking.
pub struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

/// Percentiles read from a [`Histogram`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// Samples recorded.
    pub samples: u64,
    /// Median, µs.
    pub p50: u64,
    /// 99th percentile, µs.
    pub p99: u64,
    /// Largest sample, µs.
    pub max: u64,
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    /// Records one sample of `us` microseconds.
    pub fn record(&self, us: u64) {
        self.buckets[index(us)].fetch_add(1, Relaxed);
        self.max.fetch_max(us, Relaxed);
    }

    /// Empties the histogram (samples recorded concurrently may land either side).
    pub fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Relaxed);
        }
        self.max.store(0, Relaxed);
    }

    /// p50, p99 and max of what was recorded since the last reset.
    pub fn summary(&self) -> Summary {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let samples: u64 = counts.iter().sum();
        let max = self.max.load(Relaxed);
        let at = |q: f64| -> u64 {
            if samples == 0 {
                return 0;
            }
            let rank = ((samples as f64 * q).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    return midpoint(i).min(max);
                }
            }
            max
        };
        Summary {
            samples,
            p50: at(0.50),
            p99: at(0.99),
            max,
        }
    }
}

/// Values below 64 µs have a bucket each; above, each power of two is split into
/// 32 buckets.
fn index(us: u64) -> usize {
    if us < LINEAR {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros() as usize; // >= 6
    let sub = ((us >> (exp - SUB_BITS)) as usize) & (SUB - 1);
    (LINEAR as usize + (exp - 6) * SUB + sub).min(BUCKETS - 1)
}

/// The middle of bucket `i`, in µs.
fn midpoint(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let exp = (i - LINEAR as usize) / SUB + 6;
    let sub = ((i - LINEAR as usize) % SUB) as u64;
    let width = 1u64 << (exp - SUB_BITS);
    let low = (1u64 << exp) + sub * width;
    low + width / 2
}

const LINEAR: u64 = 64;
const SUB_BITS: usize = 5;
const SUB: usize = 1 << SUB_BITS;
/// Up to 2^40 µs (12 days): more than any RTT.
const BUCKETS: usize = LINEAR as usize + (40 - 6) * SUB;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_bucket_precision() {
        let h = Histogram::new();
        for us in 1..=10_000u64 {
            h.record(us);
        }
        let s = h.summary();
        assert_eq!(s.samples, 10_000);
        assert_eq!(s.max, 10_000);
        assert!((4_850..=5_150).contains(&s.p50), "{s:?}");
        assert!((9_600..=10_000).contains(&s.p99), "{s:?}");
        h.reset();
        assert_eq!(h.summary().samples, 0);
    }

    #[test]
    fn index_and_midpoint_agree() {
        for us in [0, 1, 63, 64, 65, 1_000, 123_456, 1 << 39] {
            let m = midpoint(index(us));
            assert!(m.abs_diff(us) <= us / 32 + 1, "{us} -> {m}");
        }
    }
}
