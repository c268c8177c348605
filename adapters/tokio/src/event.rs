//! What a connection's driver did or saw, for monitoring and tools.
//!
//! Register an observer with [`Options::observe`](crate::Options::observe) (the
//! event alone) or [`Options::observe_conn`](crate::Options::observe_conn) (the
//! event and the [`ConnInfo`] of the connection it belongs to); it is called
//! synchronously from the driver task, in order, for every event. It must not
//! block: forward the event to a channel or a metrics counter and return.

use core::fmt;
use core::time::Duration;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use heartbeat_core::{DeathReason, Role};

use crate::error::Error;

/// One observable step of a connection's heartbeat.
///
/// With the `serde` feature it serializes tagged by `event` (`{"event":"pong",
/// "seq":3,"rtt":"1ms 250us"}`), durations as text, errors as their message.
#[derive(Clone, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(tag = "event", rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum Event {
    /// A connection is up. `attempt` is the reconnect attempt that succeeded (0 for
    /// the first connection and for accepted server connections).
    Connected {
        /// The successful attempt's number.
        attempt: u32,
    },
    /// A ping with sequence number `seq` was queued to the transport.
    PingSent {
        /// The machine's ping sequence number.
        seq: u64,
    },
    /// A pong answered ping `seq` after `rtt`.
    Pong {
        /// The ping it answered.
        seq: u64,
        /// The round-trip time measured by the machine.
        #[cfg_attr(feature = "serde", serde(with = "heartbeat_core::serde_duration"))]
        rtt: Duration,
    },
    /// The machine's verdict: the connection is over, at detection time.
    Dead {
        /// Why.
        reason: DeathReason,
        /// The local lag the verdict allowed for (how late this process's timers
        /// were running; see `HeartbeatMachine::handle_local_lag`).
        #[cfg_attr(feature = "serde", serde(with = "heartbeat_core::serde_duration"))]
        local_lag: Duration,
    },
    /// A close frame with `code` was sent (ours, or the reply to the peer's).
    Closed {
        /// The close code on the wire.
        code: u16,
    },
    /// The next connection attempt starts after `after` (the machine's backoff),
    /// announced at the verdict or the failed attempt.
    Reconnecting {
        /// The delay.
        #[cfg_attr(feature = "serde", serde(with = "heartbeat_core::serde_duration"))]
        after: Duration,
        /// The attempt it will be.
        attempt: u32,
    },
    /// A connection attempt failed.
    ConnectFailed {
        /// Why.
        #[cfg_attr(feature = "serde", serde(serialize_with = "display"))]
        error: Error,
    },
}

/// Serializes a value as its `Display` text.
#[cfg(feature = "serde")]
fn display<T: fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// A connection's number, unique in the process: one per accepted server
/// connection, one per [`KeepAlive::new`](crate::KeepAlive::new) or
/// [`KeepAliveStream`](crate::KeepAliveStream), and one per reconnecting
/// [`connect`](crate::connect) client for its whole sequence of connections (their
/// events tell the attempts apart), so a server-wide observer, a log line and a
/// metric can all name the same connection.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(transparent))]
pub struct ConnId(pub u64);

impl ConnId {
    /// The next unused id (they start at 1).
    pub(crate) fn next() -> ConnId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which connection an [`Event`] belongs to: given to every observer call made
/// with [`Options::observe_conn`](crate::Options::observe_conn), and recorded on
/// the connection's tracing span (`connection{id role peer url}`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ConnInfo {
    /// The connection's number.
    pub id: ConnId,
    /// Server (accepted) or client (connected out).
    pub role: Role,
    /// The peer's address, for connections accepted over TCP.
    pub peer: Option<SocketAddr>,
    /// The URL a [`connect`](crate::connect) client dials.
    pub url: Option<Arc<str>>,
}

impl ConnInfo {
    /// A new connection's info, with a fresh id.
    pub(crate) fn new(role: Role, peer: Option<SocketAddr>, url: Option<&str>) -> ConnInfo {
        ConnInfo {
            id: ConnId::next(),
            role,
            peer,
            url: url.map(Arc::from),
        }
    }

    /// The connection's tracing span: every log line of its driver is inside it.
    pub(crate) fn span(&self) -> tracing::Span {
        tracing::info_span!(
            "connection",
            id = self.id.0,
            role = ?self.role,
            peer = self.peer.map(tracing::field::display),
            url = self.url.as_deref(),
        )
    }
}

/// An observer: a callback for every [`Event`] of the connections made with one
/// [`Options`](crate::Options), told which connection each belongs to. Built by
/// [`Options::observe`](crate::Options::observe) or
/// [`Options::observe_conn`](crate::Options::observe_conn).
#[derive(Clone)]
pub struct Observer {
    f: Callback,
    /// The connection this copy reports for; set when a connection starts.
    conn: Option<Arc<ConnInfo>>,
}

/// What an [`Observer`] calls.
type Callback = Arc<dyn Fn(&ConnInfo, &Event) + Send + Sync>;

impl Observer {
    /// An observer calling `f`.
    pub fn new(f: impl Fn(&ConnInfo, &Event) + Send + Sync + 'static) -> Observer {
        Observer {
            f: Arc::new(f),
            conn: None,
        }
    }

    /// This observer reporting for `conn`.
    pub(crate) fn bound(&self, conn: Arc<ConnInfo>) -> Observer {
        Observer {
            f: self.f.clone(),
            conn: Some(conn),
        }
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observer")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

/// Calls the observer, if any, with the connection it was bound to.
pub(crate) fn emit(observer: &Option<Observer>, event: Event) {
    if let Some(o) = observer {
        match &o.conn {
            Some(conn) => (o.f)(conn, &event),
            // Every connection binds its observer before its first event; an
            // unbound one still reports, under a fresh id.
            None => (o.f)(&ConnInfo::new(Role::Client, None, None), &event),
        }
    }
}
