//! The minimal contract for driving a [`HeartbeatMachine`] over a transport of your
//! own: a raw TCP line protocol, a QUIC stream, a serial link, a WebSocket library
//! this project does not wrap.
//!
//! An adapter does three things and decides nothing:
//! 1. **Clock.** Read the time once per loop turn ([`Clock::now`]).
//! 2. **Input.** Tell the machine what arrived ([`feed`] with an [`Incoming`], or
//!    the machine's `handle_*` methods directly), everything readable *before*
//!    expiring deadlines.
//! 3. **Output.** Execute what the machine asks: implement [`Transport`] (four
//!    methods) and call [`drive`] after every input, which drains
//!    [`poll_action`](HeartbeatMachine::poll_action), executes each action and
//!    returns what the application must hear ([`Outcome`]).
//!
//! Then sleep (or block in a read) until
//! [`poll_timeout`](HeartbeatMachine::poll_timeout) and call
//! [`handle_timeout`](HeartbeatMachine::handle_timeout). That is the whole loop:
//!
//! ```
//! use std::time::Duration;
//! use heartbeat_core::{CloseCode, Config, HeartbeatMachine, Role};
//! use heartbeat_transport::{drive, feed, Clock, Handover, Incoming, Transport};
//!
//! /// A transport whose peer answers every ping at once (a stand-in for a socket).
//! #[derive(Default)]
//! struct Echo { answer: Option<Vec<u8>> }
//! impl Transport for Echo {
//!     type Error = std::io::Error;
//!     fn send_ping(&mut self, payload: &[u8]) -> Result<Handover, Self::Error> {
//!         self.answer = Some(payload.to_vec());
//!         Ok(Handover::Taken) // written: the pong timer starts now
//!     }
//!     fn send_pong(&mut self, _payload: &[u8]) -> Result<(), Self::Error> { Ok(()) }
//!     fn send_close(&mut self, _code: CloseCode, _reason: &str) -> Result<(), Self::Error> { Ok(()) }
//!     fn abort(&mut self) {}
//! }
//!
//! let config = Config::builder()
//!     .role(Role::Server)
//!     .ping_interval(Duration::from_millis(10))
//!     .pong_timeout(Duration::from_millis(10))
//!     .build()?;
//! let clock = Clock::new();
//! let mut hb = HeartbeatMachine::new(config, 1);
//! let mut link = Echo::default();
//! hb.handle_connected(clock.now());
//! for _ in 0..4 {
//!     let outcome = drive(&mut hb, &mut link, clock.now());
//!     assert!(outcome.dead.is_none());
//!     // Input first: here, the pong the echo peer "sent".
//!     if let Some(p) = link.answer.take() {
//!         feed(&mut hb, clock.now(), Incoming::Pong(&p));
//!         continue;
//!     }
//!     // Then the timer.
//!     let deadline = hb.poll_timeout().expect("open");
//!     std::thread::sleep(clock.until(deadline.at));
//!     hb.handle_timeout(clock.now());
//! }
//! assert!(hb.stats().pongs_matched >= 1);
//! # Ok::<(), heartbeat_core::ConfigError>(())
//! ```
//!
//! `examples/json_lines.rs` carries the heartbeat as newline-delimited JSON over a
//! plain `TcpStream` in about fifty lines; the crate README walks through it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use core::borrow::Borrow;
use core::time::Duration;

use heartbeat_core::{Action, CloseCode, Config, DeathReason, HeartbeatMachine, Instant};

/// What a transport must be able to do for the heartbeat: the four actions a
/// [`HeartbeatMachine`] can ask for that touch the wire.
///
/// Implement it on whatever owns the write half of your connection. Every method
/// should be quick: write into a buffer or a non-blocking socket, never wait for
/// the peer. An `Err` means the transport is broken; [`drive`] then reports the
/// connection as ended ([`HeartbeatMachine::handle_transport_closed`]) and calls
/// [`abort`](Transport::abort).
pub trait Transport {
    /// What a failed write looks like (often `std::io::Error`).
    type Error;

