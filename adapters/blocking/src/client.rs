//! [`run_client`]: a reconnecting client, driven by the machine.

use heartbeat_core::{CloseCode, Config, DeathReason, HeartbeatMachine, State};
use heartbeat_transport::tungstenite::{classify, small_buffers, Failure};
use heartbeat_transport::{drive, seed, Clock, NoTransport};

use crate::connect;
use crate::{Error, KeepAlive, Next};

/// A reconnecting client: connects to `url` whenever the machine says so
/// ([`Action::Connect`](heartbeat_core::Action::Connect)), calls `session` with
/// each live connection, and sleeps until the machine's next deadline in between.
///
/// Every wait is the machine's: each attempt (TCP connect and upgrade) is bounded
/// by [`Config::connect_timeout`], attempts are spaced by [`Config::backoff`]
/// (with a 503's `Retry-After` honoured). After a connection dies by a fault (pong
/// timeout, protocol error, transport error) the next attempt comes after the
/// backoff delay alone: the dead connection's close is only read until then.
///
/// Returns the machine's reason once it is finished: `session` said
/// [`Next::Stop`] ([`DeathReason::LocalClose`] if the connection was open), the
/// attempts are exhausted, or the peer closed with a permanent code. Returns an
/// error at once, without connecting, for a URL that can never work
/// ([`Error::Url`], [`Error::TlsUnsupported`]), and after the first attempt that
/// failed in a way no retry can fix ([`Error::Connect`] with an HTTP 4xx other
/// than 408/429: see `heartbeat_transport::tungstenite::classify`).
///
/// Use a client-role `config`; `session` usually loops on
/// [`read`](KeepAlive::read) until it returns [`Error::Dead`].
pub fn run_client(
    url: &str,
    config: Config,
    mut session: impl FnMut(&mut KeepAlive) -> Next,
) -> Result<DeathReason, Error> {
    let target = connect::target(url)?;
    let clock = Clock::new();
    let mut hb = HeartbeatMachine::new(config, seed());
    let mut connect = None;
    loop {
        if connect.take().is_some() {
            match connect::connect(&target, &mut hb, &clock, small_buffers()) {
                Ok(ws) => {
                    let mut live = KeepAlive::from_parts(ws, hb, clock);
                    if let Next::Stop(code) = session(&mut live) {
                        return Ok(live.close(code));
                    }
                    (hb, connect) = live.finish();
                }
                // The machine was told (and its `Disconnect` drains below): the
                // failed attempt's socket is already dropped.
                Err(e) => {
                    if is_permanent(&e) {
                        // No retry can fix it (HTTP 401/403/404, a rejected
                        // certificate): finish instead of scheduling the next one.
                        hb.close(clock.now(), CloseCode::NORMAL);
                        let _ = drive(&mut hb, &mut NoTransport, clock.now());
                        return Err(e);
                    }
                    connect = drive(&mut hb, &mut NoTransport, clock.now()).connect;
                }
            }
            continue;
        }
        match hb.state() {
            State::Finished { reason } => return Ok(reason),
            State::Idle => hb.connect(clock.now()),
            _ => {
                if let Some(deadline) = hb.poll_timeout() {
                    std::thread::sleep(clock.until(deadline.at));
                }
                hb.handle_timeout(clock.now());
            }
        }
        connect = drive(&mut hb, &mut NoTransport, clock.now()).connect;
    }
}

/// Whether a failed attempt's error can never go away by retrying.
fn is_permanent(e: &Error) -> bool {
    matches!(e, Error::Connect(ws) if matches!(classify(ws), Failure::Permanent(_)))
}
