//! Heartbeats carried as application messages instead of WebSocket control frames.
//!
//! Some services (browsers cannot send WebSocket pings; many trading and chat APIs)
//! heartbeat with ordinary text messages. A [`HeartbeatCodec`] tells the driver how
//! to spell the machine's pings and pongs and how to recognise the peer's; heartbeat
//! messages are consumed by the driver, every other message reaches the application.

use heartbeat_core::Payload;
use tokio_tungstenite::tungstenite::Message;

/// A heartbeat message recognised by a codec.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Heartbeat {
    /// The peer pings; answer with this payload echoed.
    Ping(Payload),
    /// The peer answers one of our pings (or sends an unsolicited pong).
    Pong(Payload),
}

/// How heartbeats look on the wire when they travel as application messages.
///
/// The machine's own pings carry an 8-byte big-endian sequence number; a codec must
/// let it come back unchanged in the peer's pong, or pongs will never match.
pub trait HeartbeatCodec: Send + Sync + 'static {
    /// A short name for logs.
    fn name(&self) -> &'static str;
    /// Our ping carrying `payload`.
    fn encode_ping(&self, payload: &Payload) -> Message;
    /// Our pong answering a ping that carried `payload`.
    fn encode_pong(&self, payload: &Payload) -> Message;
    /// `Some` if `msg` is a heartbeat (consumed by the driver), `None` if it is
    /// application data.
    fn decode(&self, msg: &Message) -> Option<Heartbeat>;
}

/// `{"type":"ping","timestamp":<t>}` / `{"type":"pong","timestamp":<t>}` text messages.
///
/// Our pings put the machine's sequence number in `timestamp` (an opaque token the
/// peer must echo, as such servers do). Pings from the peer may carry any JSON
/// number or string; the pong echoes it verbatim. Other fields are ignored; text
/// that is not such an object is application data.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonCodec;

impl HeartbeatCodec for JsonCodec {
    fn name(&self) -> &'static str {
        "json"
    }

    fn encode_ping(&self, payload: &Payload) -> Message {
        Message::text(format!(
            r#"{{"type":"ping","timestamp":{}}}"#,
            token_text(payload)
        ))
    }

    fn encode_pong(&self, payload: &Payload) -> Message {
        Message::text(format!(
            r#"{{"type":"pong","timestamp":{}}}"#,
            token_text(payload)
        ))
    }

    fn decode(&self, msg: &Message) -> Option<Heartbeat> {
        let Message::Text(text) = msg else {
            return None;
        };
        // Cheap pre-filter: application traffic is not parsed twice.
        if text.len() > MAX_HEARTBEAT_TEXT || !text.contains("\"type\"") {
            return None;
        }
        let value: serde_json::Value = serde_json::from_str(text.as_str()).ok()?;
        let kind = value.get("type")?.as_str()?;
        let ts = value.get("timestamp")?;
        match kind {
            "ping" => Some(Heartbeat::Ping(payload_from_json(ts)?)),
            "pong" => Some(Heartbeat::Pong(payload_from_json(ts)?)),
            _ => None,
        }
    }
}

/// The JSON text for a payload: our 8-byte sequence numbers as a decimal number,
/// anything else (a peer's token we are echoing) as the JSON text it came as.
fn token_text(payload: &Payload) -> String {
    let bytes = payload.as_slice();
    if bytes.first() == Some(&TEXT_TAG) {
        return String::from_utf8_lossy(&bytes[1..]).into_owned();
    }
    match <[u8; 8]>::try_from(bytes) {
        Ok(seq) => u64::from_be_bytes(seq).to_string(),
        Err(_) => "null".to_owned(),
    }
}

/// A payload for a timestamp: an unsigned integer becomes 8 big-endian bytes (so our
/// own sequence numbers match), anything else is kept as tagged JSON text to echo.
/// An integer whose first byte would be the text tag (2^64 − 2^56 and above) is
/// kept as text too: read back as 8 bytes it would be taken for tagged text and
/// echoed as bytes that are not JSON (found by the `adapters` fuzz target).
fn payload_from_json(ts: &serde_json::Value) -> Option<Payload> {
    if let Some(n) = ts.as_u64().filter(|n| n.to_be_bytes()[0] != TEXT_TAG) {
        return Payload::from_slice(&n.to_be_bytes());
    }
    let text = serde_json::to_string(ts).ok()?;
    let mut buf = Vec::with_capacity(text.len() + 1);
    buf.push(TEXT_TAG);
    buf.extend_from_slice(text.as_bytes());
    Payload::from_slice(&buf)
}

/// Marks a payload holding JSON text rather than 8 sequence bytes. 0xFF never starts
/// UTF-8 text and 9+ bytes never equal an 8-byte sequence number.
const TEXT_TAG: u8 = 0xFF;
/// Heartbeat messages are tiny; anything longer is data and is not parsed.
const MAX_HEARTBEAT_TEXT: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_ping_round_trips_as_a_matching_pong() {
        let seq = Payload::from_slice(&7u64.to_be_bytes()).unwrap();
        let ping = JsonCodec.encode_ping(&seq);
        assert_eq!(ping, Message::text(r#"{"type":"ping","timestamp":7}"#));
        let pong = Message::text(r#"{"type":"pong","timestamp":7}"#);
        assert_eq!(JsonCodec.decode(&pong), Some(Heartbeat::Pong(seq)));
    }

    #[test]
    fn peer_float_timestamps_are_echoed_verbatim() {
        let ping = Message::text(r#"{"type":"ping","timestamp":1700000000.25}"#);
        let Some(Heartbeat::Ping(p)) = JsonCodec.decode(&ping) else {
            panic!("not a ping")
        };
        assert_eq!(
            JsonCodec.encode_pong(&p),
            Message::text(r#"{"type":"pong","timestamp":1700000000.25}"#)
        );
    }

    #[test]
    fn a_huge_integer_timestamp_is_echoed_verbatim() {
        let ping = Message::text(r#"{"type":"ping","timestamp":18446744073709551615}"#);
        let Some(Heartbeat::Ping(p)) = JsonCodec.decode(&ping) else {
            panic!("not a ping")
        };
        assert_eq!(
            JsonCodec.encode_pong(&p),
            Message::text(r#"{"type":"pong","timestamp":18446744073709551615}"#)
        );
    }

    #[test]
    fn other_messages_are_data() {
        for text in [
            r#"{"type":"chat","timestamp":1}"#,
            "hello",
            r#"{"type":"ping"}"#,
        ] {
            assert_eq!(JsonCodec.decode(&Message::text(text)), None, "{text}");
        }
        assert_eq!(JsonCodec.decode(&Message::binary(vec![1, 2])), None);
    }
}
