//! `heartbeat probe` on loopback, against a proxy that forgets flows idle for X
//! (silently, or with a reset): the probe finds X within 10 %, tells the two
//! apart, sees whether the server pings, and recommends settings.

mod common;

use std::time::{Duration, Instant};

use common::{events, heartbeat, json_lines, stderr, Server};
use heartbeat_test_support::{IdleMode, IdleProxy};
use serde_json::Value;

/// `probe URL --json` with the given extras; the final `probe` object.
fn probe(url: &str, extra: &[&str]) -> (Value, Duration) {
    let started = Instant::now();
    let out = heartbeat()
        .args(["probe", url, "--json", "-W", "1s", "--watch", "1s"])
        .args(extra)
        .output()
        .expect("run probe");
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let result = events(&lines, "probe")
        .first()
        .map(|v| (*v).clone())
        .unwrap_or_else(|| panic!("no probe result: {lines:#?}"));
    (result, took)
}

fn upstream() -> (Server, std::net::SocketAddr) {
    // Pings once an hour: its connections are idle unless we speak.
    let server = Server::start_pinging_every("1h");
    let addr = server
        .url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .parse()
        .expect("addr");
    (server, addr)
}

fn assert_within_10_percent(result: &Value, x: Duration) {
    let found = result["idle_timeout_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("no idle timeout found: {result:#}"));
    let want = x.as_secs_f64() * 1e3;
    assert!(
        (found - want).abs() <= 0.1 * want,
        "found {found} ms, path drops at {want} ms: {result:#}"
    );
}

#[test]
fn probe_finds_a_silent_idle_drop_within_10_percent() {
    let (_server, upstream) = upstream();
    let x = Duration::from_millis(1300);
    let proxy = IdleProxy::start(upstream, x, IdleMode::Silent).expect("proxy");
    let url = format!("ws://{}/", proxy.addr());
    let (result, took) = probe(&url, &["--max-idle", "4s"]);
    assert_within_10_percent(&result, x);
    assert_eq!(result["closes_idle"], "silent", "{result:#}");
    assert_eq!(result["answers_pings"], true, "{result:#}");
    assert_eq!(result["server_pings"], 0, "{result:#}");
    // Recommended: a ping well inside the idle timeout, a timeout with an RTT reason.
    let interval = result["recommend"]["interval_ms"]
        .as_f64()
        .expect("interval");
    assert!(interval > 0.0 && interval < 1300.0, "{result:#}");
    assert!(result["recommend"]["interval_reason"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    assert!(result["recommend"]["timeout_reason"]
        .as_str()
        .is_some_and(|r| r.contains("RTT p99")));
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn probe_finds_a_reset_on_idle_within_10_percent_and_says_rst() {
    let (_server, upstream) = upstream();
    let x = Duration::from_millis(1200);
    let proxy = IdleProxy::start(upstream, x, IdleMode::Rst).expect("proxy");
    let url = format!("ws://{}/", proxy.addr());
    let (result, _) = probe(&url, &["--max-idle", "4s"]);
    assert_within_10_percent(&result, x);
    assert_eq!(result["closes_idle"], "rst", "{result:#}");
}

#[test]
fn probe_tells_a_fin_on_idle_apart_and_times_it() {
    let (_server, upstream) = upstream();
    let x = Duration::from_millis(1200);
    let proxy = IdleProxy::start(upstream, x, IdleMode::Fin).expect("proxy");
    let url = format!("ws://{}/", proxy.addr());
    let (result, _) = probe(&url, &["--max-idle", "4s"]);
    assert_within_10_percent(&result, x);
    assert_eq!(result["closes_idle"], "fin", "{result:#}");
}

#[test]
fn a_server_that_answers_no_pings_is_said_so_and_no_idle_timeout_is_guessed() {
    let url = common::mute_server();
    let (result, _) = probe(&url, &["--max-idle", "1s", "--parallel", "2"]);
    assert_eq!(result["answers_pings"], false, "{result:#}");
    assert_eq!(result["closes_idle"], "unknown", "{result:#}");
    assert!(result["idle_timeout_ms"].is_null(), "{result:#}");
    assert!(result["recommend"]["timeout_reason"]
        .as_str()
        .is_some_and(|r| r.contains("did not answer")));
}

#[test]
fn probe_sees_the_servers_pings_and_no_idle_timeout_without_a_middlebox() {
    let server = Server::start_pinging_every("200ms");
    let (result, _) = probe(&server.url, &["--max-idle", "1s", "--parallel", "2"]);
    assert_eq!(result["closes_idle"], "none", "{result:#}");
    assert!(result["idle_timeout_ms"].is_null(), "{result:#}");
    assert!(result["server_pings"].as_u64() >= Some(3), "{result:#}");
    let every = result["server_ping_interval_ms"]
        .as_f64()
        .expect("interval");
    assert!((150.0..400.0).contains(&every), "{result:#}");
    assert!(result["rtt_p50_ms"].as_f64().is_some(), "{result:#}");
}

#[test]
fn probe_of_nothing_listening_exits_3() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = heartbeat()
        .args(["probe", &format!("ws://127.0.0.1:{port}/")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).starts_with("heartbeat: cannot connect to "));
}
