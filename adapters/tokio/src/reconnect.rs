//! A client that reconnects by itself: a sequence of live connections.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::{Arc, Mutex};

use futures_util::Stream;
use heartbeat_core::{Action, CloseCode, ConnectFailure, DeathReason, HeartbeatMachine, State};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info, warn};

use crate::clock::{sleep_until_opt, Clock};
use crate::driver::Driver;
use crate::error::Error;
use crate::event::{emit, Event};
use crate::handle::{channel, KeepAlive};
use crate::options::Options;
use crate::request::IntoConnectRequest;
use crate::status::{Publisher, Status, StatusCell};
use heartbeat_transport::tungstenite::Target;

/// Connects to `request` (a `wss://` or `ws://` URL, or a [`ConnectRequest`](crate::ConnectRequest) with
/// headers, subprotocols and TLS settings) and keeps reconnecting per
/// `options.heartbeat`'s backoff (use a `Role::Client` config).
///
/// The URL is checked here, once: a wrong scheme, a missing host, a port outside
/// 1-65535 or `wss://` in a build without TLS is an error at the call
/// ([`Error::Url`], [`Error::TlsUnavailable`]), never an attempt retried forever.
///
/// [`connect`] returns [`Connections`], a stream of [`KeepAlive`]s, one per
/// successful connection. A supervisor task owns one [`HeartbeatMachine`] for the
/// whole sequence (so backoff, ping sequence numbers and counters carry over) and
/// runs each connection's driver in turn. When a connection dies, its handle's
/// [`Receiver`](crate::Receiver) ends with the reason, and the next `KeepAlive`
/// arrives when the machine's backoff delay has passed and a new connection is
/// up. Messages are never carried over: what was queued on a dead connection fails
/// with its error, and the application decides what to resend on the next one
/// (resubscribe, replay from a cursor, ...).
///
/// The sequence ends when the machine finishes: the application closed a connection
/// (`Sender::close`), the server closed with a permanent code (1002, 1003, 1007-1010),
/// `backoff.max_attempts` consecutive attempts failed, or an attempt failed in a
/// way no retry can fix ([`Error::Permanent`]: a rejected certificate, HTTP 4xx
/// other than 408/429; see [`Options::retry_permanent`] to retry those anyway).
/// [`Connections::last_connect_error`] then says why. Dropping `Connections` stops
/// reconnection; the current connection lives on while its handle is held.
///
/// Each attempt (TCP connect with `TCP_NODELAY`, TLS for `wss://`, then the
/// WebSocket handshake with `options.websocket`, by default [`small_buffers`]) must
/// finish within the machine's `connect_timeout` or it counts as failed. After a
/// fault (an unresponsive peer, a broken transport) the next attempt starts after
/// the backoff delay alone: the dead connection's close is not waited for. A
/// `Retry-After` on a refused upgrade (HTTP 429/503, seconds or an HTTP-date)
/// stretches the delay, capped at `backoff.max_requested_delay`. Must be called
/// inside a tokio runtime.
///
/// [`small_buffers`]: crate::small_buffers
pub fn connect(request: impl IntoConnectRequest, options: Options) -> Result<Connections, Error> {
    let request = Arc::new(request.into_connect_request()?);
    let options = options.bind(heartbeat_core::Role::Client, None, Some(request.url()));
    let ws_config = options.websocket;
    Ok(connect_with(
        move || {
            let request = request.clone();
            async move { request.open(ws_config).await }
        },
        options,
    ))
}

/// [`connect`] over TCP connections that `dial` opens (through a TCP proxy or a
/// tunnel, from a chosen local address, with custom name resolution); everything
/// else is as in [`connect`]: `TCP_NODELAY` set on what `dial` returns, TLS for
/// `wss://`, the request's headers and subprotocols, the upgrade with
/// `options.websocket`, and the same classification of failures. `dial` is
/// called once per attempt with the checked target (host, port).
pub fn connect_via<F, Fut>(
    request: impl IntoConnectRequest,
    mut dial: F,
    options: Options,
) -> Result<Connections, Error>
where
    F: FnMut(&Target) -> Fut + Send + 'static,
    Fut: Future<Output = std::io::Result<tokio::net::TcpStream>> + Send + 'static,
{
    let request = Arc::new(request.into_connect_request()?);
    let options = options.bind(heartbeat_core::Role::Client, None, Some(request.url()));
    let ws_config = options.websocket;
    Ok(connect_with(
        move || {
            let request = request.clone();
            let dialed = dial(request.target());
            async move {
                let stream = dialed
                    .await
                    .map_err(|e| Error::Connect(Arc::new(e.into())))?;
                request.open_over(stream, ws_config).await
            }
        },
        options,
    ))
}

