//! [`Reactor`]: the driver minus the application's handler. One `mio::Poll`, one
//! slab of connections, one timer heap holding only the machines' deadlines.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use heartbeat_core::{Config, Instant, Role, State};
use heartbeat_transport::{AcceptBackoff, Clock, LagMeter};
use mio::net::TcpListener;
use mio::Poll;
use tungstenite::protocol::WebSocketConfig;

use crate::conn::{Conn, Io, Remote};
use crate::handler::Event;
use crate::options::Options;
use crate::slab::{ConnId, Slab};
use crate::stats::DriverStats;
use crate::stop::StopHandle;
use crate::timers::{Entry, TimerHeap};

/// Everything a [`Ctx`](crate::Ctx) can reach.
pub(crate) struct Reactor {
    pub(crate) poll: Poll,
    pub(crate) clock: Clock,
    /// The configuration in the server role, shared by every accepted connection.
    pub(crate) server: Arc<Config>,
    /// The configuration in the client role, shared by every connection opened here.
    pub(crate) client: Arc<Config>,
    pub(crate) websocket: WebSocketConfig,
    pub(crate) conns: Slab,
    pub(crate) timers: TimerHeap,
    pub(crate) listeners: Vec<TcpListener>,
    /// Callbacks for the handler, delivered after the I/O that caused them.
    pub(crate) pending: VecDeque<Event>,
    pub(crate) stats: DriverStats,
    pub(crate) stop: Option<StopHandle>,
    /// How late this loop's timers run: every machine's pong verdict allows for it.
    pub(crate) lag: LagMeter,
    /// One read buffer for every WebSocket handshake of this driver (an HTTP head
    /// is a few hundred bytes; see `upgrade.rs`).
    pub(crate) scratch: Box<[u8]>,
    /// [`Options::ping_with_pong`].
    pub(crate) ping_with_pong: Option<u32>,
    /// Where clients connect, by URL: parsed and resolved once, shared by every
    /// connection to it (about 150 bytes each otherwise); dropped with the last.
    pub(crate) remotes: HashMap<Box<str>, Arc<Remote>>,
    /// Descriptor exhaustion on accept: the episode, and when to retry the listeners.
    pub(crate) accept_backoff: AcceptBackoff,
    pub(crate) accept_retry: Option<Instant>,
    /// `Limits::max_connections`: accepted connections past it are refused.
    pub(crate) max_connections: usize,
    /// `Limits::max_handshakes`: accepted connections past it are refused while
    /// that many server handshakes are in progress.
    pub(crate) max_handshakes: usize,
    /// Server handshakes in progress now.
    pub(crate) server_handshakes: usize,
}

impl Reactor {
    pub(crate) fn new(options: &Options) -> std::io::Result<Reactor> {
        Ok(Reactor {
            poll: Poll::new()?,
            clock: Clock::new(),
            server: Arc::new(options.config.with_role(Role::Server)),
            client: Arc::new(options.config.with_role(Role::Client)),
            websocket: options.websocket,
            conns: Slab::default(),
            timers: TimerHeap::default(),
            listeners: Vec::new(),
            pending: VecDeque::new(),
            stats: DriverStats::default(),
            stop: None,
            lag: LagMeter::new(LAG_WINDOW),
            scratch: vec![0; SCRATCH].into_boxed_slice(),
            ping_with_pong: options.ping_with_pong.filter(|&n| n > 0),
            remotes: HashMap::new(),
            accept_backoff: AcceptBackoff::new(),
            accept_retry: None,
            max_connections: options.limits.max_connections,
            max_handshakes: options.limits.max_handshakes,
            server_handshakes: 0,
        })
    }

    /// The counters, with the figures that are read rather than counted.
    pub(crate) fn stats(&self) -> DriverStats {
        DriverStats {
            connections: self.conns.len(),
            timer_heap_len: self.timers.len(),
            handshaking: self.server_handshakes,
            local_lag: self.lag.current(std::time::Instant::now()),
            ..self.stats
        }
    }

