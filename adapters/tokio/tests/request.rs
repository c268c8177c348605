//! A [`ConnectRequest`]'s headers and subprotocols go out with every attempt, the
//! first and each reconnect, and [`Options::websocket`] applies to the connections
//! `connect` opens. The server is Python `websockets`, recording what it saw.

mod common;

use std::time::Duration;

use common::{ms, off_runtime, options};
use heartbeat_core::Role;
use heartbeat_test_support::{require_websockets, PyPeer, ServerOptions};
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{connect, ConnectRequest, Error, Permanent};
use serde_json::Value;

async fn recording_server(options: ServerOptions) -> (PyPeer, String) {
    let peer = off_runtime(move || PyPeer::server(&options.record()))
        .await
        .expect("python server");
    let url = peer.url().unwrap();
    (peer, url)
}

/// The next `REQUEST` line the server printed.
async fn seen(peer: PyPeer) -> (PyPeer, Value) {
    off_runtime(move || {
        let mut peer = peer;
        let line = peer.wait_for("REQUEST ", Duration::from_secs(5)).unwrap();
        let v = serde_json::from_str(&line["REQUEST ".len()..]).unwrap();
        (peer, v)
    })
    .await
}

#[tokio::test]
async fn headers_and_subprotocol_are_sent_on_every_reconnect() {
    if !require_websockets("headers_and_subprotocol_are_sent_on_every_reconnect") {
        return;
    }
    let (py, url) = recording_server(ServerOptions::default().subprotocol("v2.feed")).await;
    let request = ConnectRequest::new(&format!("{url}feed?x=1"))
        .unwrap()
        .header("Authorization", "Bearer t0k3n")
        .unwrap()
        .subprotocol("v2.feed")
        .unwrap();
    let mut conns = connect(request, options(Role::Client, 200, 500, 300)).unwrap();
    let mut first = conns.next().await.unwrap();
    let (py, req) = seen(py).await;
    assert_eq!(req["path"], "/feed?x=1");
    assert_eq!(req["authorization"], "Bearer t0k3n");
    assert_eq!(req["subprotocol"], "v2.feed");

    // The server restarts the connection (1012): the client reconnects by itself.
    first.send(Message::text("close-with 1012")).await.unwrap();
    assert!(matches!(
        first.recv().await,
        Err(Error::Closed {
            code: Some(1012),
            ..
        })
    ));
    let _second = tokio::time::timeout(ms(3000), conns.next())
        .await
        .expect("reconnected in time")
        .expect("a second connection");
    let (_py, req) = seen(py).await;
    assert_eq!(
        req["authorization"], "Bearer t0k3n",
        "the reconnect carries it too"
    );
    assert_eq!(req["subprotocol"], "v2.feed");
}

#[tokio::test]
async fn a_server_that_accepts_none_of_the_subprotocols_ends_the_client_for_good() {
    if !require_websockets(
        "a_server_that_accepts_none_of_the_subprotocols_ends_the_client_for_good",
    ) {
        return;
    }
    let (_py, url) = recording_server(ServerOptions::default().subprotocol("v2.feed")).await;
    let request = ConnectRequest::new(&url)
        .unwrap()
        .subprotocol("v9")
        .unwrap();
    let mut conns = connect(request, options(Role::Client, 200, 500, 300)).unwrap();
    let next = tokio::time::timeout(ms(3000), conns.next()).await;
    assert!(matches!(next, Ok(None)), "ends by itself");
    assert!(
        matches!(
            conns.last_connect_error(),
            Some(Error::Permanent {
                cause: Permanent::Rejected { status: 400 } | Permanent::Subprotocol(_),
                ..
            })
        ),
        "{:?}",
        conns.last_connect_error()
    );
}

#[tokio::test]
async fn options_websocket_applies_to_the_connections_connect_opens() {
    if !require_websockets("options_websocket_applies_to_the_connections_connect_opens") {
        return;
    }
    let (_py, url) = recording_server(ServerOptions::default()).await;
    let mut opts = options(Role::Client, 200, 500, 300);
    opts.websocket = opts
        .websocket
        .max_message_size(Some(64))
        .max_frame_size(Some(64));
    let mut conns = connect(url, opts).unwrap();
    let mut conn = conns.next().await.unwrap();
    conn.send(Message::text("x".repeat(100))).await.unwrap();
    let end = tokio::time::timeout(ms(2000), conn.recv()).await.unwrap();
    assert!(
        end.is_err(),
        "a 100-byte echo exceeds the 64-byte limit: {end:?}"
    );
}

#[test]
fn bad_headers_and_subprotocols_are_errors_naming_them() {
    let r = ConnectRequest::new("ws://127.0.0.1:1/").unwrap();
    let e = r.clone().header("Bad Name", "v").unwrap_err();
    assert!(
        matches!(&e, Error::Request(t) if t.contains("Bad Name")),
        "{e}"
    );
    let e = r.clone().header("X-Ok", "line\nbreak").unwrap_err();
    assert!(matches!(&e, Error::Request(t) if t.contains("X-Ok")), "{e}");
    let e = r.subprotocol("a b").unwrap_err();
    assert!(matches!(&e, Error::Request(t) if t.contains("a b")), "{e}");
}

#[tokio::test]
async fn connect_via_a_dialed_socket_keeps_headers_buffers_and_nodelay() {
    if !require_websockets("connect_via_a_dialed_socket_keeps_headers_buffers_and_nodelay") {
        return;
    }
    let (py, url) = recording_server(ServerOptions::default()).await;
    let upstream = py.addr.unwrap();
    let proxy = heartbeat_test_support::SilentProxy::start(upstream).unwrap();
    let via = proxy.addr();
    // The dialer keeps a duplicate of each socket it opens, to read its options.
    let dialed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = dialed.clone();
    let dial = move |_: &heartbeat_tokio::Target| {
        let keep = keep.clone();
        async move {
            let std = std::net::TcpStream::connect(via)?;
            std.set_nonblocking(true)?;
            keep.lock().unwrap().push(std.try_clone()?);
            tokio::net::TcpStream::from_std(std)
        }
    };
    let request = ConnectRequest::new(&url)
        .unwrap()
        .header("Authorization", "Bearer via-proxy")
        .unwrap();
    let mut opts = options(Role::Client, 200, 500, 300);
    opts.websocket = opts
        .websocket
        .max_message_size(Some(64))
        .max_frame_size(Some(64));
    let mut conns = heartbeat_tokio::connect_via(request, dial, opts).unwrap();
    let mut conn = conns.next().await.unwrap();
    let (_py, req) = seen(py).await;
    assert_eq!(req["authorization"], "Bearer via-proxy");
    assert_eq!(proxy.connections(), 1, "went through the dialed proxy");
    assert!(
        dialed.lock().unwrap()[0].nodelay().unwrap(),
        "TCP_NODELAY set"
    );
    conn.send(Message::text("x".repeat(100))).await.unwrap();
    let end = tokio::time::timeout(ms(2000), conn.recv()).await.unwrap();
    assert!(end.is_err(), "Options::websocket applies: {end:?}");
}
