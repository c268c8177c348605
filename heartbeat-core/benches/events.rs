//! `cargo bench -p heartbeat-core`: nanoseconds per event on the hot paths.
//!
//! A plain timing loop (no harness dependency) so the figures are cheap to
//! reproduce: each scenario runs a warm-up, then `ROUNDS` timed rounds of `N` events;
//! the median round is reported. Compare figures from the same run only: this
//! machine is shared and noisy.

use std::hint::black_box;
use std::time::{Duration, Instant as Wall};

use heartbeat_core::{Config, HeartbeatMachine, Instant, Liveness};

const N: u64 = 1_000_000;
const ROUNDS: usize = 9;

fn main() {
    let config = Config::builder()
        .ping_interval(Duration::from_millis(100))
        .pong_timeout(Duration::from_millis(100))
        .build()
        .expect("valid");
    let pong_only = Config::builder()
        .liveness(Liveness::PongOnly)
        .build()
        .expect("valid");

    println!("heartbeat-core event costs (median of {ROUNDS} rounds of {N} events)");
    report(
        "ping/pong cycle (timeout, poll ping, sent, pong, poll)",
        4,
        || {
            let mut m = HeartbeatMachine::new(config, 1);
            m.handle_connected(Instant::ZERO);
            let mut now = Instant::ZERO;
            let step = Duration::from_millis(100);
            Box::new(move || {
                now = now + step;
                m.handle_timeout(now);
                let mut payload = [0u8; 8];
                while let Some(a) = m.poll_action() {
                    if let heartbeat_core::Action::SendPing(p) = a {
                        payload.copy_from_slice(p.as_slice());
                    }
                }
                m.handle_ping_sent(now);
                m.handle_pong(now + Duration::from_millis(1), black_box(&payload));
                black_box(m.poll_timeout());
            })
        },
    );
    report(
        "inbound data frame (handle_frame + poll_timeout)",
        1,
        || {
            let mut m = HeartbeatMachine::new(config, 1);
            m.handle_connected(Instant::ZERO);
            let mut now = 0u64;
            Box::new(move || {
                now += 1_000;
                m.handle_frame(Instant::from_nanos(now));
                black_box(m.poll_timeout());
            })
        },
    );
    report("inbound ping answered (handle_ping + poll pong)", 1, || {
        let mut m = HeartbeatMachine::new(
            Config::builder().ping_flood(None).build().expect("valid"),
            1,
        );
        m.handle_connected(Instant::ZERO);
        let mut now = 0u64;
        Box::new(move || {
            now += 1_000;
            m.handle_ping(Instant::from_nanos(now), black_box(b"ping-payload"));
            black_box(m.poll_action());
        })
    });
    report("inbound data frame, pong-only liveness", 1, || {
        let mut m = HeartbeatMachine::new(pong_only, 1);
        m.handle_connected(Instant::ZERO);
        let mut now = 0u64;
        Box::new(move || {
            now += 1_000;
            m.handle_frame(Instant::from_nanos(now));
            black_box(m.poll_timeout());
        })
    });
}

/// Times `make()`'s closure; `events` is how many machine events one call makes.
fn report(name: &str, events: u64, make: impl Fn() -> Box<dyn FnMut()>) {
    let mut f = make();
    for _ in 0..N / 10 {
        f();
    }
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let mut f = make();
            let start = Wall::now();
            for _ in 0..N {
                f();
            }
            start.elapsed().as_nanos() as f64 / (N * events) as f64
        })
        .collect();
    rounds.sort_by(|a, b| a.total_cmp(b));
    println!(
        "  {name:<58} {:>6.2} ns/event  (min {:.2}, max {:.2})",
        rounds[ROUNDS / 2],
        rounds[0],
        rounds[ROUNDS - 1]
    );
}
