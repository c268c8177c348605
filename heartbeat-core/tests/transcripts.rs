//! Transcript tests: at this millisecond, this input gives these actions, and
//! `poll_timeout` is this deadline. Each test fails if the feature it names is removed.
//!
//! Every `drain` also checks two properties of the whole model: the reason of an
//! [`Action::Dead`] is the reason [`State::reason`] reports right after it, and a
//! [`Action::Disconnect`] never comes after the [`Action::Connect`] of the same batch.

use core::time::Duration;
use std::borrow::Borrow;

use heartbeat_core::{
    Action, Backoff, Bounds, CloseCode, Config, ConfigBuilder, ConfigError, ConnectFailure,
    DeathReason, Field, Health, HeartbeatMachine, Instant, Jitter, Liveness, Payload, PingFlood,
    PingOutcome, PongOutcome, ProtocolError, Role, State, TimerKind,
};

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Interval 1 s, timeout 500 ms, close timeout 300 ms, connect timeout 2 s,
/// deterministic backoff 100 ms ×2 up to 1 s.
fn base() -> ConfigBuilder {
    Config::builder()
        .ping_interval(ms(1000))
        .pong_timeout(ms(500))
        .close_timeout(ms(300))
        .connect_timeout(ms(2000))
        .backoff(Backoff {
            base: ms(100),
            multiplier: 2.0,
            cap: ms(1000),
            jitter: Jitter::None,
            max_attempts: None,
            reset_after: ms(2000),
            max_requested_delay: ms(5000),
        })
}

fn with_backoff(b: ConfigBuilder, change: impl FnOnce(&mut Backoff)) -> ConfigBuilder {
    let mut backoff = b.build().expect("test config is valid").backoff();
    change(&mut backoff);
    b.backoff(backoff)
}

fn machine(b: ConfigBuilder) -> HeartbeatMachine {
    HeartbeatMachine::new(b.build().expect("test config is valid"), 1)
}

/// A machine adopting a socket that is already open at 0 ms.
fn open(b: ConfigBuilder) -> HeartbeatMachine {
    let mut m = machine(b);
    m.handle_connected(t(0));
    assert_eq!(drain(&mut m), []);
    m
}

/// Polls every queued action, checking the model's properties on the way.
fn drain<C: Borrow<Config>>(m: &mut HeartbeatMachine<C>) -> Vec<Action> {
    let actions: Vec<Action> = std::iter::from_fn(|| m.poll_action()).collect();
    for action in &actions {
        if let Action::Dead(reason) = action {
            assert_eq!(
                m.state().reason(),
                Some(*reason),
                "the state carries the reason of the Dead action"
            );
        }
    }
    let connect = actions
        .iter()
        .position(|a| matches!(a, Action::Connect { .. }));
    let disconnect = actions.iter().position(|a| *a == Action::Disconnect);
    if let (Some(c), Some(d)) = (connect, disconnect) {
        assert!(d < c, "Disconnect before Connect: {actions:?}");
    }
    assert_ne!(
        m.poll_timeout().map(|d| d.kind),
        Some(TimerKind::Actions),
        "nothing queued once drained"
    );
    actions
}

fn ping(seq: u64) -> Action {
    Action::SendPing(Payload::from_slice(&seq.to_be_bytes()).unwrap())
}

fn seq(s: u64) -> [u8; 8] {
    s.to_be_bytes()
}

fn deadline(m: &HeartbeatMachine) -> (Instant, TimerKind) {
    let d = m.poll_timeout().expect("a deadline is armed");
    (d.at, d.kind)
}

/// Sends the ping that is due at `at` and reports it handed to the transport.
fn ping_at(m: &mut HeartbeatMachine, at: u64, s: u64) {
    m.handle_timeout(t(at));
    assert_eq!(drain(m), [ping(s)], "ping {s} at {at} ms");
    m.handle_ping_sent(t(at));
}

fn dead_count(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Dead(_)))
        .count()
}

const TIMEOUT_CLOSE: Action = Action::SendClose {
    code: CloseCode::INTERNAL_ERROR,
    reason: "keepalive ping timeout",
};

// ----- Idle and the first connect -----------------------------------------------

#[test]
fn idle_arms_nothing_and_connect_starts_attempt_0_bounded_by_the_connect_timeout() {
    let mut m = machine(base());
    assert_eq!(m.state(), State::Idle);
    assert_eq!(m.poll_timeout(), None, "nothing armed while idle");
    assert_eq!(m.health(), Health::Suspect);
    m.connect(t(5));
    assert_eq!(deadline(&m), (t(5), TimerKind::Actions));
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 0 }]);
    assert_eq!(m.state(), State::Connecting { attempt: 0 });
    assert_eq!(deadline(&m), (t(2005), TimerKind::Connect));

    m.connect(t(6));
    assert_eq!(drain(&mut m), [], "a second connect is ignored");
    assert_eq!(m.stats().ignored_calls, 1, "and counted");
    assert_eq!(m.state(), State::Connecting { attempt: 0 });
    assert_eq!(deadline(&m), (t(2005), TimerKind::Connect), "not re-armed");

    m.handle_connected(t(40));
    assert_eq!(drain(&mut m), []);
    assert_eq!(m.state(), State::Open);
    assert_eq!(deadline(&m), (t(1040), TimerKind::Ping));
    assert_eq!(m.stats().connects, 1);
}

#[test]
fn ping_on_connect_sends_the_first_ping_as_the_connection_opens_then_every_interval() {
    let mut m = machine(base().ping_on_connect(true));
    m.connect(t(0));
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 0 }]);
    m.handle_connected(t(40));
    assert_eq!(deadline(&m), (t(40), TimerKind::Actions), "queued at once");
    assert_eq!(drain(&mut m), [ping(0)], "the first ping at connect");
    m.handle_ping_sent(t(41));
    assert_eq!(
        deadline(&m),
        (t(541), TimerKind::PongTimeout),
        "its pong timer runs"
    );
    assert_eq!(
        m.handle_pong(t(43), &seq(0)),
        PongOutcome::Matched {
            seq: 0,
            rtt: Some(ms(2))
        }
    );
    assert_eq!(drain(&mut m), []);
    assert_eq!(
        deadline(&m),
        (t(1040), TimerKind::Ping),
        "then every interval"
    );
    ping_at(&mut m, 1040, 1);

    // The default keeps the first ping one interval away.
    let mut m = machine(base());
    m.handle_connected(t(40));
    assert_eq!(drain(&mut m), []);
    assert_eq!(deadline(&m), (t(1040), TimerKind::Ping));
}

#[test]
fn handle_connected_from_idle_adopts_a_socket_that_is_already_open() {
    let mut m = machine(base());
    m.handle_connected(t(0));
    assert_eq!(drain(&mut m), [], "no Connect for a socket we did not open");
    assert_eq!(m.state(), State::Open);
    assert_eq!(deadline(&m), (t(1000), TimerKind::Ping));
    // The adopted socket ends with its one Disconnect like any other.
    m.handle_transport_closed(t(200));
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(DeathReason::TransportClosed),
            Action::Disconnect
        ]
    );
}

// ----- the connect timer -----------------------------------------------------------

#[test]
fn an_attempt_that_outlives_connect_timeout_is_dropped_and_retried_with_backoff() {
    let mut m = machine(base());
    m.connect(t(0));
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 0 }]);
    m.handle_timeout(t(1999));
    assert_eq!(drain(&mut m), []);
    assert_eq!(m.state(), State::Connecting { attempt: 0 });

    m.handle_timeout(t(2000));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    let reason = DeathReason::ConnectFailed(ConnectFailure::TimedOut { waited: ms(2000) });
    assert_eq!(
        m.state(),
        State::Reconnecting {
            reason,
            at: t(2100),
            attempt: 1
        }
    );
    assert_eq!(deadline(&m), (t(2100), TimerKind::Reconnect));
    assert_eq!(m.stats().connect_timeouts, 1);
    assert_eq!(m.stats().connect_failures, 1);

    m.handle_timeout(t(2099));
    assert_eq!(drain(&mut m), []);
    m.handle_timeout(t(2100));
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 1 }]);
    assert_eq!(m.state(), State::Connecting { attempt: 1 });
    assert_eq!(
        deadline(&m),
        (t(4100), TimerKind::Connect),
        "a fresh connect deadline"
    );

    m.handle_timeout(t(4100));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert_eq!(
        m.state(),
        State::Reconnecting {
            reason,
            at: t(4300),
            attempt: 2
        },
        "the backoff grows"
    );
}

