//! One connection attempt (TCP connect and WebSocket upgrade, client or server
//! side), bounded by the machine's connect deadline.

use std::borrow::Borrow;
use std::io;
use std::net::TcpStream;
use std::time::Duration;

use heartbeat_core::{Config, HeartbeatMachine, State};
use heartbeat_transport::tungstenite::{retry_after, Target};
use heartbeat_transport::Clock;
use tungstenite::handshake::{HandshakeError, HandshakeRole};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::WebSocket;

use crate::wait::socket_timeout;
use crate::Error;

/// Parses and checks `url` once, before any attempt: a bad URL is an error at
/// once, never a connection failure retried forever.
pub(crate) fn target(url: &str) -> Result<Target, Error> {
    let target = Target::parse(url)?;
    if target.tls {
        return Err(Error::TlsUnsupported);
    }
    target.request()?;
    Ok(target)
}

/// Runs the client attempt the machine asked for ([`Action::Connect`], already
/// drained) and reports how it went: `handle_connected`, or
/// (`Retry-After` of a refused upgrade, then) `handle_connect_failed`, or, once the
/// connect deadline passed, `handle_timeout`, whose verdict the error then carries.
/// The caller drains the machine's actions afterwards (a `Disconnect` on failure).
///
/// [`Action::Connect`]: heartbeat_core::Action::Connect
pub(crate) fn connect<C: Borrow<Config>>(
    target: &Target,
    hb: &mut HeartbeatMachine<C>,
    clock: &Clock,
    ws_config: WebSocketConfig,
) -> Result<WebSocket<TcpStream>, Error> {
    let until = deadline(hb, clock);
    match client(target, until, ws_config) {
        Ok(ws) => {
            hb.handle_connected(clock.now());
            Ok(ws)
        }
        Err(e) => Err(failed(hb, clock, e)),
    }
}

/// Runs the server side of an attempt (the upgrade of an accepted `stream`) that
/// the machine started, reporting the result as [`connect`] does.
pub(crate) fn accept<C: Borrow<Config>>(
    stream: TcpStream,
    hb: &mut HeartbeatMachine<C>,
    clock: &Clock,
    ws_config: WebSocketConfig,
) -> Result<WebSocket<TcpStream>, Error> {
    let until = deadline(hb, clock);
    let upgrade = || {
        stream.set_nodelay(true)?;
        bound(&stream, until)?;
        handshake(
            tungstenite::accept_with_config(stream, Some(ws_config)),
            until,
        )
    };
    match upgrade() {
        Ok(ws) => {
            hb.handle_connected(clock.now());
            Ok(ws)
        }
        Err(e) => Err(failed(hb, clock, e)),
    }
}

/// The machine's deadline for the attempt in progress, on the std clock.
fn deadline<C: Borrow<Config>>(hb: &HeartbeatMachine<C>, clock: &Clock) -> std::time::Instant {
    match hb.poll_timeout() {
        Some(d) => clock.to_std(d.at),
        // Nothing armed (not connecting): no bound of ours to apply.
        None => clock.to_std(hb.now()) + hb.config().connect_timeout(),
    }
}

fn client(
    target: &Target,
    until: std::time::Instant,
    ws_config: WebSocketConfig,
) -> Result<WebSocket<TcpStream>, Error> {
    let request = target.request()?;
    let addr = target.resolve()?;
    let stream = TcpStream::connect_timeout(&addr, left(until)?)?;
    stream.set_nodelay(true)?;
    bound(&stream, until)?;
    let (ws, _response) = handshake(
        tungstenite::client::client_with_config(request, stream, Some(ws_config)),
        until,
    )?;
    Ok(ws)
}

/// Drives a handshake to its end. Every socket read and write waits at most until
/// `until`; a wait that timed out resumes the handshake while time is left.
fn handshake<R>(
    mut result: Result<R::FinalResult, HandshakeError<R>>,
    until: std::time::Instant,
) -> Result<R::FinalResult, Error>
where
    R: HandshakeRole<InternalStream = TcpStream>,
{
    loop {
        match result {
            Ok(done) => return Ok(done),
            Err(HandshakeError::Failure(e)) => return Err(Error::Connect(e)),
            Err(HandshakeError::Interrupted(mid)) => {
                bound(mid.get_ref().get_ref(), until)?;
                result = mid.handshake();
            }
        }
    }
}

/// Sets the socket's read and write timeouts to the time left until `until`.
fn bound(stream: &TcpStream, until: std::time::Instant) -> Result<(), Error> {
    let left = socket_timeout(left(until)?);
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))?;
    Ok(())
}

/// The time left until `until`, or a timeout error once it passed (a zero socket
/// timeout would mean "forever").
fn left(until: std::time::Instant) -> Result<Duration, Error> {
    let left = until.saturating_duration_since(std::time::Instant::now());
    if left.is_zero() {
        return Err(Error::Io(io::ErrorKind::TimedOut.into()));
    }
    Ok(left)
}

/// Tells the machine the attempt failed; returns the error to report: the
/// machine's own verdict once its deadline passed, else what went wrong.
fn failed<C: Borrow<Config>>(hb: &mut HeartbeatMachine<C>, clock: &Clock, e: Error) -> Error {
    let now = clock.now();
    // Harmless before the deadline; at or after it, the machine abandons the attempt.
    hb.handle_timeout(now);
    if let State::Connecting { .. } = hb.state() {
        if let Error::Connect(ws) = &e {
            if let Some(delay) = retry_after(ws) {
                hb.handle_retry_after(now, delay);
            }
        }
        hb.handle_connect_failed(now);
        return e;
    }
    match hb.state().reason() {
        Some(reason) => Error::Dead(reason),
        None => e,
    }
}
