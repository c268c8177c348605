//! The application's side of a connection: [`KeepAlive`], split into [`Sender`] and
//! [`Receiver`].

use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::Arc;

use futures_util::Stream;
use heartbeat_core::{CloseCode, HeartbeatMachine};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use heartbeat_transport::tungstenite::Limits;

use crate::clock::Clock;
use crate::driver::Driver;
use crate::error::{Error, Initiator};
use crate::options::Options;
use crate::protocol::{Cmd, Link, Shared};
use crate::socket::WsSocket;
use crate::status::{Status, StatusCell};
use crate::writer::Budget;

/// A WebSocket connection whose heartbeat runs by itself.
///
/// [`KeepAlive::new`] takes a connected `WebSocketStream<S>` and spawns a *driver
/// task* that owns it: the task reads every frame, sends the machine's pings and
/// pongs, runs its deadlines and executes its verdicts, so heartbeats keep running
/// while the application is busy, or only ever sends. The socket type is erased once
/// the driver owns it, so one `KeepAlive` type serves TCP, TLS and in-memory streams.
///
/// The application talks to the task through this handle, or through the two halves
/// of [`split`](KeepAlive::split): a cloneable [`Sender`] (data messages, close) and a
/// [`Receiver`] (data messages, then the terminal [`Error`]). Dropping every `Sender`
/// and the `Receiver` closes the connection with 1000 while the runtime keeps running
/// the driver task; before a runtime stops (the end of `main`), await
/// [`shutdown`](KeepAlive::shutdown), which returns once the close handshake is over.
#[derive(Debug)]
pub struct KeepAlive {
    sender: Sender,
    receiver: Receiver,
}

impl KeepAlive {
    /// Starts the heartbeat on an open WebSocket and spawns its driver task.
    ///
    /// The machine is built from `options.heartbeat` and told the connection is up
    /// now; one connection never reconnects, whatever role the config names. Must be called
    /// inside a tokio runtime.
    pub fn new<S>(ws: WebSocketStream<S>, options: &Options) -> KeepAlive
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let clock = Clock::start();
        let mut hb = HeartbeatMachine::new(options.single(), options.seed_or_random());
        hb.handle_connected(clock.now());
        Self::spawn(ws, hb, clock, options, None)
    }

    /// Starts the heartbeat on a WebSocket from another stack (axum's `WebSocket`,
    /// another tokio-tungstenite version, ...) adapted by [`Compat`](crate::Compat),
    /// or anything else that is a [`WsSocket`]; see [`KeepAlive::new`].
    ///
    /// The stack must answer pings and reply to a close frame by itself, as every
    /// tungstenite-based one does; the driver never sends a pong for a WebSocket
    /// ping.
    pub fn from_socket<W>(ws: W, options: &Options) -> KeepAlive
    where
        W: WsSocket + Send + 'static,
    {
        let clock = Clock::start();
        let mut hb = HeartbeatMachine::new(options.single(), options.seed_or_random());
        hb.handle_connected(clock.now());
        Self::spawn(ws, hb, clock, options, None)
    }

    /// Spawns the driver of `hb`, which was just told the connection is up; runs
    /// `on_dead` at detection time.
    pub(crate) fn spawn<S>(
        ws: S,
        hb: HeartbeatMachine,
        clock: Clock,
        options: &Options,
        on_dead: Option<Box<dyn FnOnce() + Send>>,
    ) -> KeepAlive
    where
        S: WsSocket + Send + 'static,
    {
        let options = &options.bind(options.heartbeat.role(), None, None);
        crate::event::emit(
            &options.observer,
            crate::event::Event::Connected { attempt: 0 },
        );
        let (mut link, handle) = channel(options, Status::of(&hb, &clock));
        link.on_dead = on_dead;
        let codec = options.codec.clone();
        let driver = async move {
            // A single connection: a Connect the machine may ask for is not ours to act on.
            let _ = Driver::new(ws, hb, clock, codec, link).run().await;
        };
        tokio::spawn(tracing::Instrument::instrument(driver, options.span()));
        handle
    }

    /// Sends a text or binary message; waits while the outbound queue is full.
    pub async fn send(&self, msg: Message) -> Result<(), Error> {
        self.sender.send(msg).await
    }

    /// The next data message, or the error that ended the connection.
    pub async fn recv(&mut self) -> Result<Message, Error> {
        self.receiver.recv().await
    }

    /// Starts a close handshake with `code` (see [`Sender::close`]).
    pub async fn close(&self, code: CloseCode) -> Result<(), Error> {
        self.sender.close(code).await
    }

    /// Closes with `code` and returns once the close handshake is over: the close
    /// frame was written and the peer answered, or the close timeout passed, or the
    /// connection had already ended. See [`Sender::shutdown`].
    pub async fn shutdown(self, code: CloseCode) -> Result<(), Error> {
        self.sender.shutdown(code).await
    }

    /// The latest heartbeat snapshot (RTT, health, counters). Never waits.
    pub fn status(&self) -> Status {
        self.sender.status()
    }

    /// A watch on the snapshot, to await changes (e.g. the verdict). The driver
    /// keeps a watch current only once one has been asked for.
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.sender.status.watch()
    }

    /// Resolves when the machine has given its verdict on this connection, with the
    /// error the application will see: at detection time, whatever data is queued.
    pub async fn dead(&self) -> Error {
        self.sender.dead().await
    }

    /// Another sending handle to this connection.
    pub fn sender(&self) -> Sender {
        self.sender.clone()
    }

    /// Splits into a cloneable sending half and the receiving half.
    pub fn split(self) -> (Sender, Receiver) {
        (self.sender, self.receiver)
    }
}