#[test]
fn a_server_whose_upgrade_outlives_connect_timeout_is_finished() {
    let mut m = machine(base().role(Role::Server));
    m.connect(t(0));
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 0 }]);
    m.handle_timeout(t(2000));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert_eq!(
        m.state(),
        State::Finished {
            reason: DeathReason::ConnectFailed(ConnectFailure::TimedOut { waited: ms(2000) })
        }
    );
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn a_failed_attempt_is_dropped_and_retried_with_backoff() {
    let mut m = machine(base());
    m.connect(t(0));
    drain(&mut m);
    m.handle_connect_failed(t(30));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    let reason = DeathReason::ConnectFailed(ConnectFailure::Error);
    assert_eq!(
        m.state(),
        State::Reconnecting {
            reason,
            at: t(130),
            attempt: 1
        }
    );
    assert_eq!(deadline(&m), (t(130), TimerKind::Reconnect));
    assert_eq!(m.stats().connect_failures, 1);
    assert_eq!(m.stats().connect_timeouts, 0);
    m.handle_timeout(t(130));
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 1 }]);
    m.handle_connected(t(150));
    assert_eq!(m.state(), State::Open);
}

#[test]
fn connect_failures_back_off_exponentially_up_to_the_cap_and_max_attempts() {
    let mut m = machine(with_backoff(base(), |b| b.max_attempts = Some(5)));
    m.connect(t(0));
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 0 }]);
    let mut now = 0;
    let mut delays = vec![];
    for attempt in 1..=5 {
        now += 10;
        m.handle_connect_failed(t(now));
        assert_eq!(drain(&mut m), [Action::Disconnect]);
        let State::Reconnecting { at, attempt: n, .. } = m.state() else {
            panic!("{:?}", m.state())
        };
        assert_eq!(n, attempt);
        delays.push(at - t(now));
        now = at.as_nanos() / 1_000_000;
        m.handle_timeout(at);
        assert_eq!(drain(&mut m), [Action::Connect { attempt }]);
    }
    assert_eq!(delays, [ms(100), ms(200), ms(400), ms(800), ms(1000)]);
    m.handle_connect_failed(t(now + 10));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert_eq!(
        m.state(),
        State::Finished {
            reason: DeathReason::ConnectFailed(ConnectFailure::Error)
        },
        "max_attempts spent"
    );
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn full_jitter_spreads_delays_within_the_ceiling_deterministically_per_seed() {
    let config = with_backoff(base(), |b| b.jitter = Jitter::Full)
        .build()
        .unwrap();
    let run = |seed| {
        let mut m = HeartbeatMachine::new(config, seed);
        m.connect(t(0));
        drain(&mut m);
        (0..8)
            .map(|_| {
                let failed = m.now();
                m.handle_connect_failed(failed);
                assert_eq!(drain(&mut m), [Action::Disconnect]);
                let State::Reconnecting { at, attempt, .. } = m.state() else {
                    panic!("{:?}", m.state())
                };
                m.handle_timeout(at);
                assert_eq!(drain(&mut m), [Action::Connect { attempt }]);
                (at - failed, attempt)
            })
            .collect::<Vec<_>>()
    };
    let a = run(1);
    assert_eq!(a, run(1), "same seed, same delays");
    assert_ne!(a, run(2), "another seed, other delays");
    for (after, attempt) in a {
        let ceiling = (100u64 << (attempt - 1)).min(1000);
        assert!(after <= ms(ceiling), "{after:?} > {ceiling} ms");
    }
}

#[test]
fn a_server_requested_delay_stretches_the_next_attempt_up_to_its_cap() {
    let mut m = machine(base());
    m.connect(t(0));
    drain(&mut m);
    // Reported before the failure (a 503 with Retry-After).
    m.handle_retry_after(t(0), ms(3000));
    m.handle_connect_failed(t(0));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert!(matches!(m.state(), State::Reconnecting { at, attempt: 1, .. } if at == t(3000)));
    m.handle_timeout(t(3000));
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 1 }]);
    m.handle_retry_after(t(3010), Duration::from_secs(3600));
    m.handle_connect_failed(t(3010));
    drain(&mut m);
    assert!(
        matches!(m.state(), State::Reconnecting { at, attempt: 2, .. } if at == t(8010)),
        "capped at max_requested_delay: {:?}",
        m.state()
    );
    // Reported while already waiting: the deadline moves.
    m.handle_retry_after(t(3020), ms(4000));
    assert!(matches!(m.state(), State::Reconnecting { at, .. } if at == t(8010)));
    m.handle_retry_after(t(3030), ms(5000));
    assert_eq!(deadline(&m), (t(8030), TimerKind::Reconnect));
}

// ----- the close flush window ---------------------------------------------------

#[test]
fn a_peer_close_is_answered_and_the_transport_kept_until_the_reply_is_flushed() {
    let mut m = open(base());
    m.handle_close(t(300), Some(1001));
    let reason = DeathReason::PeerClosed { code: Some(1001) };
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(reason),
            Action::SendClose {
                code: CloseCode::GOING_AWAY,
                reason: ""
            }
        ]
    );
    assert!(!reason.is_fault());
    assert_eq!(m.state(), State::Closing { reason });
    assert_eq!(deadline(&m), (t(600), TimerKind::CloseTimeout));
    m.handle_timeout(t(305));
    assert_eq!(drain(&mut m), [], "the reply is not flushed yet");

    m.handle_close_sent(t(310));
    assert_eq!(
        drain(&mut m),
        [Action::Disconnect],
        "the handshake is complete"
    );
    assert_eq!(
        m.state(),
        State::Reconnecting {
            reason,
            at: t(410),
            attempt: 1
        }
    );
    m.handle_timeout(t(410));
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 1 }]);
    assert_eq!(m.stats().close_timeouts, 0);
}

#[test]
fn a_server_answering_a_peer_close_finishes_once_the_reply_is_flushed() {
    let mut m = open(base().role(Role::Server));
    m.handle_close(t(300), Some(1000));
    let reason = DeathReason::PeerClosed { code: Some(1000) };
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(reason),
            Action::SendClose {
                code: CloseCode::NORMAL,
                reason: ""
            }
        ]
    );
    m.handle_close_sent(t(320));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert_eq!(m.state(), State::Finished { reason });
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn a_reply_never_flushed_is_let_go_at_close_timeout() {
    let mut m = open(base());
    m.handle_close(t(300), None);
    let reason = DeathReason::PeerClosed { code: None };
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(reason),
            Action::SendClose {
                code: CloseCode::NORMAL,
                reason: ""
            }
        ]
    );
    m.handle_timeout(t(599));
    assert_eq!(drain(&mut m), []);
    m.handle_timeout(t(600));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert_eq!(m.stats().close_timeouts, 1);
    assert_eq!(
        m.state(),
        State::Reconnecting {
            reason,
            at: t(700),
            attempt: 1
        }
    );

    // The end of the stream also ends the wait.
    let mut m = open(base());
    m.handle_close(t(300), Some(1000));
    drain(&mut m);
    m.handle_transport_closed(t(350));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert_eq!(m.stats().close_timeouts, 0);
}

#[test]
fn a_local_close_is_dead_at_once_and_ends_at_the_peers_close() {
    let mut m = open(base());
    m.close(t(100), CloseCode::NORMAL);
    let reason = DeathReason::LocalClose { code: 1000 };
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(reason),
            Action::SendClose {
                code: CloseCode::NORMAL,
                reason: "closing"
            }
        ]
    );
    assert_eq!(m.state(), State::Closing { reason });
    assert_eq!(deadline(&m), (t(400), TimerKind::CloseTimeout));
    m.handle_close_sent(t(110));
    assert_eq!(drain(&mut m), [], "our close is out; the peer's is awaited");
    assert_eq!(m.state(), State::Closing { reason });
    m.handle_close(t(150), Some(1000));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert_eq!(m.state(), State::Finished { reason });
    assert_eq!(m.poll_timeout(), None);
    m.close(t(160), CloseCode::NORMAL);
    assert_eq!(drain(&mut m), [], "closing twice does nothing");
}

