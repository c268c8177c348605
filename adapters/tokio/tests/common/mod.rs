//! Helpers shared by the integration tests: configs, in-memory and loopback peers,
//! Python `websockets` peers, and a freezable TCP proxy.

#![allow(dead_code)] // each test binary uses a different subset

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use heartbeat_core::{Backoff, Config, Jitter, Role};
use heartbeat_tokio::tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use heartbeat_tokio::tokio_tungstenite::WebSocketStream;
use heartbeat_tokio::{Options, Registry};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "heartbeat_tokio=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A deterministic backoff: base, doubling, capped, no jitter.
pub fn backoff(base: u64, cap: u64, max_attempts: Option<u32>) -> Backoff {
    Backoff {
        base: ms(base),
        multiplier: 2.0,
        cap: ms(cap),
        jitter: Jitter::None,
        max_attempts,
        reset_after: ms(100),
        max_requested_delay: ms(1000),
    }
}

/// Interval, timeout and close timeout in ms, a 1 s connect timeout, fixed backoff.
pub fn config(role: Role, interval: u64, timeout: u64, close: u64) -> Config {
    config_connect(role, interval, timeout, close, 1000)
}

/// [`config`] with the connect timeout in ms too.
pub fn config_connect(role: Role, interval: u64, timeout: u64, close: u64, connect: u64) -> Config {
    Config::builder()
        .role(role)
        .ping_interval(ms(interval))
        .pong_timeout(ms(timeout))
        .close_timeout(ms(close))
        .connect_timeout(ms(connect))
        .backoff(backoff(100, 400, None))
        .build()
        .expect("valid test config")
}

pub fn options(role: Role, interval: u64, timeout: u64, close: u64) -> Options {
    Options::new(config(role, interval, timeout, close)).seed(1)
}

/// A connected client/server WebSocket pair over an in-memory pipe of `capacity`
/// bytes: no I/O driver involved, so paused-clock tests are exact.
pub async fn duplex_pair(
    capacity: usize,
) -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (a, b) = tokio::io::duplex(capacity);
    let client = WebSocketStream::from_raw_socket(a, WsRole::Client, None).await;
    let server = WebSocketStream::from_raw_socket(b, WsRole::Server, None).await;
    (client, server)
}

/// A server on 127.0.0.1 (random port) accepting into `registry`; every accepted
/// connection echoes data back to its client. Returns the `ws://` URL.
pub async fn echo_server(options: Options, registry: Registry) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let options = options.clone();
            let registry = registry.clone();
            tokio::spawn(async move {
                let Ok((_id, conn)) = heartbeat_tokio::accept_tcp(tcp, &options, &registry).await
                else {
                    return;
                };
                let (tx, mut rx) = conn.split();
                while let Ok(msg) = rx.recv().await {
                    if tx.send(msg).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

// ----- Python peers --------------------------------------------------------------

/// Whether Python `websockets` is importable. Missing it fails the test under CI
/// (CI=true) and skips it locally.
pub fn python_websockets() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import websockets, sys; sys.exit(0 if int(websockets.__version__.split('.')[0]) >= 13 else 1)"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "python3 with websockets>=13 is required in CI (pip install 'websockets>=17,<18')"
            );
        }
        eprintln!("SKIPPED: python3 websockets not installed");
    }
    ok
}

/// A Python peer process; killed when dropped.
pub struct PyPeer {
    pub child: Child,
    pub port: Option<u16>,
}

impl PyPeer {
    /// Runs `tests/py/<script>` with `args`. If it prints `PORT <n>` first, `port` is set;
    /// waits for the first line either way (`READY`/`CONNECTED`/`PORT n`).
    pub async fn spawn(script: &str, args: &[&str]) -> PyPeer {
        let path = format!("{}/tests/py/{script}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(&path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn python3");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("python peer printed nothing within 10 s")
            .unwrap()
            .expect("python peer exited early");
        let port = first
            .strip_prefix("PORT ")
            .map(|p| p.trim().parse().unwrap());
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        PyPeer { child, port }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("python peer running")
    }

    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// SIGSTOP: the process hangs; its kernel keeps ACKing, so only heartbeats notice.
    pub fn stop(&self) {
        self.signal("STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal("CONT");
    }
}

// ----- a freezable proxy -----------------------------------------------------------

/// A TCP proxy on 127.0.0.1 to `upstream`. Each accepted connection gets a switch:
/// frozen, it stops forwarding in both directions without closing either socket
/// (the kernel still ACKs, exactly like a hung middlebox or peer).
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    switches: Arc<std::sync::Mutex<Vec<Arc<AtomicBool>>>>,
}

impl Proxy {
    pub async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let switches: Arc<std::sync::Mutex<Vec<Arc<AtomicBool>>>> = Default::default();
        let list = switches.clone();
        tokio::spawn(async move {
            while let Ok((down, _)) = listener.accept().await {
                let Ok(up) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let _ = down.set_nodelay(true);
                let _ = up.set_nodelay(true);
                let frozen = Arc::new(AtomicBool::new(false));
                list.lock().unwrap().push(frozen.clone());
                let (dr, dw) = down.into_split();
                let (ur, uw) = up.into_split();
                tokio::spawn(pump(dr, uw, frozen.clone()));
                tokio::spawn(pump(ur, dw, frozen));
            }
        });
        Proxy { addr, switches }
    }

    pub fn connections(&self) -> usize {
        self.switches.lock().unwrap().len()
    }

    /// Freezes the `i`-th connection accepted (0-based).
    pub fn freeze(&self, i: usize) {
        self.switches.lock().unwrap()[i].store(true, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if frozen.load(Ordering::SeqCst) {
            // Hold both sockets open and move nothing, for as long as the test runs.
            std::future::pending::<()>().await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.load(Ordering::SeqCst) {
            continue; // swallowed: a blackhole drops what is in flight
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