    /// Ids of the connections open now (state `Open`, socket up).
    pub(crate) fn open_ids(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| matches!(c.io, Io::Open(_)) && c.hb.state() == State::Open)
            .map(|(id, _)| id)
            .collect()
    }

    /// Takes the connection out of its slot, runs `f`, then puts it back and re-files
    /// its wake time if it changed, or removes it if the machine is finished with it.
    pub(crate) fn with_conn(
        &mut self,
        id: ConnId,
        now: Instant,
        f: impl FnOnce(&mut Reactor, &mut Conn),
    ) {
        let Some(mut conn) = self.conns.take(id) else {
            return;
        };
        f(self, &mut conn);
        self.settle(id, conn, now);
    }

    /// Puts a connection back after work: removed if the machine finished and let
    /// go of its socket, else re-filed in the timer heap at its machine's deadline.
    fn settle(&mut self, id: ConnId, mut conn: Box<Conn>, now: Instant) {
        if let (Io::None, State::Finished { reason }) = (&conn.io, conn.hb.state()) {
            if let Some(remote) = conn.remote.take() {
                // The table's and this one: the last connection to that URL.
                if Arc::strong_count(&remote) == 2 {
                    self.remotes.remove(&remote.target.url);
                }
            }
            self.stats.removed += 1;
            self.pending.push_back(Event::Closed(id, reason));
            self.conns.release(id);
            return;
        }
        let wake = conn.wake_at().map(|at| at.max(now));
        if wake != conn.filed {
            conn.filed = wake;
            if let Some(at) = wake {
                self.timers.push(Entry {
                    at,
                    slot: id.slot(),
                    gen: id.gen(),
                });
            }
        }
        self.conns.put(id, conn);
    }

    /// The earliest current wake time (a machine's, or the accept retry after
    /// descriptor exhaustion); stale entries on top are discarded.
    pub(crate) fn next_wake(&mut self) -> Option<Instant> {
        let retry = self.accept_retry;
        while let Some(e) = self.timers.peek() {
            if is_current(&self.conns, &e) {
                return Some(retry.map_or(e.at, |r| r.min(e.at)));
            }
            self.timers.pop();
            self.stats.stale_timer_pops += 1;
        }
        retry
    }

    /// Wakes every connection whose filed time is due, and only those.
    pub(crate) fn fire_timers(&mut self, now: Instant) {
        while let Some(e) = self.timers.peek() {
            if e.at > now {
                break;
            }
            self.timers.pop();
            if !is_current(&self.conns, &e) {
                self.stats.stale_timer_pops += 1;
                continue;
            }
            let late = now - e.at;
            self.stats.timer_wakeups += 1;
            self.stats.timer_late_max = self.stats.timer_late_max.max(late);
            self.stats.timer_late_total += late;
            let id = ConnId::new(e.slot, e.gen);
            self.with_conn(id, now, |reactor, conn| {
                conn.filed = None;
                reactor.on_timer(conn, id, now);
            });
            // Recorded after the verdict: this deadline's own lateness is the stall
            // allowance's business; the meter tells the *other* machines.
            self.lag
                .record(self.clock.to_std(e.at), self.clock.to_std(now));
        }
        let live = self.conns.len();
        let conns = &self.conns;
        self.timers.maybe_compact(live, |e| is_current(conns, e));
    }

    /// A connection's machine deadline came. Evidence first: whatever the socket
    /// already holds (a finished write, a readable pong, a handshake reply) is taken
    /// in before the machine judges the deadline.
    fn on_timer(&mut self, conn: &mut Conn, id: ConnId, now: Instant) {
        self.advance(conn, id, now, true, true);
        let lag = self.lag.current(self.clock.to_std(now));
        conn.hb.handle_local_lag(now, lag);
        conn.hb.handle_timeout(now);
        self.drive_actions(conn, id, now);
    }

    /// A readiness event for the connection in `slot`.
    pub(crate) fn ready(&mut self, slot: usize, now: Instant, readable: bool, writable: bool) {
        let Some(id) = self.conns.id_at(slot) else {
            return;
        };
        self.with_conn(id, now, |reactor, conn| {
            if readable {
                if let Some(sock) = conn.sock_mut() {
                    sock.readable();
                }
            }
            reactor.advance(conn, id, now, readable, writable)
        });
    }
}

/// The size of the handshake scratch buffer: any HTTP head a WebSocket peer sends
/// fits in one read (a larger one is collected over several).
const SCRATCH: usize = 4096;

/// How long a measured lateness is remembered (one to two windows).
const LAG_WINDOW: std::time::Duration = std::time::Duration::from_millis(500);

/// Whether a heap entry is the wake time its connection filed last.
fn is_current(conns: &Slab, e: &Entry) -> bool {
    conns
        .get(ConnId::new(e.slot, e.gen))
        .is_some_and(|c| c.filed == Some(e.at))
}
