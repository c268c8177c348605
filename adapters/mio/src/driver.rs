//! The event loop: one `mio::Poll`, one timer heap, many connections.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use heartbeat_core::{
    CloseCode, Config, DeathReason, Health, HeartbeatMachine, Instant, RttStats, State,
};
use heartbeat_transport::{
    drive, feed, incoming_from_tungstenite_error, needs_transport, Clock, Incoming,
};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error as WsError, Message};

use crate::conn::{would_block, Conn, Io, Side, Target, WsTransport};
use crate::timers::{epoll_timeout, Entry, TimerHeap};

/// What the application hears from the driver. Every method has an empty default.
///
/// Callbacks run on the driver's thread between I/O batches; use the [`Ctx`] to
/// send, broadcast, close or connect from inside them. They must not block.
pub trait Handler {
    /// The WebSocket handshake of `id` completed (again, after a client reconnect).
    fn on_open(&mut self, ctx: &mut Ctx<'_>, id: ConnId) {
        let _ = (ctx, id);
    }
    /// An application message (text or binary) arrived on `id`.
    fn on_message(&mut self, ctx: &mut Ctx<'_>, id: ConnId, msg: Message) {
        let _ = (ctx, id, msg);
    }
    /// The connection `id` is over, reported at detection time (before the close
    /// handshake finishes). A client may reconnect afterwards and open again.
    fn on_dead(&mut self, ctx: &mut Ctx<'_>, id: ConnId, reason: DeathReason) {
        let _ = (ctx, id, reason);
    }
    /// `id` was removed from the driver: its socket is gone and no reconnect follows.
    /// `reason` is the last death reason (or [`DeathReason::ConnectFailed`]).
    fn on_closed(&mut self, ctx: &mut Ctx<'_>, id: ConnId, reason: DeathReason) {
        let _ = (ctx, id, reason);
    }
}

/// Identifies a connection for as long as it lives (a client keeps its id across
/// reconnects). Ids are never confused with a later connection in the same slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ConnId {
    slot: u32,
    gen: u32,
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.slot, self.gen)
    }
}

/// Driver settings. [`Options::new`] gives small-buffer defaults.
#[derive(Clone, Debug)]
pub struct Options {
    /// The heartbeat of accepted connections (server role).
    pub server: Arc<Config>,
    /// The heartbeat of connections opened with [`Driver::connect`]; its role decides
    /// whether they reconnect ([`heartbeat_core::Role::Client`]) or not.
    pub client: Arc<Config>,
    /// tungstenite settings for every connection; see [`small_buffers`].
    pub websocket: WebSocketConfig,
    /// How long a TCP connect plus WebSocket handshake may take.
    pub handshake_timeout: Duration,
    /// How many readiness events one `poll` returns at most.
    pub events_capacity: usize,
}

impl Options {
    /// `config` for both sides, [`small_buffers`], a 5 s handshake timeout.
    pub fn new(config: Config) -> Options {
        let config = Arc::new(config);
        Options {
            server: config.clone(),
            client: config,
            websocket: small_buffers(),
            handshake_timeout: Duration::from_secs(5),
            events_capacity: 1024,
        }
    }

    /// Uses `config` for client connections.
    pub fn client_config(mut self, config: Config) -> Options {
        self.client = Arc::new(config);
        self
    }

    /// Sets the handshake timeout.
    pub fn handshake_timeout(mut self, d: Duration) -> Options {
        self.handshake_timeout = d;
        self
    }
}

