//! The protocol between a connection's driver task and the application's handles:
//! what each side holds and sends. Both `driver` and `handle` depend on this module,
//! never on each other.

use std::sync::{Arc, OnceLock};

use heartbeat_core::CloseCode;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::error::Error;
use crate::event::Observer;
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
    /// The local-lag measure of the connection's `Options`.
    pub(crate) lag: std::sync::Arc<heartbeat_transport::LagMeter>,
    /// Never read (held for its drop): dropped with the driver, which is what `Sender::shutdown` waits
    /// for (its `alive` sender then reports closed).
    #[allow(dead_code)]
    pub(crate) alive: mpsc::Receiver<()>,
}

/// State both halves and the driver share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Set by the driver at detection time, before it drops its data sender, so a
    /// receiver that sees the channel end always finds the reason here.
    pub(crate) terminal: OnceLock<Error>,
}

impl Shared {
    /// The error that ended the connection (`DriverGone` if the driver vanished
    /// without setting one).
    pub(crate) fn terminal_error(&self) -> Error {
        self.terminal.get().cloned().unwrap_or(Error::DriverGone)
    }
}
