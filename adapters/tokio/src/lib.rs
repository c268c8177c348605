//! Tokio + tungstenite driver for [`heartbeat_core`]: WebSocket keepalive with
//! dead-peer detection at a known bound, reconnection with backoff, and a server
//! registry that forgets dead clients by itself.
//!
//! The adapter is thin on purpose. It reads `tokio::time::Instant`, moves frames and
//! executes the machine's actions; when to ping, when the peer is dead and how long
//! to wait before reconnecting are all decided by [`heartbeat_core::HeartbeatMachine`].
//!
//! # Pieces
//! - [`KeepAlive`]: wraps an open `WebSocketStream<S>`; a spawned driver task owns the
//!   socket so heartbeats run while the application is busy or only sending. Split
//!   it into a [`Sender`] and a [`Receiver`]; read live RTT, health and counters with
//!   [`KeepAlive::status`] at any time.
//! - [`KeepAlive::from_socket`] + [`Compat`]: the same driver over a WebSocket of
//!   another stack (axum's, tokio-tungstenite 0.30's; features `axum`,
//!   `tokio-tungstenite-030`), any `Stream` + `Sink` of messages through [`WsMessage`].
//! - module `tls` (features `rustls-native-roots` / `rustls-webpki-roots`): `wss://`.
//! - [`KeepAliveStream`]: the lean way to hold many connections: a `Stream` + `Sink`
//!   whose heartbeat runs while the application polls it, in the application's own
//!   task, with no driver task, channel or status publication.
//! - [`connect`]: a reconnecting client yielding a sequence of live connections
//!   ([`Connections`]).
//! - [`accept_with`]: the server's hook on the upgrade request (path, headers, peer
//!   address) that can refuse it with an HTTP status before the client is
//!   registered; `examples/bearer_auth.rs` lets in only a bearer token.
//! - [`accept`] / [`accept_tcp`] and [`Registry`]: the server role per connection, a
//!   registry that drops dead clients at detection time, and a
//!   [`broadcast`](Registry::broadcast) that never waits on a slow or dead client.
//!   [`accept_stream`] registers a lean [`KeepAliveStream`] instead of a driver task.
//! - [`HeartbeatCodec`] / [`JsonCodec`]: heartbeats as application messages
//!   (`{"type":"ping","timestamp":…}`) for services that do not use WebSocket pings.
//!
//! # The driving contract, as this crate implements it
//!
//! After any `handle_*` call, drain `poll_action()` until `None`, then sleep until
//! `poll_timeout()`. The connection core (see `core.rs`) reads the clock once per turn,
//! compares it with the deadline *before* awaiting, feeds already-readable input
//! before a due deadline (a pong in the socket buffer counts), reports
//! `handle_ping_sent` only when the flush carrying the ping completed, and resets its
//! sleep only when the deadline moved.
//!
//! # Wire notes
//! - tungstenite answers every WebSocket ping itself as it reads it, so the driver
//!   does not send the machine's `SendPong` for control-frame pings (it would be a
//!   second pong). Consequence: a ping over the machine's flood budget is still
//!   answered; the flood *verdict* (close 1008) is the machine's. With a
//!   [`HeartbeatCodec`] the driver sends every `SendPong` itself.
//! - After the peer's close frame tungstenite sends the reply itself; the machine's
//!   `SendClose` is then skipped.
//! - [`small_buffers`] sets a 2 KiB read buffer instead of tungstenite's 128 KiB.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use heartbeat_core::Config;
//! use heartbeat_tokio::{connect, Options};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder()
//!     .ping_interval(Duration::from_secs(5))
//!     .pong_timeout(Duration::from_secs(5))
//!     .build()?;
//! let mut connections = connect("ws://127.0.0.1:9000", Options::new(config))?;
//! while let Some(conn) = connections.next().await {
//!     let (tx, mut rx) = conn.split();
//!     tx.send("subscribe".into()).await?;
//!     loop {
//!         match rx.recv().await {
//!             Ok(msg) => println!("{msg}"),
//!             Err(e) => { eprintln!("connection over: {e}"); break }
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod acceptor;
mod clock;
mod codec;
mod compat;
mod core;
mod driver;
mod error;
mod event;
mod handle;
mod hook;
mod mailbox;
#[cfg(feature = "metrics")]
pub mod metrics;
mod net;
mod options;
mod protocol;
mod reconnect;
mod request;
mod server;
mod socket;
mod status;
mod stream;
mod writer;

#[cfg(feature = "_rustls")]
pub mod tls;

pub use acceptor::Acceptor;
pub use clock::Clock;
pub use codec::{Heartbeat, HeartbeatCodec, JsonCodec};
pub use error::{Error, Initiator};
pub use event::{ConnId, ConnInfo, Event, Observer};
pub use handle::{KeepAlive, Receiver, Sender};
pub use heartbeat_transport::tungstenite::{
    small_buffers, Limits, LimitsError, Permanent, Refused, Target, UrlError,
};
pub use heartbeat_transport::{AcceptBackoff, AcceptPause};
pub use hook::{accept_with, Accept, Handshake, Reject};
pub use net::set_nodelay;
pub use options::Options;
pub use reconnect::{connect, connect_via, connect_with, Connections};
pub use request::{ConnectRequest, IntoConnectRequest};
pub use server::{accept, accept_stream, accept_tcp, BroadcastReport, ClientId, Registry};
pub use socket::{Compat, Parts, WsMessage, WsSocket};
pub use status::Status;
pub use stream::KeepAliveStream;

/// The WebSocket crates this adapter is built on, re-exported so applications use
/// the same versions.
pub use tokio_tungstenite::{self, tungstenite};
