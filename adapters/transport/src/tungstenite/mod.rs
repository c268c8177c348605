//! Everything that adapts tungstenite, written once for the tokio, mio and blocking
//! drivers: the [`Transport`] over a `WebSocket`, buffer defaults, URL handling,
//! the mapping of messages and errors to [`Incoming`], and which connect failures
//! are worth retrying ([`classify`], `Retry-After`).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};

use ::tungstenite::client::IntoClientRequest;
use ::tungstenite::handshake::client::Request;
use ::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use ::tungstenite::{Error as WsError, Message, WebSocket};
use heartbeat_core::CloseCode;

use crate::drive::Incoming;
use crate::transport::{Handover, Transport};

mod failure;
mod limits;
mod url;

pub use failure::{classify, parse_retry_after, retry_after, Failure, Permanent};
pub use limits::{Admission, Limits, LimitsError, Refused, Slot};
pub use url::{Target, UrlError};

/// The machine's actions executed on a synchronous tungstenite `WebSocket` over a
/// non-blocking socket (or one with a write timeout): a write that would block
/// leaves the frame in tungstenite's buffer and reports [`Handover::Queued`].
///
/// [`disconnect`](Transport::disconnect) only records the request; the adapter
/// drops the socket when [`Outcome::disconnected`](crate::Outcome::disconnected)
/// says so.
pub struct WsTransport<'a, S> {
    /// The WebSocket the actions go to.
    pub ws: &'a mut WebSocket<S>,
    /// Set when a write could not complete: retry `flush` when the socket is
    /// writable again, then report what was queued.
    pub blocked: &'a mut bool,
}

/// What a heartbeat write (`write` or `flush` of a ping, pong or close) came to,
/// for every adapter's transport: `Ok(true)` when the bytes wait in tungstenite's
/// buffer (the socket would block or timed out: `blocked` is set, retry `flush`
/// when it is writable), `Ok(false)` when nothing waits, `Err` when the transport
/// is broken.
///
/// A ping that does not fit the capped write buffer is `Ok(false)`: the peer has
/// not read what we already sent (its pongs, most likely: a ping flood), and
/// tungstenite drops the frame. That is no transport error: the ping counts as
/// sent now, so a peer that goes on not reading is judged at the pong timeout
/// like any silent one. (Pongs never get here: tungstenite keeps one in its
/// pending slot.)
pub fn write_queued(r: Result<(), WsError>, blocked: &mut bool) -> Result<bool, WsError> {
    match r {
        Ok(()) => Ok(false),
        Err(WsError::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            *blocked = true;
            Ok(true)
        }
        Err(WsError::WriteBufferFull(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

impl<S: Read + Write> WsTransport<'_, S> {
    fn queued(&mut self, r: Result<(), WsError>) -> Result<bool, WsError> {
        write_queued(r, self.blocked)
    }

    fn write_flush(&mut self, msg: Message) -> Result<Handover, WsError> {
        let r = self.ws.write(msg);
        let mut queued = self.queued(r)?;
        let r = self.ws.flush();
        queued |= self.queued(r)?;
        Ok(if queued {
            Handover::Queued
        } else {
            Handover::Taken
        })
    }
}

impl<S: Read + Write> Transport for WsTransport<'_, S> {
    type Error = WsError;

    fn send_ping(&mut self, payload: &[u8]) -> Result<Handover, WsError> {
        self.write_flush(Message::Ping(payload.to_vec().into()))
    }

    fn send_pong(&mut self, payload: &[u8]) -> Result<(), WsError> {
        // Replaces tungstenite's own queued answer to the same ping (one pong slot),
        // so the pong is never doubled; kept in `additional_send` if the buffer is full.
        self.write_flush(Message::Pong(payload.to_vec().into()))
            .map(drop)
    }

    fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<Handover, WsError> {
        let r = if self.ws.can_write() {
            self.ws.close(Some(close_frame(code, reason)))
        } else {
            // The peer closed first and tungstenite queued the reply itself.
            self.ws.flush()
        };
        match r {
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Ok(Handover::Taken),
            r => Ok(if self.queued(r)? {
                Handover::Queued
            } else {
                Handover::Taken
            }),
        }
    }

    fn disconnect(&mut self) {}
}

/// The close frame for a machine's [`SendClose`](heartbeat_core::Action::SendClose).
pub fn close_frame(code: CloseCode, reason: &str) -> CloseFrame {
    CloseFrame {
        code: code.get().into(),
        reason: reason.into(),
    }
}

/// What a tungstenite message means to the machine. Text and binary messages are
/// [`Incoming::Data`] (the application gets them too).
pub fn incoming(msg: &Message) -> Incoming<'_> {
    match msg {
        Message::Ping(p) => Incoming::Ping(p),
        Message::Pong(p) => Incoming::Pong(p),
        Message::Close(c) => Incoming::Close(c.as_ref().map(|c| c.code.into())),
        Message::Text(_) | Message::Binary(_) | Message::Frame(_) => Incoming::Data,
    }
}

/// What a tungstenite read error means for the machine: the stream ended (EOF, an
/// I/O error, a reset, a connection already closed), or the peer broke the protocol
/// ([`Incoming::Violation`]), kept apart as RFC 6455 §7.4.1 asks: invalid UTF-8 in
/// a text message or close reason closes with 1007, a frame or message over the
/// [`Limits`] (a huge length header included) with 1009, any other violation
/// with 1002.
///
/// Handle `WouldBlock`, `Interrupted` and read timeouts before calling this: they
/// are not errors of the connection.
pub fn incoming_from_error(e: &WsError) -> Incoming<'static> {
    use ::tungstenite::error::{CapacityError, ProtocolError};
    match e {
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Io(_)
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Incoming::Ended,
        WsError::Utf8(_) => Incoming::Violation(heartbeat_core::ProtocolError::InvalidUtf8),
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => {
            Incoming::Violation(heartbeat_core::ProtocolError::TooBig)
        }
        _ => Incoming::Violation(heartbeat_core::ProtocolError::Malformed),
    }
}

