//! The operation half of an input: how the driver's clock moves and what it
//! calls, one step at a time.

use core::time::Duration;

use arbitrary::Arbitrary;
use heartbeat_core::Instant;

use super::Dur;

/// One driver step: move the driver's clock, then do one thing.
#[derive(Arbitrary, Clone, Debug)]
pub(crate) struct Step {
    pub(crate) clock: ClockStep,
    pub(crate) op: Op,
}

/// How the driver's clock moves before a step; it may run backwards.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(crate) enum ClockStep {
    Same,
    Nanos(u16),
    Micros(u16),
    Millis(u16),
    Secs(u16),
    Forward(Dur),
    BackMillis(u16),
    Back(Dur),
    To(u64),
    ToMax,
}

impl ClockStep {
    /// The clock after this step (saturating at both ends).
    pub(crate) fn apply(self, t: Instant) -> Instant {
        let ms = |n: u16| Duration::from_millis(u64::from(n));
        match self {
            ClockStep::Same => t,
            ClockStep::Nanos(n) => t + Duration::from_nanos(u64::from(n)),
            ClockStep::Micros(n) => t + Duration::from_micros(u64::from(n)),
            ClockStep::Millis(n) => t + ms(n),
            ClockStep::Secs(n) => t + Duration::from_secs(u64::from(n)),
            ClockStep::Forward(d) => t + d.0,
            ClockStep::BackMillis(n) => t.saturating_sub(ms(n)),
            ClockStep::Back(d) => t.saturating_sub(d.0),
            ClockStep::To(nanos) => Instant::from_nanos(nanos),
            ClockStep::ToMax => Instant::MAX,
        }
    }
}

/// One call into the machine (or a short driver loop of them).
#[derive(Arbitrary, Clone, Debug)]
pub(crate) enum Op {
    /// `connect`: the first attempt.
    Connect,
    Connected,
    ConnectFailed,
    RetryAfter(Dur),
    PingSent,
    /// The driver flushed our close frame.
    CloseSent,
    Frame,
    /// A pong echoing one of our earlier pings (`n` counts back from the latest,
    /// across connections).
    PongEcho(u8),
    /// A pong with any payload.
    Pong(Vec<u8>),
    /// A pong carrying an 8-byte sequence number of the fuzzer's choice.
    PongSeq(u64),
    Ping(PingBody),
    /// `count` small pings from the peer, `gap_micros` apart: a ping flood.
    PingBurst {
        count: u8,
        gap_micros: u16,
    },
    /// The peer's close frame.
    PeerClose(Option<u16>),
    TransportClosed,
    ProtocolError,
    /// The application's close; an unsendable code is replaced by 1000.
    LocalClose(u16),
    /// `handle_timeout` at the driver's clock.
    Timeout,
    /// `handle_timeout` exactly at `poll_timeout().at` (the clock jumps there).
    TimeoutAtDeadline,
    Elapsed(Dur),
    /// The driver reports how late its own loop runs.
    LocalLag(Dur),
    SetPingInterval(Dur),
    SetPongTimeout(Dur),
    /// A driver loop that sleeps until each deadline and fires it.
    Drive {
        mode: DriveMode,
        firings: u8,
    },
}

/// A ping from the peer.
#[derive(Arbitrary, Clone, Debug)]
pub(crate) enum PingBody {
    Bytes(Vec<u8>),
    /// `126 + n` bytes: longer than any control frame may be.
    Oversized(u8),
    /// An 8-byte payload, shaped like one of our own pings.
    Seq(u64),
}

impl PingBody {
    pub(crate) fn bytes(&self) -> Vec<u8> {
        match self {
            PingBody::Bytes(b) => b.clone(),
            PingBody::Oversized(n) => vec![0xa5; 126 + usize::from(*n)],
            PingBody::Seq(s) => s.to_be_bytes().to_vec(),
        }
    }
}

/// How the peer and the driver behave during a [`Op::Drive`] loop.
///
/// The driver carries out every action: a `Connect` hangs when the peer is
/// silent (the connect timer ends it) and succeeds at once when it is
/// responsive; a `SendClose` is flushed at once when `report_sent`.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub(crate) enum DriveMode {
    /// The peer says nothing; timers fire on time.
    Silent { report_sent: bool },
    /// The peer says nothing; every timer fires `late` after its deadline.
    Late { late: Dur, report_sent: bool },
    /// The driver reports each ping sent `write_delay` after it was emitted (a ping
    /// stuck behind a large write) and the peer answers it within the pong timeout
    /// (`rtt`, capped just below the timeout in force).
    Responsive { write_delay: Dur, rtt: Dur },
}
