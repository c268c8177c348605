//! [`KeepAliveStream`]: the heartbeat inside the application's own task — no driver
//! task, no channels, no status publication.

use core::pin::Pin;
use core::task::{Context, Poll};
use std::collections::VecDeque;

use futures_util::{Sink, Stream};
use heartbeat_core::{CloseCode, HeartbeatMachine};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::clock::Clock;
use crate::core::{Core, Turn};
use crate::driver::WRITE_QUEUE;
use crate::error::Error;
use crate::mailbox::Registration;
use crate::options::Options;
use crate::status::Status;

/// A WebSocket whose heartbeat runs while the application polls it: a [`Stream`]
/// of data messages and a [`Sink`] for sending, in one value, with no task,
/// channel or lock of its own.
///
/// This is the lean way to run many connections: one task per connection, the
/// application's, as with a hand-written tokio-tungstenite loop, but with this
/// crate's machine deciding when to ping, when the peer is dead and what to close
/// with. Heartbeats advance only while the stream is polled, so poll it
/// continuously (a `while let Some(msg) = stream.next().await` loop, or a
/// `select!` branch), as a `WebSocketStream` must be polled to see pongs anyway.
///
/// The stream yields data messages, then `Err` with the verdict (at detection
/// time), then keeps running the close handshake and ends (`None`) when the
/// machine lets go of the socket. [`status`](Self::status) is computed when asked.
/// A server registers its streams with [`accept_stream`](crate::accept_stream), so
/// a [`Registry`](crate::Registry) counts them, broadcasts to them and forgets each
/// at its verdict. For a connection other tasks send to, or a reconnecting client,
/// use [`KeepAlive`](crate::KeepAlive) and [`connect`](crate::connect).
pub struct KeepAliveStream<S> {
    core: Core<WebSocketStream<S>, HeartbeatMachine>,
    /// The verdict, once given: what sends fail with from then on.
    terminal: Option<Error>,
    /// Data read while a send waited for room, and a verdict given then: the
    /// stream yields them first.
    inbox: VecDeque<Message>,
    pending_verdict: Option<Error>,
    ended: bool,
    /// The connection's tracing span, entered on every poll.
    span: tracing::Span,
    /// The largest message [`start_send`](Sink::start_send) takes
    /// (`Limits::max_send`); larger ones fail with [`Error::TooLarge`].
    max_send: usize,
    /// Bytes of queued messages past which [`poll_ready`](Sink::poll_ready) waits
    /// (`Limits::max_outbound`).
    max_outbound: usize,
    /// Its place in a [`Registry`](crate::Registry) ([`accept_stream`](crate::accept_stream)):
    /// broadcasts arrive through it; dropped at the verdict, which removes the entry.
    registration: Option<Registration>,
}

impl<S> KeepAliveStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// Starts the heartbeat on an open WebSocket. One connection never reconnects,
    /// whatever role the config names.
    pub fn new(ws: WebSocketStream<S>, options: &Options) -> KeepAliveStream<S> {
        let clock = Clock::start();
        let mut hb = HeartbeatMachine::new(options.single(), options.seed_or_random());
        hb.handle_connected(clock.now());
        Self::from_parts(ws, hb, clock, options)
    }

    pub(crate) fn from_parts(
        ws: WebSocketStream<S>,
        hb: HeartbeatMachine,
        clock: Clock,
        options: &Options,
    ) -> KeepAliveStream<S> {
        let options = &options.bind(options.heartbeat.role(), None, None);
        KeepAliveStream {
            core: Core::new(
                ws,
                hb,
                clock,
                options.codec.clone(),
                options.observer.clone(),
                options.lag.clone(),
            ),
            terminal: None,
            inbox: VecDeque::new(),
            pending_verdict: None,
            ended: false,
            span: options.span(),
            max_send: heartbeat_transport::tungstenite::Limits::max_send_of(&options.websocket),
            max_outbound: options.websocket.max_write_buffer_size,
            registration: None,
        }
    }

    /// Joins a registry: broadcasts arrive through `registration`'s mailbox.
    pub(crate) fn register(&mut self, registration: Registration) {
        self.registration = Some(registration);
    }

    /// Starts a close handshake with `code`; keep polling the stream until it ends.
    pub fn close(&mut self, code: CloseCode) {
        self.core.close(code);
    }

    /// The heartbeat snapshot, computed now.
    pub fn status(&self) -> Status {
        Status::of(self.core.hb(), self.core.clock())
    }

    /// The machine (state, RTT, counters).
    pub fn machine(&self) -> &HeartbeatMachine {
        self.core.hb()
    }
}

