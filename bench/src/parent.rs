//! The parent: starts each implementation's server and client processes, opens the
//! connections, takes the measured window, reads CPU and RSS from `/proc`, collects
//! the children's counters and stops everything.

use core::time::Duration;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use serde_json::Value;

use crate::args::{fmt_duration, Cli, Impl, RoleArgs, Which};
use crate::child;
use crate::procfs;
use crate::roles::python;
use crate::syscalls;

/// One implementation's result in one repetition.
pub struct Run {
    /// Which implementation.
    pub imp: Impl,
    /// Repetition number (0-based).
    pub rep: u32,
    /// Server and client figures, or why the run failed.
    pub result: Result<[Figures; 2], String>,
    /// How long opening the connections took, and anything unusual.
    pub notes: Vec<String>,
    /// What became of the planted dead peers (`--planted`), if any were planted.
    pub planted: Option<Planted>,
}

/// The planted dead peers of one run, as the server saw them.
#[derive(Clone, Debug, Default)]
pub struct Planted {
    /// How many were planted.
    pub k: usize,
    /// Each detection: its delay after the peer was stopped, µs, and the local lag
    /// the verdict allowed for, µs (`None` where the implementation does not say).
    pub detections: Vec<(u64, Option<u64>)>,
}

/// One process's figures over the measured window.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// CPU time used during the window, µs.
    pub cpu_us: u64,
    /// VmRSS before any connection, KiB.
    pub rss_base: u64,
    /// VmRSS at the end of the window, KiB.
    pub rss_end: u64,
    /// Connections this process holds (the planted ones are another process's).
    pub conns: usize,
    /// Round trips its own pings completed during the window.
    pub pongs: u64,
    /// Its own pong-timeout verdicts, whole run.
    pub timeouts: u64,
    /// Connections it saw end for any reason, whole run.
    pub lost: u64,
    /// Connections open at the end.
    pub held: u64,
    /// RTT percentiles over the window, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Largest RTT, µs.
    pub max_us: u64,
}

