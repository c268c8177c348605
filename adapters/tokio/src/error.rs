//! What can end a connection, as the application sees it.

use core::time::Duration;
use std::sync::Arc;

use heartbeat_core::{DeathReason, ProtocolError};
use heartbeat_transport::tungstenite::{classify, Failure, Permanent, UrlError};
use tokio_tungstenite::tungstenite;

/// Which side started a close handshake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Initiator {
    /// This application (or the machine on its behalf).
    Local,
    /// The peer.
    Peer,
}

/// Why a connection (or an operation on it) failed.
///
/// Every terminal error is delivered at detection time: [`Receiver::recv`] returns it
/// as soon as the messages queued before it are read, and [`Sender::send`] fails with
/// it from then on.
///
/// [`Receiver::recv`]: crate::Receiver::recv
/// [`Sender::send`]: crate::Sender::send
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No pong (or, with `Liveness::AnyFrame`, no frame at all) arrived within the
    /// pong timeout after a ping was handed to the transport: the machine's
    /// [`DeathReason::PongTimeout`].
    #[error("peer unresponsive: nothing heard {waited:?} after the ping was sent")]
    PeerUnresponsive {
        /// How long the machine waited after the ping was sent.
        waited: Duration,
    },
    /// A close handshake ended the connection.
    #[error("connection closed by {initiator:?} with code {code:?} {reason:?}")]
    Closed {
        /// The close code (`None`: the peer's close frame carried none).
        code: Option<u16>,
        /// The reason text of the peer's close frame (empty for local closes).
        reason: String,
        /// Who started the close.
        initiator: Initiator,
    },
    /// The peer pinged faster than the configured budget; closed with 1008.
    #[error("peer exceeded the ping budget; closed with 1008")]
    PingFlood,
    /// The peer broke the WebSocket protocol; closed with the code RFC 6455 gives
    /// `kind` (1007 invalid UTF-8, 1009 too big, 1002 the rest).
    #[error("protocol error: {kind}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Protocol {
        /// The machine's classification.
        kind: ProtocolError,
        /// What the WebSocket layer reported, if it did.
        detail: Option<Arc<tungstenite::Error>>,
    },
    /// The transport ended without a close handshake (what the wire calls 1006).
    #[error("transport closed without a close handshake{}", source.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    TransportClosed {
        /// The I/O or WebSocket error that ended it, if any (plain EOF has none).
        source: Option<Arc<tungstenite::Error>>,
    },
    /// Connecting (TCP or the WebSocket handshake) failed.
    #[error("connect failed: {0}")]
    Connect(Arc<tungstenite::Error>),
    /// A connection attempt failed in a way no retry can fix (a rejected
    /// certificate, HTTP 401/403/404, no common TLS version): the reconnecting
    /// client ends with this unless [`Options::retry_permanent`](crate::Options::retry_permanent)
    /// was set.
    #[error("connect failed for good: {cause}")]
    Permanent {
        /// What to fix.
        cause: Permanent,
        /// The error the attempt ended with.
        source: Arc<tungstenite::Error>,
    },
    /// The URL was rejected at the call (wrong scheme, no host, a port outside
    /// 1-65535, not a URL): nothing was attempted.
    #[error("invalid URL: {0}")]
    Url(#[from] UrlError),
    /// `wss://` in a build without TLS: enable the `rustls-native-roots` or
    /// `rustls-webpki-roots` feature. Returned at the call.
    #[error("wss:// needs TLS: build heartbeat-tokio with feature rustls-native-roots or rustls-webpki-roots")]
    TlsUnavailable,
    /// A header or subprotocol of a [`ConnectRequest`](crate::ConnectRequest) that
    /// HTTP cannot carry; the text names it.
    #[error("invalid request: {0}")]
    Request(String),
    /// The connection attempt (TCP, TLS and the WebSocket upgrade) did not finish
    /// within the machine's `connect_timeout`.
    #[error("not connected within {0:?} (connect timeout)")]
    ConnectTimeout(Duration),
    /// The message is larger than the connection can ever send
    /// (`Limits::max_send`): it was not queued, and the connection is unaffected.
    #[error("message of {len} bytes is over the {max}-byte send limit; not sent")]
    TooLarge {
        /// The message's length in bytes.
        len: usize,
        /// The largest message this connection sends.
        max: usize,
    },
    /// A server refused the connection before its handshake: a
    /// [`Registry::with_limits`](crate::Registry::with_limits) limit was reached.
    #[error("refused: {0}")]
    Refused(heartbeat_transport::tungstenite::Refused),
    /// Only text and binary messages may be sent; control frames belong to the driver.
    #[error("only text and binary messages may be sent by the application")]
    NotData,
    /// The driver task ended without reporting why (it panicked or its runtime shut down).
    #[error("the connection's driver task is gone")]
    DriverGone,
}

impl Error {
    /// Whether the peer or the network is at fault (not a clean 1000/1001 close or a
    /// close this application asked for). Mirrors [`DeathReason::is_fault`].
    pub fn is_fault(&self) -> bool {
        !matches!(
            self,
            Error::Closed {
                initiator: Initiator::Local,
                ..
            } | Error::Closed {
                code: Some(1000 | 1001),
                ..
            }
        )
    }

    /// The error the application sees for the machine's verdict `reason`, with the
    /// details only the driver knows (the peer's close text, the transport error).
    pub(crate) fn from_death(
        reason: DeathReason,
        peer_close_text: &str,
        transport: Option<&Arc<tungstenite::Error>>,
    ) -> Error {
        match reason {
            DeathReason::PongTimeout { waited } => Error::PeerUnresponsive { waited },
            DeathReason::PeerClosed { code } => Error::Closed {
                code,
                reason: peer_close_text.to_owned(),
                initiator: Initiator::Peer,
            },
            DeathReason::TransportClosed => Error::TransportClosed {
                source: transport.cloned(),
            },
            DeathReason::ProtocolError(kind) => Error::Protocol {
                kind,
                detail: transport.cloned(),
            },
            DeathReason::PingFlood => Error::PingFlood,
            DeathReason::LocalClose { code } => Error::Closed {
                code: Some(code),
                reason: String::new(),
                initiator: Initiator::Local,
            },
            // Only connections that opened have a verdict; anything else the core
            // may add is reported as the transport ending.
            _ => Error::TransportClosed {
                source: transport.cloned(),
            },
        }
    }

    /// The delay a refused upgrade asked for (`Retry-After` on HTTP 429/503, in
    /// seconds or as an HTTP-date).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Connect(e) => heartbeat_transport::tungstenite::retry_after(e),
            _ => None,
        }
    }

    /// Whether this error can never go away by retrying the same request: a
    /// [`Permanent`](Error::Permanent) failure or an error returned at the call.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Error::Permanent { .. } | Error::Url(_) | Error::TlsUnavailable | Error::Request(_)
        )
    }

    /// A failed attempt's error as the reconnecting client reports it:
    /// [`Error::Permanent`] when the shared classification says no retry can help.
    pub(crate) fn classified(self) -> Error {
        match self {
            Error::Connect(source) => match classify(&source) {
                Failure::Permanent(cause) => Error::Permanent { cause, source },
                Failure::Transient { .. } => Error::Connect(source),
            },
            other => other,
        }
    }
}
