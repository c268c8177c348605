//! The server side: accept a connection into the heartbeat (a driver task's
//! [`KeepAlive`], or a lean [`KeepAliveStream`]), and a registry of live clients
//! that forgets dead ones by itself.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{Callback, NoCallback};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

use heartbeat_core::HeartbeatMachine;
use heartbeat_transport::tungstenite::{Admission, Limits};

use crate::clock::{sleep_until_opt, Clock};
use crate::error::Error;
use crate::handle::{KeepAlive, Sender};
use crate::mailbox::{Mailbox, Offer, Registration};
use crate::net::set_nodelay;
use crate::options::Options;
use crate::status::Status;
use crate::stream::KeepAliveStream;

/// A registered client's id, unique within its [`Registry`].
pub type ClientId = u64;

/// Accepts a WebSocket on `stream`, starts the server-role heartbeat on it and
/// registers it in `registry`, which drops it at detection time when it dies.
///
/// The upgrade handshake must finish within the machine's `connect_timeout`. Use a
/// `Role::Server` heartbeat config. The registry keeps a [`Sender`] for broadcasts,
/// so a registered connection lives until its heartbeat fails, the peer closes, or
/// the application closes it (`registry.sender(id)` then [`Sender::close`]); dropping
/// the returned handle alone does not close it.
pub async fn accept<S>(
    stream: S,
    options: &Options,
    registry: &Registry,
) -> Result<(ClientId, KeepAlive), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    accept_from(stream, None, options, registry, NoCallback).await
}

/// [`accept`] for TCP: sets `TCP_NODELAY` and records the peer address.
pub async fn accept_tcp(
    stream: TcpStream,
    options: &Options,
    registry: &Registry,
) -> Result<(ClientId, KeepAlive), Error> {
    set_nodelay(&stream).map_err(|e| Error::Connect(Arc::new(e.into())))?;
    let peer = stream.peer_addr().ok();
    accept_from(stream, peer, options, registry, NoCallback).await
}

/// Accepts with `callback` deciding on the upgrade request (see
/// [`accept_with`](crate::accept_with)): a client it rejects is never registered.
pub(crate) async fn accept_from<S, C>(
    stream: S,
    peer: Option<SocketAddr>,
    options: &Options,
    registry: &Registry,
    callback: C,
) -> Result<(ClientId, KeepAlive), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    C: Callback + Unpin,
{
    // Over `max_connections` or `max_handshakes` (a registry made with limits):
    // refused before the handshake, the socket dropped.
    let mut slot = match &registry.admission {
        Some(a) => Some(a.admit().map_err(Error::Refused)?),
        None => None,
    };
    let options = &options.bind(heartbeat_core::Role::Server, peer, None);
    // Boxed: the handshake's state is freed when it ends instead of sizing the
    // accepting task for the connection's whole life.
    let (ws, hb, clock) = Box::pin(tracing::Instrument::instrument(
        upgrade_with(stream, options, callback),
        options.span(),
    ))
    .await?;
    if let Some(slot) = &mut slot {
        slot.opened();
    }
    // Insert under the lock the removal hook needs: a connection that dies at once
    // is removed only after it was inserted, never before.
    let mut inner = registry.lock();
    inner.next_id += 1;
    let id = inner.next_id;
    let weak = Arc::downgrade(&registry.inner);
    let on_dead = Box::new(move || {
        // The connection's place is given back at the verdict (its close handshake
        // is bounded by close_timeout).
        drop(slot);
        if let Some(inner) = weak.upgrade() {
            remove(&inner, id);
        }
    });
    let keepalive = KeepAlive::spawn(ws, hb, clock, options, Some(on_dead));
    let sender = keepalive.sender();
    inner.clients.insert(
        id,
        Entry {
            handle: Handle::Driver(sender),
            peer,
            dropped: 0,
        },
    );
    drop(inner);
    options
        .span()
        .in_scope(|| debug!(id, ?peer, "client registered"));
    Ok((id, keepalive))
}

