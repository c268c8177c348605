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
    backlog: i32,
}

impl<H: Handler> Driver<H> {
    /// A driver with no connections yet.
    pub fn new(options: Options, handler: H) -> io::Result<Driver<H>> {
        let capacity = options.events_capacity.max(1);
        Ok(Driver {
            reactor: Reactor::new(&options)?,
            handler,
            events: Events::with_capacity(capacity),
            backlog: i32::try_from(options.backlog).unwrap_or(i32::MAX),
        })
    }

    /// Listens on `addr` (accepting in the server role) with the backlog of
    /// [`Options::backlog`]; returns the bound address.
    pub fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(self.backlog)?;
        let mut listener = TcpListener::from_std(socket.into());
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
    ///
    /// A socket is read only when readiness says something arrived (see
    /// `sock.rs`), so before any deadline is judged every readiness event that
    /// happened by then must have been collected. One `poll` normally does that,
    /// but not when it returned a full batch of events (more may be waiting), or
    /// when the loop woke later than it asked to (the process was stopped or
    /// starved between `poll` and the clock reading, and a pong may have arrived
    /// in that gap): then a `poll` with a zero timeout collects the rest first.
    pub fn turn(&mut self, max_wait: Option<Duration>) -> io::Result<()> {
        let before = self.reactor.clock.now();
        let mut wait = match self.reactor.next_wake() {
            Some(at) => epoll_timeout(at - before),
            None => Duration::from_secs(3600),
        };
        if let Some(max) = max_wait {
            wait = wait.min(max);
        }
        self.poll(wait)?;
        // One clock reading per turn: input first, then the deadlines due by then.
        let now = self.reactor.clock.now();
        let mut more = self.handle_events(now);
        if self.reactor.next_wake().is_some_and(|at| at <= now) {
            // Evidence before verdicts.
            more |= now - before > wait + LATE_WAKE;
            while more {
                self.reactor.stats.evidence_polls += 1;
                self.poll(Duration::ZERO)?;
                more = self.handle_events(now);
            }
        }
        self.dispatch();
        self.reactor.fire_timers(now);
        self.reactor.retry_accept(now);
        self.dispatch();
        Ok(())
    }

    /// Waits for readiness for at most `wait`.
    fn poll(&mut self, wait: Duration) -> io::Result<()> {
        self.reactor.stats.polls += 1;
        match self.reactor.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => {
                self.events.clear();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Handles the events of the last `poll`; returns whether they filled the
    /// event buffer (more may be waiting in the kernel).
    fn handle_events(&mut self, now: heartbeat_core::Instant) -> bool {
        let mut n = 0;
        for event in self.events.iter() {
            n += 1;
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
        n >= self.events.capacity()
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
/// Waking this much later than asked means the loop was stopped or starved
/// (epoll's own rounding and slack stay well under it).
const LATE_WAKE: Duration = Duration::from_millis(2);
