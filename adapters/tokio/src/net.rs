//! Socket-level helpers.

use tokio::net::TcpStream;

/// Disables Nagle's algorithm on `stream`.
///
/// Without `TCP_NODELAY` a small pong can sit in the kernel waiting for a delayed
/// ACK, inflating measured RTT five- to tenfold and eating into the pong timeout.
/// [`connect`](crate::connect) and [`accept_tcp`](crate::accept_tcp) call this for you.
pub fn set_nodelay(stream: &TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)
}