#[test]
fn a_local_close_ends_at_eof_or_at_close_timeout() {
    let reason = DeathReason::LocalClose { code: 1001 };

    let mut m = open(base());
    m.close(t(100), CloseCode::GOING_AWAY);
    assert_eq!(drain(&mut m)[0], Action::Dead(reason));
    m.handle_transport_closed(t(200));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert_eq!(m.state(), State::Finished { reason });

    let mut m = open(base());
    m.close(t(100), CloseCode::GOING_AWAY);
    drain(&mut m);
    m.handle_close_sent(t(120));
    m.handle_timeout(t(399));
    assert_eq!(drain(&mut m), []);
    m.handle_timeout(t(400));
    assert_eq!(drain(&mut m), [Action::Disconnect], "no second Dead");
    assert_eq!(m.state(), State::Finished { reason });
    assert_eq!(m.stats().close_timeouts, 1);
}

#[test]
fn a_local_close_while_connecting_or_waiting_drops_what_is_held() {
    let reason = DeathReason::LocalClose { code: 1000 };
    let mut m = machine(base());
    m.close(t(0), CloseCode::NORMAL);
    assert_eq!(drain(&mut m), [], "nothing was held");
    assert_eq!(m.state(), State::Finished { reason });

    let mut m = machine(base());
    m.connect(t(0));
    drain(&mut m);
    m.close(t(10), CloseCode::NORMAL);
    assert_eq!(
        drain(&mut m),
        [Action::Disconnect],
        "the attempt is dropped"
    );
    assert_eq!(m.state(), State::Finished { reason });

    // A Connect not yet polled is withdrawn: nothing started, nothing to drop.
    let mut m = machine(base());
    m.connect(t(0));
    m.close(t(0), CloseCode::NORMAL);
    assert_eq!(drain(&mut m), []);
    assert_eq!(m.state(), State::Finished { reason });

    // Waiting to reconnect: the last connection's reason stays.
    let mut m = open(base());
    m.handle_transport_closed(t(10));
    drain(&mut m);
    m.close(t(20), CloseCode::NORMAL);
    assert_eq!(drain(&mut m), []);
    assert_eq!(
        m.state(),
        State::Finished {
            reason: DeathReason::TransportClosed
        }
    );
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn a_permanent_close_code_stops_reconnection_unless_configured() {
    let mut m = open(base());
    m.handle_close(t(300), Some(1008));
    drain(&mut m);
    m.handle_close_sent(t(310));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert_eq!(
        m.state(),
        State::Finished {
            reason: DeathReason::PeerClosed { code: Some(1008) }
        }
    );

    let mut m = open(base().reconnect_on_permanent_close(true));
    m.handle_close(t(300), Some(1008));
    drain(&mut m);
    m.handle_close_sent(t(310));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert!(matches!(m.state(), State::Reconnecting { attempt: 1, .. }));
}

#[test]
fn a_reserved_close_code_from_the_peer_is_a_protocol_error() {
    let mut m = open(base());
    m.handle_close(t(300), Some(1005));
    let reason = DeathReason::ProtocolError(ProtocolError::InvalidCloseCode { code: 1005 });
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(reason),
            Action::SendClose {
                code: CloseCode::PROTOCOL_ERROR,
                reason: ""
            }
        ]
    );
}

// ----- death by fault and fast recovery -----------------------------------------

#[test]
fn a_silent_peer_is_dead_at_once_and_the_reconnect_is_scheduled_at_the_verdict() {
    let mut m = open(base().close_timeout(ms(10_000)));
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1499));
    assert_eq!(drain(&mut m), []);
    m.handle_timeout(t(1500));
    let reason = DeathReason::PongTimeout { waited: ms(500) };
    assert_eq!(drain(&mut m), [Action::Dead(reason), TIMEOUT_CLOSE]);
    let at = t(1600);
    assert_eq!(
        m.state(),
        State::Reconnecting {
            reason,
            at,
            attempt: 1
        },
        "scheduled now, not after the close handshake"
    );
    assert_eq!(m.health(), Health::Dead);
    assert_eq!(
        deadline(&m),
        (at, TimerKind::Reconnect),
        "close_timeout is 10 s"
    );

    // The dead connection drains in the background: nothing here ends it.
    assert_eq!(m.handle_pong(t(1550), &seq(0)), PongOutcome::Unsolicited);
    m.handle_close_sent(t(1560));
    assert_eq!(m.handle_ping(t(1570), b"late"), PingOutcome::Ignored);
    m.handle_frame(t(1580));
    m.handle_protocol_error(t(1590));
    assert_eq!(drain(&mut m), []);
    assert_eq!(
        m.state(),
        State::Reconnecting {
            reason,
            at,
            attempt: 1
        },
        "death is sticky"
    );
    m.handle_timeout(t(1599));
    assert_eq!(drain(&mut m), []);

    m.handle_timeout(at);
    assert_eq!(
        drain(&mut m),
        [Action::Disconnect, Action::Connect { attempt: 1 }],
        "the next attempt cuts the old close short"
    );
    assert_eq!(
        at - t(1500),
        ms(100),
        "detection to Connect: the backoff alone"
    );
    assert_eq!(m.state(), State::Connecting { attempt: 1 });
    assert_eq!(deadline(&m), (t(3600), TimerKind::Connect));
    assert_eq!(m.stats().close_timeouts, 1, "cut short");
    assert_eq!(m.stats().ignored_calls, 0, "late input is not misuse");
}

#[test]
fn the_dead_connection_is_let_go_when_it_ends_or_answers_before_the_next_attempt() {
    let reason = DeathReason::PongTimeout { waited: ms(500) };
    for (name, end) in [
        (
            "EOF",
            (|m: &mut HeartbeatMachine| m.handle_transport_closed(t(1520)))
                as fn(&mut HeartbeatMachine),
        ),
        ("the peer's close", |m| m.handle_close(t(1520), Some(1011))),
    ] {
        let mut m = open(base().close_timeout(ms(10_000)));
        ping_at(&mut m, 1000, 0);
        m.handle_timeout(t(1500));
        assert_eq!(drain(&mut m), [Action::Dead(reason), TIMEOUT_CLOSE]);
        end(&mut m);
        assert_eq!(drain(&mut m), [Action::Disconnect], "{name}");
        assert_eq!(
            m.state(),
            State::Reconnecting {
                reason,
                at: t(1600),
                attempt: 1
            },
            "{name}"
        );
        assert_eq!(deadline(&m), (t(1600), TimerKind::Reconnect));
        m.handle_timeout(t(1600));
        assert_eq!(
            drain(&mut m),
            [Action::Connect { attempt: 1 }],
            "{name}: one Disconnect only"
        );
        assert_eq!(m.stats().close_timeouts, 0, "{name}");
    }
}

#[test]
fn the_dead_connection_is_let_go_at_close_timeout_when_the_backoff_is_longer() {
    let mut m = open(with_backoff(base(), |b| {
        b.base = ms(1000);
        b.cap = ms(1000);
    }));
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1500));
    assert_eq!(dead_count(&drain(&mut m)), 1);
    assert_eq!(deadline(&m), (t(1800), TimerKind::CloseTimeout));
    m.handle_timeout(t(1800));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert_eq!(m.stats().close_timeouts, 1);
    assert_eq!(deadline(&m), (t(2500), TimerKind::Reconnect));
    m.handle_timeout(t(2500));
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 1 }]);
}

#[test]
fn a_server_keeps_the_close_handshake_after_a_fault_then_finishes() {
    let mut m = open(base().role(Role::Server).close_timeout(ms(10_000)));
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1500));
    let reason = DeathReason::PongTimeout { waited: ms(500) };
    assert_eq!(drain(&mut m), [Action::Dead(reason), TIMEOUT_CLOSE]);
    assert_eq!(m.state(), State::Closing { reason });
    assert_eq!(deadline(&m), (t(11_500), TimerKind::CloseTimeout));
    m.handle_close(t(1600), Some(1011));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert_eq!(m.state(), State::Finished { reason });
    assert_eq!(m.poll_timeout(), None, "nothing armed once finished");

    let mut m = open(base().role(Role::Server));
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1500));
    drain(&mut m);
    m.handle_timeout(t(1800));
    assert_eq!(drain(&mut m), [Action::Disconnect]);
    assert_eq!(m.state(), State::Finished { reason });
}

