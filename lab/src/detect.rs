//! A dead peer is detected within the bound: a silent blackhole between two network
//! namespaces, or a hung (`SIGSTOP`ped) peer process.
//!
//! The peer is Python `websockets` with its own keepalive off, so only the adapter
//! under test can notice anything. The clock starts just before the fault is
//! applied (before `nft` runs, before `kill(2)`), so the measured latency includes
//! the fault's own setup and can only overstate the detector's.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use heartbeat_test_support::netns::ADDR_A;
use heartbeat_test_support::{Event, JsonProc, NetnsPair, PyPeer, Side};

use crate::pause::FAILURES;
use crate::{client, server, Adapter, Place, Role, Timing};

/// A verdict that met the bound.
#[derive(Clone, Debug)]
pub struct Detection {
    /// From the start of the fault to the `dead` line.
    pub latency: Duration,
    /// The bound it was held to ([`Timing::detection_bound`]).
    pub bound: Duration,
    /// The `dead` event.
    pub event: Event,
    /// Packets the blackhole dropped (none for a hung peer).
    pub dropped_packets: Option<u64>,
}

/// Two namespaces, the adapter in A as server or in B as client, the Python peer on
/// the other side; after a healthy start, both directions are dropped in
/// prerouting. The adapter must declare `pong_timeout` within the bound.
pub fn blackhole(adapter: Adapter, role: Role, timing: Timing) -> Result<Detection, String> {
    let pair = NetnsPair::new().map_err(|e| format!("netns pair: {e}"))?;
    let (mut proc, _peer) = start(adapter, role, timing, &pair)?;
    warm_up(&mut proc)?;
    let cut = pair.partition().map_err(|e| format!("nft: {e}"))?;
    let bound = timing.detection_bound();
    let mut detection = await_verdict(&mut proc, cut.requested, cut.installed, timing, bound)?;
    let dropped = cut.dropped_packets().map_err(|e| e.to_string())?;
    if dropped == 0 {
        return Err(format!(
            "the blackhole dropped no packet: the verdict was not about it\n{}",
            proc.context(30)
        ));
    }
    detection.dropped_packets = Some(dropped);
    Ok(detection)
}

/// On loopback, the adapter as client or server with the Python peer; after a
/// healthy start the peer process is stopped (its kernel keeps ACKing, so no TCP
/// mechanism notices). The adapter must declare `pong_timeout` within the bound.
///
/// With `own_pause`, the adapter's own process is first stopped for that long;
/// [`CATCH_UP`] after it resumes (its fresh probe answered), the peer is stopped:
/// the adapter has just measured a large local lag and may extend its verdicts by
/// it, but by no more. The bound becomes [`Timing::detection_bound`] + the pause.
pub fn hung_peer(
    adapter: Adapter,
    role: Role,
    timing: Timing,
    own_pause: Option<Duration>,
) -> Result<Detection, String> {
    let (mut proc, peer) = match role {
        Role::Client => {
            let peer = PyPeer::echo_server(None).map_err(|e| format!("python server: {e}"))?;
            let url = format!("ws://{}/", peer.addr.ok_or("no server address")?);
            (client(adapter, Place::Host, &url, timing)?, peer)
        }
        Role::Server => {
            let bind = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let (proc, addr) = server(adapter, Place::Host, bind, timing)?;
            let peer = PyPeer::clients(&format!("ws://{addr}/"), 1)
                .map_err(|e| format!("python client: {e}"))?;
            (proc, peer)
        }
    };
    warm_up(&mut proc)?;
    let mut bound = timing.detection_bound();
    if let Some(pause) = own_pause {
        let stopped = proc.stop().map_err(|e| e.to_string())?;
        std::thread::sleep(pause);
        let resumed = proc.resume().map_err(|e| e.to_string())?;
        bound += resumed - stopped;
        // Let the fresh probe sent on resume be answered (a loopback round trip
        // takes well under a millisecond): the peer dies *after* the adapter has
        // caught up, while the lag it measured is still fresh.
        std::thread::sleep(CATCH_UP);
    }
    let requested = Instant::now();
    peer.stop();
    let stopped = Instant::now();
    await_verdict(&mut proc, requested, stopped, timing, bound)
}

