//! A blocking driver for [`heartbeat_core`]: tungstenite over `std::net::TcpStream`
//! on plain threads, no event loop, no async runtime.
//!
//! - [`KeepAlive`] wraps one WebSocket connection. Its blocking
//!   [`read`](KeepAlive::read) returns application messages only; inside, it waits
//!   for input at most until the machine's next deadline (a socket read timeout,
//!   clamped to at least 1 ms), sends pings and pongs, and returns
//!   [`Error::Dead`] as soon as the peer is declared dead.
//!   [`send`](KeepAlive::send) sends application messages.
//! - A connection over TLS: open it yourself (rustls's `StreamOwned` and
//!   `tungstenite::client`), then [`KeepAlive::new`]; with the `rustls` feature
//!   `StreamOwned` is a [`Socket`]. See `tests/tls.rs`.
//! - [`run_client`] is a reconnecting client loop: it connects when the machine
//!   says so, hands each live connection to your session function, and sleeps until
//!   the machine's next deadline in between.
//!
//! The driver owns no timer of its own. Each connection attempt (TCP connect and
//! WebSocket upgrade) is bounded by the machine's connect deadline
//! ([`Config::connect_timeout`](heartbeat_core::Config::connect_timeout)), the
//! close handshake by its close deadline, the wait between attempts by its backoff.
//!
//! Heartbeats only run while a thread is inside `read`/`read_until`: a program that
//! stops reading for longer than the ping interval delays its pings (and the
//! machine's stall detection then probes afresh instead of blaming the peer).
//!
//! ```no_run
//! use std::time::Duration;
//! use heartbeat_blocking::{Error, KeepAlive};
//! use heartbeat_core::{Config, Role};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder()
//!     .role(Role::Server) // this connection never reconnects by itself
//!     .ping_interval(Duration::from_secs(5))
//!     .pong_timeout(Duration::from_secs(5))
//!     .connect_timeout(Duration::from_secs(5))
//!     .build()?;
//! let mut ws = KeepAlive::connect("ws://127.0.0.1:9000/", config)?;
//! ws.send("subscribe".into())?;
//! loop {
//!     match ws.read() {
//!         Ok(msg) => println!("{msg}"),
//!         Err(Error::Dead(reason)) => { eprintln!("peer dead: {reason}"); break }
//!         Err(e) => return Err(e.into()),
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

use std::fmt;
use std::io;

use heartbeat_core::{CloseCode, DeathReason};
use tungstenite::Error as WsError;

mod client;
mod connect;
mod keepalive;
mod socket;
mod wait;

pub use client::run_client;
pub use heartbeat_transport::tungstenite::{small_buffers, Limits, LimitsError, UrlError};
pub use keepalive::KeepAlive;
pub use socket::Socket;
pub use tungstenite;

/// Why a [`KeepAlive`] call (or [`run_client`]) failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The connection is over (the peer is dead, closed, or the transport ended),
    /// or the machine abandoned the connection attempt
    /// ([`DeathReason::ConnectFailed`] with
    /// [`ConnectFailure::TimedOut`](heartbeat_core::ConnectFailure::TimedOut) once
    /// `connect_timeout` passed). Returned at detection time; the close frame, if
    /// any, was already sent.
    Dead(DeathReason),
    /// The URL is not a usable `ws://` URL. Never retried.
    Url(UrlError),
    /// The URL asks for `wss://`: [`KeepAlive::connect`] and [`run_client`] open
    /// plain TCP only. Open the TLS stream yourself (rustls's `StreamOwned`, with
    /// the `rustls` feature) and wrap it with [`KeepAlive::new`].
    TlsUnsupported,
    /// The WebSocket handshake failed (rejected upgrade, bad response).
    Connect(WsError),
    /// Name resolution, the TCP connect or socket setup failed.
    Io(io::Error),
    /// The message is larger than the connection can ever send (its write
    /// buffer's cap, `Limits::max_outbound`): not sent, the connection is unaffected.
    TooLarge {
        /// The message's length in bytes.
        len: usize,
        /// The largest message this connection sends.
        max: usize,
    },
    /// The [`Limits`] given are unusable (one is zero, or a frame is larger than a
    /// message); the error names the field.
    Limits(LimitsError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Dead(r) => write!(f, "connection over: {r}"),
            Error::Url(e) => write!(f, "bad URL: {e}"),
            Error::TlsUnsupported => write!(f, "wss:// is not supported by heartbeat-blocking"),
            Error::Connect(e) => write!(f, "WebSocket handshake failed: {e}"),
            Error::Io(e) => write!(f, "socket error: {e}"),
            Error::TooLarge { len, max } => {
                write!(
                    f,
                    "message of {len} bytes is over the {max}-byte send limit; not sent"
                )
            }
            Error::Limits(e) => write!(f, "invalid limits: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        Error::Url(e)
    }
}

/// What the reconnecting client loop should do after a session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Next {
    /// Reconnect (with the machine's backoff) if the machine allows it. A session
    /// that returns this while its connection is still open gives that connection
    /// up: the socket is shut down and the machine is told the transport closed.
    Reconnect,
    /// Close with this code and return.
    Stop(CloseCode),
}