#[test]
fn a_transport_that_ends_is_dead_without_a_close_and_the_client_reconnects() {
    let mut m = open(base());
    m.handle_transport_closed(t(200));
    let reason = DeathReason::TransportClosed;
    assert_eq!(drain(&mut m), [Action::Dead(reason), Action::Disconnect]);
    assert_eq!(
        m.state(),
        State::Reconnecting {
            reason,
            at: t(300),
            attempt: 1
        }
    );
    m.handle_transport_closed(t(210));
    assert_eq!(drain(&mut m), [], "one Disconnect per transport");
}

#[test]
fn only_one_dead_per_connection_whatever_follows() {
    let mut m = open(base().close_timeout(ms(10_000)));
    let mut first = vec![];
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1500));
    first.extend(drain(&mut m));
    m.handle_ping(t(1510), &[0; 126]);
    m.handle_protocol_error(t(1520));
    m.handle_close(t(1530), Some(1002));
    m.handle_transport_closed(t(1540));
    m.handle_timeout(t(1550));
    first.extend(drain(&mut m));
    assert_eq!(dead_count(&first), 1, "{first:?}");
    assert_eq!(
        first
            .iter()
            .filter(|a| matches!(a, Action::SendClose { .. }))
            .count(),
        1,
        "one close per connection"
    );
    assert_eq!(
        first.iter().filter(|a| **a == Action::Disconnect).count(),
        1
    );

    // The next connection has its own.
    m.handle_timeout(t(1600));
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 1 }]);
    m.handle_connected(t(1650));
    m.handle_transport_closed(t(1700));
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(DeathReason::TransportClosed),
            Action::Disconnect
        ]
    );
}

#[test]
fn the_state_reason_equals_the_one_dead_reason_on_every_path_to_the_end() {
    type Kill = fn(&mut HeartbeatMachine);
    let paths: [(&str, Role, Kill, DeathReason); 9] = [
        (
            "pong timeout (client)",
            Role::Client,
            |m| {
                ping_at(m, 1000, 0);
                m.handle_timeout(t(1500));
            },
            DeathReason::PongTimeout { waited: ms(500) },
        ),
        (
            "pong timeout (server)",
            Role::Server,
            |m| {
                ping_at(m, 1000, 0);
                m.handle_timeout(t(1500));
            },
            DeathReason::PongTimeout { waited: ms(500) },
        ),
        (
            "peer close",
            Role::Client,
            |m| m.handle_close(t(100), Some(1000)),
            DeathReason::PeerClosed { code: Some(1000) },
        ),
        (
            "local close",
            Role::Client,
            |m| m.close(t(100), CloseCode::NORMAL),
            DeathReason::LocalClose { code: 1000 },
        ),
        (
            "transport closed",
            Role::Client,
            |m| m.handle_transport_closed(t(100)),
            DeathReason::TransportClosed,
        ),
        (
            "malformed frame",
            Role::Client,
            |m| m.handle_protocol_error(t(100)),
            DeathReason::ProtocolError(ProtocolError::Malformed),
        ),
        (
            "oversized ping",
            Role::Server,
            |m| {
                m.handle_ping(t(100), &[0; 200]);
            },
            DeathReason::ProtocolError(ProtocolError::ControlFrameTooLong { len: 200 }),
        ),
        (
            "invalid close code",
            Role::Client,
            |m| m.handle_close(t(100), Some(1006)),
            DeathReason::ProtocolError(ProtocolError::InvalidCloseCode { code: 1006 }),
        ),
        (
            "ping flood",
            Role::Client,
            |m| {
                // 11 pings a window (budget 10), a strike a window, 2 forgiven.
                for window in 0..3 {
                    for i in 0..11 {
                        m.handle_ping(t(100 + window * 1000 + i), b"p");
                    }
                }
            },
            DeathReason::PingFlood,
        ),
    ];
    for (name, role, kill, expected) in paths {
        let mut m = open(base().role(role));
        kill(&mut m);
        let mut actions = drain(&mut m);
        assert_eq!(m.state().reason(), Some(expected), "{name}");
        // Run the rest of this connection's life: flushes, timers, up to the next
        // attempt or the end. The reason never changes and no second Dead comes.
        for _ in 0..10 {
            if matches!(m.state(), State::Finished { .. } | State::Connecting { .. }) {
                break;
            }
            assert_eq!(m.state().reason(), Some(expected), "{name}");
            m.handle_close_sent(m.now());
            actions.extend(drain(&mut m));
            if let Some(d) = m.poll_timeout() {
                m.handle_timeout(d.at);
                actions.extend(drain(&mut m));
            }
        }
        let deads: Vec<_> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Dead(r) => Some(*r),
                _ => None,
            })
            .collect();
        assert_eq!(deads, [expected], "{name}: {actions:?}");
        match m.state() {
            State::Finished { reason } => assert_eq!(reason, expected, "{name}"),
            State::Connecting { .. } => assert_eq!(role, Role::Client, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(
            actions.iter().filter(|a| **a == Action::Disconnect).count(),
            1,
            "{name}: {actions:?}"
        );
    }
}

#[test]
fn every_transport_ends_with_exactly_one_disconnect_before_the_next_connect() {
    let mut m = open(base());
    let mut held = true; // the adopted socket
    let mut log = vec![];
    let mut step = |m: &mut HeartbeatMachine, log: &mut Vec<Action>| {
        for a in drain(m) {
            match a {
                Action::Connect { .. } => {
                    assert!(!held, "Connect while a transport is held: {log:?}");
                    held = true;
                }
                Action::Disconnect => {
                    assert!(held, "Disconnect of nothing: {log:?}");
                    held = false;
                }
                _ => {}
            }
            log.push(a);
        }
    };
    // Open -> pong timeout -> fast recovery -> Connect.
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1500));
    step(&mut m, &mut log);
    m.handle_timeout(t(1600));
    step(&mut m, &mut log);
    // Attempt 1 fails, attempt 2 times out, attempt 3 opens.
    m.handle_connect_failed(t(1610));
    step(&mut m, &mut log);
    m.handle_timeout(t(1810));
    step(&mut m, &mut log);
    m.handle_timeout(t(3810));
    step(&mut m, &mut log);
    let State::Reconnecting { at, .. } = m.state() else {
        panic!("{:?}", m.state())
    };
    m.handle_timeout(at);
    step(&mut m, &mut log);
    m.handle_connected(at);
    // The peer closes; our reply is flushed.
    m.handle_close(at + ms(10), Some(1000));
    step(&mut m, &mut log);
    m.handle_close_sent(at + ms(20));
    step(&mut m, &mut log);
    assert!(!held);
    assert_eq!(
        log.iter().filter(|a| **a == Action::Disconnect).count(),
        4,
        "{log:?}"
    );
}

// ----- pinging and pong matching --------------------------------------------------

#[test]
fn pings_at_the_interval_and_a_matching_pong_gives_rtt_and_rearms() {
    let mut m = open(base());
    assert_eq!(deadline(&m), (t(1000), TimerKind::Ping));
    m.handle_timeout(t(999));
    assert_eq!(drain(&mut m), [], "early handle_timeout is harmless");
    ping_at(&mut m, 1000, 0);
    assert_eq!(deadline(&m), (t(1500), TimerKind::PongTimeout));
    assert_eq!(
        m.handle_pong(t(1120), &seq(0)),
        PongOutcome::Matched {
            seq: 0,
            rtt: Some(ms(120))
        }
    );
    assert_eq!(drain(&mut m), []);
    assert_eq!(m.rtt().last, Some(ms(120)));
    assert_eq!(deadline(&m), (t(2000), TimerKind::Ping));
    ping_at(&mut m, 2000, 1);
    assert_eq!(m.stats().pings_sent, 2);
    assert_eq!(m.stats().pongs_matched, 1);
}