/// Accepts a WebSocket on `stream` (with `TCP_NODELAY`) into a
/// [`KeepAliveStream`] registered in `registry`: the lean server path, with no
/// driver task and no channel per connection.
///
/// The stream is the connection: poll it in the task that serves the client (its
/// heartbeat runs while it is polled) and send with it (it is a `Sink`). The
/// registry counts it, knows its peer, and [`broadcast`](Registry::broadcast)s to
/// it through a small mailbox the stream empties as it runs (bounded by
/// `options.outbound_capacity`; a full one drops and counts, never waits). The
/// stream leaves the registry at its verdict, at detection time, or when it is
/// dropped. The registry has no [`Sender`] and no status for it
/// ([`Registry::sender`] and [`Registry::status`] return `None`): the stream's
/// [`status`](KeepAliveStream::status) is computed when asked, in its own task.
/// The upgrade must finish within the machine's `connect_timeout`.
pub async fn accept_stream(
    stream: TcpStream,
    options: &Options,
    registry: &Registry,
) -> Result<(ClientId, KeepAliveStream<TcpStream>), Error> {
    set_nodelay(&stream).map_err(|e| Error::Connect(Arc::new(e.into())))?;
    let peer = stream.peer_addr().ok();
    // Over `max_connections` or `max_handshakes` (a registry made with limits):
    // refused before the handshake, the socket dropped.
    let mut slot = match &registry.admission {
        Some(a) => Some(a.admit().map_err(Error::Refused)?),
        None => None,
    };
    let options = &options.bind(heartbeat_core::Role::Server, peer, None);
    let (ws, hb, clock) = Box::pin(tracing::Instrument::instrument(
        upgrade(stream, options),
        options.span(),
    ))
    .await?;
    if let Some(slot) = &mut slot {
        slot.opened();
    }
    let mut conn = KeepAliveStream::from_parts(ws, hb, clock, options);
    let mailbox = Arc::new(Mailbox::new(options.outbound_capacity));
    let mut inner = registry.lock();
    inner.next_id += 1;
    let id = inner.next_id;
    inner.clients.insert(
        id,
        Entry {
            handle: Handle::Stream(mailbox.clone()),
            peer,
            dropped: 0,
        },
    );
    drop(inner);
    // Nothing runs until the stream is polled: it cannot leave before it joined.
    conn.register(Registration {
        id,
        registry: Arc::downgrade(&registry.inner),
        mailbox,
        _slot: slot,
    });
    debug!(id, ?peer, "client registered (stream)");
    Ok((id, conn))
}

/// Live clients of a server; dead ones are removed by their driver at detection time.
///
/// Cheap to clone (an `Arc`); the lock is never held across an `.await`.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    inner: Arc<Mutex<RegistryInner>>,
    /// Connection and handshake counts against `Limits` (see
    /// [`with_limits`](Registry::with_limits)); `None`: unlimited.
    admission: Option<Admission>,
}

/// The registry's state, behind its lock.
#[derive(Debug, Default)]
pub(crate) struct RegistryInner {
    next_id: ClientId,
    clients: HashMap<ClientId, Entry>,
}

#[derive(Debug)]
struct Entry {
    handle: Handle,
    peer: Option<SocketAddr>,
    /// Broadcast messages dropped because this client's queue was full.
    dropped: u64,
}

/// How the registry reaches a client.
#[derive(Debug)]
enum Handle {
    /// A [`KeepAlive`]'s driver task, through its command channel.
    Driver(Sender),
    /// A [`KeepAliveStream`], through its mailbox.
    Stream(Arc<Mailbox>),
}

/// What a [`Registry::broadcast`] did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct BroadcastReport {
    /// Clients whose queue took the message.
    pub queued: usize,
    /// Clients whose queue was full: the message was dropped for them and counted.
    pub dropped: usize,
    /// Clients whose connection was already over.
    pub gone: usize,
}

impl Registry {
    /// An empty registry with no connection limits.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// An empty registry that refuses connections past `limits.max_connections`
    /// held (handshakes included) or `limits.max_handshakes` in progress:
    /// [`accept`] then fails at once with [`Error::Refused`] and drops the socket,
    /// so half-open handshakes or a connection flood cannot take the process.
    pub fn with_limits(limits: &Limits) -> Registry {
        Registry {
            admission: Some(Admission::new(limits)),
            ..Registry::default()
        }
    }

    /// Connections admitted and not yet over (handshakes included), when made
    /// [`with_limits`](Registry::with_limits).
    pub fn admitted(&self) -> Option<usize> {
        self.admission.as_ref().map(Admission::connections)
    }

    /// How many clients are live.
    pub fn len(&self) -> usize {
        self.lock().clients.len()
    }

    /// Whether no client is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live clients' ids, in no particular order.
    pub fn ids(&self) -> Vec<ClientId> {
        self.lock().clients.keys().copied().collect()
    }

    /// Whether `id` is still live.
    pub fn contains(&self, id: ClientId) -> bool {
        self.lock().clients.contains_key(&id)
    }