/// The sending half of a [`KeepAlive`]; clone it freely.
#[derive(Clone, Debug)]
pub struct Sender {
    cmd_tx: mpsc::Sender<Cmd>,
    /// Closed once the driver task has ended (see [`Sender::shutdown`]).
    alive: mpsc::Sender<()>,
    shared: Arc<Shared>,
    status: Arc<StatusCell>,
}

impl Sender {
    /// Queues a text or binary message for the driver; waits while the queue is full.
    ///
    /// Fails with the connection's terminal error once the machine has declared it
    /// over, and with [`Error::NotData`] for control frames (the driver owns those).
    ///
    /// A message larger than the connection's [`Limits::max_send`] fails at once
    /// with [`Error::TooLarge`] and the connection stays usable; otherwise the send
    /// waits until the connection's queue has room for the message's bytes
    /// ([`Limits::max_outbound`]).
    ///
    /// [`Limits::max_send`]: heartbeat_transport::tungstenite::Limits::max_send
    /// [`Limits::max_outbound`]: heartbeat_transport::tungstenite::Limits::max_outbound
    pub async fn send(&self, msg: Message) -> Result<(), Error> {
        check_data(&msg)?;
        let bytes = self.shared.check_size(msg.len())?;
        self.check_alive()?;
        let budget = self
            .shared
            .outbound
            .clone()
            .acquire_many_owned(bytes)
            .await
            .map_err(|_| self.shared.terminal_error())?;
        self.cmd_tx
            .send(Cmd::Send(msg, Some(budget)))
            .await
            .map_err(|_| self.shared.terminal_error())
    }

