//! The simulated driver carries out the machine's whole lifecycle: these
//! transcripts pin down what it does with `Connect`, `Disconnect`, closes and the
//! faults that only touch connection attempts.

use core::time::Duration;

use heartbeat_core::{
    Action, Backoff, CloseCode, Config, ConnectFailure, DeathReason, HeartbeatMachine, Instant,
    Jitter, Role, State,
};
use heartbeat_sim::{Fault, Frame, Link, Record, Sim, SimConfig, Start};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn at(v: u64) -> Instant {
    Instant::from_millis(v)
}

/// Pings every second, 500 ms pong timeout, 300 ms connect timeout, a fixed
/// 100 ms reconnect delay, and the close timeout given.
fn config(role: Role, close_timeout: Duration) -> Config {
    Config::builder()
        .role(role)
        .ping_interval(ms(1000))
        .pong_timeout(ms(500))
        .connect_timeout(ms(300))
        .close_timeout(close_timeout)
        .backoff(Backoff {
            base: ms(100),
            multiplier: 1.0,
            cap: ms(100),
            jitter: Jitter::None,
            max_attempts: None,
            reset_after: ms(1000),
            max_requested_delay: ms(5000),
        })
        .build()
        .expect("valid")
}

fn sim(config: Config, start: Start) -> Sim {
    Sim::new(
        HeartbeatMachine::new(config, 1),
        SimConfig {
            link: Link {
                latency: ms(10),
                ..Link::default()
            },
            start,
            write_delay: ms(5),
            ..SimConfig::default()
        },
    )
}

/// The log lines that are not ping traffic, from `from` on.
fn lifecycle(sim: &Sim, from: Instant) -> Vec<(Instant, Record)> {
    sim.log()
        .iter()
        .copied()
        .filter(|&(t, r)| {
            t >= from
                && !matches!(
                    r,
                    Record::Action(Action::SendPing(_))
                        | Record::PingSent
                        | Record::Received(Frame::Pong(_))
                        | Record::Pong(_)
                        | Record::Timeout
                )
        })
        .collect()
}

#[test]
fn the_driver_connects_in_two_round_trips() {
    let mut sim = sim(config(Role::Client, ms(1000)), Start::Connect);
    sim.run_until(at(100)).expect("bounded");
    assert_eq!(
        sim.log(),
        [
            (at(0), Record::Action(Action::Connect { attempt: 0 })),
            (at(40), Record::Connected),
        ]
    );
    assert_eq!(sim.machine().state(), State::Open);
    assert!(sim.holds_transport());
}

#[test]
fn a_connection_already_open_is_only_reported() {
    let mut sim = sim(config(Role::Server, ms(1000)), Start::Open);
    sim.run_until(at(100)).expect("bounded");
    assert_eq!(sim.log(), [(at(0), Record::Connected)]);
    assert_eq!(sim.machine().state(), State::Open);
}

#[test]
fn a_blackholed_attempt_is_abandoned_at_the_connect_timeout() {
    let mut sim = sim(config(Role::Client, ms(1000)), Start::Connect);
    sim.add_fault(Fault::Blackhole {
        from: at(0),
        until: Some(at(500)),
    });
    sim.run_until(at(1000)).expect("bounded");
    let timed_out = DeathReason::ConnectFailed(ConnectFailure::TimedOut { waited: ms(300) });
    assert_eq!(
        lifecycle(&sim, at(0)),
        [
            (at(0), Record::Action(Action::Connect { attempt: 0 })),
            // The machine's connect timer, not the driver, gives up on the attempt.
            (at(300), Record::Action(Action::Disconnect)),
            (at(400), Record::Action(Action::Connect { attempt: 1 })),
            // TCP gets through once the link heals; then the upgrade.
            (at(540), Record::Connected),
        ]
    );
    assert_eq!(sim.machine().stats().connect_timeouts, 1);
    assert!(
        !sim.deaths().any(|(_, r)| r == timed_out),
        "an attempt is no death"
    );
}

