//! What a service operator sees: which connection every observer event and every
//! log line belongs to (its id, role, and peer address or URL).

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::{echo_server, ms, options};
use heartbeat_core::Role;
use heartbeat_tokio::{connect, ConnId, ConnInfo, Event, Registry};

type Seen = Arc<Mutex<Vec<(ConnInfo, Event)>>>;

/// The tests of this file run one at a time. tracing caches whether a callsite is
/// enabled, process-wide; a test that logs with no subscriber while the span test
/// installs its own (thread-local) one can leave the connection span's callsite
/// cached as disabled, and every line then prints without its span.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn recorder() -> (Seen, impl Fn(&ConnInfo, &Event) + Send + Sync + 'static) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    (seen, move |c: &ConnInfo, e: &Event| {
        sink.lock().unwrap().push((c.clone(), e.clone()));
    })
}

fn pongs_by_conn(seen: &Seen) -> Vec<(ConnId, usize)> {
    let seen = seen.lock().unwrap();
    let mut ids: Vec<ConnId> = seen.iter().map(|(c, _)| c.id).collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let n = seen
                .iter()
                .filter(|(c, e)| c.id == id && matches!(e, Event::Pong { .. }))
                .count();
            (id, n)
        })
        .collect()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + ms(5000);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(ms(10)).await;
    }
}

#[tokio::test]
async fn events_from_two_connections_carry_different_ids_and_the_servers_carry_the_peer() {
    let _serial = SERIAL.lock().await;
    let (server_seen, server_observer) = recorder();
    let registry = Registry::new();
    let url = echo_server(
        options(Role::Server, 50, 500, 300).observe_conn(server_observer),
        registry.clone(),
    )
    .await;
    let (client_seen, client_observer) = recorder();
    let client = options(Role::Client, 50, 500, 300).observe_conn(client_observer);
    let mut a = connect(url.clone(), client.clone()).unwrap();
    let mut b = connect(url.clone(), client).unwrap();
    let _a = a.next().await.expect("a connects");
    let _b = b.next().await.expect("b connects");

    let two_with_pongs = |seen: &Seen| {
        let by = pongs_by_conn(seen);
        by.len() == 2 && by.iter().all(|&(_, n)| n >= 2)
    };
    wait_for("two server connections with pongs", || {
        two_with_pongs(&server_seen)
    })
    .await;
    wait_for("two clients with pongs", || two_with_pongs(&client_seen)).await;

    let server = server_seen.lock().unwrap().clone();
    let peers: Vec<(ConnId, SocketAddr)> = server
        .iter()
        .map(|(c, e)| {
            assert_eq!(c.role, Role::Server, "{e:?}");
            assert_eq!(c.url, None);
            (c.id, c.peer.unwrap_or_else(|| panic!("no peer on {e:?}")))
        })
        .collect();
    let ids: Vec<ConnId> = pongs_by_conn(&server_seen).iter().map(|p| p.0).collect();
    let peer_of = |id| peers.iter().find(|p| p.0 == id).map(|p| p.1).unwrap();
    assert_ne!(ids[0], ids[1]);
    assert_ne!(peer_of(ids[0]), peer_of(ids[1]), "two clients, two peers");
    assert!(
        peers.iter().all(|&(id, peer)| peer == peer_of(id)),
        "one peer per id"
    );
    assert!(peer_of(ids[0]).ip().is_loopback());

    let client = client_seen.lock().unwrap().clone();
    for (c, e) in &client {
        assert_eq!(c.role, Role::Client, "{e:?}");
        assert_eq!(c.url.as_deref(), Some(url.as_str()), "{e:?}");
        assert_eq!(c.peer, None);
    }
    let client_ids: Vec<ConnId> = pongs_by_conn(&client_seen).iter().map(|p| p.0).collect();
    assert_ne!(client_ids[0], client_ids[1]);
    // Ids are unique in the process, not per side.
    assert!(client_ids.iter().all(|id| !ids.contains(id)));
}

/// Log lines captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_log_line_of_a_connection_is_inside_its_span_with_id_role_and_peer_or_url() {
    let _serial = SERIAL.lock().await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("heartbeat_tokio=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (server_seen, server_observer) = recorder();
    let registry = Registry::new();
    let url = echo_server(
        options(Role::Server, 50, 500, 300).observe_conn(server_observer),
        registry.clone(),
    )
    .await;
    let (client_seen, client_observer) = recorder();
    let mut conns = connect(
        url.clone(),
        options(Role::Client, 50, 500, 300).observe_conn(client_observer),
    )
    .unwrap();
    let conn = conns.next().await.expect("connects");
    wait_for("the server's first pong", || {
        !pongs_by_conn(&server_seen).is_empty()
    })
    .await;
    conn.close(heartbeat_core::CloseCode::NORMAL)
        .await
        .expect("close");
    assert!(conns.next().await.is_none());
    wait_for("the server's verdict", || registry.is_empty()).await;

    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let client_id = client_seen.lock().unwrap()[0].0.id;
    let server = server_seen.lock().unwrap()[0].0.clone();
    let client_span = format!("connection{{id={client_id} role=Client url=\"{url}\"}}");
    let server_span = format!(
        "connection{{id={} role=Server peer={}}}",
        server.id,
        server.peer.expect("peer")
    );
    assert!(text.contains(&client_span), "{client_span} in\n{text}");
    assert!(text.contains(&server_span), "{server_span} in\n{text}");
    for line in text.lines().filter(|l| l.contains("heartbeat_tokio::")) {
        assert!(line.contains("connection{id="), "outside a span: {line}");
    }
}
