//! `heartbeat connect`, websocat with a real heartbeat, run as a user runs it:
//! stdin lines out as text messages, the peer's messages on stdout, heartbeat
//! status on stderr, ping's exit codes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{heartbeat, mute_server, stderr, stdout, Server};
use serde_json::Value;

#[test]
fn stdin_lines_go_to_an_echo_server_and_come_back_on_stdout_with_status_on_stderr() {
    let server = Server::start();
    let mut child = heartbeat()
        .args(["connect", &server.url, "--json", "--linger", "300ms"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn connect");
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(b"hello\nwire \xc3\xa9t\xc3\xa9\n/all everyone\n")
        .expect("write");
    drop(stdin); // EOF: linger, then close with 1000
    let out = child.wait_with_output().expect("exit");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Echoed in order (and the broadcast back to its only client), nothing else.
    assert_eq!(stdout(&out), "hello\nwire été\neveryone\n");
    let status: Vec<Value> = stderr(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let names: Vec<&str> = status.iter().filter_map(|v| v["event"].as_str()).collect();
    assert_eq!(names.first(), Some(&"connected"), "{names:?}");
    assert!(names.contains(&"pong"), "the heartbeat runs: {names:?}");
    assert!(
        status
            .iter()
            .any(|v| v["event"] == "closed" && v["code"] == 1000),
        "{status:#?}"
    );
}

#[test]
fn a_peer_that_never_answers_ends_the_session_with_exit_1() {
    let url = mute_server();
    let started = Instant::now();
    let mut child = heartbeat()
        .args(["connect", &url, "-i", "100ms", "-W", "200ms"])
        .stdin(Stdio::piped()) // held open: only the heartbeat can end this
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn connect");
    let _stdin = child.stdin.take();
    let out = child.wait_with_output().expect("exit");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no pong"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    // First ping at connect + 200 ms timeout, with slack for a busy machine.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn nothing_listening_exits_3_with_one_line_on_stderr() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = heartbeat()
        .args(["connect", &format!("ws://127.0.0.1:{port}/")])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).starts_with("heartbeat: cannot connect to "));
}

/// Lines from a child's pipe, read by a thread.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no line: {what}"));
        if pred(&line) {
            return line;
        }
    }
}

#[test]
fn with_reconnect_a_hung_server_is_left_and_the_session_goes_on_on_the_next_connection() {
    let server = Server::start();
    let mut child = heartbeat()
        .args([
            "connect",
            &server.url,
            "--reconnect",
            "--json",
            "-i",
            "100ms",
            "-W",
            "300ms",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn connect");
    let mut stdin = child.stdin.take().expect("piped");
    let out = lines_of(child.stdout.take().expect("piped"));
    let status = lines_of(child.stderr.take().expect("piped"));
    let is = |name: &'static str| move |l: &str| l.contains(&format!("\"event\":\"{name}\""));

    wait_line(&status, "connected", is("connected"));
    writeln!(stdin, "one").expect("write");
    assert_eq!(wait_line(&out, "echo of one", |_| true), "one");
    server.signal("-STOP");
    wait_line(&status, "dead", is("dead"));
    wait_line(&status, "reconnecting", is("reconnecting"));
    server.signal("-CONT");
    wait_line(&status, "connected again", is("connected"));
    writeln!(stdin, "two").expect("write");
    assert_eq!(wait_line(&out, "echo of two", |_| true), "two");
    drop(stdin);
    assert_eq!(child.wait().expect("exit").code(), Some(0));
}

#[test]
fn stdin_ending_before_any_pong_exits_1_as_ping_does() {
    let url = mute_server();
    let out = heartbeat()
        .args(["connect", &url, "--linger", "100ms"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}