#[test]
fn a_refusal_with_retry_after_delays_the_next_attempt() {
    let mut sim = sim(config(Role::Client, ms(1000)), Start::Connect);
    sim.add_fault(Fault::Refuse {
        from: at(0),
        until: Some(at(2000)),
        retry_after: Some(ms(1500)),
    });
    sim.run_until(at(4000)).expect("bounded");
    assert_eq!(
        lifecycle(&sim, at(0)),
        [
            (at(0), Record::Action(Action::Connect { attempt: 0 })),
            (at(40), Record::RetryAfter(ms(1500))),
            (at(40), Record::ConnectFailed),
            (at(40), Record::Action(Action::Disconnect)),
            // The server's 1.5 s, not the 100 ms backoff.
            (at(1540), Record::Action(Action::Connect { attempt: 1 })),
            (at(1580), Record::RetryAfter(ms(1500))),
            (at(1580), Record::ConnectFailed),
            (at(1580), Record::Action(Action::Disconnect)),
            (at(3080), Record::Action(Action::Connect { attempt: 2 })),
            (at(3120), Record::Connected),
        ]
    );
}

#[test]
fn a_hung_peer_is_reconnected_after_the_backoff_alone() {
    // A 10 s close timeout, and a peer that will never answer our close.
    let mut sim = sim(config(Role::Client, ms(10_000)), Start::Connect);
    sim.add_fault(Fault::PeerHang {
        from: at(2000),
        until: None,
    });
    sim.run_until(at(5000)).expect("bounded");
    let (verdict, reason) = sim.deaths().next().expect("the hang was detected");
    assert!(
        matches!(reason, DeathReason::PongTimeout { .. }),
        "{reason:?}"
    );
    let after: Vec<_> = lifecycle(&sim, verdict)
        .into_iter()
        .filter(|(_, r)| !matches!(r, Record::Action(Action::Dead(_))))
        .take(4)
        .collect();
    assert_eq!(
        after,
        [
            (
                verdict,
                Record::Action(Action::SendClose {
                    code: CloseCode::INTERNAL_ERROR,
                    reason: "keepalive ping timeout"
                })
            ),
            (verdict + ms(5), Record::CloseSent),
            // The next attempt cuts the close short: the backoff delay alone.
            (verdict + ms(100), Record::Action(Action::Disconnect)),
            (
                verdict + ms(100),
                Record::Action(Action::Connect { attempt: 1 })
            ),
        ]
    );
    assert_eq!(sim.machine().stats().close_timeouts, 1, "cut short");
}

#[test]
fn a_peer_close_completes_once_our_reply_is_flushed() {
    let mut sim = sim(config(Role::Server, ms(1000)), Start::Open);
    sim.add_fault(Fault::PeerClose {
        at: at(300),
        code: 1001,
    });
    sim.run_until(at(2000)).expect("bounded");
    let reason = DeathReason::PeerClosed { code: Some(1001) };
    let reply = CloseCode::new(1001).expect("sendable");
    assert_eq!(
        lifecycle(&sim, at(1)),
        [
            (at(310), Record::Received(Frame::Close(1001))),
            (at(310), Record::Action(Action::Dead(reason))),
            (
                at(310),
                Record::Action(Action::SendClose {
                    code: reply,
                    reason: ""
                })
            ),
            (at(315), Record::CloseSent),
            (at(315), Record::Action(Action::Disconnect)),
        ]
    );
    assert_eq!(sim.machine().state(), State::Finished { reason });
    assert!(!sim.holds_transport());
}

#[test]
fn a_reset_ends_the_connection_without_a_close() {
    let mut sim = sim(config(Role::Client, ms(1000)), Start::Connect);
    sim.add_fault(Fault::PeerReset { at: at(500) });
    sim.run_until(at(700)).expect("bounded");
    assert_eq!(
        lifecycle(&sim, at(41)),
        [
            (at(510), Record::Received(Frame::End)),
            (
                at(510),
                Record::Action(Action::Dead(DeathReason::TransportClosed))
            ),
            (at(510), Record::Action(Action::Disconnect)),
            (at(610), Record::Action(Action::Connect { attempt: 1 })),
            (at(650), Record::Connected),
        ]
    );
}
