//! Executing the machine's actions: one call of [`heartbeat_transport::drive`]
//! (the only executor), then the I/O that belongs to the driver (drop a socket,
//! start an attempt) and the news for the application.

use std::convert::Infallible;

use heartbeat_core::Instant;
use heartbeat_transport::{drive, feed, Incoming, NoTransport, Outcome};
use tungstenite::Error as WsError;

use crate::conn::{Conn, Io};
use crate::handler::Event;
use crate::reactor::Reactor;
use crate::slab::ConnId;
use crate::wire::Wire;

impl Reactor {
    /// Executes every queued action of `conn`'s machine and acts on the outcome, in
    /// the order the machine guarantees: the death, then `Disconnect` (the socket
    /// goes), then `Connect` (the next attempt starts).
    pub(crate) fn drive_actions(&mut self, conn: &mut Conn, id: ConnId, now: Instant) {
        let out = match &mut conn.io {
            Io::Open(ws) => {
                let mut wire = Wire::new(ws, &mut conn.blocked);
                let mut out = drive(&mut conn.hb, &mut wire, self.clock);
                // A pong no later write carried out goes now; if that fails, the
                // transport is over and the machine's verdict follows at once.
                if !out.disconnected && out.error.is_none() {
                    if let Err(e) = wire.finish() {
                        let _ = feed(&mut conn.hb, now, Incoming::Ended);
                        out = merge(out, drive(&mut conn.hb, &mut wire, self.clock));
                        out.error.get_or_insert(e);
                    }
                }
                out
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

/// Two outcomes of driving one connection in a row, as one.
fn merge(a: Outcome<WsError>, b: Outcome<WsError>) -> Outcome<WsError> {
    Outcome {
        dead: a.dead.or(b.dead),
        disconnected: a.disconnected || b.disconnected,
        connect: a.connect.or(b.connect),
        ping_queued: (a.ping_queued || b.ping_queued) && !b.disconnected,
        close_queued: (a.close_queued || b.close_queued) && !b.disconnected,
        close_sent: a.close_sent || b.close_sent,
        error: a.error.or(b.error),
    }
}
