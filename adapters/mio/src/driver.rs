//! [`Driver`]: the event loop. One `mio::Poll`, one timer heap, many connections.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Events, Interest, Token, Waker};

use crate::ctx::Ctx;
use crate::handler::{Event, Handler};
use crate::options::Options;
use crate::reactor::Reactor;
use crate::slab::ConnId;
use crate::stats::DriverStats;
use crate::stop::StopHandle;
use crate::timers::epoll_timeout;

/// A single-threaded event loop driving many WebSocket connections, each with its
/// own [`HeartbeatMachine`](heartbeat_core::HeartbeatMachine), over mio and
/// tungstenite.
///
/// The loop: wait in `poll` until the earliest deadline of all machines (read from
/// one timer heap), feed every readable socket to its machine, then wake only the
/// machines whose deadline is due (taking in what their socket already holds
/// first, so a pong already received is never ignored), executing all actions
/// after each input.
pub struct Driver<H> {
    reactor: Reactor,
    handler: H,
    events: Events,
}

impl<H: Handler> Driver<H> {
    /// A driver with no connections yet.
    pub fn new(options: Options, handler: H) -> io::Result<Driver<H>> {
        let capacity = options.events_capacity.max(16);
        Ok(Driver {
            reactor: Reactor::new(&options)?,
            handler,
            events: Events::with_capacity(capacity),
        })
    }

    /// Listens on `addr` (accepting in the server role); returns the bound address.
    pub fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let mut listener = TcpListener::bind(addr)?;
        let token = Token(LISTENER_BASE + self.reactor.listeners.len());
        self.reactor
            .poll
            .registry()
            .register(&mut listener, token, Interest::READABLE)?;
        let local = listener.local_addr()?;
        self.reactor.listeners.push(listener);
        Ok(local)
    }

    /// Opens a client connection to `url` (`ws://host:port/path`); see [`Ctx::connect`].
    pub fn connect(&mut self, url: &str) -> io::Result<ConnId> {
        self.ctx().connect(url)
    }

    /// Access to connections outside a callback (send, broadcast, close, stats).
    pub fn ctx(&mut self) -> Ctx<'_> {
        Ctx {
            reactor: &mut self.reactor,
        }
    }

    /// The application's handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The application's handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Counters.
    pub fn stats(&self) -> DriverStats {
        self.reactor.stats()
    }

    /// Zeroes the event counters and timer lateness figures (not `live` or
    /// `connections`), e.g. to measure a steady state after a connection storm.
    pub fn reset_stats(&mut self) {
        self.reactor.stats = DriverStats {
            live: self.reactor.stats.live,
            ..DriverStats::default()
        };
    }

    /// A handle that makes [`run`](Self::run) return, from any thread.
    pub fn stop_handle(&mut self) -> io::Result<StopHandle> {
        if let Some(stop) = &self.reactor.stop {
            return Ok(stop.clone());
        }
        let stop = StopHandle::new(Waker::new(self.reactor.poll.registry(), WAKER)?);
        self.reactor.stop = Some(stop.clone());
        Ok(stop)
    }

    /// Runs until a [`StopHandle`] asks it to stop.
    pub fn run(&mut self) -> io::Result<()> {
        let stop = self.stop_handle()?;
        while !stop.stopped() {
            self.turn(None)?;
        }
        Ok(())
    }

    /// Runs for `d` (in turns of the loop), then returns.
    pub fn run_for(&mut self, d: Duration) -> io::Result<()> {
        let end = std::time::Instant::now() + d;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            self.turn(Some(left))?;
        }
    }

    /// One turn of the loop: wait for readiness or the earliest deadline (at most
    /// `max_wait`), handle every ready socket, then every due deadline, then tell
    /// the handler what happened.
    pub fn turn(&mut self, max_wait: Option<Duration>) -> io::Result<()> {
        let now = self.reactor.clock.now();
        let mut wait = match self.reactor.next_wake() {
            Some(at) => epoll_timeout(at - now),
            None => Duration::from_secs(3600),
        };
        if let Some(max) = max_wait {
            wait = wait.min(max);
        }
        self.reactor.stats.polls += 1;
        match self.reactor.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        // One clock reading per turn: input first, then the deadlines due by then.
        let now = self.reactor.clock.now();
        for event in self.events.iter() {
            let token = event.token();
            if token == WAKER {
                continue;
            }
            if token.0 >= LISTENER_BASE {
                self.reactor.accept(token.0 - LISTENER_BASE, now);
                continue;
            }
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            let writable = event.is_writable() || event.is_write_closed();
            self.reactor.ready(token.0, now, readable, writable);
        }
        self.dispatch();
        self.reactor.fire_timers(now);
        self.reactor.retry_accept(now);
        self.dispatch();
        Ok(())
    }

    /// Delivers queued events to the handler (which may queue more).
    fn dispatch(&mut self) {
        while let Some(event) = self.reactor.pending.pop_front() {
            let mut ctx = Ctx {
                reactor: &mut self.reactor,
            };
            match event {
                Event::Open(id) => self.handler.on_open(&mut ctx, id),
                Event::Message(id, msg) => self.handler.on_message(&mut ctx, id, msg),
                Event::Dead(id, reason) => self.handler.on_dead(&mut ctx, id, reason),
                Event::Closed(id, reason) => self.handler.on_closed(&mut ctx, id, reason),
            }
        }
    }
}

/// Listener tokens start here (connection tokens are slot indices below it).
const LISTENER_BASE: usize = usize::MAX / 2;
/// The stop waker's token.
const WAKER: Token = Token(usize::MAX);
