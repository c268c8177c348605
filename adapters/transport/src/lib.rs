//! The minimal contract for driving a
//! [`HeartbeatMachine`](heartbeat_core::HeartbeatMachine) over a transport of your
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
//!    [`poll_action`](heartbeat_core::HeartbeatMachine::poll_action), executes
//!    each action and returns what the adapter must act on ([`Outcome`]: a death
//!    to report, a transport to drop, an attempt to start).
//!
//! Then sleep (or block in a read) until
//! [`poll_timeout`](heartbeat_core::HeartbeatMachine::poll_timeout) and call
//! [`handle_timeout`](heartbeat_core::HeartbeatMachine::handle_timeout). That is
//! the whole loop:
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
//!     fn send_close(&mut self, _code: CloseCode, _reason: &str) -> Result<Handover, Self::Error> {
//!         Ok(Handover::Taken)
//!     }
//!     fn disconnect(&mut self) {}
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
//! hb.handle_connected(clock.now()); // the link is already open
//! for _ in 0..4 {
//!     let outcome = drive(&mut hb, &mut link, clock.now());
//!     assert!(outcome.dead.is_none());
//!     // Input first: here, the pong the echo peer "sent".
//!     if let Some(p) = link.answer.take() {
//!         let _ = feed(&mut hb, clock.now(), Incoming::Pong(&p));
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
//!
//! With the `tungstenite` feature, the [`tungstenite`](mod@crate::tungstenite)
//! module holds the glue every tungstenite-based driver shares.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod accept;
mod clock;
mod drive;
mod lag;
mod transport;
#[cfg(feature = "tungstenite")]
pub mod tungstenite;

pub use accept::{is_exhaustion, AcceptBackoff, AcceptPause};
pub use clock::{seed, Clock};
pub use drive::{drive, feed, Fed, Incoming, Now, Outcome};
pub use lag::{LagMeter, SYSTEMIC_MIN_SAMPLES};
pub use transport::{Handover, NoTransport, Transport};

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;
    use heartbeat_core::{
        CloseCode, Config, DeathReason, HeartbeatMachine, Instant, PongOutcome, Role, State,
        TimerKind,
    };

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
        fn send_close(&mut self, code: CloseCode, _: &str) -> Result<Handover, &'static str> {
            self.log.push(format!("close {code}"));
            Ok(Handover::Taken)
        }
        fn disconnect(&mut self) {
            self.log.push("disconnect".into());
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

    /// A write that returns only after a pause (the process stopped inside it).
    struct Stalling(Duration);
    impl Transport for Stalling {
        type Error = &'static str;
        fn send_ping(&mut self, _: &[u8]) -> Result<Handover, &'static str> {
            std::thread::sleep(self.0);
            Ok(Handover::Taken)
        }
        fn send_pong(&mut self, _: &[u8]) -> Result<(), &'static str> {
            Ok(())
        }
        fn send_close(&mut self, _: CloseCode, _: &str) -> Result<Handover, &'static str> {
            Ok(Handover::Taken)
        }
        fn disconnect(&mut self) {}
    }

    #[test]
    fn with_a_clock_a_ping_is_reported_sent_when_its_write_returned_not_before() {
        let clock = Clock::new();
        let mut hb = HeartbeatMachine::new(
            Config::builder()
                .role(Role::Server)
                .ping_interval(Duration::from_millis(10))
                .pong_timeout(Duration::from_millis(100))
                .build()
                .unwrap(),
            3,
        );
        hb.handle_connected(clock.now());
        std::thread::sleep(Duration::from_millis(15));
        hb.handle_timeout(clock.now());
        let before_write = clock.now();
        let _ = drive(&mut hb, &mut Stalling(Duration::from_millis(60)), clock);
        let d = hb.poll_timeout().unwrap();
        assert_eq!(d.kind, TimerKind::PongTimeout);
        assert!(
            d.at >= before_write + Duration::from_millis(160),
            "the pong timer starts after the 60 ms write, not before it"
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
    fn a_silent_peer_is_reported_dead_closed_then_disconnected() {
        let mut hb = machine(Role::Server);
        let mut t = Rec::default();
        hb.handle_timeout(Instant::from_millis(100));
        let _ = drive(&mut hb, &mut t, Instant::from_millis(100));
        hb.handle_timeout(Instant::from_millis(200));
        let out = drive(&mut hb, &mut t, Instant::from_millis(200));
        assert!(matches!(out.dead, Some(DeathReason::PongTimeout { .. })));
        assert!(out.close_sent && !out.disconnected);
        assert!(matches!(hb.state(), State::Closing { .. }));
        hb.handle_timeout(Instant::from_millis(250));
        let out = drive(&mut hb, &mut t, Instant::from_millis(250));
        assert!(out.disconnected && out.dead.is_none());
        assert!(matches!(hb.state(), State::Finished { .. }));
        assert_eq!(t.log, ["ping 8", "close 1011", "disconnect"]);
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
        assert!(out.disconnected);
        assert_eq!(out.dead, Some(DeathReason::TransportClosed));
        assert!(matches!(
            hb.state(),
            State::Reconnecting {
                reason: DeathReason::TransportClosed,
                attempt: 1,
                ..
            }
        ));
    }

    #[test]
    fn feed_maps_every_input_and_returns_what_it_meant() {
        let mut hb = machine(Role::Server);
        let mut t = Rec::default();
        let _ = feed(&mut hb, Instant::from_millis(1), Incoming::Ping(b"abc"));
        let _ = drive(&mut hb, &mut t, Instant::from_millis(1));
        assert_eq!(t.log, ["pong [97, 98, 99]"]);
        assert_eq!(
            feed(&mut hb, Instant::from_millis(1), Incoming::Pong(b"junk")),
            Fed::Pong(PongOutcome::Unsolicited)
        );
        let _ = feed(
            &mut hb,
            Instant::from_millis(2),
            Incoming::Close(Some(1000)),
        );
        let out = drive(&mut hb, &mut t, Instant::from_millis(2));
        assert_eq!(out.dead, Some(DeathReason::PeerClosed { code: Some(1000) }));
        assert!(
            out.disconnected,
            "the reply was taken at once: the handshake is complete"
        );
    }

    #[test]
    fn clock_round_trips() {
        let c = Clock::new();
        let t = Instant::from_millis(1234);
        assert_eq!(c.from_std(c.to_std(t)), t);
    }

    #[test]
    fn seeds_differ() {
        assert_ne!(seed(), seed());
    }
}
