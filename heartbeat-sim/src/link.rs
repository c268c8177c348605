//! The simulated network: [`Link`] (what the user configures) and the wire that
//! schedules each frame's delivery, in order per direction, through the faults.

use core::time::Duration;

use heartbeat_core::Instant;

use crate::fault::Faults;

/// The network between the machine and its peer. Deliveries are in order per
/// direction, as on a TCP stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// One-way base latency. A connection attempt takes two round trips (TCP,
    /// then the WebSocket upgrade); a refused one, one.
    pub latency: Duration,
    /// Extra one-way delay, uniform in `[0, jitter]` per frame.
    pub jitter: Duration,
    /// Per-frame chance (0–100 %) of a lost segment, which TCP repairs by
    /// retransmission: the frame arrives `retransmit_delay` later.
    pub loss_percent: u8,
    /// The delay a loss adds.
    pub retransmit_delay: Duration,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss_percent: 0,
            retransmit_delay: Duration::from_millis(200),
        }
    }
}

impl Link {
    /// How long a connection attempt takes once the peer is reachable.
    pub(crate) fn handshake(&self) -> Duration {
        self.latency * 4
    }

    /// How long a refused attempt (a reset answering the SYN) takes.
    pub(crate) fn refusal(&self) -> Duration {
        self.latency * 2
    }
}

/// Which way a frame travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    ToUs,
    ToPeer,
}

/// The wire: the link, its seeded randomness and the FIFO order per direction.
#[derive(Clone, Debug)]
pub(crate) struct Wire {
    link: Link,
    rng: SplitMix64,
    /// The latest scheduled delivery per direction, so frames never overtake.
    last: [Instant; 2],
}

impl Wire {
    pub(crate) fn new(link: Link, seed: u64) -> Wire {
        Wire {
            link,
            rng: SplitMix64(seed),
            last: [Instant::ZERO; 2],
        }
    }

    /// When a frame put on the wire at `at` towards `dir` arrives, or `None` if a
    /// fault swallows it for good. A fault that heals delivers what TCP held one
    /// latency after healing.
    pub(crate) fn delivery(&mut self, at: Instant, dir: Dir, faults: &Faults) -> Option<Instant> {
        let link = self.link;
        let mut delay = link.latency + self.rng.upto(link.jitter);
        if link.loss_percent > 0
            && self.rng.upto(Duration::from_nanos(99)).as_nanos() < u128::from(link.loss_percent)
        {
            delay += link.retransmit_delay;
        }
        let slot = &mut self.last[dir as usize];
        let mut deliver = (at + delay).max(*slot);
        if let Some(heal) = faults.swallowed(deliver, dir, link.retransmit_delay) {
            deliver = heal? + link.latency;
        }
        *slot = deliver;
        Some(deliver)
    }
}

/// SplitMix64, the link's source of jitter and loss.
#[derive(Clone, Copy, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    /// Uniform in `[0, max]`.
    fn upto(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let max = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(((u128::from(z) * (u128::from(max) + 1)) >> 64) as u64)
    }
}
