//! [`Core`]: one connection's machine run against its socket, as a poll function.
//!
//! Both ways of running a connection use it: the spawned driver task behind
//! [`KeepAlive`](crate::KeepAlive) (which adds channels to the application's
//! handles) and [`KeepAliveStream`](crate::KeepAliveStream), which the application
//! polls in its own task. Each turn: execute the queued actions through
//! [`heartbeat_transport::drive`] (the one executor every adapter shares), read the
//! clock once and compare it with the machine's deadline, then take in — in this
//! order — inbound frames, finished writes, and the deadline. A due pong deadline is
//! judged only after the evidence the process already holds: the runtime polls its
//! reactor once (a pause leaves readiness stale), finished writes and readable
//! frames are taken in, then the machine decides. Nothing here decides anything
//! else.

use core::borrow::BorrowMut;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::Arc;

use heartbeat_core::{
    CloseCode, Deadline, DeathReason, HeartbeatMachine, Instant, PongOutcome, State, TimerKind,
};
use heartbeat_transport::tungstenite::incoming_from_error;
use heartbeat_transport::{drive, Incoming, LagMeter};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::{debug, info, trace, warn};

use crate::clock::Clock;
use crate::codec::{Heartbeat, HeartbeatCodec};
use crate::error::Error;
use crate::event::{emit, Event, Observer};
use crate::socket::WsSocket;
use crate::writer::{Budget, Flushed, Outbound, Writer};

/// How long a measured lag is remembered (one to two windows).
pub(crate) const LAG_WINDOW: Duration = Duration::from_millis(500);

/// What a turn produced for the owner of the connection.
pub(crate) enum Turn {
    /// An application message.
    Data(Message),
    /// The machine's verdict, at detection time (the close may still run).
    Dead(Error),
    /// The machine let go of the transport: the connection is over.
    Disconnected,
}

/// One connection: its socket, its machine (owned, or borrowed from a reconnecting
/// client's supervisor) and the driver state between them.
pub(crate) struct Core<S, M> {
    /// The WebSocket: tokio-tungstenite's, or any [`WsSocket`].
    ws: S,
    hb: M,
    clock: Clock,
    codec: Option<Arc<dyn HeartbeatCodec>>,
    observer: Option<Observer>,
    /// How late this group of connections' timers run, and their systemic delay:
    /// shared by every connection made with the same `Options`, so a slowdown of
    /// the process is seen by each machine before it judges a pong.
    lag: Arc<LagMeter>,
    writer: Writer,
    read_done: bool,
    /// The peer's close frame arrived: tungstenite has already queued the reply.
    peer_closed: bool,
    close_reported: bool,
    peer_close_text: String,
    transport_error: Option<Arc<tungstenite::Error>>,
    /// A verdict not yet handed to the owner.
    dead: Option<Error>,
    /// The machine let go of this transport.
    disconnected: bool,
    /// The machine asked for the next attempt (client), with its number.
    pub(crate) connect: Option<u32>,
    /// The next attempt this core announced to the observer (at the verdict).
    pub(crate) announced: Option<(Instant, u32)>,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    /// The due pong deadline whose evidence has been taken in.
    evidence_for: Option<Deadline>,
    /// A yield to the runtime in progress, so its reactor refreshes readiness.
    yielding: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl<S, M> Core<S, M>
where
    S: WsSocket,
    M: BorrowMut<HeartbeatMachine>,
{
    /// The open connection `ws`; `hb` must have been told it is connected.
    pub(crate) fn new(
        ws: S,
        hb: M,
        clock: Clock,
        codec: Option<Arc<dyn HeartbeatCodec>>,
        observer: Option<Observer>,
        lag: Arc<LagMeter>,
    ) -> Self {
        Core {
            ws,
            hb,
            clock,
            codec,
            observer,
            lag,
            writer: Writer::default(),
            read_done: false,
            peer_closed: false,
            close_reported: false,
            peer_close_text: String::new(),
            transport_error: None,
            dead: None,
            disconnected: false,
            connect: None,
            announced: None,
            sleep: Box::pin(tokio::time::sleep_until(clock.origin())),
            armed: None,
            evidence_for: None,
            yielding: None,
        }
    }

    /// The machine.
    pub(crate) fn hb(&self) -> &HeartbeatMachine {
        self.hb.borrow()
    }

    /// The clock the machine is fed from.
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Outbound messages the writer holds.
    pub(crate) fn queued(&self) -> usize {
        self.writer.len()
    }

    /// Queues an application message (control frames jump ahead of it), with the
    /// byte budget it holds until it is handed to the WebSocket layer.
    pub(crate) fn send(&mut self, msg: Message, budget: Budget) {
        self.writer.push_data(msg, budget);
    }

    /// Bytes of application messages the writer holds.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.writer.bytes()
    }

    /// The application closes with `code`; the turns that follow run the handshake.
    pub(crate) fn close(&mut self, code: CloseCode) {
        let now = self.clock.now();
        self.hb.borrow_mut().close(now, code);
    }