/// tungstenite settings sized for heartbeat traffic: a 4 KiB read buffer instead of
/// 128 KiB, frames written at once (no 128 KiB write batching), messages up to 1 MiB.
/// The driver refuses application sends while a connection is backed up, so the
/// write buffer holds at most one message plus control frames. Its 4 MiB cap bounds
/// a ping flood: tungstenite answers every ping as it reads it and, without a cap,
/// moves each pending pong into an unbounded buffer while the peer does not read
/// (tests/flood_memory.rs measures it). With the cap, a pong or close that does not
/// fit stays in tungstenite's single pending slot, the newest pong replacing the
/// older, and is retried. A message larger than the cap is refused with
/// [`SendError::TooLarge`]; raise `max_write_buffer_size` to send bigger ones.
pub fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// Counters of a driver; cheap to copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Open WebSocket connections now.
    pub live: usize,
    /// Connections held now in any stage (handshaking, open, waiting to reconnect).
    pub connections: usize,
    /// TCP connections accepted.
    pub accepted: u64,
    /// Client TCP connects started (first attempts and reconnects).
    pub connects_started: u64,
    /// Connects or handshakes that failed or timed out.
    pub handshakes_failed: u64,
    /// WebSocket handshakes completed.
    pub opened: u64,
    /// Deaths reported ([`Handler::on_dead`]).
    pub deaths: u64,
    /// Deaths that were faults ([`DeathReason::is_fault`]).
    pub fault_deaths: u64,
    /// Connections removed ([`Handler::on_closed`]).
    pub removed: u64,
    /// `poll` calls.
    pub polls: u64,
    /// Due timers handled.
    pub timer_wakeups: u64,
    /// Stale timer entries discarded (a deadline that moved before it was due).
    pub stale_timer_pops: u64,
    /// Entries in the timer heap now, stale ones included.
    pub timer_heap_len: usize,
    /// The latest a due timer was handled after its deadline.
    pub timer_late_max: Duration,
    /// Sum of the lateness of all handled timers (divide by `timer_wakeups`).
    pub timer_late_total: Duration,
    /// Application sends refused because the connection was backed up.
    pub sends_refused: u64,
    /// Pings that found the socket full and waited in the buffer (reported sent
    /// when flushed).
    pub pings_queued: u64,
}

/// Why [`Ctx::send`] did not send.
#[derive(Debug)]
pub enum SendError {
    /// No such connection (it was removed).
    NotFound,
    /// The connection is not open (handshaking, closing, or waiting to reconnect).
    NotOpen,
    /// Earlier data is still waiting for the socket to drain; try again later.
    Backpressure,
    /// The message does not fit the write buffer's cap (`max_write_buffer_size`);
    /// the connection is unaffected.
    TooLarge,
    /// The write failed; the connection is over.
    Failed(WsError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotFound => write!(f, "no such connection"),
            SendError::NotOpen => write!(f, "connection not open"),
            SendError::Backpressure => write!(f, "connection backed up"),
            SendError::TooLarge => write!(f, "message larger than the write buffer's cap"),
            SendError::Failed(e) => write!(f, "write failed: {e}"),
        }
    }
}

impl std::error::Error for SendError {}

/// Stops a [`Driver::run`] loop from another thread.
#[derive(Clone, Debug)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl StopHandle {
    /// Asks the loop to return; it wakes at once.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// A single-threaded event loop driving many WebSocket connections, each with its
/// own [`HeartbeatMachine`], over mio and tungstenite.
///
/// The loop: wait in `poll` until the earliest deadline of all machines (read from
/// one timer heap), feed every readable socket to its machine, then wake only the
/// machines whose deadline is due (reading their socket once more first, so a pong
/// already received is never ignored), executing all actions after each input.
pub struct Driver<H> {
    core: Core,
    handler: H,
    events: Events,
}

/// The driver minus the handler: what a [`Ctx`] can reach.
struct Core {
    poll: Poll,
    clock: Clock,
    opts: Options,
    slots: Vec<Slot>,
    free: Vec<u32>,
    timers: TimerHeap,
    listeners: Vec<TcpListener>,
    pending: VecDeque<Event>,
    stats: DriverStats,
    stop: Option<StopHandle>,
    seeds: u64,
}

#[derive(Default)]
struct Slot {
    gen: u32,
    conn: Option<Box<Conn>>,
}

enum Event {
    Open(ConnId),
    Message(ConnId, Message),
    Dead(ConnId, DeathReason),
    Closed(ConnId, DeathReason),
}

/// Access to the driver from a [`Handler`] callback (or from
/// [`Driver::ctx`] outside of one).
pub struct Ctx<'a> {
    core: &'a mut Core,
}

