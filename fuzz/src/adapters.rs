//! The fuzz model of the adapters' input path: a hostile peer's bytes and timings
//! through tungstenite (with [`Limits`] small enough to reach), the frame/message →
//! event mapping ([`incoming`], [`incoming_from_error`]), the JSON heartbeat codec
//! ([`JsonCodec`]) and the one action executor ([`drive`] over [`WsTransport`]) on
//! an in-memory stream whose writes may block.
//!
//! ```text
//! cd fuzz
//! cargo +nightly fuzz run adapters /tmp/hb-adapters corpus/adapters
//! cargo test -p heartbeat-tests --test fuzz_corpus     # replay (stable, workspace)
//! ```
//!
//! Invariants, checked after every step:
//! - nothing panics, whatever the bytes (the JSON codec included);
//! - a message handed up is never larger than `max_message`;
//! - a read error is mapped as RFC 6455 asks: invalid UTF-8 → 1007, over a limit
//!   → 1009, any other violation → 1002, an ended stream → no close; and when the
//!   connection was open, the close the executor sends carries exactly that code
//!   and the machine's state names that violation;
//! - a JSON heartbeat our codec encodes decodes to the same heartbeat;
//! - after `handle_timeout(now)` no deadline is in the past;
//! - the bytes we write are bounded by what the limits allow per step (no growth
//!   from a peer that never reads).

use std::io::{self, Read, Write};

use arbitrary::{Arbitrary, Unstructured};
use heartbeat_core::{
    CloseCode, Config, DeathReason, HeartbeatMachine, Instant, Payload, ProtocolError, Role, State,
};
use heartbeat_tokio::{Heartbeat, HeartbeatCodec, JsonCodec};
use heartbeat_transport::tungstenite::{incoming, incoming_from_error, Limits, WsTransport};
use heartbeat_transport::{drive, feed, Handover, Incoming, Transport};
use tungstenite::protocol::Role as WsRole;
use tungstenite::{Message, WebSocket};

/// Runs one input through the adapter model; panics on a broken invariant.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let mut steps = Vec::new();
    while steps.len() < MAX_STEPS {
        match Step::arbitrary(&mut u) {
            Ok(s) => steps.push(s),
            Err(_) => break,
        }
    }
    Model::new(&setup).run(&steps);
}

/// Which side we are and how small the limits are.
#[derive(Arbitrary, Debug)]
struct Setup {
    server: bool,
    /// Heartbeats as JSON text messages instead of control frames.
    json: bool,
    /// log2 of max_message (clamped to 4..=16).
    message_log2: u8,
    /// log2 of max_frame (clamped to 4..=max_message's).
    frame_log2: u8,
}

/// One thing the peer or the clock does.
#[derive(Arbitrary, Debug)]
enum Step {
    /// Raw bytes from the peer, whatever they are.
    Bytes(Vec<u8>),
    /// One well-formed-looking frame, with any header fields.
    Frame(FrameInput),
    /// The clock moves forward by this many milliseconds (up to about 65 s).
    Wait(u16),
    /// Our socket's writes block (the peer stopped reading) or flow again.
    Blocked(bool),
    /// The peer's side of the stream ends.
    Eof,
    /// A JSON heartbeat text from the peer, as a frame.
    Json { pong: bool, timestamp: u64 },
}

/// A frame's header fields and payload.
#[derive(Arbitrary, Debug)]
struct FrameInput {
    fin: bool,
    rsv: u8,
    opcode: u8,
    masked: bool,
    payload: Vec<u8>,
    /// Declare a length other than the payload's (0: the real one).
    lie: u32,
}

