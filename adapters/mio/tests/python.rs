//! Interop with Python `websockets` 17: live peers stay, a SIGSTOPped peer is
//! detected and removed. Skips (with a printed reason) when Python `websockets` is
//! missing, except under `CI=true`, where it fails.

use std::time::{Duration, Instant};

use heartbeat_core::{Backoff, Config, DeathReason, Jitter};
use heartbeat_mio::{ConnId, Ctx, Driver, Handler, Options};
use heartbeat_test_support::{require_websockets, PyPeer};

#[derive(Default)]
struct Recorder {
    deaths: Vec<(ConnId, DeathReason, Instant)>,
    closed: Vec<ConnId>,
}

impl Handler for Recorder {
    fn on_dead(&mut self, _: &mut Ctx<'_>, id: ConnId, reason: DeathReason) {
        self.deaths.push((id, reason, Instant::now()));
    }
    fn on_closed(&mut self, _: &mut Ctx<'_>, id: ConnId, _: DeathReason) {
        self.closed.push(id);
    }
}

fn config() -> Config {
    Config::builder()
        .ping_interval(Duration::from_millis(200))
        .pong_timeout(Duration::from_millis(200))
        .close_timeout(Duration::from_millis(300))
        .build()
        .unwrap()
}

fn run_until(
    driver: &mut Driver<Recorder>,
    limit: Duration,
    mut done: impl FnMut(&Driver<Recorder>) -> bool,
) {
    let start = Instant::now();
    while !done(driver) && start.elapsed() < limit {
        driver.turn(Some(Duration::from_millis(20))).unwrap();
    }
}

#[test]
fn python_clients_stay_and_a_sigstopped_client_is_detected_and_removed() {
    if !require_websockets("python_clients_stay_and_a_sigstopped_client_is_detected_and_removed") {
        return;
    }
    let mut server = Driver::new(Options::new(config()), Recorder::default()).unwrap();
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("ws://{addr}/");
    // Two processes: one stays live, one will hang.
    let (live_url, hung_url) = (url.clone(), url);
    let live = std::thread::spawn(move || PyPeer::clients(&live_url, 3).unwrap());
    let hung = std::thread::spawn(move || PyPeer::clients(&hung_url, 2).unwrap());
    run_until(&mut server, Duration::from_secs(15), |d| {
        d.stats().live == 5
    });
    let (live, hung) = (live.join().unwrap(), hung.join().unwrap());
    assert_eq!(server.stats().live, 5);

    server.run_for(Duration::from_millis(1_000)).unwrap();
    assert!(
        server.handler().deaths.is_empty(),
        "{:?}",
        server.handler().deaths
    );

    hung.stop();
    let stopped = Instant::now();
    let bound = config().detection_bound(Duration::ZERO);
    run_until(&mut server, Duration::from_secs(3), |d| {
        d.handler().closed.len() == 2
    });
    let r = server.handler();
    assert_eq!(r.deaths.len(), 2, "{:?}", r.deaths);
    for (_, reason, at) in &r.deaths {
        assert!(
            matches!(reason, DeathReason::PongTimeout { .. }),
            "{reason:?}"
        );
        let after = *at - stopped;
        println!("SIGSTOPped python client detected after {after:?} (bound {bound:?})");
        assert!(after <= bound + Duration::from_millis(100), "{after:?}");
    }
    // Removed (close handshake aborted after the close timeout), the others stay.
    assert_eq!(r.closed.len(), 2);
    assert_eq!(server.stats().live, 3);
    assert_eq!(server.stats().connections, 3);
    server.run_for(Duration::from_millis(500)).unwrap();
    assert_eq!(server.handler().deaths.len(), 2);
    drop((live, hung));
}

#[test]
fn a_mio_client_stays_with_a_live_python_server_and_detects_it_stopped() {
    if !require_websockets("a_mio_client_stays_with_a_live_python_server_and_detects_it_stopped") {
        return;
    }
    let py = PyPeer::echo_server(None).unwrap();
    let url = format!("ws://{}/", py.addr.unwrap());
    let mut client = Driver::new(Options::new(config()), Recorder::default()).unwrap();
    let id = client.connect(&url).unwrap();
    run_until(&mut client, Duration::from_secs(5), |d| d.stats().live == 1);
    client.run_for(Duration::from_millis(1_000)).unwrap();
    assert!(client.handler().deaths.is_empty());
    let pongs = client.ctx().machine_stats(id).unwrap().pongs_matched;
    assert!(pongs >= 4, "python answered our pings: {pongs}");

    py.stop();
    let stopped = Instant::now();
    run_until(&mut client, Duration::from_secs(3), |d| {
        !d.handler().deaths.is_empty()
    });
    let (_, reason, at) = client.handler().deaths[0];
    assert!(
        matches!(reason, DeathReason::PongTimeout { .. }),
        "{reason:?}"
    );
    let after = at - stopped;
    let bound = config().detection_bound(Duration::ZERO);
    println!("SIGSTOPped python server detected after {after:?} (bound {bound:?})");
    assert!(after <= bound + Duration::from_millis(100));
}

/// Recovery as fast as detection against a real hung server: after the verdict the
/// first reconnect attempt follows by the backoff delay alone, not by
/// `close_timeout` (10 s here), although the stopped server never answers our close.
#[test]
fn a_client_reconnects_after_a_sigstopped_server_by_the_backoff_delay_alone() {
    if !require_websockets(
        "a_client_reconnects_after_a_sigstopped_server_by_the_backoff_delay_alone",
    ) {
        return;
    }
    let backoff = Duration::from_millis(200);
    let config = Config::builder()
        .ping_interval(Duration::from_millis(200))
        .pong_timeout(Duration::from_millis(200))
        .close_timeout(Duration::from_secs(10))
        .backoff(Backoff {
            base: backoff,
            cap: backoff,
            jitter: Jitter::None,
            ..Config::default().backoff()
        })
        .build()
        .unwrap();
    let py = PyPeer::echo_server(None).unwrap();
    let url = format!("ws://{}/", py.addr.unwrap());
    let mut client = Driver::new(Options::new(config), Recorder::default()).unwrap();
    let id = client.connect(&url).unwrap();
    run_until(&mut client, Duration::from_secs(5), |d| d.stats().live == 1);
    client.run_for(Duration::from_millis(500)).unwrap();
    assert!(client.handler().deaths.is_empty());

    py.stop();
    let stopped = Instant::now();
    let mut attempt_at = None;
    while attempt_at.is_none() && stopped.elapsed() < Duration::from_secs(3) {
        client.turn(Some(Duration::from_millis(5))).unwrap();
        if client.stats().connects_started >= 2 {
            attempt_at = Some(Instant::now());
        }
    }
    let deaths = &client.handler().deaths;
    assert_eq!(deaths.len(), 1, "{deaths:?}");
    let (dead_id, reason, died) = deaths[0];
    assert_eq!(dead_id, id);
    assert!(
        matches!(reason, DeathReason::PongTimeout { .. }),
        "{reason:?}"
    );
    let attempt_at = attempt_at.expect("no reconnect attempt within 3 s of SIGSTOP");
    let delay = attempt_at - died;
    println!(
        "SIGSTOPped python server declared dead {:?} after the stop; first reconnect attempt {delay:?} after the verdict (backoff {backoff:?}, close_timeout 10 s)",
        died - stopped
    );
    assert!(delay < backoff + Duration::from_millis(300), "{delay:?}");
    drop(py);
}
