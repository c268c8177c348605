//! Python `websockets` (17.x) peers for interop tests.
//!
//! Every peer runs in its own `python3` process so a test can `SIGSTOP` it: its
//! kernel keeps the TCP connections up and ACKs everything, so only an
//! application-level ping notices (the hung-peer case).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
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

/// What the Python server runs: its own keepalive and its JSON heartbeat mode.
///
/// The default is a plain echo server with no keepalive of its own (it answers
/// pings, as every `websockets` peer does, but sends none), so only our side's
/// heartbeat is under test.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerOptions {
    /// `websockets`' own ping interval (`None`: it sends no pings).
    pub ping_interval: Option<Duration>,
    /// How long `websockets` waits for the pong to its ping (`None`: forever).
    pub ping_timeout: Option<Duration>,
    /// Answer `{"type":"ping","timestamp":t}` text messages with the matching
    /// `{"type":"pong",...}` instead of echoing them; the text `pongs?` is answered
    /// with `pongs=<n>`, the number of our JSON pongs that matched its JSON pings.
    pub json: bool,
    /// With [`json`](Self::json): send a JSON ping this often (`None`: never).
    pub json_ping_interval: Option<Duration>,
    /// Serve `wss://` with this PEM certificate chain and key (`None`: `ws://`).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The subprotocols the server accepts, in its order of preference.
    pub subprotocols: Vec<String>,
    /// Print `REQUEST {"path","authorization","offered","subprotocol"}` for every
    /// accepted connection (read them with [`PyPeer::wait_for`]).
    pub record: bool,
}

impl ServerOptions {
    /// Turns the server's own keepalive on: a ping every `interval`, a pong
    /// expected within `timeout`.
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.ping_interval = Some(interval);
        self.ping_timeout = Some(timeout);
        self
    }

    /// Turns JSON heartbeats on: answer JSON pings and, if `ping_interval` is
    /// given, send JSON pings that often.
    pub fn json(mut self, ping_interval: Option<Duration>) -> Self {
        self.json = true;
        self.json_ping_interval = ping_interval;
        self
    }

    /// Serves `wss://` with `cert` and `key` (PEM files).
    pub fn tls(mut self, cert: &Path, key: &Path) -> Self {
        self.tls = Some((cert.to_owned(), key.to_owned()));
        self
    }

    /// Accepts `protocol` as a subprotocol (call again for more).
    pub fn subprotocol(mut self, protocol: &str) -> Self {
        self.subprotocols.push(protocol.to_owned());
        self
    }

    /// Records every accepted request (see [`record`](Self::record)).
    pub fn record(mut self) -> Self {
        self.record = true;
        self
    }

    /// The command-line arguments of `py/server.py` for these options.
    fn args(&self, host: IpAddr) -> Vec<String> {
        let mut args = vec!["--host".to_owned(), host.to_string()];
        let secs = |d: Duration| d.as_secs_f64().to_string();
        if let Some(d) = self.ping_interval {
            args.extend(["--ping-interval".to_owned(), secs(d)]);
        }
        if let Some(d) = self.ping_timeout {
            args.extend(["--ping-timeout".to_owned(), secs(d)]);
        }
        if self.json {
            args.push("--json".to_owned());
        }
        if let Some(d) = self.json_ping_interval {
            args.extend(["--json-ping-interval".to_owned(), secs(d)]);
        }
        if let Some((cert, key)) = &self.tls {
            let path = |p: &PathBuf| p.to_string_lossy().into_owned();
            args.extend(["--tls-cert".to_owned(), path(cert)]);
            args.extend(["--tls-key".to_owned(), path(key)]);
        }
        for p in &self.subprotocols {
            args.extend(["--subprotocol".to_owned(), p.clone()]);
        }
        if self.record {
            args.push("--record".to_owned());
        }
        args
    }
}

/// A running Python peer process. Dropping it resumes (if stopped), kills and
/// reaps the process.
///
/// Starting one blocks until the process reports that it is ready (its port, or
/// its connections), which takes up to a second or so. An async test whose own
/// runtime must serve the peer meanwhile (our server accepting Python clients)
/// starts it off the runtime, e.g. with `tokio::task::spawn_blocking`.
pub struct PyPeer {
    child: Child,
    lines: Receiver<String>,
    /// The server's address (for [`PyPeer::echo_server`] and [`PyPeer::server`]).
    pub addr: Option<SocketAddr>,
    /// Whether the server speaks `wss://`.
    tls: bool,
}

