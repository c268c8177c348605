//! Test utilities shared by the heartbeat adapters (not published).
//!
//! - [`python`]: launches Python `websockets` peers (an echo server, a process
//!   holding many clients), stops and resumes them with `SIGSTOP`/`SIGCONT`, and
//!   decides whether an interop test may skip ([`python::require_websockets`]:
//!   never under `CI=true`).
//! - [`proxy`]: a loopback TCP proxy with a switch that silently drops everything in
//!   both directions while keeping both sockets open (no FIN, no RST): the half-open
//!   case at the application level.
//!
//! Only 127.0.0.0/8 addresses are used.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod proxy;
pub mod python;

pub use proxy::SilentProxy;
pub use python::{require_websockets, PyPeer};
