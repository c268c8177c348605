//! What a [`KeepAlive`](crate::KeepAlive) can run over: a byte stream with a TCP
//! socket underneath, whose read and write timeouts bound every wait to the
//! machine's next deadline and whose shutdown lets go of the connection.

use std::io::{Read, Write};
use std::net::TcpStream;

/// A blocking byte stream over TCP: plain, or TLS on top of it.
///
/// Timeouts are set on the TCP socket; a TLS layer must let a read or write that
/// timed out be retried later (rustls's `StreamOwned` does: what it read is kept
/// in its buffers, what it could not write waits there).
pub trait Socket: Read + Write {
    /// The TCP socket underneath.
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

/// `wss://` as a client, with a connection you set up (your `ClientConfig`, your
/// roots).
#[cfg(feature = "rustls")]
impl Socket for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref()
    }
}

/// `wss://` as a server.
#[cfg(feature = "rustls")]
impl Socket for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref()
    }
}
