//! The server's accept hook, through `examples/bearer_auth.rs` itself: the right
//! bearer token is let in and kept alive; a wrong or missing one gets HTTP 401
//! before the client is registered, and the reconnecting client stops at once
//! (a 401 is permanent). The hook sees the path, the headers and the peer address.

mod common;

#[allow(dead_code)]
#[path = "../examples/bearer_auth.rs"]
mod example;

use std::sync::{Arc, Mutex};

use common::{ms, options};
use heartbeat_core::Role;
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{accept_with, connect, Accept, ConnectRequest, Error, Permanent, Registry};
use tokio::net::TcpListener;

async fn bearer_server() -> (String, Registry) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/feed", listener.local_addr().unwrap());
    let registry = Registry::new();
    let opts = options(Role::Server, 200, 300, 300);
    tokio::spawn(example::serve(
        listener,
        "s3cr3t".into(),
        opts,
        registry.clone(),
    ));
    (url, registry)
}

#[tokio::test]
async fn the_right_bearer_token_is_let_in_and_kept_alive() {
    let (url, registry) = bearer_server().await;
    let request = ConnectRequest::new(&url)
        .unwrap()
        .header("Authorization", "Bearer s3cr3t")
        .unwrap();
    let mut conns = connect(request, options(Role::Client, 200, 300, 300)).unwrap();
    let mut conn = tokio::time::timeout(ms(3000), conns.next())
        .await
        .unwrap()
        .unwrap();
    conn.send(Message::text("hello")).await.unwrap();
    assert_eq!(conn.recv().await.unwrap(), Message::text("hello"));
    assert_eq!(registry.len(), 1);
    tokio::time::sleep(ms(500)).await;
    assert!(conn.status().stats.pongs_matched >= 2);
}

#[tokio::test]
async fn a_wrong_or_missing_token_gets_401_before_registration_and_the_client_stops() {
    let (url, registry) = bearer_server().await;
    for request in [
        ConnectRequest::new(&url).unwrap(),
        ConnectRequest::new(&url)
            .unwrap()
            .header("Authorization", "Bearer guess")
            .unwrap(),
    ] {
        let mut conns = connect(request, options(Role::Client, 200, 300, 300)).unwrap();
        let next = tokio::time::timeout(ms(3000), conns.next()).await;
        assert!(matches!(next, Ok(None)), "refused, and not retried");
        match conns.last_connect_error() {
            Some(Error::Permanent {
                cause: Permanent::Rejected { status: 401 },
                ..
            }) => {}
            other => panic!("expected a 401, got {other:?}"),
        }
        assert_eq!(conns.status().stats.connect_failures, 1);
        assert!(registry.is_empty(), "never registered");
    }
}

#[tokio::test]
async fn the_hook_sees_path_query_headers_peer_and_subprotocols_and_picks_one() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let registry = Registry::new();
    let server_registry = registry.clone();
    tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.unwrap();
        let opts = options(Role::Server, 200, 300, 300);
        let hook = move |hs: &heartbeat_tokio::Handshake<'_>| {
            *record.lock().unwrap() = Some((
                hs.path().to_owned(),
                hs.query().map(str::to_owned),
                hs.header("x-tenant").map(str::to_owned),
                hs.peer(),
                hs.subprotocols().map(str::to_owned).collect::<Vec<_>>(),
            ));
            Ok(Accept::new().subprotocol("v2"))
        };
        let (_, conn) = accept_with(stream, Some(peer), &opts, &server_registry, hook)
            .await
            .unwrap();
        let (_tx, mut rx) = conn.split();
        while rx.recv().await.is_ok() {}
    });
    let request = ConnectRequest::new(&format!("ws://{addr}/t/feed?since=42"))
        .unwrap()
        .header("X-Tenant", "acme")
        .unwrap()
        .subprotocol("v1")
        .unwrap()
        .subprotocol("v2")
        .unwrap();
    let mut conns = connect(request, options(Role::Client, 200, 300, 300)).unwrap();
    let _conn = tokio::time::timeout(ms(3000), conns.next())
        .await
        .unwrap()
        .unwrap();
    let (path, query, tenant, peer, offered) = seen.lock().unwrap().clone().unwrap();
    assert_eq!(path, "/t/feed");
    assert_eq!(query.as_deref(), Some("since=42"));
    assert_eq!(tenant.as_deref(), Some("acme"));
    assert!(peer.unwrap().ip().is_loopback());
    assert_eq!(offered, ["v1", "v2"]);
    assert_eq!(registry.len(), 1);
    assert!(registry.peer(registry.ids()[0]).is_some(), "peer recorded");
}
