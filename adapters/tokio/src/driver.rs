//! The driver: the loop that runs one connection's machine against its socket.
//!
//! Each turn: execute the queued actions through [`heartbeat_transport::drive`]
//! (the one executor every adapter shares), read the clock once and compare it with
//! the machine's deadline *before* awaiting, then wait for the first of — in this
//! order — inbound frames, finished writes, the application's commands, and the
//! deadline. A due pong deadline is judged only after the evidence the process
//! already holds: the runtime polls its reactor once (a pause leaves readiness
//! stale), readable frames and finished writes are taken in, then the machine
//! decides. Nothing here decides anything else: when to ping, whether the peer is
//! dead, how long a close may take and when to reconnect all come from the machine.

use core::future::{poll_fn, Future};
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::Arc;

use futures_util::{FutureExt, Stream};
use heartbeat_core::{
    CloseCode, DeathReason, Health, HeartbeatMachine, Instant, PongOutcome, State, TimerKind,
};
use heartbeat_transport::tungstenite::incoming_from_error;
use heartbeat_transport::{drive, Incoming, LagMeter};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info, trace, warn};

use crate::clock::Clock;
use crate::codec::{Heartbeat, HeartbeatCodec};
use crate::error::Error;
use crate::event::{emit, Event as Observed};
use crate::protocol::{Cmd, Link};
use crate::status::Status;
use crate::writer::{codec_ref, Flushed, Outbound, Writer};

/// How late this process's timers run, shared by every connection of the process:
/// a runtime-wide slowdown is seen by each machine before it judges a pong.
pub(crate) static LOCAL_LAG: LagMeter = LagMeter::new(Duration::from_millis(500));

/// Runs one connection until the machine lets go of it ([`heartbeat_core::Action::Disconnect`]).
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
    close_reported: bool,
    peer_close_text: String,
    transport_error: Option<Arc<tungstenite::Error>>,
    /// The machine let go of this transport.
    disconnected: bool,
    /// The machine asked for the next attempt (client), with its number.
    connect: Option<u32>,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    /// What the status watch last showed that a user can observe, and when.
    published: Option<((State, Health, u64), Instant)>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

enum Event {
    Inbound(Option<Result<Message, tungstenite::Error>>),
    Written(Result<Flushed, tungstenite::Error>),
    Room(Result<mpsc::OwnedPermit<Message>, mpsc::error::SendError<()>>),
    Cmd(Option<Cmd>),
    ReceiverGone,
    Timer,
}

