//! Everything a connection needs besides the socket: the machine's config plus the
//! few settings that only a driver can have.

use core::fmt;
use std::sync::Arc;

use heartbeat_core::Config;
use heartbeat_transport::tungstenite::{small_buffers, Limits};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::codec::HeartbeatCodec;
use crate::event::{ConnInfo, Event, Observer};

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
    /// What one peer may make this process hold ([`Limits::default`]); set with
    /// [`limits`](Options::limits), which also sets `websocket`. Its
    /// `max_inbound` bounds the bytes of received messages queued for a
    /// [`KeepAlive`](crate::KeepAlive)'s application; `max_connections` and
    /// `max_handshakes` apply to a [`Registry`](crate::Registry) made with
    /// [`Registry::with_limits`](crate::Registry::with_limits).
    pub limits: Limits,
    /// The WebSocket layer's settings. Default: [`small_buffers`](crate::small_buffers)
    /// (`Limits::default().websocket()`). Its message, frame and write-buffer caps
    /// are the ones enforced (inbound over them: close 1009; a send over the write
    /// buffer's cap: [`Error::TooLarge`](crate::Error::TooLarge)).
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
    /// The connection these options were bound to (see [`Options::bind`]).
    pub(crate) conn: Option<Arc<ConnInfo>>,
}

impl Options {
    /// Options around `heartbeat` with the defaults listed on each field.
    pub fn new(heartbeat: Config) -> Options {
        Options {
            heartbeat,
            limits: Limits::default(),
            websocket: small_buffers(),
            inbound_capacity: 256,
            outbound_capacity: 64,
            codec: None,
            seed: None,
            observer: None,
            retry_permanent: false,
            lag: Arc::new(heartbeat_transport::LagMeter::new(crate::core::LAG_WINDOW)),
            conn: None,
        }
    }

    /// Replaces the heartbeat codec.
    pub fn codec(mut self, codec: impl HeartbeatCodec) -> Options {
        self.codec = Some(Arc::new(codec));
        self
    }

    /// Replaces the limits, and the WebSocket settings that enforce them
    /// ([`Limits::websocket`]).
    pub fn limits(mut self, limits: Limits) -> Options {
        self.limits = limits;
        self.websocket = limits.websocket();
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
    pub fn observe(self, f: impl Fn(&Event) + Send + Sync + 'static) -> Options {
        self.observe_conn(move |_, e| f(e))
    }

    /// Registers `f` like [`observe`](Options::observe), also told which
    /// connection each event belongs to (its [`ConnId`](crate::ConnId), role, and
    /// peer address or URL): one observer can watch a whole server.
    pub fn observe_conn(
        mut self,
        f: impl Fn(&ConnInfo, &Event) + Send + Sync + 'static,
    ) -> Options {
        self.observer = Some(Observer::new(f));
        self
    }

    /// The local lag measured now for the connections made with these options:
    /// how late their timers ran, or their systemic round trip, lately (see
    /// `HeartbeatMachine::handle_local_lag`). A gauge for a metrics endpoint.
    pub fn local_lag(&self) -> core::time::Duration {
        self.lag.current(std::time::Instant::now())
    }

    /// These options for one new connection (a fresh [`ConnId`](crate::ConnId)),
    /// or unchanged if already bound to one: the observer reports for it.
    pub(crate) fn bind(
        &self,
        role: heartbeat_core::Role,
        peer: Option<std::net::SocketAddr>,
        url: Option<&str>,
    ) -> Options {
        if self.conn.is_some() {
            return self.clone();
        }
        let conn = Arc::new(ConnInfo::new(role, peer, url));
        let mut bound = self.clone();
        bound.observer = self.observer.as_ref().map(|o| o.bound(conn.clone()));
        bound.conn = Some(conn);
        bound
    }

    /// The tracing span of the connection these options are bound to.
    pub(crate) fn span(&self) -> tracing::Span {
        self.conn
            .as_ref()
            .map_or_else(tracing::Span::none, |c| c.span())
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
            .field("limits", &self.limits)
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
