//! A send larger than the connection can ever write is a typed error, and the
//! connection stays usable (it used to end without a close frame: a silent 1006).

use std::net::TcpListener;
use std::time::Duration;

use heartbeat_blocking::{Error, KeepAlive, Limits};
use heartbeat_core::Config;
use tungstenite::Message;

#[test]
fn a_send_over_the_limit_is_refused_and_the_connection_stays_usable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    // An echo server (tungstenite answers pings as it reads).
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(stream).unwrap();
        while let Ok(msg) = ws.read() {
            if msg.is_text() || msg.is_binary() {
                let _ = ws.send(msg);
            }
        }
    });
    let config = Config::builder()
        .ping_interval(Duration::from_millis(100))
        .pong_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let mut conn = KeepAlive::connect(&url, config).unwrap();
    let max = Limits::default().max_send();
    match conn.send(Message::binary(vec![0; max + 1])) {
        Err(Error::TooLarge { len, max: m }) => assert_eq!((len, m), (max + 1, max)),
        other => panic!("{other:?}"),
    }
    conn.send(Message::text("after")).unwrap();
    assert_eq!(conn.read().unwrap(), Message::text("after"));
    assert_eq!(conn.machine().state(), heartbeat_core::State::Open);
}

/// Limits are the caller's to set: a server that allows 1 KiB messages closes a
/// peer sending 2 KiB with 1009, and a client with a small outbound buffer
/// refuses a send past it. (With the defaults both messages are fine.)
#[test]
fn limits_given_at_connect_and_accept_are_applied() {
    let small = Limits {
        max_message: 1024,
        max_frame: 1024,
        max_outbound: 4096,
        ..Limits::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let config = Config::builder()
        .ping_interval(Duration::from_millis(100))
        .pong_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut conn = KeepAlive::accept_with_limits(stream, config, 1, small).unwrap();
        loop {
            match conn.read() {
                Ok(_) => continue,
                Err(Error::Dead(reason)) => return reason,
                Err(e) => panic!("{e}"),
            }
        }
    });
    let mut client = KeepAlive::connect_with_limits(&url, config, small).unwrap();
    match client.send(Message::binary(vec![0; 4096])) {
        Err(Error::TooLarge { len: 4096, max }) => assert_eq!(max, small.max_send()),
        other => panic!("the small outbound buffer refuses it: {other:?}"),
    }
    client.send(Message::binary(vec![0; 2048])).unwrap();
    // Too big for the server's limits: RFC 6455's 1009.
    match server.join().unwrap() {
        heartbeat_core::DeathReason::ProtocolError(e) => {
            assert_eq!(e, heartbeat_core::ProtocolError::TooBig);
            assert_eq!(e.close_code().get(), 1009);
        }
        other => panic!("{other:?}"),
    }
    let invalid = Limits {
        max_message: 0,
        ..Limits::default()
    };
    match KeepAlive::connect_with_limits(&url, Config::default(), invalid) {
        Err(Error::Limits(e)) => assert!(e.to_string().contains("max_message"), "{e}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("invalid limits accepted"),
    }
}
