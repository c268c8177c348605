//! Outbound frames of one connection, and the [`Transport`] the machine's actions
//! are executed on (through [`heartbeat_transport::drive`], like every adapter).

use core::pin::Pin;
use core::task::{ready, Context, Poll};
use std::collections::VecDeque;

use heartbeat_core::{CloseCode, Payload};
use heartbeat_transport::{Handover, Transport};
use tokio_tungstenite::tungstenite::{self, Bytes, Message};

use crate::codec::HeartbeatCodec;
use crate::socket::WsSocket;

/// What a completed flush carried.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Flushed {
    /// A ping: report `handle_ping_sent`.
    pub(crate) ping: bool,
    /// Our close (or tungstenite's reply to the peer's): report `handle_close_sent`.
    pub(crate) close: bool,
}

/// The share of a connection's outbound byte budget one queued message holds;
/// given back when the message is handed to tungstenite (or dropped).
pub(crate) type Budget = Option<tokio::sync::OwnedSemaphorePermit>;

/// Outbound messages not yet handed to tungstenite, control frames first.
#[derive(Default)]
pub(crate) struct Writer {
    queue: VecDeque<(Message, Kind, Budget)>,
    /// Bytes of the data messages in `queue`.
    bytes: usize,
    /// Frames were handed to tungstenite and not flushed yet.
    dirty: bool,
    in_flight: Flushed,
    pub(crate) failed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ping,
    Close,
    /// An application message, counted in `bytes`.
    Data,
    Other,
}

impl Writer {
    pub(crate) fn has_work(&self) -> bool {
        !self.failed && (self.dirty || !self.queue.is_empty())
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Bytes of the data messages queued.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn push_data(&mut self, msg: Message, budget: Budget) {
        if !self.failed {
            self.bytes += msg.len();
            self.queue.push_back((msg, Kind::Data, budget));
        }
    }

    /// Control frames jump ahead of data not yet handed to tungstenite.
    fn push_control(&mut self, msg: Message, kind: Kind) {
        if !self.failed {
            self.queue.push_front((msg, kind, None));
        }
    }

    /// Nothing may follow a close frame, so data still queued is dropped.
    fn push_close(&mut self, msg: Message) {
        if !self.failed {
            self.queue
                .retain(|(m, _, _)| !matches!(m, Message::Text(_) | Message::Binary(_)));
            self.bytes = 0;
            self.queue.push_back((msg, Kind::Close, None));
        }
    }

    /// tungstenite queued the reply to the peer's close itself: a flush sends it.
    fn flush_close_reply(&mut self) {
        if !self.failed {
            self.dirty = true;
            self.in_flight.close = true;
        }
    }

    pub(crate) fn fail(&mut self) {
        self.failed = true;
        self.queue.clear();
        self.bytes = 0;
        self.dirty = false;
    }

    /// Hands queued frames to tungstenite and flushes; says what the flush carried.
    pub(crate) fn poll_write<S>(
        &mut self,
        ws: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Flushed, tungstenite::Error>>
    where
        S: WsSocket,
    {
        while !self.queue.is_empty() {
            ready!(Pin::new(&mut *ws).poll_ready(cx))?;
            let Some((msg, kind, budget)) = self.queue.pop_front() else {
                break;
            };
            if kind == Kind::Data {
                self.bytes = self.bytes.saturating_sub(msg.len());
            }
            Pin::new(&mut *ws).start_send(msg)?;
            // The bytes now sit in tungstenite's write buffer, bounded by its cap.
            drop(budget);
            self.dirty = true;
            match kind {
                Kind::Ping => self.in_flight.ping = true,
                Kind::Close => self.in_flight.close = true,
                Kind::Data | Kind::Other => {}
            }
        }
        match ready!(Pin::new(&mut *ws).poll_flush(cx)) {
            Ok(()) => {}
            // The close handshake completed as the reply went out.
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)
                if self.in_flight.close => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
        self.dirty = false;
        Poll::Ready(Ok(core::mem::take(&mut self.in_flight)))
    }
}

/// The machine's view of the connection while [`heartbeat_transport::drive`]
/// executes its actions: every frame is queued ([`Handover::Queued`]) and reported
/// sent when the flush carrying it completes.
pub(crate) struct Outbound<'a> {
    pub(crate) writer: &'a mut Writer,
    pub(crate) codec: Option<&'a dyn HeartbeatCodec>,
    /// The peer's close arrived: tungstenite has queued the reply itself.
    pub(crate) peer_closed: bool,
    /// The code of the close this execution sent, for the observer (reported by
    /// the driver after the verdict, so events keep the machine's order).
    pub(crate) closed_with: Option<u16>,
    /// The sequence number of the ping this execution queued, for the observer.
    pub(crate) ping_sent: Option<u64>,
}

impl Transport for Outbound<'_> {
    type Error = core::convert::Infallible;

    fn send_ping(&mut self, payload: &[u8]) -> Result<Handover, Self::Error> {
        if let Ok(seq) = <[u8; 8]>::try_from(payload) {
            self.ping_sent = Some(u64::from_be_bytes(seq));
        }
        let msg = match (self.codec, Payload::from_slice(payload)) {
            (Some(c), Some(p)) => c.encode_ping(&p),
            _ => Message::Ping(Bytes::copy_from_slice(payload)),
        };
        self.writer.push_control(msg, Kind::Ping);
        Ok(Handover::Queued)
    }

    fn send_pong(&mut self, payload: &[u8]) -> Result<(), Self::Error> {
        // Without a codec tungstenite answered this ping itself when it read it (and
        // flushes that pong on its next write or read): a second pong would be wrong.
        if let (Some(c), Some(p)) = (self.codec, Payload::from_slice(payload)) {
            self.writer.push_control(c.encode_pong(&p), Kind::Other);
        }
        Ok(())
    }

    fn send_close(&mut self, code: CloseCode, reason: &str) -> Result<Handover, Self::Error> {
        self.closed_with = Some(code.get());
        if self.peer_closed {
            self.writer.flush_close_reply();
        } else {
            let frame = heartbeat_transport::tungstenite::close_frame(code, reason);
            self.writer.push_close(Message::Close(Some(frame)));
        }
        Ok(Handover::Queued)
    }

    fn disconnect(&mut self) {}
}
