//! [`SendError`]: why an application message was not sent.

use std::fmt;

use tungstenite::Error as WsError;

/// Why [`Ctx::send`](crate::Ctx::send) did not send.
#[derive(Debug)]
pub enum SendError {
    /// No such connection (it was removed).
    NotFound,
    /// The connection is not open (handshaking, closing, or waiting to reconnect).
    NotOpen,
    /// Earlier data is still waiting for the socket to drain; try again later.
    Backpressure,
    /// The message does not fit the write buffer's cap (`max_write_buffer_size`,
    /// 4 MiB with [`small_buffers`](crate::small_buffers)); the connection is
    /// unaffected.
    TooLarge,
    /// The write failed; the connection is over.
    Failed(WsError),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotFound => write!(f, "no such connection"),
            SendError::NotOpen => write!(f, "connection not open"),
            SendError::Backpressure => write!(f, "connection backed up"),
            SendError::TooLarge => write!(f, "message larger than the write buffer's cap"),
            SendError::Failed(e) => write!(f, "write failed: {e}"),
        }
    }
}

impl std::error::Error for SendError {}
