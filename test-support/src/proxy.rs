//! A loopback TCP proxy that can go silent without closing anything.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A TCP proxy on `127.0.0.1` forwarding every accepted connection to `upstream`.
///
/// While [`silent`](SilentProxy::set_silent), every byte read from either side is
/// discarded: both sockets stay ESTABLISHED, both kernels keep ACKing, no FIN and no
/// RST is sent, so only an application-level heartbeat can notice. Turning the
/// switch off resumes forwarding (bytes dropped meanwhile are gone, so the stream
/// is corrupt afterwards: use it to model a dead link, not a healed one).
/// [`set_connection_silent`](SilentProxy::set_connection_silent) silences one
/// connection only, so a client that reconnects through the proxy gets a working
/// link while its old one stays half-open.
///
/// Each connection costs two threads; meant for a handful of connections.
pub struct SilentProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    silent: AtomicBool,
    stop: AtomicBool,
    dropped: AtomicU64,
    forwarded: AtomicU64,
    sockets: Mutex<Vec<TcpStream>>,
    /// One switch per accepted connection, in accept order.
    connections: Mutex<Vec<Arc<AtomicBool>>>,
}

impl SilentProxy {
    /// Starts a proxy listening on `127.0.0.1:0` that forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> std::io::Result<SilentProxy> {
        Self::start_on("127.0.0.1:0".parse().expect("a valid address"), upstream)
    }

    /// Starts a proxy listening on `listen` (a 127.0.0.0/8 address) forwarding to
    /// `upstream`.
    pub fn start_on(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<SilentProxy> {
        assert!(listen.ip().is_loopback(), "loopback addresses only");
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            silent: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            sockets: Mutex::new(Vec::new()),
            connections: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let acceptor = std::thread::spawn(move || accept_loop(listener, upstream, s));
        Ok(SilentProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Turns silence on (drop everything) or off (forward again).
    pub fn set_silent(&self, silent: bool) {
        self.shared.silent.store(silent, Ordering::SeqCst);
    }

    /// Turns silence on or off for the `i`-th connection accepted (0-based) only;
    /// the others keep following [`set_silent`](Self::set_silent).
    ///
    /// # Panics
    /// If fewer than `i + 1` connections were accepted (see
    /// [`connections`](Self::connections)).
    pub fn set_connection_silent(&self, i: usize, silent: bool) {
        let connections = self.shared.connections.lock().expect("no panic while held");
        connections[i].store(silent, Ordering::SeqCst);
    }

    /// How many connections the proxy has accepted (and forwarded upstream) so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.lock().map_or(0, |c| c.len())
    }

    /// Bytes discarded while silent, both directions.
    pub fn dropped_bytes(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Bytes forwarded, both directions.
    pub fn forwarded_bytes(&self) -> u64 {
        self.shared.forwarded.load(Ordering::Relaxed)
    }
}

impl Drop for SilentProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Ok(sockets) = self.shared.sockets.lock() {
            for s in sockets.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn accept_loop(listener: TcpListener, upstream: SocketAddr, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((down, _)) => {
                let Ok(up) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = down.set_nonblocking(false);
                for s in [&down, &up] {
                    let _ = s.set_nodelay(true);
                    let _ = s.set_read_timeout(Some(POLL));
                }
                let clones = (down.try_clone(), up.try_clone());
                let (Ok(down2), Ok(up2)) = clones else {
                    continue;
                };
                if let Ok(mut sockets) = shared.sockets.lock() {
                    sockets.extend([down2.try_clone(), up2.try_clone()].into_iter().flatten());
                }
                let own = Arc::new(AtomicBool::new(false));
                if let Ok(mut connections) = shared.connections.lock() {
                    connections.push(own.clone());
                }
                let link = |from, to| Link {
                    from,
                    to,
                    shared: shared.clone(),
                    own: own.clone(),
                };
                let (a, b) = (link(down, up2), link(up, down2));
                std::thread::spawn(move || a.pump());
                std::thread::spawn(move || b.pump());
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// One direction of one proxied connection.
struct Link {
    from: TcpStream,
    to: TcpStream,
    shared: Arc<Shared>,
    /// This connection's own switch (see [`SilentProxy::set_connection_silent`]).
    own: Arc<AtomicBool>,
}

impl Link {
    /// Copies `from` to `to` until either ends or the proxy stops; discards while
    /// silent. An end is propagated as a write shutdown only while not silent (a
    /// silent link carries no FIN either).
    fn pump(mut self) {
        let mut buf = [0u8; 16 * 1024];
        while !self.stopped() {
            match self.from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) if self.silent() => {
                    self.shared.dropped.fetch_add(n as u64, Ordering::Relaxed);
                }
                Ok(n) => {
                    if self.to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    self.shared.forwarded.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        // While silent, stay silent: no FIN reaches the other side until the proxy stops.
        while self.silent() && !self.stopped() {
            std::thread::sleep(POLL);
        }
        let _ = self.to.shutdown(Shutdown::Write);
    }

    fn silent(&self) -> bool {
        self.shared.silent.load(Ordering::SeqCst) || self.own.load(Ordering::SeqCst)
    }

    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::SeqCst)
    }
}

const POLL: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_then_drops_silently_without_closing() {
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = SilentProxy::start(upstream.local_addr().unwrap()).unwrap();
        let (mut client, mut server) = connect(&proxy, &upstream);
        client.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");

        proxy.set_silent(true);
        client.write_all(b"lost").unwrap();
        assert_nothing_arrives(&mut server);
        // Writes still succeed: the proxy's kernel ACKs; nothing is closed.
        server.write_all(b"also lost").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(proxy.dropped_bytes() >= 13);
    }

    #[test]
    fn one_connection_goes_silent_while_a_later_one_forwards() {
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = SilentProxy::start(upstream.local_addr().unwrap()).unwrap();
        let (mut first, mut first_up) = connect(&proxy, &upstream);
        proxy.set_connection_silent(0, true);
        let (mut second, mut second_up) = connect(&proxy, &upstream);

        first.write_all(b"lost").unwrap();
        second.write_all(b"kept").unwrap();
        let mut buf = [0u8; 4];
        second_up.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"kept");
        assert_nothing_arrives(&mut first_up);
        // The silenced one holds its sockets open: closing upstream sends no FIN on.
        drop(first_up);
        assert_nothing_arrives(&mut first);
        assert_eq!(proxy.connections(), 2);
        assert_eq!(proxy.dropped_bytes(), 4);
    }

    /// A client connected through `proxy` and its upstream end, once the proxy has
    /// registered the connection.
    fn connect(proxy: &SilentProxy, upstream: &TcpListener) -> (TcpStream, TcpStream) {
        let before = proxy.connections();
        let client = TcpStream::connect(proxy.addr()).unwrap();
        let (server, _) = upstream.accept().unwrap();
        while proxy.connections() == before {
            std::thread::sleep(Duration::from_millis(5));
        }
        (client, server)
    }

    /// Neither data nor an end of stream reaches `stream` within 200 ms.
    fn assert_nothing_arrives(stream: &mut TcpStream) {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let err = stream.read(&mut [0u8; 16]).unwrap_err();
        assert!(matches!(
            err.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut
        ));
    }
}
