//! Executing the machine's actions: one call of [`heartbeat_transport::drive`]
//! (the only executor), then the I/O that belongs to the driver (drop a socket,
//! start an attempt) and the news for the application.

use std::convert::Infallible;

use heartbeat_core::Instant;
use heartbeat_transport::tungstenite::WsTransport;
use heartbeat_transport::{drive, NoTransport, Outcome};
use tungstenite::Error as WsError;

use crate::conn::{Conn, Io};
use crate::handler::Event;
use crate::reactor::Reactor;
use crate::slab::ConnId;

impl Reactor {
    /// Executes every queued action of `conn`'s machine and acts on the outcome, in
    /// the order the machine guarantees: the death, then `Disconnect` (the socket
    /// goes), then `Connect` (the next attempt starts).
    pub(crate) fn drive_actions(&mut self, conn: &mut Conn, id: ConnId, now: Instant) {
        let out = match &mut conn.io {
            Io::Open(ws) => {
                let mut transport = WsTransport {
                    ws,
                    blocked: &mut conn.blocked,
                };
                drive(&mut conn.hb, &mut transport, self.clock)
            }
            // Connecting, handshaking or between sockets: the machine asks for no
            // write then, only for a verdict, a disconnect or a connect.
            _ => without_socket(drive(&mut conn.hb, &mut NoTransport, now)),
        };
        if out.ping_queued {
            conn.ping_unflushed = true;
            self.stats.pings_queued += 1;
        }
        if out.close_queued {
            conn.close_unflushed = true;
            self.stats.closes_queued += 1;
        }
        if let Some(reason) = out.dead {
            self.stats.deaths += 1;
            if reason.is_fault() {
                self.stats.fault_deaths += 1;
            }
            self.withdraw(conn);
            self.pending.push_back(Event::Dead(id, reason));
        }
        if out.disconnected {
            self.disconnect(conn);
        }
        if out.connect.is_some() {
            self.start_attempt(conn, id, now);
        }
    }
}

/// The outcome of driving with no socket, in the socket's error type (nothing can
/// fail without a socket).
fn without_socket(out: Outcome<Infallible>) -> Outcome<WsError> {
    Outcome {
        dead: out.dead,
        disconnected: out.disconnected,
        connect: out.connect,
        ping_queued: out.ping_queued,
        close_queued: out.close_queued,
        close_sent: out.close_sent,
        error: None,
    }
}