    /// `id`'s heartbeat snapshot; `None` for a [`KeepAliveStream`] (ask the stream).
    pub fn status(&self, id: ClientId) -> Option<Status> {
        match &self.lock().clients.get(&id)?.handle {
            Handle::Driver(sender) => Some(sender.status()),
            Handle::Stream(_) => None,
        }
    }

    /// `id`'s peer address, if it was accepted over TCP.
    pub fn peer(&self, id: ClientId) -> Option<SocketAddr> {
        self.lock().clients.get(&id).and_then(|e| e.peer)
    }

    /// A sending handle for `id`; `None` for a [`KeepAliveStream`] (send with the
    /// stream, or broadcast).
    pub fn sender(&self, id: ClientId) -> Option<Sender> {
        match &self.lock().clients.get(&id)?.handle {
            Handle::Driver(sender) => Some(sender.clone()),
            Handle::Stream(_) => None,
        }
    }

    /// Broadcast messages dropped for `id` because its queue was full.
    pub fn dropped(&self, id: ClientId) -> Option<u64> {
        self.lock().clients.get(&id).map(|e| e.dropped)
    }

    /// Queues `msg` for every live client without ever waiting: a client whose
    /// queue is full (slow, or dead and not yet detected) misses this message and
    /// has it counted in [`dropped`](Self::dropped); the heartbeat, not the
    /// broadcast, decides when it is dead.
    pub fn broadcast(&self, msg: &Message) -> BroadcastReport {
        let mut report = BroadcastReport::default();
        for entry in self.lock().clients.values_mut() {
            let offer = match &entry.handle {
                Handle::Driver(sender) => match sender.try_send(msg.clone()) {
                    Ok(true) => Offer::Queued,
                    Ok(false) => Offer::Full,
                    Err(_) => Offer::Gone,
                },
                Handle::Stream(mailbox) => mailbox.offer(msg),
            };
            match offer {
                Offer::Queued => report.queued += 1,
                Offer::Full => {
                    entry.dropped += 1;
                    report.dropped += 1;
                }
                Offer::Gone => report.gone += 1,
            }
        }
        report
    }

    fn lock(&self) -> MutexGuard<'_, RegistryInner> {
        lock(&self.inner)
    }
}

/// Removes `id` (its connection is over).
pub(crate) fn remove(inner: &Mutex<RegistryInner>, id: ClientId) {
    lock(inner).clients.remove(&id);
    debug!(id, "client removed from registry");
}

fn lock(m: &Mutex<RegistryInner>) -> MutexGuard<'_, RegistryInner> {
    // Every critical section is a single map operation: a panic cannot leave the
    // map inconsistent, so a poisoned lock is still safe to use.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The server side of the WebSocket upgrade on `stream`, bounded by the machine's
/// connect timeout like any connection attempt; returns the machine, already told
/// the connection is up, and the clock it is fed from.
pub(crate) async fn upgrade<S>(
    stream: S,
    options: &Options,
) -> Result<(WebSocketStream<S>, HeartbeatMachine, Clock), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    upgrade_with(stream, options, NoCallback).await
}

/// [`upgrade`] with `callback` deciding on the client's request.
pub(crate) async fn upgrade_with<S, C>(
    stream: S,
    options: &Options,
    callback: C,
) -> Result<(WebSocketStream<S>, HeartbeatMachine, Clock), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: Callback + Unpin,
{
    let handshake = async {
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(options.websocket))
            .await
            .map_err(|e| Error::Connect(Arc::new(e)))
    };
    attempt(handshake, options).await
}

/// One connection attempt of a single connection (`handshake`: a server's upgrade
/// or a client's connect), bounded by its machine's `connect_timeout`; returns the
/// machine, already told the connection is up, and the clock it is fed from.
pub(crate) async fn attempt<S, F>(
    handshake: F,
    options: &Options,
) -> Result<(WebSocketStream<S>, HeartbeatMachine, Clock), Error>
where
    F: core::future::Future<Output = Result<WebSocketStream<S>, Error>>,
{
    let clock = Clock::start();
    let mut hb = HeartbeatMachine::new(options.single(), options.seed_or_random());
    hb.connect(clock.now());
    while hb.poll_action().is_some() {} // Connect: the handshake is the attempt
    let limit = hb.poll_timeout().map(|d| clock.to_tokio(d.at));
    let ws = tokio::select! {
        r = handshake => r?,
        _ = sleep_until_opt(limit) => {
            hb.handle_timeout(clock.now());
            return Err(Error::ConnectTimeout(hb.config().connect_timeout()));
        }
    };
    hb.handle_connected(clock.now());
    Ok((ws, hb, clock))
}
