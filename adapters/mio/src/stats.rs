//! [`DriverStats`]: counters of a driver.

use std::time::Duration;

/// Counters of a driver; cheap to copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Open WebSocket connections now (opened, no verdict yet).
    pub live: usize,
    /// Connections held now in any stage (handshaking, open, closing, waiting to
    /// reconnect).
    pub connections: usize,
    /// TCP connections accepted.
    pub accepted: u64,
    /// Server handshakes in progress now.
    pub handshaking: usize,
    /// Accepted TCP connections refused at once: `Limits::max_connections` held,
    /// or `Limits::max_handshakes` in progress.
    pub accepts_refused: u64,
    /// `accept` errors from exhausted resources (`EMFILE`, `ENFILE`, ...); each is
    /// followed by a 10–100 ms wait, never an immediate retry.
    pub accept_errors: u64,
    /// Episodes of exhausted resources on accept (the first error of each).
    pub accept_exhaustions: u64,
    /// Client TCP connects started (first attempts and reconnects).
    pub connects_started: u64,
    /// Connection attempts (client connect + handshake, server handshake) that
    /// failed or that the machine abandoned at `connect_timeout`.
    pub handshakes_failed: u64,
    /// WebSocket handshakes completed.
    pub opened: u64,
    /// Deaths reported ([`Handler::on_dead`](crate::Handler::on_dead)).
    pub deaths: u64,
    /// Deaths that were faults ([`DeathReason::is_fault`](heartbeat_core::DeathReason::is_fault)).
    pub fault_deaths: u64,
    /// Connections removed ([`Handler::on_closed`](crate::Handler::on_closed)).
    pub removed: u64,
    /// `poll` calls.
    pub polls: u64,
    /// `poll` calls with a zero timeout, made before judging due deadlines because
    /// the previous one returned a full batch of events or the loop woke late.
    pub evidence_polls: u64,
    /// Due timers handled.
    pub timer_wakeups: u64,
    /// Stale timer entries discarded (a deadline that moved before it was due).
    pub stale_timer_pops: u64,
    /// Entries in the timer heap now, stale ones included.
    pub timer_heap_len: usize,
    /// The latest a due timer was handled after its deadline.
    pub timer_late_max: Duration,
    /// Sum of the lateness of all handled timers (divide by `timer_wakeups`).
    pub timer_late_total: Duration,
    /// The local lag every machine's pong verdict allows for now: the worst timer
    /// lateness of the last 0.5–1 s (see `HeartbeatMachine::handle_local_lag`).
    pub local_lag: Duration,
    /// Application sends refused because the connection was backed up.
    pub sends_refused: u64,
    /// Pings that found the socket full and waited in the buffer (reported sent
    /// when flushed).
    pub pings_queued: u64,
    /// Close frames that found the socket full and waited in the buffer (reported
    /// sent when flushed).
    pub closes_queued: u64,
}
