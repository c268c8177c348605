//! Limits, seen from the application: a send too large for the connection is a
//! typed error and the connection stays usable (never a silent 1006), and a
//! registry made with limits refuses handshakes past `max_handshakes` while the
//! connections it holds keep working.

mod common;

use std::time::Duration;

use common::{echo_server, ms, options};
use futures_util::{SinkExt, StreamExt};
use heartbeat_core::{Role, State};
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{connect, Error, KeepAliveStream, Limits, Options, Refused, Registry};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

fn small() -> Limits {
    Limits {
        max_message: 64 << 10,
        max_frame: 64 << 10,
        max_inbound: 256 << 10,
        max_outbound: 128 << 10,
        max_connections: 100,
        max_handshakes: 2,
    }
}

#[tokio::test]
async fn a_send_over_the_limit_is_refused_and_the_connection_stays_usable() {
    let registry = Registry::new();
    let url = echo_server(options(Role::Server, 100, 300, 300), registry.clone()).await;
    let client = options(Role::Client, 100, 300, 300).limits(small());
    let mut conns = connect(url, client).unwrap();
    let (tx, mut rx) = conns.next().await.unwrap().split();

    let max = small().max_send();
    let err = tx
        .send(Message::binary(vec![0; max + 1]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { len, max: m } if len == max + 1 && m == max),
        "{err:?}"
    );
    assert!(matches!(
        tx.try_send(Message::binary(vec![0; max + 1])),
        Err(Error::TooLarge { .. })
    ));
    // Still open, and still carrying data both ways: nothing reached the wire.
    tx.send(Message::text("after")).await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), Message::text("after"));
    tokio::time::sleep(ms(400)).await;
    assert_eq!(tx.status().state, State::Open);
    assert_eq!(tx.status().stats.pong_timeouts, 0);
}

#[tokio::test]
async fn a_sink_send_over_the_limit_is_refused_and_the_stream_stays_usable() {
    let registry = Registry::new();
    let url = echo_server(options(Role::Server, 100, 300, 300), registry.clone()).await;
    let (ws, _) = heartbeat_tokio::tokio_tungstenite::connect_async(url)
        .await
        .unwrap();
    let opts = options(Role::Client, 100, 300, 300).limits(small());
    let mut stream = KeepAliveStream::new(ws, &opts);
    let max = small().max_send();
    let err = stream
        .send(Message::binary(vec![1; max + 1]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    stream.send(Message::binary(vec![1; max])).await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the echo comes back")
        .expect("stream open")
        .expect("data");
    assert_eq!(echoed.len(), max);
    assert_eq!(stream.status().state, State::Open);
}

#[tokio::test]
async fn handshakes_past_the_limit_are_refused_and_admitted_connections_keep_working() {
    let limits = small();
    let registry = Registry::with_limits(&limits);
    // A 500 ms handshake bound, so the half-open handshakes below end by themselves.
    let config = common::config_connect(Role::Server, 100, 300, 300, 500);
    let server = Options::new(config).limits(limits);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (results_tx, mut results) = tokio::sync::mpsc::unbounded_channel();
    {
        let registry = registry.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (server, registry, results_tx) =
                    (server.clone(), registry.clone(), results_tx.clone());
                tokio::spawn(async move {
                    match heartbeat_tokio::accept_tcp(tcp, &server, &registry).await {
                        Ok((_, conn)) => {
                            let _ = results_tx.send(Ok(()));
                            let (tx, mut rx) = conn.split();
                            while let Ok(m) = rx.recv().await {
                                let _ = tx.send(m).await;
                            }
                        }
                        Err(e) => {
                            let _ = results_tx.send(Err(e));
                        }
                    }
                });
            }
        });
    }
    let url = format!("ws://{addr}");
    // One well-behaved client first.
    let mut conns = connect(url.clone(), options(Role::Client, 100, 300, 300)).unwrap();
    let (tx, mut rx) = conns.next().await.unwrap().split();
    assert!(results.recv().await.unwrap().is_ok());

    // Two peers open TCP and never finish the upgrade: both handshake places taken.
    let mut stalled = Vec::new();
    for _ in 0..limits.max_handshakes {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(ms(100)).await;
    // The next one is refused at once, before any handshake work.
    let _late = TcpStream::connect(addr).await.unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(2), results.recv())
        .await
        .expect("refused at once")
        .unwrap();
    assert!(
        matches!(refused, Err(Error::Refused(Refused::Handshakes(2)))),
        "{refused:?}"
    );
    // The admitted connection is undisturbed.
    tx.send(Message::text("still here")).await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), Message::text("still here"));

    // The stalled handshakes time out (500 ms) and give their places back.
    for _ in 0..limits.max_handshakes {
        let timed_out = tokio::time::timeout(Duration::from_secs(3), results.recv())
            .await
            .expect("the handshake bound ends them")
            .unwrap();
        assert!(
            matches!(timed_out, Err(Error::ConnectTimeout(_))),
            "{timed_out:?}"
        );
    }
    assert_eq!(registry.admitted(), Some(1));
    let mut again = connect(url, options(Role::Client, 100, 300, 300)).unwrap();
    assert!(again.next().await.is_some());
    assert!(results.recv().await.unwrap().is_ok());
    assert_eq!(registry.admitted(), Some(2));
    drop(stalled);
}
