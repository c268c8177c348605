//! `heartbeat demo`: the whole library working on loopback, with real faults.
//!
//! - a real server process (`heartbeat serve`, started from this same binary) with
//!   server-side heartbeats;
//! - a built-in TCP proxy in front of it that can silently drop one connection
//!   (no FIN, no RST: the half-open case heartbeats exist for);
//! - three clients exchanging messages: `alpha` and `beta` through the proxy,
//!   `gamma` directly.
//!
//! Timeline: traffic flows; at 3 s alpha's link is silently dropped; at 8 s the
//! server process is stopped with SIGSTOP (a hung server: its kernel still ACKs, so
//! only heartbeats notice); at 12 s it is resumed with SIGCONT. Each detection is
//! shown next to the configured bound, with the close code, the backoff delay and the
//! reconnection; a summary table ends the run at about 18 s.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heartbeat_core::Config;
use heartbeat_tokio::tokio_tungstenite::client_async_with_config;
use heartbeat_tokio::{connect, connect_with, small_buffers, Connections, Error, Event, Options};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use crate::args::{show, Common};
use crate::output::{ms, Out, Tone};
use crate::ping::{dead_fields, Summary};
use crate::Exit;

const CLIENTS: [&str; 3] = ["alpha", "beta", "gamma"];
const DROP_LINK_AT: Duration = Duration::from_secs(3);
const HANG_SERVER_AT: Duration = Duration::from_secs(8);
const RESUME_SERVER_AT: Duration = Duration::from_secs(12);
const END_AT: Duration = Duration::from_secs(18);

/// Runs the demo; `Exit::Ok` unless the server could not be started.
pub async fn run(common: Common, config: Config, out: Out) -> Exit {
    match Demo::start(&common, config, out.clone()).await {
        Ok(demo) => demo.run().await,
        Err(e) => {
            eprintln!("heartbeat: cannot run the demo: {e}");
            Exit::ConnectionEnded
        }
    }
}

struct Demo {
    config: Config,
    out: Out,
    server: Child,
    /// One proxy per proxied client, so a fault hits exactly that client's link.
    proxies: BTreeMap<&'static str, Proxy>,
    events: mpsc::UnboundedReceiver<(&'static str, Event)>,
    clients: BTreeMap<&'static str, ClientLog>,
    /// The fault that each client's next detection answers, and when it started.
    pending_fault: BTreeMap<&'static str, (&'static str, Instant)>,
    start: Instant,
    _connections: Vec<tokio::task::JoinHandle<()>>,
    /// Echoes each client received back from the server, per client.
    echoes: BTreeMap<&'static str, Arc<AtomicU64>>,
}

#[derive(Default)]
struct ClientLog {
    summary: Summary,
    detections: Vec<String>,
    reconnects: u32,
    connects: u32,
}

