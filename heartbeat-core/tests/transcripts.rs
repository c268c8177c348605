//! Transcript tests: at this millisecond, this input gives these actions, and
//! `poll_timeout` is this deadline. Each test fails if the feature it names is removed.

use core::time::Duration;

use heartbeat_core::{
    Action, Backoff, Bounds, CloseCode, Config, ConfigBuilder, ConfigError, DeathReason, Field,
    Health, HeartbeatMachine, Instant, Jitter, Liveness, Payload, PingFlood, ProtocolError, Role,
    State, TimerKind,
};

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Interval 1 s, timeout 500 ms, close timeout 300 ms, deterministic backoff
/// 100 ms ×2 up to 1 s.
fn base() -> ConfigBuilder {
    Config::builder()
        .ping_interval(ms(1000))
        .pong_timeout(ms(500))
        .close_timeout(ms(300))
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

fn machine(b: ConfigBuilder) -> HeartbeatMachine {
    HeartbeatMachine::new(b.build().expect("test config is valid"), 1)
}

fn open(b: ConfigBuilder) -> HeartbeatMachine {
    let mut m = machine(b);
    m.handle_connected(t(0));
    assert_eq!(drain(&mut m), []);
    m
}

fn drain<C: std::borrow::Borrow<Config>>(m: &mut HeartbeatMachine<C>) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
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

// ----- pinging and pong matching -----------------------------------------------

#[test]
fn pings_at_the_interval_and_a_matching_pong_gives_rtt_and_rearms() {
    let mut m = open(base());
    assert_eq!(deadline(&m), (t(1000), TimerKind::Ping));
    m.handle_timeout(t(999));
    assert_eq!(drain(&mut m), [], "early handle_timeout is harmless");
    ping_at(&mut m, 1000, 0);
    assert_eq!(deadline(&m), (t(1500), TimerKind::PongTimeout));
    m.handle_pong(t(1120), &seq(0));
    assert_eq!(drain(&mut m), []);
    assert_eq!(m.rtt().last, Some(ms(120)));
    assert_eq!(deadline(&m), (t(2000), TimerKind::Ping));
    ping_at(&mut m, 2000, 1);
    assert_eq!(m.stats().pings_sent, 2);
    assert_eq!(m.stats().pongs_matched, 1);
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
    assert!(matches!(
        drain(&mut m)[0],
        Action::Dead(DeathReason::PongTimeout { .. })
    ));
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
    m.handle_pong(t(2050), &seq(1));
    assert_eq!(m.stats().pongs_matched, 1);
    assert_eq!(m.rtt().last, Some(ms(50)));
    m.handle_pong(t(2060), &seq(0));
    assert_eq!(
        m.stats().unsolicited_pongs,
        1,
        "ping 0 was acknowledged by pong 1"
    );
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
    m.handle_ping(t(1450), b"peer ping");
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

// ----- death, close and abort --------------------------------------------------

#[test]
fn a_silent_peer_is_dead_at_once_then_closed_with_1011_then_aborted() {
    let mut m = open(base());
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1500));
    let reason = DeathReason::PongTimeout { waited: ms(500) };
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(reason),
            Action::SendClose {
                code: CloseCode::INTERNAL_ERROR,
                reason: "keepalive ping timeout"
            }
        ]
    );
    assert_eq!(m.state(), State::Dead { reason });
    assert_eq!(m.health(), Health::Dead);
    assert_eq!(deadline(&m), (t(1800), TimerKind::CloseTimeout));
    m.handle_pong(t(1600), &seq(0));
    assert_eq!(m.state(), State::Dead { reason }, "death is sticky");
    m.handle_timeout(t(1800));
    assert_eq!(
        drain(&mut m),
        [
            Action::Abort,
            Action::Reconnect {
                after: ms(100),
                attempt: 1
            }
        ]
    );
    assert_eq!(
        m.state(),
        State::Dead { reason },
        "queryable until reconnected"
    );
    assert_eq!(m.stats().close_timeouts, 1);
    m.handle_connected(t(1900));
    assert_eq!(m.state(), State::Open);
}

