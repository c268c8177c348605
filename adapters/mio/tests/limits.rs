//! `Limits::max_handshakes` and `max_connections` on the mio driver: half-open
//! handshakes cannot take every place, connections past the limits are refused
//! before any handshake work, and the connections held keep working.

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use heartbeat_core::{Config, State};
use heartbeat_mio::tungstenite::Message;
use heartbeat_mio::{ConnId, Ctx, Driver, Handler, Limits, Options, Side};

/// Echoes on the server side; counts echoes on the client side.
#[derive(Default)]
struct Echo {
    echoes: usize,
}

impl Handler for Echo {
    fn on_message(&mut self, ctx: &mut Ctx<'_>, id: ConnId, msg: Message) {
        match ctx.side(id) {
            Some(Side::Server) => {
                let _ = ctx.send(id, msg);
            }
            _ => self.echoes += 1,
        }
    }
}

fn run_until(d: &mut Driver<Echo>, what: &str, mut done: impl FnMut(&mut Driver<Echo>) -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !done(d) {
        assert!(
            Instant::now() < end,
            "{what}: not within 5 s: {:?}",
            d.stats()
        );
        d.run_for(Duration::from_millis(5)).unwrap();
    }
}

#[test]
fn handshakes_past_the_limit_are_refused_and_held_connections_keep_working() {
    let config = Config::builder()
        .connect_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let limits = Limits {
        max_handshakes: 2,
        max_connections: 10,
        ..Limits::default()
    };
    let mut d = Driver::new(Options::new(config).limits(limits), Echo::default()).unwrap();
    let addr = d.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    // A well-behaved connection first (its server side takes a handshake place
    // until it opens).
    let good = d.connect(&format!("ws://{addr}/")).unwrap();
    run_until(&mut d, "good open", |d| {
        d.ctx().state(good) == Some(State::Open) && d.stats().handshaking == 0
    });
    // Two peers that never finish the upgrade take both handshake places.
    let stalled: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    run_until(&mut d, "two handshakes", |d| d.stats().handshaking == 2);
    // The next one is refused at once: its socket is closed, no handshake runs.
    let mut late = TcpStream::connect(addr).unwrap();
    run_until(&mut d, "refused", |d| d.stats().accepts_refused == 1);
    late.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 1];
    assert!(
        matches!(late.read(&mut buf), Ok(0) | Err(_)),
        "the refused connection is closed"
    );
    // The held connection still echoes.
    d.ctx().send(good, Message::text("still here")).unwrap();
    run_until(&mut d, "echo", |d| d.handler().echoes == 1);
    // The stalled handshakes end at connect_timeout and give their places back.
    run_until(&mut d, "places back", |d| d.stats().handshaking == 0);
    let again = d.connect(&format!("ws://{addr}/")).unwrap();
    run_until(&mut d, "a new connection opens", |d| {
        d.ctx().state(again) == Some(State::Open)
    });
    assert_eq!(d.stats().accepts_refused, 1);
    drop(stalled);
}
