//! A peer that stops reading: data, pings and pongs wait in the buffer and are
//! flushed when the socket drains; nothing is lost and nobody is declared dead.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use heartbeat_core::{Config, DeathReason, Role};
use heartbeat_mio::tungstenite::{self, Message};
use heartbeat_mio::{ConnId, Ctx, Driver, Handler, Options, SendError};

/// 24 MiB: more than the kernel buffers of both ends hold while the peer is not
/// reading, so the socket stays full and the rest waits in the driver's buffer.
const BIG: usize = 24 << 20;

#[derive(Default)]
struct Flood {
    refused: bool,
    deaths: Vec<DeathReason>,
    id: Option<ConnId>,
}

impl Handler for Flood {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, id: ConnId) {
        self.id = Some(id);
        ctx.send(id, Message::binary(vec![7u8; BIG])).unwrap();
        match ctx.send(id, Message::text("more")) {
            Err(SendError::Backpressure) => self.refused = true,
            other => panic!("expected backpressure: {other:?}"),
        }
    }
    fn on_dead(&mut self, _: &mut Ctx<'_>, _: ConnId, reason: DeathReason) {
        self.deaths.push(reason);
    }
}

#[test]
fn a_full_socket_keeps_data_pings_and_pongs_until_it_drains() {
    let config = Config::builder()
        .role(Role::Server)
        .ping_interval(Duration::from_millis(150))
        .pong_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    let mut options = Options::new(config);
    // A 24 MiB message is over the default 4 MiB write-buffer cap: raise it, as the
    // cap's docs say.
    options.websocket = options.websocket.max_write_buffer_size(64 << 20);
    let mut server = Driver::new(options, Flood::default()).unwrap();
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        let stream = TcpStream::connect(addr).unwrap();
        let big = tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let (mut ws, _) =
            tungstenite::client::client_with_config(format!("ws://{addr}/"), stream, Some(big))
                .unwrap();
        // Our ping reaches the server while its socket towards us is full.
        ws.send(Message::Ping(b"are you there".to_vec().into()))
            .unwrap();
        // Stop reading for 250 ms: the server's ping (due at 150 ms) cannot be written.
        std::thread::sleep(Duration::from_millis(250));
        let (mut data, mut pongs, mut pings) = (0usize, 0usize, 0usize);
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let end = Instant::now() + Duration::from_millis(1_200);
        while Instant::now() < end {
            match ws.read() {
                Ok(Message::Binary(b)) => {
                    assert_eq!(b.len(), BIG);
                    assert!(b.iter().all(|&x| x == 7));
                    data += 1
                }
                Ok(Message::Pong(p)) => {
                    assert_eq!(&p[..], b"are you there");
                    pongs += 1
                }
                Ok(Message::Ping(_)) => pings += 1, // answered by tungstenite
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        // Keep the socket open until the server has looked at its connection.
        let _ = done_rx.recv();
        (data, pongs, pings)
    });
    server.run_for(Duration::from_millis(1_500)).unwrap();
    let id = server.handler().id.unwrap();
    let machine = server.ctx().machine_stats(id).unwrap();
    done_tx.send(()).unwrap();
    let (data, pongs, pings) = client.join().unwrap();
    let stats = server.stats();
    let flood = server.handler();
    println!("received {data} big message(s); {stats:?}; {machine:?}");
    assert!(
        flood.refused,
        "sends are refused while the socket is backed up"
    );
    assert_eq!(data, 1, "the partly written message arrived whole");
    assert_eq!(pongs, 1, "our pong was queued behind the data, not lost");
    assert!(pings >= 5, "{pings}");
    assert!(
        stats.pings_queued >= 1,
        "a ping waited for the socket: {stats:?}"
    );
    assert!(flood.deaths.is_empty(), "{:?}", flood.deaths);
    assert!(machine.pongs_matched >= 5, "{machine:?}");
    assert_eq!(machine.pong_timeouts, 0);
}

/// Sends one big message when the connection opens.
#[derive(Default)]
struct Upload {
    deaths: Vec<DeathReason>,
}

impl Handler for Upload {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, id: ConnId) {
        ctx.send(id, Message::binary(vec![7u8; BIG])).unwrap();
    }
    fn on_dead(&mut self, _: &mut Ctx<'_>, _: ConnId, reason: DeathReason) {
        self.deaths.push(reason);
    }
}

/// The peer closes while our socket towards it is full: our reply waits behind the
/// data. Once it is flushed the machine hears so (`handle_close_sent`), the
/// handshake is complete and the socket is dropped at once, not at `close_timeout`.
#[test]
fn a_close_reply_stuck_behind_data_completes_the_handshake_when_flushed() {
    let close_timeout = Duration::from_secs(10);
    let config = Config::builder()
        .ping_interval(Duration::from_secs(10))
        .pong_timeout(Duration::from_secs(10))
        .close_timeout(close_timeout)
        .backoff(heartbeat_core::Backoff {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(30),
            ..Config::default().backoff()
        })
        .build()
        .unwrap();
    let mut options = Options::new(config);
    options.websocket = options.websocket.max_write_buffer_size(64 << 20);

    // A plain tungstenite server: it does not read until it has sent its close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut raw = stream.try_clone().unwrap();
        let big = tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let mut ws = tungstenite::accept_with_config(stream, Some(big)).unwrap();
        // Once the upload has begun, let it fill both kernel buffers.
        raw.peek(&mut [0u8; 1]).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        ws.close(Some(tungstenite::protocol::CloseFrame {
            code: tungstenite::protocol::frame::coding::CloseCode::Normal,
            reason: "".into(),
        }))
        .unwrap();
        // The client's reply is now queued behind the unread data.
        std::thread::sleep(Duration::from_millis(300));
        let reading = Instant::now();
        let mut data = 0;
        loop {
            match ws.read() {
                Ok(Message::Binary(b)) => data += b.len(),
                Ok(Message::Close(_)) => break,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
        let replied = Instant::now();
        // Keep our end open: only the client's own decision can close it now.
        raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let eof = matches!(std::io::Read::read(&mut raw, &mut [0u8; 64]), Ok(0));
        (data, reading, replied, eof.then(Instant::now))
    });

    let mut client = Driver::new(options, Upload::default()).unwrap();
    let id = client.connect(&format!("ws://{addr}/")).unwrap();
    let start = Instant::now();
    while !server.is_finished() && start.elapsed() < Duration::from_secs(8) {
        client.turn(Some(Duration::from_millis(5))).unwrap();
    }
    let (data, reading, replied, eof) = server.join().unwrap();
    let stats = client.stats();
    println!(
        "{stats:?}; {:?}; reply read {:?} after the server started reading",
        client.ctx().state(id),
        replied - reading
    );
    assert_eq!(data, BIG, "the data before the close arrived whole");
    assert_eq!(
        client.handler().deaths,
        [DeathReason::PeerClosed { code: Some(1000) }]
    );
    assert_eq!(stats.closes_queued, 1, "the reply waited in the buffer");
    let eof = eof.expect("the client kept the socket after its reply was flushed");
    let held = eof - replied;
    println!("socket dropped {held:?} after the reply was read (close_timeout {close_timeout:?})");
    assert!(held < Duration::from_millis(500), "{held:?}");
    assert!(matches!(
        client.ctx().state(id),
        Some(heartbeat_core::State::Reconnecting { .. })
    ));
}
