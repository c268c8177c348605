//! A blocking driver for [`heartbeat_core`]: tungstenite over `std::net::TcpStream`
//! on plain threads, no event loop, no async runtime.
//!
//! - [`KeepAlive`] wraps an open `WebSocket<TcpStream>`. Its blocking
//!   [`read`](KeepAlive::read) returns application messages only; inside, it waits
//!   for input at most until the machine's next deadline (a socket read timeout,
//!   clamped to at least 1 ms), sends pings and pongs, and returns
//!   [`Error::Dead`] as soon as the peer is declared dead.
//!   [`send`](KeepAlive::send) sends application messages.
//! - [`run_client`] is a reconnecting client loop: it connects, hands each live
//!   connection to your session function, and waits the machine's backoff between
//!   attempts.
//!
//! Heartbeats only run while a thread is inside `read`/`read_until`: a program that
//! stops reading for longer than the ping interval delays its pings (and the
//! machine's stall detection then probes afresh instead of blaming the peer).
//!
//! ```no_run
//! use std::time::Duration;
//! use heartbeat_blocking::{Error, KeepAlive};
//! use heartbeat_core::{Config, Role};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder()
//!     .role(Role::Server) // this connection never reconnects by itself
//!     .ping_interval(Duration::from_secs(5))
//!     .pong_timeout(Duration::from_secs(5))
//!     .build()?;
//! let mut ws = KeepAlive::connect("ws://127.0.0.1:9000/", config, Duration::from_secs(5))?;
//! ws.send("subscribe".into())?;
//! loop {
//!     match ws.read() {
//!         Ok(msg) => println!("{msg}"),
//!         Err(Error::Dead(reason)) => { eprintln!("peer dead: {reason}"); break }
//!         Err(e) => return Err(e.into()),
//!     }
//! }
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

use std::borrow::Borrow;
use std::fmt;
use std::io::{self, ErrorKind};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::Duration;

use heartbeat_core::{CloseCode, Config, DeathReason, HeartbeatMachine, Instant, State};
use heartbeat_transport::{
    drive, feed, incoming_from_tungstenite_error, needs_transport, Clock, Handover, Incoming,
    Transport,
};
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Error as WsError, Message, WebSocket};

pub use heartbeat_transport::Reconnect;
pub use tungstenite;