/// How long after its own pause the adapter may catch up before the peer hangs.
pub const CATCH_UP: Duration = Duration::from_millis(50);

/// The adapter and its Python peer on the two sides of `pair` (a server in A, a
/// client in B).
fn start(
    adapter: Adapter,
    role: Role,
    timing: Timing,
    pair: &NetnsPair,
) -> Result<(JsonProc, PyPeer), String> {
    match role {
        Role::Client => {
            let peer = PyPeer::echo_server_in(Some(pair.name(Side::A)), ADDR_A.into(), None)
                .map_err(|e| format!("python server in A: {e}"))?;
            let url = format!("ws://{}/", peer.addr.ok_or("no server address")?);
            let proc = client(adapter, Place::Netns(pair, Side::B), &url, timing)?;
            Ok((proc, peer))
        }
        Role::Server => {
            let bind = SocketAddr::from((ADDR_A, 0));
            let (proc, addr) = server(adapter, Place::Netns(pair, Side::A), bind, timing)?;
            let peer = PyPeer::clients_in(Some(pair.name(Side::B)), &format!("ws://{addr}/"), 1)
                .map_err(|e| format!("python client in B: {e}"))?;
            Ok((proc, peer))
        }
    }
}

/// A healthy start: two pongs reported (a client's, or a server's to its one
/// client), and no verdict.
fn warm_up(proc: &mut JsonProc) -> Result<(), String> {
    for k in 0..2 {
        let e = proc.wait_for(&format!("pong #{k}"), crate::STARTUP, |e| {
            e.is("pong") || FAILURES.contains(&e.name())
        })?;
        if FAILURES.contains(&e.name()) {
            return Err(format!("verdict before the fault: {}", e.line));
        }
    }
    if let Some(e) = proc
        .events()
        .into_iter()
        .find(|e| FAILURES.contains(&e.name()))
    {
        return Err(format!(
            "verdict before the fault: {}\n{}",
            e.line,
            proc.context(30)
        ));
    }
    Ok(())
}

/// Waits for the `dead` verdict and checks it: reason `pong_timeout`, no later than
/// `bound` after `requested`, and no sooner than the pong timeout after `applied`
/// (less 50 ms for the round trip and clock reads), which a verdict caused by the
/// fault cannot beat.
fn await_verdict(
    proc: &mut JsonProc,
    requested: Instant,
    applied: Instant,
    timing: Timing,
    bound: Duration,
) -> Result<Detection, String> {
    let event = proc.wait_for("a dead verdict", bound + Duration::from_secs(5), |e| {
        FAILURES.contains(&e.name())
    })?;
    let latency = event.at.saturating_duration_since(requested);
    let context = || {
        format!(
            "fault at +{:.3}s (test clock); verdict {:.0} ms later, bound {:.0} ms\n{}",
            requested.duration_since(proc.started()).as_secs_f64(),
            latency.as_secs_f64() * 1e3,
            bound.as_secs_f64() * 1e3,
            proc.context(30)
        )
    };
    if !event.is("dead") || event.reason() != "pong_timeout" {
        return Err(format!(
            "expected dead pong_timeout, got {}\n{}",
            event.line,
            context()
        ));
    }
    if latency > bound {
        return Err(format!("too late: {}", context()));
    }
    let floor = timing.timeout.saturating_sub(Duration::from_millis(50));
    if event.at.saturating_duration_since(applied) < floor {
        return Err(format!(
            "sooner than the pong timeout allows: {}",
            context()
        ));
    }
    Ok(Detection {
        latency,
        bound,
        event,
        dropped_packets: None,
    })
}