impl KeepAliveStream<TcpStream> {
    /// Accepts a WebSocket on `stream` (with `TCP_NODELAY`), the upgrade bounded by
    /// the machine's `connect_timeout`, and starts the heartbeat on it.
    pub async fn accept(
        stream: TcpStream,
        options: &Options,
    ) -> Result<KeepAliveStream<TcpStream>, Error> {
        crate::net::set_nodelay(&stream)
            .map_err(|e| Error::Connect(std::sync::Arc::new(e.into())))?;
        let peer = stream.peer_addr().ok();
        let options = &options.bind(heartbeat_core::Role::Server, peer, None);
        // Boxed: the handshake's state (about 2.7 KiB) lives on the heap while it
        // runs, so the task that awaits this is sized by the stream, not by it.
        let (ws, hb, clock) = Box::pin(tracing::Instrument::instrument(
            crate::server::upgrade(stream, options),
            options.span(),
        ))
        .await?;
        Ok(Self::from_parts(ws, hb, clock, options))
    }
}

impl KeepAliveStream<MaybeTlsStream<TcpStream>> {
    /// Connects to `request` (a `ws://` or `wss://` URL, or a
    /// [`ConnectRequest`](crate::ConnectRequest) with headers, subprotocols and TLS
    /// settings) with `TCP_NODELAY` and `options.websocket`, the attempt bounded by
    /// the machine's `connect_timeout`, and starts the heartbeat on it: the lean
    /// client, one connection that does not reconnect by itself (see
    /// [`connect`](crate::connect) for the reconnecting client with backoff). A bad
    /// URL, or `wss://` in a build without TLS, is an error before any attempt.
    pub async fn connect(
        request: impl crate::IntoConnectRequest,
        options: &Options,
    ) -> Result<KeepAliveStream<MaybeTlsStream<TcpStream>>, Error> {
        let request = request.into_connect_request()?;
        let options = &options.bind(heartbeat_core::Role::Client, None, Some(request.url()));
        let handshake = request.open(options.websocket);
        // Boxed: the connect future (DNS, TCP, handshake: about 3.7 KiB) is freed
        // when it ends instead of sizing the caller's task for the connection's life.
        let (ws, hb, clock) = Box::pin(tracing::Instrument::instrument(
            crate::server::attempt(handshake, options),
            options.span(),
        ))
        .await?;
        Ok(Self::from_parts(ws, hb, clock, options))
    }
}