#[test]
fn pong_outcomes_say_what_each_pong_did() {
    let mut m = open(base());
    assert_eq!(m.handle_pong(t(10), b"hello"), PongOutcome::Unsolicited);
    assert_eq!(
        m.handle_pong(t(20), &seq(0)),
        PongOutcome::Unsolicited,
        "ping 0 is not sent yet"
    );
    ping_at(&mut m, 1000, 0);
    m.handle_frame(t(1100)); // proof of life; ping 0 stays unanswered
    ping_at(&mut m, 2000, 1);
    assert_eq!(
        m.handle_pong(t(2030), &seq(0)),
        PongOutcome::Matched { seq: 0, rtt: None },
        "an earlier ping: acknowledged, no RTT sample"
    );
    assert_eq!(m.rtt().samples, 0);
    assert_eq!(
        m.handle_pong(t(2050), &seq(1)),
        PongOutcome::Matched {
            seq: 1,
            rtt: Some(ms(50))
        },
        "the latest ping"
    );
    assert_eq!(
        m.handle_pong(t(2060), &seq(1)),
        PongOutcome::Stale { seq: 1 }
    );
    assert_eq!(
        m.handle_pong(t(2070), &seq(0)),
        PongOutcome::Stale { seq: 0 }
    );
    assert_eq!(m.handle_pong(t(2080), &seq(9)), PongOutcome::Unsolicited);
    assert_eq!(m.stats().pongs_matched, 2);
    assert_eq!(m.stats().unsolicited_pongs, 5);

    m.handle_transport_closed(t(2100));
    drain(&mut m);
    assert_eq!(
        m.handle_pong(t(2110), &seq(1)),
        PongOutcome::Unsolicited,
        "not open"
    );
    m.handle_timeout(t(2200));
    assert_eq!(drain(&mut m), [Action::Connect { attempt: 1 }]);
    m.handle_connected(t(2210));
    assert_eq!(
        m.handle_pong(t(2220), &seq(1)),
        PongOutcome::Stale { seq: 1 },
        "a pong from the previous connection never matches"
    );
}

#[test]
fn pong_timer_starts_when_the_ping_is_handed_to_the_transport() {
    let mut m = open(base());
    m.handle_timeout(t(1000));
    assert_eq!(drain(&mut m), [ping(0)]);
    assert_eq!(
        deadline(&m),
        (t(1500), TimerKind::PongTimeout),
        "bounded before the report"
    );
    // The ping sat behind a large write for 300 ms.
    m.handle_ping_sent(t(1300));
    assert_eq!(deadline(&m), (t(1800), TimerKind::PongTimeout));
    m.handle_timeout(t(1500));
    assert_eq!(
        drain(&mut m),
        [],
        "no false death while the ping was queued"
    );
    m.handle_pong(t(1700), &seq(0));
    assert_eq!(m.rtt().last, Some(ms(400)));
    assert_eq!(m.state(), State::Open);
}

#[test]
fn a_ping_never_handed_to_the_transport_still_times_out() {
    let mut m = open(base());
    m.handle_timeout(t(1000));
    assert_eq!(drain(&mut m), [ping(0)]);
    m.handle_timeout(t(1500));
    assert_eq!(
        drain(&mut m)[0],
        Action::Dead(DeathReason::PongTimeout { waited: ms(500) })
    );
}

#[test]
fn unknown_and_unsolicited_pongs_are_ignored_and_counted() {
    let mut m = open(base().liveness(Liveness::PongOnly));
    m.handle_pong(t(10), b"hello");
    ping_at(&mut m, 1000, 0);
    m.handle_pong(t(1100), &seq(7));
    m.handle_pong(t(1150), b"x");
    assert_eq!(m.stats().unsolicited_pongs, 3);
    m.handle_timeout(t(1500));
    assert!(matches!(
        drain(&mut m)[0],
        Action::Dead(DeathReason::PongTimeout { .. })
    ));
}

#[test]
fn a_pong_for_a_later_ping_acknowledges_the_earlier_ones() {
    let mut m = open(base());
    ping_at(&mut m, 1000, 0);
    m.handle_frame(t(1100)); // any frame proves liveness; ping 0 stays unanswered
    assert_eq!(deadline(&m), (t(2000), TimerKind::Ping));
    ping_at(&mut m, 2000, 1);
    assert!(matches!(
        m.handle_pong(t(2050), &seq(1)),
        PongOutcome::Matched { seq: 1, .. }
    ));
    assert_eq!(m.rtt().last, Some(ms(50)));
    assert_eq!(
        m.handle_pong(t(2060), &seq(0)),
        PongOutcome::Stale { seq: 0 },
        "ping 0 was acknowledged by pong 1"
    );
    assert_eq!(m.stats().unsolicited_pongs, 1);
}

// ----- liveness evidence -------------------------------------------------------

#[test]
fn with_any_frame_liveness_inbound_data_proves_the_peer_alive() {
    let mut m = open(base());
    ping_at(&mut m, 1000, 0);
    m.handle_frame(t(1400));
    m.handle_timeout(t(1500));
    assert_eq!(drain(&mut m), []);
    assert_eq!(m.state(), State::Open);
}

#[test]
fn with_pong_only_liveness_inbound_data_does_not_count() {
    let mut m = open(base().liveness(Liveness::PongOnly));
    ping_at(&mut m, 1000, 0);
    m.handle_frame(t(1400));
    assert_eq!(m.handle_ping(t(1450), b"peer ping"), PingOutcome::Answered);
    assert_eq!(
        drain(&mut m),
        [Action::SendPong(Payload::from_slice(b"peer ping").unwrap())]
    );
    m.handle_timeout(t(1500));
    assert_eq!(
        drain(&mut m)[0],
        Action::Dead(DeathReason::PongTimeout { waited: ms(500) })
    );
}

#[test]
fn idle_only_pinging_waits_for_a_whole_idle_interval() {
    let mut m = open(base().idle_only(true));
    m.handle_frame(t(600));
    assert_eq!(deadline(&m), (t(1600), TimerKind::Ping));
    m.handle_timeout(t(1000));
    assert_eq!(drain(&mut m), [], "traffic already proves liveness");
    m.handle_frame(t(1500));
    ping_at(&mut m, 2500, 0);
}

#[test]
fn idle_only_requires_any_frame_liveness() {
    let err = base()
        .idle_only(true)
        .liveness(Liveness::PongOnly)
        .build()
        .unwrap_err();
    assert_eq!(
        err,
        ConfigError::Requires {
            field: Field::IdleOnly,
            requires: Field::Liveness
        }
    );
}

#[test]
fn the_dead_close_code_is_configurable_but_never_reserved() {
    let code = CloseCode::new(4000).unwrap();
    let mut m = open(base().dead_close_code(code));
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1500));
    assert!(drain(&mut m).contains(&Action::SendClose {
        code,
        reason: "keepalive ping timeout"
    }));
    for reserved in [1005, 1006, 1015, 999] {
        assert_eq!(CloseCode::new(reserved), None, "{reserved} cannot be built");
    }
}

// ----- a ping pulled forward to go with a pong ----------------------------------

fn pong(payload: &[u8]) -> Action {
    Action::SendPong(Payload::from_slice(payload).unwrap())
}

#[test]
fn a_ping_due_within_the_window_leaves_with_the_pong_early_and_the_schedule_follows_it() {
    let mut m = open(base());
    // Interval 1 s: our ping is due at 1000 ms.
    m.handle_ping(t(850), b"a");
    assert!(
        !m.ping_early(t(850), ms(125)),
        "due at 1000, past 850 + 125"
    );
    assert_eq!(drain(&mut m), [pong(b"a")]);
    m.handle_ping(t(900), b"b");
    assert!(
        m.ping_early(t(900), ms(125)),
        "due at 1000, within 900 + 125"
    );
    assert_eq!(
        drain(&mut m),
        [pong(b"b"), ping(0)],
        "pong first, then the ping: one write carries both"
    );
    m.handle_ping_sent(t(900));
    assert_eq!(deadline(&m), (t(1400), TimerKind::PongTimeout));
    assert_eq!(
        m.handle_pong(t(950), &seq(0)),
        PongOutcome::Matched {
            seq: 0,
            rtt: Some(ms(50))
        }
    );
    assert_eq!(
        deadline(&m),
        (t(1900), TimerKind::Ping),
        "the next ping is a full interval after the early one"
    );
    m.handle_timeout(t(1000));
    assert_eq!(drain(&mut m), [], "nothing fires at the old due time");
}