/// [`connect`] with a custom way of opening each connection (another transport, a
/// proxy, or a test double). `connector` is called once per attempt.
///
/// The handshake is `connector`'s, so `options.websocket` is not applied: build
/// the stream with [`small_buffers`](crate::small_buffers) (and
/// [`set_nodelay`](crate::set_nodelay) on a TCP socket) to keep the heartbeat's
/// defaults, or use [`connect_via`], which applies them to any TCP socket you dial. Headers, subprotocols and TLS need no custom connector: use a
/// [`ConnectRequest`](crate::ConnectRequest) with [`connect`]. Errors are classified as in [`connect`]: a
/// `connector` error that is [`Error::Connect`] with a permanent cause ends the
/// sequence.
pub fn connect_with<F, Fut, S>(connector: F, options: Options) -> Connections
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<WebSocketStream<S>, Error>> + Send + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let options = options.bind(heartbeat_core::Role::Client, None, None);
    let span = options.span();
    let clock = Clock::start();
    let hb = HeartbeatMachine::new(options.heartbeat, options.seed_or_random());
    let (status_tx, status) = StatusCell::new(Status::of(&hb, &clock));
    let (conn_tx, conn_rx) = mpsc::unbounded_channel();
    let last_error = Arc::new(Mutex::new(None));
    let supervisor = Supervisor {
        hb,
        clock,
        options,
        conn_tx,
        status_tx,
        last_error: last_error.clone(),
        announced: None,
    };
    tokio::spawn(tracing::Instrument::instrument(
        supervisor.run(connector),
        span,
    ));
    Connections {
        conn_rx,
        status,
        last_error,
    }
}

/// The live connections of a reconnecting client, in order; see [`connect`].
///
/// Also a [`Stream`] of [`KeepAlive`].
#[derive(Debug)]
pub struct Connections {
    conn_rx: mpsc::UnboundedReceiver<KeepAlive>,
    status: Arc<StatusCell>,
    last_error: Arc<Mutex<Option<Error>>>,
}

impl Connections {
    /// The next live connection, or `None` once the machine has finished.
    pub async fn next(&mut self) -> Option<KeepAlive> {
        self.conn_rx.recv().await
    }

    /// The machine's snapshot across connections (state, backoff-driven
    /// reconnects, counters, RTT). Never waits.
    pub fn status(&self) -> Status {
        self.status.get()
    }

    /// A watch on [`status`](Self::status); it ends when the client has finished.
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.watch()
    }

    /// Why the most recent connection attempt failed, if it did.
    pub fn last_connect_error(&self) -> Option<Error> {
        lock(&self.last_error).clone()
    }
}

impl Stream for Connections {
    type Item = KeepAlive;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<KeepAlive>> {
        self.conn_rx.poll_recv(cx)
    }
}

struct Supervisor {
    hb: HeartbeatMachine,
    clock: Clock,
    options: Options,
    conn_tx: mpsc::UnboundedSender<KeepAlive>,
    status_tx: Publisher,
    last_error: Arc<Mutex<Option<Error>>>,
    /// The next attempt last announced to the observer.
    announced: Option<(heartbeat_core::Instant, u32)>,
}

impl Supervisor {
    /// Executes the machine's lifecycle: it says when to connect (`Connect`), how
    /// long an attempt may take (its connect deadline), and when to try again; this
    /// loop only connects, runs each connection's driver, and sleeps until the
    /// machine's next deadline.
    async fn run<F, Fut, S>(mut self, mut connector: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<WebSocketStream<S>, Error>>,
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.hb.connect(self.clock.now());
        let mut pending = None;
        loop {
            while let Some(action) = self.hb.poll_action() {
                match action {
                    Action::Connect { attempt } => pending = Some(attempt),
                    other => debug!(?other, "action between connections"),
                }
            }
            self.status_tx.set(self.status());
            if let Some(attempt) = pending.take() {
                if self.conn_tx.is_closed() {
                    debug!("connections dropped; not reconnecting");
                    return;
                }
                pending = self.attempt(&mut connector, attempt).await;
                continue;
            }
            match self.hb.state() {
                State::Reconnecting { at, attempt, .. } => {
                    // Announced here unless the verdict already did (after a clean
                    // close the machine reaches this state only once the handshake
                    // ends).
                    if self.announced != Some((at, attempt)) {
                        self.announce(at, attempt);
                    }
                    tokio::time::sleep_until(self.clock.to_tokio(at)).await;
                    self.hb.handle_timeout(self.clock.now());
                }
                state => {
                    info!(?state, "finished; no more connections");
                    return;
                }
            }
        }
    }

