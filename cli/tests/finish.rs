//! The CLI finishes what it started, on real processes and sockets: `ping` sends
//! its close and waits for it to go out before exiting (on a verdict and on
//! Ctrl-C), with every event in `--json`; `serve` closes every client with 1001 on
//! SIGINT or SIGTERM and exits 0; out of file descriptors, `serve` backs off
//! instead of spinning and resumes accepting by itself.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use heartbeat_test_support::raw::{Ending, RawPeer};
use serde_json::Value;

fn heartbeat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_heartbeat"))
}

fn kill(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// One `ping --json` run against a raw server that upgrades and never answers a
/// ping. `interrupt`: SIGINT after the first ping line, else wait for the
/// verdict. Returns what the server saw end the connection, ping's exit code and
/// its JSON events.
fn ping_run(interrupt: bool) -> (Ending, Option<i32>, Vec<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let server = thread::spawn(move || {
        let mut peer = RawPeer::accept(&listener).expect("upgrade");
        peer.await_close(Duration::from_secs(10))
    });
    let mut child = heartbeat()
        .args(["ping", &url, "--interval", "100ms", "--timeout", "200ms"])
        .args(["--close-timeout", "500ms", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn ping");
    let lines: Vec<Value> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .map(|l| serde_json::from_str(&l).expect("JSON line"))
        .inspect(|v: &Value| {
            if interrupt && v["event"] == "ping" && v["seq"] == 0 {
                kill(child.id(), "-INT");
            }
        })
        .collect();
    let status = child.wait().unwrap();
    (server.join().unwrap(), status.code(), lines)
}

fn has(lines: &[Value], event: &str) -> bool {
    lines.iter().any(|v| v["event"] == event)
}

#[test]
fn pings_close_frame_reaches_the_peer_in_every_one_of_20_runs() {
    // Against a peer that never answers: the verdict's 1011, then exit 1.
    for run in 0..20 {
        let (ending, code, lines) = ping_run(false);
        assert_eq!(ending, Ending::Close(Some(1011)), "run {run}: {lines:?}");
        assert_eq!(code, Some(1), "run {run}");
        assert!(has(&lines, "dead"), "run {run}: dead event lost: {lines:?}");
        assert!(has(&lines, "summary"), "run {run}: {lines:?}");
    }
}

#[test]
fn ping_interrupted_closes_with_1000_in_every_one_of_20_runs() {
    for run in 0..20 {
        let (ending, code, lines) = ping_run(true);
        assert_eq!(ending, Ending::Close(Some(1000)), "run {run}: {lines:?}");
        // This peer never answers: no pong came, so the exit is 1, as ping(8)'s.
        assert_eq!(code, Some(1), "run {run}");
        assert!(has(&lines, "summary"), "run {run}: {lines:?}");
    }
}

#[test]
fn a_peer_closing_with_an_invalid_code_is_reported_in_json_in_every_one_of_20_runs() {
    for run in 0..20 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = thread::spawn(move || {
            let mut peer = RawPeer::accept(&listener).expect("upgrade");
            peer.send_close(999, b"").unwrap();
            peer.await_close(Duration::from_secs(5))
        });
        let out = heartbeat()
            .args(["ping", &url, "--interval", "100ms", "--json"])
            .output()
            .expect("run ping");
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        // 999 may never be on the wire: the close is answered with 1002.
        assert_eq!(
            server.join().unwrap(),
            Ending::Close(Some(1002)),
            "run {run}"
        );
        assert!(has(&lines, "dead"), "run {run}: dead event lost: {lines:?}");
        assert!(has(&lines, "summary"), "run {run}: {lines:?}");
        assert_eq!(out.status.code(), Some(3), "run {run}");
    }
}

/// `heartbeat serve --json` on a free port with `extra` options; returns the
/// child, its address and its later stdout lines.
fn serve(extra: &[&str]) -> (Child, String, mpsc::Receiver<Value>) {
    serve_with(heartbeat(), extra)
}

fn serve_with(mut cmd: Command, extra: &[&str]) -> (Child, String, mpsc::Receiver<Value>) {
    let mut child = cmd
        .args(["serve", "--bind", "127.0.0.1:0", "--json"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let v: Value = serde_json::from_str(&first).expect("listening line");
    let addr = v["addr"].as_str().expect("addr").to_owned();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        }
    });
    (child, addr, rx)
}

/// The next `name` event within `wait`; every event read on the way is kept in
/// `seen`.
fn wait_for(
    events: &mpsc::Receiver<Value>,
    seen: &mut Vec<Value>,
    name: &str,
    wait: Duration,
) -> Value {
    let end = Instant::now() + wait;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(v) => {
                seen.push(v.clone());
                if v["event"] == name {
                    return v;
                }
            }
            Err(_) => panic!("no {name} event within {wait:?}"),
        }
    }
}

