//! The `heartbeat` binary, run as a user runs it: spawned processes on loopback.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

fn heartbeat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_heartbeat"))
}

/// JSON lines of a finished run.
fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn events<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["event"] == name).collect()
}

/// `heartbeat ping URL --interval 100ms --json EXTRA...`, run to completion.
fn ping_json(url: &str, extra: &[&str]) -> Output {
    heartbeat()
        .args(["ping", url, "--interval", "100ms", "--json"])
        .args(extra)
        .output()
        .expect("run ping")
}

/// A `heartbeat serve` process on a free port; killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// `serve --json` at I = 200 ms, T = 500 ms; its output after the address is not read.
    fn start(extra: &[&str]) -> Server {
        let mut extra = extra.to_vec();
        extra.push("--json");
        Server::start_watched(&extra).0
    }

    /// [`Server::start`], and every later stdout line on a channel (read by a thread).
    fn start_watched(extra: &[&str]) -> (Server, mpsc::Receiver<String>) {
        let mut child = heartbeat()
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--interval",
                "200ms",
                "--timeout",
                "500ms",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let json = extra.contains(&"--json");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut first = String::new();
        stdout
            .read_line(&mut first)
            .expect("serve prints its address");
        let addr = if json {
            let v: Value = serde_json::from_str(&first).expect("JSON");
            assert_eq!(v["event"], "listening");
            v["addr"].as_str().expect("addr").to_owned()
        } else {
            // "listening on ws://ADDR  (heartbeat every ...)"
            let rest = first.split("ws://").nth(1).expect("an address");
            rest.split_whitespace().next().expect("addr").to_owned()
        };
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let url = format!("ws://{addr}/");
        (Server { child, url }, lines)
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.signal_cont_and_kill();
    }
}

impl Server {
    fn signal_cont_and_kill(&mut self) -> std::io::Result<()> {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        self.child.kill()?;
        self.child.wait().map(|_| ())
    }
}

#[test]
fn ping_against_serve_prints_rtt_lines_and_a_summary_and_exits_0() {
    let server = Server::start(&[]);
    let out = heartbeat()
        .args([
            "ping",
            &server.url,
            "--count",
            "3",
            "--interval",
            "100ms",
            "--timeout",
            "1s",
        ])
        .output()
        .expect("run ping");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(text.matches("pong seq=").count(), 3, "{text}");
    assert!(text.contains("rtt="), "{text}");
    assert!(text.contains("3 pongs received"), "{text}");
    assert!(text.contains("rtt min/avg/max/mdev = "), "{text}");
}

#[test]
fn ping_json_has_an_event_field_on_every_line() {
    let server = Server::start(&[]);
    let out = ping_json(&server.url, &["--count", "2"]);
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out);
    assert!(lines.iter().all(|l| l["event"].is_string()));
    assert_eq!(events(&lines, "connected").len(), 1);
    let pongs = events(&lines, "pong");
    assert_eq!(pongs.len(), 2);
    assert!(pongs
        .iter()
        .all(|p| p["rtt_ms"].as_f64().is_some_and(|r| r >= 0.0)));
    let summary = events(&lines, "summary");
    assert_eq!(summary[0]["received"], 2);
}

