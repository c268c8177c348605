//! A ping flood cannot grow the driver's memory, and an oversized message is refused
//! without ending the connection.
//!
//! Alone in its own test binary so the process's RSS is this test's alone. Flood
//! protection is *disabled* on purpose: the bound must come from the write-buffer
//! cap (tungstenite then keeps the newest pong in its pending slot), not from the
//! machine's 1008 close.

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use heartbeat_core::{Config, DeathReason, Role, State};
use heartbeat_mio::tungstenite::{self, Message};
use heartbeat_mio::{ConnId, Ctx, Driver, Handler, Options, SendError};

const PINGS: usize = 300_000;
const PAYLOAD: usize = 125;

/// Tries a 5 MiB send at open and reports it, then reports each connection's state
/// whenever asked through `probe`.
struct Probe {
    opened: mpsc::Sender<(ConnId, Result<(), String>)>,
}

impl Handler for Probe {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, id: ConnId) {
        let result = match ctx.send(id, Message::binary(vec![0u8; 5 << 20])) {
            Err(SendError::TooLarge) => Ok(()),
            other => Err(format!("{other:?}")),
        };
        let _ = self.opened.send((id, result));
    }
    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: Message) {}
    fn on_dead(&mut self, _: &mut Ctx<'_>, id: ConnId, reason: DeathReason) {
        panic!("{id:?} declared dead during the flood: {reason}");
    }
    fn on_closed(&mut self, _: &mut Ctx<'_>, _: ConnId, _: DeathReason) {}
}

#[test]
fn an_unread_ping_flood_leaves_memory_bounded_and_big_sends_are_refused() {
    let config = Config::builder()
        .role(Role::Server)
        .ping_interval(Duration::from_secs(1))
        .pong_timeout(Duration::from_secs(10))
        .ping_flood(None)
        .build()
        .unwrap();
    let (opened_tx, opened_rx) = mpsc::channel();
    let mut driver = Driver::new(Options::new(config), Probe { opened: opened_tx }).unwrap();
    let addr = driver.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let stop = driver.stop_handle().unwrap();
    let server = std::thread::spawn(move || {
        driver.run().unwrap();
        driver
    });

    // The handshake through tungstenite, then raw frames: the flooder holds one
    // pre-encoded frame and never reads, so any growth measured is the driver's.
    let (ws, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    let tcp = match ws.get_ref() {
        tungstenite::stream::MaybeTlsStream::Plain(tcp) => tcp.try_clone().unwrap(),
        _ => unreachable!("ws:// is plain TCP"),
    };
    let (id, too_large) = opened_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(too_large, Ok(()), "a 5 MiB send is refused with TooLarge");

    flood(&tcp, 1000);
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kib();
    // write_all returns once the driver has read all but what the kernel buffers hold.
    flood(&tcp, PINGS);
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib();
    let grown = after.saturating_sub(before);
    println!(
        "{PINGS} pings of {PAYLOAD} bytes, never read ({} KiB of pongs owed): RSS {before} -> {after} KiB (+{grown} KiB)",
        PINGS * (PAYLOAD + 2) / 1024
    );

    stop.stop();
    let mut driver = server.join().unwrap();
    assert_eq!(
        driver.ctx().state(id),
        Some(State::Open),
        "still open after the flood"
    );
    // Measured: +33 MiB without the cap, +8 MiB with it (the 4 MiB buffer plus its
    // growth by doubling). 16 MiB separates the two with room for noise.
    assert!(
        grown < 16 * 1024,
        "driver memory grew by {grown} KiB during the flood"
    );
    drop(ws);
}

fn flood(tcp: &TcpStream, n: usize) {
    let mut tcp = tcp.try_clone().unwrap();
    // A client ping frame: FIN + opcode 9, masked (clients must mask).
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut frame = vec![0x89, 0x80 | PAYLOAD as u8];
    frame.extend_from_slice(&mask);
    frame.extend((0..PAYLOAD).map(|i| (i as u8) ^ mask[i % 4]));
    for _ in 0..n {
        tcp.write_all(&frame).unwrap();
    }
}

/// This process's resident set size in KiB (Linux).
fn rss_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .expect("Linux /proc")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}
