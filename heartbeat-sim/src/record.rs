//! What travels on the simulated wire, and the transcript of a simulation.

use core::time::Duration;

use heartbeat_core::{Action, Payload, PingOutcome, PongOutcome};

/// A frame on the simulated wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// A ping and its payload.
    Ping(Payload),
    /// A pong and its payload.
    Pong(Payload),
    /// An application data frame.
    Data,
    /// A close frame with its code.
    Close(u16),
    /// The end of the stream (FIN or reset); fed as
    /// [`handle_transport_closed`](heartbeat_core::HeartbeatMachine::handle_transport_closed).
    End,
}

/// One line of the simulation's transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Record {
    /// The machine emitted an action.
    Action(Action),
    /// A frame from the peer was fed to the machine.
    Received(Frame),
    /// What the machine made of the pong just received.
    Pong(PongOutcome),
    /// What the machine made of the ping just received.
    Ping(PingOutcome),
    /// The driver reported the ping handed to the transport.
    PingSent,
    /// The driver reported our close frame flushed.
    CloseSent,
    /// A connection was established (`handle_connected`).
    Connected,
    /// The attempt was refused with a `Retry-After` (`handle_retry_after`).
    RetryAfter(Duration),
    /// A connection attempt failed (`handle_connect_failed`).
    ConnectFailed,
    /// The driver called `handle_timeout`.
    Timeout,
}
