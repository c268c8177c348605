//! Socket timeouts that meet the machine's deadlines.

use std::io::{self, ErrorKind};
use std::time::Duration;

/// The socket timeout to set for a wait of `wait`: at least 1 ms (zero means
/// "block forever" to the OS), and a long wait shortened by an eighth.
///
/// Linux runs socket timeouts on its coarse timer wheel, which may fire up to an
/// eighth of the timeout late (a 5 s read timeout returned after 5.12 s here; a
/// 20 s one can be a second or two late, which the machine would then blame on a
/// local stall). Waking early costs one more short read; the caller recomputes the
/// time left, so the deadline is met within a tick.
pub(crate) fn socket_timeout(wait: Duration) -> Duration {
    let wait = wait.max(MIN_WAIT);
    if wait > EXACT {
        wait - wait / 8
    } else {
        wait
    }
}

/// A read or write that ran into its timeout.
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// The read timeout when nothing is armed at all.
pub(crate) const FOREVER: Duration = Duration::from_secs(3600);

/// The shortest socket timeout.
pub(crate) const MIN_WAIT: Duration = Duration::from_millis(1);

/// Waits up to this long are set as they are (the wheel's finest level).
const EXACT: Duration = Duration::from_millis(8);
