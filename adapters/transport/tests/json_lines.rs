//! End to end: the `json_lines` example's adapter over real loopback TCP.

#[path = "../examples/json_lines.rs"]
mod json_lines;

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use heartbeat_core::{DeathReason, Role};
use json_lines::{demo_config, run};

fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn two_live_ends_keep_each_other_alive_and_see_application_lines() {
    let (a, b) = pair();
    let a_handle = a.try_clone().unwrap();
    let mut b_writer = b.try_clone().unwrap();
    let peer = std::thread::spawn(move || run(b, demo_config(Role::Server), |_| {}).unwrap());
    writeln!(b_writer, "hello").unwrap();
    // 1.2 s = six ping intervals; then end the connection from our side.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1_200));
        a_handle.shutdown(Shutdown::Both).unwrap();
    });
    let mut lines = Vec::new();
    let ours = run(a, demo_config(Role::Server), |l| lines.push(l.to_owned())).unwrap();
    let theirs = peer.join().unwrap();
    assert_eq!(lines, ["hello"]);
    for r in [&ours, &theirs] {
        assert_eq!(r.reason, DeathReason::TransportClosed, "{r:?}");
        assert!(r.stats.pongs_matched >= 4, "{r:?}");
        assert_eq!(r.stats.pong_timeouts, 0, "{r:?}");
    }
}

#[test]
fn a_peer_that_stops_answering_is_declared_dead_within_the_bound() {
    let (ours, silent) = pair();
    let config = demo_config(Role::Server);
    // The peer answers pings for 500 ms, then hangs: it still reads (its kernel ACKs)
    // but never writes again.
    let hang_at = Duration::from_millis(500);
    let peer = std::thread::spawn(move || {
        let start = Instant::now();
        let mut w = silent.try_clone().unwrap();
        let mut pings = 0;
        for line in BufReader::new(silent).lines() {
            let Ok(line) = line else { break };
            if start.elapsed() < hang_at && line.contains(r#""type":"ping""#) {
                let pong = line.replace("ping", "pong");
                writeln!(w, "{pong}").unwrap();
                pings += 1;
            }
        }
        pings
    });
    let started = Instant::now();
    let report = run(ours, config, |_| {}).unwrap();
    let ended = started.elapsed();
    // `at` is the verdict's time on the run's clock (which starts with the run).
    let detected = report.at;
    assert!(
        matches!(report.reason, DeathReason::PongTimeout { .. }),
        "{report:?}"
    );
    assert!(report.stats.pongs_matched >= 1, "{report:?}");
    // The last answer came at most at `hang_at`; the verdict must follow within
    // the bound (plus scheduling slack on a shared machine).
    let bound = hang_at + config.detection_bound(Duration::ZERO) + Duration::from_millis(50);
    assert!(
        detected <= bound,
        "detected after {detected:?}, bound {bound:?}"
    );
    // Our close is never answered: the machine lets go when its close window ends.
    let closing = ended.saturating_sub(detected);
    println!(
        "silent JSON peer detected {detected:?} after start (hang at {hang_at:?}), \
         let go {closing:?} later"
    );
    assert!(
        closing + Duration::from_millis(5) >= config.close_timeout(),
        "{closing:?}"
    );
    assert!(
        closing <= config.close_timeout() + Duration::from_millis(100),
        "{closing:?}"
    );
    assert_eq!(report.stats.close_timeouts, 1, "{report:?}");
    assert!(peer.join().unwrap() >= 1);
}

#[test]
fn a_close_line_from_the_peer_ends_the_connection_with_its_code() {
    let (ours, mut peer) = pair();
    writeln!(peer, r#"{{"type":"close","code":1001}}"#).unwrap();
    let report = run(ours, demo_config(Role::Server), |_| {}).unwrap();
    assert_eq!(report.reason, DeathReason::PeerClosed { code: Some(1001) });
    // Our reply came back on the wire.
    let mut reply = String::new();
    BufReader::new(peer).read_line(&mut reply).unwrap();
    assert_eq!(reply.trim_end(), r#"{"type":"close","code":1001}"#);
}
