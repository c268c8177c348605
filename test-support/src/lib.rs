//! Test utilities shared by the heartbeat adapters and the real-process fault lab
//! (not published).
//!
//! - [`python`]: launches Python `websockets` peers (an echo server with optional
//!   keepalive and JSON heartbeats, a process holding many clients; the scripts
//!   are in `py/`), on loopback or inside a network namespace, stops and
//!   resumes them with `SIGSTOP`/`SIGCONT`, and decides whether an interop test may
//!   skip ([`python::require_websockets`]: never under `CI=true`).
//! - [`proxy`]: a loopback TCP proxy with a switch, for all connections or for one,
//!   that silently drops everything in both directions while keeping both sockets
//!   open (no FIN, no RST): the half-open case at the application level.
//! - [`delay`]: a loopback TCP proxy adding a fixed latency each way.
//! - [`netns`]: two network namespaces joined by a veth pair, and nftables
//!   blackholes between them (the half-open case at the packet level); removed on
//!   drop, even when a test panics.
//! - [`process`]: a child printing JSON lines, read as it runs with a timestamp per
//!   line, stoppable the instant it prints a chosen event; [`signal`]: `SIGSTOP`,
//!   `SIGCONT` and `SIGKILL` by pid.
//! - [`fds`]: open descriptors, a lower `RLIMIT_NOFILE`, CPU time used.
//! - [`raw`]: a WebSocket peer that speaks raw frames (any shape, lying headers,
//!   invalid UTF-8), for hostile-peer tests that assert the exact close code.
//! - [`certs`]: a throwaway CA and server certificate made by the test (rcgen).
//! - [`skip`]: whether the lab can run here (root, `ip`, `nft`), with a printed
//!   reason when it cannot; [`binaries`]: the `heartbeat` CLI built from this
//!   workspace; [`rng`]: a seeded random source for fault schedules.
//!
//! Loopback tests use 127.0.0.0/8 only; namespace tests use addresses that exist
//! only inside the namespaces they create.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod binaries;
pub mod certs;
pub mod delay;
pub mod fds;
pub mod idle;
pub mod netns;
pub mod process;
pub mod proxy;
pub mod python;
pub mod raw;
pub mod rng;
pub mod signal;
pub mod skip;

pub use certs::TestCerts;
pub use delay::DelayProxy;
pub use idle::{IdleMode, IdleProxy};
pub use netns::{NetnsPair, Side};
pub use process::{Event, JsonProc};
pub use proxy::SilentProxy;
pub use python::{require_websockets, PyPeer, ServerOptions};
pub use rng::Rng;
pub use skip::require_netns;
