//! The driver: one task per connection that executes the machine's contract.
//!
//! Each turn of the loop: execute every queued action, publish the status, read the
//! clock once and compare it with the machine's deadline *before* awaiting (a due
//! deadline first drains whatever input is already readable, then fires), then wait
//! for the first of — in this order — inbound frames, finished writes, the
//! application's commands, and the deadline. Nothing here decides anything: when to
//! ping, whether the peer is dead and when to reconnect all come from the machine.

use core::future::{poll_fn, Future};
use core::pin::Pin;
use core::task::{ready, Context, Poll};
use core::time::Duration;
use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::{FutureExt, Sink, SinkExt, Stream};
use heartbeat_core::{Action, CloseCode, DeathReason, HeartbeatMachine, Instant, Payload};
use heartbeat_transport::{incoming_from_tungstenite_error, Incoming};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Bytes, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info, trace, warn};

use crate::clock::Clock;
use crate::codec::{Heartbeat, HeartbeatCodec};
use crate::error::Error;
use crate::event::{emit, Event as Observed, Observer};
use crate::handle::Shared;
use crate::status::Status;

/// A command from the application to its driver.
#[derive(Debug)]
pub(crate) enum Cmd {
    Send(Message),
    Close(CloseCode),
}

/// The driver's ends of the channels to the application.
pub(crate) struct Link {
    pub(crate) cmd_rx: mpsc::Receiver<Cmd>,
    /// Dropped at detection time, so the receiver ends right after the queued data.
    pub(crate) data_tx: Option<mpsc::Sender<Message>>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) status_tx: watch::Sender<Status>,
    /// A second status watch to keep current (a reconnecting client's overall one).
    pub(crate) mirror: Option<Arc<watch::Sender<Status>>>,
    /// Run once, at detection time (the server registry's removal).
    pub(crate) on_dead: Option<Box<dyn FnOnce() + Send>>,
    /// The application's event observer.
    pub(crate) observer: Option<Observer>,
}

/// Runs one connection to its end. Returns the machine's `Reconnect` if it emitted one.
pub(crate) struct Driver<'m, S> {
    ws: WebSocketStream<S>,
    hb: &'m mut HeartbeatMachine,
    clock: Clock,
    codec: Option<Arc<dyn HeartbeatCodec>>,
    link: Link,
    writer: Writer,
    /// An inbound data message the application's full queue could not take yet.
    stalled: Option<Message>,
    room: Option<BoxFuture<Result<mpsc::OwnedPermit<Message>, mpsc::error::SendError<()>>>>,
    receiver_gone: Option<BoxFuture<()>>,
    senders_gone: bool,
    read_done: bool,
    /// The peer's close frame arrived: tungstenite has already queued the reply.
    peer_closed: bool,
    close_queued: bool,
    peer_close_text: String,
    transport_error: Option<Arc<tungstenite::Error>>,
    aborted: bool,
    reconnect: Option<(Duration, u32)>,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

enum Event {
    Inbound(Option<Result<Message, tungstenite::Error>>),
    Written(Result<bool, tungstenite::Error>),
    Room(Result<mpsc::OwnedPermit<Message>, mpsc::error::SendError<()>>),
    Cmd(Option<Cmd>),
    ReceiverGone,
    Timer,
}

