//! `mio_peer`: heartbeat-mio as a lab process. `mio_peer ping URL` runs one client
//! connection (exit 1 at its death, as `heartbeat ping` without `--reconnect`);
//! `mio_peer serve --bind ADDR` accepts and pings every client and echoes their
//! messages. Both take `--interval` and `--timeout` (and `--events N`, the
//! readiness events one poll returns at most) and print JSON lines
//! (`listening`, `connected`, `ping`, `pong`, `dead`); see `heartbeat_lab::peer`.
//!
//! The loop is the application's: `Driver::turn(None)` until the process is killed.
//! After each turn, each open connection's counters become `ping`/`pong` events;
//! deaths are printed from the handler at the verdict.

use std::collections::BTreeMap;
use std::process::ExitCode;

use heartbeat_core::{DeathReason, Role};
use heartbeat_lab::peer::{dead_fields, Mode, Out, PeerArgs, Tracker};
use heartbeat_mio::tungstenite::Message;
use heartbeat_mio::{ConnId, Ctx, Driver, Handler, Options};
use serde_json::json;

struct Lab {
    out: Out,
    client: bool,
    accepted: u32,
    conns: BTreeMap<ConnId, (String, Tracker)>,
}

impl Handler for Lab {
    fn on_open(&mut self, _ctx: &mut Ctx<'_>, id: ConnId) {
        let who = if self.client {
            "ping".to_owned()
        } else {
            self.accepted += 1;
            format!("client{}", self.accepted)
        };
        self.out
            .event("connected", &who, json!({ "id": id.to_string() }));
        self.conns.insert(id, (who, Tracker::default()));
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, id: ConnId, msg: Message) {
        let _ = ctx.send(id, msg);
    }

    fn on_dead(&mut self, _ctx: &mut Ctx<'_>, id: ConnId, reason: DeathReason) {
        let who = self
            .conns
            .remove(&id)
            .map_or_else(|| id.to_string(), |(who, _)| who);
        self.out.event("dead", &who, dead_fields(&reason));
        if self.client {
            std::process::exit(1);
        }
    }
}

fn main() -> ExitCode {
    // `--events N`: readiness events per poll (the driver's `events_capacity`).
    let mut events = None;
    let mut rest = Vec::new();
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        if arg == "--events" {
            match argv.next().and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => events = Some(n),
                None => {
                    eprintln!("--events needs a number");
                    return ExitCode::from(2);
                }
            }
        } else {
            rest.push(arg);
        }
    }
    let args = match PeerArgs::parse(rest.into_iter()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args, events) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mio_peer: {e}");
            ExitCode::from(3)
        }
    }
}

fn run(args: &PeerArgs, events: Option<usize>) -> Result<(), String> {
    let out = Out::new();
    let client = matches!(args.mode, Mode::Ping { .. });
    let role = if client { Role::Client } else { Role::Server };
    let lab = Lab {
        out,
        client,
        accepted: 0,
        conns: BTreeMap::new(),
    };
    let mut options = Options::new(args.config(role)?);
    if let Some(n) = events {
        options.events_capacity = n;
    }
    let mut driver = Driver::new(options, lab).map_err(|e| e.to_string())?;
    match &args.mode {
        Mode::Ping { url } => {
            driver
                .connect(url)
                .map_err(|e| format!("connect {url}: {e}"))?;
        }
        Mode::Serve { bind } => {
            let addr = driver
                .listen(*bind)
                .map_err(|e| format!("listen {bind}: {e}"))?;
            out.event("listening", "server", json!({ "addr": addr.to_string() }));
        }
    }
    loop {
        driver.turn(None).map_err(|e| e.to_string())?;
        let now = out.elapsed();
        let ids: Vec<ConnId> = driver.handler().conns.keys().copied().collect();
        for id in ids {
            let Some(stats) = driver.ctx().machine_stats(id) else {
                continue;
            };
            if let Some((who, tracker)) = driver.handler_mut().conns.get_mut(&id) {
                tracker.update(&out, who, &stats, now, now);
            }
        }
    }
}
