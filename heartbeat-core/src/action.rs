//! What the machine asks its driver to do.
//!
//! Every action is an owned, fixed-size `Copy` value: the machine never allocates
//! and never performs I/O, so the driver executes each action it polls, in order.

use core::fmt;

use crate::reason::DeathReason;

/// The largest payload a WebSocket control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The payload of a ping or pong: at most [`MAX_CONTROL_PAYLOAD`] bytes, stored inline.
///
/// Pings the machine originates carry an 8-byte big-endian sequence number; pongs
/// echo whatever the peer's ping carried.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Payload {
    len: u8,
    bytes: [u8; MAX_CONTROL_PAYLOAD],
}

impl Payload {
    /// The empty payload.
    pub const EMPTY: Payload = Payload {
        len: 0,
        bytes: [0; MAX_CONTROL_PAYLOAD],
    };

    /// Copies `data` into a payload, or `None` if it is longer than
    /// [`MAX_CONTROL_PAYLOAD`] bytes (which a control frame cannot carry).
    pub fn from_slice(data: &[u8]) -> Option<Payload> {
        if data.len() > MAX_CONTROL_PAYLOAD {
            return None;
        }
        let mut p = Payload::EMPTY;
        p.bytes[..data.len()].copy_from_slice(data);
        // Cannot truncate: data.len() <= 125 was checked above.
        p.len = data.len() as u8;
        Some(p)
    }

    /// The payload of a ping the machine sends: `seq` as 8 big-endian bytes.
    pub(crate) fn from_seq(seq: u64) -> Payload {
        let mut p = Payload::EMPTY;
        p.bytes[..8].copy_from_slice(&seq.to_be_bytes());
        p.len = 8;
        p
    }

    /// The sequence number if this payload has the shape of one of our pings.
    pub(crate) fn seq(data: &[u8]) -> Option<u64> {
        let bytes: [u8; 8] = data.try_into().ok()?;
        Some(u64::from_be_bytes(bytes))
    }

    /// The payload's bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload(")?;
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A WebSocket close code that may be sent on the wire.
///
/// RFC 6455 §7.4 reserves 1004, 1005, 1006 and 1015 (and everything outside
/// 1000–4999 but the listed ranges) as never sendable; constructing a
/// `CloseCode` checks that, so the machine can never emit one of them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: going away.
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: unsupported data.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1007: invalid payload data (a text message or close reason that is not UTF-8).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: policy violation (used for ping floods).
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: message too big (a frame or message over the receiver's limit).
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: internal error (used for an unresponsive peer, as Python `websockets` does).
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);

    /// The code if it may be sent in a close frame, else `None`.
    ///
    /// Sendable: 1000–1003, 1007–1014 and 3000–4999.
    pub const fn new(code: u16) -> Option<CloseCode> {
        if is_sendable(code) {
            Some(CloseCode(code))
        } else {
            None
        }
    }

    /// The numeric code.
    pub const fn get(self) -> u16 {
        self.0
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for CloseCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for CloseCode {
    /// A number, refused unless sendable (see [`CloseCode::new`]).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CloseCode, D::Error> {
        let code = <u16 as serde::Deserialize>::deserialize(d)?;
        CloseCode::new(code).ok_or_else(|| {
            serde::de::Error::custom(format_args!(
                "close code {code} may not be sent (use 1000-1003, 1007-1014 or 3000-4999)"
            ))
        })
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Whether `code` may appear in a close frame on the wire (RFC 6455 §7.4.1, §7.4.2).
pub(crate) const fn is_sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// One thing the driver must do, polled with
/// [`HeartbeatMachine::poll_action`](crate::HeartbeatMachine::poll_action).
///
/// Every transport the machine learns about (by [`Action::Connect`], or by
/// [`handle_connected`](crate::HeartbeatMachine::handle_connected) for one that
/// was already open) ends with exactly one [`Action::Disconnect`], and a
/// `Disconnect` always comes before the next `Connect`: a driver never holds two.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Action {
    /// Send a ping with this payload, then report it with
    /// [`handle_ping_sent`](crate::HeartbeatMachine::handle_ping_sent) once the
    /// transport has taken it (the pong timer starts then).
    SendPing(Payload),
    /// Send a pong echoing the peer's ping payload.
    SendPong(Payload),
    /// Tell the application, now, that this connection is over and why.
    ///
    /// Emitted exactly once per connection that opened, at the verdict: before the
    /// close handshake runs, so the application is not told a close-timeout late.
    /// Every later [`State`](crate::State) of this connection carries the same reason.
    Dead(DeathReason),
    /// Send a close frame with this code and a short reason. Report
    /// [`handle_close_sent`](crate::HeartbeatMachine::handle_close_sent) once it is
    /// flushed and keep reading: the machine says when to let go
    /// ([`Action::Disconnect`]).
    SendClose {
        /// The close code; never 1005, 1006 or 1015.
        code: CloseCode,
        /// A short reason for the close frame (well under the 123-byte limit).
        reason: &'static str,
    },
    /// The machine is done with the current transport (or connection attempt):
    /// drop it. The close handshake finished, timed out, or was cut short by the
    /// next attempt; or the attempt failed or timed out.
    Disconnect,
    /// Start a connection attempt (client: TCP, TLS and the WebSocket upgrade;
    /// server: the upgrade of the accepted socket), then report
    /// [`handle_connected`](crate::HeartbeatMachine::handle_connected) or
    /// [`handle_connect_failed`](crate::HeartbeatMachine::handle_connect_failed).
    /// The machine bounds it with `connect_timeout` and says
    /// [`Action::Disconnect`] if it takes longer.
    Connect {
        /// 0 for the first connection; then the consecutive retry (1, 2, …) since
        /// the last connection that proved healthy.
        attempt: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_rejects_oversized_control_data() {
        assert!(Payload::from_slice(&[0; 125]).is_some());
        assert!(Payload::from_slice(&[0; 126]).is_none());
    }

    #[test]
    fn seq_payload_round_trips() {
        let p = Payload::from_seq(0x0102_0304_0506_0708);
        assert_eq!(Payload::seq(p.as_slice()), Some(0x0102_0304_0506_0708));
        assert_eq!(Payload::seq(&[1, 2, 3]), None);
    }

    #[test]
    fn reserved_close_codes_are_not_sendable() {
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
            assert_eq!(CloseCode::new(code), None, "{code}");
        }
        for code in [1000, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert_eq!(CloseCode::new(code).map(CloseCode::get), Some(code));
        }
    }
}
