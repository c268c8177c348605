//! Many real loopback connections on one mio driver per side.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heartbeat_core::{Config, DeathReason};
use heartbeat_mio::tungstenite::Message;
use heartbeat_mio::{ConnId, Ctx, Driver, DriverStats, Handler, Options};
use heartbeat_test_support::SilentProxy;

/// Records what happened, with wall-clock times.
#[derive(Default)]
struct Recorder {
    opened: usize,
    messages: usize,
    deaths: Vec<(ConnId, DeathReason, Instant)>,
    closed: Vec<(ConnId, DeathReason)>,
    echo: bool,
    greet: bool,
}

impl Handler for Recorder {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, id: ConnId) {
        self.opened += 1;
        if self.greet {
            ctx.send(id, Message::text("hello")).unwrap();
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_>, id: ConnId, msg: Message) {
        self.messages += 1;
        if self.echo {
            let _ = ctx.send(id, msg);
        }
    }
    fn on_dead(&mut self, _: &mut Ctx<'_>, id: ConnId, reason: DeathReason) {
        self.deaths.push((id, reason, Instant::now()));
    }
    fn on_closed(&mut self, _: &mut Ctx<'_>, id: ConnId, reason: DeathReason) {
        self.closed.push((id, reason));
    }
}

/// One config for both drivers: accepted connections run it as servers,
/// `connect`ed ones as clients.
fn config() -> Config {
    Config::builder()
        .ping_interval(Duration::from_millis(300))
        .pong_timeout(Duration::from_millis(300))
        .close_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_secs(5))
        .max_local_lag(MAX_LAG)
        .build()
        .unwrap()
}

/// The most a verdict is put off for this process's own lag (timer lateness, or
/// the round trip nearly every connection sees at once: on a busy 2-core machine
/// 1,000 connections opened together see 16–65 ms).
const MAX_LAG: Duration = Duration::from_millis(150);

#[test]
fn a_thousand_connections_hold_without_false_deaths_and_a_silent_one_is_detected() {
    const N: usize = 1000;
    let hold = Duration::from_millis(4_000);
    let silence_after = Duration::from_millis(2_000);

    let server_recorder = Recorder {
        echo: true,
        ..Recorder::default()
    };
    let mut server = Driver::new(Options::new(config()), server_recorder).unwrap();
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let stop_server = server.stop_handle().unwrap();
    let proxy = SilentProxy::start(addr).unwrap();
    let server_thread = std::thread::spawn(move || {
        server.run().unwrap();
        let stats = server.stats();
        (
            server.handler_mut().deaths.clone(),
            stats,
            server.handler().messages,
        )
    });

    let client_thread = std::thread::spawn(move || {
        let opts = Options::new(config());
        let recorder = Recorder {
            greet: true,
            ..Recorder::default()
        };
        let mut client = Driver::new(opts, recorder).unwrap();
        let proxied = client.connect(&format!("ws://{}/", proxy.addr())).unwrap();
        for _ in 1..N {
            client.connect(&format!("ws://{addr}/")).unwrap();
        }
        let start = Instant::now();
        while client.stats().live < N {
            client.turn(Some(Duration::from_millis(50))).unwrap();
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{:?}",
                client.stats()
            );
        }
        let all_open = Instant::now();
        let live_before: usize = client.stats().live;
        println!("all open: {:?}", client.stats());
        client.run_for(silence_after).unwrap();
        proxy.set_silent(true);
        let silenced = Instant::now();
        client.run_for(hold - silence_after).unwrap();
        let stats: DriverStats = client.stats();
        stop_server.stop();
        let r = client.handler();
        (
            r.deaths.clone(),
            r.messages,
            // Kept alive until the server stopped: dropping it closes 1,000 sockets.
            client,
            proxied,
            all_open - start,
            live_before,
            silenced,
            stats,
        )
    });

    let (client_deaths, echoes, client, proxied, open_time, live_before, silenced, cstats) =
        client_thread.join().unwrap();
    let (server_deaths, sstats, greetings) = server_thread.join().unwrap();
    drop(client);
    let bound = config().detection_bound(Duration::ZERO);
    println!("opened {N} connections in {open_time:?}");
    println!("client stats: {cstats:?}");
    println!("server stats: {sstats:?}");

    assert_eq!(live_before, N);
    assert_eq!(greetings, N, "every client's greeting reached the server");
    assert!(echoes >= N, "every greeting was echoed: {echoes}");
    // Zero false deaths: exactly the silenced connection died, on each side.
    let first = |d: &[(ConnId, DeathReason, Instant)]| {
        format!("{} deaths: {:?}", d.len(), &d[..d.len().min(3)])
    };
    assert_eq!(client_deaths.len(), 1, "{}", first(&client_deaths));
    let (id, reason, at) = client_deaths[0];
    assert_eq!(id, proxied);
    assert!(
        matches!(reason, DeathReason::PongTimeout { .. }),
        "{reason:?}"
    );
    let client_detect = at - silenced;
    assert_eq!(server_deaths.len(), 1, "{}", first(&server_deaths));
    let (_, reason, at) = server_deaths[0];
    assert!(
        matches!(reason, DeathReason::PongTimeout { .. }),
        "{reason:?}"
    );
    let server_detect = at - silenced;
    println!(
        "silent connection detected after {client_detect:?} (client), {server_detect:?} (server); bound {bound:?}"
    );
    // The last proof of life came at most at the silencing; the bound grows by
    // the local lag in force (capped); allow loop slack.
    let slack = MAX_LAG + Duration::from_millis(100);
    assert!(client_detect <= bound + slack, "{client_detect:?}");
    assert!(server_detect <= bound + slack, "{server_detect:?}");
    assert_eq!(sstats.live, N - 1);
    assert!(cstats.live >= N - 1);
    assert_eq!(sstats.fault_deaths, 1);
    println!(
        "timer lateness: client max {:?} mean {:?}; server max {:?} mean {:?}",
        cstats.timer_late_max,
        cstats.timer_late_total / cstats.timer_wakeups.max(1) as u32,
        sstats.timer_late_max,
        sstats.timer_late_total / sstats.timer_wakeups.max(1) as u32,
    );
}

