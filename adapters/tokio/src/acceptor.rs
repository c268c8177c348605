//! [`Acceptor`]: a TCP accept loop that survives running out of file descriptors.

use std::io;
use std::net::SocketAddr;

use heartbeat_transport::{AcceptBackoff, AcceptPause};
use tokio::net::{TcpListener, TcpStream};
use tracing::{info, warn};

/// Accepts TCP connections, riding out descriptor exhaustion: on `EMFILE`/`ENFILE`
/// (and `ENOBUFS`/`ENOMEM`) it waits 10–100 ms instead of retrying at once (which
/// spins a core), logs once per episode, and retries the listener itself when the
/// wait ends, so connections waiting in the backlog are taken as soon as
/// descriptors free up, without waiting for a new one to arrive.
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    backoff: AcceptBackoff,
}

impl Acceptor {
    /// Accepts from `listener`.
    pub fn new(listener: TcpListener) -> Acceptor {
        Acceptor {
            listener,
            backoff: AcceptBackoff::new(),
        }
    }

    /// The next connection. Exhaustion and per-connection errors (aborted, reset)
    /// are handled here; an error is returned only for anything else.
    pub async fn accept(&mut self) -> io::Result<(TcpStream, SocketAddr)> {
        loop {
            match self.listener.accept().await {
                Ok(conn) => {
                    if let Some(errors) = self.backoff.accepted() {
                        info!(errors, "accepting again after descriptor exhaustion");
                    }
                    return Ok(conn);
                }
                Err(e) => match self.backoff.failed(&e) {
                    AcceptPause::Wait { delay, first } => {
                        if first {
                            warn!(error = %e, "accept failed: resources exhausted; backing off");
                        }
                        tokio::time::sleep(delay).await;
                    }
                    AcceptPause::Retry if is_per_connection(&e) => {}
                    AcceptPause::Retry => return Err(e),
                },
            }
        }
    }

    /// Whether the loop is backing off from descriptor exhaustion now.
    pub fn exhausted(&self) -> bool {
        self.backoff.exhausted()
    }

    /// The listener.
    pub fn listener(&self) -> &TcpListener {
        &self.listener
    }
}

/// Errors of one connection that was gone before it was accepted.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || e.raw_os_error() == Some(71) // EPROTO
}
