//! The driver task behind a [`KeepAlive`](crate::KeepAlive): runs a connection's
//! [`Core`] and connects it to the application's handles (data, commands, status).
//!
//! The core decides nothing either: the machine does. This file only moves
//! messages between the core and the channels, with backpressure: when the
//! application's queue is full, the socket is not read until it makes room.

use core::borrow::BorrowMut;
use core::future::{poll_fn, Future};
use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::Arc;

use heartbeat_core::{CloseCode, Health, HeartbeatMachine, Instant, State, Stats};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

use crate::clock::Clock;
use crate::codec::HeartbeatCodec;
use crate::core::{Core, Turn};
use crate::error::Error;
use crate::protocol::{Cmd, Link};
use crate::socket::WsSocket;
use crate::status::Status;

/// Runs one connection until the machine lets go of it
/// ([`heartbeat_core::Action::Disconnect`]).
pub(crate) struct Driver<S, M> {
    core: Core<S, M>,
    link: Link,
    /// An inbound data message the application's full queue could not take yet.
    stalled: Option<Message>,
    room: Option<BoxFuture<Result<mpsc::OwnedPermit<Message>, mpsc::error::SendError<()>>>>,
    receiver_gone: Option<BoxFuture<()>>,
    senders_gone: bool,
    /// What the status watch last showed.
    published: Option<(State, Health, Stats)>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, M> Driver<S, M>
where
    S: WsSocket,
    M: BorrowMut<HeartbeatMachine>,
{
    /// A driver for the open connection `ws`; `hb` must have been told it is
    /// connected.
    pub(crate) fn new(
        ws: S,
        hb: M,
        clock: Clock,
        codec: Option<Arc<dyn HeartbeatCodec>>,
        link: Link,
    ) -> Self {
        Driver {
            core: Core::new(
                ws,
                hb,
                clock,
                codec,
                link.observer.clone(),
                link.lag.clone(),
            ),
            link,
            stalled: None,
            room: None,
            receiver_gone: None,
            senders_gone: false,
            published: None,
        }
    }

    /// Drives the connection until the machine disconnects it. Returns the next
    /// attempt's number if the machine asked for one in the same breath, and the
    /// next attempt already announced to the observer (at the verdict), if any.
    pub(crate) async fn run(mut self) -> (Option<u32>, Option<(Instant, u32)>) {
        poll_fn(|cx| self.poll(cx)).await;
        (self.core.connect, self.core.announced)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if let Some(room) = &mut self.room {
                if let Poll::Ready(r) = room.as_mut().poll(cx) {
                    self.room = None;
                    match (r, self.stalled.take()) {
                        (Ok(permit), Some(m)) => {
                            permit.send(m);
                        }
                        _ => self.stalled = None,
                    }
                    continue;
                }
            }
            if self.accepts_commands() {
                if let Poll::Ready(cmd) = self.link.cmd_rx.poll_recv(cx) {
                    self.command(cmd);
                    continue;
                }
            }
            if let Some(gone) = &mut self.receiver_gone {
                if gone.as_mut().poll(cx).is_ready() {
                    self.receiver_gone = None;
                    self.close_if_open();
                    continue;
                }
            }
            match self.core.poll_turn(cx, self.stalled.is_some()) {
                Poll::Ready(Turn::Data(msg)) => self.deliver(msg),
                Poll::Ready(Turn::Dead(err)) => self.dead(err),
                Poll::Ready(Turn::Disconnected) => {
                    self.publish(true);
                    return Poll::Ready(());
                }
                Poll::Pending => {
                    // The writer may have drained during the turn: commands skipped
                    // while it was full must be looked at now, which also registers
                    // this task's waker with the channel (no lost wakeup).
                    if self.accepts_commands() {
                        if let Poll::Ready(cmd) = self.link.cmd_rx.poll_recv(cx) {
                            self.command(cmd);
                            continue;
                        }
                    }
                    self.publish(false);
                    return Poll::Pending;
                }
            }
        }
    }

    fn command(&mut self, cmd: Option<Cmd>) {
        match cmd {
            Some(Cmd::Send(msg)) => self.core.send(msg),
            Some(Cmd::Close(code)) => self.core.close(code),
            None => {
                self.senders_gone = true;
                match &self.link.data_tx {
                    Some(tx) if !tx.is_closed() => {
                        let tx = tx.clone();
                        self.receiver_gone = Some(Box::pin(async move { tx.closed().await }));
                    }
                    _ => self.close_if_open(),
                }
            }
        }
    }

    fn accepts_commands(&self) -> bool {
        !self.senders_gone
            && self.core.hb().state() == State::Open
            && self.core.queued() < WRITE_QUEUE
    }

    /// Every handle is gone: nobody can use the connection, so end it cleanly.
    fn close_if_open(&mut self) {
        if self.core.hb().state() == State::Open {
            self.core.close(CloseCode::NORMAL);
        }
    }

    /// The verdict: the handles learn it now, whatever data is still queued.
    fn dead(&mut self, err: Error) {
        // Set before the data sender drops: a receiver that sees the end finds it.
        let _ = self.link.shared.terminal.set(err);
        if let (Some(m), Some(tx)) = (self.stalled.take(), self.link.data_tx.as_ref()) {
            let _ = tx.try_send(m);
        }
        self.room = None;
        self.receiver_gone = None;
        self.link.data_tx = None;
        // Senders waiting for room learn the verdict now, not when the socket goes.
        self.link.cmd_rx.close();
        if let Some(hook) = self.link.on_dead.take() {
            hook();
        }
        self.publish(true);
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

    /// Publishes the status when the driver is about to wait (or is done) and
    /// something changed since the last publication: once per burst of frames, not
    /// once per frame, and never left stale while the driver sleeps.
    fn publish(&mut self, force: bool) {
        let hb = self.core.hb();
        let key = (hb.state(), hb.health(), hb.stats());
        if !force && self.published == Some(key) {
            return;
        }
        self.published = Some(key);
        let status = Status::of(hb, self.core.clock());
        if let Some(m) = &self.link.mirror {
            m.send_replace(status.clone());
        }
        self.link.status_tx.send_replace(status);
    }
}

/// Outbound messages held by the driver before the application must wait.
pub(crate) const WRITE_QUEUE: usize = 8;
