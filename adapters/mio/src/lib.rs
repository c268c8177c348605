//! A mio + tungstenite event-loop driver for [`heartbeat_core`]: many WebSocket
//! connections on one thread, no async runtime.
//!
//! One [`Driver`] owns one `mio::Poll`, the listeners, and every connection (server
//! and client roles), each with its own [`HeartbeatMachine`](heartbeat_core::HeartbeatMachine)
//! sharing one `Arc<Config>` per role. Accepts, WebSocket handshakes (read through
//! one buffer shared by the driver, with tungstenite's parsers and checks), reads
//! and writes are all non-blocking and driven by readiness; data that does not fit in the socket is kept in tungstenite's buffer
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
//!    the machine, executing the machine's actions after each frame (a ping from
//!    the peer may pull our own ping forward so both leave in one write);
//! 4. if a deadline is due and the `poll` returned a full batch of events or woke
//!    late, `poll` again without waiting and handle those sockets too, until the
//!    kernel has nothing more: no verdict before every readiness that happened;
//! 5. every due deadline: first take in what that socket already holds (finish a
//!    flush, read every frame readiness announced, advance a handshake), then
//!    `handle_timeout`, then the actions;
//! 6. the [`Handler`] hears opens, messages, deaths and removals.
//!
//! # System calls
//! A socket is read once per readiness event: a read that came back short means
//! the socket was drained (mio is edge-triggered), and until the next readable
//! event a read returns `WouldBlock` without asking the kernel. A pong waits in
//! tungstenite's write buffer for the ping, close or message written after it in
//! the same batch, so they leave in one `sendto`. With both ends pinging, a
//! heartbeat costs each end about 1.5 reads and writes per round trip, plus the
//! shared `epoll_wait`.
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
mod sock;
mod stats;
mod stop;
mod timers;
mod upgrade;
mod wire;

pub use conn::Side;
pub use ctx::Ctx;
pub use driver::Driver;
pub use handler::Handler;
/// Why [`Ctx::connect`] rejected a URL: the source of its `InvalidInput` error.
pub use heartbeat_transport::tungstenite::UrlError;
/// tungstenite settings sized for heartbeat traffic, and the limits they enforce;
/// the base of [`Options::websocket`], which lowers the read buffer to 512 bytes
/// and batches the frames of one batch of actions.
pub use heartbeat_transport::tungstenite::{small_buffers, Limits};
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

/// Measures the driver's timer heap holding `n` connections' deadlines, spread
/// over one interval: the average time of one re-filing (a push) and of one wake
/// of a due connection (a pop), in nanoseconds, over `n` steady-state cycles (pop
/// the earliest, re-file it one interval later). For the `timer_heap` example.
#[doc(hidden)]
pub fn measure_timer_heap(n: u32) -> (f64, f64) {
    use heartbeat_core::Instant;
    use timers::{Entry, TimerHeap};
    let interval = 20_000_000_000u64; // 20 s in ns, the default ping interval
    let mut heap = TimerHeap::default();
    // A fixed multiplicative hash spreads the deadlines without an RNG.
    let at = |i: u64| Instant::from_nanos(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % interval);
    for slot in 0..n {
        heap.push(Entry {
            at: at(u64::from(slot)),
            slot,
            gen: 0,
        });
    }
    let (mut push_ns, mut pop_ns) = (0u128, 0u128);
    for _ in 0..n {
        let t = std::time::Instant::now();
        let Some(e) = heap.pop() else { break };
        let popped = std::time::Instant::now();
        heap.push(Entry {
            at: e.at + core::time::Duration::from_nanos(interval),
            ..e
        });
        push_ns += popped.elapsed().as_nanos();
        pop_ns += (popped - t).as_nanos();
    }
    let n = f64::from(n.max(1));
    (push_ns as f64 / n, pop_ns as f64 / n)
}

/// The size of one connection's bookkeeping (machine, socket state), not
/// counting tungstenite's heap buffers. For the `load` example.
#[doc(hidden)]
pub fn connection_struct_size() -> usize {
    std::mem::size_of::<conn::Conn>()
}
