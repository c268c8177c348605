//! The one action executor every adapter uses, and the mapping of inbound frames.

use core::borrow::Borrow;

use heartbeat_core::{
    Action, Config, DeathReason, HeartbeatMachine, Instant, PingOutcome, PongOutcome, ProtocolError,
};

use crate::transport::{Handover, Transport};

/// What one [`drive`] call did that the adapter or the application must know.
#[derive(Debug)]
#[must_use = "a death, a disconnect or a connect in the outcome must be acted on"]
pub struct Outcome<E> {
    /// The connection is over: tell the application now (exactly once per connection).
    pub dead: Option<DeathReason>,
    /// [`Transport::disconnect`] was called: drop the transport (or the attempt in
    /// progress) now. `state()` says what comes next (a reconnect at a known time,
    /// or the end) and why.
    pub disconnected: bool,
    /// Start a connection attempt with this number (0: the first), then report
    /// `handle_connected` or `handle_connect_failed`. The executor cannot connect by
    /// itself: connecting is the one action whose I/O belongs to the adapter.
    pub connect: Option<u32>,
    /// A ping is waiting in a buffer ([`Handover::Queued`]): report
    /// `handle_ping_sent` when it is flushed.
    pub ping_queued: bool,
    /// A close is waiting in a buffer: report `handle_close_sent` when it is flushed.
    pub close_queued: bool,
    /// A close was handed to the transport.
    pub close_sent: bool,
    /// The first write error, if a write failed. The machine has already been told
    /// the transport closed.
    pub error: Option<E>,
}

impl<E> Default for Outcome<E> {
    fn default() -> Self {
        Outcome {
            dead: None,
            disconnected: false,
            connect: None,
            ping_queued: false,
            close_queued: false,
            close_sent: false,
            error: None,
        }
    }
}

/// Where [`drive`] reads the time: a fixed [`Instant`], or a [`Clock`](crate::Clock)
/// read at the moment each write returns.
///
/// Pass the clock when you have one: a ping reported sent at a time read *before*
/// the write is backdated by any pause in between (a process stopped right there
/// would find its pong deadline already past on resume, a false death).
pub trait Now {
    /// The current time.
    fn now(&self) -> Instant;
}

impl Now for Instant {
    fn now(&self) -> Instant {
        *self
    }
}

impl Now for crate::Clock {
    fn now(&self) -> Instant {
        crate::Clock::now(self)
    }
}

impl<N: Now + ?Sized> Now for &N {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// Drains every queued action of `hb` and executes it on `transport`.
///
/// Call it after every `handle_*` call (and after [`feed`]). `now` gives the time:
/// pings and closes are reported sent at the time read right after their write
/// returned, and when a write fails the transport is reported closed (whose
/// consequences, a death and a disconnect, are drained in the same call). After a
/// failure nothing more is written.
pub fn drive<C, T, N>(hb: &mut HeartbeatMachine<C>, transport: &mut T, now: N) -> Outcome<T::Error>
where
    C: Borrow<Config>,
    T: Transport + ?Sized,
    N: Now,
{
    let mut out = Outcome::default();
    while let Some(action) = hb.poll_action() {
        let broken = out.error.is_some();
        let result = match action {
            Action::SendPing(p) if !broken => match transport.send_ping(p.as_slice()) {
                Ok(Handover::Taken) => {
                    hb.handle_ping_sent(now.now());
                    Ok(())
                }
                Ok(Handover::Queued) => {
                    out.ping_queued = true;
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Action::SendPong(p) if !broken => transport.send_pong(p.as_slice()),
            Action::SendClose { code, reason } if !broken => {
                match transport.send_close(code, reason) {
                    Ok(handover) => {
                        out.close_sent = true;
                        match handover {
                            Handover::Taken => hb.handle_close_sent(now.now()),
                            Handover::Queued => out.close_queued = true,
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Action::Disconnect => {
                transport.disconnect();
                out.disconnected = true;
                // A later Connect is for a new transport.
                out.ping_queued = false;
                out.close_queued = false;
                Ok(())
            }
            Action::Dead(reason) => {
                out.dead.get_or_insert(reason);
                Ok(())
            }
            Action::Connect { attempt } => {
                out.connect = Some(attempt);
                Ok(())
            }
            // The transport is already broken: writes are pointless.
            _ => Ok(()),
        };
        if let Err(e) = result {
            out.error = Some(e);
            out.ping_queued = false;
            out.close_queued = false;
            hb.handle_transport_closed(now.now());
        }
    }
    out
}

/// One thing that arrived from the peer, in the terms the machine understands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Incoming<'a> {
    /// The peer pinged with this payload (the machine queues the pong).
    Ping(&'a [u8]),
    /// The peer answered a ping with this payload.
    Pong(&'a [u8]),
    /// Application data (any message that is not a heartbeat).
    Data,
    /// The peer's close, with its code if it carried one.
    Close(Option<u16>),
    /// The stream ended (EOF, reset, read error) without a close.
    Ended,
    /// The peer sent something the protocol forbids (closed with 1002; the same
    /// as `Violation(ProtocolError::Malformed)`).
    Malformed,
    /// The peer broke the protocol in the way named: closed with the code RFC 6455
    /// gives it (1007 invalid UTF-8, 1009 too big, 1002 the rest).
    Violation(ProtocolError),
}

/// What [`feed`] learned from one input, for the adapter's observer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fed {
    /// A pong, and what it matched.
    Pong(PongOutcome),
    /// A ping, and what the machine made of it.
    Ping(PingOutcome),
    /// Anything else.
    Other,
}

/// Tells the machine what arrived, and returns what it made of it. Call [`drive`]
/// afterwards.
pub fn feed<C: Borrow<Config>>(
    hb: &mut HeartbeatMachine<C>,
    now: Instant,
    incoming: Incoming<'_>,
) -> Fed {
    match incoming {
        Incoming::Ping(p) => return Fed::Ping(hb.handle_ping(now, p)),
        Incoming::Pong(p) => return Fed::Pong(hb.handle_pong(now, p)),
        Incoming::Data => hb.handle_frame(now),
        Incoming::Close(code) => hb.handle_close(now, code),
        Incoming::Ended => hb.handle_transport_closed(now),
        Incoming::Malformed => hb.handle_protocol_error(now),
        Incoming::Violation(e) => hb.handle_violation(now, e),
    }
    Fed::Other
}
