//! How the end of a connection is described, in text and in JSON.

use heartbeat_tokio::Error;
use serde_json::{json, Value};

use crate::output::ms;

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
                "DEAD: no pong {:.0} ms after the ping (closing with 1011)",
                ms(*waited)
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
