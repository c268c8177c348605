//! Scheduled faults, and the questions the simulation asks about them: is this
//! frame swallowed, is the peer stopped, are we stalled, does the peer refuse.

use core::time::Duration;

use heartbeat_core::Instant;

use crate::link::Dir;

/// A scheduled fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Both directions silently drop everything from `from` (no FIN, no RST); TCP
    /// delivers what was held once the link heals at `until` (never, if `None`).
    /// A connection attempt meanwhile hangs until the link heals.
    Blackhole {
        /// Start of the fault.
        from: Instant,
        /// End of the fault, if it heals.
        until: Option<Instant>,
    },
    /// One direction only: frames from the peer to us vanish (a partition the peer
    /// cannot see).
    Partition {
        /// Start of the fault.
        from: Instant,
        /// End of the fault, if it heals.
        until: Option<Instant>,
    },
    /// The peer process stops (SIGSTOP): its kernel keeps the connection up but it
    /// answers nothing until `until`, then processes what it missed.
    PeerHang {
        /// Start of the fault.
        from: Instant,
        /// When it resumes, if ever.
        until: Option<Instant>,
    },
    /// Our own process stalls for `duration`: no input, no timers, then everything
    /// readable is fed first and timers fire late.
    LocalStall {
        /// Start of the stall.
        at: Instant,
        /// Its length.
        duration: Duration,
    },
    /// Our whole host sleeps for `duration` (a suspended laptop or VM): like a
    /// stall, and frames the peer sent meanwhile were lost with our NIC, so they
    /// arrive only after TCP retransmits them, `retransmit_delay` after waking. This is
    /// the case where a late timer must not convict the peer.
    LocalSleep {
        /// Start of the sleep.
        at: Instant,
        /// Its length.
        duration: Duration,
    },
    /// The peer sends a close frame with `code` (then, once our reply arrives, ends
    /// the stream).
    PeerClose {
        /// When.
        at: Instant,
        /// The code.
        code: u16,
    },
    /// The peer's transport ends without a close handshake (a reset or a crash):
    /// we read the end of the stream one latency later.
    PeerReset {
        /// When.
        at: Instant,
    },
    /// The peer's host refuses connection attempts from `from` until `until`
    /// (nothing listening, or an HTTP 503 when `retry_after` is set). Open
    /// connections are not affected.
    Refuse {
        /// Start of the fault.
        from: Instant,
        /// End of the fault, if it ends.
        until: Option<Instant>,
        /// The `Retry-After` the refusal carries (an HTTP 503), if any.
        retry_after: Option<Duration>,
    },
}

/// Every fault added to a simulation.
#[derive(Clone, Debug, Default)]
pub(crate) struct Faults(Vec<Fault>);

impl Faults {
    pub(crate) fn push(&mut self, fault: Fault) {
        self.0.push(fault);
    }

    /// Whether our own process is stalled (or asleep) at `t`, and until when: the
    /// end of the last of the stalls that follow each other without a gap.
    pub(crate) fn stalled_until(&self, t: Instant) -> Option<Instant> {
        let stall_at = |t: Instant| {
            self.0.iter().find_map(|f| match *f {
                Fault::LocalStall { at, duration } | Fault::LocalSleep { at, duration }
                    if at <= t && t < at + duration =>
                {
                    Some(at + duration)
                }
                _ => None,
            })
        };
        let mut end = stall_at(t)?;
        // Each stall moves `end` past itself, so this ends within `len` rounds.
        for _ in 0..self.0.len() {
            match stall_at(end) {
                Some(later) => end = later,
                None => break,
            }
        }
        Some(end)
    }

    /// `Some(heal)` if a fault swallows a frame arriving at `t` towards `dir`;
    /// `heal` is when TCP gets it through (`None`: never).
    pub(crate) fn swallowed(
        &self,
        t: Instant,
        dir: Dir,
        retransmit: Duration,
    ) -> Option<Option<Instant>> {
        self.0.iter().find_map(|f| match *f {
            Fault::Blackhole { from, until } if in_window(t, from, until) => Some(until),
            Fault::Partition { from, until } if dir == Dir::ToUs && in_window(t, from, until) => {
                Some(until)
            }
            Fault::LocalSleep { at, duration }
                if dir == Dir::ToUs && in_window(t, at, Some(at + duration)) =>
            {
                Some(Some(at + duration + retransmit))
            }
            _ => None,
        })
    }

    /// `Some(resume)` if the peer is stopped at `t` (`resume` is `None` if forever).
    pub(crate) fn peer_hung_until(&self, t: Instant) -> Option<Option<Instant>> {
        self.0.iter().find_map(|f| match *f {
            Fault::PeerHang { from, until } if in_window(t, from, until) => Some(until),
            _ => None,
        })
    }

    /// `Some(retry_after)` if the peer refuses connection attempts at `t`.
    pub(crate) fn refusing(&self, t: Instant) -> Option<Option<Duration>> {
        self.0.iter().find_map(|f| match *f {
            Fault::Refuse {
                from,
                until,
                retry_after,
            } if in_window(t, from, until) => Some(retry_after),
            _ => None,
        })
    }

    /// The earliest time at or after `t` when a handshake gets through both ways to
    /// a running peer, or `None` if never.
    pub(crate) fn reachable_from(&self, t: Instant, retransmit: Duration) -> Option<Instant> {
        let mut t = t;
        // Each fault blocks a window and moves `t` past it, so it blocks only once.
        for _ in 0..=self.0.len() {
            let blocked = self
                .swallowed(t, Dir::ToPeer, retransmit)
                .or_else(|| self.swallowed(t, Dir::ToUs, retransmit))
                .or_else(|| self.peer_hung_until(t));
            match blocked {
                None => return Some(t),
                Some(heal) => t = heal?,
            }
        }
        Some(t)
    }
}

fn in_window(t: Instant, from: Instant, until: Option<Instant>) -> bool {
    from <= t && until.is_none_or(|u| t < u)
}
