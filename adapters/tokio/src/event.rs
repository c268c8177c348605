//! What a connection's driver did or saw, for monitoring and tools.
//!
//! Register an observer with [`Options::observe`](crate::Options::observe); it is
//! called synchronously from the driver task, in order, for every event. It must not
//! block: forward the event to a channel or a metrics counter and return.

use core::time::Duration;
use std::sync::Arc;

use heartbeat_core::DeathReason;

use crate::error::Error;

/// One observable step of a connection's heartbeat.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// A connection is up. `attempt` is the reconnect attempt that succeeded (0 for
    /// the first connection and for accepted server connections).
    Connected {
        /// The successful attempt's number.
        attempt: u32,
    },
    /// A ping with sequence number `seq` was queued to the transport.
    PingSent {
        /// The machine's ping sequence number.
        seq: u64,
    },
    /// A pong answered ping `seq` after `rtt`.
    Pong {
        /// The ping it answered.
        seq: u64,
        /// The round-trip time measured by the machine.
        rtt: Duration,
    },
    /// The machine's verdict: the connection is over, at detection time.
    Dead {
        /// Why.
        reason: DeathReason,
        /// The local lag the verdict allowed for (how late this process's timers
        /// were running; see `HeartbeatMachine::handle_local_lag`).
        local_lag: Duration,
    },
    /// A close frame with `code` was sent (ours, or the reply to the peer's).
    Closed {
        /// The close code on the wire.
        code: u16,
    },
    /// The next connection attempt starts after `after` (the machine's backoff),
    /// announced at the verdict or the failed attempt.
    Reconnecting {
        /// The delay.
        after: Duration,
        /// The attempt it will be.
        attempt: u32,
    },
    /// A connection attempt failed.
    ConnectFailed {
        /// Why.
        error: Error,
    },
}

/// The observer callback type; see [`Options::observe`](crate::Options::observe).
pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// Calls the observer, if any.
pub(crate) fn emit(observer: &Option<Observer>, event: Event) {
    if let Some(f) = observer {
        f(&event);
    }
}
