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
