//! The server side: accept a connection into the heartbeat, and a registry of live
//! clients that forgets dead ones by itself.

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

use crate::clock::{sleep_until_opt, Clock};
use crate::error::Error;
use crate::handle::{KeepAlive, Sender};
use crate::net::set_nodelay;
use crate::options::Options;
use crate::status::Status;

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
    let (ws, hb, clock) = upgrade_with(stream, options, callback).await?;
    // Insert under the lock the removal hook needs: a connection that dies at once
    // is removed only after it was inserted, never before.
    let mut inner = registry.lock();
    inner.next_id += 1;
    let id = inner.next_id;
    let weak = Arc::downgrade(&registry.inner);
    let on_dead = Box::new(move || {
        if let Some(inner) = weak.upgrade() {
            lock(&inner).clients.remove(&id);
            debug!(id, "client removed from registry");
        }
    });
    let keepalive = KeepAlive::spawn(ws, hb, clock, options, Some(on_dead));
    let sender = keepalive.sender();
    inner.clients.insert(
        id,
        Entry {
            sender,
            peer,
            dropped: 0,
        },
    );
    drop(inner);
    debug!(id, ?peer, "client registered");
    Ok((id, keepalive))
}

/// Live clients of a server; dead ones are removed by their driver at detection time.
///
/// Cheap to clone (an `Arc`); the lock is never held across an `.await`.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: ClientId,
    clients: HashMap<ClientId, Entry>,
}

#[derive(Debug)]
struct Entry {
    sender: Sender,
    peer: Option<SocketAddr>,
    /// Broadcast messages dropped because this client's queue was full.
    dropped: u64,
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
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
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

    /// `id`'s heartbeat snapshot.
    pub fn status(&self, id: ClientId) -> Option<Status> {
        self.lock().clients.get(&id).map(|e| e.sender.status())
    }

    /// `id`'s peer address, if it was accepted over TCP.
    pub fn peer(&self, id: ClientId) -> Option<SocketAddr> {
        self.lock().clients.get(&id).and_then(|e| e.peer)
    }

    /// A sending handle for `id`.
    pub fn sender(&self, id: ClientId) -> Option<Sender> {
        self.lock().clients.get(&id).map(|e| e.sender.clone())
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
            match entry.sender.try_send(msg.clone()) {
                Ok(true) => report.queued += 1,
                Ok(false) => {
                    entry.dropped += 1;
                    report.dropped += 1;
                }
                Err(_) => report.gone += 1,
            }
        }
        report
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
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
async fn upgrade_with<S, C>(
    stream: S,
    options: &Options,
    callback: C,
) -> Result<(WebSocketStream<S>, HeartbeatMachine, Clock), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: Callback + Unpin,
{
    let clock = Clock::start();
    let mut hb = HeartbeatMachine::new(options.single(), options.seed_or_random());
    hb.connect(clock.now());
    while hb.poll_action().is_some() {} // Connect: the upgrade below is the attempt
    let limit = hb.poll_timeout().map(|d| clock.to_tokio(d.at));
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(options.websocket));
    let ws = tokio::select! {
        r = handshake => r.map_err(|e| Error::Connect(Arc::new(e)))?,
        _ = sleep_until_opt(limit) => {
            hb.handle_timeout(clock.now());
            return Err(Error::ConnectTimeout(hb.config().connect_timeout()));
        }
    };
    hb.handle_connected(clock.now());
    Ok((ws, hb, clock))
}
