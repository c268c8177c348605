//! A snapshot of a connection's heartbeat, readable from any handle at any time.

use core::time::Duration;

use heartbeat_core::{Health, HeartbeatMachine, RttStats, State, Stats};

use crate::clock::Clock;

/// What the machine knows about a connection: published by the driver each time it
/// is about to wait and something changed (once per burst of frames, never left
/// stale while it sleeps), read without waiting through
/// [`KeepAlive::status`](crate::KeepAlive::status) or watched for changes with
/// [`KeepAlive::watch_status`](crate::KeepAlive::watch_status).
///
/// With the `serde` feature it serializes (durations as text); the last proof of
/// life, a point on this process's clock, becomes `since_proof_of_life`: how long
/// ago it was when serialized.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Status {
    /// Where the machine stands.
    pub state: State,
    /// Graded liveness.
    pub health: Health,
    /// RTT figures from matched pongs.
    pub rtt: RttStats,
    /// Counters (for a reconnecting client: across all its connections).
    pub stats: Stats,
    /// The ping interval in force.
    #[cfg_attr(feature = "serde", serde(with = "heartbeat_core::serde_duration"))]
    pub ping_interval: Duration,
    /// The pong timeout in force.
    #[cfg_attr(feature = "serde", serde(with = "heartbeat_core::serde_duration"))]
    pub pong_timeout: Duration,
    /// The local lag last given to the machine (at its last due deadline; capped at
    /// `Config::max_local_lag`): how late this group of connections' timers ran, or
    /// their systemic round trip. Pong deadlines are extended by it.
    #[cfg_attr(feature = "serde", serde(with = "heartbeat_core::serde_duration"))]
    pub local_lag: Duration,
    /// The last proof of life on the current connection, on tokio's clock.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "since_proof_of_life", serialize_with = "since")
    )]
    pub last_proof_of_life: Option<tokio::time::Instant>,
}

/// Serializes a point on tokio's clock as the time elapsed since.
#[cfg(feature = "serde")]
fn since<S: serde::Serializer>(t: &Option<tokio::time::Instant>, s: S) -> Result<S::Ok, S::Error> {
    heartbeat_core::serde_duration::option::serialize(&t.map(|t| t.elapsed()), s)
}

impl Status {
    /// The snapshot of `hb`, with its times mapped through `clock`.
    pub(crate) fn of(hb: &HeartbeatMachine, clock: &Clock) -> Status {
        Status {
            state: hb.state(),
            health: hb.health(),
            rtt: hb.rtt(),
            stats: hb.stats(),
            ping_interval: hb.ping_interval(),
            pong_timeout: hb.pong_timeout(),
            local_lag: hb.local_lag(),
            last_proof_of_life: hb.last_proof_of_life().map(|t| clock.to_tokio(t)),
        }
    }

    /// Whether the connection is over (the machine's verdict is in), even if a
    /// close handshake is still being finished.
    pub fn is_over(&self) -> bool {
        self.state.reason().is_some()
    }
}
