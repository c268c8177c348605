//! What a hostile peer's bytes mean to the machine: raw frames read by a real
//! tungstenite `WebSocket` with [`Limits::default`], its error mapped by
//! `incoming_from_error`, then fed to a machine. Each violation must close with
//! the code RFC 6455 §7.4.1 gives it (1007, 1009, 1002), not one code for all.

use std::io::{self, Cursor, Read, Write};

use heartbeat_core::{Action, CloseCode, Config, HeartbeatMachine, Instant, ProtocolError, Role};
use heartbeat_transport::tungstenite::{incoming, incoming_from_error, Limits};
use heartbeat_transport::{feed, Incoming};
use tungstenite::protocol::Role as WsRole;
use tungstenite::WebSocket;

/// Bytes the peer sent, and what we wrote back.
struct Wire {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.input.read(buf)?;
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One client frame (masked with a zero key, which leaves the payload as is),
/// with `len` written in the header whatever the payload's real length.
fn frame(fin: bool, opcode: u8, payload: &[u8], len: u64) -> Vec<u8> {
    let mut out = vec![u8::from(fin) << 7 | opcode];
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
    out
}

fn whole(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(true, opcode, payload, payload.len() as u64)
}

/// Reads everything `bytes` holds as a server would, feeding a server machine;
/// returns the first non-data input and the close the machine then sends.
fn verdict(bytes: Vec<u8>) -> (Incoming<'static>, Option<u16>) {
    let wire = Wire {
        input: Cursor::new(bytes),
        output: Vec::new(),
    };
    let mut ws =
        WebSocket::from_raw_socket(wire, WsRole::Server, Some(Limits::default().websocket()));
    let cfg = Config::builder().role(Role::Server).build().unwrap();
    let mut hb = HeartbeatMachine::new(cfg, 1);
    let now = Instant::from_millis(0);
    hb.handle_connected(now);
    while hb.poll_action().is_some() {}
    let seen = loop {
        match ws.read() {
            Ok(msg) => {
                let i = incoming(&msg);
                if !matches!(i, Incoming::Data | Incoming::Ping(_) | Incoming::Pong(_)) {
                    feed(&mut hb, now, i);
                    break match i {
                        Incoming::Close(c) => Incoming::Close(c),
                        _ => Incoming::Ended,
                    };
                }
                feed(&mut hb, now, i);
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                break Incoming::Data; // all read, nothing wrong
            }
            Err(e) => {
                let i = incoming_from_error(&e);
                feed(&mut hb, now, i);
                break i;
            }
        }
    };
    let close = std::iter::from_fn(|| hb.poll_action()).find_map(|a| match a {
        Action::SendClose { code, .. } => Some(code.get()),
        _ => None,
    });
    (seen, close)
}

const TEXT: u8 = 1;
const BINARY: u8 = 2;
const CONTINUATION: u8 = 0;
const CLOSE: u8 = 8;

#[test]
fn invalid_utf8_in_a_text_message_closes_with_1007() {
    let (seen, close) = verdict(whole(TEXT, b"ok \xff\xfe"));
    assert_eq!(seen, Incoming::Violation(ProtocolError::InvalidUtf8));
    assert_eq!(close, Some(1007));
}

#[test]
fn invalid_utf8_split_across_fragments_closes_with_1007() {
    let mut bytes = frame(false, TEXT, b"\xce", 1);
    bytes.extend(frame(true, CONTINUATION, b"\x20", 1));
    assert_eq!(verdict(bytes).1, Some(1007));
}

#[test]
fn invalid_utf8_in_a_close_reason_closes_with_1007() {
    let (seen, close) = verdict(whole(CLOSE, b"\x03\xe8bye \xff"));
    assert_eq!(seen, Incoming::Violation(ProtocolError::InvalidUtf8));
    assert_eq!(close, Some(1007));
}

#[test]
fn a_2_gib_length_header_closes_with_1009_before_any_payload() {
    let (seen, close) = verdict(frame(true, BINARY, b"", 2 << 30));
    assert_eq!(seen, Incoming::Violation(ProtocolError::TooBig));
    assert_eq!(close, Some(1009));
}

#[test]
fn a_20_mib_frame_closes_with_1009() {
    let (_, close) = verdict(frame(true, BINARY, &[0; 1024], 20 << 20));
    assert_eq!(close, Some(1009));
}

#[test]
fn a_message_over_the_limit_in_small_fragments_closes_with_1009() {
    // 20 fragments of 100 KiB: every frame is under the frame limit, the message
    // (2,000 KiB) is over the 1 MiB message limit.
    let chunk = vec![b'a'; 100 << 10];
    let mut bytes = frame(false, BINARY, &chunk, chunk.len() as u64);
    for i in 1..20 {
        bytes.extend(frame(i == 19, CONTINUATION, &chunk, chunk.len() as u64));
    }
    let (seen, close) = verdict(bytes);
    assert_eq!(seen, Incoming::Violation(ProtocolError::TooBig));
    assert_eq!(close, Some(1009));
}

#[test]
fn other_protocol_violations_close_with_1002() {
    let reserved_bits = {
        let mut f = whole(BINARY, b"x");
        f[0] |= 0x40;
        f
    };
    let unmasked = vec![0x82, 0x01, b'x'];
    let fragmented_ping = frame(false, 9, b"p", 1);
    let stray_continuation = whole(CONTINUATION, b"x");
    let reserved_opcode = whole(3, b"x");
    for (name, bytes) in [
        ("reserved bits", reserved_bits),
        ("unmasked client frame", unmasked),
        ("fragmented ping", fragmented_ping),
        ("continuation with nothing to continue", stray_continuation),
        ("reserved opcode", reserved_opcode),
    ] {
        let (seen, close) = verdict(bytes);
        assert_eq!(
            seen,
            Incoming::Violation(ProtocolError::Malformed),
            "{name}"
        );
        assert_eq!(close, Some(CloseCode::PROTOCOL_ERROR.get()), "{name}");
    }
}

#[test]
fn a_message_at_the_limit_is_data() {
    let (seen, close) = verdict(whole(BINARY, &vec![0; 1 << 20]));
    assert_eq!((seen, close), (Incoming::Data, None));
}
