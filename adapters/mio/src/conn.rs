//! One connection: its socket in whatever stage it is, its machine, its timers.

use std::io::{self, ErrorKind};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;

use heartbeat_core::{CloseCode, Config, HeartbeatMachine, Instant};
use heartbeat_transport::{Handover, Transport};
use mio::net::TcpStream;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::server::{NoCallback, ServerHandshake};
use tungstenite::handshake::MidHandshake;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Error as WsError, Message, WebSocket};

/// Which end of the connection this driver plays.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// Accepted from a listener; never reconnects.
    Server,
    /// Opened with [`Driver::connect`](crate::Driver::connect); reconnects with the
    /// machine's backoff.
    Client,
}

/// The socket in its current stage.
pub(crate) enum Io {
    /// Client: TCP connect in progress (waiting for writability).
    Connecting(TcpStream),
    /// Server: WebSocket handshake in progress.
    ServerHandshake(MidHandshake<ServerHandshake<TcpStream, NoCallback>>),
    /// Client: WebSocket handshake in progress.
    ClientHandshake(MidHandshake<ClientHandshake<TcpStream>>),
    /// The WebSocket is up (or closing).
    Open(WebSocket<TcpStream>),
    /// The connection is over but a close frame is still in the send buffer: keep
    /// the socket until it is flushed or `linger_until` passes.
    Draining(WebSocket<TcpStream>),
    /// No socket: waiting to reconnect (client).
    Idle,
}

/// Where a client connects (kept for reconnects).
pub(crate) struct Target {
    pub(crate) url: Box<str>,
    pub(crate) addr: SocketAddr,
}

pub(crate) struct Conn {
    pub(crate) side: Side,
    pub(crate) hb: HeartbeatMachine<Arc<Config>>,
    pub(crate) io: Io,
    /// The wake time currently filed in the timer heap.
    pub(crate) filed: Option<Instant>,
    /// Deadline of the TCP connect + WebSocket handshake in progress.
    pub(crate) handshake_until: Option<Instant>,
    /// When to reconnect (client, while idle).
    pub(crate) reconnect_at: Option<Instant>,
    /// When to give up flushing a draining close.
    pub(crate) linger_until: Option<Instant>,
    /// The last flush hit `WouldBlock`: data waits in tungstenite's buffer until the
    /// socket is writable again.
    pub(crate) blocked: bool,
    /// A ping waits in that buffer; report it sent when the buffer drains.
    pub(crate) ping_unflushed: bool,
    /// Whether the application was told about this connection being open.
    pub(crate) announced: bool,
    pub(crate) target: Option<Box<Target>>,
}

impl Conn {
    /// The earliest moment this connection needs the loop's attention.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        let machine = match self.io {
            Io::Open(_) => self.hb.poll_timeout().map(|d| d.at),
            _ => None,
        };
        [
            machine,
            self.handshake_until,
            self.reconnect_at,
            self.linger_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The socket, whatever the stage.
    pub(crate) fn stream_mut(&mut self) -> Option<&mut TcpStream> {
        match &mut self.io {
            Io::Connecting(s) => Some(s),
            Io::ServerHandshake(m) => Some(m.get_mut().get_mut()),
            Io::ClientHandshake(m) => Some(m.get_mut().get_mut()),
            Io::Open(ws) | Io::Draining(ws) => Some(ws.get_mut()),
            Io::Idle => None,
        }
    }
}

/// The machine's view of an open WebSocket: executes its actions, never blocks.
pub(crate) struct WsTransport<'a> {
    pub(crate) ws: &'a mut WebSocket<TcpStream>,
    pub(crate) blocked: &'a mut bool,
}

impl WsTransport<'_> {
    /// Maps a write result: `WouldBlock` means "queued in tungstenite's buffer".
    fn queued(&mut self, r: Result<(), WsError>) -> Result<bool, WsError> {
        match r {
            Ok(()) => Ok(false),
            Err(WsError::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                *self.blocked = true;
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    fn write_flush(&mut self, msg: Message) -> Result<bool, WsError> {
        let r = self.ws.write(msg);
        let queued = self.queued(r)?;
        let r = self.ws.flush();
        Ok(self.queued(r)? || queued)
    }
}

impl Transport for WsTransport<'_> {
    type Error = WsError;

    fn send_ping(&mut self, payload: &[u8]) -> Result<Handover, WsError> {
        let queued = self.write_flush(Message::Ping(payload.to_vec().into()))?;
        Ok(if queued {
            Handover::Queued
        } else {
            Handover::Taken
        })
    }

    fn send_pong(&mut self, payload: &[u8]) -> Result<(), WsError> {
        // Replaces tungstenite's own queued answer to the same ping (one pong slot),
        // so the pong is never doubled; kept in `additional_send` if the buffer is full.
        self.write_flush(Message::Pong(payload.to_vec().into()))
            .map(drop)
    }

    fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<(), WsError> {
        if !self.ws.can_write() {
            // The peer closed first and tungstenite queued the reply itself.
            return match self.ws.flush() {
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Ok(()),
                r => self.queued(r).map(drop),
            };
        }
        let frame = CloseFrame {
            code: code.get().into(),
            reason: reason.into(),
        };
        let r = self.ws.close(Some(frame));
        self.queued(r).map(drop)
    }

    fn abort(&mut self) {
        let _ = self.ws.get_ref().shutdown(Shutdown::Both);
    }
}

/// Whether an I/O error only means "not now".
pub(crate) fn would_block(e: &io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
}
