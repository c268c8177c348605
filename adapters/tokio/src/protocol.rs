//! The protocol between a connection's driver task and the application's handles:
//! what each side holds and sends. Both `driver` and `handle` depend on this module,
//! never on each other.

use std::sync::{Arc, OnceLock};

use heartbeat_core::CloseCode;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::error::Error;
use crate::event::Observer;
use crate::status::{Publisher, StatusCell};
use crate::writer::Budget;

/// A command from the application to its driver.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// A data message and the share of the outbound byte budget it holds until it
    /// is handed to the WebSocket layer.
    Send(Message, Budget),
    Close(CloseCode),
}

/// The driver's ends of the channels to the application.
pub(crate) struct Link {
    pub(crate) cmd_rx: mpsc::Receiver<Cmd>,
    /// Dropped at detection time, so the receiver ends right after the queued data.
    pub(crate) data_tx: Option<mpsc::Sender<(Message, Budget)>>,
    /// Bytes of received messages the application has not taken yet
    /// (`Limits::max_inbound`): past it the driver stops reading the socket.
    pub(crate) inbound: Arc<tokio::sync::Semaphore>,
    pub(crate) shared: Arc<Shared>,
    /// The connection's status, read by its handles.
    pub(crate) status: Publisher,
    /// A second status to keep current (a reconnecting client's overall one).
    pub(crate) mirror: Option<Arc<StatusCell>>,
    /// Run once, at detection time (the server registry's removal).
    pub(crate) on_dead: Option<Box<dyn FnOnce() + Send>>,
    /// The application's event observer.
    pub(crate) observer: Option<Observer>,
    /// The local-lag measure of the connection's `Options`.
    pub(crate) lag: std::sync::Arc<heartbeat_transport::LagMeter>,
    /// Never read (held for its drop): dropped with the driver, which is what `Sender::shutdown` waits
    /// for (its `alive` sender then reports closed).
    #[allow(dead_code)]
    pub(crate) alive: mpsc::Receiver<()>,
}

/// State both halves and the driver share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Set by the driver at detection time, before it drops its data sender, so a
    /// receiver that sees the channel end always finds the reason here.
    pub(crate) terminal: OnceLock<Error>,
    /// Bytes of outbound data messages the application may have queued and not yet
    /// handed to the WebSocket layer (`Limits::max_outbound`): a sender waits for
    /// its message's bytes, so one connection's queue is bounded in bytes.
    pub(crate) outbound: Arc<tokio::sync::Semaphore>,
    /// The largest message that can ever be sent (`Limits::max_send`).
    pub(crate) max_send: usize,
}

impl Shared {
    /// Fresh state for a connection whose sends may hold `max_outbound` bytes and
    /// be at most `max_send` bytes each.
    pub(crate) fn new(max_outbound: usize, max_send: usize) -> Shared {
        Shared {
            terminal: OnceLock::new(),
            outbound: Arc::new(tokio::sync::Semaphore::new(
                max_outbound.min(tokio::sync::Semaphore::MAX_PERMITS),
            )),
            max_send: max_send.min(max_outbound),
        }
    }

    /// The byte budget a message of `len` bytes takes, or the error for one that
    /// could never be sent.
    pub(crate) fn check_size(&self, len: usize) -> Result<u32, Error> {
        if len > self.max_send {
            return Err(Error::TooLarge {
                len,
                max: self.max_send,
            });
        }
        // A zero-byte message still takes one unit, so it waits its turn.
        Ok(u32::try_from(len.max(1)).unwrap_or(u32::MAX))
    }

    /// The error that ended the connection (`DriverGone` if the driver vanished
    /// without setting one).
    pub(crate) fn terminal_error(&self) -> Error {
        self.terminal.get().cloned().unwrap_or(Error::DriverGone)
    }
}
