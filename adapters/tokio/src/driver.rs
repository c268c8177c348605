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
use crate::writer::Budget;

/// Runs one connection until the machine lets go of it
/// ([`heartbeat_core::Action::Disconnect`]).
pub(crate) struct Driver<S, M> {
    core: Core<S, M>,
    link: Link,
    /// An inbound data message the application's full queue could not take yet.
    stalled: Option<Message>,
    /// Room for the stalled message: its bytes in the inbound budget, then a slot
    /// in the application's queue (`None`: the receiver is gone).
    room: Option<BoxFuture<Option<Room>>>,
    receiver_gone: Option<BoxFuture<()>>,
    senders_gone: bool,
    /// What the status cell last showed.
    published: Option<(State, Health, Stats)>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A slot in the application's queue and the stalled message's inbound bytes.
type Room = (mpsc::OwnedPermit<(Message, Budget)>, Budget);

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
                        (Some((permit, budget)), Some(m)) => {
                            permit.send((m, budget));
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
            Some(Cmd::Send(msg, budget)) => self.core.send(msg, budget),
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
            let _ = tx.try_send((m, None));
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
        let bytes = u32::try_from(msg.len().max(1)).unwrap_or(u32::MAX);
        let budget = match self.link.inbound.clone().try_acquire_many_owned(bytes) {
            Ok(b) => b,
            Err(_) => {
                // The application holds `max_inbound` bytes it has not taken: stop
                // reading until it takes some (backpressure, bounded in bytes).
                debug!("inbound byte budget full; pausing reads");
                self.stall(msg, bytes);
                return;
            }
        };
        match tx.try_send((msg, Some(budget))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full((msg, _))) => {
                // Stop reading until the application makes room (backpressure).
                debug!("application queue full; pausing reads");
                self.stall(msg, bytes);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {} // receiver dropped: discard
        }
    }

    /// Holds `msg` until the inbound budget has `bytes` for it and the application's
    /// queue a slot; the socket is not read meanwhile.
    fn stall(&mut self, msg: Message, bytes: u32) {
        let Some(tx) = self.link.data_tx.clone() else {
            return;
        };
        let inbound = self.link.inbound.clone();
        self.stalled = Some(msg);
        self.room = Some(Box::pin(async move {
            let budget = inbound.acquire_many_owned(bytes).await.ok()?;
            let slot = tx.reserve_owned().await.ok()?;
            Some((slot, Some(budget)))
        }));
    }

    /// Stores the status when the driver is about to wait (or is done) and
    /// something changed since the last time: once per burst of frames, not once
    /// per frame, and never left stale while the driver sleeps. A lock and a copy:
    /// watchers, if any handle asked for a watch, are woken only on a change.
    fn publish(&mut self, force: bool) {
        let hb = self.core.hb();
        let key = (hb.state(), hb.health(), hb.stats());
        if !force && self.published == Some(key) {
            return;
        }
        self.published = Some(key);
        let status = Status::of(hb, self.core.clock());
        if let Some(m) = &self.link.mirror {
            m.set(status.clone());
        }
        self.link.status.set(status);
    }
}

/// Outbound messages held by the driver before the application must wait.
pub(crate) const WRITE_QUEUE: usize = 8;
