//! The node-health table: a fixed-capacity array of node slots that the
//! control plane writes and the dataplane workers read without locks.
//!
//! Each slot is a small seqlock made only of atomics (no `unsafe`): the writer
//! makes the slot's sequence number odd, stores the fields, then makes it even
//! again; a reader retries until it saw the same even sequence number before
//! and after reading the fields, so it never sees a torn slot (say, the MAC of
//! one node with the state of another).
//!
//! Writers are serialised by a mutex, which the workers never touch. A slot's
//! **generation** grows every time the slot is given to a different node and
//! every time its node goes down or the slot is freed; a flow remembers the
//! generation it was steered under, so a flow never follows a slot that
//! changed hands or a node that failed and came back.
//!
//! Slots are freed when the heartbeat protocol forgets a node
//! ([`Table::clear`]); a full table gives the slot of the node that has been
//! `Failed` longest to a new one ([`Table::upsert_evicting`]), never an `Up`
//! or `Draining` node's slot.

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering, fence};

use thiserror::Error;

/// The default (and maximum) number of node slots.
pub const CAPACITY: usize = 256;

/// Errors from writing the health table.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The slot index is outside the table.
    #[error("health slot {slot} is outside the table (capacity {capacity})")]
    BadSlot {
        /// The slot asked for.
        slot: usize,
        /// The table's capacity.
        capacity: usize,
    },
    /// Every slot is taken.
    #[error("health table is full ({capacity} nodes)")]
    Full {
        /// The table's capacity.
        capacity: usize,
    },
    /// The requested capacity is zero or above [`CAPACITY`].
    #[error("health table capacity {0} must be 1..={CAPACITY}")]
    BadCapacity(usize),
}

/// The state of a node slot, as far as the dataplane cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[repr(u8)]
pub enum State {
    /// No node in this slot.
    Empty = 0,
    /// Healthy: takes new flows (if its weight is above zero) and keeps its own.
    Up = 1,
    /// Takes no new flows but keeps the ones it has.
    Draining = 2,
    /// Dead: its flows move elsewhere.
    Failed = 3,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Up,
            2 => State::Draining,
            3 => State::Failed,
            _ => State::Empty,
        }
    }

    /// Whether flows already pinned to a node in this state keep going there.
    pub fn keeps_flows(self) -> bool {
        matches!(self, State::Up | State::Draining)
    }
}

/// What the control plane writes for a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct NodeInfo {
    /// The node's stable identity (the Maglev hash input).
    pub id: u64,
    /// The node's MAC address, the redirect destination.
    pub mac: [u8; 6],
    /// The node's IPv4 address (management/physical).
    pub ip: Ipv4Addr,
    /// Its state.
    pub state: State,
    /// Its Maglev weight (0 takes no new flows).
    pub weight: u32,
    /// Its active connection count, as last reported.
    pub connections: u32,
}

/// A consistent copy of one slot: the [`NodeInfo`] last written and the
/// slot generation. It dereferences to the info (`node.state`, `node.mac`)
/// and serializes as one flat object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Node {
    /// What the control plane wrote.
    #[serde(flatten)]
    pub info: NodeInfo,
    /// The slot generation, see the module documentation.
    pub generation: u64,
}

impl std::ops::Deref for Node {
    type Target = NodeInfo;

    fn deref(&self) -> &NodeInfo {
        &self.info
    }
}

/// Packs a MAC address into the low 48 bits of a `u64` (big-endian order).
#[inline]
pub fn mac_to_u64(mac: [u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]])
}

/// Unpacks a MAC address packed by [`mac_to_u64`].
#[inline]
pub fn u64_to_mac(v: u64) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

#[derive(Default)]
struct Slot {
    seq: AtomicU64,
    id: AtomicU64,
    mac: AtomicU64,
    ip: AtomicU32,
    state: AtomicU8,
    weight: AtomicU32,
    connections: AtomicU32,
    generation: AtomicU64,
    /// The table's write count when this slot's state last changed (for
    /// "failed longest"); written and read under the writer lock only.
    state_tick: AtomicU64,
}

