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
                let s1 = shared.clone();
                let s2 = shared.clone();
                std::thread::spawn(move || pump(down, up2, s1));
                std::thread::spawn(move || pump(up, down2, s2));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Copies `from` to `to` until either ends or the proxy stops; discards while silent.
/// An end is propagated as a write shutdown only while not silent (a silent link
/// carries no FIN either).
fn pump(mut from: TcpStream, mut to: TcpStream, shared: Arc<Shared>) {
    let mut buf = [0u8; 16 * 1024];
    while !shared.stop.load(Ordering::SeqCst) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if shared.silent.load(Ordering::SeqCst) => {
                shared.dropped.fetch_add(n as u64, Ordering::Relaxed);
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                shared.forwarded.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    // While silent, stay silent: no FIN reaches the other side until the proxy stops.
    while shared.silent.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(POLL);
    }
    let _ = to.shutdown(Shutdown::Write);
}

const POLL: Duration = Duration::from_millis(20);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_then_drops_silently_without_closing() {
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = SilentProxy::start(upstream.local_addr().unwrap()).unwrap();
        let mut client = TcpStream::connect(proxy.addr()).unwrap();
        let (mut server, _) = upstream.accept().unwrap();
        client.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");

        proxy.set_silent(true);
        client.write_all(b"lost").unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let err = server.read(&mut buf).unwrap_err();
        assert!(matches!(
            err.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut
        ));
        // Writes still succeed: the proxy's kernel ACKs; nothing is closed.
        server.write_all(b"also lost").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(proxy.dropped_bytes() >= 13);
    }
}
