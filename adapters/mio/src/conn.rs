//! One connection: its socket in whatever stage it is, and its machine.

use std::net::SocketAddr;
use std::sync::Arc;

use heartbeat_core::{Config, HeartbeatMachine, Instant};
use heartbeat_transport::tungstenite::Target;
use mio::net::TcpStream;
use tungstenite::WebSocket;

use crate::sock::Sock;
use crate::upgrade::Upgrade;

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
// `Open` is where a connection spends its life: boxing it would add an allocation
// and an indirection per connection to save bytes only in the brief other stages.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Io {
    /// No socket: not started, waiting to reconnect, or finished.
    None,
    /// Server: accepted, waiting for the machine's `Connect` to start the upgrade.
    Accepted(Sock),
    /// Client: TCP connect in progress (waiting for writability).
    Connecting(Sock),
    /// WebSocket handshake in progress, either role (boxed: it is brief, and the
    /// open connection is what stays in memory).
    Upgrading(Box<Upgrade>),
    /// The WebSocket is up: open, or closing (also in the background while a client
    /// waits to reconnect) until the machine says `Disconnect`.
    Open(WebSocket<Sock>),
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
    /// Client only; shared by the connections to one URL.
    pub(crate) remote: Option<Arc<Remote>>,
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

    /// The peer's address: the socket's, or (a client between connections) the
    /// address it connects to.
    pub(crate) fn peer(&self) -> Option<SocketAddr> {
        let socket = match &self.io {
            Io::Accepted(s) | Io::Connecting(s) => s.peer_addr().ok(),
            Io::Upgrading(u) => u.sock.peer_addr().ok(),
            Io::Open(ws) => ws.get_ref().peer_addr().ok(),
            Io::None => None,
        };
        socket.or(self.remote.as_ref().map(|r| r.addr))
    }

    /// The socket, whatever the stage.
    pub(crate) fn sock_mut(&mut self) -> Option<&mut Sock> {
        match &mut self.io {
            Io::Accepted(s) | Io::Connecting(s) => Some(s),
            Io::Upgrading(u) => Some(&mut u.sock),
            Io::Open(ws) => Some(ws.get_mut()),
            Io::None => None,
        }
    }

    /// The TCP socket, whatever the stage (to deregister it).
    pub(crate) fn stream_mut(&mut self) -> Option<&mut TcpStream> {
        self.sock_mut().map(Sock::tcp)
    }
}