/// Why a [`KeepAlive`] call failed.
#[derive(Debug)]
pub enum Error {
    /// The connection is over (the peer is dead, closed, or the transport ended).
    /// Returned at detection time; the close frame, if any, was already sent.
    Dead(DeathReason),
    /// Connecting or the WebSocket handshake failed.
    Connect(WsError),
    /// Socket setup failed.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Dead(r) => write!(f, "connection over: {r}"),
            Error::Connect(e) => write!(f, "connect failed: {e}"),
            Error::Io(e) => write!(f, "socket error: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// An open WebSocket whose blocking reads also run its heartbeat.
pub struct KeepAlive<C: Borrow<Config> = Config> {
    ws: WebSocket<TcpStream>,
    hb: HeartbeatMachine<C>,
    clock: Clock,
    /// The last flush hit the write timeout: data waits in tungstenite's buffer.
    blocked: bool,
    /// A ping waits in that buffer; it is reported sent once the buffer drains.
    ping_unflushed: bool,
    dead: Option<DeathReason>,
    reconnect: Option<Reconnect>,
}

impl KeepAlive<Config> {
    /// Connects to `url` (`ws://host:port/path`) with `config`; the TCP connect and
    /// the handshake each get `timeout`.
    pub fn connect(url: &str, config: Config, timeout: Duration) -> Result<KeepAlive, Error> {
        let ws = connect_ws(url, timeout)?;
        let mut hb = HeartbeatMachine::new(config, seed());
        let clock = Clock::new();
        hb.handle_connected(clock.now());
        Ok(KeepAlive::from_parts(ws, hb, clock))
    }
}

impl<C: Borrow<Config>> KeepAlive<C> {
    /// Wraps an open WebSocket (handshake done) with a fresh machine, connected now.
    pub fn new(ws: WebSocket<TcpStream>, config: C, seed: u64) -> KeepAlive<C> {
        let clock = Clock::new();
        let mut hb = HeartbeatMachine::new(config, seed);
        hb.handle_connected(clock.now());
        KeepAlive::from_parts(ws, hb, clock)
    }

    /// Wraps an open WebSocket with a machine that was already told
    /// `handle_connected` on `clock` (as [`run_client`] does across reconnects).
    pub fn from_parts(
        ws: WebSocket<TcpStream>,
        hb: HeartbeatMachine<C>,
        clock: Clock,
    ) -> KeepAlive<C> {
        let _ = ws.get_ref().set_nodelay(true);
        KeepAlive {
            ws,
            hb,
            clock,
            blocked: false,
            ping_unflushed: false,
            dead: None,
            reconnect: None,
        }
    }

    /// Blocks until an application message arrives, running the heartbeat
    /// meanwhile. Returns [`Error::Dead`] as soon as the connection is over.
    pub fn read(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(msg) = self.read_until(None)? {
                return Ok(msg);
            }
        }
    }

    /// Like [`read`](Self::read), but returns `Ok(None)` once `deadline` passes
    /// without an application message.
    pub fn read_until(
        &mut self,
        deadline: Option<std::time::Instant>,
    ) -> Result<Option<Message>, Error> {
        let stop = deadline.map(|d| self.clock.from_std(d));
        loop {
            if let Some(reason) = self.dead {
                return Err(Error::Dead(reason));
            }
            let now = self.clock.now();
            self.flush_pending(now);
            self.pump(now);
            if self.dead.is_some() {
                continue;
            }
            if stop.is_some_and(|s| now >= s) {
                return Ok(None);
            }
            // Sleep in the read at most until the machine's (or the caller's) deadline.
            let wake = [self.hb.poll_timeout().map(|d| d.at), stop]
                .into_iter()
                .flatten()
                .min();
            let wait = wake.map_or(Duration::from_secs(3600), |at| at - now);
            let wait = wait.max(MIN_WAIT);
            let _ = self.ws.get_ref().set_read_timeout(Some(wait));
            match self.ws.read() {
                Ok(msg) => {
                    if let Some(msg) = self.on_frame(msg) {
                        return Ok(Some(msg));
                    }
                }
                Err(WsError::Io(e)) if is_timeout(&e) => {
                    // Nothing arrived in time: expire what is due.
                    self.hb.handle_timeout(self.clock.now());
                }
                Err(WsError::Io(e)) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    let incoming = incoming_from_tungstenite_error(&e);
                    feed(&mut self.hb, self.clock.now(), incoming);
                }
            }
        }
    }

    /// Sends an application message (blocking at most for the pong timeout; longer
    /// and it stays queued and goes out with the next read or send).
    pub fn send(&mut self, msg: Message) -> Result<(), Error> {
        if let Some(reason) = self.dead {
            return Err(Error::Dead(reason));
        }
        let now = self.clock.now();
        let timeout = self.hb.pong_timeout().max(MIN_WAIT);
        let _ = self.ws.get_ref().set_write_timeout(Some(timeout));
        let r = self.ws.write(msg).and_then(|()| self.ws.flush());
        match r {
            Ok(()) => self.blocked = false,
            Err(WsError::Io(e)) if is_timeout(&e) => self.blocked = true,
            Err(_) => feed(&mut self.hb, now, Incoming::Ended),
        }
        self.pump(now);
        match self.dead {
            Some(reason) => Err(Error::Dead(reason)),
            None => Ok(()),
        }
    }

    /// Closes with `code` and waits (bounded by the close timeout) for the peer's
    /// close. Returns how the connection ended.
    pub fn close(&mut self, code: CloseCode) -> DeathReason {
        self.hb.close(self.clock.now(), code);
        loop {
            match self.read_until(None) {
                Err(Error::Dead(_)) if needs_transport(&self.hb) => {
                    // Told already; keep reading until the handshake ends.
                    self.dead = None;
                }
                Err(Error::Dead(reason)) => return reason,
                Err(_) => {
                    return self
                        .hb
                        .death_reason()
                        .unwrap_or(DeathReason::TransportClosed)
                }
                Ok(_) => {}
            }
        }
    }

    /// The heartbeat machine (health, RTT, counters).
    pub fn machine(&self) -> &HeartbeatMachine<C> {
        &self.hb
    }

    /// The WebSocket.
    pub fn get_ref(&self) -> &WebSocket<TcpStream> {
        &self.ws
    }

    /// Splits into the WebSocket, the machine, its clock and a reconnect the
    /// machine asked for (if any).
    pub fn into_parts(
        self,
    ) -> (
        WebSocket<TcpStream>,
        HeartbeatMachine<C>,
        Clock,
        Option<Reconnect>,
    ) {
        (self.ws, self.hb, self.clock, self.reconnect)
    }