/// The node-health table. Share it as `Arc<health::Table>`.
pub struct Table {
    slots: Box<[Slot]>,
    writer: Mutex<()>,
    /// Writes so far (under the writer lock): the clock of `state_tick`.
    ticks: AtomicU64,
    /// Writes completed, bumped after each (see [`Table::version`]).
    version: AtomicU64,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("health::Table")
            .field("capacity", &self.slots.len())
            .finish()
    }
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

impl Table {
    /// A table of [`CAPACITY`] empty slots.
    pub fn new() -> Table {
        Table::with_capacity(CAPACITY).expect("CAPACITY is valid")
    }

    /// A table with `capacity` (1..=[`CAPACITY`]) empty slots.
    pub fn with_capacity(capacity: usize) -> Result<Table, Error> {
        if capacity == 0 || capacity > CAPACITY {
            return Err(Error::BadCapacity(capacity));
        }
        Ok(Table {
            slots: (0..capacity).map(|_| Slot::default()).collect(),
            writer: Mutex::new(()),
            ticks: AtomicU64::new(0),
            version: AtomicU64::new(0),
        })
    }

    /// The number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The number of writes completed so far. A mirror of the table (the XDP
    /// fast path's node array) reads this first and copies the slots after:
    /// if it then sees the same version again, it missed no write.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Reads slot `slot` consistently. `None` if the slot is outside the table.
    /// Lock-free: retries only while the control plane is writing that slot.
    #[inline]
    pub fn get(&self, slot: usize) -> Option<Node> {
        self.read(slot, |s| Node {
            info: NodeInfo {
                id: s.id.load(Ordering::Relaxed),
                mac: u64_to_mac(s.mac.load(Ordering::Relaxed)),
                ip: Ipv4Addr::from(s.ip.load(Ordering::Relaxed)),
                state: State::from_u8(s.state.load(Ordering::Relaxed)),
                weight: s.weight.load(Ordering::Relaxed),
                connections: s.connections.load(Ordering::Relaxed),
            },
            generation: s.generation.load(Ordering::Relaxed),
        })
    }

    /// The hot-path read: the MAC of slot `slot` (packed, see [`mac_to_u64`])
    /// if its node keeps flows (up or draining) and the low 16 bits of its
    /// generation are still `generation` (flow tables keep only those).
    /// Reads only the three fields it needs.
    #[inline]
    pub fn usable_mac(&self, slot: usize, generation: u16) -> Option<u64> {
        let (mac, state, gen_now) = self.read(slot, |s| {
            (
                s.mac.load(Ordering::Relaxed),
                State::from_u8(s.state.load(Ordering::Relaxed)),
                s.generation.load(Ordering::Relaxed),
            )
        })?;
        (state.keeps_flows() && gen_now as u16 == generation).then_some(mac)
    }