impl<'m, S> Driver<'m, S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    pub(crate) fn new(
        ws: WebSocketStream<S>,
        hb: &'m mut HeartbeatMachine,
        clock: Clock,
        codec: Option<Arc<dyn HeartbeatCodec>>,
        link: Link,
    ) -> Self {
        Driver {
            ws,
            hb,
            clock,
            codec,
            link,
            writer: Writer::default(),
            stalled: None,
            room: None,
            receiver_gone: None,
            senders_gone: false,
            read_done: false,
            peer_closed: false,
            close_queued: false,
            peer_close_text: String::new(),
            transport_error: None,
            aborted: false,
            reconnect: None,
            sleep: Box::pin(tokio::time::sleep_until(clock.origin())),
            armed: None,
        }
    }

    /// Drives the connection until the machine is done with it (nothing armed, or
    /// an abort), then flushes what is left within the close timeout.
    pub(crate) async fn run(mut self) -> Option<(Duration, u32)> {
        loop {
            self.execute_actions();
            self.publish();
            if self.aborted {
                break;
            }
            if !self.hb.needs_transport() {
                break; // finished, or waiting to reconnect
            }
            // Open and closing always arm a deadline.
            let Some(deadline) = self.hb.poll_timeout() else {
                break;
            };
            let now = self.clock.now();
            if deadline.at <= now {
                // Input already in the socket counts before the deadline does.
                self.drain_ready_input();
                trace!(kind = ?deadline.kind, at = ?deadline.at, "deadline");
                self.hb.handle_timeout(self.clock.now());
                continue;
            }
            self.arm(deadline.at);
            let event = poll_fn(|cx| self.poll_event(cx)).await;
            self.handle(event);
        }
        self.finish().await;
        self.reconnect
    }

    fn execute_actions(&mut self) {
        while let Some(action) = self.hb.poll_action() {
            trace!(?action, "action");
            match action {
                Action::SendPing(p) => {
                    if let Some(seq) = seq_of(&p) {
                        emit(&self.link.observer, Observed::PingSent { seq });
                    }
                    let msg = match &self.codec {
                        Some(c) => c.encode_ping(&p),
                        None => Message::Ping(bytes(&p)),
                    };
                    self.writer.push_control(msg, true);
                }
                Action::SendPong(p) => match &self.codec {
                    Some(c) => self.writer.push_control(c.encode_pong(&p), false),
                    // tungstenite answered this ping itself when it read it (and
                    // flushes that pong on its next read), so sending the machine's
                    // pong too would answer twice.
                    None => trace!("pong already queued by tungstenite"),
                },
                Action::Dead(reason) => self.report_dead(reason),
                Action::SendClose { code, reason } => {
                    // After the peer's close tungstenite answers it by itself and
                    // refuses a second close frame.
                    if !self.peer_closed && !self.close_queued {
                        self.close_queued = true;
                        emit(&self.link.observer, Observed::Closed { code: code.get() });
                        self.writer.push_close(Message::Close(Some(CloseFrame {
                            code: WsCloseCode::from(code.get()),
                            reason: reason.into(),
                        })));
                    }
                }
                Action::Abort => self.aborted = true,
                Action::Reconnect { after, attempt } => self.reconnect = Some((after, attempt)),
            }
        }
    }

    fn report_dead(&mut self, reason: DeathReason) {
        emit(&self.link.observer, Observed::Dead { reason });
        let err = Error::from_death(reason, &self.peer_close_text, self.transport_error.as_ref());
        if reason.is_fault() {
            warn!(%reason, "connection dead");
        } else {
            info!(%reason, "connection closed");
        }
        // Set before the data sender drops: a receiver that sees the end finds it.
        let _ = self.link.shared.terminal.set(err);
        if let (Some(m), Some(tx)) = (self.stalled.take(), self.link.data_tx.as_ref()) {
            let _ = tx.try_send(m);
        }
        self.room = None;
        self.receiver_gone = None;
        self.link.data_tx = None;
        if let Some(hook) = self.link.on_dead.take() {
            hook();
        }
    }

    fn publish(&self) {
        let status = Status::of(self.hb, &self.clock);
        if let Some(m) = &self.link.mirror {
            set_if_changed(m, &status);
        }
        set_if_changed(&self.link.status_tx, &status);
    }

    fn arm(&mut self, at: Instant) {
        // Resetting a timer is not free and, done every turn, hid busy loops in
        // other drivers: only when the deadline moved.
        if self.armed != Some(at) {
            self.sleep.as_mut().reset(self.clock.to_tokio(at));
            self.armed = Some(at);
        }
    }

    fn drain_ready_input(&mut self) {
        for _ in 0..MAX_DRAIN {
            if self.read_done || self.stalled.is_some() {
                return;
            }
            match futures_util::StreamExt::next(&mut self.ws).now_or_never() {
                Some(item) => self.handle(Event::Inbound(item)),
                None => return,
            }
        }
    }

    /// The first ready event, in priority order: input, writes, the application's
    /// room for held input, commands, the receiver going away, the deadline.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        if !self.read_done && self.stalled.is_none() {
            if let Poll::Ready(item) = Pin::new(&mut self.ws).poll_next(cx) {
                return Poll::Ready(Event::Inbound(item));
            }
        }
        if self.writer.has_work() {
            if let Poll::Ready(r) = self.writer.poll_write(&mut self.ws, cx) {
                return Poll::Ready(Event::Written(r));
            }
        }
        if let Some(room) = &mut self.room {
            if let Poll::Ready(r) = room.as_mut().poll(cx) {
                self.room = None;
                return Poll::Ready(Event::Room(r));
            }
        }
        if self.accepts_commands() {
            if let Poll::Ready(cmd) = self.link.cmd_rx.poll_recv(cx) {
                return Poll::Ready(Event::Cmd(cmd));
            }
        }
        if let Some(gone) = &mut self.receiver_gone {
            if gone.as_mut().poll(cx).is_ready() {
                self.receiver_gone = None;
                return Poll::Ready(Event::ReceiverGone);
            }
        }
        if self.armed.is_some() && self.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Event::Timer);
        }
        Poll::Pending
    }

    fn accepts_commands(&self) -> bool {
        !self.senders_gone
            && self.hb.state() == heartbeat_core::State::Open
            && self.writer.queue.len() < WRITE_QUEUE
    }

    fn handle(&mut self, event: Event) {
        let now = self.clock.now();
        match event {
            Event::Inbound(Some(Ok(msg))) => self.on_message(now, msg),
            Event::Inbound(Some(Err(e))) => {
                self.read_done = true;
                let malformed = incoming_from_tungstenite_error(&e) == Incoming::Malformed;
                debug!(error = %e, "read ended");
                if !matches!(
                    e,
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed
                ) {
                    self.transport_error.get_or_insert_with(|| Arc::new(e));
                }
                if malformed {
                    self.hb.handle_protocol_error(now);
                }
                // Either way nothing more can be read from this transport.
                self.hb.handle_transport_closed(now);
            }
            Event::Inbound(None) => {
                self.read_done = true;
                self.hb.handle_transport_closed(now);
            }
            Event::Written(Ok(ping_flushed)) => {
                if ping_flushed {
                    self.hb.handle_ping_sent(now);
                }
            }
            Event::Written(Err(e)) => {
                debug!(error = %e, "write failed");
                self.writer.fail();
                self.transport_error.get_or_insert_with(|| Arc::new(e));
                self.hb.handle_transport_closed(now);
            }
            Event::Room(Ok(permit)) => {
                if let Some(m) = self.stalled.take() {
                    permit.send(m);
                }
            }
            Event::Room(Err(_)) => self.stalled = None,
            Event::Cmd(Some(Cmd::Send(msg))) => self.writer.push_data(msg),
            Event::Cmd(Some(Cmd::Close(code))) => self.hb.close(now, code),
            Event::Cmd(None) => {
                self.senders_gone = true;
                match &self.link.data_tx {
                    Some(tx) if !tx.is_closed() => {
                        let tx = tx.clone();
                        self.receiver_gone = Some(Box::pin(async move { tx.closed().await }));
                    }
                    _ => self.close_if_open(now),
                }
            }
            Event::ReceiverGone => self.close_if_open(now),
            Event::Timer => self.hb.handle_timeout(now),
        }
    }

    /// Every handle is gone: nobody can use the connection, so end it cleanly.
    fn close_if_open(&mut self, now: Instant) {
        if self.hb.state() == heartbeat_core::State::Open {
            self.hb.close(now, CloseCode::NORMAL);
        }
    }

    fn on_message(&mut self, now: Instant, msg: Message) {
        match msg {
            Message::Ping(p) if self.codec.is_none() => self.hb.handle_ping(now, &p),
            Message::Pong(p) if self.codec.is_none() => self.pong(now, &p),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => self.hb.handle_frame(now),
            Message::Close(frame) => {
                self.peer_closed = true;
                let code = frame.as_ref().map(|f| u16::from(f.code));
                // tungstenite replies with the same code (or none).
                emit(
                    &self.link.observer,
                    Observed::Closed {
                        code: code.unwrap_or(1000),
                    },
                );
                if let Some(f) = frame {
                    self.peer_close_text = f.reason.as_str().to_owned();
                }
                self.hb.handle_close(now, code);
            }
            data @ (Message::Text(_) | Message::Binary(_)) => {
                match self.codec.as_ref().and_then(|c| c.decode(&data)) {
                    Some(Heartbeat::Ping(p)) => self.hb.handle_ping(now, p.as_slice()),
                    Some(Heartbeat::Pong(p)) => self.pong(now, p.as_slice()),
                    None => {
                        self.hb.handle_frame(now);
                        self.deliver(data);
                    }
                }
            }
        }
    }

    /// Feeds a pong; tells the observer when it matched one of our pings.
    fn pong(&mut self, now: Instant, payload: &[u8]) {
        let matched = self.hb.stats().pongs_matched;
        let samples = self.hb.rtt().samples;
        self.hb.handle_pong(now, payload);
        let rtt = self.hb.rtt();
        if self.hb.stats().pongs_matched > matched && rtt.samples > samples {
            if let (Some(seq), Some(rtt)) =
                (payload.try_into().ok().map(u64::from_be_bytes), rtt.last)
            {
                emit(&self.link.observer, Observed::Pong { seq, rtt });
            }
        }
    }

    fn deliver(&mut self, msg: Message) {
        let Some(tx) = &self.link.data_tx else {
            return; // the verdict is in: data after it is not the application's
        };
        match tx.try_send(msg) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(msg)) => {
                // Stop reading until the application makes room (backpressure).
                debug!("application queue full; pausing reads");
                self.stalled = Some(msg);
                self.room = Some(Box::pin(tx.clone().reserve_owned()));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {} // receiver dropped: discard
        }
    }

    /// After the machine is done: flush the last frames (our close, or tungstenite's
    /// reply to the peer's) within the close timeout, unless the machine aborted.
    async fn finish(&mut self) {
        if !self.aborted && !self.writer.failed {
            let budget = self.hb.config().close_timeout();
            let ws = &mut self.ws;
            let writer = &mut self.writer;
            let flushed = tokio::time::timeout(budget, async {
                while writer.has_work() {
                    if poll_fn(|cx| writer.poll_write(ws, cx)).await.is_err() {
                        return;
                    }
                }
                let _ = ws.flush().await;
            })
            .await;
            if flushed.is_err() {
                debug!("final flush timed out");
            }
        }
        if self.link.shared.terminal.get().is_none() {
            // The machine always reports before finishing; this is belt and braces
            // for a connection ended by a state the machine ignored.
            let reason = self
                .hb
                .death_reason()
                .unwrap_or(DeathReason::TransportClosed);
            self.report_dead(reason);
        }
        self.publish();
    }
}