impl<H: Handler> Driver<H> {
    /// A driver with no connections yet.
    pub fn new(options: Options, handler: H) -> io::Result<Driver<H>> {
        let capacity = options.events_capacity.max(16);
        Ok(Driver {
            core: Core {
                poll: Poll::new()?,
                clock: Clock::new(),
                opts: options,
                slots: Vec::new(),
                free: Vec::new(),
                timers: TimerHeap::default(),
                listeners: Vec::new(),
                pending: VecDeque::new(),
                stats: DriverStats::default(),
                stop: None,
                seeds: 0x5eed_u64 ^ u64::from(std::process::id()),
            },
            handler,
            events: Events::with_capacity(capacity),
        })
    }

    /// Listens on `addr` (accepting in the server role); returns the bound address.
    pub fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let mut listener = TcpListener::bind(addr)?;
        let token = Token(LISTENER_BASE + self.core.listeners.len());
        self.core
            .poll
            .registry()
            .register(&mut listener, token, Interest::READABLE)?;
        let local = listener.local_addr()?;
        self.core.listeners.push(listener);
        Ok(local)
    }

    /// Opens a client connection to `url` (`ws://host:port/path`); see [`Ctx::connect`].
    pub fn connect(&mut self, url: &str) -> io::Result<ConnId> {
        self.ctx().connect(url)
    }

    /// Access to connections outside a callback (send, broadcast, close, stats).
    pub fn ctx(&mut self) -> Ctx<'_> {
        Ctx {
            core: &mut self.core,
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
        self.core.stats()
    }

    /// Zeroes the event counters and timer lateness figures (not `live` or
    /// `connections`), e.g. to measure a steady state after a connection storm.
    pub fn reset_stats(&mut self) {
        self.core.stats = DriverStats {
            live: self.core.stats.live,
            ..DriverStats::default()
        };
    }

    /// A handle that makes [`run`](Self::run) return, from any thread.
    pub fn stop_handle(&mut self) -> io::Result<StopHandle> {
        if self.core.stop.is_none() {
            let waker = Waker::new(self.core.poll.registry(), WAKER)?;
            self.core.stop = Some(StopHandle {
                flag: Arc::new(AtomicBool::new(false)),
                waker: Arc::new(waker),
            });
        }
        Ok(self.core.stop.clone().ok_or(ErrorKind::Other)?)
    }

    /// Runs until a [`StopHandle`] asks it to stop.
    pub fn run(&mut self) -> io::Result<()> {
        let stop = self.stop_handle()?;
        while !stop.flag.load(Ordering::SeqCst) {
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
    /// `max_wait`), handle every ready socket, then every due timer, then tell the
    /// handler what happened.
    pub fn turn(&mut self, max_wait: Option<Duration>) -> io::Result<()> {
        let now = self.core.clock.now();
        let mut wait = match self.core.next_wake() {
            Some(at) => epoll_timeout(at - now),
            None => Duration::from_secs(3600),
        };
        if let Some(max) = max_wait {
            wait = wait.min(max);
        }
        self.core.stats.polls += 1;
        match self.core.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        // One clock reading per turn: input first, then the deadlines due by then.
        let now = self.core.clock.now();
        for event in self.events.iter() {
            let token = event.token();
            if token == WAKER {
                continue;
            }
            if token.0 >= LISTENER_BASE {
                self.core.accept(token.0 - LISTENER_BASE, now);
                continue;
            }
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            let writable = event.is_writable() || event.is_write_closed();
            self.core.ready(token.0, now, readable, writable);
        }
        self.dispatch();
        self.core.fire_timers(now);
        self.dispatch();
        Ok(())
    }

    /// Delivers queued events to the handler (which may queue more).
    fn dispatch(&mut self) {
        while let Some(event) = self.core.pending.pop_front() {
            let mut ctx = Ctx {
                core: &mut self.core,
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

impl Ctx<'_> {
    /// Sends an application message on `id` (written at once, or queued until the
    /// socket drains). Refused with [`SendError::Backpressure`] while earlier data is
    /// still queued, so a slow or dead peer never grows memory without bound.
    pub fn send(&mut self, id: ConnId, msg: Message) -> Result<(), SendError> {
        let now = self.core.clock.now();
        let mut result = Err(SendError::NotFound);
        self.core.with_conn(id, now, |core, conn| {
            result = core.send_on(conn, id, msg, now);
        });
        result
    }

    /// Sends `msg` to every open connection that is not backed up; returns how many
    /// took it. Costs one pass over the connection table.
    pub fn broadcast(&mut self, msg: &Message) -> usize {
        let ids: Vec<ConnId> = self.core.open_ids();
        ids.into_iter()
            .filter(|&id| self.send(id, msg.clone()).is_ok())
            .count()
    }

    /// Closes `id` with `code` (no reconnect follows); the close handshake is bounded
    /// by the close timeout. [`Handler::on_dead`] follows with
    /// [`DeathReason::LocalClose`].
    pub fn close(&mut self, id: ConnId, code: CloseCode) {
        let now = self.core.clock.now();
        self.core.with_conn(id, now, |core, conn| {
            conn.hb.close(now, code);
            core.drive_actions(conn, id, now);
        });
    }

    /// Opens a client connection to `url` (`ws://host:port/path`). The address is
    /// resolved once, now (use IP literals on an event loop). The connect and the
    /// handshake run on the loop; [`Handler::on_open`] follows.
    pub fn connect(&mut self, url: &str) -> io::Result<ConnId> {
        let request = url
            .into_client_request()
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        let uri = request.uri();
        let host = uri
            .host()
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "no host in url"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "host did not resolve"))?;
        let now = self.core.clock.now();
        let seed = self.core.next_seed();
        let hb = HeartbeatMachine::new(self.core.opts.client.clone(), seed);
        let conn = Conn {
            side: Side::Client,
            hb,
            io: Io::Idle,
            filed: None,
            handshake_until: None,
            reconnect_at: Some(now),
            linger_until: None,
            blocked: false,
            ping_unflushed: false,
            announced: false,
            target: Some(Box::new(Target {
                url: url.into(),
                addr,
            })),
        };
        let id = self.core.insert(conn);
        self.core
            .with_conn(id, now, |core, conn| core.start_connect(conn, id, now));
        Ok(id)
    }

    /// Open WebSocket connections now.
    pub fn live(&self) -> usize {
        self.core.stats.live
    }

    /// Counters.
    pub fn stats(&self) -> DriverStats {
        self.core.stats()
    }

    /// The liveness of `id`, if it exists.
    pub fn health(&self, id: ConnId) -> Option<Health> {
        self.core.get(id).map(|c| c.hb.health())
    }

    /// The machine state of `id`, if it exists.
    pub fn state(&self, id: ConnId) -> Option<State> {
        self.core.get(id).map(|c| c.hb.state())
    }

    /// RTT figures of `id`, if it exists.
    pub fn rtt(&self, id: ConnId) -> Option<RttStats> {
        self.core.get(id).map(|c| c.hb.rtt())
    }

    /// The machine's counters for `id`, if it exists.
    pub fn machine_stats(&self, id: ConnId) -> Option<heartbeat_core::Stats> {
        self.core.get(id).map(|c| c.hb.stats())
    }

    /// Which side `id` is on, if it exists.
    pub fn side(&self, id: ConnId) -> Option<Side> {
        self.core.get(id).map(|c| c.side)
    }
}

impl Core {
    fn stats(&self) -> DriverStats {
        DriverStats {
            connections: self.slots.len() - self.free.len(),
            timer_heap_len: self.timers.len(),
            ..self.stats
        }
    }

    fn next_seed(&mut self) -> u64 {
        self.seeds = self.seeds.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let z = self.seeds ^ (self.seeds >> 31);
        z.wrapping_mul(0xBF58_476D_1CE4_E5B9)
    }

    fn get(&self, id: ConnId) -> Option<&Conn> {
        let slot = self.slots.get(id.slot as usize)?;
        (slot.gen == id.gen).then_some(slot.conn.as_deref()?)
    }

    fn open_ids(&self) -> Vec<ConnId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.conn.as_ref().is_some_and(|c| matches!(c.io, Io::Open(_))))
            .map(|(i, s)| ConnId {
                slot: i as u32,
                gen: s.gen,
            })
            .collect()
    }

    fn insert(&mut self, conn: Conn) -> ConnId {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot::default());
                // Bounded by RLIMIT_NOFILE in practice; u32 is plenty.
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.conn = Some(Box::new(conn));
        ConnId { slot, gen: s.gen }
    }

    /// Takes the connection out of its slot, runs `f`, then puts it back and re-files
    /// its wake time if it changed, or removes it if it is over.
    fn with_conn(&mut self, id: ConnId, now: Instant, f: impl FnOnce(&mut Core, &mut Conn)) {
        let Some(slot) = self.slots.get_mut(id.slot as usize) else {
            return;
        };
        if slot.gen != id.gen {
            return;
        }
        let Some(mut conn) = slot.conn.take() else {
            return;
        };
        f(self, &mut conn);
        self.settle(id, conn, now);
    }

    fn settle(&mut self, id: ConnId, mut conn: Box<Conn>, now: Instant) {
        let over = matches!(conn.io, Io::Idle) && conn.reconnect_at.is_none();
        if over {
            let reason = conn
                .hb
                .death_reason()
                .unwrap_or(DeathReason::TransportClosed);
            self.stats.removed += 1;
            self.pending.push_back(Event::Closed(id, reason));
            let slot = &mut self.slots[id.slot as usize];
            slot.gen = slot.gen.wrapping_add(1);
            self.free.push(id.slot);
            return;
        }
        let wake = conn.wake_at().map(|at| at.max(now));
        if wake != conn.filed {
            conn.filed = wake;
            if let Some(at) = wake {
                self.timers.push(Entry {
                    at,
                    slot: id.slot,
                    gen: id.gen,
                });
            }
        }
        self.slots[id.slot as usize].conn = Some(conn);
    }

    /// The earliest current wake time; stale entries on top are discarded.
    fn next_wake(&mut self) -> Option<Instant> {
        while let Some(e) = self.timers.peek() {
            if self.is_current(&e) {
                return Some(e.at);
            }
            self.timers.pop();
            self.stats.stale_timer_pops += 1;
        }
        None
    }

    fn is_current(&self, e: &Entry) -> bool {
        self.slots.get(e.slot as usize).is_some_and(|s| {
            s.gen == e.gen && s.conn.as_ref().is_some_and(|c| c.filed == Some(e.at))
        })
    }

    /// Wakes every connection whose filed time is due, and only those.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(e) = self.timers.peek() {
            if e.at > now {
                break;
            }
            self.timers.pop();
            if !self.is_current(&e) {
                self.stats.stale_timer_pops += 1;
                continue;
            }
            let late = now - e.at;
            self.stats.timer_wakeups += 1;
            self.stats.timer_late_max = self.stats.timer_late_max.max(late);
            self.stats.timer_late_total += late;
            let id = ConnId {
                slot: e.slot,
                gen: e.gen,
            };
            self.with_conn(id, now, |core, conn| {
                conn.filed = None;
                core.on_timer(conn, id, now);
            });
        }
        let live = self.slots.len() - self.free.len();
        let slots = &self.slots;
        self.timers.maybe_compact(live, |e| {
            slots.get(e.slot as usize).is_some_and(|s| {
                s.gen == e.gen && s.conn.as_ref().is_some_and(|c| c.filed == Some(e.at))
            })
        });
    }

    fn accept(&mut self, index: usize, now: Instant) {
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            let mut stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if would_block(&e) => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // Out of descriptors or an aborted connection: try again on the next
                // readiness event.
                Err(_) => return,
            };
            self.stats.accepted += 1;
            let _ = stream.set_nodelay(true);
            let seed = self.next_seed();
            let conn = Conn {
                side: Side::Server,
                hb: HeartbeatMachine::new(self.opts.server.clone(), seed),
                io: Io::Idle,
                filed: None,
                handshake_until: Some(now + self.opts.handshake_timeout),
                reconnect_at: None,
                linger_until: None,
                blocked: false,
                ping_unflushed: false,
                announced: false,
                target: None,
            };
            let id = self.insert(conn);
            let registered = self.poll.registry().register(
                &mut stream,
                Token(id.slot as usize),
                Interest::READABLE | Interest::WRITABLE,
            );
            let config = self.opts.websocket;
            self.with_conn(id, now, |core, conn| {
                if registered.is_err() {
                    core.stats.handshakes_failed += 1;
                    conn.handshake_until = None;
                    return;
                }
                match tungstenite::accept_with_config(stream, Some(config)) {
                    Ok(ws) => core.opened(conn, id, ws, now),
                    Err(HandshakeError::Interrupted(mid)) => conn.io = Io::ServerHandshake(mid),
                    Err(HandshakeError::Failure(_)) => {
                        core.stats.handshakes_failed += 1;
                        conn.handshake_until = None;
                    }
                }
            });
        }
    }

    fn ready(&mut self, slot: usize, now: Instant, readable: bool, writable: bool) {
        let Some(gen) = self.slots.get(slot).map(|s| s.gen) else {
            return;
        };
        let id = ConnId {
            slot: slot as u32,
            gen,
        };
        self.with_conn(id, now, |core, conn| {
            core.advance(conn, id, now, readable, writable)
        });
    }

    /// Moves a connection forward on readiness.
    fn advance(
        &mut self,
        conn: &mut Conn,
        id: ConnId,
        now: Instant,
        readable: bool,
        writable: bool,
    ) {
        match std::mem::replace(&mut conn.io, Io::Idle) {
            Io::Connecting(stream) => self.connecting(conn, id, stream, now),
            Io::ServerHandshake(mid) => match mid.handshake() {
                Ok(ws) => self.opened(conn, id, ws, now),
                Err(HandshakeError::Interrupted(mid)) => conn.io = Io::ServerHandshake(mid),
                Err(HandshakeError::Failure(_)) => self.handshake_failed(conn, id, now),
            },
            Io::ClientHandshake(mid) => match mid.handshake() {
                Ok((ws, _)) => self.opened(conn, id, ws, now),
                Err(HandshakeError::Interrupted(mid)) => conn.io = Io::ClientHandshake(mid),
                Err(HandshakeError::Failure(_)) => self.handshake_failed(conn, id, now),
            },
            Io::Open(ws) => {
                conn.io = Io::Open(ws);
                if writable && conn.blocked {
                    self.flush(conn, id, now);
                }
                if readable {
                    self.read_input(conn, id, now);
                }
            }
            Io::Draining(ws) => {
                conn.io = Io::Draining(ws);
                self.drain(conn, now);
            }
            Io::Idle => {}
        }
    }

    /// A connection's filed time came: expire whatever is due.
    fn on_timer(&mut self, conn: &mut Conn, id: ConnId, now: Instant) {
        if conn.handshake_until.is_some_and(|t| t <= now) {
            conn.handshake_until = None;
            if !matches!(conn.io, Io::Open(_) | Io::Draining(_)) {
                self.handshake_failed(conn, id, now);
                return;
            }
        }
        if conn.linger_until.is_some_and(|t| t <= now) {
            self.drop_socket(conn);
        }
        if conn.reconnect_at.is_some_and(|t| t <= now) {
            self.drop_socket(conn);
            self.start_connect(conn, id, now);
            return;
        }
        if matches!(conn.io, Io::Open(_)) {
            // Input first: a pong already in the socket buffer must count.
            self.read_input(conn, id, now);
            if matches!(conn.io, Io::Open(_)) {
                conn.hb.handle_timeout(now);
                self.drive_actions(conn, id, now);
            }
        }
    }

    fn start_connect(&mut self, conn: &mut Conn, id: ConnId, now: Instant) {
        conn.reconnect_at = None;
        let Some(addr) = conn.target.as_ref().map(|t| t.addr) else {
            return;
        };
        self.stats.connects_started += 1;
        conn.handshake_until = Some(now + self.opts.handshake_timeout);
        let mut stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(_) => return self.handshake_failed(conn, id, now),
        };
        let _ = stream.set_nodelay(true);
        let registered = self.poll.registry().register(
            &mut stream,
            Token(id.slot as usize),
            Interest::READABLE | Interest::WRITABLE,
        );
        if registered.is_err() {
            return self.handshake_failed(conn, id, now);
        }
        conn.io = Io::Connecting(stream);
    }

    /// A TCP connect in progress became ready: check it, start the handshake.
    fn connecting(&mut self, conn: &mut Conn, id: ConnId, stream: TcpStream, now: Instant) {
        match stream.take_error() {
            Ok(None) => {}
            _ => return self.handshake_failed(conn, id, now),
        }
        match stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotConnected || would_block(&e) => {
                conn.io = Io::Connecting(stream);
                return;
            }
            Err(_) => return self.handshake_failed(conn, id, now),
        }
        let url = conn
            .target
            .as_ref()
            .map(|t| t.url.to_string())
            .unwrap_or_default();
        match tungstenite::client::client_with_config(
            url.as_str(),
            stream,
            Some(self.opts.websocket),
        ) {
            Ok((ws, _)) => self.opened(conn, id, ws, now),
            Err(HandshakeError::Interrupted(mid)) => conn.io = Io::ClientHandshake(mid),
            Err(HandshakeError::Failure(_)) => self.handshake_failed(conn, id, now),
        }
    }

    fn handshake_failed(&mut self, conn: &mut Conn, id: ConnId, now: Instant) {
        self.stats.handshakes_failed += 1;
        conn.handshake_until = None;
        self.drop_socket(conn);
        if conn.side == Side::Client {
            conn.hb.handle_connect_failed(now);
            let mut none = NoTransport;
            let out = drive(&mut conn.hb, &mut none, now);
            conn.reconnect_at = out.reconnect.map(|r| now + r.after);
            let _ = id;
        }
    }

    fn opened(
        &mut self,
        conn: &mut Conn,
        id: ConnId,
        ws: tungstenite::WebSocket<TcpStream>,
        now: Instant,
    ) {
        conn.io = Io::Open(ws);
        conn.handshake_until = None;
        conn.blocked = false;
        conn.ping_unflushed = false;
        conn.hb.handle_connected(now);
        conn.announced = true;
        self.stats.opened += 1;
        self.stats.live += 1;
        self.pending.push_back(Event::Open(id));
        // Edge-triggered readiness: frames that came with the handshake are read now.
        self.read_input(conn, id, now);
        self.drive_actions(conn, id, now);
    }

    /// Reads until `WouldBlock`, feeding each frame to the machine and executing its
    /// actions at once (so its pong replaces tungstenite's queued one before any flush).
    fn read_input(&mut self, conn: &mut Conn, id: ConnId, now: Instant) {
        loop {
            let Io::Open(ws) = &mut conn.io else { return };
            let incoming = match ws.read() {
                Ok(msg) => msg,
                Err(WsError::Io(e)) if would_block(&e) => return,
                Err(WsError::Io(e)) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    let incoming = incoming_from_tungstenite_error(&e);
                    feed(&mut conn.hb, now, incoming);
                    self.drive_actions(conn, id, now);
                    if incoming == Incoming::Ended {
                        // The socket is finished whatever the machine thinks.
                        self.drop_socket(conn);
                    }
                    return;
                }
            };
            match &incoming {
                Message::Ping(p) => feed(&mut conn.hb, now, Incoming::Ping(p)),
                Message::Pong(p) => feed(&mut conn.hb, now, Incoming::Pong(p)),
                Message::Close(c) => feed(
                    &mut conn.hb,
                    now,
                    Incoming::Close(c.as_ref().map(|c| c.code.into())),
                ),
                Message::Text(_) | Message::Binary(_) => feed(&mut conn.hb, now, Incoming::Data),
                Message::Frame(_) => {}
            }
            if matches!(incoming, Message::Text(_) | Message::Binary(_)) {
                self.pending.push_back(Event::Message(id, incoming));
            }
            self.drive_actions(conn, id, now);
        }
    }

    /// Executes the machine's queued actions and reacts to their outcome.
    fn drive_actions(&mut self, conn: &mut Conn, id: ConnId, now: Instant) {
        let out = match &mut conn.io {
            Io::Open(ws) => {
                let mut t = WsTransport {
                    ws,
                    blocked: &mut conn.blocked,
                };
                drive(&mut conn.hb, &mut t, now)
            }
            _ => drive(&mut conn.hb, &mut NoTransport, now),
        };
        if out.ping_queued {
            conn.ping_unflushed = true;
            self.stats.pings_queued += 1;
        }
        if let Some(reason) = out.dead {
            self.stats.deaths += 1;
            if reason.is_fault() {
                self.stats.fault_deaths += 1;
            }
            self.pending.push_back(Event::Dead(id, reason));
        }
        if let Some(r) = out.reconnect {
            conn.reconnect_at = Some(now + r.after);
        }
        if matches!(conn.io, Io::Open(_)) && !needs_transport(&conn.hb) {
            self.end_transport(conn, now, out.aborted);
        }
    }

    /// The machine is done with the socket: drop it, or keep it briefly to flush a
    /// close frame still in the buffer.
    fn end_transport(&mut self, conn: &mut Conn, now: Instant, aborted: bool) {
        if conn.announced {
            conn.announced = false;
            self.stats.live -= 1;
        }
        if conn.blocked && !aborted {
            if let Io::Open(ws) = std::mem::replace(&mut conn.io, Io::Idle) {
                conn.io = Io::Draining(ws);
                conn.linger_until = Some(now + conn.hb.config().close_timeout());
                return;
            }
        }
        self.drop_socket(conn);
    }

    fn drain(&mut self, conn: &mut Conn, _now: Instant) {
        if let Io::Draining(ws) = &mut conn.io {
            match ws.flush() {
                Err(WsError::Io(e)) if would_block(&e) => {}
                _ => self.drop_socket(conn),
            }
        }
    }

    fn drop_socket(&mut self, conn: &mut Conn) {
        if conn.announced {
            conn.announced = false;
            self.stats.live -= 1;
        }
        if let Some(stream) = conn.stream_mut() {
            let _ = self.poll.registry().deregister(stream);
        }
        conn.io = Io::Idle;
        conn.linger_until = None;
        conn.blocked = false;
        conn.ping_unflushed = false;
    }

    /// The socket became writable while data was queued: flush it.
    fn flush(&mut self, conn: &mut Conn, id: ConnId, now: Instant) {
        let Io::Open(ws) = &mut conn.io else { return };
        match ws.flush() {
            Ok(()) => {
                conn.blocked = false;
                if std::mem::take(&mut conn.ping_unflushed) {
                    conn.hb.handle_ping_sent(now);
                }
            }
            Err(WsError::Io(e)) if would_block(&e) => {}
            Err(_) => {
                feed(&mut conn.hb, now, Incoming::Ended);
                self.drive_actions(conn, id, now);
                self.drop_socket(conn);
            }
        }
        self.drive_actions(conn, id, now);
    }

    fn send_on(
        &mut self,
        conn: &mut Conn,
        id: ConnId,
        msg: Message,
        now: Instant,
    ) -> Result<(), SendError> {
        let Io::Open(ws) = &mut conn.io else {
            return Err(SendError::NotOpen);
        };
        if conn.hb.state() != State::Open {
            return Err(SendError::NotOpen);
        }
        if conn.blocked {
            self.stats.sends_refused += 1;
            return Err(SendError::Backpressure);
        }
        let written = ws.write(msg).and_then(|()| ws.flush());
        match written {
            Ok(()) => Ok(()),
            Err(WsError::Io(e)) if would_block(&e) => {
                conn.blocked = true;
                Ok(())
            }
            Err(WsError::WriteBufferFull(_)) => {
                self.stats.sends_refused += 1;
                Err(SendError::TooLarge)
            }
            Err(e) => {
                feed(&mut conn.hb, now, Incoming::Ended);
                self.drive_actions(conn, id, now);
                self.drop_socket(conn);
                Err(SendError::Failed(e))
            }
        }
    }
}

/// The transport of a connection that has no socket: nothing to write.
struct NoTransport;

impl heartbeat_transport::Transport for NoTransport {
    type Error = WsError;
    fn send_ping(&mut self, _: &[u8]) -> Result<heartbeat_transport::Handover, Self::Error> {
        Ok(heartbeat_transport::Handover::Queued)
    }
    fn send_pong(&mut self, _: &[u8]) -> Result<(), Self::Error> {
        Ok(())
    }
    fn send_close(&mut self, _: CloseCode, _: &str) -> Result<(), Self::Error> {
        Ok(())
    }
    fn abort(&mut self) {}
}

/// Listener tokens start here (connection tokens are slot indices below it).
const LISTENER_BASE: usize = usize::MAX / 2;
/// The stop waker's token.
const WAKER: Token = Token(usize::MAX);

/// The default cap on a connection's tungstenite write buffer; see [`small_buffers`].
const MAX_WRITE_BUFFER: usize = 4 << 20;
