//! How the end of a connection is described, in text and in JSON.

use heartbeat_core::{ConnectFailure, DeathReason};
use heartbeat_tokio::Error;
use serde_json::{json, Value};

use crate::args::show;
use crate::output::ms;

/// One line for a failed connection attempt: the cause, without the "connect
/// failed" the caller's own words already say.
pub fn describe_connect_error(e: &Error) -> String {
    match e {
        Error::Connect(cause) => cause.to_string(),
        Error::ConnectTimeout(waited) => {
            format!("not connected within {} (connect timeout)", show(*waited))
        }
        other => other.to_string(),
    }
}

/// One line for the machine's verdict, durations as people write them.
pub fn describe_death(reason: &DeathReason) -> String {
    match reason {
        DeathReason::PongTimeout { waited } => {
            format!(
                "peer unresponsive: no pong {} after the ping",
                show(*waited)
            )
        }
        DeathReason::ConnectFailed(ConnectFailure::TimedOut { waited }) => {
            format!("not connected after {}", show(*waited))
        }
        other => other.to_string(),
    }
}

/// JSON fields describing why a connection ended: `reason`, and `code` for closes.
pub fn end_fields(e: &Error) -> Value {
    match e {
        Error::PeerUnresponsive { waited } => {
            json!({ "reason": "pong_timeout", "waited_ms": ms(*waited) })
        }
        Error::Closed {
            code, initiator, ..
        } => json!({
            "reason": "closed", "code": code, "by": format!("{initiator:?}").to_lowercase()
        }),
        Error::PingFlood => json!({ "reason": "ping_flood", "code": 1008 }),
        Error::Protocol { kind, .. } => {
            json!({ "reason": "protocol_error", "code": kind.close_code().get() })
        }
        Error::TransportClosed { .. } => json!({ "reason": "transport_closed", "code": 1006 }),
        other => json!({ "reason": "error", "error": other.to_string() }),
    }
}

/// One line of text for the end of a connection.
pub fn describe_end(e: &Error) -> String {
    match e {
        Error::PeerUnresponsive { waited } => {
            format!(
                "DEAD: no pong {} after the ping (closing with 1011)",
                show(*waited)
            )
        }
        Error::Closed {
            code: Some(code),
            initiator,
            ..
        } => {
            format!(
                "closed by {} with {code}",
                format!("{initiator:?}").to_lowercase()
            )
        }
        other => other.to_string(),
    }
}