/// tungstenite settings sized for heartbeat traffic: [`Limits::default`] applied
/// (see [`Limits::websocket`]): a 2 KiB read buffer instead of 128 KiB, frames
/// written at once, messages and frames up to 1 MiB, and a 4 MiB write-buffer cap
/// so a peer that floods pings without reading its pongs cannot grow memory
/// (tungstenite keeps the newest pong in its pending slot once the cap is reached).
///
/// The read buffer is allocated eagerly per connection and zero-filled before each
/// read, so its size is most of a heartbeat connection's memory. A ping or pong
/// frame is 14 bytes. tungstenite 0.29 (`FrameCodec::read_frame`) reserves room
/// for a whole frame once its header is read, so larger messages still arrive
/// whole, but each read system call takes at most this many bytes: a 64 KiB
/// message costs 32 reads instead of 16 with 4 KiB. Raise `read_buffer_size` for
/// connections that carry large messages at a high rate.
pub fn small_buffers() -> WebSocketConfig {
    Limits::default().websocket()
}

impl Target {
    /// The handshake request for this target (fresh for every attempt).
    pub fn request(&self) -> Result<Request, UrlError> {
        self.url
            .as_ref()
            .into_client_request()
            .map_err(|e| UrlError::Invalid(e.to_string()))
    }

    /// Resolves the host to the first socket address (blocking DNS for names; use
    /// IP literals on an event loop).
    pub fn resolve(&self) -> std::io::Result<SocketAddr> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::new(ErrorKind::NotFound, "host did not resolve"))
    }
}

/// [`small_buffers`]' read buffer: room for a burst of heartbeat frames (14 bytes
/// each) and small application messages in one read.
pub const READ_BUFFER: usize = 2 * 1024;