/// Kills the child when the test ends, even by a panic, so no server outlives it.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve_closes_clients_with_1001_on(sig: &str) {
    let (child, addr, events) = serve(&["--interval", "200ms", "--timeout", "1s"]);
    let mut child = KillOnDrop(child);
    let mut seen = Vec::new();
    let addr = addr.parse().unwrap();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let mut peer = RawPeer::connect(addr).expect("connect");
            thread::spawn(move || peer.await_close(Duration::from_secs(10)))
        })
        .collect();
    for _ in 0..3 {
        wait_for(&events, &mut seen, "connected", Duration::from_secs(5));
    }
    kill(child.0.id(), sig);
    let status = child.0.wait().unwrap();
    for c in clients {
        assert_eq!(c.join().unwrap(), Ending::Close(Some(1001)), "{sig}");
    }
    assert_eq!(status.code(), Some(0), "{sig}");
}

#[test]
fn serve_closes_every_client_with_1001_on_sigterm_then_exits_0() {
    serve_closes_clients_with_1001_on("-TERM");
}

#[test]
fn serve_closes_every_client_with_1001_on_sigint_then_exits_0() {
    serve_closes_clients_with_1001_on("-INT");
}

/// CPU seconds (user + system) the process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces): utime is the 12th
    // and stime the 13th of what follows ") ".
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[test]
fn out_of_descriptors_serve_backs_off_and_resumes_accepting_by_itself() {
    // 64 descriptors; each half-open handshake holds one for 1 s.
    let mut cmd = Command::new("prlimit");
    cmd.args(["--nofile=64:64", env!("CARGO_BIN_EXE_heartbeat")]);
    let (child, addr, events) = serve_with(cmd, &["--connect-timeout", "1s"]);
    let child = KillOnDrop(child);
    let mut seen = Vec::new();
    let started = Instant::now();
    // 100 connections that never send a byte: about 55 are accepted, the rest
    // wait in the backlog while accept fails with EMFILE.
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&addr).expect("connect"))
        .collect();
    let paused = wait_for(&events, &mut seen, "accept_paused", Duration::from_secs(5));
    assert!(
        paused["error"]
            .as_str()
            .unwrap()
            .contains("Too many open files"),
        "{paused}"
    );
    // CPU over a 600 ms window of exhaustion (before the first handshakes time
    // out at 1 s): a retry loop would spin a whole core (600 ms).
    let cpu_before = cpu_seconds(child.0.id());
    thread::sleep(Duration::from_millis(600));
    let cpu = cpu_seconds(child.0.id()) - cpu_before;
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "the window must end before the handshakes time out"
    );
    eprintln!("serve used {cpu:.2} CPU seconds in 600 ms of EMFILE");
    assert!(cpu < 0.15, "{cpu:.2} CPU seconds in 600 ms of EMFILE");
    // No new connection arrives: when the half-open handshakes time out and
    // free their descriptors, serve takes the backlog by itself.
    let resumed = wait_for(&events, &mut seen, "accept_resumed", Duration::from_secs(5));
    assert!(resumed["errors"].as_u64().unwrap() >= 1, "{resumed}");
    // Every connection in the backlog is accepted (and then times out too).
    let failed = |seen: &[Value]| {
        seen.iter()
            .filter(|v| v["event"] == "handshake_failed")
            .count()
    };
    let end = Instant::now() + Duration::from_secs(10);
    while failed(&seen) < 100 && Instant::now() < end {
        if let Ok(v) = events.recv_timeout(Duration::from_millis(200)) {
            seen.push(v);
        }
    }
    let handshakes = failed(&seen);
    assert_eq!(handshakes, 100, "every waiting connection was accepted");
    drop(idle);
    // And a well-behaved client is served.
    let mut peer = RawPeer::connect(addr.parse().unwrap()).expect("served after the episode");
    peer.send(true, heartbeat_test_support::raw::TEXT, b"hi")
        .unwrap();
    let echo = std::iter::from_fn(|| peer.read_frame().unwrap())
        .find(|f| f.opcode == heartbeat_test_support::raw::TEXT)
        .expect("the echo");
    assert_eq!(echo.payload, b"hi");
    drop(child);
}
