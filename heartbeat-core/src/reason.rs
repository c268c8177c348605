//! Why a connection ended, where the machine stands, and how healthy the peer looks.

use core::fmt;
use core::time::Duration;

use crate::action::CloseCode;
use crate::time::Instant;

/// Why a connection (or a connection attempt) is over.
///
/// Sticky: once set, later input (a late pong, more frames from a connection being
/// closed) does not change it. The reason of the one [`Action::Dead`](crate::Action::Dead)
/// of a connection is the reason every later [`State`] of that connection carries.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum DeathReason {
    /// No pong (or, with [`Liveness::AnyFrame`](crate::Liveness::AnyFrame), no
    /// inbound frame) arrived within the pong timeout after a ping.
    PongTimeout {
        /// How long the machine waited since the ping was handed to the transport.
        #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
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
    /// A connection attempt failed before the connection opened.
    ConnectFailed(ConnectFailure),
}

impl DeathReason {
    /// Whether the peer or the network is at fault (`false` for a clean close
    /// by either side with 1000/1001, or a close the application asked for).
    ///
    /// When the machine itself closes a client's connection for a fault (a pong
    /// timeout, a protocol error, a flood, a broken transport), the next attempt
    /// follows the backoff delay alone, without waiting for the dead connection's
    /// close handshake. A close the peer started keeps its handshake, whatever its
    /// code: the peer is alive enough to take our reply.
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
            DeathReason::PeerClosed { code: Some(c) } => write!(f, "peer closed with code {c}"),
            DeathReason::PeerClosed { code: None } => write!(f, "peer closed without a code"),
            DeathReason::TransportClosed => write!(f, "transport closed without a close handshake"),
            DeathReason::ProtocolError(e) => write!(f, "protocol error: {e}"),
            DeathReason::PingFlood => write!(f, "peer exceeded the ping budget"),
            DeathReason::LocalClose { code } => write!(f, "closed locally with code {code}"),
            DeathReason::ConnectFailed(cause) => write!(f, "connection attempt failed: {cause}"),
        }
    }
}

/// Why a connection attempt failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The driver reported the attempt failed
    /// ([`handle_connect_failed`](crate::HeartbeatMachine::handle_connect_failed)):
    /// refused, unreachable, TLS or upgrade rejected.
    Error,
    /// The attempt (TCP, TLS and the WebSocket upgrade together) did not finish
    /// within `connect_timeout`; the machine abandoned it.
    TimedOut {
        /// How long the attempt ran.
        #[cfg_attr(feature = "serde", serde(with = "crate::serde_duration"))]
        waited: Duration,
    },
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectFailure::Error => write!(f, "the transport reported an error"),
            ConnectFailure::TimedOut { waited } => write!(f, "not connected after {waited:?}"),
        }
    }
}

/// How the peer broke the protocol.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
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
    /// The driver reported a malformed frame (any other violation of RFC 6455).
    Malformed,
    /// A text message or a close reason was not valid UTF-8 (RFC 6455 §8.1).
    InvalidUtf8,
    /// A frame or message exceeded the receiver's size limit.
    TooBig,
}

impl ProtocolError {
    /// The close code RFC 6455 §7.4.1 names for this violation: 1007 for invalid
    /// UTF-8, 1009 for a frame or message too big, 1002 for everything else.
    pub const fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            ProtocolError::TooBig => CloseCode::MESSAGE_TOO_BIG,
            ProtocolError::ControlFrameTooLong { .. }
            | ProtocolError::InvalidCloseCode { .. }
            | ProtocolError::Malformed => CloseCode::PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ControlFrameTooLong { len } => {
                write!(f, "control frame payload of {len} bytes (limit 125)")
            }
            ProtocolError::InvalidCloseCode { code } => write!(f, "invalid close code {code}"),
            ProtocolError::Malformed => write!(f, "malformed frame"),
            ProtocolError::InvalidUtf8 => write!(f, "invalid UTF-8"),
            ProtocolError::TooBig => write!(f, "frame or message over the size limit"),
        }
    }
}

/// Where the machine stands, as returned by
/// [`HeartbeatMachine::state`](crate::HeartbeatMachine::state).
///
/// Every state after a connection ended carries the reason, so a driver matches on
/// the state and never has to guess one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum State {
    /// Built, nothing started: call [`connect`](crate::HeartbeatMachine::connect),
    /// or [`handle_connected`](crate::HeartbeatMachine::handle_connected) for a
    /// connection that is already open.
    Idle,
    /// A connection attempt is in progress, bounded by `connect_timeout`.
    Connecting {
        /// 0 for the first connection; then the consecutive retry (1, 2, …) since
        /// the last connection that proved healthy.
        attempt: u32,
    },
    /// Connected; heartbeats are running.
    Open,
    /// The connection is over for `reason` and its close handshake is in progress,
    /// bounded by `close_timeout`. The driver keeps the transport until
    /// [`Action::Disconnect`](crate::Action::Disconnect).
    Closing {
        /// Why the connection ended.
        reason: DeathReason,
    },
    /// Waiting to connect again (client role): the next attempt starts at `at`.
    ///
    /// After a fault the close of the dead connection may still run in the
    /// background until its [`Action::Disconnect`](crate::Action::Disconnect); it
    /// never delays `at`.
    Reconnecting {
        /// Why the last connection (or attempt) ended.
        reason: DeathReason,
        /// When [`Action::Connect`](crate::Action::Connect) will be emitted.
        at: Instant,
        /// The attempt number it will carry.
        attempt: u32,
    },
    /// Terminal: no further connection will be attempted (server role, a permanent
    /// close code, attempts exhausted, or the application closed).
    Finished {
        /// Why the last connection (or attempt) ended.
        reason: DeathReason,
    },
}

impl State {
    /// The reason the last connection ended, for every state that has one.
    pub fn reason(&self) -> Option<DeathReason> {
        match *self {
            State::Closing { reason }
            | State::Reconnecting { reason, .. }
            | State::Finished { reason } => Some(reason),
            State::Idle | State::Connecting { .. } | State::Open => None,
        }
    }
}

/// A graded view of the peer's liveness.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum Health {
    /// Liveness was proven recently enough; nothing is overdue.
    Healthy,
    /// Not proven: connecting, or a deadline was missed (a local stall) and a fresh
    /// probe is out. Not yet a verdict.
    Suspect,
    /// The connection is over.
    Dead,
}
