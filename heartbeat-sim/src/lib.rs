//! A deterministic simulation harness for [`HeartbeatMachine`]: a simulated clock,
//! a seeded link model and a scripted peer, so you can check your own heartbeat
//! configuration against latency, jitter, loss, blackholes, partitions, a hung or
//! refusing peer and your own process stalling, in microseconds of real time.
//!
//! The simulation never ticks: each [`Sim::step`] jumps exactly to the next event
//! (a frame delivery, a finished write, a connection attempt's result, a scheduled
//! fault, or the machine's own [`poll_timeout`](heartbeat_core::HeartbeatMachine::poll_timeout)).
//! The driver it plays follows the machine's contract exactly and owns no timer:
//! - it starts with [`connect`](heartbeat_core::HeartbeatMachine::connect) (or reports a connection
//!   that is already open, see [`Start`]) and carries out every
//!   [`Action::Connect`](heartbeat_core::Action::Connect) by opening a simulated
//!   transport, which reports [`handle_connected`](heartbeat_core::HeartbeatMachine::handle_connected)
//!   or [`handle_connect_failed`](heartbeat_core::HeartbeatMachine::handle_connect_failed) when the
//!   handshake ends (or never, through a blackhole: the machine's connect timer
//!   decides);
//! - [`Action::Disconnect`](heartbeat_core::Action::Disconnect) drops the transport;
//!   frames still in flight on it are lost;
//! - pings and closes take `write_delay` to be written, then the driver reports
//!   [`handle_ping_sent`](heartbeat_core::HeartbeatMachine::handle_ping_sent) or
//!   [`handle_close_sent`](heartbeat_core::HeartbeatMachine::handle_close_sent);
//! - input before timers at the same instant; our own stalls delay our side only.
//!
//! ```
//! use core::time::Duration;
//! use heartbeat_core::{Config, DeathReason, HeartbeatMachine, Instant};
//! use heartbeat_sim::{Fault, Link, Sim, SimConfig};
//!
//! let config = Config::builder()
//!     .ping_interval(Duration::from_secs(2))
//!     .pong_timeout(Duration::from_secs(2))
//!     .build()?;
//! let mut sim = Sim::new(heartbeat_core::HeartbeatMachine::new(config, 1), SimConfig {
//!     link: Link { latency: Duration::from_millis(40), ..Link::default() },
//!     ..SimConfig::default()
//! });
//! sim.add_fault(Fault::Blackhole { from: Instant::from_secs(10), until: None });
//! sim.run_until(Instant::from_secs(30)).expect("bounded");
//! let (at, reason) = sim.deaths().next().expect("the blackhole was detected");
//! assert!(matches!(reason, DeathReason::PongTimeout { .. }));
//! assert!(at <= Instant::from_secs(10) + config.detection_bound(Duration::ZERO));
//! # Ok::<(), heartbeat_core::ConfigError>(())
//! ```
//!
//! [`HeartbeatMachine`]: heartbeat_core::HeartbeatMachine

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod event;
mod fault;
mod link;
mod record;
mod sim;

pub use config::{Peer, SimConfig, Start};
pub use fault::Fault;
pub use link::Link;
pub use record::{Frame, Record};
pub use sim::{Sim, StepLimitExceeded};