    /// Queues a message without waiting; `Ok(false)` if the queue is full, in
    /// messages or in bytes (the message is dropped). Used by broadcasts, which must
    /// never block on one client. Too large ever to send: [`Error::TooLarge`].
    pub fn try_send(&self, msg: Message) -> Result<bool, Error> {
        check_data(&msg)?;
        let bytes = self.shared.check_size(msg.len())?;
        self.check_alive()?;
        let Ok(budget) = self.shared.outbound.clone().try_acquire_many_owned(bytes) else {
            return Ok(false);
        };
        match self.cmd_tx.try_send(Cmd::Send(msg, Some(budget))) {
            Ok(()) => Ok(true),
            Err(mpsc::error::TrySendError::Full(_)) => Ok(false),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.shared.terminal_error()),
        }
    }

    /// Starts a close handshake with `code`; no reconnect follows. The [`Receiver`]
    /// ends at once with [`Error::Closed`] (initiator `Local`); the driver keeps the
    /// socket until the peer answers or the configured close timeout passes.
    pub async fn close(&self, code: CloseCode) -> Result<(), Error> {
        self.check_alive()?;
        self.cmd_tx
            .send(Cmd::Close(code))
            .await
            .map_err(|_| self.shared.terminal_error())
    }

    /// Closes with `code` and waits until the driver has let go of the socket: the
    /// close frame was written and the peer's reply read, or the configured close
    /// timeout passed. Await it before a runtime shuts down (the end of `main`):
    /// dropping the handles closes with 1000 only while the runtime still runs the
    /// driver task, and a runtime that is shutting down runs nothing.
    ///
    /// `Ok` when this close ended the connection; the terminal error when the
    /// connection was already over for another reason.
    pub async fn shutdown(&self, code: CloseCode) -> Result<(), Error> {
        if self.check_alive().is_ok() {
            // Refused only when the driver is already gone: then there is nothing to wait for.
            let _ = self.cmd_tx.send(Cmd::Close(code)).await;
        }
        // The driver drops the other end when it ends.
        self.alive.closed().await;
        match self.shared.terminal_error() {
            Error::Closed {
                initiator: Initiator::Local,
                ..
            } => Ok(()),
            other => Err(other),
        }
    }

    /// The latest heartbeat snapshot. Never waits.
    pub fn status(&self) -> Status {
        self.status.get()
    }

    /// Resolves at detection time with the error that ended the connection.
    pub async fn dead(&self) -> Error {
        if let Some(e) = self.shared.terminal.get() {
            return e.clone();
        }
        let mut status = self.status.watch();
        // An Err means the driver is gone, which also ends the wait.
        let _ = status.wait_for(|s| s.is_over()).await;
        self.shared.terminal_error()
    }

    fn check_alive(&self) -> Result<(), Error> {
        match self.shared.terminal.get() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

/// The receiving half of a [`KeepAlive`]: data messages in arrival order, then the
/// error that ended the connection.
///
/// Also a [`Stream`] of `Result<Message, Error>` that yields the terminal error once
/// and then ends.
#[derive(Debug)]
pub struct Receiver {
    data_rx: mpsc::Receiver<(Message, Budget)>,
    shared: Arc<Shared>,
    status: Arc<StatusCell>,
    ended: bool,
}

impl Receiver {
    /// The next data message; once the connection is over (and every message queued
    /// before the verdict has been read) the terminal error, on every call.
    pub async fn recv(&mut self) -> Result<Message, Error> {
        match self.data_rx.recv().await {
            // Taking the message gives its bytes back to the inbound budget.
            Some((m, _budget)) => Ok(m),
            None => Err(self.shared.terminal_error()),
        }
    }

    /// The latest heartbeat snapshot. Never waits.
    pub fn status(&self) -> Status {
        self.status.get()
    }
}

impl Stream for Receiver {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.data_rx.poll_recv(cx) {
            Poll::Ready(Some((m, _budget))) => Poll::Ready(Some(Ok(m))),
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(Some(Err(self.shared.terminal_error())))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The channels between one driver and its application handle.
pub(crate) fn channel(options: &Options, initial: Status) -> (Link, KeepAlive) {
    let (cmd_tx, cmd_rx) = mpsc::channel(options.outbound_capacity.max(1));
    let (alive, alive_rx) = mpsc::channel(1);
    let (data_tx, data_rx) = mpsc::channel(options.inbound_capacity.max(1));
    let (publisher, status) = StatusCell::new(initial);
    let shared = Arc::new(Shared::new(
        options.websocket.max_write_buffer_size,
        Limits::max_send_of(&options.websocket),
    ));
    let link = Link {
        observer: options.observer.clone(),
        lag: options.lag.clone(),
        cmd_rx,
        data_tx: Some(data_tx),
        // A message may be as large as `max_message`: the budget always holds one.
        inbound: Arc::new(tokio::sync::Semaphore::new(
            options
                .limits
                .max_inbound
                .max(options.websocket.max_message_size.unwrap_or(0))
                .min(tokio::sync::Semaphore::MAX_PERMITS),
        )),
        shared: shared.clone(),
        status: publisher,
        mirror: None,
        on_dead: None,
        alive: alive_rx,
    };
    let handle = KeepAlive {
        sender: Sender {
            cmd_tx,
            alive,
            shared: shared.clone(),
            status: status.clone(),
        },
        receiver: Receiver {
            data_rx,
            shared,
            status,
            ended: false,
        },
    };
    (link, handle)
}

fn check_data(msg: &Message) -> Result<(), Error> {
    match msg {
        Message::Text(_) | Message::Binary(_) => Ok(()),
        _ => Err(Error::NotData),
    }
}