#[test]
fn an_early_ping_never_replaces_one_awaiting_its_pong_so_a_peer_that_pings_but_never_answers_dies_in_time(
) {
    // Only pongs prove life: the peer's pings keep coming, its pongs never do.
    let mut m = open(base().liveness(Liveness::PongOnly));
    m.handle_ping(t(900), b"a");
    assert!(m.ping_early(t(900), ms(125)));
    assert_eq!(drain(&mut m), [pong(b"a"), ping(0)]);
    m.handle_ping_sent(t(900));
    for at in [1000, 1100, 1200, 1300] {
        m.handle_ping(t(at), b"b");
        assert!(
            !m.ping_early(t(at), ms(1000)),
            "a ping awaits its pong at {at} ms: nothing is pulled forward"
        );
        assert_eq!(drain(&mut m), [pong(b"b")]);
        assert_eq!(deadline(&m), (t(1400), TimerKind::PongTimeout));
    }
    m.handle_timeout(t(1400));
    let actions = drain(&mut m);
    assert_eq!(
        actions[0],
        Action::Dead(DeathReason::PongTimeout { waited: ms(500) }),
        "dead at the early ping + the timeout, within interval + timeout of the last evidence"
    );
    assert!(t(1400) <= t(0) + base().build().unwrap().detection_bound(Duration::ZERO));
}

#[test]
fn pinging_early_needs_an_open_connection_and_an_armed_ping_timer() {
    let mut m = machine(base());
    assert!(!m.ping_early(t(0), ms(5000)), "idle");
    m.connect(t(0));
    drain(&mut m);
    assert!(!m.ping_early(t(10), ms(5000)), "connecting");
    // idle_only: the peer's ping is traffic, which postpones our ping a whole interval.
    let mut m = open(base().idle_only(true));
    m.handle_ping(t(900), b"a");
    assert!(!m.ping_early(t(900), ms(999)));
    assert_eq!(drain(&mut m), [pong(b"a")]);
    assert_eq!(deadline(&m), (t(1900), TimerKind::Ping));
    let mut m = open(base());
    m.close(t(100), CloseCode::NORMAL);
    drain(&mut m);
    assert!(!m.ping_early(t(900), ms(5000)), "closing");
}

// ----- answering pings ---------------------------------------------------------

#[test]
fn a_peer_ping_is_answered_with_its_payload_and_pending_pongs_coalesce() {
    let mut m = open(base());
    assert_eq!(m.handle_ping(t(10), b"one"), PingOutcome::Answered);
    assert_eq!(m.handle_ping(t(11), b"two"), PingOutcome::Answered);
    assert_eq!(
        drain(&mut m),
        [Action::SendPong(Payload::from_slice(b"two").unwrap())]
    );
    assert_eq!(m.stats().pings_received, 2);
    assert_eq!(m.stats().pongs_sent, 1);
}

#[test]
fn ping_outcomes_say_what_each_ping_did() {
    let limit = PingFlood {
        max_pings: 2,
        window: ms(1000),
        max_strikes: 1,
    };
    let mut m = machine(base().ping_flood(Some(limit)));
    assert_eq!(m.handle_ping(t(0), b"p"), PingOutcome::Ignored, "not open");
    assert_eq!(
        m.stats().ignored_calls,
        1,
        "pinging a machine not open is misuse"
    );
    m.handle_connected(t(0));
    let outcomes: Vec<_> = (0..4).map(|i| m.handle_ping(t(100 + i), b"p")).collect();
    assert_eq!(
        outcomes,
        [
            PingOutcome::Answered,
            PingOutcome::Answered,
            PingOutcome::Refused,
            PingOutcome::Refused
        ]
    );
    assert_eq!(drain(&mut m).len(), 1, "one coalesced pong");
    let outcomes: Vec<_> = (0..3).map(|i| m.handle_ping(t(1100 + i), b"p")).collect();
    assert_eq!(
        outcomes,
        [
            PingOutcome::Answered,
            PingOutcome::Answered,
            PingOutcome::Violation
        ],
        "the second strike ends it"
    );
    assert_eq!(drain(&mut m)[1], Action::Dead(DeathReason::PingFlood));
    assert_eq!(
        m.handle_ping(t(1200), b"p"),
        PingOutcome::Ignored,
        "a connection being closed"
    );
    assert_eq!(m.stats().ignored_calls, 1, "that is not misuse");

    let mut m = open(base());
    assert_eq!(m.handle_ping(t(10), &[0; 126]), PingOutcome::Violation);
}

#[test]
fn an_oversized_ping_is_a_protocol_error_closed_with_1002() {
    let mut m = open(base());
    m.handle_ping(t(10), &[0u8; 126]);
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(DeathReason::ProtocolError(
                ProtocolError::ControlFrameTooLong { len: 126 }
            )),
            Action::SendClose {
                code: CloseCode::PROTOCOL_ERROR,
                reason: "control frame too long"
            }
        ]
    );
}

#[test]
fn each_violation_closes_with_its_rfc_6455_code() {
    // RFC 6455 §7.4.1: 1007 for data that is not what its type says (invalid UTF-8),
    // 1009 for a message too big to process, 1002 for any other protocol error.
    let cases = [
        (ProtocolError::InvalidUtf8, 1007, "invalid UTF-8"),
        (ProtocolError::TooBig, 1009, "message too big"),
        (ProtocolError::Malformed, 1002, "protocol error"),
    ];
    for (error, code, text) in cases {
        let mut m = open(base().role(Role::Server));
        m.handle_violation(t(10), error);
        assert_eq!(
            drain(&mut m),
            [
                Action::Dead(DeathReason::ProtocolError(error)),
                Action::SendClose {
                    code: CloseCode::new(code).expect("sendable"),
                    reason: text
                }
            ],
            "{error:?}"
        );
        assert_eq!(error.close_code().get(), code);
        // Noise after the verdict changes nothing.
        m.handle_violation(t(11), ProtocolError::TooBig);
        assert_eq!(drain(&mut m), []);
        assert_eq!(m.state().reason(), Some(DeathReason::ProtocolError(error)));
    }
}

#[test]
fn a_ping_flood_is_answered_within_budget_then_struck_then_closed_with_1008() {
    let limit = PingFlood {
        max_pings: 3,
        window: ms(1000),
        max_strikes: 1,
    };
    let mut m = open(base().role(Role::Server).ping_flood(Some(limit)));
    let mut pongs = 0;
    for i in 0..4 {
        m.handle_ping(t(100 + i), b"p");
        pongs += drain(&mut m).len();
    }
    assert_eq!(pongs, 3, "the 4th ping of the window is refused (strike 1)");
    assert_eq!(m.state(), State::Open);
    for i in 0..3 {
        m.handle_ping(t(1100 + i), b"p");
        assert_eq!(drain(&mut m).len(), 1, "a fresh window has a fresh budget");
    }
    m.handle_ping(t(1200), b"p");
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(DeathReason::PingFlood),
            Action::SendClose {
                code: CloseCode::POLICY_VIOLATION,
                reason: "too many pings"
            }
        ]
    );
    m.handle_ping(t(1201), b"p");
    assert_eq!(drain(&mut m), [], "nothing is sent after a close");
    assert_eq!(m.stats().pings_refused, 2);
}

#[test]
fn a_pending_pong_goes_out_before_the_close_and_never_after_it() {
    let mut m = open(base().liveness(Liveness::PongOnly));
    ping_at(&mut m, 1000, 0);
    m.handle_ping(t(1499), b"late");
    m.handle_timeout(t(1500));
    let actions = drain(&mut m);
    assert_eq!(
        actions[0],
        Action::SendPong(Payload::from_slice(b"late").unwrap())
    );
    assert!(matches!(actions.last(), Some(Action::SendClose { .. })));
}

// ----- reconnect and backoff ---------------------------------------------------

#[test]
fn backoff_resets_only_after_the_connection_proved_healthy_for_reset_after() {
    let mut m = open(base());
    let reconnect_after = |m: &mut HeartbeatMachine, died: u64| {
        m.handle_transport_closed(t(died));
        drain(m);
        let State::Reconnecting { at, attempt, .. } = m.state() else {
            panic!("{:?}", m.state())
        };
        m.handle_timeout(at);
        assert_eq!(drain(m), [Action::Connect { attempt }]);
        (at - t(died), attempt)
    };
    // Flapping: dies after 200 ms twice; attempts keep growing.
    assert_eq!(reconnect_after(&mut m, 200), (ms(100), 1));
    m.handle_connected(t(400));
    assert_eq!(reconnect_after(&mut m, 600), (ms(200), 2));
    // Healthy for 2 s (proof of life at +2 s): the counter resets.
    m.handle_connected(t(1000));
    m.handle_frame(t(3000));
    assert_eq!(reconnect_after(&mut m, 3100), (ms(100), 1));
}

