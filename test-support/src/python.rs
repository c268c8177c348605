//! Python `websockets` (17.x) peers for interop tests.
//!
//! Every peer runs in its own `python3` process so a test can `SIGSTOP` it: its
//! kernel keeps the TCP connections up and ACKs everything, so only an
//! application-level ping notices (the hung-peer case).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// Whether an interop test may run: `true` if `python3` can import `websockets`
/// 17.x. Otherwise it **panics when `CI=true`** (CI installs it, so its absence is a
/// broken setup, not a reason to skip) and prints why the test is skipped.
pub fn require_websockets(test: &str) -> bool {
    match websockets_version() {
        Ok(v) if v.starts_with("17.") => true,
        found => {
            let why = match found {
                Ok(v) => format!("python websockets {v} found, 17.x needed"),
                Err(e) => format!("python websockets unavailable: {e}"),
            };
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test}: {why} (CI=true: interop tests must run; pip install 'websockets>=17,<18')");
            }
            eprintln!("SKIPPED {test}: {why}");
            false
        }
    }
}

/// The installed `websockets` version, or why there is none.
pub fn websockets_version() -> Result<String, String> {
    let out = Command::new("python3")
        .args(["-c", "import websockets; print(websockets.__version__)"])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A running Python peer process. Dropping it resumes (if stopped), kills and
/// reaps the process.
pub struct PyPeer {
    child: Child,
    lines: Receiver<String>,
    /// The server's address (for [`PyPeer::echo_server`]).
    pub addr: Option<SocketAddr>,
}

impl PyPeer {
    /// An echo server on `127.0.0.1` (random port). It answers pings (as every
    /// `websockets` peer does) and echoes messages. `ping_interval`: the server's own
    /// keepalive (`None`: it sends no pings, so only our side detects anything).
    pub fn echo_server(ping_interval: Option<Duration>) -> std::io::Result<PyPeer> {
        Self::echo_server_in(None, Ipv4Addr::LOCALHOST.into(), ping_interval)
    }

    /// Like [`echo_server`](Self::echo_server), listening on `host` (random port),
    /// run inside network namespace `netns` if given (`ip netns exec`, which keeps
    /// the pid, so [`stop`](Self::stop) still reaches the Python process).
    pub fn echo_server_in(
        netns: Option<&str>,
        host: IpAddr,
        ping_interval: Option<Duration>,
    ) -> std::io::Result<PyPeer> {
        let pi = ping_interval.map_or("none".to_owned(), |d| d.as_secs_f64().to_string());
        let mut peer = Self::spawn(netns, SERVER, &[&pi, &host.to_string()])?;
        let line = peer.wait_for("PORT ", STARTUP)?;
        let port: u16 = line[5..].trim().parse().map_err(invalid)?;
        peer.addr = Some(SocketAddr::new(host, port));
        Ok(peer)
    }

    /// One process holding `n` client connections to `url` (`ws://127.x.x.x:port/`),
    /// each echoing what it receives, with no keepalive of its own. Returns once all
    /// are connected. The process prints `CLOSED <i> <code>` as connections end.
    pub fn clients(url: &str, n: usize) -> std::io::Result<PyPeer> {
        Self::clients_in(None, url, n)
    }

    /// Like [`clients`](Self::clients), run inside network namespace `netns` if given.
    pub fn clients_in(netns: Option<&str>, url: &str, n: usize) -> std::io::Result<PyPeer> {
        let mut peer = Self::spawn(netns, CLIENTS, &[url, &n.to_string()])?;
        peer.wait_for("CONNECTED", STARTUP)?;
        Ok(peer)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `SIGSTOP`: the process hangs; its kernel keeps ACKing.
    pub fn stop(&self) {
        let _ = crate::signal::stop(self.pid());
    }

    /// `SIGCONT`: the process resumes.
    pub fn resume(&self) {
        let _ = crate::signal::resume(self.pid());
    }

    /// Waits up to `timeout` for an output line starting with `prefix`; returns it.
    pub fn wait_for(&mut self, prefix: &str, timeout: Duration) -> std::io::Result<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(_) => {}
                Err(_) => {
                    let status = self.child.try_wait().ok().flatten();
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no line starting with {prefix:?} (exit status: {status:?})"),
                    ));
                }
            }
        }
    }

    /// Output lines printed so far and not yet consumed.
    pub fn drain_lines(&mut self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    fn spawn(netns: Option<&str>, script: &str, args: &[&str]) -> std::io::Result<PyPeer> {
        let mut cmd = match netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, "python3"]);
                cmd
            }
            None => Command::new("python3"),
        };
        let mut child = cmd
            .arg("-u")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| invalid("no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(PyPeer {
            child,
            lines: rx,
            addr: None,
        })
    }
}

impl Drop for PyPeer {
    fn drop(&mut self) {
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

const STARTUP: Duration = Duration::from_secs(15);

const SERVER: &str = r#"
import asyncio, sys
from websockets.asyncio.server import serve

async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except Exception:
        pass

async def main():
    pi = None if sys.argv[1] == "none" else float(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    async with serve(echo, host, 0, ping_interval=pi, ping_timeout=pi,
                     close_timeout=1) as server:
        print("PORT", server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
"#;

const CLIENTS: &str = r#"
import asyncio, sys
from websockets.asyncio.client import connect

async def one(uri, i, ready):
    try:
        async with connect(uri, ping_interval=None, close_timeout=1) as ws:
            ready.release()
            try:
                async for message in ws:
                    await ws.send(message)
            except Exception:
                pass
            print("CLOSED", i, ws.close_code, flush=True)
    except Exception as e:
        print("FAILED", i, repr(e), flush=True)
        ready.release()

async def main():
    uri, n = sys.argv[1], int(sys.argv[2])
    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(one(uri, i, ready)) for i in range(n)]
    for _ in range(n):
        await ready.acquire()
    print("CONNECTED", n, flush=True)
    await asyncio.gather(*tasks)
    print("ALL CLOSED", flush=True)
    await asyncio.Future()

asyncio.run(main())
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_server_starts_and_reports_its_port() {
        if !require_websockets("the_echo_server_starts_and_reports_its_port") {
            return;
        }
        let peer = PyPeer::echo_server(None).unwrap();
        let addr = peer.addr.unwrap();
        assert!(addr.ip().is_loopback());
        std::net::TcpStream::connect(addr).unwrap();
    }
}
