//! [`Upgrade`]: one connection's WebSocket handshake, either role, read through
//! the driver's shared scratch buffer.
//!
//! tungstenite's own handshake (`MidHandshake`) reads into a 4 KiB buffer plus a
//! 4 KiB chunk per connection, and on the client side hands that 4 KiB buffer
//! over as the connection's read buffer for its whole life (`from_partially_read`
//! keeps the handshake's `Vec` and its capacity). That alone is 4 KiB per client
//! connection, twice the budget of heartbeat-mio. Here the HTTP head is read into
//! one buffer shared by every connection of the driver, parsed and checked with
//! tungstenite's own public pieces (`generate_request`, `derive_accept_key`,
//! `create_response`, `write_response`, the `TryParse` impls), and the WebSocket
//! starts with a read buffer of the configured size, holding a copy of whatever
//! followed the head. A head that arrives in several reads (rare: it is a few
//! hundred bytes) is collected in a per-connection `Vec` until complete.

use std::io::{self, ErrorKind, Read, Write};

use tungstenite::error::ProtocolError;
use tungstenite::handshake::client::{generate_request, Request, Response};
use tungstenite::handshake::derive_accept_key;
use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::{create_response, write_response};
use tungstenite::http::StatusCode;
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, WebSocket};

use crate::sock::Sock;

/// A handshake in progress.
#[derive(Debug)]
pub(crate) struct Upgrade {
    pub(crate) sock: Sock,
    stage: Stage,
    /// The start of an HTTP head that did not arrive in one read.
    head: Vec<u8>,
    /// Client only: the `Sec-WebSocket-Accept` the server must answer with.
    accept_key: Option<String>,
}

#[derive(Debug)]
enum Stage {
    /// Sending our head (the client's request, the server's response); `sent`
    /// bytes of it are out.
    Send { bytes: Vec<u8>, sent: usize },
    /// Waiting for the peer's head.
    Receive,
}

/// Where an [`Upgrade::advance`] got to.
// A return value, moved once: boxing the WebSocket would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Step {
    /// The handshake completed.
    Open(WebSocket<Sock>),
    /// The socket would block; advance again on readiness.
    Pending(Box<Upgrade>),
    /// The handshake failed (the socket is dropped with this value).
    Failed(WsError),
}

impl Upgrade {
    /// A client handshake sending `request` (checked as tungstenite checks it).
    pub(crate) fn client(sock: Sock, request: Request) -> Result<Box<Upgrade>, WsError> {
        if request.headers().contains_key("Sec-WebSocket-Protocol") {
            // The answer would have to be checked against the list; the driver
            // offers none.
            return Err(WsError::Protocol(
                ProtocolError::SecWebSocketSubProtocolError(
                    tungstenite::error::SubProtocolError::ServerSentSubProtocolNoneRequested,
                ),
            ));
        }
        let (bytes, key) = generate_request(request)?;
        Ok(Box::new(Upgrade {
            sock,
            stage: Stage::Send { bytes, sent: 0 },
            head: Vec::new(),
            accept_key: Some(derive_accept_key(key.as_bytes())),
        }))
    }

    /// A server handshake on an accepted socket: the client's request comes first.
    pub(crate) fn server(sock: Sock) -> Box<Upgrade> {
        Box::new(Upgrade {
            sock,
            stage: Stage::Receive,
            head: Vec::new(),
            accept_key: None,
        })
    }

    /// Sends and receives what the socket allows; `scratch` is the driver's shared
    /// read buffer.
    pub(crate) fn advance(
        mut self: Box<Self>,
        scratch: &mut [u8],
        config: WebSocketConfig,
    ) -> Step {
        loop {
            match &mut self.stage {
                Stage::Send { bytes, sent } => {
                    match self.sock.write(&bytes[*sent..]) {
                        Ok(0) => return Step::Failed(io_error(ErrorKind::WriteZero)),
                        Ok(n) => *sent += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Pending(self),
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Step::Failed(WsError::Io(e)),
                    }
                    if *sent < bytes.len() {
                        continue;
                    }
                    if self.accept_key.is_none() {
                        // The server's response is out: open.
                        let ws = WebSocket::from_raw_socket(self.sock, Role::Server, Some(config));
                        return Step::Open(ws);
                    }
                    self.stage = Stage::Receive;
                }
                Stage::Receive => {
                    let n = match self.sock.read(scratch) {
                        Ok(0) => {
                            return Step::Failed(WsError::Protocol(
                                ProtocolError::HandshakeIncomplete,
                            ))
                        }
                        Ok(n) => n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Pending(self),
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => return Step::Failed(WsError::Io(e)),
                    };
                    let mut head = std::mem::take(&mut self.head);
                    let input = if head.is_empty() {
                        &scratch[..n]
                    } else {
                        head.extend_from_slice(&scratch[..n]);
                        &head[..]
                    };
                    if input.len() > MAX_HEAD {
                        return Step::Failed(WsError::AttackAttempt);
                    }
                    let parsed = match self.accept_key.take() {
                        None => self.request(input),
                        Some(key) => match self.response(input, &key, config) {
                            // Incomplete: read on (a full read may have left more).
                            Step::Pending(upgrade) => {
                                self = upgrade;
                                continue;
                            }
                            step => return step,
                        },
                    };
                    match parsed {
                        Ok(true) => {}
                        Ok(false) => {
                            // Incomplete: keep what came and wait for more.
                            if head.is_empty() {
                                head = input.to_vec();
                            }
                            self.head = head;
                        }
                        Err(e) => return Step::Failed(e),
                    }
                }
            }
        }
    }