impl Demo {
    async fn start(common: &Common, config: Config, out: Out) -> Result<Demo, String> {
        let bound = config.detection_bound(Duration::ZERO);
        out.event(
            "config",
            "demo",
            json!({ "interval_ms": ms(config.ping_interval()), "timeout_ms": ms(config.pong_timeout()),
                    "close_timeout_ms": ms(config.close_timeout()), "bound_ms": ms(bound) }),
            Tone::Heading,
            &format!(
                "heartbeat demo: ping every {}, pong timeout {}, close timeout {} -> a dead peer is detected within {} of its last sign of life",
                show(config.ping_interval()), show(config.pong_timeout()), show(config.close_timeout()), show(bound)
            ),
        );
        let (server, server_addr) = spawn_server(common, config, out.clone()).await?;
        let mut proxies = BTreeMap::new();
        for name in ["alpha", "beta"] {
            let proxy = Proxy::start(server_addr)
                .await
                .map_err(|e| format!("proxy: {e}"))?;
            out.event(
                "proxy",
                name,
                json!({ "addr": proxy.addr.to_string(), "upstream": server_addr.to_string() }),
                Tone::Plain,
                &format!(
                    "connects through proxy {} -> server {server_addr}",
                    proxy.addr
                ),
            );
            proxies.insert(name, proxy);
        }
        let (events_tx, events) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        let mut echoes = BTreeMap::new();
        for name in CLIENTS {
            let tx = events_tx.clone();
            let options = Options::new(config).observe(move |e: &Event| {
                let _ = tx.send((name, e.clone()));
            });
            let connections = match proxies.get(name) {
                None => connect(format!("ws://{server_addr}/"), options)
                    .map_err(|e| format!("client {name}: {e}"))?,
                Some(proxy) => {
                    let addr = proxy.addr;
                    connect_with(
                        move || async move {
                            let tcp = TcpStream::connect(addr)
                                .await
                                .map_err(|e| Error::Connect(Arc::new(e.into())))?;
                            tcp.set_nodelay(true).ok();
                            let (ws, _) = client_async_with_config(
                                format!("ws://{addr}/"),
                                tcp,
                                Some(small_buffers()),
                            )
                            .await
                            .map_err(|e| Error::Connect(Arc::new(e)))?;
                            Ok(ws)
                        },
                        options,
                    )
                }
            };
            let count = Arc::new(AtomicU64::new(0));
            echoes.insert(name, count.clone());
            tasks.push(tokio::spawn(chat(name, connections, count)));
        }
        Ok(Demo {
            config,
            out,
            server,
            proxies,
            events,
            clients: CLIENTS.iter().map(|&n| (n, ClientLog::default())).collect(),
            pending_fault: BTreeMap::new(),
            start: Instant::now(),
            _connections: tasks,
            echoes,
        })
    }

    async fn run(mut self) -> Exit {
        let mut step = 0;
        let schedule = [DROP_LINK_AT, HANG_SERVER_AT, RESUME_SERVER_AT, END_AT];
        loop {
            let next = self.start + schedule[step];
            tokio::select! {
                _ = sleep_until(next) => {
                    match step {
                        0 => self.drop_link("alpha"),
                        1 => self.signal_server("STOP").await,
                        2 => self.signal_server("CONT").await,
                        _ => break,
                    }
                    step += 1;
                }
                Some((who, event)) = self.events.recv() => self.on_event(who, event),
            }
        }
        self.summary();
        let _ = self.server.start_kill();
        Exit::Ok
    }

    fn drop_link(&mut self, who: &'static str) {
        let dropped = self.proxies.get(who).map_or(0, Proxy::drop_all);
        let now = Instant::now();
        self.pending_fault.insert(who, ("half-open link", now));
        self.out.event(
            "fault",
            "demo",
            json!({ "fault": "half_open", "client": who, "connections": dropped }),
            Tone::Bad,
            &format!("FAULT: {who}'s link now silently drops everything (no FIN, no RST); TCP sees nothing wrong"),
        );
    }

    async fn signal_server(&mut self, signal: &str) {
        let Some(pid) = self.server.id() else { return };
        let ok = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .await
            .map(|s| s.success())
            .unwrap_or(false);
        let now = Instant::now();
        if signal == "STOP" {
            for name in CLIENTS {
                self.pending_fault.insert(name, ("hung server", now));
            }
            self.out.event("fault", "demo", json!({ "fault": "server_hung", "signal": "SIGSTOP", "ok": ok }), Tone::Bad,
                "FAULT: server process stopped (SIGSTOP): its kernel still ACKs, only heartbeats can tell");
        } else {
            self.out.event(
                "heal",
                "demo",
                json!({ "fault": "server_hung", "signal": "SIGCONT", "ok": ok }),
                Tone::Good,
                "HEAL: server resumed (SIGCONT); clients reconnect on their next attempt",
            );
        }
    }

