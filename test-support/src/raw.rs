//! A raw WebSocket peer for hostile-peer tests: it does the upgrade by hand, then
//! writes whatever bytes the test wants (frames of any shape, lying length headers,
//! invalid UTF-8, never-ending fragments) and reads the other side's frames one by
//! one, so a test can assert the exact close code it received.
//!
//! A WebSocket library would refuse to send most of what these tests need, and
//! would answer pings by itself; this peer does neither unless told to.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use tungstenite::handshake::derive_accept_key;

/// One end of a WebSocket connection spoken in raw frames.
#[derive(Debug)]
pub struct RawPeer {
    /// The socket, for tests that write or shut down at the TCP level.
    pub stream: TcpStream,
    /// Whether this peer is the client (its frames are masked).
    client: bool,
}

/// A frame read from the other side.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Frame {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode (1 text, 2 binary, 8 close, 9 ping, 10 pong, 0 continuation).
    pub opcode: u8,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The close code of a close frame, if it carries one.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// How a wait for the other side's close ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ending {
    /// A close frame arrived, with its code if it had one.
    Close(Option<u16>),
    /// The connection ended without a close frame (what the wire calls 1006).
    Eof,
    /// Nothing ended within the wait.
    TimedOut,
}

/// Opcode of a continuation frame.
pub const CONTINUATION: u8 = 0;
/// Opcode of a text frame.
pub const TEXT: u8 = 1;
/// Opcode of a binary frame.
pub const BINARY: u8 = 2;
/// Opcode of a close frame.
pub const CLOSE: u8 = 8;
/// Opcode of a ping frame.
pub const PING: u8 = 9;
/// Opcode of a pong frame.
pub const PONG: u8 = 10;

impl RawPeer {
    /// Accepts one connection on `listener` and answers its upgrade request.
    pub fn accept(listener: &TcpListener) -> io::Result<RawPeer> {
        let (stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut key = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.trim().eq_ignore_ascii_case("sec-websocket-key") {
                    key = Some(value.trim().to_owned());
                }
            }
            if line == "\r\n" {
                break;
            }
        }
        let key = key.ok_or_else(|| io::Error::other("no Sec-WebSocket-Key"))?;
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        )?;
        Ok(RawPeer {
            stream,
            client: false,
        })
    }

    /// Connects to `addr` and upgrades.
    pub fn connect(addr: SocketAddr) -> io::Result<RawPeer> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        write!(
            stream,
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )?;
        // Read the response byte by byte so no frame after it is swallowed.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            head.push(byte[0]);
        }
        if !head.starts_with(b"HTTP/1.1 101") {
            return Err(io::Error::other(
                String::from_utf8_lossy(&head).into_owned(),
            ));
        }
        Ok(RawPeer {
            stream,
            client: true,
        })
    }

    /// A frame as this peer sends it (masked with a zero key when it is the
    /// client, which leaves the payload readable), with `len` in its header.
    pub fn encode(&self, fin: bool, opcode: u8, payload: &[u8], len: u64) -> Vec<u8> {
        let mut out = vec![u8::from(fin) << 7 | opcode];
        let mask = u8::from(self.client) << 7;
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
        if self.client {
            out.extend_from_slice(&[0; 4]);
        }
        out.extend_from_slice(payload);
        out
    }

    /// Sends one frame with its true length.
    pub fn send(&mut self, fin: bool, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let bytes = self.encode(fin, opcode, payload, payload.len() as u64);
        self.stream.write_all(&bytes)
    }

    /// Sends a close frame with `code` and `reason` bytes (which may be invalid UTF-8).
    pub fn send_close(&mut self, code: u16, reason: &[u8]) -> io::Result<()> {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        self.send(true, CLOSE, &payload)
    }

    /// Reads the next frame; `None` at the end of the stream. Payloads over 64 MiB
    /// are refused (an error), so a broken peer cannot make the test allocate.
    pub fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        let mut head = [0u8; 2];
        match self.stream.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let masked = head[1] & 0x80 != 0;
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b)?;
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b)?;
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        if len > 64 << 20 {
            return Err(io::Error::other(format!("a {len}-byte frame")));
        }
        let mut key = [0u8; 4];
        if masked {
            self.stream.read_exact(&mut key)?;
        }
        let mut payload = vec![0u8; len as usize];
        self.stream.read_exact(&mut payload)?;
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        Ok(Some(Frame {
            fin: head[0] & 0x80 != 0,
            opcode: head[0] & 0x0f,
            payload,
        }))
    }

    /// Reads frames (answering nothing) until a close frame, the end of the
    /// stream, or `wait`. On a close frame, replies with the same code, as the
    /// closing handshake asks.
    pub fn await_close(&mut self, wait: Duration) -> Ending {
        let end = Instant::now() + wait;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ending::TimedOut;
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.read_frame() {
                Ok(Some(f)) if f.opcode == CLOSE => {
                    let code = f.close_code();
                    let _ = self.send_close(code.unwrap_or(1000), b"");
                    return Ending::Close(code);
                }
                Ok(Some(_)) => {}
                Ok(None) => return Ending::Eof,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ending::TimedOut
                }
                Err(_) => return Ending::Eof,
            }
        }
    }
}

