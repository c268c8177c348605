//! The busy connection: our pings' RTT, and the server's own pings.

use futures_util::{SinkExt, StreamExt};
use heartbeat_tokio::tungstenite::Message;
use tokio::time::{sleep_until, Instant};

use super::idle::{seen, How, Seen};
use super::{Limits, Ws};
use crate::args::ProbeArgs;

/// What the busy connection saw.
#[derive(Default)]
pub(super) struct Pings {
    pub(super) sent: u64,
    pub(super) rtts: Vec<std::time::Duration>,
    /// When each of the server's pings arrived.
    pub(super) server_pings: Vec<Instant>,
    /// How the connection ended early, if it did.
    pub(super) ended: Option<How>,
}

/// Sends `--pings` pings 100 ms apart and watches for the server's pings for
/// `--watch`, on one connection.
pub(super) async fn ping_and_watch(mut ws: Ws, args: &ProbeArgs, limits: Limits) -> Pings {
    let start = Instant::now();
    let mut p = Pings::default();
    let mut sent_at: Vec<Instant> = Vec::new();
    let mut next_ping = start;
    let last_ping_by = start + PING_SPACING * (args.pings as u32);
    let done_at = (last_ping_by + limits.pong).max(start + args.watch);
    loop {
        let pinging = p.sent < args.pings;
        tokio::select! {
            _ = sleep_until(next_ping), if pinging => {
                let seq = p.sent;
                if ws.send(Message::Ping(seq.to_be_bytes().to_vec().into())).await.is_err() {
                    p.ended = Some(How::Fin);
                    break;
                }
                sent_at.push(Instant::now());
                p.sent += 1;
                next_ping += PING_SPACING;
            }
            _ = sleep_until(done_at) => break,
            msg = ws.next() => match msg {
                Some(Ok(Message::Pong(payload))) => {
                    let seq = <[u8; 8]>::try_from(payload.as_ref()).map(u64::from_be_bytes);
                    if let Some(at) = seq.ok().and_then(|s| sent_at.get(s as usize)) {
                        p.rtts.push(at.elapsed());
                    }
                }
                Some(Ok(Message::Ping(_))) => p.server_pings.push(Instant::now()),
                other => match seen(other) {
                    Seen::Traffic => {}
                    Seen::End(how) => {
                        p.ended = Some(how);
                        break;
                    }
                },
            },
        }
    }
    let _ = ws.close(None).await;
    p
}

/// Time between the RTT pings.
const PING_SPACING: std::time::Duration = std::time::Duration::from_millis(100);
