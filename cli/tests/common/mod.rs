//! Helpers for the spawned-process tests: the binary, its JSON output, a `serve`
//! process and a server that never answers.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub fn heartbeat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_heartbeat"))
}

pub fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

pub fn events<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["event"] == name).collect()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `heartbeat serve` on a free port (pings every 200 ms); killed on drop.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    /// Sends `sig` (e.g. `-STOP`, `-CONT`) to the server process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok);
    }

    pub fn start() -> Server {
        Server::start_pinging_every("200ms")
    }

    /// A server pinging its clients every `interval`.
    pub fn start_pinging_every(interval: &str) -> Server {
        let mut child = heartbeat()
            .args(["serve", "--bind", "127.0.0.1:0", "--json", "-i", interval])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut first)
            .expect("serve prints its address");
        let v: Value = serde_json::from_str(&first).expect("JSON");
        let url = format!("ws://{}/", v["addr"].as_str().expect("addr"));
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebSocket server that completes the upgrade and then never reads: our pings
/// are never answered, and nothing else arrives either.
pub fn mute_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("ws://{}/", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            if let Ok(ws) = tungstenite::accept(stream) {
                held.push(ws);
            }
        }
    });
    url
}