    /// Runs the connection until it has something for its owner, or must wait.
    /// `read_paused`: the owner cannot take data now (backpressure), so the socket
    /// is not read.
    pub(crate) fn poll_turn(&mut self, cx: &mut Context<'_>, read_paused: bool) -> Poll<Turn> {
        loop {
            let now = self.clock.now();
            self.execute(now);
            if let Some(err) = self.dead.take() {
                return Poll::Ready(Turn::Dead(err));
            }
            if self.disconnected {
                // Best effort, never waiting: a close queued in this same turn (a
                // fault death with a zero backoff) still gets its one chance.
                if self.writer.has_work() {
                    let _ = self.writer.poll_write(&mut self.ws, cx);
                }
                return Poll::Ready(Turn::Disconnected);
            }
            let Some(deadline) = self.hb().poll_timeout() else {
                // Nothing armed while a transport is held cannot happen; let go.
                return Poll::Ready(Turn::Disconnected);
            };
            if deadline.at <= now {
                if deadline.kind == TimerKind::PongTimeout && self.evidence_for != Some(deadline) {
                    // Evidence before the verdict: let the reactor run once, then take
                    // in what the socket already holds.
                    let yielding = self
                        .yielding
                        .get_or_insert_with(|| Box::pin(tokio::task::yield_now()));
                    if yielding.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.yielding = None;
                    // Marked before the data goes out: a peer that streams data must
                    // not postpone the verdict by one more yield per message.
                    self.evidence_for = Some(deadline);
                    if let Some(msg) = self.take_evidence(cx, read_paused) {
                        return Poll::Ready(Turn::Data(msg));
                    }
                    continue;
                }
                // Other connections' timers tell how late this process runs; this
                // deadline's own lateness is the stall allowance's business.
                let lag = self.lag.current(std::time::Instant::now());
                self.hb.borrow_mut().handle_local_lag(now, lag);
                trace!(kind = ?deadline.kind, at = ?deadline.at, ?lag, "deadline");
                self.hb.borrow_mut().handle_timeout(now);
                self.lag
                    .record(self.clock.to_std(deadline.at), std::time::Instant::now());
                self.evidence_for = None;
                continue;
            }
            if !read_paused && !self.read_done {
                if let Poll::Ready(item) = Pin::new(&mut self.ws).poll_next(cx) {
                    if let Some(msg) = self.inbound(now, item) {
                        return Poll::Ready(Turn::Data(msg));
                    }
                    continue;
                }
            }
            if self.writer.has_work() {
                if let Poll::Ready(r) = self.writer.poll_write(&mut self.ws, cx) {
                    self.written(self.clock.now(), r);
                    continue;
                }
            }
            self.arm(deadline.at);
            if self.sleep.as_mut().poll(cx).is_ready() {
                continue; // the loop's top judges the deadline
            }
            return Poll::Pending;
        }
    }