#[test]
fn the_transport_is_needed_while_open_and_while_closing_only() {
    let mut m = machine(base());
    assert!(!m.needs_transport(), "not connected yet");
    m.handle_connected(t(0));
    assert!(m.needs_transport());
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1500));
    drain(&mut m);
    assert!(matches!(m.state(), State::Dead { .. }));
    assert!(
        m.needs_transport(),
        "dead, but the close handshake needs it"
    );
    m.handle_timeout(t(1800));
    drain(&mut m);
    assert!(matches!(m.state(), State::Dead { .. }));
    assert!(!m.needs_transport(), "dead and waiting to reconnect");
}

#[test]
fn an_answered_close_ends_without_abort() {
    let mut m = open(base());
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1500));
    drain(&mut m);
    m.handle_close(t(1550), Some(1011));
    assert_eq!(
        drain(&mut m),
        [Action::Reconnect {
            after: ms(100),
            attempt: 1
        }]
    );
}

#[test]
fn the_dead_close_code_is_configurable_but_never_reserved() {
    let mut m = open(base().dead_close_code(4000));
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1500));
    assert!(drain(&mut m).contains(&Action::SendClose {
        code: CloseCode::new(4000).unwrap(),
        reason: "keepalive ping timeout"
    }));
    for reserved in [1005, 1006, 1015, 999] {
        assert_eq!(
            base().dead_close_code(reserved).build().unwrap_err(),
            ConfigError::UnsendableCloseCode {
                field: Field::DeadCloseCode,
                code: reserved
            }
        );
    }
}

#[test]
fn a_peer_close_is_answered_with_its_code_and_the_client_reconnects() {
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
            },
            Action::Reconnect {
                after: ms(100),
                attempt: 1
            }
        ]
    );
    assert!(!reason.is_fault());
}

#[test]
fn a_permanent_close_code_stops_reconnection_unless_configured() {
    let mut m = open(base());
    m.handle_close(t(300), Some(1008));
    let actions = drain(&mut m);
    assert!(!actions
        .iter()
        .any(|a| matches!(a, Action::Reconnect { .. })));
    assert!(matches!(m.state(), State::Finished { .. }));

    let mut m = open(base().reconnect_on_permanent_close(true));
    m.handle_close(t(300), Some(1008));
    assert!(matches!(
        drain(&mut m).last(),
        Some(Action::Reconnect { .. })
    ));
}

#[test]
fn a_reserved_close_code_from_the_peer_is_a_protocol_error() {
    let mut m = open(base());
    m.handle_close(t(300), Some(1005));
    let actions = drain(&mut m);
    assert_eq!(
        actions[..2],
        [
            Action::Dead(DeathReason::ProtocolError(
                ProtocolError::InvalidCloseCode { code: 1005 }
            )),
            Action::SendClose {
                code: CloseCode::PROTOCOL_ERROR,
                reason: ""
            }
        ]
    );
}

#[test]
fn a_transport_that_ends_is_dead_without_a_close_and_the_client_reconnects() {
    let mut m = open(base());
    m.handle_transport_closed(t(200));
    assert_eq!(
        drain(&mut m),
        [
            Action::Dead(DeathReason::TransportClosed),
            Action::Reconnect {
                after: ms(100),
                attempt: 1
            }
        ]
    );
}

#[test]
fn the_server_role_pings_too_but_never_reconnects() {
    let mut m = open(base().role(Role::Server));
    ping_at(&mut m, 1000, 0);
    m.handle_timeout(t(1500));
    drain(&mut m);
    m.handle_timeout(t(1800));
    assert_eq!(drain(&mut m), [Action::Abort]);
    assert_eq!(
        m.state(),
        State::Finished {
            reason: DeathReason::PongTimeout { waited: ms(500) }
        }
    );
    assert_eq!(m.poll_timeout(), None, "nothing armed once finished");
}

