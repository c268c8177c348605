//! `heartbeat ping` and `serve` against real deployments, run as a user runs them:
//! bad URLs rejected at once with exit 2, `wss://` with a CA given by `--cacert`
//! (or `--insecure`, which says so), a certificate nobody vouched for ending the
//! run with one typed error, `-H`/`--subprotocol` seen by the server, and
//! `serve --tls-cert/--tls-key` serving `wss://`.
//!
//! Servers are Python `websockets` processes on loopback; certificates are made by
//! each test (rcgen).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use heartbeat_test_support::{require_websockets, PyPeer, ServerOptions, TestCerts};
use serde_json::Value;

fn heartbeat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_heartbeat"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn count(lines: &[Value], event: &str) -> usize {
    lines.iter().filter(|v| v["event"] == event).count()
}

/// `heartbeat ping URL -c 2 --interval 100ms --json EXTRA...`, to completion, or
/// killed after 10 s (a run that retries forever fails the test instead of
/// hanging it).
fn ping(url: &str, extra: &[&str]) -> Output {
    ping_env(url, extra, &[])
}

/// [`ping`] with `env` set in the child's environment.
fn ping_env(url: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let child = heartbeat()
        .args(["ping", url, "--count", "2", "--interval", "100ms", "--json"])
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ping");
    let pid = child.id();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if done_rx.recv_timeout(Duration::from_secs(10)).is_err() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    });
    let out = child.wait_with_output().expect("ping output");
    let _ = done_tx.send(());
    out
}

fn python_tls_server(certs: &TestCerts) -> PyPeer {
    PyPeer::server(&ServerOptions::default().tls(&certs.cert, &certs.key)).expect("python server")
}

#[test]
fn bad_urls_exit_2_at_once_naming_the_problem() {
    for (url, says) in [
        ("ws://127.0.0.1:99999/", "invalid port \"99999\""),
        ("http://127.0.0.1/", "unsupported scheme \"http\""),
        ("not a url", "not a WebSocket URL"),
        ("wss://", "no host"),
    ] {
        let start = Instant::now();
        let out = heartbeat().args(["ping", url]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{url}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(says), "{url}: {err}");
        assert_eq!(err.lines().count(), 1, "{url}: one line: {err}");
        assert!(start.elapsed() < Duration::from_secs(2), "{url}: at once");
    }
}

#[test]
fn a_malformed_header_or_subprotocol_exits_2() {
    let out = heartbeat()
        .args(["ping", "ws://127.0.0.1:1/", "-H", "no colon here"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--header"), "{}", stderr(&out));
    let out = heartbeat()
        .args(["ping", "ws://127.0.0.1:1/", "--subprotocol", "a b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--subprotocol"), "{}", stderr(&out));
}

#[test]
fn ping_wss_with_cacert_gets_its_pongs() {
    if !require_websockets("ping_wss_with_cacert_gets_its_pongs") {
        return;
    }
    let certs = TestCerts::new().unwrap();
    let server = python_tls_server(&certs);
    let url = server.url().unwrap();
    let out = ping(&url, &["--cacert", certs.ca.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json_lines(&out), "pong"), 2);
}

/// No flag: `wss://` is verified against the system's CA store. The test cannot
/// reach a public server, so it makes its CA the store, the way OpenSSL and
/// rustls-native-certs both let an operator point at one (`SSL_CERT_FILE`); the
/// same server with an empty store is refused.
#[test]
fn ping_wss_verifies_against_the_system_store_without_a_flag() {
    if !require_websockets("ping_wss_verifies_against_the_system_store_without_a_flag") {
        return;
    }
    let certs = TestCerts::new().unwrap();
    let server = python_tls_server(&certs);
    let url = server.url().unwrap();
    let store = certs.ca.to_str().unwrap();
    let out = ping_env(&url, &[], &[("SSL_CERT_FILE", store)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json_lines(&out), "pong"), 2);
    let empty = std::env::temp_dir().join(format!("hb-empty-store-{}.pem", std::process::id()));
    std::fs::write(&empty, "").unwrap();
    let out = ping_env(&url, &[], &[("SSL_CERT_FILE", empty.to_str().unwrap())]);
    let _ = std::fs::remove_file(&empty);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn an_untrusted_certificate_ends_ping_with_one_typed_error_even_with_reconnect() {
    if !require_websockets(
        "an_untrusted_certificate_ends_ping_with_one_typed_error_even_with_reconnect",
    ) {
        return;
    }
    let certs = TestCerts::new().unwrap();
    let server = python_tls_server(&certs);
    let url = server.url().unwrap();
    let start = Instant::now();
    let out = ping(&url, &["--reconnect"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(
        count(&lines, "connect_failed"),
        1,
        "no retry loop: {lines:?}"
    );
    let failed = lines
        .iter()
        .find(|v| v["event"] == "connect_failed")
        .unwrap();
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("certificate rejected"), "{error}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn insecure_connects_and_says_so_on_stderr() {
    if !require_websockets("insecure_connects_and_says_so_on_stderr") {
        return;
    }
    let certs = TestCerts::new().unwrap();
    let server = python_tls_server(&certs);
    let out = ping(&server.url().unwrap(), &["--insecure"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("not verified"), "{}", stderr(&out));
    assert_eq!(count(&json_lines(&out), "pong"), 2);
}

#[test]
fn headers_and_subprotocol_reach_the_server() {
    if !require_websockets("headers_and_subprotocol_reach_the_server") {
        return;
    }
    let mut server = PyPeer::server(&ServerOptions::default().subprotocol("v2.feed").record())
        .expect("python server");
    let url = format!("{}feed", server.url().unwrap());
    let out = ping(
        &url,
        &[
            "-H",
            "Authorization: Bearer t0k3n",
            "--subprotocol",
            "v1.feed",
            "--subprotocol",
            "v2.feed",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = server.wait_for("REQUEST ", Duration::from_secs(5)).unwrap();
    let seen: Value = serde_json::from_str(&line["REQUEST ".len()..]).unwrap();
    assert_eq!(seen["path"], "/feed");
    assert_eq!(seen["authorization"], "Bearer t0k3n");
    assert_eq!(seen["offered"], "v1.feed, v2.feed");
    assert_eq!(seen["subprotocol"], "v2.feed");
}

/// `heartbeat serve --json EXTRA...` on a free port; its address; killed on drop.
struct Serve(Child, String);

impl Serve {
    fn start(extra: &[&str]) -> Serve {
        let mut child = heartbeat()
            .args(["serve", "--bind", "127.0.0.1:0", "--json"])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let v: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(v["tls"], true, "{first}");
        Serve(child, v["addr"].as_str().unwrap().to_owned())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_with_a_certificate_serves_wss() {
    let certs = TestCerts::new().unwrap();
    let server = Serve::start(&[
        "--tls-cert",
        certs.cert.to_str().unwrap(),
        "--tls-key",
        certs.key.to_str().unwrap(),
    ]);
    let url = format!("wss://{}/", server.1);
    let out = ping(&url, &["--cacert", certs.ca.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(count(&json_lines(&out), "pong"), 2);
    // Plain ws:// to the same port is not a WebSocket server.
    let out = ping(&format!("ws://{}/", server.1), &[]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn serve_with_a_missing_key_file_exits_2_naming_it() {
    let certs = TestCerts::new().unwrap();
    let out = heartbeat()
        .args(["serve", "--bind", "127.0.0.1:0", "--tls-cert"])
        .arg(&certs.cert)
        .args(["--tls-key", "/nonexistent/key.pem"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/key.pem"),
        "{}",
        stderr(&out)
    );
}
