//! Round-trip time estimation (RFC 6298's SRTT/RTTVAR estimator).

use core::time::Duration;

/// RTT figures for one connection, fed by matched pongs.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct RttStats {
    /// The most recent sample.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration::option"))]
    pub last: Option<Duration>,
    /// The smallest sample seen.
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration::option"))]
    pub min: Option<Duration>,
    /// Smoothed RTT (RFC 6298: `SRTT = 7/8·SRTT + 1/8·R`).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration::option"))]
    pub smoothed: Option<Duration>,
    /// RTT variation (RFC 6298: `RTTVAR = 3/4·RTTVAR + 1/4·|SRTT − R|`).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration::option"))]
    pub variance: Option<Duration>,
    /// How many samples were taken.
    pub samples: u64,
}

impl RttStats {
    /// Folds in one sample.
    pub(crate) fn sample(&mut self, r: Duration) {
        self.last = Some(r);
        self.min = Some(self.min.map_or(r, |m| m.min(r)));
        match (self.smoothed, self.variance) {
            (Some(srtt), Some(var)) => {
                let diff = srtt.abs_diff(r);
                // Integer arithmetic on Duration: `/ u32` and `* u32` never panic
                // here because the values are bounded by the sample sizes involved.
                self.variance = Some(var * 3 / 4 + diff / 4);
                self.smoothed = Some(srtt * 7 / 8 + r / 8);
            }
            _ => {
                self.smoothed = Some(r);
                self.variance = Some(r / 2);
            }
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// `SRTT + 4·RTTVAR`, RFC 6298's retransmission timeout before clamping.
    pub fn rto(&self) -> Option<Duration> {
        Some(
            self.smoothed?
                .saturating_add(self.variance?.saturating_mul(4)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_seeds_the_estimator_as_rfc6298_says() {
        let mut r = RttStats::default();
        r.sample(Duration::from_millis(100));
        assert_eq!(r.smoothed, Some(Duration::from_millis(100)));
        assert_eq!(r.variance, Some(Duration::from_millis(50)));
        assert_eq!(r.rto(), Some(Duration::from_millis(300)));
    }

    #[test]
    fn later_samples_are_smoothed() {
        let mut r = RttStats::default();
        r.sample(Duration::from_millis(100));
        r.sample(Duration::from_millis(200));
        assert_eq!(r.smoothed, Some(Duration::from_micros(112_500)));
        assert_eq!(r.variance, Some(Duration::from_micros(62_500)));
        assert_eq!(r.min, Some(Duration::from_millis(100)));
        assert_eq!(r.last, Some(Duration::from_millis(200)));
        assert_eq!(r.samples, 2);
    }
}
