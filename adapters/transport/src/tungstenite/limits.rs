//! [`Limits`]: every bound on what one peer may make a process hold, in one place,
//! and [`Admission`], which counts connections and handshakes against them.
//!
//! Every adapter (tokio, mio, blocking) and the CLI take their limits from here, so
//! a peer that sends huge or never-ending messages, never reads what it asked for,
//! or opens connections without finishing their handshakes pins at most its own
//! limits, never the process. The handshake's time bound is the machine's
//! `Config::connect_timeout`; it is not repeated here.

use core::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ::tungstenite::protocol::WebSocketConfig;

/// Resource limits for WebSocket connections, with production defaults
/// ([`Limits::default`]).
///
/// What one connection can hold at most: one partial message of `max_message`
/// bytes plus one frame of `max_frame` being read, `max_inbound` bytes of received
/// messages the application has not taken yet (adapters that queue them), and
/// `max_outbound` bytes waiting to be written, twice: in the adapter's queue and in
/// the WebSocket layer's write buffer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    /// The largest message accepted from the peer, in bytes (its fragments
    /// together). Over it: close 1009. Default 1 MiB.
    pub max_message: usize,
    /// The largest single frame accepted from the peer, in bytes (checked on the
    /// length header, before the payload is read). Over it: close 1009. Default 1 MiB.
    pub max_frame: usize,
    /// Bytes of received messages held for an application that has not taken them
    /// yet; past it the socket is not read (backpressure). Default 4 MiB.
    pub max_inbound: usize,
    /// Bytes of outbound messages waiting to be written; a sender waits for room,
    /// and a message that could never fit is refused with a typed error (the
    /// connection stays usable). Default 4 MiB.
    pub max_outbound: usize,
    /// Connections a server holds at once (handshakes in progress included);
    /// past it new connections are refused. Default 16,384.
    pub max_connections: usize,
    /// Upgrade handshakes in progress at once; past it new connections are refused,
    /// so half-open handshakes cannot take every slot. Default 1,024.
    pub max_handshakes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 1 << 20,
            max_frame: 1 << 20,
            max_inbound: 4 << 20,
            max_outbound: 4 << 20,
            max_connections: 16_384,
            max_handshakes: 1_024,
        }
    }
}

impl Limits {
    /// Checks every limit is usable: none is zero, and a frame is no larger than
    /// a message. The error names the field.
    pub fn validate(self) -> Result<Limits, LimitsError> {
        let fields = [
            ("max_message", self.max_message),
            ("max_frame", self.max_frame),
            ("max_inbound", self.max_inbound),
            ("max_outbound", self.max_outbound),
            ("max_connections", self.max_connections),
            ("max_handshakes", self.max_handshakes),
        ];
        if let Some((field, _)) = fields.iter().find(|(_, v)| *v == 0) {
            return Err(LimitsError::Zero(field));
        }
        if self.max_frame > self.max_message {
            return Err(LimitsError::FrameOverMessage);
        }
        if self.max_outbound <= FRAME_HEADER {
            return Err(LimitsError::Zero("max_outbound"));
        }
        Ok(self)
    }

    /// The tungstenite settings that enforce these limits on one connection: a
    /// 2 KiB read buffer ([`READ_BUFFER`](super::READ_BUFFER): tungstenite's
    /// 128 KiB default is zero-filled before reads and dominates a heartbeat
    /// server's memory; see [`small_buffers`](super::small_buffers) for the
    /// large-message trade-off), frames written at once,
    /// `max_message` / `max_frame` inbound, and `max_outbound` as the write
    /// buffer's cap.
    pub fn websocket(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(super::READ_BUFFER)
            .write_buffer_size(0)
            .max_write_buffer_size(self.max_outbound)
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_frame))
    }

    /// The largest message an application may send: one frame, header included,
    /// must fit the write buffer (`max_outbound`). Larger sends are refused before
    /// they reach the connection.
    pub fn max_send(&self) -> usize {
        self.max_outbound.saturating_sub(FRAME_HEADER)
    }

    /// The largest message `config` lets an application send (see
    /// [`max_send`](Self::max_send)), for adapters handed a `WebSocketConfig`.
    pub fn max_send_of(config: &WebSocketConfig) -> usize {
        config.max_write_buffer_size.saturating_sub(FRAME_HEADER)
    }
}