/// Many connections, one broadcast: every open client gets it exactly once.
#[test]
fn broadcast_reaches_every_open_connection() {
    let counts = Arc::new(Mutex::new(0usize));
    struct Count(Arc<Mutex<usize>>);
    impl Handler for Count {
        fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: Message) {
            *self.0.lock().unwrap() += 1;
        }
    }
    let mut server = Driver::new(Options::new(config()), Recorder::default()).unwrap();
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut client = Driver::new(Options::new(config()), Count(counts.clone())).unwrap();
    for _ in 0..20 {
        client.connect(&format!("ws://{addr}/")).unwrap();
    }
    let start = Instant::now();
    while server.stats().live < 20 || client.stats().live < 20 {
        server.turn(Some(Duration::from_millis(5))).unwrap();
        client.turn(Some(Duration::from_millis(5))).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    assert_eq!(server.ctx().broadcast(&Message::text("news")), 20);
    while *counts.lock().unwrap() < 20 && start.elapsed() < Duration::from_secs(5) {
        server.turn(Some(Duration::from_millis(5))).unwrap();
        client.turn(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(*counts.lock().unwrap(), 20);
    assert_eq!(server.handler().deaths.len(), 0);
}

/// A local close runs the close handshake; both sides see a clean, non-fault death.
#[test]
fn a_local_close_is_reported_on_both_sides_and_removes_the_connection() {
    let mut server = Driver::new(Options::new(config()), Recorder::default()).unwrap();
    let addr = server.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut client = Driver::new(Options::new(config()), Recorder::default()).unwrap();
    let id = client.connect(&format!("ws://{addr}/")).unwrap();
    let start = Instant::now();
    while client.stats().live < 1 || server.stats().live < 1 {
        server.turn(Some(Duration::from_millis(5))).unwrap();
        client.turn(Some(Duration::from_millis(5))).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
    }
    client.ctx().close(id, heartbeat_core::CloseCode::NORMAL);
    while (client.handler().closed.is_empty() || server.handler().closed.is_empty())
        && start.elapsed() < Duration::from_secs(5)
    {
        server.turn(Some(Duration::from_millis(5))).unwrap();
        client.turn(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(
        client
            .handler()
            .deaths
            .iter()
            .map(|d| d.1)
            .collect::<Vec<_>>(),
        [DeathReason::LocalClose { code: 1000 }]
    );
    assert_eq!(
        server
            .handler()
            .deaths
            .iter()
            .map(|d| d.1)
            .collect::<Vec<_>>(),
        [DeathReason::PeerClosed { code: Some(1000) }]
    );
    assert_eq!(client.stats().connections, 0);
    assert_eq!(server.stats().connections, 0);
    assert_eq!(client.stats().fault_deaths + server.stats().fault_deaths, 0);
}
