//! Counters a driver can export; every one saturates instead of wrapping.

/// What has happened on this machine, across all its connections.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Stats {
    /// Pings the machine asked the driver to send.
    pub pings_sent: u64,
    /// Pongs that answered one of our pings.
    pub pongs_matched: u64,
    /// Pongs that matched no outstanding ping (unsolicited, stale or foreign); ignored.
    pub unsolicited_pongs: u64,
    /// Pings received from the peer.
    pub pings_received: u64,
    /// Pongs the machine asked the driver to send.
    pub pongs_sent: u64,
    /// Pings not answered because they exceeded the ping budget.
    pub pings_refused: u64,
    /// Timers that fired later than the stall allowance (a local stall, not the peer).
    pub missed_deadlines: u64,
    /// Pong timeouts that declared a peer dead.
    pub pong_timeouts: u64,
    /// Close handshakes cut short: timed out, or ended by the next attempt.
    pub close_timeouts: u64,
    /// Connections opened.
    pub connects: u64,
    /// Connection attempts that failed (reported by the driver or timed out).
    pub connect_failures: u64,
    /// Connection attempts abandoned after `connect_timeout`.
    pub connect_timeouts: u64,
    /// Reports of local lag that moved an armed pong deadline later.
    pub lag_extensions: u64,
    /// Reconnects scheduled.
    pub reconnects: u64,
    /// Times `now` went backwards and was clamped.
    pub clock_anomalies: u64,
    /// Calls that made no sense in the current state (caller misuse), ignored.
    pub ignored_calls: u64,
}

/// `+= 1`, saturating.
pub(crate) fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}
