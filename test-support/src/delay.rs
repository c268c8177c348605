//! A loopback TCP proxy that delays every byte by a fixed time, in both directions.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A TCP proxy on `127.0.0.1` forwarding every accepted connection to `upstream`,
/// each chunk `delay` after it was read, order preserved: a path with a fixed
/// one-way latency (`netem` is missing on this kernel, see `shared/FAULTS.md`).
///
/// The lab uses it so a pong is always still on its way when the client is stopped
/// right after sending a ping: the pong then lands in the stopped client's socket
/// buffer, the case a driver must not misjudge on resume.
///
/// Each connection costs four threads; meant for a handful of connections.
pub struct DelayProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    stop: AtomicBool,
    sockets: Mutex<Vec<TcpStream>>,
}

impl DelayProxy {
    /// Starts a proxy on `127.0.0.1:0` forwarding to `upstream` with `delay` each way.
    pub fn start(upstream: SocketAddr, delay: Duration) -> std::io::Result<DelayProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            sockets: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let acceptor = std::thread::spawn(move || accept_loop(&listener, upstream, delay, &s));
        Ok(DelayProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DelayProxy {
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

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, delay: Duration, shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        let Ok((down, _)) = listener.accept() else {
            std::thread::sleep(POLL);
            continue;
        };
        let Ok(up) = TcpStream::connect(upstream) else {
            continue;
        };
        let _ = down.set_nonblocking(false);
        for s in [&down, &up] {
            let _ = s.set_nodelay(true);
        }
        let (Ok(down2), Ok(up2)) = (down.try_clone(), up.try_clone()) else {
            continue;
        };
        if let Ok(mut sockets) = shared.sockets.lock() {
            sockets.extend([down2.try_clone(), up2.try_clone()].into_iter().flatten());
        }
        forward(down, up2, delay);
        forward(up, down2, delay);
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read; an end of `from`
/// becomes a write shutdown of `to`, delayed the same way.
fn forward(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send((Instant::now(), Vec::new()));
    });
    std::thread::spawn(move || {
        for (read_at, bytes) in rx {
            std::thread::sleep((read_at + delay).saturating_duration_since(Instant::now()));
            if bytes.is_empty() || to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

const POLL: Duration = Duration::from_millis(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_late_and_in_order() {
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy =
            DelayProxy::start(upstream.local_addr().unwrap(), Duration::from_millis(50)).unwrap();
        let mut client = TcpStream::connect(proxy.addr()).unwrap();
        let (mut server, _) = upstream.accept().unwrap();
        let sent = Instant::now();
        client.write_all(b"ab").unwrap();
        client.write_all(b"cd").unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"abcd");
        let one_way = sent.elapsed();
        server.write_all(b"pong").unwrap();
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pong");
        assert!(one_way >= Duration::from_millis(50), "{one_way:?}");
        assert!(sent.elapsed() >= Duration::from_millis(100));
        drop(client);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }
}
