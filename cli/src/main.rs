//! `heartbeat`: see dead peers detected on loopback (`demo`, the default), ping any
//! WebSocket server (`ping`), or run an echo/broadcast server with heartbeats (`serve`).

mod args;
mod connect_opts;
mod demo;
mod output;
mod ping;
mod report;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use heartbeat_core::{Bounds, Config, ConfigError, Field, Liveness, Role};

use args::{Cli, Command, Common, LivenessArg};
use output::Out;

/// The documented exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: success (count reached, interrupted, demo finished).
    Ok = 0,
    /// 1: the peer became unresponsive (no pong within --timeout).
    Unresponsive = 1,
    /// 2: invalid usage (clap uses 2 for its own errors too).
    Usage = 2,
    /// 3: could not connect, or the connection ended for another reason.
    ConnectionEnded = 3,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print as usual and exit 0.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One line naming the option, not clap's three-line block.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            eprintln!("heartbeat: {}", first.trim_start_matches("error: "));
            return ExitCode::from(Exit::Usage as u8);
        }
    };
    let out = Out::new(cli.common.json);
    let (role, demo) = match cli.command {
        Some(Command::Serve(_)) => (Role::Server, false),
        Some(Command::Ping(_)) => (Role::Client, false),
        None | Some(Command::Demo) => (Role::Client, true),
    };
    let config = match heartbeat_config(&cli.common, role, demo) {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("heartbeat: cannot start the runtime: {e}");
            return ExitCode::from(Exit::ConnectionEnded as u8);
        }
    };
    let exit = runtime.block_on(async move {
        match cli.command {
            None | Some(Command::Demo) => demo::run(cli.common.clone(), config, out).await,
            Some(Command::Ping(args)) => ping::run(args, config, out).await,
            Some(Command::Serve(args)) => {
                let tls = match args.tls.load() {
                    Ok(tls) => tls,
                    Err(e) => {
                        eprintln!("heartbeat: {e}");
                        return Exit::Usage;
                    }
                };
                match serve::run(args.bind, args.app_json, tls, config, out).await {
                    Ok(()) => Exit::Ok,
                    Err(e) => {
                        eprintln!("heartbeat: cannot listen on {}: {e}", args.bind);
                        Exit::ConnectionEnded
                    }
                }
            }
        }
    });
    // Connections may still be closing in the background; do not wait for them.
    runtime.shutdown_background();
    ExitCode::from(exit as u8)
}

/// The core config for the common options; a rejected value names its option.
///
/// The demo's defaults are shorter so that it shows everything in about 20 seconds.
pub fn heartbeat_config(c: &Common, role: Role, demo: bool) -> Result<Config, ConfigError> {
    let ms = std::time::Duration::from_millis;
    let (interval, timeout, close, connect) = if demo {
        (ms(500), ms(1000), ms(500), ms(800))
    } else {
        (ms(1000), ms(2000), ms(1000), ms(10_000))
    };
    let timeout = c.timeout.unwrap_or(timeout);
    Config::builder()
        .role(role)
        .ping_interval(c.interval.unwrap_or(interval))
        .pong_timeout(timeout)
        .close_timeout(c.close_timeout.unwrap_or(close))
        .connect_timeout(c.connect_timeout.unwrap_or(connect))
        .liveness(match c.liveness {
            LivenessArg::Pong => Liveness::PongOnly,
            LivenessArg::Any => Liveness::AnyFrame,
        })
        .adaptive_timeout(c.adaptive.then(|| Bounds {
            min: ms(10).min(timeout),
            max: timeout,
        }))
        .build()
}

fn usage_error(e: &ConfigError) -> ExitCode {
    let option = match e.field() {
        Field::PingInterval => "--interval",
        Field::PongTimeout => "--timeout",
        Field::CloseTimeout => "--close-timeout",
        Field::ConnectTimeout => "--connect-timeout",
        Field::Liveness => "--liveness",
        Field::AdaptiveTimeout => "--adaptive",
        _ => "configuration",
    };
    eprintln!("heartbeat: invalid {option}: {e}");
    ExitCode::from(Exit::Usage as u8)
}
