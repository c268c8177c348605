//! A mio + tungstenite event-loop driver for [`heartbeat_core`]: many WebSocket
//! connections on one thread, no async runtime.
//!
//! One [`Driver`] owns one `mio::Poll`, the listeners, and every connection (server
//! and client roles), each with its own [`HeartbeatMachine`](heartbeat_core::HeartbeatMachine)
//! sharing one `Arc<Config>` per role. Accepts, WebSocket handshakes (tungstenite's
//! mid-handshake states), reads and writes are all non-blocking and driven by
//! readiness; data that does not fit in the socket is kept in tungstenite's buffer
//! and flushed on the next writable event (a ping is reported sent only then).
//!
//! # Timers
//! The [`HeartbeatMachine`](heartbeat_core::HeartbeatMachine) owns every timer of a
//! connection: heartbeats, the connect timeout (TCP connect plus handshake; for an
//! accepted socket, the upgrade), the close window and the reconnect backoff. The
//! driver owns none; it executes the machine's actions with
//! [`heartbeat_transport::drive`] (`Connect` starts an attempt, `Disconnect` drops
//! the socket) and wakes each machine at its `poll_timeout`.
//!
//! All connections share **one timer heap** of `(wake time, connection, generation)`:
//! the loop's `poll` timeout is the earliest deadline of all machines, only the
//! connections whose deadline is due are woken, and a connection re-files its wake
//! time only when it changed (the old entry is discarded lazily when popped).
//! Nothing scans every connection on a tick. Each operation costs O(log n) (see
//! `timers.rs`). `epoll_wait` rounds its timeout up by about 0.1 %; the driver asks
//! for slightly less and sleeps the remainder, so a deadline fires within about a
//! millisecond of its time (measure it with the `timer_error` example and
//! [`DriverStats::timer_late_max`]).
//!
//! # Order of work in one turn
//! 1. `poll` until the earliest deadline or readiness;
//! 2. read the clock once;
//! 3. every ready socket: accept, handshake, flush, read every frame and feed it to
//!    the machine, executing the machine's actions after each frame;
//! 4. every due deadline: first take in what that socket already holds (finish a
//!    flush, read every frame, advance a handshake), then `handle_timeout`, then
//!    the actions;
//! 5. the [`Handler`] hears opens, messages, deaths and removals.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use heartbeat_core::{Config, DeathReason};
//! use heartbeat_mio::{ConnId, Ctx, Driver, Handler, Options};
//! use tungstenite::Message;
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_message(&mut self, ctx: &mut Ctx<'_>, id: ConnId, msg: Message) {
//!         let _ = ctx.send(id, msg);
//!     }
//!     fn on_dead(&mut self, ctx: &mut Ctx<'_>, id: ConnId, reason: DeathReason) {
//!         eprintln!("{id} dead: {reason}; {} left", ctx.live());
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder()
//!     .ping_interval(Duration::from_secs(5))
//!     .pong_timeout(Duration::from_secs(5))
//!     .build()?;
//! // One config for both sides: accepted connections run it in the server role,
//! // `connect`ed ones in the client role (they reconnect with its backoff).
//! let mut driver = Driver::new(Options::new(config), Echo)?;
//! driver.listen("127.0.0.1:9000".parse()?)?;
//! driver.run()?;
//! # Ok(()) }
//! ```
//!
//! # Wire notes
//! tungstenite answers pings itself; the machine's pong replaces that queued answer
//! (same payload) before it is flushed, so pongs are not doubled, but a ping the
//! machine's flood budget refuses is still answered. After the peer's close
//! tungstenite queues the reply itself. The tungstenite glue (the transport,
//! buffer sizes, URL checks, message mapping) is `heartbeat_transport::tungstenite`,
//! shared with the other tungstenite drivers.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod actions;
mod conn;
mod ctx;
mod driver;
mod handler;
mod io;
mod lifecycle;
mod options;
mod reactor;
mod send_error;
mod slab;
mod stats;
mod stop;
mod timers;

pub use conn::Side;
pub use ctx::Ctx;
pub use driver::Driver;
pub use handler::Handler;
/// tungstenite settings sized for heartbeat traffic (2 KiB read buffer, 4 MiB
/// write-buffer cap); the default of [`Options::websocket`].
pub use heartbeat_transport::tungstenite::small_buffers;
/// Why [`Ctx::connect`] rejected a URL: the source of its `InvalidInput` error.
pub use heartbeat_transport::tungstenite::UrlError;
pub use options::Options;
pub use send_error::SendError;
pub use slab::ConnId;
pub use stats::DriverStats;
pub use stop::StopHandle;
pub use tungstenite;

/// Measures how late `mio::Poll::poll` wakes for a timeout of `wait`, asked naively
/// (`naive = true`) or the way the driver asks (shortened, then the remainder).
/// Returns the lateness. For the `timer_error` example and tests.
#[doc(hidden)]
pub fn measure_poll_lateness(
    wait: std::time::Duration,
    naive: bool,
) -> std::io::Result<std::time::Duration> {
    let mut poll = mio::Poll::new()?;
    let mut events = mio::Events::with_capacity(8);
    let deadline = std::time::Instant::now() + wait;
    loop {
        let now = std::time::Instant::now();
        if now >= deadline {
            return Ok(now - deadline);
        }
        let left = deadline - now;
        let ask = if naive {
            left
        } else {
            timers::epoll_timeout(left)
        };
        poll.poll(&mut events, Some(ask))?;
        if naive {
            return Ok(std::time::Instant::now().saturating_duration_since(deadline));
        }
    }
}

/// The size of one connection's bookkeeping (machine, socket state), not
/// counting tungstenite's heap buffers. For the `load` example.
#[doc(hidden)]
pub fn connection_struct_size() -> usize {
    std::mem::size_of::<conn::Conn>()
}
