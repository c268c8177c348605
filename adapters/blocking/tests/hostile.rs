//! The Autobahn-style hostile cases (`heartbeat_test_support::raw::cases`) played
//! by a raw-frame peer over real loopback sockets against this adapter as server
//! and as client: each must end with its RFC 6455 close code (1002, 1007, 1009, or
//! the echoed code), received by the peer.

use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use heartbeat_blocking::KeepAlive;
use heartbeat_core::{CloseCode, Config};
use heartbeat_test_support::raw::{cases, RawPeer};

const WAIT: Duration = Duration::from_secs(5);

fn config() -> Config {
    Config::builder()
        .ping_interval(Duration::from_secs(2))
        .pong_timeout(Duration::from_secs(2))
        .close_timeout(Duration::from_millis(300))
        .build()
        .unwrap()
}

/// Reads until the connection is over, then lets its close run to the end.
fn serve(mut conn: KeepAlive) {
    while conn.read().is_ok() {}
    let _ = conn.close(CloseCode::NORMAL);
}

#[test]
fn as_server_every_hostile_case_gets_its_close_code() {
    for case in cases() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            serve(KeepAlive::accept(stream, config(), 1).unwrap());
        });
        let mut peer = RawPeer::connect(addr).unwrap();
        assert_eq!(peer.play(&case, WAIT), Ok(()));
        server.join().unwrap();
    }
}

#[test]
fn as_client_every_hostile_case_gets_its_close_code() {
    for case in cases() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let name = case.name;
        let peer = thread::spawn(move || {
            let mut peer = RawPeer::accept(&listener).map_err(|e| e.to_string())?;
            peer.play(&case, WAIT)
        });
        serve(KeepAlive::connect(&url, config()).unwrap());
        assert_eq!(peer.join().unwrap(), Ok(()), "{name}");
    }
}
