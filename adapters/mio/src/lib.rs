//! A mio + tungstenite event-loop driver for [`heartbeat_core`]: many WebSocket
//! connections on one thread, no async runtime.
//!
//! One [`Driver`] owns one `mio::Poll`, the listeners, and every connection (server
//! and client roles), each with its own [`HeartbeatMachine`](heartbeat_core::HeartbeatMachine)
//! sharing one `Arc<Config>`. Accepts, WebSocket handshakes (tungstenite's
//! mid-handshake states), reads and writes are all non-blocking and driven by
//! readiness; data that does not fit in the socket is kept in tungstenite's buffer
//! and flushed on the next writable event (a ping is reported sent only then).
//!
//! # Timers
//! All connections share **one timer heap** of `(wake time, connection, generation)`:
//! the loop's `poll` timeout is the earliest wake time of all machines, only the
//! connections whose time is due are woken, and a connection re-files its wake time
//! only when it changed (the old entry is discarded lazily when popped). Nothing
//! scans every connection on a tick. Each operation costs O(log n) (see
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
//! 4. every due timer: read that socket once more (input first), then
//!    `handle_timeout`, then the actions;
//! 5. the [`Handler`] hears opens, messages, deaths and removals.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! use heartbeat_core::{Config, DeathReason, Role};
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
//!     .role(Role::Server)
//!     .ping_interval(Duration::from_secs(5))
//!     .pong_timeout(Duration::from_secs(5))
//!     .build()?;
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
//! tungstenite queues the reply itself.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod conn;
mod driver;
mod timers;

pub use conn::Side;
pub use driver::{
    small_buffers, ConnId, Ctx, Driver, DriverStats, Handler, Options, SendError, StopHandle,
};
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

/// The size of one connection's bookkeeping (machine, socket state, timers), not
/// counting tungstenite's heap buffers. For the `load` example.
#[doc(hidden)]
pub fn connection_struct_size() -> usize {
    std::mem::size_of::<conn::Conn>()
}
