//! [`Options`]: how a driver is set up.

use heartbeat_core::Config;
use heartbeat_transport::tungstenite::{small_buffers, Limits};
use tungstenite::protocol::WebSocketConfig;

/// Driver settings. [`Options::new`] gives small-buffer defaults.
#[derive(Clone, Debug)]
pub struct Options {
    /// The heartbeat of every connection. Its role is set per connection with
    /// [`Config::with_role`]: server for accepted connections (never reconnect),
    /// client for those opened with [`Driver::connect`](crate::Driver::connect)
    /// (reconnect with the configured backoff). `connect_timeout` bounds a client's
    /// TCP connect plus handshake and a server's handshake alike.
    pub config: Config,
    /// What one peer may make this driver hold ([`Limits::default`]); set with
    /// [`limits`](Options::limits), which also sets `websocket`. Accepted
    /// connections past `max_connections`, or while `max_handshakes` server
    /// handshakes are in progress, are refused.
    pub limits: Limits,
    /// tungstenite settings for every connection; see
    /// [`small_buffers`](crate::small_buffers). Its message and frame caps close
    /// an inbound peer over them with 1009; its write-buffer cap refuses a larger
    /// send with [`SendError::TooLarge`](crate::SendError::TooLarge).
    pub websocket: WebSocketConfig,
    /// How many readiness events one `poll` returns at most.
    pub events_capacity: usize,
}

impl Options {
    /// Replaces the limits, and the tungstenite settings that enforce them
    /// ([`Limits::websocket`]).
    pub fn limits(mut self, limits: Limits) -> Options {
        self.limits = limits;
        self.websocket = limits.websocket();
        self
    }

    /// `config` for every connection, [`small_buffers`](crate::small_buffers),
    /// room for 1,024 events per `poll`.
    pub fn new(config: Config) -> Options {
        Options {
            config,
            limits: Limits::default(),
            websocket: small_buffers(),
            events_capacity: 1024,
        }
    }
}