impl PyPeer {
    /// An echo server on `127.0.0.1` (random port). It answers pings (as every
    /// `websockets` peer does) and echoes messages. `ping_interval`: the server's own
    /// keepalive, with a pong timeout of the same length (`None`: it sends no pings,
    /// so only our side detects anything).
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
        let options = match ping_interval {
            Some(d) => ServerOptions::default().keepalive(d, d),
            None => ServerOptions::default(),
        };
        Self::server_in(netns, host, &options)
    }

    /// A server on `127.0.0.1` (random port) running `options`; see
    /// [`ServerOptions`]. [`addr`](Self::addr) holds its address.
    pub fn server(options: &ServerOptions) -> std::io::Result<PyPeer> {
        Self::server_in(None, Ipv4Addr::LOCALHOST.into(), options)
    }

    /// Like [`server`](Self::server), listening on `host` (random port), run inside
    /// network namespace `netns` if given.
    pub fn server_in(
        netns: Option<&str>,
        host: IpAddr,
        options: &ServerOptions,
    ) -> std::io::Result<PyPeer> {
        let args = options.args(host);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut peer = Self::spawn(netns, SERVER, &args)?;
        let line = peer.wait_for("PORT ", STARTUP)?;
        let port: u16 = line[5..].trim().parse().map_err(invalid)?;
        peer.addr = Some(SocketAddr::new(host, port));
        peer.tls = options.tls.is_some();
        Ok(peer)
    }

    /// The server's `ws://` (or, with TLS, `wss://`) URL (for a peer started as a
    /// server).
    pub fn url(&self) -> Option<String> {
        let scheme = if self.tls { "wss" } else { "ws" };
        self.addr.map(|a| format!("{scheme}://{a}/"))
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

    /// Like [`clients`](Self::clients), each client pinging the server `every`
    /// (no timeout: the pings are traffic, never a verdict of the client's).
    pub fn pinging_clients(url: &str, n: usize, every: Duration) -> std::io::Result<PyPeer> {
        let every = every.as_secs_f64().to_string();
        let mut peer = Self::spawn(None, CLIENTS, &[url, &n.to_string(), &every])?;
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
            tls: false,
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

/// The server: `py/server.py` (flags in [`ServerOptions::args`]).
const SERVER: &str = include_str!("../py/server.py");

/// Many clients in one process: `py/clients.py URL N`.
const CLIENTS: &str = include_str!("../py/clients.py");

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

    #[test]
    fn server_options_become_the_flags_of_the_server_script() {
        let host = IpAddr::from(Ipv4Addr::LOCALHOST);
        assert_eq!(ServerOptions::default().args(host), ["--host", "127.0.0.1"]);
        let options = ServerOptions::default()
            .keepalive(Duration::from_millis(200), Duration::from_millis(500))
            .json(Some(Duration::from_millis(250)));
        assert_eq!(
            options.args(host),
            [
                "--host",
                "127.0.0.1",
                "--ping-interval",
                "0.2",
                "--ping-timeout",
                "0.5",
                "--json",
                "--json-ping-interval",
                "0.25"
            ]
        );
        for flag in [
            "--ping-interval",
            "--ping-timeout",
            "--json-ping-interval",
            "--tls-cert",
            "--tls-key",
            "--subprotocol",
            "--record",
        ] {
            assert!(SERVER.contains(flag), "server.py takes {flag}");
        }
    }

    #[test]
    fn a_server_with_keepalive_and_json_starts_and_reports_its_url() {
        if !require_websockets("a_server_with_keepalive_and_json_starts_and_reports_its_url") {
            return;
        }
        let options = ServerOptions::default()
            .keepalive(Duration::from_millis(200), Duration::from_millis(500))
            .json(Some(Duration::from_millis(200)));
        let peer = PyPeer::server(&options).unwrap();
        let addr = peer.addr.unwrap();
        assert_eq!(peer.url(), Some(format!("ws://{addr}/")));
        std::net::TcpStream::connect(addr).unwrap();
    }
}
