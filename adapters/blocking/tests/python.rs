//! The blocking driver against Python `websockets` 17 servers: live, SIGSTOPped,
//! stopped then resumed (reconnect), and stopped for good while a second server
//! takes over (the reconnect is not held up by the dead server's close). Skips
//! (with a printed reason) when Python `websockets` is missing, except under
//! `CI=true`, where it fails.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heartbeat_blocking::{run_client, Error, KeepAlive, Next};
use heartbeat_core::{Backoff, CloseCode, Config, DeathReason, Jitter, Role, State};
use heartbeat_test_support::{require_websockets, PyPeer};

fn config(role: Role) -> Config {
    Config::builder()
        .role(role)
        .ping_interval(Duration::from_millis(200))
        .pong_timeout(Duration::from_millis(200))
        .close_timeout(Duration::from_millis(200))
        .backoff(Backoff {
            base: Duration::from_millis(100),
            multiplier: 2.0,
            cap: Duration::from_millis(400),
            jitter: Jitter::Equal,
            max_attempts: Some(20),
            reset_after: Duration::from_millis(500),
            max_requested_delay: Duration::from_secs(1),
        })
        .build()
        .unwrap()
}

#[test]
fn reads_return_messages_while_pings_keep_a_live_python_server_alive() {
    if !require_websockets("reads_return_messages_while_pings_keep_a_live_python_server_alive") {
        return;
    }
    let py = PyPeer::echo_server(None).unwrap();
    let url = format!("ws://{}/", py.addr.unwrap());
    let mut ws = KeepAlive::connect(&url, config(Role::Server)).unwrap();
    ws.send("hello".into()).unwrap();
    assert_eq!(ws.read().unwrap().into_text().unwrap(), "hello");
    // 1.2 s of nothing but heartbeats: no message, no death.
    let idle = ws
        .read_until(Some(Instant::now() + Duration::from_millis(1_200)))
        .unwrap();
    assert!(idle.is_none());
    let stats = ws.machine().stats();
    assert!(stats.pongs_matched >= 5, "{stats:?}");
    assert_eq!(stats.pong_timeouts, 0);
    assert_eq!(
        ws.close(CloseCode::NORMAL),
        DeathReason::LocalClose { code: 1000 }
    );
}

#[test]
fn read_returns_dead_soon_after_the_python_server_is_sigstopped() {
    if !require_websockets("read_returns_dead_soon_after_the_python_server_is_sigstopped") {
        return;
    }
    let py = PyPeer::echo_server(None).unwrap();
    let url = format!("ws://{}/", py.addr.unwrap());
    let cfg = config(Role::Server);
    let mut ws = KeepAlive::connect(&url, cfg).unwrap();
    assert!(ws
        .read_until(Some(Instant::now() + Duration::from_millis(500)))
        .unwrap()
        .is_none());
    py.stop();
    let stopped = Instant::now();
    let err = ws.read().unwrap_err();
    let after = stopped.elapsed();
    let bound = cfg.detection_bound(Duration::ZERO);
    println!("blocking read: SIGSTOPped python server detected after {after:?} (bound {bound:?})");
    assert!(
        matches!(err, Error::Dead(DeathReason::PongTimeout { .. })),
        "{err:?}"
    );
    assert!(after <= bound + Duration::from_millis(100), "{after:?}");
    // Sticky: later calls say the same.
    assert!(matches!(ws.send("x".into()), Err(Error::Dead(_))));
}

#[test]
fn the_client_loop_reconnects_after_the_server_hangs_and_resumes() {
    if !require_websockets("the_client_loop_reconnects_after_the_server_hangs_and_resumes") {
        return;
    }
    let py = PyPeer::echo_server(None).unwrap();
    let url = format!("ws://{}/", py.addr.unwrap());
    let mut sessions = Vec::new();
    let started = Instant::now();
    let py_ref = &py;
    let end = run_client(&url, config(Role::Client), |ws| {
        sessions.push(started.elapsed());
        if sessions.len() == 1 {
            // First connection: hang the server, wait for the verdict, resume it.
            py_ref.stop();
            let err = ws.read().unwrap_err();
            assert!(
                matches!(err, Error::Dead(DeathReason::PongTimeout { .. })),
                "{err:?}"
            );
            py_ref.resume();
            Next::Reconnect
        } else {
            ws.send("again".into()).unwrap();
            assert_eq!(ws.read().unwrap().into_text().unwrap(), "again");
            Next::Stop(CloseCode::NORMAL)
        }
    })
    .unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(end, DeathReason::LocalClose { code: 1000 });
    println!("sessions started at {sessions:?}");
}

