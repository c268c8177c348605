//! Bytes in and out of an open WebSocket: every readable frame fed to the machine,
//! buffered writes flushed (and reported to the machine), application sends.

use std::io::ErrorKind;

use heartbeat_core::{Instant, PingOutcome, PongOutcome, State};
use heartbeat_transport::tungstenite::{incoming, incoming_from_error};
use heartbeat_transport::{feed, Fed, Incoming};
use tungstenite::{Error as WsError, Message};

use crate::conn::{Conn, Io};
use crate::handler::Event;
use crate::reactor::Reactor;
use crate::send_error::SendError;
use crate::slab::ConnId;

impl Reactor {
    /// Reads until `WouldBlock`, feeding each frame to the machine and executing its
    /// actions at once (so its pong replaces tungstenite's queued one before any
    /// flush, and a ping pulled forward leaves with it). Stops when the machine
    /// lets go of the socket.
    ///
    /// `WouldBlock` usually comes without a system call: after a short read the
    /// socket is known to be drained until its next readable event (`sock.rs`), so
    /// a readiness event costs one `recvfrom`, and a deadline with no readiness
    /// since the last one costs none.
    pub(crate) fn read_input(&mut self, conn: &mut Conn, id: ConnId, now: Instant) {
        loop {
            let Io::Open(ws) = &mut conn.io else { return };
            if conn.read_over {
                return;
            }
            let msg = match ws.read() {
                Ok(msg) => msg,
                Err(WsError::Io(e)) if e.kind() == ErrorKind::WouldBlock => return,
                Err(WsError::Io(e)) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Nothing more is read after a read error (a violation leaves
                    // tungstenite mid-frame, and reading on would trip its debug
                    // assertions). After a violation the socket is kept for the
                    // close window: let go at once, with the peer's bytes unread,
                    // and the kernel resets the connection, dropping our close.
                    conn.read_over = true;
                    let incoming = incoming_from_error(&e);
                    let _ = feed(&mut conn.hb, now, incoming);
                    if !matches!(incoming, Incoming::Violation(_)) {
                        conn.hb.handle_transport_closed(now);
                    }
                    self.drive_actions(conn, id, now);
                    return;
                }
            };
            match feed(&mut conn.hb, now, incoming(&msg)) {
                Fed::Pong(PongOutcome::Matched { rtt: Some(rtt), .. }) => {
                    // Every connection's round trips feed the loop's systemic delay.
                    self.lag.record_rtt(self.clock.to_std(now), rtt);
                }
                Fed::Ping(PingOutcome::Answered) => {
                    // Our own ping, if due soon, goes out with the pong.
                    if let Some(n) = self.ping_with_pong {
                        let within = conn.hb.ping_interval() / n;
                        let _ = conn.hb.ping_early(now, within);
                    }
                }
                _ => {}
            }
            // Data after the verdict (while closing or draining) is not the
            // application's.
            if matches!(msg, Message::Text(_) | Message::Binary(_))
                && conn.hb.state() == State::Open
            {
                self.pending.push_back(Event::Message(id, msg));
            }
            self.drive_actions(conn, id, now);
        }
    }

    /// The socket became writable while data was queued: flush it, and report a
    /// ping or close that was waiting as sent.
    pub(crate) fn flush(&mut self, conn: &mut Conn, id: ConnId, now: Instant) {
        let Io::Open(ws) = &mut conn.io else { return };
        let flushed = ws.flush();
        // The time the bytes left, read after the write: a pause before it must not
        // backdate the pong timer.
        let now = self.clock.now().max(now);
        match flushed {
            Ok(()) => {
                conn.blocked = false;
                if std::mem::take(&mut conn.ping_unflushed) {
                    conn.hb.handle_ping_sent(now);
                }
                if std::mem::take(&mut conn.close_unflushed) {
                    conn.hb.handle_close_sent(now);
                }
            }
            Err(WsError::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            // A server's reply to the peer's close went out: tungstenite ends the
            // connection there. The machine hears the close was sent and lets go.
            Err(WsError::ConnectionClosed) if std::mem::take(&mut conn.close_unflushed) => {
                conn.blocked = false;
                conn.hb.handle_close_sent(now);
            }
            Err(e) => {
                let _ = feed(&mut conn.hb, now, incoming_from_error(&e));
            }
        }
        self.drive_actions(conn, id, now);
    }

    /// Writes an application message, refused while earlier data still waits.
    pub(crate) fn send_on(
        &mut self,
        conn: &mut Conn,
        id: ConnId,
        msg: Message,
        now: Instant,
    ) -> Result<(), SendError> {
        let Io::Open(ws) = &mut conn.io else {
            return Err(SendError::NotOpen);
        };
        if conn.hb.state() != State::Open {
            return Err(SendError::NotOpen);
        }
        if conn.blocked {
            self.stats.sends_refused += 1;
            return Err(SendError::Backpressure);
        }
        match ws.write(msg).and_then(|()| ws.flush()) {
            Ok(()) => Ok(()),
            Err(WsError::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                conn.blocked = true;
                Ok(())
            }
            Err(WsError::WriteBufferFull(_)) => {
                self.stats.sends_refused += 1;
                Err(SendError::TooLarge)
            }
            Err(e) => {
                let _ = feed(&mut conn.hb, now, Incoming::Ended);
                self.drive_actions(conn, id, now);
                Err(SendError::Failed(e))
            }
        }
    }
}