/// A [`Limits`] that cannot be used, naming the field.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LimitsError {
    /// The named limit is zero (or, for `max_outbound`, too small for a frame header).
    Zero(&'static str),
    /// `max_frame` is larger than `max_message`: no frame could be that big.
    FrameOverMessage,
}

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitsError::Zero(field) => write!(f, "limit {field} must be larger than zero"),
            LimitsError::FrameOverMessage => write!(f, "max_frame must not exceed max_message"),
        }
    }
}

impl std::error::Error for LimitsError {}

/// Counts a server's connections and handshakes in progress against its
/// [`Limits`]. Cheap to clone (shared counters); thread-safe.
#[derive(Clone, Debug)]
pub struct Admission {
    max_connections: usize,
    max_handshakes: usize,
    connections: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
}

/// Why [`Admission::admit`] refused a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refused {
    /// `max_connections` connections are held already.
    Connections(usize),
    /// `max_handshakes` handshakes are in progress already.
    Handshakes(usize),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Connections(n) => write!(f, "connection limit reached ({n})"),
            Refused::Handshakes(n) => write!(f, "handshake limit reached ({n} in progress)"),
        }
    }
}

impl std::error::Error for Refused {}

impl Admission {
    /// Counters for `limits.max_connections` and `limits.max_handshakes`.
    pub fn new(limits: &Limits) -> Admission {
        Admission {
            max_connections: limits.max_connections,
            max_handshakes: limits.max_handshakes,
            connections: Arc::default(),
            handshakes: Arc::default(),
        }
    }

    /// Admits a new connection for its handshake, or says which limit refuses it.
    /// The [`Slot`] holds a connection and a handshake place until
    /// [`Slot::opened`] (the handshake is over) and a connection place until it
    /// is dropped.
    pub fn admit(&self) -> Result<Slot, Refused> {
        if !take(&self.connections, self.max_connections) {
            return Err(Refused::Connections(self.max_connections));
        }
        if !take(&self.handshakes, self.max_handshakes) {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Handshakes(self.max_handshakes));
        }
        Ok(Slot {
            connections: self.connections.clone(),
            handshakes: Some(self.handshakes.clone()),
        })
    }

    /// Connections held now (handshakes included).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// Handshakes in progress now.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::Acquire)
    }
}

/// One admitted connection's place; gives it back when dropped.
#[derive(Debug)]
pub struct Slot {
    connections: Arc<AtomicUsize>,
    handshakes: Option<Arc<AtomicUsize>>,
}

impl Slot {
    /// The handshake is over (succeeded): its handshake place is given back, the
    /// connection place is kept.
    pub fn opened(&mut self) {
        if let Some(h) = self.handshakes.take() {
            h.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.opened();
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Takes one place under `max`; false when full.
fn take(counter: &AtomicUsize, max: usize) -> bool {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .is_ok()
}

/// The largest WebSocket frame header (8-byte length and a mask).
const FRAME_HEADER: usize = 14;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_what_a_production_server_ships() {
        let l = Limits::default();
        assert_eq!(l.validate(), Ok(l));
        let ws = l.websocket();
        assert_eq!(ws.max_message_size, Some(1 << 20));
        assert_eq!(ws.max_frame_size, Some(1 << 20));
        assert_eq!(ws.max_write_buffer_size, 4 << 20);
        assert_eq!(ws.read_buffer_size, 2 * 1024);
        assert_eq!(l.max_send(), (4 << 20) - 14);
    }

    #[test]
    fn a_bad_limit_is_named() {
        let zero = Limits {
            max_handshakes: 0,
            ..Limits::default()
        };
        assert_eq!(zero.validate(), Err(LimitsError::Zero("max_handshakes")));
        let frame = Limits {
            max_frame: 2 << 20,
            ..Limits::default()
        };
        assert_eq!(frame.validate(), Err(LimitsError::FrameOverMessage));
    }

    #[test]
    fn admission_counts_handshakes_and_connections_and_gives_back_on_drop() {
        let a = Admission::new(&Limits {
            max_connections: 3,
            max_handshakes: 2,
            ..Limits::default()
        });
        let mut first = a.admit().expect("room");
        let second = a.admit().expect("room");
        assert_eq!(a.admit().unwrap_err(), Refused::Handshakes(2));
        first.opened();
        assert_eq!((a.connections(), a.handshakes()), (2, 1));
        let third = a.admit().expect("a handshake place came back");
        assert_eq!(a.admit().unwrap_err(), Refused::Connections(3));
        drop((second, third));
        assert_eq!((a.connections(), a.handshakes()), (1, 0));
        drop(first);
        assert_eq!((a.connections(), a.handshakes()), (0, 0));
    }
}
