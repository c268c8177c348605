//! Memory attacks on `heartbeat serve` over real sockets, with the server's RSS
//! read from /proc before and after: a peer can pin at most its own limits
//! (default 1 MiB messages and frames, 4 MiB inbound and outbound), never the
//! process. Each test states its bound.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use heartbeat_test_support::raw::{Ending, RawPeer, BINARY, CONTINUATION};
use serde_json::Value;

/// `heartbeat serve --json` with pings far apart (the attackers never answer
/// them: the attack, not the heartbeat, is measured); killed on drop.
struct Serve {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Serve {
    fn start() -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_heartbeat"))
            .args(["serve", "--bind", "127.0.0.1:0", "--json"])
            .args(["--interval", "30s", "--timeout", "30s"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let v: Value = serde_json::from_str(&first).unwrap();
        let addr = v["addr"].as_str().unwrap().parse().unwrap();
        // Keep reading so the server never blocks on its stdout.
        thread::spawn(move || for _ in out.lines().map_while(Result::ok) {});
        Serve { child, addr }
    }

    /// Resident memory in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kib * 1024
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const MIB: u64 = 1 << 20;

#[test]
fn ten_never_ending_fragmented_messages_are_closed_with_1009_and_memory_stays_bounded() {
    let serve = Serve::start();
    let before = serve.rss();
    // Ten attackers at once, each starting a 60 MiB message in 1 MiB fragments.
    let attackers: Vec<_> = (0..10)
        .map(|_| {
            let addr = serve.addr;
            thread::spawn(move || {
                let mut peer = RawPeer::connect(addr).unwrap();
                let chunk = vec![b'x'; 1 << 20];
                let _ = peer.send(false, BINARY, &chunk);
                for _ in 1..60 {
                    if peer.send(false, CONTINUATION, &chunk).is_err() {
                        break;
                    }
                }
                peer.await_close(Duration::from_secs(10))
            })
        })
        .collect();
    let endings: Vec<Ending> = attackers.into_iter().map(|a| a.join().unwrap()).collect();
    let after = serve.rss();
    assert!(
        endings.iter().all(|e| *e == Ending::Close(Some(1009))),
        "{endings:?}"
    );
    // Bound: 3 MiB per attacker (a 1 MiB partial message, a 1 MiB frame being
    // read, buffers), 30 MiB for ten. Without limits it was 60 MiB each.
    let growth = after.saturating_sub(before);
    eprintln!("RSS {} -> {} MiB", before / MIB, after / MIB);
    assert!(growth < 30 * MIB, "RSS grew {} MiB", growth / MIB);
}

#[test]
fn an_unread_echo_flood_is_held_by_backpressure_and_memory_stays_bounded() {
    let serve = Serve::start();
    let before = serve.rss();
    let mut peer = RawPeer::connect(serve.addr).unwrap();
    // 400 echo requests of 1,000 KiB each (400 MB), never reading a reply: the
    // server's queues fill (4 MiB outbound, 4 MiB inbound, 4 MiB write buffer),
    // then it stops reading and TCP pushes back on the attacker.
    peer.stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let msg = peer.encode(true, BINARY, &vec![b'e'; 1000 << 10], 1000 << 10);
    let start = Instant::now();
    let mut sent = 0;
    for _ in 0..400 {
        if peer.stream.write_all(&msg).is_err() {
            break;
        }
        sent += 1;
    }
    thread::sleep(Duration::from_millis(500));
    let after = serve.rss();
    assert!(
        sent < 400,
        "backpressure never stopped the attacker ({:?})",
        start.elapsed()
    );
    // Bound: 4 MiB outbound queue + 4 MiB write buffer + 4 MiB inbound queue +
    // 2 MiB being read, with allocator slack: 40 MiB. Counted in messages the
    // queues held 64 + 8 + 256 of them (over 300 MiB).
    let growth = after.saturating_sub(before);
    eprintln!("RSS {} -> {} MiB", before / MIB, after / MIB);
    assert!(
        growth < 40 * MIB,
        "RSS grew {} MiB after {sent} unread echo requests",
        growth / MIB
    );
}

#[test]
fn an_echo_over_max_outbound_is_refused_and_the_connection_goes_on() {
    // Messages up to 64 KiB accepted, sends up to 16 KiB: a 32 KiB echo is refused.
    let mut child = Command::new(env!("CARGO_BIN_EXE_heartbeat"))
        .args(["serve", "--bind", "127.0.0.1:0", "--json"])
        .args(["--max-message", "64KiB", "--max-outbound", "16KiB"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let v: Value = serde_json::from_str(&first).unwrap();
    let serve = Serve {
        addr: v["addr"].as_str().unwrap().parse().unwrap(),
        child,
    };
    let mut peer = RawPeer::connect(serve.addr).unwrap();
    peer.send(true, BINARY, &vec![1; 32 << 10]).unwrap();
    peer.send(true, heartbeat_test_support::raw::TEXT, b"small")
        .unwrap();
    peer.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let echo = std::iter::from_fn(|| peer.read_frame().unwrap())
        .find(|f| f.opcode != heartbeat_test_support::raw::PING)
        .expect("a frame");
    // The big echo was refused; the small one comes back on the same connection.
    assert_eq!(echo.payload, b"small", "{echo:?}");
    let refused = out
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .find(|v| v["event"] == "send_refused")
        .expect("send_refused event");
    assert_eq!(refused["len"], 32 << 10);
}
