//! Load and memory bench: N WebSocket connections with short heartbeat intervals
//! between a server driver (this process) and a client driver (a child process),
//! held for a while. Prints the server's RSS per connection, CPU per round trip,
//! timer lateness and deaths.
//!
//! `cargo run --release -p heartbeat-mio --example load [N] [INTERVAL_MS] [HOLD_S]`
//! (defaults: 1000 connections, 300 ms, 5 s).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use heartbeat_core::{Config, DeathReason};
use heartbeat_mio::{ConnId, Ctx, Driver, Handler, Options};

#[derive(Default)]
struct Deaths(Vec<DeathReason>);

impl Handler for Deaths {
    fn on_dead(&mut self, _: &mut Ctx<'_>, _: ConnId, reason: DeathReason) {
        self.0.push(reason);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("client") {
        return client(
            &args[1],
            args[2].parse()?,
            args[3].parse()?,
            args[4].parse()?,
        );
    }
    let n: usize = args.first().map_or(Ok(1000), |a| a.parse())?;
    let interval: u64 = args.get(1).map_or(Ok(300), |a| a.parse())?;
    let hold: u64 = args.get(2).map_or(Ok(5), |a| a.parse())?;

    let mut server = Driver::new(Options::new(config(interval)), Deaths::default())?;
    let addr = server.listen("127.0.0.1:0".parse()?)?;
    server.run_for(Duration::from_millis(50))?;
    let rss_before = rss_kib();
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "client",
            &format!("ws://{addr}/"),
            &n.to_string(),
            &interval.to_string(),
            &hold.to_string(),
        ])
        .stdout(Stdio::inherit())
        .spawn()?;
    let start = Instant::now();
    while server.stats().live < n {
        server.turn(Some(Duration::from_millis(50)))?;
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!("only {} of {n} connected", server.stats().live).into());
        }
    }
    println!("server: {n} connections open after {:?}", start.elapsed());
    // Let buffers settle (first pings, pongs) before measuring.
    server.run_for(Duration::from_millis(2 * interval))?;
    let rss_open = rss_kib();
    let cpu_before = cpu_ticks();
    // Steady state only: the connection storm's late timers are not counted.
    server.reset_stats();
    server.run_for(Duration::from_secs(hold))?;
    let cpu = cpu_ticks() - cpu_before;
    let stats = server.stats();
    let round_trips = (hold * 1000 / interval) as usize * n;
    println!(
        "server: RSS {rss_before} KiB before, {rss_open} KiB with {n} open: {:.0} bytes per connection",
        (rss_open.saturating_sub(rss_before) * 1024) as f64 / n as f64
    );
    println!(
        "server: per connection struct {} bytes + tungstenite read buffer {} bytes",
        heartbeat_mio::connection_struct_size(),
        heartbeat_mio::Options::new(heartbeat_core::Config::default())
            .websocket
            .read_buffer_size
    );
    println!(
        "server: {cpu} CPU ticks (10 ms) over {hold} s for ~{round_trips} round trips: {:.1} µs CPU per round trip; {} timer wakeups",
        cpu as f64 * 10_000.0 / round_trips as f64,
        stats.timer_wakeups
    );
    println!(
        "server: timer lateness max {:?}, mean {:?}; deaths {}: {:?}",
        stats.timer_late_max,
        stats.timer_late_total / stats.timer_wakeups.max(1) as u32,
        server.handler().0.len(),
        &server.handler().0[..server.handler().0.len().min(5)]
    );
    // Keep serving until the client has measured and left.
    while child.try_wait()?.is_none() {
        server.turn(Some(Duration::from_millis(50)))?;
    }
    Ok(())
}

fn client(url: &str, n: usize, interval: u64, hold: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut client = Driver::new(Options::new(config(interval)), Deaths::default())?;
    let rss_before = rss_kib();
    for _ in 0..n {
        client.connect(url)?;
    }
    let start = Instant::now();
    while client.stats().live < n && start.elapsed() < Duration::from_secs(30) {
        client.turn(Some(Duration::from_millis(50)))?;
    }
    client.run_for(Duration::from_millis(2 * interval))?;
    let rss_open = rss_kib();
    client.reset_stats();
    client.run_for(Duration::from_secs(hold))?;
    let stats = client.stats();
    println!(
        "client: {:.0} bytes RSS per connection; timer lateness max {:?}; deaths {}",
        (rss_open.saturating_sub(rss_before) * 1024) as f64 / n as f64,
        stats.timer_late_max,
        client.handler().0.len()
    );
    Ok(())
}

/// One config for both processes: the driver runs it in the server role for
/// accepted connections and in the client role for `connect`ed ones.
fn config(interval_ms: u64) -> Config {
    Config::builder()
        .ping_interval(Duration::from_millis(interval_ms))
        .pong_timeout(Duration::from_millis(interval_ms))
        .build()
        .expect("valid config")
}

/// VmRSS from /proc/self/status, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// utime + stime of this process, in clock ticks (1/100 s).
fn cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}
