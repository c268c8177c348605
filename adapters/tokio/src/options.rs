//! Everything a connection needs besides the socket: the machine's config plus the
//! few settings that only a driver can have.

use core::fmt;
use std::sync::Arc;

use heartbeat_core::Config;
use heartbeat_transport::tungstenite::small_buffers;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::codec::HeartbeatCodec;
use crate::event::{Event, Observer};

/// Settings for one connection (or one reconnecting client, or one server's accepted
/// connections).
///
/// Every timing *decision* lives in [`heartbeat`](Options::heartbeat), including
/// the connect and close timeouts; the rest is plumbing: buffer sizes, channel
/// capacities, and which wire encoding heartbeats use.
#[derive(Clone)]
pub struct Options {
    /// The heartbeat machine's validated configuration. Use `Role::Server` for
    /// accepted connections and `Role::Client` for [`connect`](crate::connect).
    pub heartbeat: Config,
    /// The WebSocket layer's settings. Default: [`small_buffers`](crate::small_buffers).
    pub websocket: WebSocketConfig,
    /// Data messages queued for the application. When full the driver stops reading
    /// the socket (backpressure to the peer), which also stops it seeing pongs: an
    /// application that falls this far behind risks a false death. Default 256.
    pub inbound_capacity: usize,
    /// Application messages (and closes) queued for the driver; `send().await` waits
    /// when it is full, `try_send` fails. Default 64.
    pub outbound_capacity: usize,
    /// Heartbeats as application messages instead of WebSocket ping/pong frames
    /// (`None`, the default: control frames).
    pub codec: Option<Arc<dyn HeartbeatCodec>>,
    /// Seed for the machine's reconnect jitter (`None`, the default: a fresh random
    /// seed per machine from the standard library's hasher keys).
    pub seed: Option<u64>,
    /// Called for every [`Event`] (pings, pongs with RTT, deaths, reconnects); see
    /// [`observe`](Options::observe). Default: none.
    pub observer: Option<Observer>,
    /// Retry attempts that failed permanently (a rejected certificate, HTTP 4xx
    /// other than 408/429; see [`Error::Permanent`](crate::Error::Permanent)) with
    /// backoff like any other failure, instead of ending the reconnecting client.
    /// For a server that is known to answer 401/404 while it is being deployed.
    /// Default `false`.
    pub retry_permanent: bool,
    /// The local-lag measure shared by every connection made with these options
    /// (and their clones): a server's accepted connections, a client's successive
    /// connections.
    pub(crate) lag: Arc<heartbeat_transport::LagMeter>,
}

impl Options {
    /// Options around `heartbeat` with the defaults listed on each field.
    pub fn new(heartbeat: Config) -> Options {
        Options {
            heartbeat,
            websocket: small_buffers(),
            inbound_capacity: 256,
            outbound_capacity: 64,
            codec: None,
            seed: None,
            observer: None,
            retry_permanent: false,
            lag: Arc::new(heartbeat_transport::LagMeter::new(crate::core::LAG_WINDOW)),
        }
    }

    /// Replaces the heartbeat codec.
    pub fn codec(mut self, codec: impl HeartbeatCodec) -> Options {
        self.codec = Some(Arc::new(codec));
        self
    }

    /// Fixes the jitter seed (for reproducible tests).
    pub fn seed(mut self, seed: u64) -> Options {
        self.seed = Some(seed);
        self
    }

    /// Sets [`retry_permanent`](Options::retry_permanent).
    pub fn retry_permanent(mut self, retry: bool) -> Options {
        self.retry_permanent = retry;
        self
    }

    /// Registers `f` to be called, in order and without blocking, for every
    /// [`Event`] of the connections made with these options.
    pub fn observe(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Options {
        self.observer = Some(Arc::new(f));
        self
    }

    /// The configuration of a single connection (one that is not part of a
    /// reconnecting [`connect`](crate::connect)): it never reconnects, whatever
    /// role was configured, so its machine takes the server role (the role only
    /// decides reconnection).
    pub(crate) fn single(&self) -> Config {
        self.heartbeat.with_role(heartbeat_core::Role::Server)
    }

    pub(crate) fn seed_or_random(&self) -> u64 {
        self.seed.unwrap_or_else(heartbeat_transport::seed)
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("heartbeat", &self.heartbeat)
            .field("websocket", &self.websocket)
            .field("inbound_capacity", &self.inbound_capacity)
            .field("outbound_capacity", &self.outbound_capacity)
            .field("codec", &self.codec.as_ref().map(|c| c.name()))
            .field("seed", &self.seed)
            .field("observer", &self.observer.is_some())
            .field("retry_permanent", &self.retry_permanent)
            .finish()
    }
}