    /// Flushes queued frames without reading; for a sink that waits for room.
    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.writer.has_work() {
            match self.writer.poll_write(&mut self.ws, cx) {
                Poll::Ready(r) => self.written(self.clock.now(), r),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }

    /// Drains the machine's actions through the shared executor. Observer events
    /// keep the machine's order: the verdict (and the next attempt's delay), then
    /// the close.
    fn execute(&mut self, now: Instant) {
        let mut transport = Outbound {
            writer: &mut self.writer,
            codec: self.codec.as_deref(),
            peer_closed: self.peer_closed,
            closed_with: None,
            ping_sent: None,
        };
        let out = drive(self.hb.borrow_mut(), &mut transport, now);
        if let Some(seq) = transport.ping_sent {
            emit(&self.observer, Event::PingSent { seq });
        }
        let closed_with = transport.closed_with;
        if let Some(reason) = out.dead {
            self.verdict(reason);
        }
        if let Some(code) = closed_with {
            // One close event per close: the peer's close was reported on arrival.
            if !core::mem::replace(&mut self.close_reported, true) {
                emit(&self.observer, Event::Closed { code });
            }
        }
        if out.disconnected {
            self.disconnected = true;
        }
        if let Some(attempt) = out.connect {
            self.connect = Some(attempt);
        }
    }

    /// The machine's verdict: tell the observer and the log now; the owner gets the
    /// error at the end of this turn.
    fn verdict(&mut self, reason: DeathReason) {
        emit(
            &self.observer,
            Event::Dead {
                reason,
                local_lag: self.hb().local_lag(),
            },
        );
        if let State::Reconnecting { at, attempt, .. } = self.hb().state() {
            let after = at - self.hb().now();
            emit(&self.observer, Event::Reconnecting { after, attempt });
            self.announced = Some((at, attempt));
        }
        if reason.is_fault() {
            warn!(%reason, "connection dead");
        } else {
            info!(%reason, "connection closed");
        }
        self.dead = Some(Error::from_death(
            reason,
            &self.peer_close_text,
            self.transport_error.as_ref(),
        ));
    }

    /// Finished writes, then every frame already readable (bounded). Returns an
    /// application message if one arrived (the owner takes it; the evidence is
    /// taken again on the next turn).
    fn take_evidence(&mut self, cx: &mut Context<'_>, read_paused: bool) -> Option<Message> {
        let now = self.clock.now();
        if self.writer.has_work() {
            if let Poll::Ready(r) = self.writer.poll_write(&mut self.ws, cx) {
                self.written(self.clock.now(), r);
            }
        }
        for _ in 0..MAX_DRAIN {
            if read_paused || self.read_done {
                break;
            }
            match Pin::new(&mut self.ws).poll_next(cx) {
                Poll::Ready(item) => {
                    if let Some(msg) = self.inbound(now, item) {
                        return Some(msg);
                    }
                }
                Poll::Pending => break,
            }
        }
        None
    }

    fn arm(&mut self, at: Instant) {
        // Resetting a timer is not free and, done every turn, hid busy loops in
        // other drivers: only when the deadline moved.
        if self.armed != Some(at) {
            self.sleep.as_mut().reset(self.clock.to_tokio(at));
            self.armed = Some(at);
        }
    }

    /// A frame, the end of the stream, or a read error; returns application data.
    fn inbound(
        &mut self,
        now: Instant,
        item: Option<Result<Message, tungstenite::Error>>,
    ) -> Option<Message> {
        match item {
            Some(Ok(msg)) => return self.on_message(now, msg),
            Some(Err(e)) => {
                self.read_done = true;
                let violation = match incoming_from_error(&e) {
                    Incoming::Violation(v) => Some(v),
                    _ => None,
                };
                debug!(error = %e, "read ended");
                if !matches!(
                    e,
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed
                ) {
                    self.transport_error.get_or_insert_with(|| Arc::new(e));
                }
                match violation {
                    // 1007, 1009 or 1002, as RFC 6455 names the violation. Nothing
                    // more is read, but the socket is kept for the close window: let
                    // go at once, with the peer's bytes unread, and the kernel resets
                    // the connection, dropping our close frame before it leaves.
                    Some(v) => self.hb.borrow_mut().handle_violation(now, v),
                    None => self.hb.borrow_mut().handle_transport_closed(now),
                }
            }
            None => {
                self.read_done = true;
                self.hb.borrow_mut().handle_transport_closed(now);
            }
        }
        None
    }

    /// A flush completed (or failed). `now` must be read after the write returned:
    /// a ping reported sent at a time read before it is backdated by any pause in
    /// between, and a process stopped right there would find its pong deadline past
    /// on resume.
    fn written(&mut self, now: Instant, r: Result<Flushed, tungstenite::Error>) {
        match r {
            Ok(flushed) => {
                if flushed.ping {
                    self.hb.borrow_mut().handle_ping_sent(now);
                }
                if flushed.close {
                    self.hb.borrow_mut().handle_close_sent(now);
                }
            }
            Err(e) => {
                debug!(error = %e, "write failed");
                self.writer.fail();
                self.transport_error.get_or_insert_with(|| Arc::new(e));
                self.hb.borrow_mut().handle_transport_closed(now);
            }
        }
    }

    fn on_message(&mut self, now: Instant, msg: Message) -> Option<Message> {
        let hb = self.hb.borrow_mut();
        match msg {
            Message::Ping(p) if self.codec.is_none() => {
                let _ = hb.handle_ping(now, &p);
            }
            Message::Pong(p) if self.codec.is_none() => self.pong(now, &p),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => hb.handle_frame(now),
            Message::Close(frame) => {
                self.peer_closed = true;
                let code = frame.as_ref().map(|f| u16::from(f.code));
                if let Some(f) = frame {
                    self.peer_close_text = f.reason.as_str().to_owned();
                }
                hb.handle_close(now, code);
                if !core::mem::replace(&mut self.close_reported, true) {
                    emit(
                        &self.observer,
                        Event::Closed {
                            code: code.unwrap_or(1000),
                        },
                    );
                }
            }
            data @ (Message::Text(_) | Message::Binary(_)) => {
                match self.codec.as_ref().and_then(|c| c.decode(&data)) {
                    Some(Heartbeat::Ping(p)) => {
                        let _ = hb.handle_ping(now, p.as_slice());
                    }
                    Some(Heartbeat::Pong(p)) => self.pong(now, p.as_slice()),
                    None => {
                        hb.handle_frame(now);
                        // Data after the verdict is not the application's.
                        return matches!(hb.state(), State::Open).then_some(data);
                    }
                }
            }
        }
        None
    }

    /// Feeds a pong; tells the observer when it answered our latest ping.
    fn pong(&mut self, now: Instant, payload: &[u8]) {
        if let PongOutcome::Matched {
            seq,
            rtt: Some(rtt),
        } = self.hb.borrow_mut().handle_pong(now, payload)
        {
            // Every connection's round trips feed the process's systemic delay.
            self.lag.record_rtt(std::time::Instant::now(), rtt);
            emit(&self.observer, Event::Pong { seq, rtt });
        }
    }
}

/// Frames read without waiting before a due deadline is judged; bounds the turn.
const MAX_DRAIN: usize = 64;
