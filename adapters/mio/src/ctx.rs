//! [`Ctx`]: what a handler (or the owner of a driver) can do with connections.

use std::io;

use heartbeat_core::{CloseCode, Health, RttStats, State, Stats};
use tungstenite::Message;

use crate::conn::Side;
use crate::reactor::Reactor;
use crate::send_error::SendError;
use crate::slab::ConnId;
use crate::stats::DriverStats;

/// Access to the driver from a [`Handler`](crate::Handler) callback (or from
/// [`Driver::ctx`](crate::Driver::ctx) outside of one).
pub struct Ctx<'a> {
    pub(crate) reactor: &'a mut Reactor,
}

impl Ctx<'_> {
    /// Sends an application message on `id` (written at once, or queued until the
    /// socket drains). Refused with [`SendError::Backpressure`] while earlier data is
    /// still queued, so a slow or dead peer never grows memory without bound.
    pub fn send(&mut self, id: ConnId, msg: Message) -> Result<(), SendError> {
        let now = self.reactor.clock.now();
        let mut result = Err(SendError::NotFound);
        self.reactor.with_conn(id, now, |reactor, conn| {
            result = reactor.send_on(conn, id, msg, now);
        });
        result
    }

    /// Sends `msg` to every open connection that is not backed up; returns how many
    /// took it. Costs one pass over the connection table.
    pub fn broadcast(&mut self, msg: &Message) -> usize {
        let ids = self.reactor.open_ids();
        ids.into_iter()
            .filter(|&id| self.send(id, msg.clone()).is_ok())
            .count()
    }

    /// Closes `id` with `code`; no reconnect follows. An open connection hears
    /// [`Handler::on_dead`](crate::Handler::on_dead) with
    /// [`DeathReason::LocalClose`](heartbeat_core::DeathReason::LocalClose) at once,
    /// then the close handshake runs, bounded by the close timeout. A connection
    /// still connecting or waiting to reconnect is dropped at once.
    /// [`Handler::on_closed`](crate::Handler::on_closed) follows when the socket is
    /// gone.
    pub fn close(&mut self, id: ConnId, code: CloseCode) {
        let now = self.reactor.clock.now();
        self.reactor.with_conn(id, now, |reactor, conn| {
            conn.hb.close(now, code);
            reactor.drive_actions(conn, id, now);
        });
    }

    /// Opens a client connection to `url` (`ws://host:port/path`). The URL is
    /// checked and the address resolved once, now (use IP literals on an event
    /// loop); a bad URL is an [`io::ErrorKind::InvalidInput`] error saying why, and
    /// `wss://` is refused (no TLS here). The connect and the handshake run on the
    /// loop, bounded by the config's `connect_timeout`;
    /// [`Handler::on_open`](crate::Handler::on_open) follows, and the connection
    /// reconnects with the config's backoff whenever it ends by a fault.
    pub fn connect(&mut self, url: &str) -> io::Result<ConnId> {
        self.reactor.add_client(url)
    }

    /// Open WebSocket connections now.
    pub fn live(&self) -> usize {
        self.reactor.stats.live
    }

    /// Counters.
    pub fn stats(&self) -> DriverStats {
        self.reactor.stats()
    }

    /// The liveness of `id`, if it exists.
    pub fn health(&self, id: ConnId) -> Option<Health> {
        self.reactor.conns.get(id).map(|c| c.hb.health())
    }

    /// The machine state of `id` (with the reason once a connection ended), if it
    /// exists.
    pub fn state(&self, id: ConnId) -> Option<State> {
        self.reactor.conns.get(id).map(|c| c.hb.state())
    }

    /// RTT figures of `id`, if it exists.
    pub fn rtt(&self, id: ConnId) -> Option<RttStats> {
        self.reactor.conns.get(id).map(|c| c.hb.rtt())
    }

    /// The machine's counters for `id`, if it exists.
    pub fn machine_stats(&self, id: ConnId) -> Option<Stats> {
        self.reactor.conns.get(id).map(|c| c.hb.stats())
    }

    /// The peer address of `id` (for an accepted connection, the client's), if it
    /// exists: with the [`ConnId`] every callback carries, what a server-wide log or
    /// metric needs to tell clients apart.
    pub fn peer(&self, id: ConnId) -> Option<std::net::SocketAddr> {
        self.reactor.conns.get(id).and_then(|c| c.peer())
    }

    /// Which side `id` is on, if it exists.
    pub fn side(&self, id: ConnId) -> Option<Side> {
        self.reactor.conns.get(id).map(|c| c.side)
    }
}