    /// Server: parses the request; once complete, the response becomes the bytes
    /// to send. `Ok(false)`: incomplete.
    fn request(&mut self, input: &[u8]) -> Result<bool, WsError> {
        let Some((size, request)) = Request::try_parse(input)? else {
            return Ok(false);
        };
        if size != input.len() {
            // The client must wait for our answer before sending frames.
            return Err(WsError::Protocol(ProtocolError::JunkAfterRequest));
        }
        let response = create_response(&request)?;
        let mut bytes = Vec::new();
        write_response(&mut bytes, &response)?;
        self.stage = Stage::Send { bytes, sent: 0 };
        Ok(true)
    }

    /// Client: parses and checks the response (as tungstenite's `ClientHandshake`
    /// does); once complete, the WebSocket starts with whatever followed it.
    fn response(
        mut self: Box<Self>,
        input: &[u8],
        accept_key: &str,
        config: WebSocketConfig,
    ) -> Step {
        let (size, response) = match Response::try_parse(input) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => {
                self.accept_key = Some(accept_key.to_owned());
                self.head = input.to_vec();
                return Step::Pending(self);
            }
            Err(e) => return Step::Failed(e),
        };
        let tail = &input[size..];
        if let Err(e) = verify(response, accept_key, tail) {
            return Step::Failed(e);
        }
        let ws = if tail.is_empty() {
            WebSocket::from_raw_socket(self.sock, Role::Client, Some(config))
        } else {
            // A copy of exactly what came, so the read buffer is the configured
            // size (or the frame's), never the scratch buffer's.
            WebSocket::from_partially_read(self.sock, tail.to_vec(), Role::Client, Some(config))
        };
        Step::Open(ws)
    }
}

/// The checks of RFC 6455 section 4.1 on the server's answer, in tungstenite's
/// order and with its errors. A refusal (not 101) carries the response, so a
/// `Retry-After` can be read from it.
fn verify(mut response: Response, accept_key: &str, tail: &[u8]) -> Result<(), WsError> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        *response.body_mut() = Some(tail.to_vec());
        return Err(WsError::Http(Box::new(response)));
    }
    let headers = response.headers();
    let header = |name: &str| headers.get(name).and_then(|h| h.to_str().ok());
    if !header("Upgrade").is_some_and(|h| h.eq_ignore_ascii_case("websocket")) {
        return Err(WsError::Protocol(
            ProtocolError::MissingUpgradeWebSocketHeader,
        ));
    }
    if !header("Connection").is_some_and(|h| h.eq_ignore_ascii_case("Upgrade")) {
        return Err(WsError::Protocol(
            ProtocolError::MissingConnectionUpgradeHeader,
        ));
    }
    if header("Sec-WebSocket-Accept") != Some(accept_key) {
        return Err(WsError::Protocol(
            ProtocolError::SecWebSocketAcceptKeyMismatch,
        ));
    }
    if headers.contains_key("Sec-WebSocket-Protocol") {
        return Err(WsError::Protocol(
            ProtocolError::SecWebSocketSubProtocolError(
                tungstenite::error::SubProtocolError::ServerSentSubProtocolNoneRequested,
            ),
        ));
    }
    Ok(())
}

fn io_error(kind: ErrorKind) -> WsError {
    WsError::Io(io::Error::from(kind))
}

/// The longest HTTP head accepted, as tungstenite's handshake allows.
const MAX_HEAD: usize = 64 * 1024;
