//! The driver runs the WebSocket upgrade itself (tungstenite's client handshake
//! would hand its 4 KiB buffer over as the connection's read buffer): against raw
//! TCP peers that answer the way real servers may, in pieces, with a frame right
//! behind the head, or with a refusal carrying `Retry-After`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use heartbeat_core::{Backoff, Config, Jitter};
use heartbeat_mio::tungstenite::handshake::derive_accept_key;
use heartbeat_mio::tungstenite::Message;
use heartbeat_mio::{ConnId, Ctx, Driver, Handler, Options};

#[derive(Default)]
struct Record {
    opened: usize,
    messages: Vec<String>,
}

impl Handler for Record {
    fn on_open(&mut self, _: &mut Ctx<'_>, _: ConnId) {
        self.opened += 1;
    }
    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, msg: Message) {
        if let Message::Text(t) = msg {
            self.messages.push(t.to_string());
        }
    }
}

/// A client config that would retry after 20 ms.
fn config() -> Config {
    Config::builder()
        .ping_interval(Duration::from_secs(10))
        .pong_timeout(Duration::from_secs(10))
        .backoff(Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(20),
            jitter: Jitter::None,
            ..Config::default().backoff()
        })
        .build()
        .unwrap()
}

/// Reads an HTTP request head; returns its `Sec-WebSocket-Key`.
fn read_request(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(tcp.read(&mut byte).unwrap(), 1, "request ended early");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .expect("a key")
}

fn run_until(
    driver: &mut Driver<Record>,
    within: Duration,
    done: impl Fn(&Driver<Record>) -> bool,
) {
    let end = Instant::now() + within;
    while !done(driver) {
        assert!(Instant::now() < end, "{:?}", driver.stats());
        driver.turn(Some(Duration::from_millis(5))).unwrap();
    }
}

#[test]
fn an_answer_in_pieces_with_a_frame_right_behind_its_head_opens_and_delivers_the_frame() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_nodelay(true).unwrap();
        let key = read_request(&mut tcp);
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        );
        let mut bytes = answer.into_bytes();
        // An unmasked text frame "hello" in the same write as the head's end.
        bytes.extend_from_slice(&[0x81, 5, b'h', b'e', b'l', b'l', b'o']);
        let (pieces, last) = bytes.split_at(bytes.len() - 12);
        for piece in pieces.chunks(16) {
            tcp.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        tcp.write_all(last).unwrap();
        // Keep the socket open until the client is done.
        let _ = tcp.read(&mut [0u8; 64]);
    });
    let mut client = Driver::new(Options::new(config()), Record::default()).unwrap();
    client.connect(&format!("ws://{addr}/")).unwrap();
    run_until(&mut client, Duration::from_secs(5), |d| {
        !d.handler().messages.is_empty()
    });
    assert_eq!(client.handler().opened, 1);
    assert_eq!(client.handler().messages, ["hello"]);
    assert_eq!(client.stats().handshakes_failed, 0);
    drop(client);
    server.join().unwrap();
}

#[test]
fn a_refusal_with_retry_after_puts_off_the_next_attempt() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        read_request(&mut tcp);
        tcp.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        // Refused: the client goes away.
        let _ = tcp.read(&mut [0u8; 64]);
    });
    let mut client = Driver::new(Options::new(config()), Record::default()).unwrap();
    client.connect(&format!("ws://{addr}/")).unwrap();
    run_until(&mut client, Duration::from_secs(5), |d| {
        d.stats().handshakes_failed == 1
    });
    // The backoff alone would try again after 20 ms; the server asked for 1 s.
    client.run_for(Duration::from_millis(600)).unwrap();
    let stats = client.stats();
    assert_eq!(stats.connects_started, 1, "{stats:?}");
    assert_eq!(client.handler().opened, 0);
    server.join().unwrap();
}
