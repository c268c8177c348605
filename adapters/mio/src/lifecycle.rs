//! A connection's life as the machine directs it: accepted or created, an attempt
//! started on `Connect`, the handshake driven by readiness, opened, and the socket
//! dropped on `Disconnect`. No deadline lives here: the machine bounds the attempt
//! (`connect_timeout`) and the close (`close_timeout`).

use std::io::{self, ErrorKind};
use std::sync::Arc;
use std::time::Duration;

use heartbeat_core::{CloseCode, HeartbeatMachine, Instant, State};
use heartbeat_transport::tungstenite::{classify, Failure, Target, UrlError};
use heartbeat_transport::{seed, AcceptPause};
use mio::net::TcpStream;
use mio::{Interest, Token};
use tungstenite::{Error as WsError, WebSocket};

use crate::conn::{Conn, Io, Remote, Side};
use crate::reactor::Reactor;
use crate::slab::ConnId;
use crate::sock::Sock;
use crate::upgrade::{Step, Upgrade};

impl Reactor {
    /// Accepts every pending connection of listener `index`. Each gets a server
    /// machine whose first attempt is the WebSocket upgrade.
    pub(crate) fn accept(&mut self, index: usize, now: Instant) {
        loop {
            let Some(listener) = self.listeners.get(index) else {
                return;
            };
            let mut stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => match self.accept_backoff.failed(&e) {
                    // Out of descriptors: the listener stays readable-but-failing
                    // and edge-triggered readiness will not come again for the
                    // connections already waiting, so retry on a timer (10–100 ms)
                    // instead of at once (a spin) or never (a stall).
                    AcceptPause::Wait { delay, first } => {
                        self.stats.accept_errors += 1;
                        if first {
                            self.stats.accept_exhaustions += 1;
                        }
                        self.accept_retry = Some(now + delay);
                        return;
                    }
                    // An aborted connection: take the next one.
                    AcceptPause::Retry
                        if matches!(
                            e.kind(),
                            ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
                        ) =>
                    {
                        continue
                    }
                    // Anything else: try again on the next readiness event.
                    AcceptPause::Retry => return,
                },
            };
            self.accept_backoff.accepted();
            self.accept_retry = None;
            if self.conns.len() >= self.max_connections
                || self.server_handshakes >= self.max_handshakes
            {
                // Over `Limits::max_connections` or `max_handshakes`: refused, the
                // socket dropped, before any handshake work.
                self.stats.accepts_refused += 1;
                continue;
            }
            self.stats.accepted += 1;
            let _ = stream.set_nodelay(true);
            let hb = HeartbeatMachine::new(self.server.clone(), seed());
            let id = self.conns.insert(Conn::new(Side::Server, hb));
            self.with_conn(id, now, |reactor, conn| {
                // Unregistered, the socket is never handed to the attempt, which then
                // fails at once.
                if reactor.register(&mut stream, id).is_ok() {
                    conn.io = Io::Accepted(Sock::new(stream));
                }
                conn.hb.connect(now);
                reactor.drive_actions(conn, id, now);
            });
        }
    }

    /// Adds a client connection to `url` and lets its machine start the first
    /// attempt. A bad URL is an `InvalidInput` error carrying the reason.
    /// The accept retry after descriptor exhaustion is due: try every listener.
    pub(crate) fn retry_accept(&mut self, now: Instant) {
        if self.accept_retry.is_some_and(|at| at <= now) {
            self.accept_retry = None;
            for index in 0..self.listeners.len() {
                self.accept(index, now);
            }
        }
    }

    pub(crate) fn add_client(&mut self, url: &str) -> io::Result<ConnId> {
        // The error carries the `UrlError` itself (reachable with `get_ref`).
        let invalid = |e: UrlError| io::Error::new(ErrorKind::InvalidInput, e);
        // Connections to one URL share its parsed and resolved form.
        if let Some(remote) = self.remotes.get(url).cloned() {
            return Ok(self.add_client_to(remote));
        }
        let target = Target::parse(url).map_err(invalid)?;
        if target.tls {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "wss:// needs TLS, which heartbeat-mio does not provide",
            ));
        }
        target.request().map_err(invalid)?;
        let addr = target.resolve()?;
        let remote = Arc::new(Remote { target, addr });
        self.remotes.insert(url.into(), remote.clone());
        Ok(self.add_client_to(remote))
    }

    /// Adds a client connection to `remote` and lets its machine start.
    fn add_client_to(&mut self, remote: Arc<Remote>) -> ConnId {
        let now = self.clock.now();
        let mut conn = Conn::new(
            Side::Client,
            HeartbeatMachine::new(self.client.clone(), seed()),
        );
        conn.remote = Some(remote);
        let id = self.conns.insert(conn);
        self.with_conn(id, now, |reactor, conn| {
            conn.hb.connect(now);
            reactor.drive_actions(conn, id, now);
        });
        id
    }

    /// The machine's `Connect`: a client connects over TCP (the handshake follows
    /// when the socket is writable); a server starts the upgrade of the socket it
    /// accepted.
    pub(crate) fn start_attempt(&mut self, conn: &mut Conn, id: ConnId, now: Instant) {
        if !std::mem::replace(&mut conn.attempting, true) && conn.side == Side::Server {
            self.server_handshakes += 1;
        }
        match conn.side {
            Side::Server => match std::mem::replace(&mut conn.io, Io::None) {
                Io::Accepted(sock) => self.upgrade(conn, id, Upgrade::server(sock), now),
                other => {
                    conn.io = other;
                    self.attempt_failed(conn, id, now, None);
                }
            },
            Side::Client => {
                let Some(addr) = conn.remote.as_ref().map(|r| r.addr) else {
                    return self.attempt_failed(conn, id, now, None);
                };
                self.stats.connects_started += 1;
                let mut stream = match TcpStream::connect(addr) {
                    Ok(s) => s,
                    Err(_) => return self.attempt_failed(conn, id, now, None),
                };
                let _ = stream.set_nodelay(true);
                let registered = self.register(&mut stream, id);
                // Kept even if unregistered: the machine's Disconnect lets go of it.
                conn.io = Io::Connecting(Sock::new(stream));
                if registered.is_err() {
                    self.attempt_failed(conn, id, now, None);
                }
            }
        }
    }

    /// Moves a connection forward on readiness (or on its deadline, with both
    /// flags set, to take in what the socket already holds).
    pub(crate) fn advance(
        &mut self,
        conn: &mut Conn,
        id: ConnId,
        now: Instant,
        readable: bool,
        writable: bool,
    ) {
        match std::mem::replace(&mut conn.io, Io::None) {
            Io::Connecting(sock) => self.connecting(conn, id, sock, now),
            Io::Upgrading(upgrade) => self.upgrade(conn, id, upgrade, now),
            Io::Open(ws) => {
                conn.io = Io::Open(ws);
                if writable && conn.blocked {
                    self.flush(conn, id, now);
                }
                if readable {
                    self.read_input(conn, id, now);
                }
            }
            other @ (Io::Accepted(_) | Io::None) => conn.io = other,
        }
    }

    /// A TCP connect in progress became ready: check it, start the handshake.
    fn connecting(&mut self, conn: &mut Conn, id: ConnId, mut sock: Sock, now: Instant) {
        let stream = sock.tcp();
        if !matches!(stream.take_error(), Ok(None)) {
            conn.io = Io::Connecting(sock);
            return self.attempt_failed(conn, id, now, None);
        }
        match stream.peer_addr() {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::NotConnected | ErrorKind::WouldBlock) => {
                conn.io = Io::Connecting(sock);
                return;
            }
            Err(_) => {
                conn.io = Io::Connecting(sock);
                return self.attempt_failed(conn, id, now, None);
            }
        }
        let request = match conn.remote.as_ref().map(|r| r.target.request()) {
            Some(Ok(request)) => request,
            _ => {
                conn.io = Io::Connecting(sock);
                return self.attempt_failed(conn, id, now, None);
            }
        };
        match Upgrade::client(sock, request) {
            Ok(upgrade) => self.upgrade(conn, id, upgrade, now),
            Err(e) => self.handshake_failed(conn, id, now, &e),
        }
    }

    /// Moves a WebSocket handshake on as far as the socket allows.
    fn upgrade(&mut self, conn: &mut Conn, id: ConnId, upgrade: Box<Upgrade>, now: Instant) {
        match upgrade.advance(&mut self.scratch, self.websocket) {
            Step::Open(ws) => self.opened(conn, id, ws, now),
            Step::Pending(upgrade) => conn.io = Io::Upgrading(upgrade),
            Step::Failed(e) => self.handshake_failed(conn, id, now, &e),
        }
    }

    /// The handshake failed: as [`attempt_failed`](Self::attempt_failed), with the
    /// shared classification deciding what comes next. A failure no retry can fix
    /// (HTTP 4xx other than 408/429, a refused subprotocol) finishes the machine
    /// instead of scheduling the next attempt; the handler's `on_closed` then says
    /// `ConnectFailed`.
    fn handshake_failed(&mut self, conn: &mut Conn, id: ConnId, now: Instant, e: &WsError) {
        match classify(e) {
            Failure::Transient { retry_after } => self.attempt_failed(conn, id, now, retry_after),
            Failure::Permanent(_) => {
                self.attempt_failed(conn, id, now, None);
                if let State::Reconnecting { .. } = conn.hb.state() {
                    conn.hb.close(now, CloseCode::NORMAL);
                    self.drive_actions(conn, id, now);
                }
            }
        }
    }

    /// The attempt failed (refused, reset, upgrade rejected): tell the machine, with
    /// the server's `Retry-After` if it sent one. Its `Disconnect` drops what is
    /// left of the socket; a client's next attempt comes with its backoff.
    fn attempt_failed(
        &mut self,
        conn: &mut Conn,
        id: ConnId,
        now: Instant,
        retry_after: Option<Duration>,
    ) {
        if self.attempt_over(conn) {
            self.stats.handshakes_failed += 1;
        }
        if let Some(delay) = retry_after {
            conn.hb.handle_retry_after(now, delay);
        }
        conn.hb.handle_connect_failed(now);
        self.drive_actions(conn, id, now);
    }

    /// The handshake completed: the machine starts its heartbeat.
    fn opened(&mut self, conn: &mut Conn, id: ConnId, ws: WebSocket<Sock>, now: Instant) {
        conn.io = Io::Open(ws);
        self.attempt_over(conn);
        conn.read_over = false;
        conn.blocked = false;
        conn.ping_unflushed = false;
        conn.close_unflushed = false;
        conn.hb.handle_connected(now);
        conn.announced = true;
        self.stats.opened += 1;
        self.stats.live += 1;
        self.pending.push_back(crate::handler::Event::Open(id));
        // Edge-triggered readiness: frames that came with the handshake are read now.
        self.read_input(conn, id, now);
        self.drive_actions(conn, id, now);
    }

    /// The machine's `Disconnect`: drop the socket (or the attempt in progress).
    pub(crate) fn disconnect(&mut self, conn: &mut Conn) {
        if self.attempt_over(conn) {
            // Abandoned by the machine at `connect_timeout`.
            self.stats.handshakes_failed += 1;
        }
        self.withdraw(conn);
        if let Some(stream) = conn.stream_mut() {
            let _ = self.poll.registry().deregister(stream);
        }
        conn.io = Io::None;
        conn.blocked = false;
        conn.ping_unflushed = false;
        conn.close_unflushed = false;
    }

    /// The attempt in progress (if any) is over: returns whether there was one,
    /// and gives back its place among the server handshakes in progress.
    fn attempt_over(&mut self, conn: &mut Conn) -> bool {
        let was = std::mem::take(&mut conn.attempting);
        if was && conn.side == Side::Server {
            self.server_handshakes -= 1;
        }
        was
    }

    /// The connection no longer counts as open.
    pub(crate) fn withdraw(&mut self, conn: &mut Conn) {
        if std::mem::take(&mut conn.announced) {
            self.stats.live -= 1;
        }
    }

    /// Registers a connection's socket for both directions under its slot's token.
    fn register(&mut self, stream: &mut TcpStream, id: ConnId) -> io::Result<()> {
        self.poll.registry().register(
            stream,
            Token(id.slot() as usize),
            Interest::READABLE | Interest::WRITABLE,
        )
    }
}
