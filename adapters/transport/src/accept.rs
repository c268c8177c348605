//! [`AcceptBackoff`]: what an accept loop does when the process runs out of file
//! descriptors (or the kernel out of memory for sockets), shared by every adapter.
//!
//! `accept` then fails at once, and keeps failing, while connections wait in the
//! backlog: retrying at once spins a core and floods the log. The loop waits
//! instead (10 ms, doubling to 100 ms), logs once per episode, and retries the
//! listener itself when the wait is over (not only when a new connection
//! arrives), so the waiting connections are taken as soon as descriptors free up.

use core::time::Duration;
use std::io;

/// The accept loop's state across errors: whether an exhaustion episode is under
/// way, how long to wait before the next retry, and how many errors it had.
#[derive(Clone, Debug, Default)]
pub struct AcceptBackoff {
    episode: Option<Episode>,
}

#[derive(Clone, Copy, Debug)]
struct Episode {
    errors: u64,
    delay: Duration,
}

/// What an accept loop should do after [`AcceptBackoff::failed`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AcceptPause {
    /// A transient error of one connection (aborted, reset): accept the next at once.
    Retry,
    /// Resources are exhausted: stop accepting for this long, then try the
    /// listener again. `first` is true for the first error of an episode, the
    /// only one to log.
    Wait {
        /// How long to wait before calling `accept` again.
        delay: Duration,
        /// The episode started with this error (log it; later ones are counted).
        first: bool,
    },
}

impl AcceptBackoff {
    /// A loop with no episode under way.
    pub fn new() -> AcceptBackoff {
        AcceptBackoff::default()
    }

    /// `accept` failed with `e` (not `WouldBlock` or `Interrupted`): what to do.
    pub fn failed(&mut self, e: &io::Error) -> AcceptPause {
        if !is_exhaustion(e) {
            return AcceptPause::Retry;
        }
        match &mut self.episode {
            Some(ep) => {
                ep.errors += 1;
                ep.delay = (ep.delay * 2).min(MAX_DELAY);
                AcceptPause::Wait {
                    delay: ep.delay,
                    first: false,
                }
            }
            None => {
                self.episode = Some(Episode {
                    errors: 1,
                    delay: MIN_DELAY,
                });
                AcceptPause::Wait {
                    delay: MIN_DELAY,
                    first: true,
                }
            }
        }
    }

    /// `accept` succeeded: ends an episode if one was under way, returning how
    /// many errors it had (log its end once).
    pub fn accepted(&mut self) -> Option<u64> {
        self.episode.take().map(|ep| ep.errors)
    }

    /// Whether an exhaustion episode is under way.
    pub fn exhausted(&self) -> bool {
        self.episode.is_some()
    }
}

/// Out of descriptors (`EMFILE`, `ENFILE`) or socket memory (`ENOBUFS`, `ENOMEM`):
/// errors that repeat until something is freed.
pub fn is_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12)) || e.kind() == io::ErrorKind::OutOfMemory
}

/// The first wait of an episode.
pub const MIN_DELAY: Duration = Duration::from_millis(10);
/// The longest wait: descriptors freed are used within this.
pub const MAX_DELAY: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emfile_episode_waits_10_to_100_ms_logs_once_and_ends_on_success() {
        let mut b = AcceptBackoff::new();
        let emfile = io::Error::from_raw_os_error(24);
        assert_eq!(
            b.failed(&emfile),
            AcceptPause::Wait {
                delay: MIN_DELAY,
                first: true
            }
        );
        let delays: Vec<_> = (0..6)
            .map(|_| match b.failed(&emfile) {
                AcceptPause::Wait { delay, first } => {
                    assert!(!first, "logged once per episode");
                    delay.as_millis()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(delays, [20, 40, 80, 100, 100, 100]);
        assert_eq!(b.accepted(), Some(7));
        assert_eq!(b.accepted(), None);
        let enfile = io::Error::from_raw_os_error(23);
        assert!(matches!(
            b.failed(&enfile),
            AcceptPause::Wait { first: true, .. }
        ));
    }

    #[test]
    fn an_aborted_connection_is_retried_at_once() {
        let mut b = AcceptBackoff::new();
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(b.failed(&aborted), AcceptPause::Retry);
        assert!(!b.exhausted());
    }
}
