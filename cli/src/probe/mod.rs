//! `heartbeat probe`: what keepalive does this path need? Measures whether the
//! server answers our pings (and how fast), whether it pings us, whether and how
//! idle connections are closed or silently dropped, the path's idle timeout, and
//! recommends an interval and a timeout.
//!
//! Every measurement uses plain WebSocket connections with no heartbeat of ours: an
//! idle connection must carry nothing but what the server sends.

mod busy;
mod idle;
mod report;

use std::time::Duration;

use heartbeat_tokio::tokio_tungstenite::{self, MaybeTlsStream, WebSocketStream};
use serde_json::json;
use tokio::net::TcpStream;

use crate::args::{show, Common, ProbeArgs};
use crate::output::{ms, Out, Tone};
use crate::Exit;

/// A plain WebSocket client connection, with no heartbeat of ours.
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Runs every measurement (the RTT and server-ping watch alongside the idle
/// search) and prints the report. Exit 0 once measured, 3 if the first connection
/// fails.
pub async fn run(args: ProbeArgs, common: &Common, out: Out) -> Exit {
    let limits = Limits {
        connect: common.connect_timeout.unwrap_or(Duration::from_secs(10)),
        pong: common.timeout.unwrap_or(Duration::from_secs(2)),
    };
    let ws = match open(&args.url, limits.connect).await {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("heartbeat: cannot connect to {}: {e}", args.url);
            return Exit::ConnectionEnded;
        }
    };
    out.event(
        "probing",
        "probe",
        json!({ "url": args.url, "max_idle_ms": ms(args.max_idle) }),
        Tone::Heading,
        &format!(
            "probing {} (idle spans up to {}, {} at a time)",
            args.url,
            show(args.max_idle),
            args.parallel
        ),
    );
    let (pings, idle) = tokio::join!(
        busy::ping_and_watch(ws, &args, limits),
        idle::idle_search(&args, limits, &out)
    );
    report::Report::new(&args, &pings, &idle).print(&out);
    Exit::Ok
}

/// How long a connect and a pong may take.
#[derive(Clone, Copy)]
struct Limits {
    connect: Duration,
    pong: Duration,
}

/// Connects (with `TCP_NODELAY`), bounded by `limit`.
async fn open(url: &str, limit: Duration) -> Result<Ws, String> {
    let config = heartbeat_tokio::small_buffers();
    let connecting = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
    match tokio::time::timeout(limit, connecting).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "not connected within {} (connect timeout)",
            show(limit)
        )),
    }
}