// ----- our own stalls and misbehaving clocks -----------------------------------

#[test]
fn a_late_pong_deadline_is_blamed_on_our_stall_and_gets_one_fresh_probe() {
    let mut m = open(base());
    ping_at(&mut m, 1000, 0);
    // The process was stopped from 1.2 s to 9 s; the deadline was 1.5 s.
    m.handle_timeout(t(9000));
    assert_eq!(drain(&mut m), [ping(1)], "one fresh probe, no verdict");
    assert_eq!(m.health(), Health::Suspect);
    assert_eq!(m.stats().missed_deadlines, 1);
    m.handle_ping_sent(t(9000));
    assert_eq!(
        deadline(&m),
        (t(9500), TimerKind::PongTimeout),
        "a full timeout"
    );
    m.handle_pong(t(9040), &seq(1));
    assert_eq!(m.health(), Health::Healthy);
    assert_eq!(m.state(), State::Open);
}

#[test]
fn the_stall_allowance_scales_with_the_pong_timeout() {
    // pong_timeout 500 ms, stall_threshold 1 s: the allowance is 500 / 4 = 125 ms.
    let b = base().stall_threshold(ms(1000));

    let mut m = open(b);
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1800)); // 300 ms late: ours
    assert_eq!(drain(&mut m), [ping(1)], "a fresh probe, not a death");
    assert_eq!(m.stats().missed_deadlines, 1);
    m.handle_ping_sent(t(1800));
    assert_eq!(deadline(&m), (t(2300), TimerKind::PongTimeout));
    // Late again without any proof of life in between: now it is the peer.
    m.handle_timeout(t(2600));
    assert_eq!(
        drain(&mut m)[0],
        Action::Dead(DeathReason::PongTimeout { waited: ms(800) })
    );

    let mut m = open(b);
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1600)); // 100 ms late: within the allowance
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(DeathReason::PongTimeout { waited: ms(600) }),
            TIMEOUT_CLOSE
        ]
    );

    // A threshold below a quarter of the timeout is the allowance itself.
    let mut m = open(b.stall_threshold(ms(50)));
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1600));
    assert_eq!(drain(&mut m), [ping(1)]);
}

#[test]
fn stall_forgiveness_is_granted_once_per_proof_of_life() {
    let mut m = open(base());
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(9000));
    assert_eq!(drain(&mut m), [ping(1)]);
    m.handle_ping_sent(t(9000));
    // Late again, and the peer never answered: now it is the peer.
    m.handle_timeout(t(20_000));
    assert!(matches!(
        drain(&mut m)[0],
        Action::Dead(DeathReason::PongTimeout { .. })
    ));
}

#[test]
fn reported_local_lag_extends_the_pong_deadline_up_to_max_local_lag() {
    let mut m = open(base().max_local_lag(ms(400)));
    ping_at(&mut m, 1000, 0);
    assert_eq!(deadline(&m), (t(1500), TimerKind::PongTimeout));
    m.handle_local_lag(t(1100), ms(300));
    assert_eq!(m.local_lag(), ms(300));
    assert_eq!(
        deadline(&m),
        (t(1800), TimerKind::PongTimeout),
        "moved by the lag"
    );
    assert_eq!(m.stats().lag_extensions, 1);
    m.handle_timeout(t(1500));
    assert_eq!(drain(&mut m), [], "the pong may be unread in our own queue");
    assert_eq!(
        m.handle_pong(t(1700), &seq(0)),
        PongOutcome::Matched {
            seq: 0,
            rtt: Some(ms(700))
        }
    );

    // The extension is capped, and a dead peer is still declared dead.
    m.handle_local_lag(t(1710), Duration::from_secs(60));
    assert_eq!(m.local_lag(), ms(400));
    ping_at(&mut m, 2000, 1);
    assert_eq!(deadline(&m), (t(2900), TimerKind::PongTimeout));
    m.handle_timeout(t(2899));
    assert_eq!(drain(&mut m), []);
    m.handle_timeout(t(2900));
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(DeathReason::PongTimeout { waited: ms(900) }),
            TIMEOUT_CLOSE
        ],
        "at sent + timeout + capped lag"
    );

    // Lag back to zero: the next ping's deadline is the plain one again.
    let mut m = open(base());
    ping_at(&mut m, 1000, 0);
    m.handle_local_lag(t(1100), ms(300));
    m.handle_pong(t(1150), &seq(0));
    m.handle_local_lag(t(1200), Duration::ZERO);
    ping_at(&mut m, 2000, 1);
    assert_eq!(deadline(&m), (t(2500), TimerKind::PongTimeout));
}

#[test]
fn an_extended_deadline_is_not_pulled_back_while_its_ping_is_out() {
    // The driver armed its timer for the extended deadline (1800). The lag decays
    // before it fires; waking on time at 1800 must be a verdict on a silent peer,
    // not a "stall" against the original 1500 that buys it another timeout.
    let mut m = open(base());
    ping_at(&mut m, 1000, 0);
    m.handle_local_lag(t(1100), ms(300));
    assert_eq!(deadline(&m), (t(1800), TimerKind::PongTimeout));
    m.handle_local_lag(t(1800), Duration::ZERO);
    assert_eq!(m.local_lag(), ms(300), "held while the ping is out");
    assert_eq!(deadline(&m), (t(1800), TimerKind::PongTimeout));
    m.handle_timeout(t(1800));
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(DeathReason::PongTimeout { waited: ms(800) }),
            TIMEOUT_CLOSE
        ]
    );
    assert_eq!(m.stats().missed_deadlines, 0, "no stall was invented");
}

#[test]
fn health_is_graded_suspect_when_a_pong_is_later_than_the_rtt_estimate() {
    let mut m = open(base());
    assert_eq!(m.health(), Health::Healthy);
    ping_at(&mut m, 1000, 0);
    m.handle_pong(t(1020), &seq(0)); // SRTT 20, RTTVAR 10: expected within 60 ms
    ping_at(&mut m, 2000, 1);
    m.handle_timeout(t(2050));
    assert_eq!(m.health(), Health::Healthy);
    m.handle_timeout(t(2061));
    assert_eq!(m.health(), Health::Suspect, "overdue, not yet dead");
    m.handle_pong(t(2100), &seq(1));
    assert_eq!(m.health(), Health::Healthy);
    m.handle_transport_closed(t(2200));
    assert_eq!(m.health(), Health::Dead);
}

#[test]
fn a_late_ping_timer_sends_one_ping_not_a_burst() {
    let mut m = open(base());
    m.handle_timeout(t(60_000));
    assert_eq!(drain(&mut m), [ping(0)]);
    assert_eq!(m.stats().pings_sent, 1);
}

#[test]
fn a_clock_going_backwards_is_clamped_and_counted() {
    let mut m = open(base());
    ping_at(&mut m, 1000, 0);
    m.handle_pong(t(500), &seq(0));
    assert_eq!(m.stats().clock_anomalies, 1);
    assert_eq!(m.now(), t(1000));
    assert_eq!(
        m.rtt().last,
        Some(Duration::ZERO),
        "the sample uses the clamped time"
    );
    assert!(m.poll_timeout().unwrap().at >= m.now());
}

#[test]
fn relative_driving_matches_absolute_driving() {
    let mut abs = open(base());
    let mut rel = open(base());
    for step in 1..=5u64 {
        abs.handle_timeout(t(step * 250));
        rel.handle_elapsed(ms(250));
        assert_eq!(drain(&mut abs), drain(&mut rel));
        assert_eq!(abs.poll_timeout(), rel.poll_timeout());
    }
}

// ----- RTT, adaptive timeout, runtime changes ----------------------------------

#[test]
fn the_adaptive_timeout_follows_srtt_plus_four_rttvar_within_bounds() {
    let bounds = Bounds {
        min: ms(200),
        max: ms(2000),
    };
    let mut m = open(base().adaptive_timeout(Some(bounds)));
    assert_eq!(m.pong_timeout(), ms(500), "fixed until the first sample");
    ping_at(&mut m, 1000, 0);
    m.handle_pong(t(1010), &seq(0)); // 10 ms: SRTT 10, RTTVAR 5 -> 30, clamped to 200
    assert_eq!(m.pong_timeout(), ms(200));
    ping_at(&mut m, 2000, 1);
    assert_eq!(deadline(&m), (t(2200), TimerKind::PongTimeout));
    m.handle_pong(t(2190), &seq(1)); // 190 ms sample: SRTT 32.5, RTTVAR 48.75 -> 227.5
    assert_eq!(m.pong_timeout(), Duration::from_micros(227_500));
}

