//! [`Wire`]: the machine's actions written to an open WebSocket, a pong and the
//! ping that follows it in one write.

use heartbeat_core::CloseCode;
use heartbeat_transport::tungstenite::{close_frame, write_queued};
use heartbeat_transport::{Handover, Transport};
use tungstenite::{Error as WsError, Message, WebSocket};

use crate::sock::Sock;

/// The [`Transport`] of an open connection.
///
/// Like `heartbeat_transport::tungstenite::WsTransport`, except that a pong is
/// only placed in tungstenite's write buffer: the ping, close or data written
/// next in the same batch of actions carries it out in the same `sendto` (one
/// TCP segment), and [`finish`](Self::finish) flushes a pong that stayed alone.
/// The machine queues its pong before its ping, so when it pings early to go
/// with a pong (`HeartbeatMachine::ping_early`), both leave in one write.
///
/// Needs tungstenite's `write_buffer_size` above a control frame's size (the
/// driver's default is 4 KiB); at 0 every frame is written at once, which is
/// correct but not coalesced.
pub(crate) struct Wire<'a> {
    pub(crate) ws: &'a mut WebSocket<Sock>,
    /// Set when a write could not complete: flush when the socket is writable.
    pub(crate) blocked: &'a mut bool,
    /// A pong waits in tungstenite's buffer for the next flush.
    unflushed: bool,
}

impl<'a> Wire<'a> {
    /// The wire of `ws`.
    pub(crate) fn new(ws: &'a mut WebSocket<Sock>, blocked: &'a mut bool) -> Wire<'a> {
        Wire {
            ws,
            blocked,
            unflushed: false,
        }
    }

    /// Flushes a pong that no later write carried out.
    pub(crate) fn finish(&mut self) -> Result<(), WsError> {
        if std::mem::take(&mut self.unflushed) {
            let r = self.ws.flush();
            self.queued(r)?;
        }
        Ok(())
    }

    /// Maps a write result (see [`write_queued`]).
    fn queued(&mut self, r: Result<(), WsError>) -> Result<bool, WsError> {
        write_queued(r, self.blocked)
    }

    fn write_flush(&mut self, msg: Message) -> Result<Handover, WsError> {
        self.unflushed = false;
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

impl Transport for Wire<'_> {
    type Error = WsError;

    fn send_ping(&mut self, payload: &[u8]) -> Result<Handover, WsError> {
        self.write_flush(Message::Ping(payload.to_vec().into()))
    }

    fn send_pong(&mut self, payload: &[u8]) -> Result<(), WsError> {
        // Replaces tungstenite's own queued answer to the same ping (one pong
        // slot), so the pong is never doubled; kept in its pending slot if the
        // buffer is at its cap.
        let r = self.ws.write(Message::Pong(payload.to_vec().into()));
        self.queued(r)?;
        self.unflushed = true;
        Ok(())
    }

    fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<Handover, WsError> {
        self.unflushed = false;
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
