//! [`Mailbox`]: what a [`Registry`](crate::Registry) holds for a registered
//! [`KeepAliveStream`](crate::KeepAliveStream) so it can broadcast to it, and the
//! [`Registration`] the stream holds to leave the registry at its verdict.
//!
//! A stream runs in its application's task, so other tasks reach it through this
//! small bounded queue plus a waker, not a channel: nothing is allocated until a
//! message waits, and an empty mailbox costs the stream one atomic load per poll.

use core::task::Waker;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Weak};

use futures_util::task::AtomicWaker;
use tokio_tungstenite::tungstenite::Message;

use crate::server::{ClientId, RegistryInner};

/// Messages queued for one registered stream by other tasks.
#[derive(Debug)]
pub(crate) struct Mailbox {
    queue: Mutex<VecDeque<Message>>,
    /// How many messages wait: read without the lock on every poll.
    waiting: AtomicUsize,
    capacity: usize,
    /// The stream's verdict is in (or the stream is gone): nothing more is taken.
    closed: AtomicBool,
    waker: AtomicWaker,
}

/// What [`Mailbox::offer`] did with a message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Offer {
    Queued,
    Full,
    Gone,
}

impl Mailbox {
    /// An empty mailbox holding at most `capacity` messages.
    pub(crate) fn new(capacity: usize) -> Mailbox {
        Mailbox {
            queue: Mutex::new(VecDeque::new()),
            waiting: AtomicUsize::new(0),
            capacity: capacity.max(1),
            closed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    /// Queues `msg` unless the mailbox is full or closed; never waits.
    pub(crate) fn offer(&self, msg: &Message) -> Offer {
        if self.closed.load(Ordering::Acquire) {
            return Offer::Gone;
        }
        let mut queue = self.lock();
        if queue.len() >= self.capacity {
            return Offer::Full;
        }
        queue.push_back(msg.clone());
        self.waiting.store(queue.len(), Ordering::Release);
        drop(queue);
        self.waker.wake();
        Offer::Queued
    }

    /// Registers the stream's task, then hands over up to `room` waiting messages
    /// (registered first, so a message offered in between still wakes it).
    pub(crate) fn take(&self, waker: &Waker, room: usize, mut put: impl FnMut(Message)) {
        self.waker.register(waker);
        if room == 0 || self.waiting.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut queue = self.lock();
        for _ in 0..room {
            match queue.pop_front() {
                Some(msg) => put(msg),
                None => break,
            }
        }
        self.waiting.store(queue.len(), Ordering::Release);
    }

    /// Whether messages wait.
    pub(crate) fn has_mail(&self) -> bool {
        self.waiting.load(Ordering::Acquire) > 0
    }

    /// Refuses further messages and drops the waiting ones: the connection is over.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let mut queue = self.lock();
        queue.clear();
        self.waiting.store(0, Ordering::Release);
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Message>> {
        // Every critical section is one queue operation: a poisoned lock still
        // holds a consistent queue.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A stream's place in a registry: dropped at the verdict (or with the stream),
/// which removes the entry and closes the mailbox.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) id: ClientId,
    pub(crate) registry: Weak<Mutex<RegistryInner>>,
    pub(crate) mailbox: std::sync::Arc<Mailbox>,
    /// Its place under the registry's `Limits` (`Registry::with_limits`), given
    /// back with the registration, at the verdict.
    pub(crate) _slot: Option<heartbeat_transport::tungstenite::Slot>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.mailbox.close();
        if let Some(inner) = self.registry.upgrade() {
            crate::server::remove(&inner, self.id);
        }
    }
}
