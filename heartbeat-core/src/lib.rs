//! A sans-IO heartbeat for long-lived connections: when to ping, when the peer is
//! dead, and when to reconnect.
//!
//! [`HeartbeatMachine`] takes events (time passing, frames, pings, pongs, closes,
//! connects) and emits [`Action`]s (connect, send a ping or pong, report a death,
//! close, disconnect), plus the next [`Deadline`] so a driver sleeps instead of
//! polling. It performs no I/O, reads no clock and no randomness, never allocates and
//! never panics: the same inputs always give the same outputs, which is what makes
//! the simulated-clock tests of this project exact.
//!
//! # One model of a connection's life
//!
//! ```text
//!            connect()               handle_connected
//!   Idle ───────────────▶ Connecting ────────────────▶ Open
//!     │ handle_connected      ▲  │ failed / connect_timeout │ death: Action::Dead(reason)
//!     └───────────────────────┼──┼──────────▶ Open          ▼
//!                             │  ▼                 Closing { reason } ──▶ Finished { reason }
//!                        Reconnecting { reason, at, attempt } ◀──────┘   (server, local close,
//!                        (a fault: at once, the close drains meanwhile)   permanent code, attempts spent)
//! ```
//!
//! Every state after a death carries its reason ([`State::reason`]), equal to the
//! reason of the one [`Action::Dead`] of that connection. Every timer lives here:
//! the ping and pong deadlines, the connect timeout, the close window and the
//! backoff delay; a driver owns none.
//!
//! # The driving contract
//!
//! **After any `handle_*` call, drain [`poll_action`](HeartbeatMachine::poll_action)
//! until `None`, then sleep until [`poll_timeout`](HeartbeatMachine::poll_timeout)
//! and call [`handle_timeout`](HeartbeatMachine::handle_timeout).**
//!
//! Two rules keep verdicts honest:
//! - Feed everything already readable from the transport *before* expiring deadlines
//!   at the same moment: a pong sitting in the socket buffer must count.
//! - Report [`handle_ping_sent`](HeartbeatMachine::handle_ping_sent) when the
//!   transport took the ping, so a ping queued behind a large write is not a false
//!   death, and [`handle_close_sent`](HeartbeatMachine::handle_close_sent) when a
//!   close frame is flushed.
//!
//! Calling `handle_timeout` early or twice is harmless.
//!
//! # A blocking driver
//!
//! ```
//! use core::time::Duration;
//! use heartbeat_core::{Action, Config, HeartbeatMachine, Instant, PongOutcome};
//!
//! /// Stand-in for a real transport: a peer that answers every ping at once.
//! #[derive(Default)]
//! struct Loopback { pending_pong: Option<Vec<u8>> }
//! enum Frame { Pong(Vec<u8>) }
//! impl Loopback {
//!     fn send_ping(&mut self, p: &[u8]) { self.pending_pong = Some(p.to_vec()); }
//!     /// Blocks until a frame arrives or `timeout` passes.
//!     fn read(&mut self, _timeout: Duration) -> Option<Frame> { self.pending_pong.take().map(Frame::Pong) }
//! }
//!
//! let config = Config::builder()
//!     .ping_interval(Duration::from_millis(20))
//!     .pong_timeout(Duration::from_millis(20))
//!     .build()?;
//! let mut hb = HeartbeatMachine::new(config, 0x5eed);
//! let mut link = Loopback::default();
//! // A real driver maps std::time::Instant to the machine's time like this;
//! // here a simulated clock stands in so the example runs instantly.
//! let mut now = Instant::ZERO;
//! hb.handle_connected(now); // the link is already open
//! for _ in 0..10 {
//!     while let Some(action) = hb.poll_action() {
//!         match action {
//!             Action::SendPing(p) => { link.send_ping(p.as_slice()); hb.handle_ping_sent(now); }
//!             Action::Dead(reason) => panic!("peer died: {reason}"),
//!             _ => {} // SendPong, SendClose, Disconnect, Connect: see the adapters.
//!         }
//!     }
//!     let deadline = hb.poll_timeout().expect("open connections always have a deadline");
//!     let wait = deadline.at - now;
//!     match link.read(wait) {
//!         // Input first...
//!         Some(Frame::Pong(p)) => {
//!             now = now + Duration::from_millis(1);
//!             let outcome = hb.handle_pong(now, &p);
//!             assert!(matches!(outcome, PongOutcome::Matched { .. }));
//!         }
//!         // ...then deadlines.
//!         None => { now = deadline.at; hb.handle_timeout(now) }
//!     }
//! }
//! assert!(hb.rtt().samples > 0);
//! # Ok::<(), heartbeat_core::ConfigError>(())
//! ```
//!
//! # An async (`select!`) driver
//!
//! ```ignore
//! hb.connect(now());
//! loop {
//!     while let Some(action) = hb.poll_action() { execute(&mut conn, &mut hb, action).await; }
//!     let deadline = hb.poll_timeout();
//!     if deadline.is_some_and(|d| d.at <= now()) {
//!         // Evidence before the verdict: let the runtime poll its reactor once (after
//!         // a pause its readiness is stale, and `biased` alone cannot see a pong it
//!         // does not know is there), take in what is readable, then judge.
//!         tokio::task::yield_now().await;
//!         while let Some(frame) = conn.next_frame().now_or_never() { feed(&mut hb, frame); }
//!         hb.handle_timeout(now());
//!         continue;
//!     }
//!     tokio::select! {
//!         biased; // input before timers
//!         frame = conn.next_frame() => feed(&mut hb, frame),
//!         _ = sleep_until_opt(deadline) => {} // judged at the top of the loop
//!     }
//! }
//! ```
//! The `heartbeat-tokio` adapter's connection core follows this shape, done
//! completely (writes reported when flushed, local lag, backpressure).
//!
//! # Guarantees
//! - A peer that answers every ping within the pong timeout is never declared dead.
//! - A silent peer is declared dead no later than
//!   [`Config::detection_bound`] after its last proof of life, when the driver runs
//!   its timers on time; a local stall adds at most one pong timeout plus the stall,
//!   and reported local lag at most [`Config::max_local_lag`].
//! - After a fault, a client's next attempt starts after the backoff delay alone;
//!   the dead connection's close never delays it.
//! - After `handle_timeout(now)`, `poll_timeout()` is never earlier than `now`.
//! - At most one pong, one ping and one close are ever queued; every transport ends
//!   with exactly one [`Action::Disconnect`], before the next [`Action::Connect`].

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(test)]
extern crate std;

mod action;
mod backoff;
mod config;
mod machine;
mod outcome;
mod reason;
mod rtt;
#[cfg(feature = "serde")]
pub mod serde_duration;
mod stats;
mod time;
mod timer;

pub use action::{Action, CloseCode, Payload, MAX_CONTROL_PAYLOAD};
pub use config::{
    Backoff, Bounds, Config, ConfigBuilder, ConfigError, Field, Jitter, Liveness, PingFlood, Role,
};
pub use machine::HeartbeatMachine;
pub use outcome::{PingOutcome, PongOutcome};
pub use reason::{ConnectFailure, DeathReason, Health, ProtocolError, State};
pub use rtt::RttStats;
pub use stats::Stats;
pub use time::Instant;
pub use timer::{Deadline, TimerKind};