impl FrameInput {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.fin) << 7 | (self.rsv & 7) << 4 | (self.opcode & 15));
        let len = if self.lie == 0 {
            self.payload.len() as u64
        } else {
            u64::from(self.lie)
        };
        let mask = u8::from(self.masked) << 7;
        match len {
            0..=125 => out.push(mask | len as u8),
            126..=0xffff => {
                out.push(mask | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        if self.masked {
            out.extend_from_slice(&[0; 4]);
        }
        out.extend_from_slice(&self.payload);
    }
}

/// The in-memory socket: the peer's bytes not yet read, and ours not yet taken.
#[derive(Default)]
struct Wire {
    input: Vec<u8>,
    eof: bool,
    blocked: bool,
    written: usize,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return if self.eof {
                Ok(0)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input.drain(..n);
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.blocked {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.written += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.blocked {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    }
}

/// The driver under test, with what it needs to check itself.
struct Model {
    ws: WebSocket<Wire>,
    hb: HeartbeatMachine,
    limits: Limits,
    json: bool,
    now: Instant,
    blocked: bool,
    /// The transport was let go of.
    done: bool,
    /// The peer's stream ended or broke: nothing more is read.
    read_over: bool,
    /// A violation whose close has not been seen yet.
    expect_close: Option<ProtocolError>,
}

impl Model {
    fn new(setup: &Setup) -> Model {
        let message_log2 = setup.message_log2.clamp(4, 16);
        let frame_log2 = setup.frame_log2.clamp(4, message_log2);
        let limits = Limits {
            max_message: 1 << message_log2,
            max_frame: 1 << frame_log2,
            max_outbound: 1 << 12,
            ..Limits::default()
        };
        let role = if setup.server {
            WsRole::Server
        } else {
            WsRole::Client
        };
        let ws = WebSocket::from_raw_socket(Wire::default(), role, Some(limits.websocket()));
        let config = Config::builder()
            .role(Role::Server)
            .ping_interval(core::time::Duration::from_millis(1000))
            .pong_timeout(core::time::Duration::from_millis(500))
            .close_timeout(core::time::Duration::from_millis(300))
            .build()
            .expect("a valid config");
        let mut hb = HeartbeatMachine::new(config, 7);
        let now = Instant::from_millis(0);
        hb.handle_connected(now);
        Model {
            ws,
            hb,
            limits,
            json: setup.json,
            now,
            blocked: false,
            done: false,
            read_over: false,
            expect_close: None,
        }
    }

    fn run(mut self, steps: &[Step]) {
        for step in steps {
            if self.done {
                return;
            }
            self.step(step);
            self.read_all();
            self.execute();
        }
    }

    fn step(&mut self, step: &Step) {
        let wire = self.ws.get_mut();
        match step {
            Step::Bytes(b) => wire.input.extend_from_slice(b),
            Step::Frame(f) => f.encode(&mut wire.input),
            Step::Json { pong, timestamp } => {
                let kind = if *pong { "pong" } else { "ping" };
                let text = format!(r#"{{"type":"{kind}","timestamp":{timestamp}}}"#);
                FrameInput {
                    fin: true,
                    rsv: 0,
                    opcode: 1,
                    masked: true,
                    payload: text.into_bytes(),
                    lie: 0,
                }
                .encode(&mut wire.input);
            }
            Step::Wait(ms) => {
                self.now = self.now + core::time::Duration::from_millis(u64::from(*ms));
                self.hb.handle_timeout(self.now);
                if let Some(d) = self.hb.poll_timeout() {
                    assert!(d.at >= self.now, "{d:?} in the past at {:?}", self.now);
                }
            }
            Step::Blocked(b) => wire.blocked = *b,
            Step::Eof => wire.eof = true,
        }
    }

    /// Takes in everything readable, as every adapter does before a deadline.
    fn read_all(&mut self) {
        for _ in 0..MAX_READS {
            if self.read_over {
                return;
            }
            match self.ws.read() {
                Ok(msg) => self.message(msg),
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.read_over = true;
                    let mapped = incoming_from_error(&e);
                    check_mapping(&e, mapped);
                    if let (Incoming::Violation(v), State::Open) = (mapped, self.hb.state()) {
                        self.expect_close = Some(v);
                    }
                    let _ = feed(&mut self.hb, self.now, mapped);
                    if let Some(v) = self.expect_close {
                        assert_eq!(
                            self.hb.state().reason(),
                            Some(DeathReason::ProtocolError(v)),
                            "the verdict names the violation"
                        );
                    }
                    // Nothing more is read; after a violation the socket is kept
                    // for the close window, as the tokio and mio drivers do.
                    if !matches!(mapped, Incoming::Violation(_)) {
                        self.hb.handle_transport_closed(self.now);
                    }
                    return;
                }
            }
        }
    }

    fn message(&mut self, msg: Message) {
        let len = match &msg {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            _ => 0,
        };
        assert!(
            len <= self.limits.max_message,
            "a {len}-byte message passed a {}-byte limit",
            self.limits.max_message
        );
        if self.json {
            if let Some(beat) = JsonCodec.decode(&msg) {
                check_codec_round_trip(beat);
                match beat {
                    Heartbeat::Ping(p) => {
                        let _ = self.hb.handle_ping(self.now, p.as_slice());
                    }
                    Heartbeat::Pong(p) => {
                        let _ = self.hb.handle_pong(self.now, p.as_slice());
                    }
                }
                return;
            }
        }
        if matches!(msg, Message::Close(_)) {
            // tungstenite answers a close itself; nothing more comes after it.
            self.read_over = true;
        }
        let _ = feed(&mut self.hb, self.now, incoming(&msg));
    }

    /// Runs the machine's actions through the shared executor, recording the close.
    fn execute(&mut self) {
        let before = self.ws.get_ref().written;
        let mut recorder = Recorder {
            inner: WsTransport {
                ws: &mut self.ws,
                blocked: &mut self.blocked,
            },
            close: None,
        };
        let out = drive(&mut self.hb, &mut recorder, self.now);
        let close = recorder.close;
        if let Some(v) = self.expect_close.take() {
            assert_eq!(
                close,
                Some(v.close_code()),
                "violation {v:?} must close with {}",
                v.close_code()
            );
        }
        // Per step we write at most our control frames plus what was buffered
        // before: never more than the write buffer's cap and a few frames.
        let wrote = self.ws.get_ref().written - before;
        assert!(
            wrote <= self.limits.max_outbound + 4 * 140,
            "{wrote} bytes written in one step"
        );
        if out.disconnected {
            self.done = true;
        }
    }
}

/// A [`Transport`] that remembers the close code it was asked to send.
struct Recorder<'a> {
    inner: WsTransport<'a, Wire>,
    close: Option<CloseCode>,
}

impl Transport for Recorder<'_> {
    type Error = tungstenite::Error;

    fn send_ping(&mut self, payload: &[u8]) -> Result<Handover, Self::Error> {
        self.inner.send_ping(payload)
    }
    fn send_pong(&mut self, payload: &[u8]) -> Result<(), Self::Error> {
        self.inner.send_pong(payload)
    }
    fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<Handover, Self::Error> {
        self.close = Some(code);
        self.inner.send_close(code, reason)
    }
    fn disconnect(&mut self) {
        self.inner.disconnect()
    }
}

/// The mapping keeps RFC 6455's distinction.
fn check_mapping(e: &tungstenite::Error, mapped: Incoming<'_>) {
    use tungstenite::error::CapacityError;
    let expected = match e {
        tungstenite::Error::Utf8(_) => Some(1007),
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { .. }) => Some(1009),
        tungstenite::Error::Io(_) | tungstenite::Error::ConnectionClosed => None,
        _ => Some(0),
    };
    match (expected, mapped) {
        (Some(1007 | 1009), Incoming::Violation(v)) => {
            assert_eq!(Some(v.close_code().get()), expected, "{e:?}")
        }
        (None, Incoming::Ended) | (Some(0), Incoming::Violation(_) | Incoming::Ended) => {}
        _ => panic!("{e:?} mapped to {mapped:?}"),
    }
}

/// What our JSON codec decoded, encoded again, decodes to the same heartbeat.
fn check_codec_round_trip(beat: Heartbeat) {
    let (again, p): (Message, Payload) = match beat {
        Heartbeat::Ping(p) => (JsonCodec.encode_ping(&p), p),
        Heartbeat::Pong(p) => (JsonCodec.encode_pong(&p), p),
    };
    match (beat, JsonCodec.decode(&again)) {
        (Heartbeat::Ping(_), Some(Heartbeat::Ping(q)))
        | (Heartbeat::Pong(_), Some(Heartbeat::Pong(q))) => assert_eq!(p, q),
        (_, other) => panic!("{beat:?} encoded as {again:?} decoded as {other:?}"),
    }
}

/// Steps per input.
const MAX_STEPS: usize = 64;
/// Messages read per step before the clock moves (a driver's drain bound).
const MAX_READS: usize = 256;