    fn on_event(&mut self, who: &'static str, event: Event) {
        let bound = self.config.detection_bound(Duration::ZERO);
        let log = self.clients.entry(who).or_default();
        let out = &self.out;
        match event {
            Event::Connected { attempt } => {
                log.connects += 1;
                let again = log.connects > 1;
                out.event(
                    "connected",
                    who,
                    json!({ "attempt": attempt, "reconnect": again }),
                    Tone::Good,
                    if again { "reconnected" } else { "connected" },
                );
            }
            Event::PingSent { seq } => {
                log.summary.sent += 1;
                out.event("ping", who, json!({ "seq": seq }), Tone::Plain, "");
            }
            Event::Pong { seq, rtt } => {
                log.summary.pong(rtt);
                out.event(
                    "pong",
                    who,
                    json!({ "seq": seq, "rtt_ms": ms(rtt) }),
                    Tone::Plain,
                    &format!("pong #{seq}  rtt {:.3} ms", ms(rtt)),
                );
            }
            Event::Dead { reason, .. } => {
                let mut fields = dead_fields(&reason);
                let mut text = format!("DEAD: {}", crate::report::describe_death(&reason));
                if let Some((fault, at)) = self.pending_fault.remove(who) {
                    let after = at.elapsed();
                    let within = after <= bound;
                    fields["fault"] = json!(fault);
                    fields["after_fault_ms"] = json!(ms(after));
                    fields["bound_ms"] = json!(ms(bound));
                    fields["within_bound"] = json!(within);
                    text = format!(
                        "DEAD ({fault}): detected {:.0} ms after the fault, bound {:.0} ms {}",
                        ms(after),
                        ms(bound),
                        if within { "OK" } else { "EXCEEDED" }
                    );
                    log.detections
                        .push(format!("{fault} {:.2}s", after.as_secs_f64()));
                }
                out.event("dead", who, fields, Tone::Bad, &text);
            }
            Event::Closed { code } => out.event(
                "closed",
                who,
                json!({ "code": code }),
                Tone::Plain,
                &format!("close sent with code {code}"),
            ),
            Event::Reconnecting { after, attempt } => {
                log.reconnects += 1;
                out.event(
                    "reconnecting",
                    who,
                    json!({ "delay_ms": ms(after), "attempt": attempt }),
                    Tone::Plain,
                    &format!(
                        "reconnecting in {:.0} ms (attempt {attempt}, backoff with jitter)",
                        ms(after)
                    ),
                );
            }
            Event::ConnectFailed { error } => {
                let cause = crate::report::describe_connect_error(&error);
                out.event(
                    "connect_failed",
                    who,
                    json!({ "error": cause }),
                    Tone::Bad,
                    &format!("cannot connect: {cause}"),
                );
            }
            _ => {}
        }
    }

    fn summary(&self) {
        let out = &self.out;
        out.line("");
        out.line(&format!(
            "{:<7} {:>9} {:>9} {:>9} {:>6} {:>6} {:>6} {:>10}  {}",
            "client",
            "rtt min",
            "rtt avg",
            "rtt max",
            "pings",
            "pongs",
            "echoes",
            "reconnects",
            "detections (time after fault)"
        ));
        for (name, log) in &self.clients {
            let (min, avg, max, mdev) = log.summary.rtt_stats().unwrap_or_default();
            let echoes = self
                .echoes
                .get(name)
                .map_or(0, |c| c.load(Ordering::Relaxed));
            let detections = if log.detections.is_empty() {
                "-".to_string()
            } else {
                log.detections.join(", ")
            };
            out.line(&format!(
                "{name:<7} {min:>6.3} ms {avg:>6.3} ms {max:>6.3} ms {:>6} {:>6} {echoes:>6} {:>10}  {detections}",
                log.summary.sent, log.summary.received, log.reconnects,
            ));
            out.event("summary", name, json!({
                "pings": log.summary.sent, "pongs": log.summary.received, "echoes": echoes,
                "rtt_min_ms": min, "rtt_avg_ms": avg, "rtt_max_ms": max, "rtt_mdev_ms": mdev,
                "reconnects": log.reconnects, "connects": log.connects, "detections": log.detections,
            }), Tone::Plain, "");
        }
    }
}

/// A client's application: send a message every 700 ms and read the echoes.
/// Echoes received are counted in `echoes`.
async fn chat(name: &'static str, mut connections: Connections, echoes: Arc<AtomicU64>) {
    while let Some(conn) = connections.next().await {
        let (tx, mut rx) = conn.split();
        let mut tick = tokio::time::interval(Duration::from_millis(700));
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    n += 1;
                    if tx.try_send(format!("{name} says hello #{n}").into()).is_err() {
                        break;
                    }
                }
                msg = rx.recv() => match msg {
                    Ok(_) => { echoes.fetch_add(1, Ordering::Relaxed); }
                    Err(_) => break,
                },
            }
        }
    }
}

