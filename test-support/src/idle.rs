//! A loopback TCP proxy that forgets flows idle for a set time, as a NAT, a load
//! balancer or a firewall does: silently, or with a reset.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What [`IdleProxy`] does to a flow that carried no byte, in either direction,
/// for its idle timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleMode {
    /// Forgets it without telling anyone: from then on every byte either side
    /// sends is discarded, both sockets stay open and both kernels keep ACKing
    /// (only a ping that goes unanswered shows it).
    Silent,
    /// Resets both sides at once (RST, as a load balancer's idle timeout does).
    Rst,
    /// Closes both sides (FIN), as a proxy that times out politely does.
    Fin,
}

/// A TCP proxy on `127.0.0.1` forwarding every accepted connection to `upstream`
/// until it has been idle for `idle`, then dropping it as [`IdleMode`] says.
///
/// Idleness is checked every few milliseconds, so a flow dies between `idle` and
/// `idle` + 5 ms after its last byte. Each connection costs two threads.
pub struct IdleProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl IdleProxy {
    /// Starts the proxy on `127.0.0.1:0`.
    pub fn start(
        upstream: SocketAddr,
        idle: Duration,
        mode: IdleMode,
    ) -> std::io::Result<IdleProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let acceptor = std::thread::spawn(move || accept_loop(listener, upstream, idle, mode, s));
        Ok(IdleProxy {
            addr,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for IdleProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// What both directions of one flow share.
struct Flow {
    last: Mutex<Instant>,
    dead: AtomicBool,
    idle: Duration,
    mode: IdleMode,
    stop: Arc<AtomicBool>,
}

impl Flow {
    /// Whether the flow is dead now (and, the first time, kills it).
    fn dead(&self, sockets: [&TcpStream; 2]) -> bool {
        if self.dead.load(Ordering::SeqCst) {
            return true;
        }
        let idle_for = self.last.lock().map_or(Duration::ZERO, |t| t.elapsed());
        if idle_for < self.idle {
            return false;
        }
        if !self.dead.swap(true, Ordering::SeqCst) {
            for s in sockets {
                match self.mode {
                    // A zero linger turns the close into a RST once the last
                    // descriptor of each socket is dropped (both pumps stop at once).
                    IdleMode::Rst => {
                        let _ = rustix::net::sockopt::set_socket_linger(s, Some(Duration::ZERO));
                    }
                    IdleMode::Fin => {
                        let _ = s.shutdown(std::net::Shutdown::Both);
                    }
                    IdleMode::Silent => {}
                }
            }
        }
        true
    }

    fn touch(&self) {
        if let Ok(mut t) = self.last.lock() {
            *t = Instant::now();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    idle: Duration,
    mode: IdleMode,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
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
            let _ = s.set_read_timeout(Some(POLL));
        }
        let (Ok(down2), Ok(up2)) = (down.try_clone(), up.try_clone()) else {
            continue;
        };
        let flow = Arc::new(Flow {
            last: Mutex::new(Instant::now()),
            dead: AtomicBool::new(false),
            idle,
            mode,
            stop: stop.clone(),
        });
        let f = flow.clone();
        std::thread::spawn(move || pump(down, up2, &f));
        std::thread::spawn(move || pump(up, down2, &flow));
    }
}

/// Copies `from` to `to` while the flow lives; then, silent, discards until the
/// proxy stops, or, reset, returns (dropping both descriptors).
fn pump(mut from: TcpStream, mut to: TcpStream, flow: &Flow) {
    let mut buf = [0u8; 16 * 1024];
    while !flow.stop.load(Ordering::SeqCst) {
        let dead = flow.dead([&from, &to]);
        if dead && flow.mode != IdleMode::Silent {
            return;
        }
        match from.read(&mut buf) {
            Ok(0) => {
                if !dead {
                    let _ = to.shutdown(std::net::Shutdown::Write);
                }
                return;
            }
            Ok(_) if flow.dead([&from, &to]) => {} // forgotten: discarded
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
                flow.touch();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// How often idleness (and the stop flag) is checked.
const POLL: Duration = Duration::from_millis(5);
