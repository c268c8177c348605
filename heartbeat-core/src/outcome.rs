//! What one input did: returned by the `handle_*` calls whose effect a driver or
//! its application wants to know, so nobody infers it from counters.

use core::time::Duration;

/// What [`handle_pong`](crate::HeartbeatMachine::handle_pong) made of a pong.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum PongOutcome {
    /// It answered our ping `seq` (and acknowledged every earlier one).
    Matched {
        /// The sequence number of the ping it answered.
        seq: u64,
        /// The round trip, when it answered the latest ping (only that ping's send
        /// time is kept); `None` for an earlier one.
        rtt: Option<Duration>,
    },
    /// It answered one of our pings that was already acknowledged, or one sent on
    /// an earlier connection. Ignored.
    Stale {
        /// The sequence number it carried.
        seq: u64,
    },
    /// It answered no ping of ours (a foreign payload, a ping not yet sent, or no
    /// connection open). Ignored and counted in
    /// [`Stats::unsolicited_pongs`](crate::Stats::unsolicited_pongs).
    Unsolicited,
}

/// What [`handle_ping`](crate::HeartbeatMachine::handle_ping) made of a ping.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum PingOutcome {
    /// A pong is queued ([`Action::SendPong`](crate::Action::SendPong)).
    Answered,
    /// Over the ping budget: not answered, counted in
    /// [`Stats::pings_refused`](crate::Stats::pings_refused).
    Refused,
    /// The ping ended the connection: too long for a control frame (1002), or the
    /// last straw of a flood (1008). [`Action::Dead`](crate::Action::Dead) follows.
    Violation,
    /// No connection is open (a ping from a connection being closed); nothing to do.
    Ignored,
}
