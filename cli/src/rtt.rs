//! RTT figures for a summary: percentiles and a one-line histogram.

/// The `p`-th percentile (0–100) of `sorted` by nearest rank, as ping tools and
/// Prometheus summaries report it: a value that was actually measured.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A histogram of `samples` in [`BUCKETS`] buckets between the smallest and the
/// largest, log-spaced when they span more than a factor of two (RTTs have a long
/// tail): `(edges, counts)` with `edges.len() == counts.len() + 1`.
pub fn histogram(samples: &[f64]) -> Option<(Vec<f64>, Vec<u64>)> {
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !(min.is_finite() && max.is_finite()) {
        return None;
    }
    let log = min > 0.0 && max / min > 2.0;
    let edge = |k: usize| {
        let f = k as f64 / BUCKETS as f64;
        if log {
            min * (max / min).powf(f)
        } else {
            min + (max - min) * f
        }
    };
    let edges: Vec<f64> = (0..=BUCKETS).map(edge).collect();
    let mut counts = vec![0u64; BUCKETS];
    for &x in samples {
        let k = edges[1..]
            .iter()
            .position(|&e| x <= e)
            .unwrap_or(BUCKETS - 1);
        counts[k] += 1;
    }
    Some((edges, counts))
}

/// The counts as block characters, one per bucket: a space for none, `▁` for the
/// fewest up to `█` for the most.
pub fn sparkline(counts: &[u64]) -> String {
    let top = counts.iter().copied().max().unwrap_or(0).max(1);
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                ' '
            } else {
                let level = (c * (BLOCKS.len() as u64 - 1)).div_ceil(top) as usize;
                BLOCKS[level.clamp(1, BLOCKS.len() - 1)]
            }
        })
        .collect()
}

/// Buckets in a summary's histogram.
pub const BUCKETS: usize = 12;

const BLOCKS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_measured_values_by_nearest_rank() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&xs, 50.0), Some(50.0));
        assert_eq!(percentile(&xs, 90.0), Some(90.0));
        assert_eq!(percentile(&xs, 99.0), Some(99.0));
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn the_histogram_counts_every_sample_once() {
        let xs = [0.1, 0.1, 0.2, 0.3, 5.0, 10.0];
        let (edges, counts) = histogram(&xs).unwrap();
        assert_eq!(edges.len(), BUCKETS + 1);
        assert_eq!(counts.iter().sum::<u64>(), xs.len() as u64);
        assert_eq!(counts[0], 2, "{edges:?} {counts:?}");
        assert_eq!(counts[BUCKETS - 1], 1);
        let line = sparkline(&counts);
        assert_eq!(line.chars().count(), BUCKETS);
        assert!(line.starts_with('█'), "{line}");
        // One sample, or all equal: one bucket holds them all.
        let (_, counts) = histogram(&[2.0, 2.0]).unwrap();
        assert_eq!(counts.iter().sum::<u64>(), 2);
    }
}
