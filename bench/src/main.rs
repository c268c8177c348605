//! `heartbeat-bench`: the load bench of heartbeat-tokio, heartbeat-mio, a
//! hand-written tokio-tungstenite loop (at tungstenite's defaults and with a 4 KiB
//! read buffer) and Python websockets 17, side by side in one invocation.
//!
//! ```text
//! cargo run --release -p heartbeat-bench -- --conns 1000 --interval 1s --timeout 1s --secs 30 \
//!     [--impl tokio,mio,loop4k,loop,python] [--reps 2] [--hog] [--syscalls] [--idle-only]
//!     [--planted K]
//! ```
//!
//! `--syscalls` adds each process's system calls per round trip (counted with
//! `perf stat`) to the notes; `--idle-only` runs heartbeat-mio's server with
//! `idle_only`. Every run notes CPU per connection-second.
//!
//! For each implementation it starts this binary twice more, as a server process
//! and a client process (the hidden `role` subcommand; Python runs under
//! `python3`), so CPU and memory are per process. The client opens N connections
//! spread over 127.0.0.1 .. 127.0.0.K, both ends ping at the interval and expect
//! the pong within the timeout, and after a warmup the parent measures a window of
//! `--secs`: CPU from `/proc/PID/stat`, RSS from `/proc/PID/status`, and the
//! children's own counters (round trips, RTT, verdicts, connections held), which
//! they report as JSON lines on stdout. Everything runs on loopback and stops by
//! itself: the parent kills its children when a run ends, and each child exits on
//! its own after a bounded lifetime.

mod args;
mod child;
mod hist;
mod parent;
mod procfs;
mod roles;
mod syscalls;
mod table;

use std::process::ExitCode;

use clap::Parser;

use args::{fmt_duration, Cli, RoleCmd};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(RoleCmd::Role(role)) = cli.role {
        return match roles::run(role) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("heartbeat-bench role: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if cli.conns == 0 || cli.conns > MAX_CONNS {
        eprintln!(
            "--conns must be 1..={MAX_CONNS}: one process holds at most about 19,900 sockets"
        );
        return ExitCode::from(2);
    }
    if cli.planted >= cli.conns {
        eprintln!("--planted must be less than --conns: the planted peers are among the N");
        return ExitCode::from(2);
    }
    println!("{}\n", header(&cli));
    let runs = parent::run_all(&cli);
    println!("\n{}", table::render(&cli, &runs));
    println!("{}", table::legend(&cli));
    print!("{}", table::render_planted(&cli, &runs));
    if runs.iter().any(|r| r.result.is_err()) {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The command that reproduces this run, and the conditions it ran in.
fn header(cli: &Cli) -> String {
    let impls: Vec<&str> = cli.impls.iter().map(|i| i.arg()).collect();
    let mut cmd = format!(
        "cargo run --release -p heartbeat-bench -- --conns {} --interval {} --timeout {} --secs {} --impl {}",
        cli.conns,
        fmt_duration(cli.interval),
        fmt_duration(cli.timeout),
        cli.secs,
        impls.join(",")
    );
    if let Some(ramp) = cli.ramp {
        cmd += &format!(" --ramp {}", fmt_duration(ramp));
    }
    if cli.reps > 1 {
        cmd += &format!(" --reps {}", cli.reps);
    }
    if cli.hog {
        cmd += " --hog";
    }
    if cli.syscalls {
        cmd += " --syscalls";
    }
    if cli.idle_only {
        cmd += " --idle-only";
    }
    if cli.planted > 0 {
        cmd += &format!(" --planted {}", cli.planted);
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "`{cmd}`\n\n{} connections per implementation over {} server address(es) 127.0.0.1.., \
         opened evenly over {:?}, ping interval {:?} and pong timeout {:?} on both ends, {:?} warmup, {} s measured; \
         {cores} cores, load {} at start{}.",
        cli.conns,
        parent::addrs(cli),
        parent::ramp(cli),
        cli.interval,
        cli.timeout,
        cli.warmup,
        cli.secs,
        procfs::loadavg(),
        if cli.hog {
            ", a busy-loop hog on one core during warmup and window"
        } else {
            ""
        }
    ) + &planted_note(cli)
}

/// What `--planted` adds to the run, and the bound its detections are held to.
fn planted_note(cli: &Cli) -> String {
    if cli.planted == 0 {
        return String::new();
    }
    format!(
        " {} of the {} connections are planted dead peers: a separate client process opens them \
         first and is SIGSTOPped as the window starts; the server must declare each dead within \
         interval + 2 × (timeout + L) + 3 × l (L: the local lag its verdict allowed for, capped at \
         max_local_lag; l: its timers' lateness, which L measures; the second timeout is the fresh \
         probe after a deadline found late), {:?} + 5 × L.",
        cli.planted,
        cli.conns,
        cli.interval + cli.timeout * 2
    )
}

/// The per-process file-descriptor limit (20,000) minus some headroom.
const MAX_CONNS: usize = 19_900;