/// One frame of a hostile case, as the raw peer sends it.
#[derive(Clone, Debug)]
pub struct Step {
    /// The FIN bit.
    pub fin: bool,
    /// The opcode.
    pub opcode: u8,
    /// The payload actually sent.
    pub payload: Vec<u8>,
    /// The length written in the header, if it lies about the payload's.
    pub len: Option<u64>,
}

/// What the side under test must do with a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Close with this code.
    Close(u16),
    /// Answer with a pong carrying this payload, then go on (the case then sends a
    /// close 1000, which must be answered with 1000).
    Pong(Vec<u8>),
    /// Take it as valid (the case then sends a close 1000, answered with 1000).
    Valid,
}

/// An Autobahn-style case: its number and name, the frames, and the verdict due.
#[derive(Clone, Debug)]
pub struct Case {
    /// Autobahn section and a name, e.g. "6.x invalid UTF-8 in a text message".
    pub name: &'static str,
    /// The frames the hostile peer sends.
    pub steps: Vec<Step>,
    /// What the side under test must do.
    pub expect: Expect,
}

fn step(fin: bool, opcode: u8, payload: &[u8]) -> Step {
    Step {
        fin,
        opcode,
        payload: payload.to_vec(),
        len: None,
    }
}

/// The hostile cases every adapter must pass as server and as client, with the
/// default limits (1 MiB messages and frames): Autobahn sections 2 (pings),
/// 5 (fragmentation), 6 (UTF-8), 7 (close) and 9 (limits).
pub fn cases() -> Vec<Case> {
    let chunk = vec![b'a'; 100 << 10];
    let mut fragments = vec![step(false, TEXT, &chunk)];
    fragments.extend((1..20).map(|i| step(i == 19, CONTINUATION, &chunk)));
    vec![
        Case {
            name: "2.1 ping without payload",
            steps: vec![step(true, PING, b"")],
            expect: Expect::Pong(Vec::new()),
        },
        Case {
            name: "2.3 ping with 125 bytes",
            steps: vec![step(true, PING, &[0xfe; 125])],
            expect: Expect::Pong(vec![0xfe; 125]),
        },
        Case {
            name: "2.5 ping with 126 bytes",
            steps: vec![step(true, PING, &[0; 126])],
            expect: Expect::Close(1002),
        },
        Case {
            name: "5.1 fragmented ping",
            steps: vec![step(false, PING, b"a"), step(true, CONTINUATION, b"b")],
            expect: Expect::Close(1002),
        },
        Case {
            name: "5.6 text in two fragments with a ping between",
            steps: vec![
                step(false, TEXT, b"frag"),
                step(true, PING, b"mid"),
                step(true, CONTINUATION, b"ment"),
            ],
            expect: Expect::Pong(b"mid".to_vec()),
        },
        Case {
            name: "5.9 continuation with nothing to continue",
            steps: vec![step(true, CONTINUATION, b"x")],
            expect: Expect::Close(1002),
        },
        Case {
            name: "5.18 a new message while fragments are pending",
            steps: vec![step(false, TEXT, b"a"), step(true, TEXT, b"b")],
            expect: Expect::Close(1002),
        },
        Case {
            name: "6.2 valid multi-byte UTF-8",
            steps: vec![step(true, TEXT, "κόσμε".as_bytes())],
            expect: Expect::Valid,
        },
        Case {
            name: "6.3 invalid UTF-8 in a text message",
            steps: vec![step(
                true,
                TEXT,
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            )],
            expect: Expect::Close(1007),
        },
        Case {
            name: "6.4 invalid UTF-8 split over fragments",
            steps: vec![
                step(false, TEXT, b"\xce"),
                step(true, CONTINUATION, b"\x20"),
            ],
            expect: Expect::Close(1007),
        },
        Case {
            name: "7.3 close with a one-byte payload",
            steps: vec![step(true, CLOSE, b"\x03")],
            expect: Expect::Close(1002),
        },
        Case {
            name: "7.5 close reason with invalid UTF-8",
            steps: vec![step(true, CLOSE, b"\x03\xe8\xce\xba\xff")],
            expect: Expect::Close(1007),
        },
        Case {
            name: "7.9 close code 1005 (never on the wire)",
            steps: vec![step(true, CLOSE, &1005u16.to_be_bytes())],
            expect: Expect::Close(1002),
        },
        Case {
            name: "7.13 close code 3000 is echoed",
            steps: vec![step(true, CLOSE, &3000u16.to_be_bytes())],
            expect: Expect::Close(3000),
        },
        Case {
            name: "9.1 a 2 MiB single-frame message",
            steps: vec![step(true, BINARY, &vec![0; 2 << 20])],
            expect: Expect::Close(1009),
        },
        Case {
            name: "9.x a 2 GiB length header",
            steps: vec![Step {
                fin: true,
                opcode: BINARY,
                payload: Vec::new(),
                len: Some(2 << 30),
            }],
            expect: Expect::Close(1009),
        },
        Case {
            name: "9.x a 2,000 KiB message in 100 KiB fragments",
            steps: fragments,
            expect: Expect::Close(1009),
        },
    ]
}

