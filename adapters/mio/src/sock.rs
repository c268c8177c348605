//! [`Sock`]: a connection's TCP socket, with what the driver knows about its
//! read side, so that a drained socket is not read again before readiness says
//! something arrived.

use std::io::{self, ErrorKind, Read, Write};

use mio::net::TcpStream;

/// A non-blocking TCP socket that remembers whether its receive buffer is known
/// to be empty.
///
/// mio's readiness is edge-triggered: after a read that came back short (fewer
/// bytes than asked) or with `WouldBlock`, the kernel's buffer was empty at that
/// moment, and any byte that arrives later raises a new readable event (tokio's
/// readiness model draws the same conclusion from a short read). Until that event
/// ([`readable`](Self::readable)), a read returns `WouldBlock` without a system
/// call. This is what keeps the driver at one receive call per readiness event:
/// tungstenite asks for more after every frame, and the driver takes in what a
/// socket holds before each of its deadlines; both would otherwise end in an
/// empty `recvfrom`.
#[derive(Debug)]
pub(crate) struct Sock {
    tcp: TcpStream,
    /// The last read found the receive buffer empty; no readiness since.
    drained: bool,
}

impl Sock {
    /// A socket whose receive buffer may hold data.
    pub(crate) fn new(tcp: TcpStream) -> Sock {
        Sock {
            tcp,
            drained: false,
        }
    }

    /// A readable (or error, or hang-up) event arrived: the next read asks the
    /// kernel again.
    pub(crate) fn readable(&mut self) {
        self.drained = false;
    }

    /// The socket itself (to register it, or set options).
    pub(crate) fn tcp(&mut self) -> &mut TcpStream {
        &mut self.tcp
    }

    /// The peer's address, if the socket still has one.
    pub(crate) fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.tcp.peer_addr()
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.drained {
            return Err(ErrorKind::WouldBlock.into());
        }
        match self.tcp.read(buf) {
            // A short read drained the buffer. Zero bytes is the end of the
            // stream: nothing more will come, and tungstenite must see it.
            Ok(n) => {
                self.drained = n > 0 && n < buf.len();
                Ok(n)
            }
            Err(e) => {
                if e.kind() == ErrorKind::WouldBlock {
                    self.drained = true;
                }
                Err(e)
            }
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}
