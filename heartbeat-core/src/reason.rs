//! Why a connection ended, where the machine stands, and how healthy the peer looks.

use core::fmt;
use core::time::Duration;

/// Why a connection is over. Sticky: once set for a connection, later input
/// (a late pong, more frames) does not change it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DeathReason {
    /// No pong (or, with [`Liveness::AnyFrame`](crate::Liveness::AnyFrame), no
    /// inbound frame) arrived within the pong timeout after a ping.
    PongTimeout {
        /// How long the machine waited since the ping was handed to the transport.
        waited: Duration,
    },
    /// A close the application started was not answered within `close_timeout`.
    CloseTimeout {
        /// How long the machine waited for the peer's close.
        waited: Duration,
    },
    /// The peer sent a close frame (`None`: the frame carried no code).
    PeerClosed {
        /// The peer's close code, if its frame carried one.
        code: Option<u16>,
    },
    /// The transport ended without a close handshake (what the wire calls 1006).
    TransportClosed,
    /// The peer broke the protocol.
    ProtocolError(ProtocolError),
    /// The peer pinged faster than the configured budget allows, repeatedly.
    PingFlood,
    /// The application closed the connection.
    LocalClose {
        /// The code the application closed with.
        code: u16,
    },
    /// A connection attempt failed (set only when no connection was open).
    ConnectFailed,
}

impl DeathReason {
    /// Whether the peer or the network is at fault (`false` for a clean close
    /// by either side with 1000/1001, or a close the application asked for).
    pub fn is_fault(&self) -> bool {
        !matches!(
            self,
            DeathReason::LocalClose { .. }
                | DeathReason::PeerClosed {
                    code: Some(1000 | 1001)
                }
        )
    }
}

impl fmt::Display for DeathReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeathReason::PongTimeout { waited } => {
                write!(f, "peer unresponsive: no pong after {waited:?}")
            }
            DeathReason::CloseTimeout { waited } => {
                write!(f, "close handshake not answered after {waited:?}")
            }
            DeathReason::PeerClosed { code: Some(c) } => write!(f, "peer closed with code {c}"),
            DeathReason::PeerClosed { code: None } => write!(f, "peer closed without a code"),
            DeathReason::TransportClosed => write!(f, "transport closed without a close handshake"),
            DeathReason::ProtocolError(e) => write!(f, "protocol error: {e}"),
            DeathReason::PingFlood => write!(f, "peer exceeded the ping budget"),
            DeathReason::LocalClose { code } => write!(f, "closed locally with code {code}"),
            DeathReason::ConnectFailed => write!(f, "connection attempt failed"),
        }
    }
}

/// How the peer broke the protocol.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProtocolError {
    /// A ping carried more than 125 bytes, which no control frame may.
    ControlFrameTooLong {
        /// The payload length the peer sent.
        len: usize,
    },
    /// A close frame carried a code that must never be on the wire (1005, 1006, …).
    InvalidCloseCode {
        /// The code the peer sent.
        code: u16,
    },
    /// The driver reported a malformed frame.
    Malformed,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ControlFrameTooLong { len } => {
                write!(f, "control frame payload of {len} bytes (limit 125)")
            }
            ProtocolError::InvalidCloseCode { code } => write!(f, "invalid close code {code}"),
            ProtocolError::Malformed => write!(f, "malformed frame"),
        }
    }
}

/// Where the machine stands, as returned by
/// [`HeartbeatMachine::state`](crate::HeartbeatMachine::state).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    /// Waiting for the driver to report a connection: at start, and after a
    /// [`Reconnect`](crate::Action::Reconnect) was emitted.
    Connecting,
    /// Connected; heartbeats are running.
    Open,
    /// The application asked to close; the close handshake is in progress (bounded
    /// by `close_timeout`). No reconnect follows.
    Closing,
    /// The connection is over for `reason`. A close handshake or abort may still be
    /// in progress, and a reconnect may follow.
    Dead {
        /// Why the connection ended.
        reason: DeathReason,
    },
    /// Terminal: no further connection will be attempted (server role, a permanent
    /// close code, attempts exhausted, or the application closed).
    Finished {
        /// Why the last connection ended.
        reason: DeathReason,
    },
}

/// A graded view of the peer's liveness.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Health {
    /// Liveness was proven recently enough; nothing is overdue.
    Healthy,
    /// Not proven: connecting, or a deadline was missed (a local stall) and a fresh
    /// probe is out. Not yet a verdict.
    Suspect,
    /// The connection is over.
    Dead,
}