/// Starts `heartbeat serve` (this same binary) on a free port; relays what it logs.
async fn spawn_server(
    common: &Common,
    config: Config,
    out: Out,
) -> Result<(Child, SocketAddr), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own executable: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--json"])
        .args([
            "--interval",
            &format!("{}ms", config.ping_interval().as_millis()),
        ])
        .args([
            "--timeout",
            &format!("{}ms", config.pong_timeout().as_millis()),
        ])
        .args([
            "--close-timeout",
            &format!("{}ms", config.close_timeout().as_millis()),
        ])
        .args([
            "--liveness",
            if common.liveness == Some(crate::args::LivenessArg::Pong) {
                "pong"
            } else {
                "any"
            },
        ])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start the server: {e}"))?;
    let stdout = child.stdout.take().ok_or("server has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .map_err(|_| "server did not start within 10 s".to_string())?
        .map_err(|e| format!("server output: {e}"))?
        .ok_or("server exited at start")?;
    let addr: SocketAddr = serde_json::from_str::<Value>(&first)
        .ok()
        .and_then(|v| v["addr"].as_str().and_then(|a| a.parse().ok()))
        .ok_or_else(|| format!("unexpected server output: {first}"))?;
    out.event(
        "server",
        "server",
        json!({ "addr": addr.to_string(), "pid": child.id() }),
        Tone::Good,
        &format!(
            "server process {} listening on ws://{addr} (server-side heartbeat on)",
            child.id().unwrap_or(0)
        ),
    );
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            relay_server_line(&out, &line);
        }
    });
    Ok((child, addr))
}

/// Shows the server's own detections and connection changes (not its chatter).
fn relay_server_line(out: &Out, line: &str) {
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(line) else {
        return;
    };
    let event = obj
        .remove("event")
        .and_then(|e| e.as_str().map(str::to_owned))
        .unwrap_or_default();
    if !matches!(event.as_str(), "dead" | "closed" | "connected") {
        return;
    }
    let who = obj
        .remove("who")
        .and_then(|w| w.as_str().map(str::to_owned))
        .unwrap_or_default();
    obj.remove("t");
    let clients = obj.get("clients").cloned().unwrap_or(Value::Null);
    let text = match event.as_str() {
        "dead" => format!(
            "server: {who} removed: {} ({} live)",
            obj.get("reason").and_then(Value::as_str).unwrap_or("?"),
            clients
        ),
        "closed" => format!("server: {who} closed ({clients} live)"),
        _ => format!("server: {who} connected ({clients} live)"),
    };
    obj.insert("client".into(), json!(who));
    let tone = if event == "dead" {
        Tone::Bad
    } else {
        Tone::Plain
    };
    out.event(
        &format!("server_{event}"),
        "server",
        Value::Object(obj),
        tone,
        &text,
    );
}

/// A loopback TCP proxy whose connections can be switched, one by one, to silently
/// drop everything in both directions while keeping both sockets open.
struct Proxy {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let links: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let registry = links.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                client.set_nodelay(true).ok();
                server.set_nodelay(true).ok();
                let dropped = Arc::new(AtomicBool::new(false));
                registry
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(dropped.clone());
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, dropped.clone()));
                tokio::spawn(pump(sr, cw, dropped));
            }
        });
        Ok(Proxy { addr, links })
    }

    /// Switches every current connection to silent drop (new ones are unaffected,
    /// as when a NAT forgets a flow); returns how many were switched.
    fn drop_all(&self) -> usize {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        for link in links.iter() {
            link.store(true, Ordering::SeqCst);
        }
        links.len()
    }
}

/// Copies `from` to `to` until EOF; once `dropped`, reads and discards (the sender's
/// TCP stays happy, the receiver hears nothing).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    dropped: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if dropped.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    // Keep the other side open even after EOF here while dropped: a blackhole sends no FIN.
    if dropped.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
}