/// Outbound messages not yet handed to tungstenite, control frames first.
#[derive(Default)]
struct Writer {
    queue: VecDeque<(Message, bool)>,
    /// Frames were handed to tungstenite and not flushed yet.
    dirty: bool,
    /// One of those frames is a ping: report it once the flush completes.
    ping_in_flight: bool,
    failed: bool,
}

impl Writer {
    fn has_work(&self) -> bool {
        !self.failed && (self.dirty || !self.queue.is_empty())
    }

    fn push_data(&mut self, msg: Message) {
        if !self.failed {
            self.queue.push_back((msg, false));
        }
    }

    /// Control frames jump ahead of data not yet handed to tungstenite.
    fn push_control(&mut self, msg: Message, is_ping: bool) {
        if !self.failed {
            self.queue.push_front((msg, is_ping));
        }
    }

    /// Nothing may follow a close frame, so data still queued is dropped.
    fn push_close(&mut self, msg: Message) {
        if !self.failed {
            self.queue
                .retain(|(m, _)| !matches!(m, Message::Text(_) | Message::Binary(_)));
            self.queue.push_back((msg, false));
        }
    }

    fn fail(&mut self) {
        self.failed = true;
        self.queue.clear();
        self.dirty = false;
    }

    /// Hands queued frames to tungstenite and flushes. `Ok(true)`: the flush carried
    /// a ping, which the transport has now taken.
    fn poll_write<S>(
        &mut self,
        ws: &mut WebSocketStream<S>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<bool, tungstenite::Error>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        while !self.queue.is_empty() {
            ready!(Pin::new(&mut *ws).poll_ready(cx))?;
            let Some((msg, is_ping)) = self.queue.pop_front() else {
                break;
            };
            Pin::new(&mut *ws).start_send(msg)?;
            self.dirty = true;
            self.ping_in_flight |= is_ping;
        }
        ready!(Pin::new(&mut *ws).poll_flush(cx))?;
        self.dirty = false;
        Poll::Ready(Ok(core::mem::take(&mut self.ping_in_flight)))
    }
}

/// The sequence number our pings carry (8 big-endian bytes).
fn seq_of(p: &Payload) -> Option<u64> {
    p.as_slice().try_into().ok().map(u64::from_be_bytes)
}

fn bytes(p: &Payload) -> Bytes {
    Bytes::copy_from_slice(p.as_slice())
}

fn set_if_changed(tx: &watch::Sender<Status>, status: &Status) {
    tx.send_if_modified(|s| {
        if s == status {
            false
        } else {
            *s = status.clone();
            true
        }
    });
}

/// Frames read without waiting before a due deadline fires; bounds the turn.
const MAX_DRAIN: usize = 64;
/// Outbound messages held by the driver before the application must wait.
const WRITE_QUEUE: usize = 8;
