//! One connection: its socket in whatever stage it is, and its machine.

use std::net::SocketAddr;
use std::sync::Arc;

use heartbeat_core::{Config, HeartbeatMachine, Instant};
use heartbeat_transport::tungstenite::Target;
use mio::net::TcpStream;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::server::{NoCallback, ServerHandshake};
use tungstenite::handshake::MidHandshake;
use tungstenite::WebSocket;

/// Which end of the connection this driver plays.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// Accepted from a listener; never reconnects.
    Server,
    /// Opened with [`Driver::connect`](crate::Driver::connect); reconnects with the
    /// machine's backoff.
    Client,
}

/// The socket in its current stage. Which stage comes next is the machine's call:
/// an attempt starts on its `Connect`, the socket goes on its `Disconnect`.
pub(crate) enum Io {
    /// No socket: not started, waiting to reconnect, or finished.
    None,
    /// Server: accepted, waiting for the machine's `Connect` to start the upgrade.
    Accepted(TcpStream),
    /// Client: TCP connect in progress (waiting for writability).
    Connecting(TcpStream),
    /// Server: WebSocket handshake in progress.
    ServerHandshake(MidHandshake<ServerHandshake<TcpStream, NoCallback>>),
    /// Client: WebSocket handshake in progress.
    ClientHandshake(MidHandshake<ClientHandshake<TcpStream>>),
    /// The WebSocket is up: open, or closing (also in the background while a client
    /// waits to reconnect) until the machine says `Disconnect`.
    Open(WebSocket<TcpStream>),
}

/// Where a client connects, checked and resolved once (kept for reconnects).
pub(crate) struct Remote {
    pub(crate) target: Target,
    pub(crate) addr: SocketAddr,
}

/// Everything the driver keeps for one connection.
pub(crate) struct Conn {
    pub(crate) side: Side,
    pub(crate) hb: HeartbeatMachine<Arc<Config>>,
    pub(crate) io: Io,
    /// The wake time currently filed in the timer heap.
    pub(crate) filed: Option<Instant>,
    /// The last flush hit `WouldBlock`: data waits in tungstenite's buffer until the
    /// socket is writable again.
    pub(crate) blocked: bool,
    /// A ping waits in that buffer; report it sent when the buffer drains.
    pub(crate) ping_unflushed: bool,
    /// A close waits in that buffer; report it sent when the buffer drains.
    pub(crate) close_unflushed: bool,
    /// Counted in `live` and told to the application as open, not yet as dead.
    pub(crate) announced: bool,
    /// An attempt is in progress and not yet counted as opened or failed.
    pub(crate) attempting: bool,
    /// A read failed (the peer broke the protocol, or the stream ended): nothing
    /// more is read from this socket, which is kept until the machine lets go.
    pub(crate) read_over: bool,
    /// Client only.
    pub(crate) remote: Option<Box<Remote>>,
}

impl Conn {
    /// A connection with no socket yet.
    pub(crate) fn new(side: Side, hb: HeartbeatMachine<Arc<Config>>) -> Conn {
        Conn {
            side,
            hb,
            io: Io::None,
            filed: None,
            blocked: false,
            ping_unflushed: false,
            close_unflushed: false,
            announced: false,
            attempting: false,
            read_over: false,
            remote: None,
        }
    }

    /// The earliest moment this connection needs the loop's attention: the
    /// machine's next deadline, the only timer a connection has.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        self.hb.poll_timeout().map(|d| d.at)
    }

    /// The socket, whatever the stage.
    pub(crate) fn stream_mut(&mut self) -> Option<&mut TcpStream> {
        match &mut self.io {
            Io::Accepted(s) | Io::Connecting(s) => Some(s),
            Io::ServerHandshake(m) => Some(m.get_mut().get_mut()),
            Io::ClientHandshake(m) => Some(m.get_mut().get_mut()),
            Io::Open(ws) => Some(ws.get_mut()),
            Io::None => None,
        }
    }
}