impl RawPeer {
    /// Plays `case` and checks the other side's answer; `Err` says what went wrong.
    pub fn play(&mut self, case: &Case, wait: Duration) -> Result<(), String> {
        for s in &case.steps {
            let len = s.len.unwrap_or(s.payload.len() as u64);
            let bytes = self.encode(s.fin, s.opcode, &s.payload, len);
            // The other side may close (and stop reading) before all is written.
            if self.stream.write_all(&bytes).is_err() {
                break;
            }
        }
        if let Expect::Pong(payload) = &case.expect {
            let end = Instant::now() + wait;
            loop {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(format!("{}: no pong", case.name));
                }
                let _ = self.stream.set_read_timeout(Some(left));
                match self.read_frame() {
                    Ok(Some(f)) if f.opcode == PONG && &f.payload == payload => break,
                    Ok(Some(f)) if f.opcode == CLOSE => {
                        return Err(format!("{}: closed with {:?}", case.name, f.close_code()))
                    }
                    Ok(Some(_)) => {}
                    other => return Err(format!("{}: {other:?} before the pong", case.name)),
                }
            }
        }
        let want = match case.expect {
            Expect::Close(code) => code,
            Expect::Pong(_) | Expect::Valid => {
                let _ = self.send_close(1000, b"");
                1000
            }
        };
        match self.await_close(wait) {
            Ending::Close(Some(code)) if code == want => Ok(()),
            other => Err(format!(
                "{}: expected close {want}, got {other:?}",
                case.name
            )),
        }
    }
}