    /// Feeds one frame; returns it if it is for the application.
    fn on_frame(&mut self, msg: Message) -> Option<Message> {
        let now = self.clock.now();
        match &msg {
            Message::Ping(p) => feed(&mut self.hb, now, Incoming::Ping(p)),
            Message::Pong(p) => feed(&mut self.hb, now, Incoming::Pong(p)),
            Message::Close(c) => feed(
                &mut self.hb,
                now,
                Incoming::Close(c.as_ref().map(|c| c.code.into())),
            ),
            Message::Text(_) | Message::Binary(_) => {
                feed(&mut self.hb, now, Incoming::Data);
                // Actions first (a queued pong), then the message.
                self.pump(now);
                return Some(msg);
            }
            Message::Frame(_) => {}
        }
        // Execute at once, so the machine's pong replaces tungstenite's queued one.
        self.pump(now);
        None
    }

    /// Executes the machine's actions and records deaths and reconnects.
    fn pump(&mut self, now: Instant) {
        let timeout = self.hb.pong_timeout().max(MIN_WAIT);
        let _ = self.ws.get_ref().set_write_timeout(Some(timeout));
        let mut t = WsTransport {
            ws: &mut self.ws,
            blocked: &mut self.blocked,
        };
        let out = drive(&mut self.hb, &mut t, now);
        if out.ping_queued {
            self.ping_unflushed = true;
        }
        if let Some(r) = out.reconnect {
            self.reconnect = Some(r);
        }
        if let Some(reason) = out.dead {
            self.dead = Some(reason);
        }
        if !needs_transport(&self.hb) {
            if self.dead.is_none() {
                self.dead = Some(
                    self.hb
                        .death_reason()
                        .unwrap_or(DeathReason::TransportClosed),
                );
            }
            if !matches!(self.hb.state(), State::Open) {
                let _ = self.ws.get_ref().shutdown(Shutdown::Both);
            }
        }
    }

    /// Retries a write that timed out earlier; reports a queued ping sent once out.
    fn flush_pending(&mut self, now: Instant) {
        if !self.blocked {
            return;
        }
        match self.ws.flush() {
            Ok(()) => {
                self.blocked = false;
                if std::mem::take(&mut self.ping_unflushed) {
                    self.hb.handle_ping_sent(now);
                }
            }
            Err(WsError::Io(e)) if is_timeout(&e) => {}
            Err(_) => feed(&mut self.hb, now, Incoming::Ended),
        }
    }
}

/// What the reconnecting client loop should do after a session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Next {
    /// Reconnect (with the machine's backoff) if the machine allows it.
    Reconnect,
    /// Close with this code and return.
    Stop(CloseCode),
}

/// A reconnecting client: connects to `url`, calls `session` with each live
/// connection, and after a death waits the machine's backoff
/// ([`Config::backoff`], with `Retry-After` from a 503 honoured) before connecting
/// again. Returns when `session` says [`Next::Stop`] or the machine gives up
/// (attempts exhausted, permanent close code). `timeout` bounds each TCP connect
/// and handshake.
///
/// Use a client-role `config`; `session` usually loops on
/// [`read`](KeepAlive::read) until it returns [`Error::Dead`].
pub fn run_client(
    url: &str,
    config: Config,
    timeout: Duration,
    mut session: impl FnMut(&mut KeepAlive) -> Next,
) -> DeathReason {
    let clock = Clock::new();
    let mut hb = HeartbeatMachine::new(config, seed());
    loop {
        let now = clock.now();
        match connect_ws(url, timeout) {
            Ok(ws) => {
                hb.handle_connected(now);
                let mut ka = KeepAlive::from_parts(ws, hb, clock);
                let next = session(&mut ka);
                if let Next::Stop(code) = next {
                    if ka.dead.is_none() {
                        return ka.close(code);
                    }
                }
                let (ws, machine, _, reconnect) = ka.into_parts();
                hb = machine;
                drop(ws);
                if let Some(r) = reconnect {
                    std::thread::sleep(r.after);
                    continue;
                }
                if let Next::Stop(code) = next {
                    hb.close(clock.now(), code);
                    return hb.death_reason().unwrap_or(DeathReason::TransportClosed);
                }
                // The socket is gone; a close handshake still pending ends here.
                hb.handle_transport_closed(clock.now());
            }
            Err(e) => {
                if let Some(delay) = retry_after(&e) {
                    hb.handle_retry_after(now, delay);
                }
                hb.handle_connect_failed(now);
            }
        }
        let out = drive(&mut hb, &mut Disconnected, clock.now());
        match out.reconnect {
            Some(r) => std::thread::sleep(r.after),
            None if matches!(hb.state(), State::Finished { .. }) => {
                return hb.death_reason().unwrap_or(DeathReason::ConnectFailed)
            }
            None => std::thread::sleep(MIN_WAIT),
        }
    }
}

