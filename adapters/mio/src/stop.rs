//! [`StopHandle`]: stops a running driver from another thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mio::Waker;

/// Stops a [`Driver::run`](crate::Driver::run) loop from another thread.
#[derive(Clone, Debug)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl StopHandle {
    /// A handle that wakes the loop with `waker`.
    pub(crate) fn new(waker: Waker) -> StopHandle {
        StopHandle {
            flag: Arc::new(AtomicBool::new(false)),
            waker: Arc::new(waker),
        }
    }

    /// Asks the loop to return; it wakes at once.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }

    /// Whether [`stop`](Self::stop) was called.
    pub(crate) fn stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}