    /// Send a ping carrying `payload` (at most 125 bytes: the machine's 8-byte
    /// sequence number). Return [`Handover::Taken`] if the bytes left your process
    /// (written to the socket), or [`Handover::Queued`] if they wait in a buffer: then
    /// call [`HeartbeatMachine::handle_ping_sent`] yourself once that buffer is
    /// flushed, so a ping stuck behind a large write is not a false death.
    fn send_ping(&mut self, payload: &[u8]) -> Result<Handover, Self::Error>;

    /// Send a pong echoing `payload`, the payload of the peer's ping.
    fn send_pong(&mut self, payload: &[u8]) -> Result<(), Self::Error>;

    /// Send a close carrying `code` and `reason` (if your protocol has a close
    /// message; otherwise do nothing or half-close the write side). Keep reading
    /// afterwards: the machine waits, bounded by its close timeout, for the peer's
    /// close or the end of the stream.
    fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Self::Error>;

    /// Drop the connection now, without ceremony (e.g. `TcpStream::shutdown`).
    /// Called once the close handshake timed out, or after a write failed.
    fn abort(&mut self);
}

/// Where a ping went when [`Transport::send_ping`] returned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Handover {
    /// Written to the transport: [`drive`] reports it sent at once.
    Taken,
    /// Buffered behind other data: the caller reports
    /// [`HeartbeatMachine::handle_ping_sent`] when the buffer drains.
    Queued,
}

/// A reconnect the machine asked for (client role).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Reconnect {
    /// Wait this long, then connect and report
    /// [`handle_connected`](HeartbeatMachine::handle_connected) or
    /// [`handle_connect_failed`](HeartbeatMachine::handle_connect_failed).
    pub after: Duration,
    /// Which consecutive attempt this is, from 1.
    pub attempt: u32,
}

/// What one [`drive`] call did that the adapter or the application must know.
#[derive(Debug)]
#[must_use = "a death or a reconnect in the outcome must reach the application"]
pub struct Outcome<E> {
    /// The connection is over: tell the application now (exactly once per connection).
    pub dead: Option<DeathReason>,
    /// The client should connect again after a delay.
    pub reconnect: Option<Reconnect>,
    /// A ping is waiting in a buffer ([`Handover::Queued`]): report
    /// `handle_ping_sent` when it is flushed.
    pub ping_queued: bool,
    /// A close was handed to the transport.
    pub close_sent: bool,
    /// [`Transport::abort`] was called (the close timed out, or a write failed).
    pub aborted: bool,
    /// The first write error, if a write failed. The machine has already been told
    /// the transport closed.
    pub error: Option<E>,
}

impl<E> Default for Outcome<E> {
    fn default() -> Self {
        Outcome {
            dead: None,
            reconnect: None,
            ping_queued: false,
            close_sent: false,
            aborted: false,
            error: None,
        }
    }
}

