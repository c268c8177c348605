//! Every callback carries the connection's id; `Ctx::peer` adds the peer address,
//! so a server-wide handler can tell its clients apart.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use heartbeat_core::Config;
use heartbeat_mio::{ConnId, Ctx, Driver, Handler, Options};

#[derive(Default)]
struct Peers(Vec<(ConnId, Option<SocketAddr>)>);

impl Handler for Peers {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, id: ConnId) {
        self.0.push((id, ctx.peer(id)));
    }
}

fn config() -> Config {
    Config::builder()
        .ping_interval(Duration::from_millis(200))
        .pong_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

#[test]
fn two_accepted_connections_have_different_ids_and_their_own_peer_addresses() {
    let mut server = Driver::new(Options::new(config()), Peers::default()).unwrap();
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let stop = server.stop_handle().unwrap();
    let server_thread = std::thread::spawn(move || {
        server.run().unwrap();
        std::mem::take(&mut server.handler_mut().0)
    });

    let mut client = Driver::new(Options::new(config()), Peers::default()).unwrap();
    let a = client.connect(&format!("ws://{addr}/")).unwrap();
    let b = client.connect(&format!("ws://{addr}/")).unwrap();
    let start = Instant::now();
    while client.handler().0.len() < 2 {
        client.turn(Some(Duration::from_millis(50))).unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "clients never opened"
        );
    }
    // Give the server its turn to open both, then stop it.
    client.run_for(Duration::from_millis(300)).unwrap();
    stop.stop();
    let accepted = server_thread.join().unwrap();

    assert_ne!(a, b);
    for (id, peer) in &client.handler().0 {
        assert_eq!(*peer, Some(addr), "client {id:?} sees the server");
    }
    assert_eq!(accepted.len(), 2, "{accepted:?}");
    assert_ne!(accepted[0].0, accepted[1].0);
    let (p0, p1) = (accepted[0].1.unwrap(), accepted[1].1.unwrap());
    assert_ne!(p0, p1, "two clients, two peer addresses");
    assert!(p0.ip().is_loopback() && p1.ip().is_loopback());
}