impl<S> Stream for KeepAliveStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let span = self.span.clone();
        let _entered = span.enter();
        if let Some(msg) = self.inbox.pop_front() {
            return Poll::Ready(Some(Ok(msg)));
        }
        if let Some(err) = self.pending_verdict.take() {
            return Poll::Ready(Some(Err(err)));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        loop {
            self.take_mail(cx);
            return match self.core.poll_turn(cx, false) {
                Poll::Ready(Turn::Data(msg)) => Poll::Ready(Some(Ok(msg))),
                Poll::Ready(Turn::Dead(err)) => {
                    self.dead(&err);
                    Poll::Ready(Some(Err(err)))
                }
                Poll::Ready(Turn::Disconnected) => {
                    self.ended = true;
                    self.registration = None;
                    Poll::Ready(None)
                }
                // The turn may have made room in the writer for waiting broadcasts.
                Poll::Pending if self.mail_fits() => continue,
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

impl<S> Sink<Message> for KeepAliveStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = Error;

    /// Waits for room in the outbound queue; the heartbeat keeps running meanwhile
    /// (a peer that stops reading is still judged).
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let span = self.span.clone();
        let _entered = span.enter();
        loop {
            self.check_open()?;
            if self.core.queued() < WRITE_QUEUE && self.core.queued_bytes() < self.max_outbound {
                return Poll::Ready(Ok(()));
            }
            if self.core.poll_write(cx).is_ready() {
                continue;
            }
            match self.run_while_blocked(cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn start_send(mut self: Pin<&mut Self>, msg: Message) -> Result<(), Error> {
        let span = self.span.clone();
        let _entered = span.enter();
        match msg {
            Message::Text(_) | Message::Binary(_) => {
                if msg.len() > self.max_send {
                    return Err(Error::TooLarge {
                        len: msg.len(),
                        max: self.max_send,
                    });
                }
                self.check_open()?;
                self.core.send(msg, None);
                Ok(())
            }
            _ => Err(Error::NotData),
        }
    }

    /// Writes what is queued; the heartbeat keeps running meanwhile, so a flush
    /// that cannot finish (a hung peer's zero window) ends with the verdict.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let span = self.span.clone();
        let _entered = span.enter();
        loop {
            if self.core.poll_write(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
            match self.run_while_blocked(cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Closes with 1000 and runs the handshake to its end.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let span = self.span.clone();
        let _entered = span.enter();
        if matches!(self.core.hb().state(), heartbeat_core::State::Open) {
            self.core.close(CloseCode::NORMAL);
        }
        loop {
            match self.as_mut().poll_next(cx) {
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(_)) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S> KeepAliveStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// While a send waits for room: one turn of the connection (reads, deadlines,
    /// verdicts). Data read meanwhile is kept for the stream (reading pauses when
    /// [`INBOX`] messages wait); a verdict fails the send and is kept for the stream.
    fn run_while_blocked(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let paused = self.inbox.len() >= INBOX;
        match self.core.poll_turn(cx, paused) {
            Poll::Ready(Turn::Data(msg)) => {
                self.inbox.push_back(msg);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Turn::Dead(err)) => {
                self.dead(&err);
                self.pending_verdict = Some(err.clone());
                Poll::Ready(Err(err))
            }
            Poll::Ready(Turn::Disconnected) => {
                self.ended = true;
                self.registration = None;
                Poll::Ready(Err(self.over()))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// The verdict: sends fail with it from now on, and a registered stream leaves
    /// its registry now, at detection time.
    fn dead(&mut self, err: &Error) {
        self.terminal = Some(err.clone());
        self.registration = None;
    }

    /// Moves broadcasts waiting in the mailbox into the writer, as far as it has
    /// room (the rest wait, and the mailbox drops what overflows).
    fn take_mail(&mut self, cx: &mut Context<'_>) {
        let Some(reg) = &self.registration else {
            return;
        };
        // Room in messages, and none once the queued bytes reach `max_outbound`.
        let room = if self.check_open().is_ok() && self.core.queued_bytes() < self.max_outbound {
            WRITE_QUEUE.saturating_sub(self.core.queued())
        } else {
            0
        };
        let core = &mut self.core;
        reg.mailbox
            .take(cx.waker(), room, |msg| core.send(msg, None));
    }

    /// Broadcasts wait and the writer has room for them.
    fn mail_fits(&self) -> bool {
        self.registration
            .as_ref()
            .is_some_and(|r| r.mailbox.has_mail())
            && self.core.queued() < WRITE_QUEUE
            && self.check_open().is_ok()
    }

    /// Why the connection is over: the verdict the stream gave, or (before it was
    /// polled) the reason the machine's state carries.
    fn over(&self) -> Error {
        match (&self.terminal, self.core.hb().state().reason()) {
            (Some(e), _) => e.clone(),
            (None, Some(reason)) => Error::from_death(reason, "", None),
            // Cannot happen: a single connection's machine is open, or past a
            // verdict whose reason its state carries.
            (None, None) => Error::DriverGone,
        }
    }

    /// Sending is for open connections only; after the verdict, the error says why.
    fn check_open(&self) -> Result<(), Error> {
        match self.core.hb().state() {
            heartbeat_core::State::Open if self.terminal.is_none() => Ok(()),
            _ => Err(self.over()),
        }
    }
}

/// Data messages kept while a send waits for room, before reading pauses.
const INBOX: usize = 16;