/// Drains every queued action of `hb` and executes it on `transport`.
///
/// Call it after every `handle_*` call (and after [`feed`]). `now` is the time of
/// that call; it is used to report pings as sent and, when a write fails, to report
/// the transport closed (whose consequences, a death and maybe a reconnect, are
/// drained in the same call). After a failure nothing more is written.
pub fn drive<C, T>(
    hb: &mut HeartbeatMachine<C>,
    transport: &mut T,
    now: Instant,
) -> Outcome<T::Error>
where
    C: Borrow<Config>,
    T: Transport + ?Sized,
{
    let mut out = Outcome::default();
    while let Some(action) = hb.poll_action() {
        let broken = out.error.is_some();
        let result = match action {
            Action::SendPing(p) if !broken => match transport.send_ping(p.as_slice()) {
                Ok(Handover::Taken) => {
                    hb.handle_ping_sent(now);
                    Ok(())
                }
                Ok(Handover::Queued) => {
                    out.ping_queued = true;
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Action::SendPong(p) if !broken => transport.send_pong(p.as_slice()),
            Action::SendClose { code, reason } if !broken => {
                let r = transport.send_close(code, reason);
                out.close_sent = r.is_ok();
                r
            }
            Action::Abort if !broken => {
                transport.abort();
                out.aborted = true;
                Ok(())
            }
            Action::Dead(reason) => {
                out.dead.get_or_insert(reason);
                Ok(())
            }
            Action::Reconnect { after, attempt } => {
                out.reconnect = Some(Reconnect { after, attempt });
                Ok(())
            }
            // The transport is already broken: writes are pointless.
            _ => Ok(()),
        };
        if let Err(e) = result {
            out.error = Some(e);
            out.ping_queued = false;
            transport.abort();
            out.aborted = true;
            hb.handle_transport_closed(now);
        }
    }
    out
}

/// One thing that arrived from the peer, in the terms the machine understands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Incoming<'a> {
    /// The peer pinged with this payload (the machine queues the pong).
    Ping(&'a [u8]),
    /// The peer answered a ping with this payload.
    Pong(&'a [u8]),
    /// Application data (any message that is not a heartbeat).
    Data,
    /// The peer's close, with its code if it carried one.
    Close(Option<u16>),
    /// The stream ended (EOF, reset, read error) without a close.
    Ended,
    /// The peer sent something the protocol forbids.
    Malformed,
}

/// What a tungstenite read error means for the machine: the stream ended (EOF, an
/// I/O error, a reset, a connection already closed), or the peer broke the protocol
/// ([`Incoming::Malformed`], which closes with 1002).
///
/// Handle `WouldBlock`, `Interrupted` and read timeouts before calling this: they
/// are not errors of the connection. Shared by the tungstenite adapters so they
/// agree on the verdict (feature `tungstenite`).
#[cfg(feature = "tungstenite")]
pub fn incoming_from_tungstenite_error(e: &tungstenite::Error) -> Incoming<'static> {
    use tungstenite::error::ProtocolError;
    use tungstenite::Error as E;
    match e {
        E::ConnectionClosed
        | E::AlreadyClosed
        | E::Io(_)
        | E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Incoming::Ended,
        _ => Incoming::Malformed,
    }
}

/// Tells the machine what arrived. Call [`drive`] afterwards.
pub fn feed<C: Borrow<Config>>(hb: &mut HeartbeatMachine<C>, now: Instant, incoming: Incoming<'_>) {
    match incoming {
        Incoming::Ping(p) => hb.handle_ping(now, p),
        Incoming::Pong(p) => hb.handle_pong(now, p),
        Incoming::Data => hb.handle_frame(now),
        Incoming::Close(code) => hb.handle_close(now, code),
        Incoming::Ended => hb.handle_transport_closed(now),
        Incoming::Malformed => hb.handle_protocol_error(now),
    }
}

/// Whether the machine still needs its transport; the same as
/// [`HeartbeatMachine::needs_transport`], kept here so adapters written against this
/// crate read naturally. Call it after [`drive`] drained the actions.
pub fn needs_transport<C: Borrow<Config>>(hb: &HeartbeatMachine<C>) -> bool {
    hb.needs_transport()
}

/// Maps `std::time::Instant` to the machine's [`Instant`] (nanoseconds since the
/// clock's creation) and back.
///
/// One clock per driver; every machine the driver owns must be fed from the same one.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Clock {
        Clock {
            origin: std::time::Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.from_std(std::time::Instant::now())
    }

    /// Converts a `std::time::Instant` (saturating at the origin).
    pub fn from_std(&self, t: std::time::Instant) -> Instant {
        Instant::from_duration(t.saturating_duration_since(self.origin))
    }

    /// Converts back to `std::time::Instant` (saturating far in the future).
    pub fn to_std(&self, t: Instant) -> std::time::Instant {
        self.origin
            .checked_add(t.as_duration())
            .unwrap_or_else(|| self.origin + Duration::from_secs(86_400 * 365 * 100))
    }

    /// Time left until `deadline` (zero if it passed).
    pub fn until(&self, deadline: Instant) -> Duration {
        deadline - self.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heartbeat_core::{Role, TimerKind};

    #[derive(Default)]
    struct Rec {
        log: Vec<String>,
        fail_pings: bool,
        queue: bool,
    }

    impl Transport for Rec {
        type Error = &'static str;
        fn send_ping(&mut self, p: &[u8]) -> Result<Handover, &'static str> {
            self.log.push(format!("ping {}", p.len()));
            if self.fail_pings {
                return Err("broken pipe");
            }
            Ok(if self.queue {
                Handover::Queued
            } else {
                Handover::Taken
            })
        }
        fn send_pong(&mut self, p: &[u8]) -> Result<(), &'static str> {
            self.log.push(format!("pong {p:?}"));
            Ok(())
        }
        fn send_close(&mut self, code: CloseCode, _: &str) -> Result<(), &'static str> {
            self.log.push(format!("close {code}"));
            Ok(())
        }
        fn abort(&mut self) {
            self.log.push("abort".into());
        }
    }

    fn machine(role: Role) -> HeartbeatMachine {
        let cfg = Config::builder()
            .role(role)
            .ping_interval(Duration::from_millis(100))
            .pong_timeout(Duration::from_millis(100))
            .close_timeout(Duration::from_millis(50))
            .build()
            .unwrap();
        let mut hb = HeartbeatMachine::new(cfg, 3);
        hb.handle_connected(Instant::ZERO);
        hb
    }

    #[test]
    fn a_taken_ping_starts_the_pong_timer_at_once() {
        let mut hb = machine(Role::Server);
        let mut t = Rec::default();
        hb.handle_timeout(Instant::from_millis(100));
        let out = drive(&mut hb, &mut t, Instant::from_millis(100));
        assert_eq!(t.log, ["ping 8"]);
        assert!(!out.ping_queued && out.dead.is_none());
        let d = hb.poll_timeout().unwrap();
        assert_eq!(
            (d.at, d.kind),
            (Instant::from_millis(200), TimerKind::PongTimeout)
        );
    }

    #[test]
    fn a_queued_ping_is_left_for_the_caller_to_report() {
        let mut hb = machine(Role::Server);
        let mut t = Rec {
            queue: true,
            ..Rec::default()
        };
        hb.handle_timeout(Instant::from_millis(100));
        let out = drive(&mut hb, &mut t, Instant::from_millis(100));
        assert!(out.ping_queued);
        hb.handle_ping_sent(Instant::from_millis(150));
        assert_eq!(hb.poll_timeout().unwrap().at, Instant::from_millis(250));
    }

    #[test]
    fn a_silent_peer_is_reported_dead_closed_then_aborted() {
        let mut hb = machine(Role::Server);
        let mut t = Rec::default();
        hb.handle_timeout(Instant::from_millis(100));
        let _ = drive(&mut hb, &mut t, Instant::from_millis(100));
        hb.handle_timeout(Instant::from_millis(200));
        let out = drive(&mut hb, &mut t, Instant::from_millis(200));
        assert!(matches!(out.dead, Some(DeathReason::PongTimeout { .. })));
        assert!(out.close_sent && !out.aborted);
        assert!(needs_transport(&hb), "the close handshake still needs it");
        hb.handle_timeout(Instant::from_millis(250));
        let out = drive(&mut hb, &mut t, Instant::from_millis(250));
        assert!(out.aborted && out.dead.is_none());
        assert!(!needs_transport(&hb));
        assert_eq!(t.log, ["ping 8", "close 1011", "abort"]);
    }

    #[test]
    fn a_write_error_ends_the_connection_and_schedules_a_reconnect() {
        let mut hb = machine(Role::Client);
        let mut t = Rec {
            fail_pings: true,
            ..Rec::default()
        };
        hb.handle_timeout(Instant::from_millis(100));
        let out = drive(&mut hb, &mut t, Instant::from_millis(100));
        assert_eq!(out.error, Some("broken pipe"));
        assert!(out.aborted);
        assert_eq!(out.dead, Some(DeathReason::TransportClosed));
        assert_eq!(out.reconnect.map(|r| r.attempt), Some(1));
        assert!(!needs_transport(&hb));
    }

    #[test]
    fn feed_maps_every_input() {
        let mut hb = machine(Role::Server);
        let mut t = Rec::default();
        feed(&mut hb, Instant::from_millis(1), Incoming::Ping(b"abc"));
        let _ = drive(&mut hb, &mut t, Instant::from_millis(1));
        assert_eq!(t.log, ["pong [97, 98, 99]"]);
        feed(
            &mut hb,
            Instant::from_millis(2),
            Incoming::Close(Some(1000)),
        );
        let out = drive(&mut hb, &mut t, Instant::from_millis(2));
        assert_eq!(out.dead, Some(DeathReason::PeerClosed { code: Some(1000) }));
        assert!(!needs_transport(&hb));
    }

    #[test]
    fn clock_round_trips() {
        let c = Clock::new();
        let t = Instant::from_millis(1234);
        assert_eq!(c.from_std(c.to_std(t)), t);
    }
}