#[test]
fn a_local_close_is_bounded_and_reports_its_outcome() {
    let mut m = open(base());
    m.close(t(100), CloseCode::NORMAL);
    assert_eq!(
        drain(&mut m),
        [Action::SendClose {
            code: CloseCode::NORMAL,
            reason: "closing"
        }]
    );
    assert_eq!(m.state(), State::Closing);
    m.handle_close(t(150), Some(1000));
    let reason = DeathReason::LocalClose { code: 1000 };
    assert_eq!(drain(&mut m), [Action::Dead(reason)]);
    assert_eq!(m.state(), State::Finished { reason });

    let mut m = open(base());
    m.close(t(100), CloseCode::NORMAL);
    drain(&mut m);
    m.handle_timeout(t(400));
    let reason = DeathReason::CloseTimeout { waited: ms(300) };
    assert_eq!(drain(&mut m), [Action::Dead(reason), Action::Abort]);
    assert_eq!(m.state(), State::Finished { reason });
}

// ----- answering pings ---------------------------------------------------------

#[test]
fn a_peer_ping_is_answered_with_its_payload_and_pending_pongs_coalesce() {
    let mut m = open(base());
    m.handle_ping(t(10), b"one");
    m.handle_ping(t(11), b"two");
    assert_eq!(
        drain(&mut m),
        [Action::SendPong(Payload::from_slice(b"two").unwrap())]
    );
    assert_eq!(m.stats().pings_received, 2);
    assert_eq!(m.stats().pongs_sent, 1);
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
fn connect_failures_back_off_exponentially_up_to_the_cap_and_max_attempts() {
    let mut b = base();
    let mut backoff = b.build().unwrap().backoff();
    backoff.max_attempts = Some(5);
    b = b.backoff(backoff);
    let mut m = machine(b);
    let mut delays = vec![];
    for i in 0..6 {
        m.handle_connect_failed(t(i * 10_000));
        delays.extend(drain(&mut m));
    }
    let expected: Vec<_> = [100, 200, 400, 800, 1000]
        .iter()
        .zip(1..)
        .map(|(&d, attempt)| Action::Reconnect {
            after: ms(d),
            attempt,
        })
        .collect();
    assert_eq!(delays, expected);
    assert_eq!(
        m.state(),
        State::Finished {
            reason: DeathReason::ConnectFailed
        }
    );
}

#[test]
fn full_jitter_spreads_delays_within_the_ceiling_deterministically_per_seed() {
    let mut b = base();
    let mut backoff = b.build().unwrap().backoff();
    backoff.jitter = Jitter::Full;
    b = b.backoff(backoff);
    let run = |seed| {
        let mut m = HeartbeatMachine::new(b.build().unwrap(), seed);
        (0..8)
            .map(|i| {
                m.handle_connect_failed(t(i));
                match drain(&mut m)[..] {
                    [Action::Reconnect { after, attempt }] => (after, attempt),
                    ref other => panic!("{other:?}"),
                }
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
fn backoff_resets_only_after_the_connection_proved_healthy_for_reset_after() {
    let mut m = open(base());
    // Flapping: dies after 200 ms twice; attempts keep growing.
    m.handle_transport_closed(t(200));
    assert!(drain(&mut m).contains(&Action::Reconnect {
        after: ms(100),
        attempt: 1
    }));
    m.handle_connected(t(300));
    m.handle_transport_closed(t(500));
    assert!(drain(&mut m).contains(&Action::Reconnect {
        after: ms(200),
        attempt: 2
    }));
    // Healthy for 2 s (proof of life at +2 s): the counter resets.
    m.handle_connected(t(1000));
    m.handle_frame(t(3000));
    m.handle_transport_closed(t(3100));
    assert!(drain(&mut m).contains(&Action::Reconnect {
        after: ms(100),
        attempt: 1
    }));
}

#[test]
fn a_server_requested_delay_is_honoured_up_to_its_cap() {
    let mut m = machine(base());
    m.handle_retry_after(t(0), ms(3000));
    m.handle_connect_failed(t(0));
    assert_eq!(
        drain(&mut m),
        [Action::Reconnect {
            after: ms(3000),
            attempt: 1
        }]
    );
    m.handle_retry_after(t(10), Duration::from_secs(3600));
    m.handle_connect_failed(t(10));
    assert_eq!(
        drain(&mut m),
        [Action::Reconnect {
            after: ms(5000),
            attempt: 2
        }]
    );
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
            bounds: Field::IntervalBounds
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
            base().interval_bounds(ms(500), ms(100)),
            ConfigError::Inverted {
                field: Field::IntervalBounds,
            },
        ),
        (
            base().ping_interval(Duration::from_secs(100_000)),
            ConfigError::OutOfBounds {
                field: Field::PingInterval,
                bounds: Field::IntervalBounds,
            },
        ),
        (
            base().backoff(Backoff {
                multiplier: 0.5,
                ..Config::default().backoff()
            }),
            ConfigError::InvalidMultiplier {
                field: Field::BackoffMultiplier,
            },
        ),
        (
            base().backoff(Backoff {
                multiplier: f64::NAN,
                ..Config::default().backoff()
            }),
            ConfigError::InvalidMultiplier {
                field: Field::BackoffMultiplier,
            },
        ),
        (
            base().backoff(Backoff {
                cap: ms(10),
                ..Config::default().backoff()
            }),
            ConfigError::Below {
                field: Field::BackoffCap,
                min: Field::BackoffBase,
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
    assert_eq!(
        ConfigError::Below {
            field: Field::BackoffCap,
            min: Field::BackoffBase
        }
        .to_string(),
        "backoff.cap must be at least backoff.base"
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
    assert!(!drain(&mut m)
        .iter()
        .any(|a| matches!(a, Action::Reconnect { .. })));
}

#[test]
fn the_defaults_are_python_websockets_values() {
    let c = Config::default();
    assert_eq!(c, Config::builder().build().unwrap());
    assert_eq!(c.ping_interval(), Duration::from_secs(20));
    assert_eq!(c.pong_timeout(), Duration::from_secs(20));
    assert_eq!(c.close_timeout(), Duration::from_secs(10));
    assert_eq!(c.liveness(), Liveness::AnyFrame);
    assert_eq!(c.dead_close_code(), CloseCode::INTERNAL_ERROR);
}

// ----- misuse is not misbehaviour ---------------------------------------------

#[test]
fn a_peer_ping_during_our_close_is_not_counted_as_misuse() {
    let mut m = open(base());
    m.close(t(100), CloseCode::NORMAL);
    drain(&mut m);
    m.handle_ping(t(150), b"still here");
    assert_eq!(drain(&mut m), [], "nothing is sent after our close");
    assert_eq!(m.stats().ignored_calls, 0);
}

#[test]
fn calls_that_make_no_sense_now_are_ignored_and_counted() {
    let mut m = machine(base());
    m.handle_ping_sent(t(1));
    m.handle_transport_closed(t(2));
    m.handle_connected(t(3));
    m.handle_connected(t(4));
    assert_eq!(m.stats().ignored_calls, 3);
    assert_eq!(m.state(), State::Open);
}

#[test]
fn size_of_the_machine_is_reported() {
    // Reported in the README; this test keeps the figures from growing unnoticed.
    let by_value = core::mem::size_of::<HeartbeatMachine>();
    let shared = core::mem::size_of::<HeartbeatMachine<&Config>>();
    println!("size_of::<HeartbeatMachine>() = {by_value}, with &Config: {shared}");
    assert!(by_value <= 896, "{by_value}");
    assert!(shared <= 624, "{shared}");
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
