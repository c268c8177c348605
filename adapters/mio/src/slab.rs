//! [`ConnId`] and the slab of connections it indexes.

use std::fmt;

use crate::conn::Conn;

/// Identifies a connection for as long as it lives (a client keeps its id across
/// reconnects). Ids are never confused with a later connection in the same slot.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ConnId {
    slot: u32,
    gen: u32,
}

impl ConnId {
    /// The slot index (also the connection's mio token).
    pub(crate) fn slot(self) -> u32 {
        self.slot
    }

    /// The slot's generation when this connection was inserted.
    pub(crate) fn gen(self) -> u32 {
        self.gen
    }

    /// The id of slot `slot` in generation `gen`.
    pub(crate) fn new(slot: u32, gen: u32) -> ConnId {
        ConnId { slot, gen }
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.slot, self.gen)
    }
}

/// Connections by slot, each slot with a generation so a removed connection's id
/// never reaches its successor. Free slots are reused.
#[derive(Default)]
pub(crate) struct Slab {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

#[derive(Default)]
struct Slot {
    gen: u32,
    /// `None` while free, or while the connection is taken out to be worked on.
    conn: Option<Box<Conn>>,
}

impl Slab {
    /// Stores `conn` in a free slot.
    pub(crate) fn insert(&mut self, conn: Conn) -> ConnId {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot::default());
                // Bounded by RLIMIT_NOFILE in practice; u32 is plenty.
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.conn = Some(Box::new(conn));
        ConnId { slot, gen: s.gen }
    }

    /// The connection `id`, if it is still there.
    pub(crate) fn get(&self, id: ConnId) -> Option<&Conn> {
        let slot = self.slots.get(id.slot as usize)?;
        (slot.gen == id.gen).then_some(slot.conn.as_deref()?)
    }

    /// The current id of slot `slot` (for a readiness event's token).
    pub(crate) fn id_at(&self, slot: usize) -> Option<ConnId> {
        let s = self.slots.get(slot)?;
        Some(ConnId {
            slot: slot as u32,
            gen: s.gen,
        })
    }

    /// Takes the connection `id` out of its slot, to be put back with
    /// [`put`](Self::put) or let go with [`release`](Self::release).
    pub(crate) fn take(&mut self, id: ConnId) -> Option<Box<Conn>> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if slot.gen != id.gen {
            return None;
        }
        slot.conn.take()
    }

    /// Puts back a connection taken with [`take`](Self::take).
    pub(crate) fn put(&mut self, id: ConnId, conn: Box<Conn>) {
        if let Some(slot) = self.slots.get_mut(id.slot as usize) {
            slot.conn = Some(conn);
        }
    }

    /// Frees the slot of a connection taken with [`take`](Self::take): `id` and
    /// every copy of it stop matching.
    pub(crate) fn release(&mut self, id: ConnId) {
        if let Some(slot) = self.slots.get_mut(id.slot as usize) {
            slot.gen = slot.gen.wrapping_add(1);
            self.free.push(id.slot);
        }
    }

    /// Connections held.
    pub(crate) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Every connection with its id (one pass over the slots).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let conn = s.conn.as_deref()?;
            Some((
                ConnId {
                    slot: i as u32,
                    gen: s.gen,
                },
                conn,
            ))
        })
    }
}
