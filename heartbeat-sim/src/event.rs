//! The simulation's event queue: what happens next, in time order, with a fixed
//! order among events at the same instant.

use heartbeat_core::{Instant, Payload};

use crate::record::Frame;

/// One scheduled event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event {
    pub(crate) at: Instant,
    /// Lower runs first at equal times: input to us before our reports before
    /// everything else (the machine's own timer runs after all of them).
    rank: u8,
    /// Scheduling order, the last tie-breaker.
    order: u64,
    pub(crate) kind: EventKind,
}

/// What an event does. `conn` names the transport it belongs to: an event of a
/// transport that was dropped is void.
#[derive(Clone, Copy, Debug)]
pub(crate) enum EventKind {
    /// A frame reaches us.
    ToUs {
        conn: u32,
        frame: Frame,
    },
    /// Our write of a ping completed.
    PingSent {
        conn: u32,
        payload: Payload,
    },
    /// Our close frame was flushed.
    CloseSent {
        conn: u32,
        code: u16,
    },
    /// A frame reaches the peer.
    ToPeer {
        conn: u32,
        frame: Frame,
    },
    /// The connection attempt ends: connected, or refused (with a `Retry-After`).
    ConnectResult {
        conn: u32,
        refused: Option<Option<core::time::Duration>>,
    },
    /// A scripted fault acts on the peer's side.
    PeerClose {
        code: u16,
    },
    PeerReset,
    /// The peer's periodic traffic.
    PeerData {
        conn: u32,
    },
    PeerPing {
        conn: u32,
    },
}

impl EventKind {
    /// Tie-break rank among events at the same instant.
    fn rank(&self) -> u8 {
        match self {
            EventKind::ToUs { .. } => 1,
            EventKind::PingSent { .. } | EventKind::CloseSent { .. } => 2,
            EventKind::ToPeer { .. } => 3,
            EventKind::ConnectResult { .. } => 4,
            EventKind::PeerClose { .. } | EventKind::PeerReset => 5,
            EventKind::PeerData { .. } => 6,
            EventKind::PeerPing { .. } => 7,
        }
    }

    /// Whether the event runs on our side, so a local stall delays it.
    pub(crate) fn ours(&self) -> bool {
        matches!(
            self,
            EventKind::ToUs { .. }
                | EventKind::PingSent { .. }
                | EventKind::CloseSent { .. }
                | EventKind::ConnectResult { .. }
        )
    }
}

/// The pending events.
#[derive(Clone, Debug, Default)]
pub(crate) struct Queue {
    events: Vec<Event>,
    order: u64,
}

impl Queue {
    pub(crate) fn schedule(&mut self, at: Instant, kind: EventKind) {
        self.order += 1;
        self.events.push(Event {
            at,
            rank: kind.rank(),
            order: self.order,
            kind,
        });
    }

    /// The next event, given when each one really runs (`effective_at`).
    pub(crate) fn peek(&self, effective_at: impl Fn(&Event) -> Instant) -> Option<(usize, Event)> {
        self.events
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|(_, e)| (effective_at(e), e.rank, e.order))
    }

    pub(crate) fn remove(&mut self, index: usize) -> Event {
        self.events.swap_remove(index)
    }
}