    /// Runs `f` on slot `slot` as a reader, inside the seqlock, until it
    /// reads a consistent copy. `None` if the slot is outside the table.
    #[inline]
    fn read<R>(&self, slot: usize, f: impl Fn(&Slot) -> R) -> Option<R> {
        let s = self.slots.get(slot)?;
        loop {
            let before = s.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let copy = f(s);
            fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) == before {
                return Some(copy);
            }
        }
    }

    /// Runs `f` on slot `slot` as the only writer, inside the seqlock.
    fn write(&self, slot: usize, f: impl FnOnce(&Slot)) -> Result<(), Error> {
        let capacity = self.slots.len();
        let s = self
            .slots
            .get(slot)
            .ok_or(Error::BadSlot { slot, capacity })?;
        let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let tick = self.ticks.fetch_add(1, Ordering::Relaxed) + 1;
        let seq = s.seq.load(Ordering::Relaxed);
        let old_state = s.state.load(Ordering::Relaxed);
        s.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        f(s);
        s.seq.store(seq.wrapping_add(2), Ordering::Release);
        self.version.fetch_add(1, Ordering::Release);
        if s.state.load(Ordering::Relaxed) != old_state {
            s.state_tick.store(tick, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Writes `info` into slot `slot`. The generation grows when the slot gets
    /// a different node id, or when the node leaves the flow-keeping states
    /// (up, draining).
    pub fn set(&self, slot: usize, info: NodeInfo) -> Result<(), Error> {
        self.write(slot, |s| {
            let old_id = s.id.load(Ordering::Relaxed);
            let old_state = State::from_u8(s.state.load(Ordering::Relaxed));
            let changed_hands = old_state == State::Empty || old_id != info.id;
            let went_down = old_state.keeps_flows() && !info.state.keeps_flows();
            if changed_hands || went_down {
                s.generation.fetch_add(1, Ordering::Relaxed);
            }
            s.id.store(info.id, Ordering::Relaxed);
            s.mac.store(mac_to_u64(info.mac), Ordering::Relaxed);
            s.ip.store(u32::from(info.ip), Ordering::Relaxed);
            s.state.store(info.state as u8, Ordering::Relaxed);
            s.weight.store(info.weight, Ordering::Relaxed);
            s.connections.store(info.connections, Ordering::Relaxed);
        })
    }

    /// Changes only the state of slot `slot` (same generation rule as [`Table::set`]).
    pub fn set_state(&self, slot: usize, state: State) -> Result<(), Error> {
        self.write(slot, |s| {
            let old = State::from_u8(s.state.load(Ordering::Relaxed));
            if old.keeps_flows() && !state.keeps_flows() {
                s.generation.fetch_add(1, Ordering::Relaxed);
            }
            s.state.store(state as u8, Ordering::Relaxed);
        })
    }

    /// Empties slot `slot` (a forgotten node): its flows move, and the
    /// generation grows in any case, so that no flow steered under the old
    /// node follows the slot to whichever node gets it next.
    pub fn clear(&self, slot: usize) -> Result<(), Error> {
        self.write(slot, |s| {
            s.generation.fetch_add(1, Ordering::Relaxed);
            s.state.store(State::Empty as u8, Ordering::Relaxed);
        })
    }

    /// As [`Table::upsert`], but a full table gives `info` the slot of the
    /// node that has been `Failed` longest (never an `Up` or `Draining`
    /// one). Returns the slot and the id of the node it replaced, if any.
    pub fn upsert_evicting(&self, info: NodeInfo) -> Result<(usize, Option<u64>), Error> {
        match self.upsert(info) {
            Ok(slot) => Ok((slot, None)),
            Err(Error::Full { capacity }) => {
                let victim = {
                    let _guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
                    (0..self.slots.len())
                        .filter(|&i| {
                            State::from_u8(self.slots[i].state.load(Ordering::Relaxed))
                                == State::Failed
                        })
                        .min_by_key(|&i| self.slots[i].state_tick.load(Ordering::Relaxed))
                };
                let slot = victim.ok_or(Error::Full { capacity })?;
                let old = self.get(slot).map(|n| n.id);
                self.set(slot, info)?;
                Ok((slot, old))
            }
            Err(e) => Err(e),
        }
    }

    /// Puts `info` in the slot already holding `info.id`, or else in the first
    /// empty slot, and returns the slot index.
    pub fn upsert(&self, info: NodeInfo) -> Result<usize, Error> {
        let mut free = None;
        for i in 0..self.slots.len() {
            if let Some(n) = self.get(i) {
                if n.state != State::Empty && n.id == info.id {
                    self.set(i, info)?;
                    return Ok(i);
                }
                if n.state == State::Empty && free.is_none() {
                    free = Some(i);
                }
            }
        }
        let slot = free.ok_or(Error::Full {
            capacity: self.slots.len(),
        })?;
        self.set(slot, info)?;
        Ok(slot)
    }

    /// The slot holding node `id`, if any.
    pub fn find(&self, id: u64) -> Option<usize> {
        (0..self.slots.len()).find(|&i| {
            self.get(i)
                .is_some_and(|n| n.state != State::Empty && n.id == id)
        })
    }

    /// Consistent copies of every non-empty slot, with their indices.
    pub fn nodes(&self) -> Vec<(usize, Node)> {
        (0..self.slots.len())
            .filter_map(|i| self.get(i).map(|n| (i, n)))
            .filter(|(_, n)| n.state != State::Empty)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    fn info(id: u64, state: State) -> NodeInfo {
        NodeInfo {
            id,
            mac: [2, 0, 0, 0, 0, id as u8],
            ip: Ipv4Addr::new(198, 18, 0, id as u8),
            state,
            weight: 100,
            connections: 0,
        }
    }

    #[test]
    fn mac_packing_round_trips() {
        let mac = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x33];
        assert_eq!(u64_to_mac(mac_to_u64(mac)), mac);
        assert_eq!(mac_to_u64(mac), 0x0000_5e00_0133);
    }

    #[test]
    fn a_node_serializes_as_one_flat_object() {
        let t = Table::new();
        t.set(0, info(7, State::Up)).unwrap();
        let v = serde_json::to_value(t.get(0).unwrap()).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let want = [
            "connections",
            "generation",
            "id",
            "ip",
            "mac",
            "state",
            "weight",
        ];
        assert_eq!(keys, want);
        assert_eq!(v["id"], 7);
    }

    #[test]
    fn set_get_and_generation_rules() {
        let t = Table::new();
        assert_eq!(t.get(0).unwrap().state, State::Empty);
        assert_eq!(t.get(CAPACITY), None);
        assert_eq!(t.version(), 0);
        t.set(3, info(7, State::Up)).unwrap();
        assert_eq!(t.version(), 1, "every completed write bumps the version");
        let n = t.get(3).unwrap();
        assert_eq!(n.id, 7);
        assert_eq!(n.mac, [2, 0, 0, 0, 0, 7]);
        let g = n.generation;
        assert_eq!(t.usable_mac(3, g as u16), Some(mac_to_u64(n.mac)));
        // Same node, new weight: same generation.
        t.set(
            3,
            NodeInfo {
                weight: 5,
                ..info(7, State::Up)
            },
        )
        .unwrap();
        assert_eq!(t.get(3).unwrap().generation, g);
        // Draining keeps flows and the generation.
        t.set_state(3, State::Draining).unwrap();
        assert_eq!(t.usable_mac(3, g as u16), Some(mac_to_u64(n.mac)));
        // Failing bumps it, and the flow's old generation is no longer usable.
        t.set_state(3, State::Failed).unwrap();
        assert_eq!(t.usable_mac(3, g as u16), None);
        let g2 = t.get(3).unwrap().generation;
        assert!(g2 > g);
        t.set_state(3, State::Up).unwrap();
        assert_eq!(t.usable_mac(3, g as u16), None);
        assert!(t.usable_mac(3, g2 as u16).is_some());
        // Another node in the slot bumps it.
        t.set(3, info(8, State::Up)).unwrap();
        assert!(t.usable_mac(3, g2 as u16).is_none());
        assert!(matches!(
            t.set(CAPACITY, info(1, State::Up)),
            Err(Error::BadSlot { .. })
        ));
    }

    #[test]
    fn upsert_find_and_full() {
        let t = Table::with_capacity(2).unwrap();
        assert_eq!(t.upsert(info(10, State::Up)).unwrap(), 0);
        assert_eq!(t.upsert(info(11, State::Up)).unwrap(), 1);
        assert_eq!(t.upsert(info(10, State::Draining)).unwrap(), 0);
        assert_eq!(t.find(11), Some(1));
        assert_eq!(
            t.upsert(info(12, State::Up)),
            Err(Error::Full { capacity: 2 })
        );
        t.clear(1).unwrap();
        assert_eq!(t.find(11), None);
        assert_eq!(t.upsert(info(12, State::Up)).unwrap(), 1);
        assert_eq!(t.nodes().len(), 2);
        assert!(Table::with_capacity(0).is_err());
        assert!(Table::with_capacity(CAPACITY + 1).is_err());
    }

    #[test]
    fn clearing_a_slot_bumps_its_generation() {
        let t = Table::with_capacity(1).unwrap();
        t.set(0, info(1, State::Up)).unwrap();
        t.set_state(0, State::Failed).unwrap();
        let g = t.get(0).unwrap().generation;
        t.clear(0).unwrap();
        let g2 = t.get(0).unwrap().generation;
        assert!(g2 > g, "freeing must bump the generation");
        assert_eq!(t.find(1), None);
        // The slot's next node gets a generation no old flow carries.
        t.upsert(info(2, State::Up)).unwrap();
        let n = t.get(0).unwrap();
        assert!(n.generation > g2);
        assert_eq!(t.usable_mac(0, g as u16), None);
    }

    #[test]
    fn a_full_table_evicts_the_longest_failed_never_a_live_node() {
        let t = Table::with_capacity(3).unwrap();
        t.upsert(info(1, State::Up)).unwrap();
        t.upsert(info(2, State::Up)).unwrap();
        t.upsert(info(3, State::Draining)).unwrap();
        // Only live nodes: nothing to evict.
        assert_eq!(
            t.upsert_evicting(info(4, State::Up)),
            Err(Error::Full { capacity: 3 })
        );
        t.set_state(1, State::Failed).unwrap(); // node 2 fails first
        t.set_state(0, State::Failed).unwrap(); // then node 1
        let g = t.get(1).unwrap().generation;
        assert_eq!(t.upsert_evicting(info(4, State::Up)), Ok((1, Some(2))));
        assert!(t.get(1).unwrap().generation > g);
        assert_eq!(t.upsert_evicting(info(5, State::Up)), Ok((0, Some(1))));
        assert_eq!(
            t.upsert_evicting(info(6, State::Up)),
            Err(Error::Full { capacity: 3 })
        );
        assert_eq!(t.find(3), Some(2));
        // An existing node is updated in place, not evicting anything.
        assert_eq!(t.upsert_evicting(info(4, State::Draining)), Ok((1, None)));
    }

    proptest::proptest! {
        /// Whatever the control plane does, a slot's generation never goes
        /// back, a live (up or draining) node is never evicted, and freeing
        /// a slot always bumps its generation.
        #[test]
        fn eviction_never_takes_a_live_node(
            ops in proptest::collection::vec((0u8..4, 0u64..12), 1..200),
        ) {
            let t = Table::with_capacity(4).unwrap();
            let mut gens = [0u64; 4];
            for (op, id) in ops {
                let live_before: Vec<u64> = t
                    .nodes()
                    .iter()
                    .filter(|(_, n)| n.state.keeps_flows())
                    .map(|(_, n)| n.id)
                    .collect();
                match op {
                    0 => {
                        if let Ok((_, Some(old))) = t.upsert_evicting(info(id, State::Up)) {
                            proptest::prop_assert!(!live_before.contains(&old), "evicted live {old}");
                        }
                    }
                    1 => if let Some(slot) = t.find(id) { t.set_state(slot, State::Failed).unwrap() },
                    2 => if let Some(slot) = t.find(id) { t.set_state(slot, State::Draining).unwrap() },
                    _ => {
                        if let Some(slot) = t.find(id) {
                            let g = t.get(slot).unwrap().generation;
                            t.clear(slot).unwrap();
                            proptest::prop_assert!(t.get(slot).unwrap().generation > g);
                        }
                    }
                }
                for (i, g) in gens.iter_mut().enumerate() {
                    let now = t.get(i).unwrap().generation;
                    proptest::prop_assert!(now >= *g);
                    *g = now;
                }
                for id in live_before {
                    if op == 3 { continue; }
                    proptest::prop_assert!(t.find(id).is_some(), "live node {id} lost");
                }
            }
        }
    }

    /// A writer flips a slot between two self-consistent nodes; readers must
    /// only ever see one of the two, never a mix.
    #[test]
    fn readers_never_see_torn_slots() {
        let t = Arc::new(Table::with_capacity(1).unwrap());
        let a = info(1, State::Up);
        let b = NodeInfo {
            connections: 99,
            weight: 7,
            ..info(2, State::Draining)
        };
        t.set(0, a).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let reader = {
            let (t, stop, reads) = (t.clone(), stop.clone(), reads.clone());
            std::thread::spawn(move || {
                let mut seen = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    reads.fetch_add(1, Ordering::Relaxed);
                    let n = t.get(0).unwrap();
                    let is_a = n.id == 1
                        && n.mac == a.mac
                        && n.ip == a.ip
                        && n.state == State::Up
                        && n.weight == 100;
                    let is_b = n.id == 2
                        && n.mac == b.mac
                        && n.ip == b.ip
                        && n.state == State::Draining
                        && n.weight == 7
                        && n.connections == 99;
                    assert!(is_a || is_b, "torn read: {n:?}");
                    seen += 1;
                }
                seen
            })
        };
        let mut i = 0u64;
        while i < 20_000 || reads.load(Ordering::Relaxed) < 100_000 {
            t.set(0, if i.is_multiple_of(2) { b } else { a }).unwrap();
            i += 1;
        }
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    }
}
