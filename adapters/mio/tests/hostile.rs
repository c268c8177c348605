//! The Autobahn-style hostile cases (`heartbeat_test_support::raw::cases`:
//! pings, fragmentation, UTF-8, close, limits) played by a raw-frame peer over
//! real loopback sockets against this driver as server and as client, with the
//! default limits. Each case must end with its RFC 6455 close code (1002, 1007,
//! 1009, or the echoed code), and a well-behaved connection on the same driver
//! must be undisturbed throughout.

use std::net::{SocketAddr, TcpListener};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use heartbeat_core::{CloseCode, Config, DeathReason, State};
use heartbeat_mio::tungstenite::Message;
use heartbeat_mio::{ConnId, Ctx, Driver, Handler, Options, Side};
use heartbeat_test_support::raw::{cases, RawPeer};

const WAIT: Duration = Duration::from_secs(5);

/// Echoes on the server side; counts echoes on the client side.
#[derive(Default)]
struct Echo {
    echoes: usize,
    good_deaths: Vec<DeathReason>,
    good: Option<ConnId>,
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
    fn on_dead(&mut self, _: &mut Ctx<'_>, id: ConnId, reason: DeathReason) {
        if Some(id) == self.good {
            self.good_deaths.push(reason);
        }
    }
}

/// A driver listening on loopback with a well-behaved client connected to itself.
fn driver() -> (Driver<Echo>, SocketAddr, ConnId) {
    let config = Config::builder()
        .ping_interval(Duration::from_millis(2000))
        .pong_timeout(Duration::from_millis(2000))
        .close_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let mut d = Driver::new(Options::new(config), Echo::default()).unwrap();
    let addr = d.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let good = d.connect(&format!("ws://{addr}/")).unwrap();
    d.handler_mut().good = Some(good);
    (d, addr, good)
}

/// Runs the driver until `peer` (a raw peer's thread) is done; returns its result.
fn run_until(d: &mut Driver<Echo>, peer: JoinHandle<Result<(), String>>) -> Result<(), String> {
    let end = Instant::now() + WAIT * 2;
    while !peer.is_finished() {
        assert!(Instant::now() < end, "the hostile peer never finished");
        d.run_for(Duration::from_millis(5)).unwrap();
    }
    peer.join().unwrap()
}

/// The well-behaved connection still echoes and is still open.
fn still_fine(d: &mut Driver<Echo>, good: ConnId, case: &str) {
    let before = d.handler().echoes;
    let end = Instant::now() + WAIT;
    while d.ctx().state(good) != Some(State::Open) {
        assert!(
            Instant::now() < end,
            "{case}: the good connection never opened"
        );
        d.run_for(Duration::from_millis(5)).unwrap();
    }
    d.ctx().send(good, Message::text(case.to_owned())).unwrap();
    while d.handler().echoes == before {
        assert!(
            Instant::now() < end,
            "{case}: no echo on the good connection"
        );
        d.run_for(Duration::from_millis(5)).unwrap();
    }
    assert_eq!(d.handler().good_deaths, [], "{case}");
}

#[test]
fn as_server_every_hostile_case_gets_its_close_code_and_a_good_client_is_undisturbed() {
    let (mut d, addr, good) = driver();
    still_fine(&mut d, good, "before");
    for case in cases() {
        let name = case.name;
        let peer = thread::spawn(move || {
            let mut peer = RawPeer::connect(addr).map_err(|e| e.to_string())?;
            peer.play(&case, WAIT)
        });
        assert_eq!(run_until(&mut d, peer), Ok(()), "{name}");
        still_fine(&mut d, good, name);
    }
}

#[test]
fn as_client_every_hostile_case_gets_its_close_code_and_a_good_connection_is_undisturbed() {
    let (mut d, _, good) = driver();
    still_fine(&mut d, good, "before");
    for case in cases() {
        let name = case.name;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let peer = thread::spawn(move || {
            let mut peer = RawPeer::accept(&listener).map_err(|e| e.to_string())?;
            peer.play(&case, WAIT)
        });
        let hostile = d.connect(&url).unwrap();
        assert_eq!(run_until(&mut d, peer), Ok(()), "{name}");
        // No reconnect to a peer that is gone.
        d.ctx().close(hostile, CloseCode::NORMAL);
        still_fine(&mut d, good, name);
    }
}
