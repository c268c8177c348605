//! Deadlines the machine wants to be woken for.

use crate::time::Instant;

/// Why the machine wants to be woken: each deadline has a reason a driver can log.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum TimerKind {
    /// Actions are queued: poll them now.
    Actions,
    /// The next ping is due.
    Ping,
    /// The outstanding ping's pong is due.
    PongTimeout,
    /// The close handshake must have finished.
    CloseTimeout,
    /// The connection attempt must have finished (`connect_timeout`).
    Connect,
    /// The backoff delay is over: the next attempt starts.
    Reconnect,
}

/// The earliest deadline, returned by
/// [`HeartbeatMachine::poll_timeout`](crate::HeartbeatMachine::poll_timeout).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Deadline {
    /// When to call [`handle_timeout`](crate::HeartbeatMachine::handle_timeout);
    /// never earlier than the last `now` the machine saw.
    pub at: Instant,
    /// Why.
    pub kind: TimerKind,
}
