//! [`Handler`]: what the application hears from the driver.

use heartbeat_core::DeathReason;
use tungstenite::Message;

use crate::ctx::Ctx;
use crate::slab::ConnId;

/// What the application hears from the driver. Every method has an empty default.
///
/// Callbacks run on the driver's thread between I/O batches; use the [`Ctx`] to
/// send, broadcast, close or connect from inside them. They must not block.
pub trait Handler {
    /// The WebSocket handshake of `id` completed (again, after a client reconnect).
    fn on_open(&mut self, ctx: &mut Ctx<'_>, id: ConnId) {
        let _ = (ctx, id);
    }

    /// An application message (text or binary) arrived on `id`.
    fn on_message(&mut self, ctx: &mut Ctx<'_>, id: ConnId, msg: Message) {
        let _ = (ctx, id, msg);
    }

    /// The open connection `id` is over, told at the machine's verdict (its
    /// [`Action::Dead`](heartbeat_core::Action::Dead)), before any close handshake
    /// runs. Once per connection that opened; a client may reconnect afterwards and
    /// open again. A connection attempt that never opened has no death.
    fn on_dead(&mut self, ctx: &mut Ctx<'_>, id: ConnId, reason: DeathReason) {
        let _ = (ctx, id, reason);
    }

    /// `id` is gone: the machine let go of its last socket and will not connect
    /// again ([`State::Finished`](heartbeat_core::State::Finished)), so the driver
    /// removed it. `reason` is the one that state carries: the last connection's
    /// death, or [`DeathReason::ConnectFailed`] when the last attempt never opened.
    fn on_closed(&mut self, ctx: &mut Ctx<'_>, id: ConnId, reason: DeathReason) {
        let _ = (ctx, id, reason);
    }
}

/// A callback waiting to be delivered (callbacks run after I/O, never inside it).
pub(crate) enum Event {
    Open(ConnId),
    Message(ConnId, Message),
    Dead(ConnId, DeathReason),
    Closed(ConnId, DeathReason),
}
