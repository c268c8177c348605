//! What a heartbeat puts on the wire, seen from a raw tungstenite client: a pong
//! leaves at once even with nothing to share its write, and a ping due soon leaves
//! early, with the pong.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use heartbeat_core::Config;
use heartbeat_mio::tungstenite::{self, Message};
use heartbeat_mio::{Driver, Handler, Options};

struct Quiet;
impl Handler for Quiet {}

/// A server driver with `interval` on its own thread; returns its address.
fn server(interval: Duration) -> std::net::SocketAddr {
    let config = Config::builder()
        .ping_interval(interval)
        .pong_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut driver = Driver::new(Options::new(config), Quiet).unwrap();
    let addr = driver.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    // The thread ends with the test process.
    std::thread::spawn(move || driver.run());
    addr
}

fn client(addr: std::net::SocketAddr) -> tungstenite::WebSocket<TcpStream> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let (ws, _) = tungstenite::client::client(format!("ws://{addr}/"), tcp).unwrap();
    ws
}

/// Reads until a control frame arrives; returns it and when.
fn next_control(ws: &mut tungstenite::WebSocket<TcpStream>) -> (Message, Instant) {
    loop {
        let msg = ws.read().unwrap();
        if matches!(msg, Message::Ping(_) | Message::Pong(_)) {
            return (msg, Instant::now());
        }
    }
}

#[test]
fn a_pong_with_nothing_to_follow_it_leaves_at_once() {
    // The server's own ping is 10 s away: nothing else is written for a while.
    let mut ws = client(server(Duration::from_secs(10)));
    let sent = Instant::now();
    ws.send(Message::Ping(b"now"[..].into())).unwrap();
    let (msg, at) = next_control(&mut ws);
    assert_eq!(msg, Message::Pong(b"now"[..].into()));
    // Without the flush at the end of a batch it would wait for the next write.
    assert!(
        at - sent < Duration::from_millis(500),
        "pong after {:?}",
        at - sent
    );
}

#[test]
fn a_ping_due_within_an_eighth_of_the_interval_leaves_early_behind_the_pong() {
    // Interval 4 s: the server's first ping is due 4 s after the upgrade, and a
    // ping due within 500 ms goes out with a pong.
    let interval = Duration::from_secs(4);
    let mut ws = client(server(interval));
    let opened = Instant::now();
    std::thread::sleep(interval - Duration::from_millis(400));
    ws.send(Message::Ping(b"early"[..].into())).unwrap();
    let (first, _) = next_control(&mut ws);
    let (second, at) = next_control(&mut ws);
    assert_eq!(first, Message::Pong(b"early"[..].into()), "the pong first");
    assert!(matches!(second, Message::Ping(_)), "{second:?}");
    // Its own timer would have sent it 4 s after the upgrade (which finished
    // before `opened`); it came about 400 ms earlier, right behind the pong.
    let early_by = (opened + interval).saturating_duration_since(at);
    assert!(
        early_by >= Duration::from_millis(200),
        "the ping came at {:?} after the upgrade",
        at - opened
    );
}
