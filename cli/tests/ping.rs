//! `heartbeat ping` as ping(8) users expect it, run as a user runs it: spawned
//! processes on loopback. First ping at connect, -i/-W/-w/-c/-q, exit codes, the
//! summary's percentiles and histogram, humantime durations, one error style.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{events, heartbeat, json_lines, mute_server, stderr, stdout, Server};
use serde_json::Value;

#[test]
fn the_first_pong_comes_within_50ms_of_connecting() {
    let server = Server::start();
    let out = heartbeat()
        .args(["ping", &server.url, "-i", "1s", "-c", "1", "--json"])
        .output()
        .expect("run ping");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let connected = events(&lines, "connected")[0]["t"].as_f64().expect("t");
    let pong = events(&lines, "pong")[0]["t"].as_f64().expect("t");
    // Not one interval (1 s) later: at connect, as ping(8) sends its first probe.
    assert!(pong - connected <= 0.050, "{lines:#?}");
}

#[test]
fn short_options_and_quiet_print_only_the_summary_with_percentiles_and_a_histogram() {
    let server = Server::start();
    let started = Instant::now();
    let out = heartbeat()
        .args([
            "ping",
            &server.url,
            "-c",
            "3",
            "-i",
            "100ms",
            "-W",
            "1s",
            "-q",
        ])
        .output()
        .expect("run ping");
    let took = started.elapsed();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("pong seq="), "-q: only the summary\n{text}");
    assert!(
        !text.contains("connected to"),
        "-q: only the summary\n{text}"
    );
    assert!(text.contains("3 pings sent, 3 pongs received"), "{text}");
    assert!(text.contains("rtt p50/p90/p99 = "), "{text}");
    let histogram = text
        .lines()
        .find(|l| l.starts_with("rtt histogram "))
        .unwrap_or_else(|| panic!("a histogram line\n{text}"));
    let bars = histogram.split('|').nth(1).expect("|bars|");
    assert_eq!(bars.chars().count(), 12, "{histogram}");
    // Pings at 0, 100 and 200 ms (-i, and the first at connect).
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn the_json_summary_has_percentiles_and_histogram_counts() {
    let server = Server::start();
    let out = heartbeat()
        .args(["ping", &server.url, "-c", "5", "-i", "50ms", "--json"])
        .output()
        .expect("run ping");
    assert_eq!(out.status.code(), Some(0));
    let lines = json_lines(&out);
    let s = events(&lines, "summary")[0];
    let (p50, p90, p99) = (
        s["rtt_p50_ms"].as_f64().expect("p50"),
        s["rtt_p90_ms"].as_f64().expect("p90"),
        s["rtt_p99_ms"].as_f64().expect("p99"),
    );
    assert!(p50 <= p90 && p90 <= p99, "{s}");
    assert!(p99 <= s["rtt_max_ms"].as_f64().expect("max"), "{s}");
    let counts: u64 = s["rtt_histogram"]["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(counts, 5, "every pong in one bucket: {s}");
}

#[test]
fn a_deadline_ends_the_run_with_exit_0_when_pongs_came() {
    let server = Server::start();
    let started = Instant::now();
    let out = heartbeat()
        .args(["ping", &server.url, "-w", "500ms", "-i", "100ms", "--json"])
        .output()
        .expect("run ping");
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        took >= Duration::from_millis(450),
        "stopped early: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "deadline ignored: {took:?}");
    let lines = json_lines(&out);
    assert!(events(&lines, "summary")[0]["received"].as_u64() >= Some(3));
}

#[test]
fn no_pong_ever_exits_1_at_the_deadline() {
    let url = mute_server();
    let out = heartbeat()
        .args(["ping", &url, "-w", "400ms", "--json"])
        .output()
        .expect("run ping");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let lines = json_lines(&out);
    assert_eq!(events(&lines, "summary")[0]["received"], 0, "{lines:#?}");
}

#[test]
fn ctrl_c_with_no_pong_exits_1_and_still_prints_the_summary() {
    let url = mute_server();
    let mut child = heartbeat()
        .args(["ping", &url, "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run ping");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let first = lines.next().expect("a line").expect("utf-8");
    assert!(first.contains("\"connected\""), "{first}");
    std::thread::sleep(Duration::from_millis(200));
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
    let status = child.wait().expect("exit");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(status.code(), Some(1), "{rest:#?}");
    assert!(rest.iter().any(|l| l.contains("\"summary\"")), "{rest:#?}");
}

#[test]
fn ctrl_c_after_pongs_exits_0() {
    let server = Server::start();
    let mut child = heartbeat()
        .args(["ping", &server.url, "-i", "100ms", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run ping");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    while !lines
        .next()
        .expect("output")
        .expect("utf-8")
        .contains("\"pong\"")
    {}
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert_eq!(child.wait().expect("exit").code(), Some(0));
}

#[test]
fn a_count_not_reached_by_the_deadline_exits_1() {
    let server = Server::start();
    let out = heartbeat()
        .args([
            "ping",
            &server.url,
            "-c",
            "100",
            "-w",
            "300ms",
            "-i",
            "100ms",
        ])
        .output()
        .expect("run ping");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
}

#[test]
fn an_unanswered_ping_is_reported_with_a_humantime_duration_and_exits_1() {
    let url = mute_server();
    let out = heartbeat()
        .args(["ping", &url, "-i", "100ms", "-W", "200ms"])
        .output()
        .expect("run ping");
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let dead = text
        .lines()
        .find(|l| l.contains("no pong"))
        .unwrap_or_else(|| panic!("a dead line\n{text}"));
    // "no pong 202ms after the ping", not "no pong after 202.512345ms".
    let waited = dead
        .split("no pong ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a duration");
    let millis: u64 = waited
        .strip_suffix("ms")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("whole milliseconds: {dead}"));
    assert!((200..700).contains(&millis), "{dead}");
    assert!(
        text.contains("heartbeat every 100ms, timeout 200ms"),
        "{text}"
    );
}

#[test]
fn durations_take_humantime_forms_and_a_bare_number_asks_for_a_unit() {
    let server = Server::start();
    let out = heartbeat()
        .args(["ping", &server.url, "-i", "1h30m", "-c", "1", "-w", "10s"])
        .output()
        .expect("run ping");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("every 1h 30m"), "{}", stdout(&out));

    let out = heartbeat()
        .args(["ping", &server.url, "--interval", "500"])
        .output()
        .expect("run ping");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("500s or 500ms"), "{err}");
}

#[test]
fn every_bad_value_gets_one_line_naming_the_option_and_its_range_once() {
    for (args, option, range) in [
        (&["-c", "0"][..], "--count", "at least 1"),
        (&["-i", "1ms"][..], "--interval", "between 10ms and 1day"),
        (&["-W", "2h"][..], "--timeout", "between 10ms and 1h"),
        (&["--timeout", "0s"][..], "--timeout", "between 10ms and 1h"),
        (&["-i", "0s"][..], "--interval", "between 10ms and 1day"),
        (
            &["--close-timeout", "0s"][..],
            "--close-timeout",
            "greater than zero",
        ),
        (&["-w", "0s"][..], "--deadline", "greater than zero"),
        (&["-i", "soon"][..], "--interval", "e.g. 250ms, 2s or 1h30m"),
    ] {
        let out = heartbeat()
            .args(["ping", "ws://127.0.0.1:1/"])
            .args(args)
            .output()
            .expect("run");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("heartbeat: invalid value '"),
            "{args:?}: {err}"
        );
        assert_eq!(err.matches(option).count(), 1, "{args:?}: {err}");
        assert_eq!(err.matches(range).count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn a_failed_connect_is_one_line_on_stderr_without_a_repeated_prefix() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("ws://127.0.0.1:{port}/");
    let out = heartbeat().args(["ping", &url]).output().expect("run");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("heartbeat: cannot connect to {url}: ")),
        "{err}"
    );
    assert_eq!(err.matches("connect").count(), 1, "{err}");
}

#[test]
fn a_config_file_sets_the_heartbeat_and_options_override_it() {
    let server = Server::start();
    let dir = std::env::temp_dir().join(format!("heartbeat-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("heartbeat.toml");
    std::fs::write(
        &file,
        "ping_interval = \"150ms\"\npong_timeout = \"2m 30s\"\n",
    )
    .expect("write config");
    let file = file.to_str().expect("utf-8 path");
    let run = |extra: &[&str]| {
        let out = heartbeat()
            .args(["ping", &server.url, "-c", "1", "--config", file])
            .args(extra)
            .output()
            .expect("run ping");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    let text = run(&[]);
    assert!(
        text.contains("heartbeat every 150ms, timeout 2m 30s"),
        "{text}"
    );
    let text = run(&["-W", "700ms"]);
    assert!(
        text.contains("heartbeat every 150ms, timeout 700ms"),
        "{text}"
    );

    // A file the builder would refuse is refused the same way, in one line.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "ping_interval = \"150ms\"\npong_timeout = \"0s\"\n").expect("write");
    let out = heartbeat()
        .args([
            "ping",
            &server.url,
            "--config",
            bad.to_str().expect("utf-8"),
        ])
        .output()
        .expect("run ping");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--config") && err.contains("pong_timeout"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
