//! heartbeat-mio: one `Driver` per process, listening (server) or connecting
//! (client, reconnecting by itself), on the thread that runs it.
//!
//! The driver's `Handler` hears opens and verdicts but not pongs, so round trips
//! and RTT are read from each machine's counters (`machine_stats().pongs_matched`,
//! `rtt().last`) by a scan of the open connections every half interval (at most
//! every 500 ms) and right before each `mark` and `report`. When a scan finds two
//! new pongs on one connection, both are recorded with the latest RTT. The scan
//! costs a few hundred nanoseconds per connection and is counted in the driver's CPU.

use core::time::Duration;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use heartbeat_core::{Config, DeathReason, Role};
use heartbeat_mio::{ConnId, Ctx, Driver, Handler, Options};
use tokio_tungstenite::tungstenite::Message;

use crate::args::{RoleArgs, Which};
use crate::child::{self, Cmd, Counters};

pub fn run(args: &RoleArgs) -> Result<(), Box<dyn std::error::Error>> {
    let counters = Arc::new(Counters::new());
    let server = args.which == Which::Server;
    let role = if server { Role::Server } else { Role::Client };
    // `--idle-only`: the server pings only a connection silent for twice the
    // client's interval, so a client pinging on time (or a little late) always
    // comes first and the server sends no pings at all.
    let idle_only = server && args.idle_only;
    let interval = if idle_only {
        args.interval * 2
    } else {
        args.interval
    };
    let config = Config::builder()
        .ping_interval(interval)
        .pong_timeout(args.timeout)
        .idle_only(idle_only)
        .build()?
        .with_role(role);
    let handler = Bench {
        counters: counters.clone(),
        seen: HashMap::new(),
        first: HashSet::new(),
        planted: HashSet::new(),
        n: args.conns,
        mark: args.planted > 0,
        client: !server,
    };
    let mut driver = Driver::new(Options::new(config), handler)?;
    // Used only to wake the poll when a command arrives: `turn` (unlike `run`)
    // ignores the stop flag.
    let stop = driver.stop_handle()?;
    let rx = child::commands(move || stop.stop());
    let mut to_start = 0;
    if server {
        let port = listen_all(&mut driver, args.addrs)?;
        child::emit(&serde_json::json!({ "ev": "listening", "port": port }));
    } else {
        child::emit(&serde_json::json!({ "ev": "ready" }));
    }
    let period = (args.interval / 2).clamp(Duration::from_millis(100), Duration::from_millis(500));
    let mut next_scan = Instant::now() + period;
    let mut started = 0;
    let mut connect_from = Instant::now();
    loop {
        let connecting = started < to_start;
        let wait = if connecting {
            Duration::from_millis(10)
        } else {
            next_scan.saturating_duration_since(Instant::now())
        };
        driver.turn(Some(wait))?;
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                Cmd::Connect => {
                    to_start = args.conns;
                    connect_from = Instant::now();
                }
                Cmd::Mark => {
                    scan(&mut driver);
                    counters.mark();
                    child::emit(&counters.json("mark", driver.stats().live as u64));
                }
                Cmd::Report => {
                    scan(&mut driver);
                    child::emit(&counters.json("report", driver.stats().live as u64));
                }
                Cmd::Quit => std::process::exit(0),
            }
        }
        if Instant::now() >= next_scan {
            scan(&mut driver);
            next_scan = Instant::now() + period;
        }
        if started < to_start {
            let stats = driver.stats();
            let in_flight = stats.connections.saturating_sub(stats.live);
            let elapsed = connect_from.elapsed();
            for _ in in_flight..child::CONNECT_CONCURRENCY {
                if started == to_start
                    || child::start_offset(started, args.conns, args.ramp) > elapsed
                {
                    break;
                }
                let url = format!("ws://{}/", child::target(started, args.addrs, args.port));
                driver.connect(&url)?;
                started += 1;
            }
        }
    }
}

/// Listens on every server address, one port for all.
fn listen_all(driver: &mut Driver<Bench>, k: u8) -> std::io::Result<u16> {
    let addrs = child::addrs(k);
    let first = driver.listen((addrs[0], 0).into())?.port();
    for ip in &addrs[1..] {
        driver.listen((*ip, first).into())?;
    }
    Ok(first)
}

struct Bench {
    counters: Arc<Counters>,
    /// Open (or reconnecting) connections and the pongs already counted for each.
    seen: HashMap<ConnId, u64>,
    /// Client connections that opened at least once.
    first: HashSet<ConnId>,
    /// Server connections to planted dead peers (they sent the planted mark).
    planted: HashSet<ConnId>,
    /// Client: this is the planted peers' process; send the mark on each open.
    mark: bool,
    n: usize,
    client: bool,
}

impl Handler for Bench {
    fn on_open(&mut self, ctx: &mut Ctx<'_>, id: ConnId) {
        self.counters.open();
        let pongs = ctx.machine_stats(id).map_or(0, |s| s.pongs_matched);
        self.seen.entry(id).or_insert(pongs);
        if self.client && self.first.insert(id) {
            self.counters.first_open(self.n);
        }
        if self.client && self.mark {
            let _ = ctx.send(id, Message::text(child::PLANTED_MARK));
        }
    }

    fn on_message(&mut self, _: &mut Ctx<'_>, id: ConnId, msg: Message) {
        if !self.client && child::is_mark(&msg) {
            self.planted.insert(id);
        }
    }

    fn on_dead(&mut self, ctx: &mut Ctx<'_>, id: ConnId, reason: DeathReason) {
        // Pongs since the last scan still count.
        if let Some(seen) = self.seen.get_mut(&id) {
            record(ctx, id, seen, &self.counters);
        }
        let planted = self.planted.remove(&id);
        let timeout = matches!(reason, DeathReason::PongTimeout { .. });
        self.counters.end_of(planted, timeout, None);
    }

    fn on_closed(&mut self, _: &mut Ctx<'_>, id: ConnId, _: DeathReason) {
        self.seen.remove(&id);
    }
}

/// Records the pongs every open connection matched since the last scan.
fn scan(driver: &mut Driver<Bench>) {
    let mut seen = std::mem::take(&mut driver.handler_mut().seen);
    let counters = driver.handler().counters.clone();
    let mut ctx = driver.ctx();
    for (id, n) in seen.iter_mut() {
        record(&mut ctx, *id, n, &counters);
    }
    driver.handler_mut().seen = seen;
}

fn record(ctx: &mut Ctx<'_>, id: ConnId, seen: &mut u64, counters: &Counters) {
    let Some(stats) = ctx.machine_stats(id) else {
        return;
    };
    let new = stats.pongs_matched.saturating_sub(*seen);
    if new == 0 {
        return;
    }
    *seen = stats.pongs_matched;
    let rtt = ctx.rtt(id).and_then(|r| r.last).unwrap_or_default();
    for _ in 0..new {
        counters.pong(rtt);
    }
}
