//! A ping flood cannot grow the server's memory: pending pongs coalesce (the newest
//! replaces the older, in tungstenite and in the machine) instead of queueing.
//!
//! Alone in its own test binary so the process's RSS is this test's alone. Flood
//! protection is *disabled* here on purpose: the bound must come from coalescing, not
//! from the 1008 close (which `loopback.rs` tests).

mod common;

use std::time::Duration;

use common::{echo_server, ms};
use heartbeat_core::{Config, Role, State};
use heartbeat_tokio::{Options, Registry};
use std::io::Write;

const PINGS: usize = 300_000;
const PAYLOAD: usize = 125;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_ping_flood_leaves_server_memory_bounded() {
    let registry = Registry::new();
    let config = Config::builder()
        .role(Role::Server)
        // The flooder never reads, so it never answers our pings either: keep the
        // verdict out of the measurement, however slowly a loaded machine reads.
        .ping_interval(Duration::from_secs(60))
        .pong_timeout(Duration::from_secs(60))
        .ping_flood(None)
        .build()
        .unwrap();
    let url = echo_server(Options::new(config), registry.clone()).await;
    // The handshake through tungstenite, then raw frames on the socket: the flooder
    // holds one pre-encoded frame, so any growth measured is the server's.
    let (ws, _) =
        tokio::task::spawn_blocking(move || heartbeat_tokio::tungstenite::connect(url.as_str()))
            .await
            .unwrap()
            .unwrap();
    let tcp = match ws.get_ref() {
        heartbeat_tokio::tungstenite::stream::MaybeTlsStream::Plain(tcp) => {
            tcp.try_clone().unwrap()
        }
        _ => unreachable!("ws:// is plain TCP"),
    };
    wait_for(|| registry.len() == 1).await;
    let flood = |n: usize| {
        let mut tcp = tcp.try_clone().unwrap();
        tokio::task::spawn_blocking(move || {
            let frame = masked_ping(PAYLOAD);
            for _ in 0..n {
                tcp.write_all(&frame).unwrap();
            }
        })
    };
    // Warm up allocator arenas and the runtime before measuring.
    flood(1000).await.unwrap();
    tokio::time::sleep(ms(200)).await;
    let before = rss_kib();

    // The client never reads: every pong the server owes has nowhere to go.
    flood(PINGS).await.unwrap();
    let id = registry.ids()[0];
    // Let the server read the whole flood.
    let mut waited = 0;
    while registry
        .status(id)
        .is_some_and(|s| s.stats.pings_received < PINGS as u64 + 1000)
        && waited < 200
    {
        tokio::time::sleep(ms(50)).await;
        waited += 1;
    }
    let status = registry.status(id).expect("still registered");
    let after = rss_kib();
    let grown = after.saturating_sub(before);
    let flood_kib = (PINGS * (PAYLOAD + 6)) / 1024;
    println!(
        "{} pings of {PAYLOAD} bytes read by the server ({} KiB of pongs owed): RSS {before} -> {after} KiB (+{grown} KiB)",
        status.stats.pings_received, flood_kib
    );
    assert_eq!(
        status.state,
        State::Open,
        "flood protection is off: no verdict"
    );
    assert!(
        status.stats.pings_received >= PINGS as u64 / 2,
        "the server read the flood ({} pings)",
        status.stats.pings_received
    );
    // Queued pongs would need ~38 MiB; coalesced ones need nothing that grows.
    assert!(
        grown < 8 * 1024,
        "server memory grew by {grown} KiB during the flood"
    );
}

/// A client ping frame: FIN + opcode 9, masked (clients must mask), `len` bytes.
fn masked_ping(len: usize) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x89, 0x80 | len as u8];
    frame.extend_from_slice(&mask);
    frame.extend((0..len).map(|i| (i as u8) ^ mask[i % 4]));
    frame
}

async fn wait_for(cond: impl Fn() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(ms(10)).await;
    }
    panic!("condition not met within 2 s");
}

/// This process's resident set size in KiB (Linux).
fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}
