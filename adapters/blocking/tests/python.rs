//! The blocking driver against Python `websockets` 17 servers: live, SIGSTOPped,
//! and stopped then resumed (reconnect). Skips (with a printed reason) when Python
//! `websockets` is missing, except under `CI=true`, where it fails.

use std::time::{Duration, Instant};

use heartbeat_blocking::{run_client, Error, KeepAlive, Next};
use heartbeat_core::{Backoff, CloseCode, Config, DeathReason, Jitter, Role};
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
    let mut ws = KeepAlive::connect(&url, config(Role::Server), Duration::from_secs(5)).unwrap();
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
    let mut ws = KeepAlive::connect(&url, cfg, Duration::from_secs(5)).unwrap();
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
    let end = run_client(
        &url,
        config(Role::Client),
        Duration::from_millis(300),
        |ws| {
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
        },
    );
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    assert_eq!(end, DeathReason::LocalClose { code: 1000 });
    println!("sessions started at {sessions:?}");
}