#[test]
fn ping_against_a_stopped_server_exits_1_within_the_bound() {
    let server = Server::start(&[]);
    let mut child = heartbeat()
        .args([
            "ping",
            &server.url,
            "--interval",
            "200ms",
            "--timeout",
            "500ms",
            "--close-timeout",
            "300ms",
            "--json",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run ping");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    // Wait for the first pong, then hang the server.
    loop {
        let line = lines.next().expect("output").expect("utf-8");
        if line.contains("\"pong\"") {
            break;
        }
    }
    server.signal("-STOP");
    let stopped = Instant::now();
    let status = child.wait().expect("ping exits");
    let took = stopped.elapsed();
    let rest: Vec<Value> = lines
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    assert_eq!(status.code(), Some(1), "{rest:?}");
    let dead = events(&rest, "dead");
    assert_eq!(dead[0]["reason"], "pong_timeout");
    // interval + timeout = 700 ms, then the 1011 close waits close_timeout (300 ms)
    // for the hung server's reply, plus 500 ms slack for scheduling on a busy machine.
    assert!(
        took < Duration::from_millis(1500),
        "exited {took:?} after the stop"
    );
}

#[test]
fn ping_with_reconnect_keeps_going_after_a_hang() {
    let server = Server::start(&[]);
    let mut child = heartbeat()
        .args([
            "ping",
            &server.url,
            "--interval",
            "200ms",
            "--timeout",
            "400ms",
            "--reconnect",
            "--json",
            "--count",
            "3",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run ping");
    let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut seen = Vec::new();
    let mut stopped = false;
    for line in lines.map_while(Result::ok) {
        let v: Value = serde_json::from_str(&line).expect("JSON");
        if v["event"] == "pong" && !stopped {
            server.signal("-STOP");
            stopped = true;
        }
        if v["event"] == "dead" {
            server.signal("-CONT");
        }
        seen.push(v);
    }
    assert_eq!(child.wait().expect("exit").code(), Some(0), "{seen:?}");
    assert_eq!(events(&seen, "dead").len(), 1, "{seen:?}");
    assert!(!events(&seen, "reconnecting").is_empty());
    assert!(events(&seen, "connected").len() >= 2);
}

#[test]
fn ping_app_json_against_serve_app_json() {
    let server = Server::start(&["--app-json"]);
    let out = ping_json(&server.url, &["--app-json", "--count", "2"]);
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out);
    assert_eq!(events(&lines, "pong").len(), 2, "{lines:?}");
}

/// A `heartbeat ping` client of `server` pinging every 1 s (so that the server's own
/// pings, every 200 ms, dominate); killed on drop.
struct PingClient(Child);

impl PingClient {
    fn start(server: &Server) -> PingClient {
        let child = heartbeat()
            .args(["ping", &server.url, "--interval", "1s", "--json"])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn ping");
        PingClient(child)
    }
}

impl Drop for PingClient {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_json_reports_each_connections_pings_and_pongs() {
    let (server, lines) = Server::start_watched(&["--json"]);
    let _client = PingClient::start(&server);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen: Vec<Value> = Vec::new();
    while events(&seen, "pong").len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no third pong within 20 s: {seen:#?}"));
        seen.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")));
    }
    assert!(events(&seen, "dead").is_empty(), "{seen:#?}");
    let connected = events(&seen, "connected");
    assert_eq!(connected.len(), 1, "{seen:#?}");
    let conn = connected[0]["conn"].as_u64().expect("a connection id");
    let who = &connected[0]["who"];
    let pings = events(&seen, "ping");
    let pongs = events(&seen, "pong");
    for e in pings.iter().chain(&pongs) {
        assert_eq!(e["conn"], conn, "{e}");
        assert_eq!(&e["who"], who, "{e}");
        assert!(e["t"].is_f64(), "{e}");
    }
    // Pings count from 0; every pong answers a ping printed before it, with an RTT.
    let ping_seqs: Vec<u64> = pings.iter().filter_map(|p| p["seq"].as_u64()).collect();
    assert_eq!(
        ping_seqs,
        (0..ping_seqs.len() as u64).collect::<Vec<_>>(),
        "{seen:#?}"
    );
    for (k, pong) in pongs.iter().enumerate() {
        let seq = pong["seq"].as_u64().expect("seq");
        assert!(ping_seqs.contains(&seq), "{pong} answers no ping");
        let rtt = pong["rtt_ms"].as_f64().expect("rtt_ms");
        // Loopback; generous for a debug build on a busy machine.
        assert!((0.0..500.0).contains(&rtt), "{pong}");
        if k > 0 {
            assert!(seq > pongs[k - 1]["seq"].as_u64().unwrap_or(0), "{seen:#?}");
        }
    }
}

#[test]
fn serve_text_logs_connections_but_not_every_ping() {
    let (server, lines) = Server::start_watched(&[]);
    let client = PingClient::start(&server);
    let first = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("a connect line");
    assert!(
        first.contains("client1") && first.contains("connected from"),
        "{first}"
    );
    // Five of the server's ping intervals (200 ms) with a healthy client.
    std::thread::sleep(Duration::from_secs(1));
    drop(client);
    drop(server); // killed: the reader thread's channel ends
    let rest: Vec<String> = lines.iter().collect();
    // At most the client's departure; no line per ping or pong.
    assert!(rest.len() <= 1, "{first}\n{rest:#?}");
    assert!(
        !rest
            .iter()
            .any(|l| l.contains("ping") || l.contains("pong")),
        "{rest:#?}"
    );
}

#[test]
fn ping_to_nothing_listening_exits_3() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = heartbeat()
        .args(["ping", &format!("ws://127.0.0.1:{port}/"), "--json"])
        .output()
        .expect("run ping");
    assert_eq!(out.status.code(), Some(3));
    assert!(!events(&json_lines(&out), "connect_failed").is_empty());
}

#[test]
fn connect_timeout_bounds_a_server_that_never_answers_the_upgrade() {
    // Accepts TCP, never answers the WebSocket upgrade. Before the machine owned the
    // connect timer, `ping` waited a fixed 10 s here whatever the options said.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let _hold = std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().take(4).collect();
        std::thread::sleep(Duration::from_secs(5));
        drop(held);
    });
    let start = Instant::now();
    let out = ping_json(&url, &["--connect-timeout", "300ms"]);
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(3), "could not connect");
    let lines = json_lines(&out);
    let failed = events(&lines, "connect_failed");
    assert!(!failed.is_empty());
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("connect timeout"),
        "{failed:?}"
    );
    assert!(took < Duration::from_millis(2500), "took {took:?}");
}

