//! Everything a connection needs besides the socket: the machine's config plus the
//! few settings that only a driver can have.

use core::fmt;
use core::time::Duration;
use std::sync::Arc;

use heartbeat_core::Config;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::codec::HeartbeatCodec;
use crate::event::{Event, Observer};

/// Settings for one connection (or one reconnecting client, or one server's accepted
/// connections).
///
/// Every timing *decision* lives in [`heartbeat`](Options::heartbeat); the rest is
/// plumbing: buffer sizes, channel capacities, the handshake bound the machine has no
/// timer for, and which wire encoding heartbeats use.
#[derive(Clone)]
pub struct Options {
    /// The heartbeat machine's validated configuration. Use `Role::Server` for
    /// accepted connections and `Role::Client` for [`connect`](crate::connect).
    pub heartbeat: Config,
    /// The WebSocket layer's settings. Default: [`small_buffers`].
    pub websocket: WebSocketConfig,
    /// How long a connect (TCP + WebSocket handshake) or an accept handshake may take
    /// before it counts as failed. The machine has no connecting timer (its
    /// `poll_timeout` is `None` while connecting), so the driver bounds this itself.
    /// Default 10 s.
    pub handshake_timeout: Duration,
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
}

impl Options {
    /// Options around `heartbeat` with the defaults listed on each field.
    pub fn new(heartbeat: Config) -> Options {
        Options {
            heartbeat,
            websocket: small_buffers(),
            handshake_timeout: Duration::from_secs(10),
            inbound_capacity: 256,
            outbound_capacity: 64,
            codec: None,
            seed: None,
            observer: None,
        }
    }

    /// Replaces the heartbeat codec.
    pub fn codec(mut self, codec: impl HeartbeatCodec) -> Options {
        self.codec = Some(Arc::new(codec));
        self
    }

    /// Replaces the handshake timeout.
    pub fn handshake_timeout(mut self, d: Duration) -> Options {
        self.handshake_timeout = d;
        self
    }

    /// Fixes the jitter seed (for reproducible tests).
    pub fn seed(mut self, seed: u64) -> Options {
        self.seed = Some(seed);
        self
    }

    /// Registers `f` to be called, in order and without blocking, for every
    /// [`Event`] of the connections made with these options.
    pub fn observe(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Options {
        self.observer = Some(Arc::new(f));
        self
    }

    pub(crate) fn seed_or_random(&self) -> u64 {
        self.seed.unwrap_or_else(random_seed)
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("heartbeat", &self.heartbeat)
            .field("websocket", &self.websocket)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("inbound_capacity", &self.inbound_capacity)
            .field("outbound_capacity", &self.outbound_capacity)
            .field("codec", &self.codec.as_ref().map(|c| c.name()))
            .field("seed", &self.seed)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// A [`WebSocketConfig`] sized for heartbeat-heavy, many-connection workloads: a
/// 4 KiB read buffer, an 8 KiB write-buffer target, and a 4 MiB write-buffer cap.
///
/// tungstenite's default read buffer is 128 KiB, allocated eagerly per connection;
/// for connections that mostly carry pings and small messages that is most of a
/// server's memory and CPU (the buffer is zero-filled before reads). Messages
/// larger than the buffer are still received whole; they just take more reads.
///
/// The cap matters under a ping flood: tungstenite answers every ping as it reads it
/// and, by default, moves each pending pong into an *unbounded* write buffer, so a
/// peer that pings without reading its pongs grows the server by the size of its
/// flood (measured: +33 MiB for 300,000 pings). With a cap, tungstenite keeps the
/// newest pong in its single pending slot instead. The cost: one application message
/// cannot exceed the cap (a larger one fails the connection's writer); raise
/// `max_write_buffer_size` if you send messages over 4 MiB.
pub fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
}

/// A 64-bit seed from the standard library's per-process random hasher keys, so
/// clients started together do not reconnect in lockstep. No RNG crate needed.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(tokio::time::Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

const READ_BUFFER: usize = 4 * 1024;
const WRITE_BUFFER: usize = 8 * 1024;
const MAX_WRITE_BUFFER: usize = 4 * 1024 * 1024;