    /// One attempt, bounded by the machine's connect deadline; on success, the
    /// connection's whole life. Returns the next attempt if one was asked for.
    async fn attempt<F, Fut, S>(&mut self, connector: &mut F, attempt: u32) -> Option<u32>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<WebSocketStream<S>, Error>>,
        S: AsyncRead + AsyncWrite + Unpin,
    {
        // Boxed: the connect future (TCP, handshake: about 3.7 KiB) is freed when the
        // attempt ends instead of sizing the supervisor for the connection's life.
        let mut connecting = Box::pin(connector());
        let result = loop {
            let deadline = self.hb.poll_timeout().map(|d| self.clock.to_tokio(d.at));
            tokio::select! {
                biased;
                r = &mut connecting => break r,
                _ = sleep_until_opt(deadline) => {
                    self.hb.handle_timeout(self.clock.now());
                    if let State::Connecting { .. } = self.hb.state() {
                        continue; // woken early: still within the limit
                    }
                    // The machine abandoned the attempt (its Disconnect is drained
                    // by the caller's loop); the connect future is dropped here.
                    let waited = match self.hb.state().reason() {
                        Some(DeathReason::ConnectFailed(ConnectFailure::TimedOut { waited })) => waited,
                        _ => self.hb.config().connect_timeout(),
                    };
                    self.failed(Error::ConnectTimeout(waited));
                    return None;
                }
            }
        };
        let now = self.clock.now();
        let ws = match result {
            Ok(ws) => ws,
            Err(e) => {
                if let Some(delay) = e.retry_after() {
                    self.hb.handle_retry_after(now, delay);
                }
                self.hb.handle_connect_failed(now);
                let e = e.classified();
                let retrying = matches!(self.hb.state(), State::Reconnecting { .. });
                if retrying && e.is_permanent() && !self.options.retry_permanent {
                    // No retry can fix it: finish (the machine keeps the failed
                    // attempt as its reason) instead of scheduling the next one.
                    info!(error = %e, "permanent connect failure; not retrying");
                    self.hb.close(now, CloseCode::NORMAL);
                }
                self.failed(e);
                return None;
            }
        };
        *lock(&self.last_error) = None;
        self.hb.handle_connected(now);
        info!(connects = self.hb.stats().connects, "connected");
        emit(&self.options.observer, Event::Connected { attempt });
        let (mut link, handle) = channel(&self.options, self.status());
        link.mirror = Some(self.status_tx.cell().clone());
        if self.conn_tx.send(handle).is_err() {
            // Nobody will ever read this connection: close it cleanly.
            self.hb.close(now, CloseCode::GOING_AWAY);
        }
        let codec = self.options.codec.clone();
        let (next, announced) = Driver::new(ws, &mut self.hb, self.clock, codec, link)
            .run()
            .await;
        self.announced = announced;
        next
    }

    /// Reports a failed attempt; the machine already knows.
    fn failed(&mut self, e: Error) {
        debug!(error = %e, "connect failed");
        emit(
            &self.options.observer,
            Event::ConnectFailed { error: e.clone() },
        );
        *lock(&self.last_error) = Some(e);
        if let State::Reconnecting { at, attempt, .. } = self.hb.state() {
            self.announce(at, attempt);
        }
    }

    /// Tells the observer and the log when the next attempt starts.
    fn announce(&mut self, at: heartbeat_core::Instant, attempt: u32) {
        let after = at - self.hb.now();
        emit(
            &self.options.observer,
            Event::Reconnecting { after, attempt },
        );
        self.announced = Some((at, attempt));
        if attempt > 1 {
            warn!(?after, attempt, "reconnecting after backoff");
        } else {
            info!(?after, attempt, "reconnecting");
        }
    }

    fn status(&self) -> Status {
        Status::of(&self.hb, &self.clock)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the Option half-written.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