#[test]
fn interval_and_timeout_change_at_runtime_within_bounds() {
    let mut m = open(base().interval_bounds(ms(100), ms(5000)));
    m.set_ping_interval(ms(3000)).unwrap();
    assert_eq!(deadline(&m), (t(3000), TimerKind::Ping));
    assert_eq!(
        m.set_ping_interval(ms(10)),
        Err(ConfigError::OutOfBounds {
            field: Field::PingInterval,
            value: ms(10),
            bounds: Field::IntervalBounds,
            min: ms(100),
            max: ms(5000),
        })
    );
    ping_at(&mut m, 3000, 0);
    m.set_pong_timeout(ms(100)).unwrap();
    assert_eq!(deadline(&m), (t(3100), TimerKind::PongTimeout));
    assert!(m.set_pong_timeout(Duration::from_secs(7200)).is_err());
}

// ----- configuration ----------------------------------------------------------

#[test]
fn invalid_configurations_name_the_field_and_the_relation() {
    let cases: Vec<(ConfigBuilder, ConfigError)> = vec![
        (
            base().ping_interval(Duration::ZERO),
            ConfigError::Zero {
                field: Field::PingInterval,
            },
        ),
        (
            base().pong_timeout(Duration::ZERO),
            ConfigError::Zero {
                field: Field::PongTimeout,
            },
        ),
        (
            base().close_timeout(Duration::ZERO),
            ConfigError::Zero {
                field: Field::CloseTimeout,
            },
        ),
        (
            base().connect_timeout(Duration::ZERO),
            ConfigError::Zero {
                field: Field::ConnectTimeout,
            },
        ),
        (
            base().stall_threshold(Duration::ZERO),
            ConfigError::Zero {
                field: Field::StallThreshold,
            },
        ),
        (
            base().interval_bounds(ms(500), ms(100)),
            ConfigError::Inverted {
                field: Field::IntervalBounds,
                min: ms(500),
                max: ms(100),
            },
        ),
        (
            base().ping_interval(Duration::from_secs(100_000)),
            ConfigError::OutOfBounds {
                field: Field::PingInterval,
                value: Duration::from_secs(100_000),
                bounds: Field::IntervalBounds,
                min: Config::default().interval_bounds().min,
                max: Config::default().interval_bounds().max,
            },
        ),
        (
            base().backoff(Backoff {
                multiplier: 0.5,
                ..Config::default().backoff()
            }),
            ConfigError::InvalidMultiplier {
                field: Field::BackoffMultiplier,
                value: 0.5,
            },
        ),
        (
            base().backoff(Backoff {
                cap: ms(10),
                ..Config::default().backoff()
            }),
            ConfigError::Below {
                field: Field::BackoffCap,
                value: ms(10),
                min: Field::BackoffBase,
                min_value: Config::default().backoff().base,
            },
        ),
        (
            base().ping_flood(Some(PingFlood {
                max_pings: 0,
                window: ms(1),
                max_strikes: 0,
            })),
            ConfigError::Zero {
                field: Field::PingFloodMaxPings,
            },
        ),
    ];
    for (builder, expected) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err, expected);
        let text = err.to_string();
        assert!(
            text.contains(&expected.field().to_string()),
            "{text:?} names the field"
        );
    }
    // NaN is not equal to itself, so this one is matched rather than compared.
    let nan = base()
        .backoff(Backoff {
            multiplier: f64::NAN,
            ..Config::default().backoff()
        })
        .build()
        .unwrap_err();
    assert!(matches!(
        nan,
        ConfigError::InvalidMultiplier { field: Field::BackoffMultiplier, value } if value.is_nan()
    ));
    assert_eq!(
        nan.to_string(),
        "backoff.multiplier = NaN must be a finite number of at least 1"
    );
}

#[test]
fn config_errors_name_the_field_the_value_and_the_allowed_range() {
    let err = base()
        .interval_bounds(ms(100), ms(5000))
        .ping_interval(ms(50))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ping_interval = 50ms is outside interval_bounds; it must lie within 100ms to 5s"
    );
    let err = base()
        .backoff(Backoff {
            cap: ms(10),
            base: ms(250),
            ..Config::default().backoff()
        })
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "backoff.cap = 10ms is below backoff.base (250ms); it must be at least that"
    );
    let err = base().timeout_bounds(ms(900), ms(300)).build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "timeout_bounds: min 900ms is above max 300ms"
    );
    let err = base().close_timeout(Duration::ZERO).build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "close_timeout is zero; it must be greater than zero"
    );
}

#[test]
fn one_config_serves_both_roles() {
    let client = base().build().unwrap();
    let server = client.with_role(Role::Server);
    assert_eq!(server.role(), Role::Server);
    assert_eq!(server.ping_interval(), client.ping_interval());
    let mut m = HeartbeatMachine::new(server, 1);
    m.handle_connected(t(0));
    m.handle_transport_closed(t(10));
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(DeathReason::TransportClosed),
            Action::Disconnect
        ]
    );
    assert_eq!(
        m.state(),
        State::Finished {
            reason: DeathReason::TransportClosed
        }
    );
}

#[test]
fn the_defaults_are_python_websockets_values() {
    let c = Config::default();
    assert_eq!(c, Config::builder().build().unwrap());
    assert_eq!(c.ping_interval(), Duration::from_secs(20));
    assert_eq!(c.pong_timeout(), Duration::from_secs(20));
    assert_eq!(c.close_timeout(), Duration::from_secs(10));
    assert_eq!(c.connect_timeout(), Duration::from_secs(10));
    assert_eq!(c.stall_threshold(), Duration::from_secs(1));
    assert_eq!(c.max_local_lag(), Duration::from_secs(5));
    assert_eq!(c.liveness(), Liveness::AnyFrame);
    assert_eq!(c.dead_close_code(), CloseCode::INTERNAL_ERROR);
}

// ----- misuse is not misbehaviour ---------------------------------------------

#[test]
fn a_peer_ping_during_our_close_is_not_counted_as_misuse() {
    let mut m = open(base());
    m.close(t(100), CloseCode::NORMAL);
    drain(&mut m);
    assert_eq!(m.handle_ping(t(150), b"still here"), PingOutcome::Ignored);
    assert_eq!(drain(&mut m), [], "nothing is sent after our close");
    assert_eq!(m.stats().ignored_calls, 0);
}

#[test]
fn calls_that_make_no_sense_now_are_ignored_and_counted() {
    let mut m = machine(base());
    m.handle_ping_sent(t(1));
    m.handle_transport_closed(t(2));
    m.handle_connect_failed(t(3));
    m.handle_connected(t(4));
    m.handle_connected(t(5));
    m.connect(t(6));
    assert_eq!(drain(&mut m), []);
    assert_eq!(m.stats().ignored_calls, 5);
    assert_eq!(m.state(), State::Open);
}

#[test]
fn size_of_the_machine_is_reported() {
    // Reported in the README; this test keeps the figures from growing unnoticed.
    // (The connection-life model added the connect timeout, the local lag, a reason
    // on every state and the Connect/Disconnect slots: 896 -> 984 and 624 -> 680.)
    let by_value = core::mem::size_of::<HeartbeatMachine>();
    let shared = core::mem::size_of::<HeartbeatMachine<&Config>>();
    println!("size_of::<HeartbeatMachine>() = {by_value}, with &Config: {shared}");
    assert!(by_value <= 984, "{by_value}");
    assert!(shared <= 680, "{shared}");
}

#[test]
fn machines_can_share_one_config() {
    let config = base().build().unwrap();
    let mut a = HeartbeatMachine::new(&config, 1);
    let mut b = HeartbeatMachine::new(&config, 2);
    a.handle_connected(t(0));
    b.handle_connected(t(0));
    a.handle_timeout(t(1000));
    b.handle_timeout(t(1000));
    assert_eq!(drain(&mut a), drain(&mut b));
    println!(
        "size_of::<HeartbeatMachine<&Config>>() = {}",
        core::mem::size_of::<HeartbeatMachine<&Config>>()
    );
}