#[test]
fn bad_options_get_a_one_line_error_and_exit_2() {
    for args in [
        vec!["ping", "ws://127.0.0.1:1/", "--interval", "fast"],
        vec!["ping", "ws://127.0.0.1:1/", "--timeout", "0s"],
        vec!["ping", "ws://127.0.0.1:1/", "--interval", "1ms"],
        vec!["ping", "ws://127.0.0.1:1/", "--liveness", "maybe"],
        vec!["serve", "--bind", "not-an-address"],
        vec!["--no-such-option"],
    ] {
        let out = heartbeat().args(&args).output().expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err:?}");
        assert!(err.starts_with("heartbeat: "), "{args:?}: {err}");
        // It names the offending option (or value).
        let named = args.iter().any(|a| a.starts_with("--") && err.contains(a));
        assert!(named, "{args:?}: {err}");
    }
    let out = heartbeat()
        .args(["ping", "ws://127.0.0.1:1/", "--interval", "1ms"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--interval"));
}

#[test]
fn help_explains_every_option() {
    let out = heartbeat().args(["ping", "--help"]).output().expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--count",
        "--reconnect",
        "--app-json",
        "--interval",
        "--timeout",
        "--close-timeout",
        "--liveness",
        "--adaptive",
        "--json",
    ] {
        assert!(help.contains(option), "{option} missing from --help");
    }
    assert!(help.contains("Exit codes"));
}

#[test]
fn the_demo_detects_every_fault_within_its_bound_and_reconnects() {
    let started = Instant::now();
    let out = heartbeat()
        .args(["demo", "--json"])
        .output()
        .expect("run demo");
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(took < Duration::from_secs(30), "demo took {took:?}");
    let lines = json_lines(&out);
    let dead = events(&lines, "dead");
    let detected: Vec<_> = dead.iter().filter(|d| d["fault"].is_string()).collect();
    // alpha's half-open link, then all three clients for the hung server.
    assert!(
        detected
            .iter()
            .any(|d| d["who"] == "alpha" && d["fault"] == "half-open link"),
        "{dead:?}"
    );
    for who in ["alpha", "beta", "gamma"] {
        assert!(
            detected
                .iter()
                .any(|d| d["who"] == who && d["fault"] == "hung server"),
            "{who}: {dead:?}"
        );
    }
    for d in &detected {
        assert_eq!(d["within_bound"], true, "{d}");
        assert_eq!(d["reason"], "pong_timeout", "{d}");
    }
    assert!(
        !events(&lines, "closed").is_empty(),
        "close codes are shown"
    );
    assert!(!events(&lines, "reconnecting").is_empty());
    // Every client is connected again after the server resumed.
    let heal = lines
        .iter()
        .position(|l| l["event"] == "heal")
        .expect("heal event");
    for who in ["alpha", "beta", "gamma"] {
        assert!(
            lines[heal..]
                .iter()
                .any(|l| l["event"] == "connected" && l["who"] == who),
            "{who} did not reconnect after the heal"
        );
    }
    let summaries = events(&lines, "summary");
    assert_eq!(summaries.len(), 3);
    assert!(
        summaries
            .iter()
            .all(|s| s["echoes"].as_u64().unwrap_or(0) > 5),
        "every client exchanged messages: {summaries:?}"
    );
    assert!(summaries
        .iter()
        .all(|s| s["pongs"].as_u64().unwrap_or(0) > 3));
    assert!(
        !events(&lines, "server_dead").is_empty(),
        "the server's own detections are shown"
    );
}
