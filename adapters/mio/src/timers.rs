//! One timer structure for every connection of a driver, and the compensated wait.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use heartbeat_core::Instant;

/// A min-heap of `(wake time, slot, generation)` with lazy invalidation.
///
/// Each connection files at most one *current* entry: its machine's next deadline
/// (the only timer a connection has). When that time changes the
/// connection files a new entry and remembers it; the old one stays in the heap and
/// is recognised as stale when popped (its time no longer equals the connection's
/// filed time, or the slot's generation moved on). Nothing ever scans the
/// connections.
///
/// Cost per operation, with `n` entries in the heap:
/// - file a changed deadline: one push, O(log n);
/// - find the loop's poll timeout: a peek, O(1) (after popping stale tops);
/// - wake a due connection: one pop, O(log n);
/// - a stale entry costs one extra pop, once, when its time comes;
/// - when stale entries outnumber live connections 4:1 the heap is rebuilt from the
///   live entries in O(n), so its size stays O(live connections) and the rebuild
///   costs O(1) amortised per filing.
#[derive(Debug, Default)]
pub(crate) struct TimerHeap {
    heap: BinaryHeap<Reverse<Entry>>,
}

/// One filed wake-up.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) struct Entry {
    pub(crate) at: Instant,
    pub(crate) slot: u32,
    pub(crate) gen: u32,
}

impl TimerHeap {
    /// Files a wake-up.
    pub(crate) fn push(&mut self, e: Entry) {
        self.heap.push(Reverse(e));
    }

    /// The earliest entry, stale or not.
    pub(crate) fn peek(&self) -> Option<Entry> {
        self.heap.peek().map(|r| r.0)
    }

    /// Removes the earliest entry.
    pub(crate) fn pop(&mut self) -> Option<Entry> {
        self.heap.pop().map(|r| r.0)
    }

    /// Entries held, stale ones included.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Keeps only the entries `is_current` accepts, if the heap holds more than
    /// four times `live` (plus slack). O(n) when it runs, amortised O(1).
    pub(crate) fn maybe_compact(&mut self, live: usize, is_current: impl Fn(&Entry) -> bool) {
        if self.heap.len() > 4 * live + 64 {
            self.heap.retain(|r| is_current(&r.0));
        }
    }
}

/// How long to ask `epoll_wait` to sleep so that it wakes *at* `remaining` from now,
/// not later.
///
/// `epoll_wait` takes milliseconds (mio rounds up) and the kernel adds timer slack of
/// about 0.1 % of the timeout (capped at 100 ms) to let wake-ups coalesce: +20 ms on
/// a 20 s wait. Asking for 0.2 % less (at most 100 ms less) wakes just before the
/// deadline instead; the driver then sleeps the small remainder, whose slack is tiny.
/// Cost: one extra wake-up per long wait.
pub(crate) fn epoll_timeout(remaining: Duration) -> Duration {
    if remaining <= EXACT_BELOW {
        return remaining;
    }
    let early = (remaining / 500).min(Duration::from_millis(100));
    remaining - early - Duration::from_millis(1).min(remaining / 100)
}

/// Below this a wait is slept as asked: 0.1 % of it is under a few microseconds.
const EXACT_BELOW: Duration = Duration::from_millis(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_pops_in_deadline_order() {
        let mut h = TimerHeap::default();
        for (ms, slot) in [(30, 1), (10, 2), (20, 3)] {
            h.push(Entry {
                at: Instant::from_millis(ms),
                slot,
                gen: 0,
            });
        }
        let order: Vec<u32> = std::iter::from_fn(|| h.pop()).map(|e| e.slot).collect();
        assert_eq!(order, [2, 3, 1]);
    }

    #[test]
    fn compaction_drops_stale_entries_only_when_they_dominate() {
        let mut h = TimerHeap::default();
        for i in 0..100u32 {
            h.push(Entry {
                at: Instant::from_millis(u64::from(i)),
                slot: 0,
                gen: i,
            });
        }
        h.maybe_compact(10, |e| e.gen == 99);
        assert_eq!(h.len(), 100, "100 <= 4*10+64: kept");
        h.maybe_compact(1, |e| e.gen == 99);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn long_waits_are_shortened_to_beat_the_kernel_slack() {
        assert_eq!(
            epoll_timeout(Duration::from_millis(3)),
            Duration::from_millis(3)
        );
        let w = epoll_timeout(Duration::from_secs(20));
        assert!(w <= Duration::from_millis(19_960) && w >= Duration::from_millis(19_890));
        let w = epoll_timeout(Duration::from_secs(3600));
        assert_eq!(w, Duration::from_millis(3_600_000 - 101));
    }
}
