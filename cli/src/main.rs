//! `heartbeat`: see dead peers detected on loopback (`demo`, the default), ping any
//! WebSocket server (`ping`), or run an echo/broadcast server with heartbeats (`serve`).

mod args;
mod connect;
mod connect_opts;
mod demo;
mod limits;
mod metrics_http;
mod output;
mod ping;
mod probe;
mod report;
mod rtt;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use heartbeat_core::{Bounds, Config, ConfigBuilder, ConfigError, Field, Liveness, Role};

use args::show;

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
    let quiet = matches!(&cli.command, Some(Command::Ping(p)) if p.quiet);
    let mut out = Out::new(cli.common.json).quiet(quiet);
    if matches!(cli.command, Some(Command::Connect(_))) {
        // stdout carries the peer's messages; the heartbeat reports on stderr.
        out = out.on_stderr();
    }
    let (role, demo) = match cli.command {
        Some(Command::Serve(_)) => (Role::Server, false),
        Some(Command::Ping(_) | Command::Connect(_) | Command::Probe(_)) => (Role::Client, false),
        None | Some(Command::Demo) => (Role::Client, true),
    };
    // ping(8)'s habit: the first ping as the connection opens.
    let first_ping_at_connect = matches!(cli.command, Some(Command::Ping(_) | Command::Connect(_)));
    let file = match cli.common.config.as_deref().map(load_config) {
        None => None,
        Some(Ok(config)) => Some(config),
        Some(Err(e)) => {
            let path = cli
                .common
                .config
                .as_deref()
                .unwrap_or(std::path::Path::new(""));
            eprintln!(
                "heartbeat: invalid value '{}' for '--config <FILE>': {e}",
                path.display()
            );
            return ExitCode::from(Exit::Usage as u8);
        }
    };
    let config = match heartbeat_config(&cli.common, role, demo, file).and_then(|b| {
        // Turned on for ping and connect; a file may turn it on for the others.
        let b = if first_ping_at_connect {
            b.ping_on_connect(true)
        } else {
            b
        };
        b.build()
    }) {
        Ok(c) => c,
        Err(e) => return usage_error(&cli.common, &e),
    };
    let limits = match cli.limits.limits() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("heartbeat: invalid limits: {e}");
            return ExitCode::from(Exit::Usage as u8);
        }
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
            Some(Command::Ping(args)) => ping::run(args, config, limits, out).await,
            Some(Command::Connect(args)) => connect::run(args, config, out).await,
            Some(Command::Probe(args)) => probe::run(args, &cli.common, out).await,
            Some(Command::Serve(args)) => {
                let tls = match args.tls.load() {
                    Ok(tls) => tls,
                    Err(e) => {
                        eprintln!("heartbeat: {e}");
                        return Exit::Usage;
                    }
                };
                match serve::run(
                    args.bind,
                    args.app_json,
                    args.metrics,
                    tls,
                    config,
                    limits,
                    out,
                )
                .await
                {
                    Ok(()) => Exit::Ok,
                    Err(e) => {
                        eprintln!("heartbeat: cannot listen on {}: {e}", args.bind);
                        Exit::ConnectionEnded
                    }
                }
            }
        }
    });
    // `ping` and `serve` have finished their close handshakes (or given up after
    // close_timeout) before returning; anything left is not worth waiting for.
    runtime.shutdown_background();
    ExitCode::from(exit as u8)
}

/// The core config builder for the common options, checked (a rejected value names
/// its option through [`usage_error`]); a command may set more before building.
///
/// The demo's defaults are shorter so that it shows everything in about 20 seconds.
///
/// With `--config FILE` the file's settings are the base (already validated when
/// loaded) and only the options given on the command line change them.
pub fn heartbeat_config(
    c: &Common,
    role: Role,
    demo: bool,
    file: Option<Config>,
) -> Result<ConfigBuilder, ConfigError> {
    let ms = std::time::Duration::from_millis;
    let (interval, timeout, close, connect) = if demo {
        (ms(500), ms(1000), ms(500), ms(800))
    } else {
        (ms(1000), ms(2000), ms(1000), ms(10_000))
    };
    let base = match file {
        Some(f) => f,
        None => Config::builder()
            .ping_interval(interval)
            .pong_timeout(timeout)
            .close_timeout(close)
            .connect_timeout(connect)
            .build()?,
    };
    let mut builder = base.to_builder().role(role);
    if let Some(d) = c.interval {
        builder = builder.ping_interval(d);
    }
    if let Some(d) = c.timeout {
        builder = builder.pong_timeout(d);
    }
    if let Some(d) = c.close_timeout {
        builder = builder.close_timeout(d);
    }
    if let Some(d) = c.connect_timeout {
        builder = builder.connect_timeout(d);
    }
    if let Some(l) = c.liveness {
        builder = builder.liveness(match l {
            LivenessArg::Pong => Liveness::PongOnly,
            LivenessArg::Any => Liveness::AnyFrame,
        });
    }
    if c.adaptive {
        let timeout = builder.build()?.pong_timeout();
        builder = builder.adaptive_timeout(Some(Bounds {
            min: ms(10).min(timeout),
            max: timeout,
        }));
    }
    builder.build().map(|_| builder)
}

/// The `--config` file's heartbeat settings, validated as the builder validates;
/// the error is one line naming the file and what is wrong.
fn load_config(path: &std::path::Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let parsed = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        toml::from_str(&text).map_err(|e| e.message().to_owned())
    };
    parsed.map_err(|e| e.lines().next().unwrap_or_default().to_owned())
}

/// Reports a rejected heartbeat setting in clap's own words, so every usage error
/// reads the same: `invalid value 'V' for '--option <DURATION>': the allowed range`.
fn usage_error(c: &Common, e: &ConfigError) -> ExitCode {
    eprintln!("heartbeat: {}", describe_config_error(c, e));
    ExitCode::from(Exit::Usage as u8)
}

/// The one line for [`usage_error`]: the option, the value given and the range,
/// all three taken from the error the config builder returned.
pub fn describe_config_error(c: &Common, e: &ConfigError) -> String {
    let (option, given) = match e.field() {
        Field::PingInterval => ("--interval", c.interval),
        Field::PongTimeout => ("--timeout", c.timeout),
        Field::CloseTimeout => ("--close-timeout", c.close_timeout),
        Field::ConnectTimeout => ("--connect-timeout", c.connect_timeout),
        _ => return format!("invalid configuration: {e}"),
    };
    let why = match *e {
        ConfigError::OutOfBounds { min, max, .. } => {
            format!("must be between {} and {}", show(min), show(max))
        }
        // Zero lies outside the bounds too: say the range, as for any other value.
        ConfigError::Zero {
            field: f @ (Field::PingInterval | Field::PongTimeout),
        } => {
            let defaults = Config::default();
            let b = match f {
                Field::PingInterval => defaults.interval_bounds(),
                _ => defaults.timeout_bounds(),
            };
            format!("must be between {} and {}", show(b.min), show(b.max))
        }
        ConfigError::Zero { .. } => "must be greater than zero".to_owned(),
        other => other.to_string(),
    };
    match given {
        Some(v) => format!(
            "invalid value '{}' for '{option} <DURATION>': {why}",
            show(v)
        ),
        None => format!("invalid configuration for {option}: {e}"),
    }
}
