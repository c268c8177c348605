//! A snapshot of a connection's heartbeat, readable from any handle at any time.

use core::time::Duration;
use std::sync::{Arc, Mutex, MutexGuard};

use heartbeat_core::{Health, HeartbeatMachine, RttStats, State, Stats};
use tokio::sync::watch;

use crate::clock::Clock;

/// What the machine knows about a connection: stored by the driver each time it
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

/// The latest [`Status`] of a connection (or of a reconnecting client), shared by
/// its driver and its handles.
///
/// Storing a snapshot is one uncontended lock and a copy. A `watch` channel, which
/// wakes waiters and would be written on every round trip, exists only once a
/// handle asks for one ([`watch`](Self::watch), which `dead()` also uses) and is
/// then kept current under the same lock, so no change falls between the two.
#[derive(Debug)]
pub(crate) struct StatusCell {
    inner: Mutex<Cell>,
}

#[derive(Debug)]
struct Cell {
    status: Status,
    watch: Option<watch::Sender<Status>>,
    /// The publisher is gone: watches made from now on end at once.
    closed: bool,
}

impl StatusCell {
    /// A cell showing `initial`, and the publisher that keeps it current.
    pub(crate) fn new(initial: Status) -> (Publisher, Arc<StatusCell>) {
        let cell = Arc::new(StatusCell {
            inner: Mutex::new(Cell {
                status: initial,
                watch: None,
                closed: false,
            }),
        });
        (Publisher(cell.clone()), cell)
    }

    /// The latest snapshot.
    pub(crate) fn get(&self) -> Status {
        self.lock().status.clone()
    }

    /// A watch on the snapshot; it ends (`changed()` fails) when the publisher is
    /// gone.
    pub(crate) fn watch(&self) -> watch::Receiver<Status> {
        let mut cell = self.lock();
        if let Some(tx) = &cell.watch {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(cell.status.clone());
        if !cell.closed {
            cell.watch = Some(tx);
        }
        rx
    }

    /// Stores `status`; wakes watchers if any and it changed.
    pub(crate) fn set(&self, status: Status) {
        let mut cell = self.lock();
        if let Some(tx) = &cell.watch {
            tx.send_if_modified(|s| {
                let changed = *s != status;
                if changed {
                    *s = status.clone();
                }
                changed
            });
        }
        cell.status = status;
    }

    fn close(&self) {
        let mut cell = self.lock();
        cell.closed = true;
        cell.watch = None; // the sender drops: every watch ends
    }

    fn lock(&self) -> MutexGuard<'_, Cell> {
        // Each critical section is a copy or a channel call that does not panic:
        // a poisoned lock still holds a whole snapshot.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writing end of a [`StatusCell`], held by the one task that runs the
/// machine; dropping it ends every watch.
#[derive(Debug)]
pub(crate) struct Publisher(Arc<StatusCell>);

impl Publisher {
    /// Stores `status`.
    pub(crate) fn set(&self, status: Status) {
        self.0.set(status);
    }

    /// The cell, for handles and mirrors.
    pub(crate) fn cell(&self) -> &Arc<StatusCell> {
        &self.0
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.0.close();
    }
}
