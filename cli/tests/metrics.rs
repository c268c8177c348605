//! `heartbeat serve --metrics ADDR`: Prometheus text on /metrics, scraped over HTTP
//! while a client comes and goes; the counters move with it.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::heartbeat;
use serde_json::Value;

/// `serve --json --metrics 127.0.0.1:0`; killed on drop.
struct Served {
    child: Child,
    url: String,
    metrics: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_with_metrics() -> Served {
    let mut child = heartbeat()
        .args(["serve", "--bind", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
        .args(["--json", "-i", "100ms"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut next = || -> Value {
        serde_json::from_str(&lines.next().expect("a line").expect("utf-8")).expect("JSON")
    };
    let listening = next();
    let metrics = next();
    assert_eq!(metrics["event"], "metrics", "{metrics}");
    // Keep reading so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Served {
        child,
        url: format!("ws://{}/", listening["addr"].as_str().expect("addr")),
        metrics: metrics["addr"].as_str().expect("addr").to_owned(),
    }
}

/// `GET path` over a plain TCP socket: (status line, body).
fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics port");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("write");
    let mut response = String::new();
    s.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// The value of the sample `name` (with its labels, if any), or 0 if absent.
fn sample(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn scrape_until(addr: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = get(addr, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "never {what}:\n{body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn metrics_are_served_in_prometheus_text_and_move_with_a_client() {
    let served = serve_with_metrics();
    let before = scrape_until(&served.metrics, "served", |_| true);
    assert!(
        before.contains("# TYPE heartbeat_connections gauge"),
        "{before}"
    );
    assert!(
        before.contains("# TYPE heartbeat_rtt_seconds histogram"),
        "{before}"
    );
    assert_eq!(sample(&before, "heartbeat_connections"), 0.0);
    assert_eq!(sample(&before, "heartbeat_pongs_total"), 0.0);

    let mut client = heartbeat()
        .args(["ping", &served.url, "-i", "1s", "-q"])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn ping");
    let during = scrape_until(&served.metrics, "a live client with pongs", |b| {
        sample(b, "heartbeat_connections") == 1.0 && sample(b, "heartbeat_pongs_total") >= 3.0
    });
    assert!(
        sample(&during, "heartbeat_pings_sent_total") >= 3.0,
        "{during}"
    );
    assert_eq!(
        sample(&during, "heartbeat_rtt_seconds_count"),
        sample(&during, "heartbeat_pongs_total"),
        "one RTT sample per pong\n{during}"
    );
    assert!(
        sample(&during, "heartbeat_rtt_seconds_sum") > 0.0,
        "{during}"
    );
    assert!(during.contains("heartbeat_local_lag_seconds "), "{during}");

    let _ = client.kill();
    let _ = client.wait();
    let after = scrape_until(&served.metrics, "the client's death counted", |b| {
        sample(b, "heartbeat_connections") == 0.0
    });
    let deaths: f64 = after
        .lines()
        .filter(|l| l.starts_with("heartbeat_deaths_total{reason="))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(deaths, 1.0, "{after}");
    assert!(
        sample(&after, "heartbeat_pongs_total") >= sample(&during, "heartbeat_pongs_total"),
        "{after}"
    );

    let (status, _) = get(&served.metrics, "/other");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}
