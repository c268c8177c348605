//! Recovery as fast as detection: after a client declares a silent server dead,
//! its first reconnect attempt follows the verdict by the backoff delay alone,
//! however long `close_timeout` is (the close of the dead connection drains in the
//! background and is cut short by the attempt).

use std::time::{Duration, Instant};

use heartbeat_core::{Backoff, Config, DeathReason, Jitter, State};
use heartbeat_mio::{ConnId, Ctx, Driver, Handler, Options};
use heartbeat_test_support::SilentProxy;

/// Deaths with wall-clock times.
#[derive(Default)]
struct Deaths(Vec<(DeathReason, Instant)>);

impl Handler for Deaths {
    fn on_dead(&mut self, _: &mut Ctx<'_>, _: ConnId, reason: DeathReason) {
        self.0.push((reason, Instant::now()));
    }
}

/// The fixed reconnect delay (no jitter): the whole backoff ceiling.
const BACKOFF: Duration = Duration::from_millis(200);
/// Loop scheduling and the 5 ms turns of the test.
const SLACK: Duration = Duration::from_millis(300);
/// Long enough that waiting for the dead peer's close is unmistakable.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

fn config() -> Config {
    Config::builder()
        .ping_interval(Duration::from_millis(200))
        .pong_timeout(Duration::from_millis(200))
        .close_timeout(CLOSE_TIMEOUT)
        .backoff(Backoff {
            base: BACKOFF,
            cap: BACKOFF,
            jitter: Jitter::None,
            ..Config::default().backoff()
        })
        .build()
        .unwrap()
}

#[test]
fn a_client_reconnects_after_a_silent_server_by_the_backoff_delay_alone() {
    // A healthy mio server behind a proxy that goes silent: no FIN, no RST, every
    // byte dropped, the kernels keep ACKing (a hung server, as the client sees it).
    let mut server = Driver::new(Options::new(config()), Deaths::default()).unwrap();
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let stop = server.stop_handle().unwrap();
    let server = std::thread::spawn(move || server.run().unwrap());
    let proxy = SilentProxy::start(addr).unwrap();

    let mut client = Driver::new(Options::new(config()), Deaths::default()).unwrap();
    let id = client.connect(&format!("ws://{}/", proxy.addr())).unwrap();
    let start = Instant::now();
    while client.stats().live < 1 {
        client.turn(Some(Duration::from_millis(5))).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5), "never opened");
    }
    client.run_for(Duration::from_millis(500)).unwrap();
    assert!(client.handler().0.is_empty(), "{:?}", client.handler().0);
    assert_eq!(client.stats().connects_started, 1);

    proxy.set_silent(true);
    let silenced = Instant::now();
    let mut state_at_death = None;
    let mut attempt_at = None;
    while attempt_at.is_none() && silenced.elapsed() < Duration::from_secs(3) {
        client.turn(Some(Duration::from_millis(5))).unwrap();
        if state_at_death.is_none() && !client.handler().0.is_empty() {
            state_at_death = client.ctx().state(id);
        }
        if client.stats().connects_started >= 2 {
            attempt_at = Some(Instant::now());
        }
    }
    stop.stop();
    server.join().unwrap();

    let deaths = &client.handler().0;
    assert_eq!(deaths.len(), 1, "{deaths:?}");
    let (reason, died) = deaths[0];
    assert!(
        matches!(reason, DeathReason::PongTimeout { .. }),
        "{reason:?}"
    );
    // At the verdict the client already waits to reconnect: the close of the dead
    // connection runs in the background.
    assert!(
        matches!(
            state_at_death,
            Some(State::Reconnecting {
                reason: DeathReason::PongTimeout { .. },
                attempt: 1,
                ..
            })
        ),
        "{state_at_death:?}"
    );
    let attempt_at = attempt_at.expect("no reconnect attempt within 3 s of the silence");
    let delay = attempt_at - died;
    println!(
        "silent server declared dead {:?} after the silence; first reconnect attempt {delay:?} after the verdict (backoff {BACKOFF:?}, close_timeout {CLOSE_TIMEOUT:?})",
        died - silenced
    );
    assert!(delay >= BACKOFF - Duration::from_millis(5), "{delay:?}");
    assert!(delay < BACKOFF + SLACK, "{delay:?}");
}