impl<'m, S> Driver<'m, S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// A driver for the open connection `ws`; `hb` must have been told it is
    /// connected.
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
            close_reported: false,
            peer_close_text: String::new(),
            transport_error: None,
            disconnected: false,
            connect: None,
            sleep: Box::pin(tokio::time::sleep_until(clock.origin())),
            armed: None,
            published: None,
        }
    }

    /// Drives the connection until the machine disconnects it. Returns the next
    /// attempt's number if the machine asked for one in the same breath.
    pub(crate) async fn run(mut self) -> Option<u32> {
        let mut now = self.clock.now();
        loop {
            self.execute(now);
            if self.disconnected {
                break;
            }
            let Some(deadline) = self.hb.poll_timeout() else {
                break; // nothing armed: cannot happen while a transport is held
            };
            now = self.clock.now();
            if deadline.at <= now {
                if deadline.kind == TimerKind::PongTimeout {
                    self.take_evidence().await;
                    now = self.clock.now();
                    if self.hb.poll_timeout() != Some(deadline) {
                        continue; // the evidence changed the picture: look again
                    }
                }
                // Other connections' timers tell how late this process runs; this
                // deadline's own lateness is the stall allowance's business.
                let lag = LOCAL_LAG.current(std::time::Instant::now());
                self.hb.handle_local_lag(now, lag);
                trace!(kind = ?deadline.kind, at = ?deadline.at, ?lag, "deadline");
                self.hb.handle_timeout(now);
                LOCAL_LAG.record(self.clock.to_std(deadline.at), std::time::Instant::now());
                continue;
            }
            self.arm(deadline.at);
            let event = poll_fn(|cx| self.poll_event(cx)).await;
            now = self.clock.now();
            self.handle(now, event);
        }
        self.publish(true);
        self.connect
    }

    /// Drains the machine's actions through the shared executor.
    fn execute(&mut self, now: Instant) {
        let mut transport = Outbound {
            writer: &mut self.writer,
            codec: codec_ref(&self.codec),
            observer: &self.link.observer,
            peer_closed: self.peer_closed,
            closed_with: None,
        };
        let out = drive(self.hb, &mut transport, now);
        let closed_with = transport.closed_with;
        if let Some(reason) = out.dead {
            self.report_dead(reason);
        }
        if let Some(code) = closed_with {
            // One close event per close: the peer's close was reported on arrival.
            if !core::mem::replace(&mut self.close_reported, true) {
                emit(&self.link.observer, Observed::Closed { code });
            }
        }
        if out.disconnected {
            self.disconnected = true;
        }
        if let Some(attempt) = out.connect {
            self.connect = Some(attempt);
        }
        self.publish(false);
    }

    /// Evidence before verdicts: let the runtime poll its reactor once (after a
    /// pause, readiness is stale until it does), then take in finished writes and
    /// every frame already readable.
    async fn take_evidence(&mut self) {
        tokio::task::yield_now().await;
        let now = self.clock.now();
        if self.writer.has_work() {
            let (writer, ws) = (&mut self.writer, &mut self.ws);
            if let Some(r) = poll_fn(|cx| writer.poll_write(ws, cx)).now_or_never() {
                self.handle(now, Event::Written(r));
            }
        }
        for _ in 0..MAX_DRAIN {
            if self.read_done || self.stalled.is_some() {
                return;
            }
            match futures_util::StreamExt::next(&mut self.ws).now_or_never() {
                Some(item) => self.handle(now, Event::Inbound(item)),
                None => return,
            }
        }
    }

    fn report_dead(&mut self, reason: DeathReason) {
        emit(
            &self.link.observer,
            Observed::Dead {
                reason,
                local_lag: self.hb.local_lag(),
            },
        );
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
        if let State::Reconnecting { at, attempt, .. } = self.hb.state() {
            let after = at - self.hb.now();
            emit(
                &self.link.observer,
                Observed::Reconnecting { after, attempt },
            );
        }
    }

    /// Publishes the status when something a user acts on changed (the state, the
    /// health, a new RTT sample), at the end, and otherwise at most every
    /// [`STATUS_REFRESH`] so counters stay fresh without a publication per frame.
    fn publish(&mut self, force: bool) {
        let key = (self.hb.state(), self.hb.health(), self.hb.rtt().samples);
        let now = self.hb.now();
        if let Some((last, at)) = self.published {
            if !force && last == key && now - at < STATUS_REFRESH {
                return;
            }
        }
        self.published = Some((key, now));
        let status = Status::of(self.hb, &self.clock);
        if let Some(m) = &self.link.mirror {
            m.send_replace(status.clone());
        }
        self.link.status_tx.send_replace(status);
    }

    fn arm(&mut self, at: Instant) {
        // Resetting a timer is not free and, done every turn, hid busy loops in
        // other drivers: only when the deadline moved.
        if self.armed != Some(at) {
            self.sleep.as_mut().reset(self.clock.to_tokio(at));
            self.armed = Some(at);
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
        !self.senders_gone && self.hb.state() == State::Open && self.writer.len() < WRITE_QUEUE
    }

    fn handle(&mut self, now: Instant, event: Event) {
        match event {
            Event::Inbound(Some(Ok(msg))) => self.on_message(now, msg),
            Event::Inbound(Some(Err(e))) => {
                self.read_done = true;
                let malformed = incoming_from_error(&e) == Incoming::Malformed;
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
            Event::Written(Ok(flushed)) => {
                if flushed.ping {
                    self.hb.handle_ping_sent(now);
                }
                if flushed.close {
                    self.hb.handle_close_sent(now);
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
            // The loop's top judges the deadline, after the evidence.
            Event::Timer => {}
        }
    }

    /// Every handle is gone: nobody can use the connection, so end it cleanly.
    fn close_if_open(&mut self, now: Instant) {
        if self.hb.state() == State::Open {
            self.hb.close(now, CloseCode::NORMAL);
        }
    }

    fn on_message(&mut self, now: Instant, msg: Message) {
        match msg {
            Message::Ping(p) if self.codec.is_none() => {
                let _ = self.hb.handle_ping(now, &p);
            }
            Message::Pong(p) if self.codec.is_none() => self.pong(now, &p),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => self.hb.handle_frame(now),
            Message::Close(frame) => {
                self.peer_closed = true;
                let code = frame.as_ref().map(|f| u16::from(f.code));
                if !core::mem::replace(&mut self.close_reported, true) {
                    emit(
                        &self.link.observer,
                        Observed::Closed {
                            code: code.unwrap_or(1000),
                        },
                    );
                }
                if let Some(f) = frame {
                    self.peer_close_text = f.reason.as_str().to_owned();
                }
                self.hb.handle_close(now, code);
            }
            data @ (Message::Text(_) | Message::Binary(_)) => {
                match self.codec.as_ref().and_then(|c| c.decode(&data)) {
                    Some(Heartbeat::Ping(p)) => {
                        let _ = self.hb.handle_ping(now, p.as_slice());
                    }
                    Some(Heartbeat::Pong(p)) => self.pong(now, p.as_slice()),
                    None => {
                        self.hb.handle_frame(now);
                        self.deliver(data);
                    }
                }
            }
        }
    }

    /// Feeds a pong; tells the observer when it answered our latest ping.
    fn pong(&mut self, now: Instant, payload: &[u8]) {
        if let PongOutcome::Matched {
            seq,
            rtt: Some(rtt),
        } = self.hb.handle_pong(now, payload)
        {
            emit(&self.link.observer, Observed::Pong { seq, rtt });
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
}

/// How stale the published counters may get while nothing else changes.
const STATUS_REFRESH: Duration = Duration::from_millis(100);
/// Frames read without waiting before a due deadline fires; bounds the turn.
const MAX_DRAIN: usize = 64;
/// Outbound messages held by the driver before the application must wait.
const WRITE_QUEUE: usize = 8;