/// After a pong-timeout death the client's next attempt follows the verdict by
/// the backoff delay alone: the hung server never answers our close, and with a
/// close timeout of 10 s, waiting for that answer would hold the reconnect for 10 s.
///
/// Two Python servers behind a forwarder that sends the first connection to `a`
/// and every later one to `b`; `a` is SIGSTOPped during the first session and
/// stays stopped. The forwarder records when each TCP connection arrives: the
/// second arrival is the first reconnect attempt.
#[test]
fn the_first_reconnect_follows_a_hung_server_s_death_by_the_backoff_delay_alone() {
    if !require_websockets(
        "the_first_reconnect_follows_a_hung_server_s_death_by_the_backoff_delay_alone",
    ) {
        return;
    }
    let a = PyPeer::echo_server(None).unwrap();
    let b = PyPeer::echo_server(None).unwrap();
    let router = Router::start(a.addr.unwrap(), b.addr.unwrap());
    let url = format!("ws://{}/", router.addr);
    let backoff = Backoff {
        base: Duration::from_millis(200),
        multiplier: 2.0,
        cap: Duration::from_secs(1),
        jitter: Jitter::Equal,
        max_attempts: Some(5),
        reset_after: Duration::from_secs(10),
        max_requested_delay: Duration::from_secs(1),
    };
    let config = Config::builder()
        .role(Role::Client)
        .ping_interval(Duration::from_millis(200))
        .pong_timeout(Duration::from_millis(200))
        .close_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .backoff(backoff)
        .build()
        .unwrap();
    let mut died = None;
    let mut sessions = 0;
    let started = Instant::now();
    let end = run_client(&url, config, |ws| {
        sessions += 1;
        if sessions == 1 {
            a.stop();
            let err = ws.read().unwrap_err();
            died = Some(Instant::now());
            assert!(
                matches!(err, Error::Dead(DeathReason::PongTimeout { .. })),
                "{err:?}"
            );
            assert!(matches!(
                ws.machine().state(),
                State::Reconnecting { attempt: 1, .. }
            ));
            Next::Reconnect
        } else {
            ws.send("after".into()).unwrap();
            assert_eq!(ws.read().unwrap().into_text().unwrap(), "after");
            Next::Stop(CloseCode::NORMAL)
        }
    })
    .unwrap();
    let total = started.elapsed();
    let died = died.expect("the first session saw the death");
    let arrivals = router.arrivals();
    assert_eq!(arrivals.len(), 2, "{arrivals:?}");
    let gap = arrivals[1].saturating_duration_since(died);
    // Equal jitter: the first delay is within [base/2, base].
    println!(
        "hung server: first reconnect attempt {gap:?} after the verdict \
         (backoff {:?}..={:?}, close timeout 10 s); whole run {total:?}",
        backoff.base / 2,
        backoff.base
    );
    assert_eq!(sessions, 2);
    assert_eq!(end, DeathReason::LocalClose { code: 1000 });
    assert!(
        gap + Duration::from_millis(5) >= backoff.base / 2,
        "{gap:?}"
    );
    assert!(gap < backoff.base + Duration::from_millis(300), "{gap:?}");
}

/// A loopback TCP forwarder: the first connection goes to `first`, every later one
/// to `rest`; it records when each connection arrived.
struct Router {
    addr: SocketAddr,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Router {
    fn start(first: SocketAddr, rest: SocketAddr) -> Router {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let log = arrivals.clone();
        std::thread::spawn(move || {
            for (i, down) in listener.incoming().enumerate() {
                let Ok(down) = down else { break };
                log.lock().unwrap().push(Instant::now());
                let Ok(up) = TcpStream::connect(if i == 0 { first } else { rest }) else {
                    continue;
                };
                for (from, to) in [(&down, &up), (&up, &down)] {
                    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    std::thread::spawn(move || {
                        let _ = io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Router { addr, arrivals }
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }
}
