//! The blocking client against the tokio adapter's server (`heartbeat_tokio::accept_tcp`
//! with a `Registry`): echo, liveness on both sides, and a silent link detected by
//! both through a proxy that drops everything without closing.

use std::time::{Duration, Instant};

use heartbeat_blocking::{Error, KeepAlive};
use heartbeat_core::{Config, DeathReason, Role};
use heartbeat_test_support::SilentProxy;
use heartbeat_tokio::{accept_tcp, Options, Registry};

fn config() -> Config {
    Config::builder()
        .role(Role::Server)
        .ping_interval(Duration::from_millis(200))
        .pong_timeout(Duration::from_millis(200))
        .close_timeout(Duration::from_millis(200))
        .build()
        .unwrap()
}

/// Starts an echo server on its own thread; returns its address and registry.
fn tokio_echo_server() -> (std::net::SocketAddr, Registry) {
    let registry = Registry::new();
    let reg = registry.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            let options = Options::new(config());
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let (options, reg) = (options.clone(), reg.clone());
                tokio::spawn(async move {
                    let Ok((_, conn)) = accept_tcp(tcp, &options, &reg).await else {
                        return;
                    };
                    let (tx, mut rx) = conn.split();
                    while let Ok(msg) = rx.recv().await {
                        if tx.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
    });
    (rx.recv().unwrap(), registry)
}

#[test]
fn blocking_client_and_tokio_server_keep_each_other_alive_and_both_detect_a_silent_link() {
    let (addr, registry) = tokio_echo_server();
    let proxy = SilentProxy::start(addr).unwrap();
    let url = format!("ws://{}/", proxy.addr());
    let mut ws = KeepAlive::connect(&url, config()).unwrap();
    ws.send("ping me".into()).unwrap();
    assert_eq!(ws.read().unwrap().into_text().unwrap(), "ping me");

    // 1.2 s of heartbeats both ways: nobody dies.
    let idle = ws
        .read_until(Some(Instant::now() + Duration::from_millis(1_200)))
        .unwrap();
    assert!(idle.is_none());
    assert_eq!(registry.len(), 1);
    let stats = ws.machine().stats();
    assert!(stats.pongs_matched >= 5, "{stats:?}");
    assert!(
        stats.pings_received >= 4,
        "the tokio server pings too: {stats:?}"
    );

    proxy.set_silent(true);
    let silenced = Instant::now();
    let err = ws.read().unwrap_err();
    let ours = silenced.elapsed();
    let bound = config().detection_bound(Duration::ZERO);
    assert!(
        matches!(err, Error::Dead(DeathReason::PongTimeout { .. })),
        "{err:?}"
    );
    assert!(ours <= bound + Duration::from_millis(100), "{ours:?}");
    // The tokio side removes the client from its registry at detection time.
    while !registry.is_empty() && silenced.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let theirs = silenced.elapsed();
    assert_eq!(registry.len(), 0);
    assert!(theirs <= bound + Duration::from_millis(100), "{theirs:?}");
    println!("silent link: blocking client detected after {ours:?}, tokio server after {theirs:?} (bound {bound:?})");
}