/// tungstenite settings sized for heartbeat traffic: a 4 KiB read buffer instead
/// of 128 KiB, frames written at once, messages up to 1 MiB, and a 4 MiB write-buffer
/// cap so a peer that floods pings without reading its pongs cannot grow memory
/// (tungstenite keeps the newest pong in its pending slot once the cap is reached).
pub fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 << 20)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// Connects a blocking WebSocket with [`small_buffers`] and `TCP_NODELAY`.
pub fn connect_ws(url: &str, timeout: Duration) -> Result<WebSocket<TcpStream>, Error> {
    use tungstenite::client::IntoClientRequest;
    let request = url.into_client_request().map_err(Error::Connect)?;
    let host = request
        .uri()
        .host()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_owned();
    let port = request.uri().port_u16().unwrap_or(80);
    let addr = (host.as_str(), port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "host did not resolve"))?;
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    match tungstenite::client::client_with_config(request, stream, Some(small_buffers())) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(Error::Connect(e)),
        Err(tungstenite::HandshakeError::Interrupted(_)) => Err(Error::Io(io::Error::new(
            ErrorKind::TimedOut,
            "handshake timed out",
        ))),
    }
}

/// `Retry-After: <seconds>` of a refused handshake, if any.
fn retry_after(e: &Error) -> Option<Duration> {
    let Error::Connect(WsError::Http(response)) = e else {
        return None;
    };
    let secs: u64 = response
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// The machine's actions executed on a blocking WebSocket.
struct WsTransport<'a> {
    ws: &'a mut WebSocket<TcpStream>,
    blocked: &'a mut bool,
}

impl WsTransport<'_> {
    /// `Ok(true)`: the write timed out and the frame waits in the buffer.
    fn queued(&mut self, r: Result<(), WsError>) -> Result<bool, WsError> {
        match r {
            Ok(()) => Ok(false),
            Err(WsError::Io(e)) if is_timeout(&e) => {
                *self.blocked = true;
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}

impl Transport for WsTransport<'_> {
    type Error = WsError;

    fn send_ping(&mut self, payload: &[u8]) -> Result<Handover, WsError> {
        let r = self.ws.write(Message::Ping(payload.to_vec().into()));
        let mut queued = self.queued(r)?;
        let r = self.ws.flush();
        queued |= self.queued(r)?;
        Ok(if queued {
            Handover::Queued
        } else {
            Handover::Taken
        })
    }

    fn send_pong(&mut self, payload: &[u8]) -> Result<(), WsError> {
        let r = self.ws.write(Message::Pong(payload.to_vec().into()));
        self.queued(r)?;
        let r = self.ws.flush();
        self.queued(r).map(drop)
    }

    fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<(), WsError> {
        let r = if self.ws.can_write() {
            self.ws.close(Some(CloseFrame {
                code: code.get().into(),
                reason: reason.into(),
            }))
        } else {
            self.ws.flush()
        };
        match r {
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Ok(()),
            r => self.queued(r).map(drop),
        }
    }

    fn abort(&mut self) {
        let _ = self.ws.get_ref().shutdown(Shutdown::Both);
    }
}

/// No socket (between connections): nothing to execute.
struct Disconnected;

impl Transport for Disconnected {
    type Error = WsError;
    fn send_ping(&mut self, _: &[u8]) -> Result<Handover, WsError> {
        Ok(Handover::Queued)
    }
    fn send_pong(&mut self, _: &[u8]) -> Result<(), WsError> {
        Ok(())
    }
    fn send_close(&mut self, _: CloseCode, _: &str) -> Result<(), WsError> {
        Ok(())
    }
    fn abort(&mut self) {}
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ u64::from(std::process::id()).rotate_left(32)
}

/// Read timeouts are clamped to at least this (a zero timeout means "block
/// forever" to the OS).
const MIN_WAIT: Duration = Duration::from_millis(1);
