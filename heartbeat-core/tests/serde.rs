//! The `serde` feature: a `Config` loads from TOML and JSON (durations as text,
//! defaults for what is missing, validated as the builder validates) and round-trips;
//! the reporting types serialize. Run with `--features serde`.

#![cfg(feature = "serde")]

use core::time::Duration;

use heartbeat_core::{
    Backoff, Bounds, CloseCode, Config, DeathReason, HeartbeatMachine, Instant, Jitter, Liveness,
    PingFlood, Role, State,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A config with every field away from its default.
fn unusual() -> Config {
    Config::builder()
        .role(Role::Server)
        .ping_interval(Duration::from_secs(5400))
        .pong_timeout(ms(1500))
        .close_timeout(ms(250))
        .connect_timeout(Duration::from_secs(3))
        .liveness(Liveness::AnyFrame)
        .idle_only(true)
        .stall_threshold(ms(700))
        .max_local_lag(ms(0))
        .dead_close_code(CloseCode::new(4000).unwrap())
        .adaptive_timeout(Some(Bounds {
            min: ms(20),
            max: ms(1500),
        }))
        .interval_bounds(ms(5), Duration::from_secs(2 * 86_400))
        .timeout_bounds(ms(5), Duration::from_secs(7200))
        .ping_flood(Some(PingFlood {
            max_pings: 3,
            window: ms(1500),
            max_strikes: 1,
        }))
        .backoff(Backoff {
            base: ms(200),
            multiplier: 1.5,
            cap: Duration::from_secs(90),
            jitter: Jitter::Equal,
            max_attempts: Some(7),
            reset_after: Duration::from_secs(30),
            max_requested_delay: Duration::from_secs(120),
        })
        .reconnect_on_permanent_close(true)
        .ping_on_connect(true)
        .build()
        .unwrap()
}

#[test]
fn config_round_trips_through_toml_with_durations_as_text() {
    let config = unusual();
    let text = toml::to_string(&config).unwrap();
    assert!(text.contains("ping_interval = \"1h 30m\""), "{text}");
    assert!(text.contains("pong_timeout = \"1s 500ms\""), "{text}");
    assert!(text.contains("role = \"server\""), "{text}");
    assert!(text.contains("jitter = \"equal\""), "{text}");
    let back: Config = toml::from_str(&text).unwrap();
    assert_eq!(back, config, "{text}");
    // And the defaults.
    let defaults: Config = toml::from_str(&toml::to_string(&Config::default()).unwrap()).unwrap();
    assert_eq!(defaults, Config::default());
}

#[test]
fn config_round_trips_through_json() {
    let config = unusual();
    let text = serde_json::to_string(&config).unwrap();
    assert_eq!(serde_json::from_str::<Config>(&text).unwrap(), config);
}

#[test]
fn a_partial_file_takes_the_defaults_for_the_rest() {
    let config: Config = toml::from_str(
        r#"
        ping_interval = "1h30m"
        pong_timeout = "250ms"
        [backoff]
        base = "2s"
        "#,
    )
    .unwrap();
    let expected = Config::builder()
        .ping_interval(Duration::from_secs(5400))
        .pong_timeout(ms(250))
        .backoff(Backoff {
            base: Duration::from_secs(2),
            ..Config::default().backoff()
        })
        .build()
        .unwrap();
    assert_eq!(config, expected);
}

#[test]
fn a_loaded_config_is_validated_and_errors_name_the_field() {
    for (text, names) in [
        ("pong_timeout = \"0s\"", "pong_timeout"),
        ("ping_interval = \"2d\"", "ping_interval"),
        ("[backoff]\nbase = \"2m\"\ncap = \"1m\"", "backoff.cap"),
        ("dead_close_code = 1006", "1006"),
        ("ping_interval = \"500\"", "unit"),
        ("ping_interval = 500", "duration"),
        ("ping_intervall = \"1s\"", "ping_intervall"),
        ("liveness = \"sometimes\"", "sometimes"),
    ] {
        let err = toml::from_str::<Config>(text).unwrap_err().to_string();
        assert!(err.contains(names), "{text}: {err}");
    }
}

#[test]
fn the_reporting_types_serialize() {
    let mut m = HeartbeatMachine::new(unusual(), 1);
    m.handle_connected(Instant::from_millis(0));
    while m.poll_action().is_some() {}
    m.handle_transport_closed(Instant::from_millis(10));
    let state = serde_json::to_value(m.state()).unwrap();
    assert_eq!(
        state,
        serde_json::json!({ "finished": { "reason": "transport_closed" } })
    );
    let stats = serde_json::to_value(m.stats()).unwrap();
    assert_eq!(stats["pings_sent"], 1, "{stats}");
    let reason = serde_json::to_value(DeathReason::PongTimeout { waited: ms(2001) }).unwrap();
    assert_eq!(
        reason,
        serde_json::json!({ "pong_timeout": { "waited": "2s 1ms" } })
    );
    let back: State = serde_json::from_value(state).unwrap();
    assert_eq!(back, m.state());
    assert!(serde_json::to_value(m.rtt()).is_ok());
    assert!(serde_json::to_value(m.health()).is_ok());
}

#[test]
fn config_loads_from_environment_variables() {
    // Any serde source works; here `envy` reads HEARTBEAT_* variables (given as an
    // iterator so the test does not touch the process environment).
    let vars = [
        ("HEARTBEAT_PING_INTERVAL", "1h30m"),
        ("HEARTBEAT_PONG_TIMEOUT", "250ms"),
        ("HEARTBEAT_LIVENESS", "pong_only"),
        ("HEARTBEAT_PING_ON_CONNECT", "true"),
        ("OTHER_VARIABLE", "ignored"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let config: Config = envy::prefixed("HEARTBEAT_").from_iter(vars).unwrap();
    let expected = Config::builder()
        .ping_interval(Duration::from_secs(5400))
        .pong_timeout(ms(250))
        .liveness(Liveness::PongOnly)
        .ping_on_connect(true)
        .build()
        .unwrap();
    assert_eq!(config, expected);
    let bad = [("HEARTBEAT_PONG_TIMEOUT".to_owned(), "0s".to_owned())];
    let err = envy::prefixed("HEARTBEAT_")
        .from_iter::<_, Config>(bad)
        .unwrap_err();
    assert!(err.to_string().contains("pong_timeout"), "{err}");
}