/// Runs every implementation `cli.reps` times, interleaved.
pub fn run_all(cli: &Cli) -> Vec<Run> {
    let mut runs = Vec::new();
    let python = python::available();
    for rep in 0..cli.reps {
        for &imp in &cli.impls {
            if imp == Impl::Python {
                if let Err(why) = &python {
                    println!("python: skipped ({why})");
                    continue;
                }
            }
            eprintln!(
                "[{}] rep {} {imp}: {} connections (load {})",
                clock(),
                rep + 1,
                cli.conns,
                procfs::loadavg()
            );
            let mut notes = vec![format!("load {} at start", procfs::loadavg())];
            let mut planted = None;
            let result = run_one(cli, imp, &mut notes, &mut planted);
            if let Err(e) = &result {
                eprintln!("[{}] {imp}: FAILED: {e}", clock());
            }
            runs.push(Run {
                imp,
                rep,
                result,
                notes,
                planted,
            });
            // Let the kernel finish closing the previous sockets.
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    runs
}

/// The server addresses used for `cli`.
pub fn addrs(cli: &Cli) -> u8 {
    cli.addrs
        .unwrap_or_else(|| cli.conns.div_ceil(CONNS_PER_ADDR).clamp(1, 250) as u8)
}

/// How long the client takes to open its connections, at least.
pub fn ramp(cli: &Cli) -> Duration {
    cli.ramp.unwrap_or(cli.interval)
}

fn connect_secs(cli: &Cli) -> u64 {
    cli.connect_secs
        .unwrap_or(30 + cli.conns as u64 / 500 + ramp(cli).as_secs())
}

fn run_one(
    cli: &Cli,
    imp: Impl,
    notes: &mut Vec<String>,
    planted_out: &mut Option<Planted>,
) -> Result<[Figures; 2], String> {
    let lifetime = connect_secs(cli) + cli.warmup.as_secs() + cli.secs + 120;
    let planted = if imp == Impl::Python { 0 } else { cli.planted };
    if planted < cli.planted {
        notes.push("no planted dead peers: the python roles do not support them".into());
    }
    let role = |which, port, conns, planted| RoleArgs {
        which,
        imp,
        conns,
        interval: cli.interval,
        timeout: cli.timeout,
        addrs: addrs(cli),
        port,
        lifetime,
        ramp: ramp(cli),
        idle_only: cli.idle_only,
        planted,
    };
    let mut server = Proc::spawn(command(&role(Which::Server, 0, cli.conns, 0)), "server")?;
    let listening = server.expect("listening", Duration::from_secs(30))?;
    let port = listening["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or("server reported no port")?;
    let server_base = server.rss()?;
    // The planted peers open first; each of their connections sends the mark.
    let dead_peer = if planted > 0 {
        let mut p = Proc::spawn(
            command(&role(Which::Client, port, planted, planted)),
            "planted",
        )?;
        p.expect("ready", Duration::from_secs(30))?;
        p.send("connect")?;
        p.expect("opened", Duration::from_secs(connect_secs(cli)))?;
        Some(p)
    } else {
        None
    };
    let live = cli.conns - planted;
    let mut client = Proc::spawn(command(&role(Which::Client, port, live, 0)), "client")?;
    client.expect("ready", Duration::from_secs(30))?;
    let base = [server_base, client.rss()?];

    let start = Instant::now();
    client.send("connect")?;
    match client.expect("opened", Duration::from_secs(connect_secs(cli))) {
        Ok(_) => notes.push(format!(
            "{} connections opened in {:.1} s",
            cli.conns,
            start.elapsed().as_secs_f64()
        )),
        Err(e) => notes.push(format!("not all connections opened: {e}")),
    }
    let hog = if cli.hog {
        Some(Proc::spawn(command(&role(Which::Hog, 0, 0, 0)), "hog")?)
    } else {
        None
    };
    std::thread::sleep(cli.warmup);

    let cpu0 = [server.cpu()?, client.cpu()?];
    let hog0 = hog.as_ref().and_then(|h| h.cpu().ok());
    server.send("mark")?;
    client.send("mark")?;
    server.expect("mark", REPLY)?;
    client.expect("mark", REPLY)?;
    let counting = cli
        .syscalls
        .then(|| [server.pid(), client.pid()].map(|pid| syscalls::count(pid, cli.secs)));
    let stopped_at = match &dead_peer {
        Some(p) => {
            signal(p.pid(), "STOP")?;
            Some(child::unix_us())
        }
        None => None,
    };
    std::thread::sleep(Duration::from_secs(cli.secs));
    let cpu1 = [server.cpu()?, client.cpu()?];
    if let (Some(h), Some(before)) = (&hog, hog0) {
        let used = h.cpu()?.saturating_sub(before);
        notes.push(format!(
            "the hog used {:.1} s of CPU in the {} s window",
            used as f64 / 1e6,
            cli.secs
        ));
    }
    let rss = [server.rss()?, client.rss()?];
    server.send("report")?;
    client.send("report")?;
    let reports = [
        server.expect("report", REPLY)?,
        client.expect("report", REPLY)?,
    ];
    let counted = counting.map(|c| c.map(syscalls::Counting::finish));
    if let Some(stop) = stopped_at {
        *planted_out = Some(Planted {
            k: planted,
            detections: detections(&reports[0], stop),
        });
    }
    // Everything stops here: the hog and all children are killed on drop.
    let out = [0, 1].map(|i| {
        let r = &reports[i];
        let get = |k: &str| r[k].as_u64().unwrap_or(0);
        Figures {
            conns: [cli.conns, live][i],
            cpu_us: cpu1[i].saturating_sub(cpu0[i]),
            rss_base: base[i],
            rss_end: rss[i],
            pongs: get("pongs"),
            timeouts: get("timeouts"),
            lost: get("lost"),
            held: get("held"),
            p50_us: get("p50_us"),
            p99_us: get("p99_us"),
            max_us: get("max_us"),
        }
    });
    // What one connection costs per second, whatever its round trips: the figure
    // to compare when one side stops pinging (`--idle-only`).
    let per_conn_s = |f: &Figures| f.cpu_us as f64 / cli.conns.max(1) as f64 / cli.secs as f64;
    notes.push(format!(
        "CPU per connection-second: server {:.2} µs, client {:.2} µs",
        per_conn_s(&out[0]),
        per_conn_s(&out[1])
    ));
    if let Some(counted) = counted {
        let rts = out[0].pongs + out[1].pongs;
        for (name, c) in ["server", "client"].iter().zip(counted) {
            notes.push(match c {
                Ok(c) => format!("{name} syscalls: {}", c.per_round_trip(rts)),
                Err(e) => format!("{name} syscalls: not counted ({e})"),
            });
        }
    }
    Ok(out)
}

/// The server's verdicts on planted peers, as delays after `stop` (µs) with the
/// local lag each verdict allowed for.
fn detections(report: &Value, stop: u64) -> Vec<(u64, Option<u64>)> {
    let Some(list) = report["planted"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|d| {
            let at = d[0].as_u64()?;
            Some((at.saturating_sub(stop), d[1].as_u64()))
        })
        .collect()
}

/// Sends `SIGsig` to `pid` with kill(1) (the bench has no libc binding).
fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .map_err(|e| format!("kill -{sig}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{sig} {pid}: {status}"))
    }
}

/// The command that starts the child `args` describes.
fn command(args: &RoleArgs) -> Command {
    if args.imp == Impl::Python && args.which != Which::Hog {
        return python::command(args);
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| "heartbeat-bench".into());
    let which = match args.which {
        Which::Server => "server",
        Which::Client => "client",
        Which::Hog => "hog",
    };
    let mut cmd = Command::new(exe);
    cmd.args(["role", which, "--impl", args.imp.arg()])
        .args(["--conns", &args.conns.to_string()])
        .args(["--interval", &fmt_duration(args.interval)])
        .args(["--timeout", &fmt_duration(args.timeout)])
        .args(["--addrs", &args.addrs.to_string()])
        .args(["--port", &args.port.to_string()])
        .args(["--ramp", &fmt_duration(args.ramp)])
        .args(["--lifetime", &args.lifetime.to_string()])
        .args(["--planted", &args.planted.to_string()]);
    if args.idle_only {
        cmd.arg("--idle-only");
    }
    cmd
}

/// A running child: its stdin for commands, its stdout lines parsed as JSON.
/// Killed (and reaped) on drop.
struct Proc {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
    name: &'static str,
}

impl Proc {
    fn spawn(mut cmd: Command, name: &'static str) -> Result<Proc, String> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{name}: cannot start: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                    Err(_) => eprintln!("{name}: {line}"),
                }
            }
        });
        Ok(Proc {
            child,
            stdin,
            lines,
            name,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send(&mut self, word: &str) -> Result<(), String> {
        writeln!(self.stdin, "{word}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("{}: cannot send {word}: {e}", self.name))
    }

    /// Waits for the line whose `ev` is `ev`; earlier lines of other kinds are
    /// dropped.
    fn expect(&mut self, ev: &str, within: Duration) -> Result<Value, String> {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if v["ev"] == ev => return Ok(v),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("{}: no {ev:?} within {within:?}", self.name))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.try_wait().ok().flatten();
                    return Err(format!("{}: exited before {ev:?} ({status:?})", self.name));
                }
            }
        }
    }

    fn cpu(&self) -> Result<u64, String> {
        procfs::cpu_us(self.pid()).ok_or_else(|| format!("{}: no /proc stat", self.name))
    }

    fn rss(&self) -> Result<u64, String> {
        procfs::rss_kib(self.pid()).ok_or_else(|| format!("{}: no /proc status", self.name))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wall-clock seconds since the bench started, for progress lines.
fn clock() -> String {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    format!(
        "{:6.1}s",
        START.get_or_init(Instant::now).elapsed().as_secs_f64()
    )
}

/// How long a child may take to answer `mark` or `report` (a saturated Python
/// event loop answers late).
const REPLY: Duration = Duration::from_secs(60);

/// Connections per server address: more between one pair of loopback addresses
/// makes `connect()` slow (ephemeral port search).
const CONNS_PER_ADDR: usize = 5000;
