//! The `serde` feature: what an observer or a status endpoint hands to a log
//! pipeline serializes, durations as text. Run with `--features serde`.

#![cfg(feature = "serde")]

mod common;

use std::sync::{Arc, Mutex};

use common::{duplex_pair, ms, options};
use heartbeat_core::{Config, DeathReason, Role};
use heartbeat_tokio::{ConnInfo, Event, KeepAlive};
use serde_json::json;

#[test]
fn events_serialize_tagged_with_durations_as_text() {
    let pong = serde_json::to_value(Event::Pong {
        seq: 3,
        rtt: ms(1) + std::time::Duration::from_micros(250),
    })
    .unwrap();
    assert_eq!(
        pong,
        json!({ "event": "pong", "seq": 3, "rtt": "1ms 250us" })
    );
    let dead = serde_json::to_value(Event::Dead {
        reason: DeathReason::PongTimeout { waited: ms(2000) },
        local_lag: ms(0),
    })
    .unwrap();
    assert_eq!(
        dead,
        json!({ "event": "dead", "reason": { "pong_timeout": { "waited": "2s" } }, "local_lag": "0s" })
    );
}

#[tokio::test]
async fn a_live_connections_status_and_conn_info_serialize() {
    let seen: Arc<Mutex<Vec<ConnInfo>>> = Arc::default();
    let sink = seen.clone();
    let options = options(Role::Server, 50, 500, 300)
        .observe_conn(move |c, _| sink.lock().unwrap().push(c.clone()));
    let (a, b) = duplex_pair(4096).await;
    let ka = KeepAlive::new(a, &options);
    let _kb = KeepAlive::new(b, &options);
    let mut status = ka.watch_status();
    status
        .wait_for(|s| s.rtt.samples >= 1)
        .await
        .expect("a pong");
    let v = serde_json::to_value(ka.status()).unwrap();
    assert_eq!(v["state"], "open", "{v}");
    assert_eq!(v["ping_interval"], "50ms", "{v}");
    assert!(v["stats"]["pongs_matched"].as_u64() >= Some(1), "{v}");
    assert!(v["rtt"]["last"].is_string(), "{v}");
    assert!(v["since_proof_of_life"].is_string(), "{v}");
    let info = serde_json::to_value(&seen.lock().unwrap()[0]).unwrap();
    assert!(info["id"].is_u64(), "{info}");
    assert_eq!(info["role"], "server", "{info}");
    // And the config the options were made from loads back from the same text.
    let text = serde_json::to_string(&options.heartbeat).unwrap();
    assert_eq!(
        serde_json::from_str::<Config>(&text).unwrap(),
        options.heartbeat
    );
}
