//! The [`Transport`] trait: what the machine's actions need from a connection.

use heartbeat_core::CloseCode;

/// What a transport must be able to do for the heartbeat: the actions a
/// [`HeartbeatMachine`](heartbeat_core::HeartbeatMachine) can ask for that touch
/// the wire.
///
/// Implement it on whatever owns the write half of your connection. Every method
/// should be quick: write into a buffer or a non-blocking socket, never wait for
/// the peer. An `Err` means the transport is broken; [`drive`](crate::drive) then
/// reports the connection as ended
/// ([`handle_transport_closed`](heartbeat_core::HeartbeatMachine::handle_transport_closed))
/// and the machine's [`Action::Disconnect`](heartbeat_core::Action::Disconnect)
/// follows.
pub trait Transport {
    /// What a failed write looks like (often `std::io::Error`).
    type Error;

    /// Send a ping carrying `payload` (at most 125 bytes: the machine's 8-byte
    /// sequence number). Return [`Handover::Taken`] if the bytes left your process
    /// (written to the socket), or [`Handover::Queued`] if they wait in a buffer:
    /// then call `handle_ping_sent` yourself once that buffer is flushed, so a ping
    /// stuck behind a large write is not a false death.
    fn send_ping(&mut self, payload: &[u8]) -> Result<Handover, Self::Error>;

    /// Send a pong echoing `payload`, the payload of the peer's ping.
    fn send_pong(&mut self, payload: &[u8]) -> Result<(), Self::Error>;

    /// Send a close carrying `code` and `reason` (if your protocol has a close
    /// message; otherwise half-close the write side). Keep reading afterwards: the
    /// machine says when to let go. Return [`Handover::Queued`] if the close waits
    /// in a buffer, and call `handle_close_sent` once it is flushed.
    fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<Handover, Self::Error>;

    /// Let go of the connection now (e.g. `TcpStream::shutdown`, or drop it). The
    /// machine is done with it: the close handshake finished or timed out, the
    /// next attempt starts, or the attempt in progress failed. Called once per
    /// transport, possibly after a failed write.
    fn disconnect(&mut self);
}

/// Where a ping or a close went when the [`Transport`] returned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Handover {
    /// Written to the transport: [`drive`](crate::drive) reports it sent at once.
    Taken,
    /// Buffered behind other data: the caller reports it sent when the buffer
    /// drains.
    Queued,
}

/// No transport at all (between attempts, or a driver that has not connected yet):
/// every write is a no-op. Useful to drain a machine's actions when nothing is
/// connected, e.g. after a failed attempt.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTransport;

impl Transport for NoTransport {
    type Error = core::convert::Infallible;
    fn send_ping(&mut self, _: &[u8]) -> Result<Handover, Self::Error> {
        Ok(Handover::Queued)
    }
    fn send_pong(&mut self, _: &[u8]) -> Result<(), Self::Error> {
        Ok(())
    }
    fn send_close(&mut self, _: CloseCode, _: &str) -> Result<Handover, Self::Error> {
        Ok(Handover::Queued)
    }
    fn disconnect(&mut self) {}
}
