//! The per-worker flow table: 5-tuple → node slot, so that a connection stays
//! on the node that took its first packet while that node lives.
//!
//! * **Layout.** A fixed array of 8-way buckets of 16-byte entries (128
//!   bytes, 128-byte aligned), allocated once: memory never grows. The table
//!   holds `capacity` flows at a load factor of 0.8, so it has
//!   `1.25 × capacity` entries in total (20 MiB for the default 1M flows).
//! * **Two hashes, on purpose.** [`Key::hash`] is the *flow hash*: a fixed
//!   function with a fixed public seed ([`SEED`]), the input of Maglev, so
//!   that every director picks the same node for the same flow and a
//!   failover keeps flows in place. It must never become per-process. The
//!   *bucket* a flow lives in is chosen by a second, keyed mix of the flow
//!   hash with a seed drawn at random when the table is built
//!   ([`Table::new`]; [`Table::with_seed`] for tests): an attacker who knows
//!   the public flow hash still cannot aim tuples at one bucket.
//! * **Steering** ([`Table::steer`]). A TCP SYN or an unknown tuple (a new UDP
//!   flow, or a TCP flow this director has not seen, e.g. after a takeover)
//!   takes Maglev's choice. Later packets follow the table while the node
//!   keeps flows (up or draining) under the same health generation; if the
//!   node died, the flow is re-picked through Maglev. A FIN or RST shortens
//!   the flow's idle timeout.
//! * **Admission.** A flow first seen by its SYN starts *unconfirmed*; a
//!   later non-SYN packet of the same tuple confirms it (*established*). A
//!   flow first seen mid-stream (a director takeover, an entry lost earlier,
//!   or a spoofed ACK) starts *on probation*: it may take only an empty or an
//!   idle entry, never evicts anything, has the short unconfirmed timeout,
//!   and any SYN may evict it; its next non-SYN packet makes it established.
//!   A SYN may replace an empty entry, an idle one, or the least recently
//!   seen unconfirmed, probation or closing one. When a bucket holds only
//!   live established flows, the new flow is not tracked at all
//!   ([`Outcome::Untracked`]): it is still forwarded on Maglev's choice,
//!   which is what it would have got anyway, and no established flow is
//!   evicted. So a flood of one-packet spoofed non-SYN tuples only fills
//!   entries that real SYNs take back at once and that idle out after
//!   `unconfirmed_ms`; it cannot evict an established flow nor keep a real
//!   new flow from being tracked. (Probation entries never evict each
//!   other, so an over-full bucket of mid-stream flows does not thrash.)
//!
//! Time is a caller-supplied millisecond counter (`u32`, wrapping), read once
//! per batch.

use bytemuck::{Pod, Zeroable};

use super::mix64;

/// Ways per bucket.
pub const WAYS: usize = 8;

/// The default capacity (flows per worker).
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// The seed of the flow hash, shared by every director (the Maglev input).
/// Public and fixed on purpose: see the module documentation. The flow
/// *table* uses its own random seed for bucket placement.
pub const SEED: u64 = 0x7068_612d_666c_6f77; // "pha-flow"

/// A flow's 5-tuple (IPv4; addresses and ports in host order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Key {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol (6 TCP, 17 UDP).
    pub proto: u8,
}

impl Key {
    #[inline]
    fn packed(&self) -> (u64, u64) {
        (
            (u64::from(self.src) << 32) | u64::from(self.dst),
            (u64::from(self.sport) << 48) | (u64::from(self.dport) << 32) | u64::from(self.proto),
        )
    }

    /// The flow hash: fixed function, fixed seed, so every director computes
    /// the same value (and so the same Maglev entry) for a flow. Never make
    /// this per-process: failover would move every flow.
    #[inline]
    pub fn hash(&self) -> u64 {
        let (a, b) = self.packed();
        mix64(mix64(a ^ SEED) ^ b)
    }
}

/// What a packet means for its flow's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// A TCP SYN without ACK: a connection attempt.
    Open,
    /// Any other packet (TCP with ACK, UDP).
    Data,
    /// A TCP FIN or RST.
    Close,
}

/// Idle timeouts in milliseconds, per flow state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Seen only its first packet(s), not yet confirmed.
    pub unconfirmed_ms: u32,
    /// Confirmed by a later non-SYN packet.
    pub established_ms: u32,
    /// After a FIN or RST.
    pub closing_ms: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            unconfirmed_ms: 10_000,
            established_ms: 300_000,
            closing_ms: 10_000,
        }
    }
}

/// A node chosen for a flow: its health slot, the slot generation it was
/// chosen under (low 16 bits), and its MAC (packed, see `health::mac_to_u64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Health-table slot.
    pub slot: u16,
    /// Low 16 bits of the health generation at the time of choice.
    pub generation: u16,
    /// The node's MAC, packed.
    pub mac: u64,
}

/// The node side of steering, implemented by the worker over the health
/// table and Maglev (and by test doubles).
pub trait Backends {
    /// The packed MAC of `slot` if it still keeps flows under `generation`
    /// (low 16 bits of the health generation).
    fn usable(&mut self, slot: u16, generation: u16) -> Option<u64>;
    /// Maglev's choice for a flow hash, if any node is up.
    fn pick(&mut self, hash: u64) -> Option<Target>;
}

/// How a packet was steered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Followed a live table entry.
    Hit,
    /// New (or expired, or reused) flow: took Maglev's choice and was recorded.
    Miss,
    /// Like `Miss`, but recording it evicted an unconfirmed, probation or
    /// closing flow.
    MissEvicted,
    /// A non-SYN packet of an unknown flow: took Maglev's choice and was
    /// recorded on probation (an empty or idle entry; evicted first).
    Probation,
    /// The flow's node died; re-picked through Maglev.
    Moved,
    /// Took Maglev's choice but was not recorded: its bucket holds only live
    /// established flows (the SYN-flood guard), or it was a FIN/RST of an
    /// unknown flow.
    Untracked,
    /// No node is up.
    NoBackend,
}

/// The result of [`Table::steer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steer {
    /// Where the packet goes (`None` only with [`Outcome::NoBackend`]).
    pub target: Option<Target>,
    /// How it was decided.
    pub outcome: Outcome,
}

impl Steer {
    /// To `target`, decided as `outcome`.
    #[inline]
    fn to(target: Target, outcome: Outcome) -> Steer {
        Steer {
            target: Some(target),
            outcome,
        }
    }

    /// To `target` without a flow entry ([`Outcome::Untracked`]), or
    /// [`Outcome::NoBackend`] when there is none.
    #[inline]
    fn untracked(target: Option<Target>) -> Steer {
        let outcome = if target.is_some() {
            Outcome::Untracked
        } else {
            Outcome::NoBackend
        };
        Steer { target, outcome }
    }
}

const EMPTY: u8 = 0;
const UNCONFIRMED: u8 = 1;
const ESTABLISHED: u8 = 2;
const CLOSING: u8 = 3;
const PROBATION: u8 = 4;

/// One flow in 16 bytes. The flow is identified by its 64-bit [`Key::hash`]
/// (a fixed bijective mix of the 5-tuple's two halves): two live flows in one
/// bucket would have to agree on all 64 bits to be confused.
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
#[repr(C)]
struct Entry {
    hash: u64,
    last_seen: u32,
    generation: u16,
    slot: u8,
    state: u8,
}

/// `WAYS` entries in one 128-byte-aligned pair of cache lines (the pair the
/// L2 spatial prefetcher fetches together).
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
#[repr(C, align(128))]
struct Bucket([Entry; WAYS]);

/// Where the buckets live: an anonymous mapping advised to use transparent
/// huge pages (a 1M-flow table spans 20 MiB; with 4 KiB pages nearly every
/// lookup would also miss the TLB), or the heap if mapping fails.
#[derive(Debug)]
enum Storage {
    Mapped(memmap2::MmapMut, usize),
    Heap(Box<[Bucket]>),
}

impl Storage {
    fn new(n: usize) -> Storage {
        let bytes = n * std::mem::size_of::<Bucket>();
        match memmap2::MmapMut::map_anon(bytes) {
            Ok(m) => {
                // Advice only: without huge pages the table still works.
                let _ = m.advise(memmap2::Advice::HugePage);
                Storage::Mapped(m, n)
            }
            Err(_) => Storage::Heap(vec![Bucket::default(); n].into_boxed_slice()),
        }
    }

    #[inline]
    fn get(&self) -> &[Bucket] {
        match self {
            // Page-aligned, zero-filled, a whole number of buckets.
            Storage::Mapped(m, n) => bytemuck::cast_slice(&m[..n * std::mem::size_of::<Bucket>()]),
            Storage::Heap(b) => b,
        }
    }

    #[inline]
    fn get_mut(&mut self) -> &mut [Bucket] {
        match self {
            Storage::Mapped(m, n) => {
                bytemuck::cast_slice_mut(&mut m[..*n * std::mem::size_of::<Bucket>()])
            }
            Storage::Heap(b) => b,
        }
    }
}

/// A bounded flow table, owned by one worker.
#[derive(Debug)]
pub struct Table {
    storage: Storage,
    nbuckets: usize,
    /// The bucket-placement seed: random per table (see the module docs).
    seed: u64,
    timeouts: Timeouts,
    len: usize,
}

impl Table {
    /// A table for `capacity` flows (at least one bucket), with `timeouts`
    /// and a random bucket-placement seed.
    pub fn new(capacity: usize, timeouts: Timeouts) -> Table {
        Table::with_seed(capacity, timeouts, random_seed())
    }

    /// Like [`Table::new`] with a chosen bucket-placement seed (tests and
    /// benches that want repeatable placement). Only placement depends on
    /// it; which node a flow goes to never does.
    pub fn with_seed(capacity: usize, timeouts: Timeouts, seed: u64) -> Table {
        let entries = capacity.max(1).saturating_mul(5) / 4;
        let n = entries.div_ceil(WAYS).clamp(1, u32::MAX as usize);
        Table {
            storage: Storage::new(n),
            nbuckets: n,
            seed,
            timeouts,
            len: 0,
        }
    }

    /// The total number of entries (the hard bound on tracked flows).
    pub fn slots(&self) -> usize {
        self.nbuckets * WAYS
    }

    /// Entries in use (including idle ones not yet reclaimed).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is in use.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of entry memory (fixed at construction).
    pub fn memory_bytes(&self) -> usize {
        self.nbuckets * std::mem::size_of::<Bucket>()
    }

    #[inline]
    fn bucket_index(&self, hash: u64) -> usize {
        // One multiply by an odd constant after the secret XOR: the high
        // bits, which pick the bucket, depend on every bit of the seeded
        // hash through the carries, so without the seed an attacker cannot
        // tell which tuples share a bucket. (A full `mix64` here cost the
        // 1M-flow pipeline measurably; see perf/RESULTS.md.)
        let placed = (hash ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (((placed >> 32) * self.nbuckets as u64) >> 32) as usize
    }

    /// Touches the bucket of `hash` (both its cache lines) so that a
    /// following [`Table::steer`] finds it in cache. Call it for a whole
    /// batch first: the misses overlap. Returns a value to feed to
    /// `std::hint::black_box` so the loads are kept.
    #[inline]
    pub fn prefetch(&self, hash: u64) -> u64 {
        let i = self.bucket_index(hash);
        self.storage
            .get()
            .get(i)
            .map_or(0, |b| b.0[0].hash ^ b.0[WAYS / 2].hash)
    }

    #[inline]
    fn timeout(&self, state: u8) -> u32 {
        timeout_of(&self.timeouts, state)
    }

    /// Steers one packet of the flow whose [`Key::hash`] is `hash`, at time
    /// `now` (ms), recording what it learns. See the module documentation.
    #[inline]
    pub fn steer<B: Backends>(
        &mut self,
        hash: u64,
        segment: Segment,
        now: u32,
        backends: &mut B,
    ) -> Steer {
        let bi = self.bucket_index(hash);
        let timeouts = self.timeouts;
        let Some(bucket) = self.storage.get_mut().get_mut(bi) else {
            return Steer::untracked(None);
        };
        let found = bucket
            .0
            .iter()
            .position(|e| e.hash == hash && e.state != EMPTY);
        if let Some(w) = found {
            let e = &mut bucket.0[w];
            let stale = now.wrapping_sub(e.last_seen) > timeout_of(&timeouts, e.state);
            let reused = segment == Segment::Open && e.state != UNCONFIRMED;
            let live = !stale && !reused;
            if live && let Some(mac) = backends.usable(u16::from(e.slot), e.generation) {
                e.last_seen = now;
                e.state = next_state(e.state, segment);
                let target = Target {
                    slot: u16::from(e.slot),
                    generation: e.generation,
                    mac,
                };
                return Steer::to(target, Outcome::Hit);
            }
            // Re-pick, in the same entry: a live flow whose node died keeps
            // its state (Moved); an idle flow, or a new connection on a
            // reused tuple, starts a new flow (Miss).
            return match backends.pick(hash) {
                Some(t) if t.slot <= u16::from(u8::MAX) => {
                    *e = Entry {
                        hash,
                        last_seen: now,
                        generation: t.generation,
                        slot: t.slot as u8,
                        state: if live {
                            next_state(e.state, segment)
                        } else {
                            initial_state(segment)
                        },
                    };
                    Steer::to(t, if live { Outcome::Moved } else { Outcome::Miss })
                }
                other => {
                    e.state = EMPTY;
                    self.len -= 1;
                    Steer::untracked(other)
                }
            };
        }
        let Some(t) = backends.pick(hash) else {
            return Steer::untracked(None);
        };
        if segment == Segment::Close || t.slot > u16::from(u8::MAX) {
            return Steer::untracked(Some(t));
        }
        // Choose an entry: empty, else the oldest idle one, else (a SYN
        // only) the least recently seen unconfirmed/probation/closing one.
        // Never a live established flow.
        let mut empty = None;
        let mut idle: Option<(usize, u32)> = None;
        let mut weak: Option<(usize, u32)> = None;
        for (w, e) in bucket.0.iter().enumerate() {
            if e.state == EMPTY {
                empty = Some(w);
                break;
            }
            let age = now.wrapping_sub(e.last_seen);
            if age > timeout_of(&timeouts, e.state) {
                if idle.is_none_or(|(_, a)| age > a) {
                    idle = Some((w, age));
                }
            } else if e.state != ESTABLISHED && weak.is_none_or(|(_, a)| age > a) {
                weak = Some((w, age));
            }
        }
        let fresh = if segment == Segment::Open {
            Outcome::Miss
        } else {
            Outcome::Probation
        };
        let (w, outcome) = if let Some(w) = empty {
            self.len += 1;
            (w, fresh)
        } else if let Some((w, _)) = idle {
            (w, fresh)
        } else if let (Segment::Open, Some((w, _))) = (segment, weak) {
            (w, Outcome::MissEvicted)
        } else {
            return Steer::untracked(Some(t));
        };
        bucket.0[w] = Entry {
            hash,
            last_seen: now,
            generation: t.generation,
            slot: t.slot as u8,
            state: initial_state(segment),
        };
        Steer::to(t, outcome)
    }

    /// The slot a flow is pinned to, if it has a live entry at `now`.
    pub fn get(&self, key: &Key, now: u32) -> Option<u16> {
        let hash = key.hash();
        let bucket = self.storage.get().get(self.bucket_index(hash))?;
        bucket
            .0
            .iter()
            .find(|e| {
                e.state != EMPTY
                    && e.hash == hash
                    && now.wrapping_sub(e.last_seen) <= self.timeout(e.state)
            })
            .map(|e| u16::from(e.slot))
    }

    /// Empties idle entries (optional housekeeping; steering reuses idle
    /// entries on its own). Returns how many were removed.
    pub fn expire(&mut self, now: u32) -> usize {
        let mut removed = 0;
        let t = self.timeouts;
        for b in self.storage.get_mut().iter_mut() {
            for e in b.0.iter_mut() {
                if e.state != EMPTY && now.wrapping_sub(e.last_seen) > timeout_of(&t, e.state) {
                    e.state = EMPTY;
                    removed += 1;
                }
            }
        }
        self.len -= removed;
        removed
    }
}

impl Table {
    /// Where a packet *about* the flow whose [`Key::hash`] is `hash` should
    /// go (an ICMP error quoting it), without recording anything: the node
    /// of its live entry if that node still keeps flows, else Maglev's
    /// choice.
    pub fn lookup<B: Backends>(&self, hash: u64, now: u32, backends: &mut B) -> Option<Target> {
        let bucket = self.storage.get().get(self.bucket_index(hash))?;
        let live = bucket.0.iter().find(|e| {
            e.state != EMPTY
                && e.hash == hash
                && now.wrapping_sub(e.last_seen) <= self.timeout(e.state)
        });
        if let Some(e) = live
            && let Some(mac) = backends.usable(u16::from(e.slot), e.generation)
        {
            return Some(Target {
                slot: u16::from(e.slot),
                generation: e.generation,
                mac,
            });
        }
        backends.pick(hash)
    }
}

/// The identity of a fragmented IPv4 datagram (RFC 791: source,
/// destination, protocol and identification; addresses in host order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FragKey {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// The IP identification field.
    pub id: u16,
    /// IP protocol.
    pub proto: u8,
}

impl FragKey {
    #[inline]
    fn packed(&self) -> (u64, u32) {
        (
            (u64::from(self.src) << 32) | u64::from(self.dst),
            (u32::from(self.id) << 8) | u32::from(self.proto),
        )
    }
}

/// The default number of datagrams a worker's fragment cache remembers.
pub const FRAG_CAPACITY: usize = 4096;
/// The default time a first fragment's decision is kept, in milliseconds
/// (well under the kernel's 30 s reassembly timeout: later fragments of a
/// datagram follow its first within a round trip).
pub const FRAG_TIMEOUT_MS: u32 = 2_000;

/// Ways per set of the fragment cache.
const FRAG_WAYS: usize = 4;

#[derive(Debug, Clone, Copy, Default)]
struct FragEntry {
    addrs: u64,
    id_proto: u32,
    stamp: u32,
    mac: u64,
    slot: u16,
    generation: u16,
    /// 0 empty, 1 to a node, 2 to the local stack.
    used: u8,
}

/// Where a fragment goes, as its first fragment went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragTo {
    /// To this node (the first fragment's Maglev or flow-table choice).
    Node(Target),
    /// To the local stack (the first fragment was not a balanced flow).
    Local,
}

/// A per-worker, bounded, time-limited cache of fragmented datagrams: the
/// first fragment (the only one with ports) records where it went, the
/// later ones follow it. Fixed memory (`FRAG_WAYS`-way sets, placement
/// keyed by a random seed); a full set replaces its oldest entry. A later
/// fragment that finds nothing (its first was not seen, came later, or
/// expired) is the caller's counted drop.
#[derive(Debug)]
pub struct Fragments {
    sets: Box<[[FragEntry; FRAG_WAYS]]>,
    timeout_ms: u32,
    seed: u64,
}

impl Fragments {
    /// A cache for about `capacity` datagrams, each kept `timeout_ms`.
    pub fn new(capacity: usize, timeout_ms: u32) -> Fragments {
        let n = capacity.div_ceil(FRAG_WAYS).max(1);
        Fragments {
            sets: vec![[FragEntry::default(); FRAG_WAYS]; n].into_boxed_slice(),
            timeout_ms,
            seed: random_seed(),
        }
    }

    /// The number of entries (the bound on remembered datagrams).
    pub fn slots(&self) -> usize {
        self.sets.len() * FRAG_WAYS
    }

    #[inline]
    fn set_index(&self, a: u64, b: u32) -> usize {
        let h = mix64(mix64(a ^ self.seed) ^ u64::from(b));
        (((h >> 32) * self.sets.len() as u64) >> 32) as usize
    }

    /// Records where the first fragment of `key` went, at `now` (ms).
    pub fn insert(&mut self, key: &FragKey, to: FragTo, now: u32) {
        let (a, b) = key.packed();
        let i = self.set_index(a, b);
        let timeout = self.timeout_ms;
        let Some(set) = self.sets.get_mut(i) else {
            return;
        };
        let w = set
            .iter()
            .position(|e| e.used != 0 && e.addrs == a && e.id_proto == b)
            .or_else(|| {
                set.iter()
                    .position(|e| e.used == 0 || now.wrapping_sub(e.stamp) > timeout)
            })
            .unwrap_or_else(|| {
                (0..FRAG_WAYS)
                    .max_by_key(|&w| now.wrapping_sub(set[w].stamp))
                    .unwrap_or(0)
            });
        set[w] = match to {
            FragTo::Node(t) => FragEntry {
                addrs: a,
                id_proto: b,
                stamp: now,
                mac: t.mac,
                slot: t.slot,
                generation: t.generation,
                used: 1,
            },
            FragTo::Local => FragEntry {
                addrs: a,
                id_proto: b,
                stamp: now,
                used: 2,
                ..FragEntry::default()
            },
        };
    }

    /// Where a later fragment of `key` goes, if its first was seen within
    /// the timeout.
    pub fn get(&self, key: &FragKey, now: u32) -> Option<FragTo> {
        let (a, b) = key.packed();
        let set = self.sets.get(self.set_index(a, b))?;
        let e = set.iter().find(|e| {
            e.used != 0
                && e.addrs == a
                && e.id_proto == b
                && now.wrapping_sub(e.stamp) <= self.timeout_ms
        })?;
        Some(if e.used == 1 {
            FragTo::Node(Target {
                slot: e.slot,
                generation: e.generation,
                mac: e.mac,
            })
        } else {
            FragTo::Local
        })
    }
}

#[inline]
fn timeout_of(t: &Timeouts, state: u8) -> u32 {
    match state {
        ESTABLISHED => t.established_ms,
        CLOSING => t.closing_ms,
        _ => t.unconfirmed_ms,
    }
}

/// The state of a flow first seen with `segment`: a SYN is unconfirmed; a
/// packet from the middle of a flow (e.g. after a director takeover, or a
/// spoofed ACK) is on probation; a FIN/RST is closing.
#[inline]
fn initial_state(segment: Segment) -> u8 {
    match segment {
        Segment::Open => UNCONFIRMED,
        Segment::Data => PROBATION,
        Segment::Close => CLOSING,
    }
}

/// A per-process random seed for bucket placement, from the standard
/// library's randomly keyed SipHash (seeded from the OS at first use).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x7068_612d_7461_626c); // "pha-tabl"
    h.finish()
}

#[inline]
fn next_state(state: u8, segment: Segment) -> u8 {
    match (state, segment) {
        (_, Segment::Close) => CLOSING,
        (UNCONFIRMED | PROBATION, Segment::Data) => ESTABLISHED,
        (s, _) => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A test double: slots with generations and a liveness flag; picks by hash.
    struct Nodes {
        alive: Vec<bool>,
        generation: Vec<u64>,
    }

    impl Nodes {
        fn new(n: usize) -> Nodes {
            Nodes {
                alive: vec![true; n],
                generation: vec![1; n],
            }
        }
        fn kill(&mut self, slot: usize) {
            self.alive[slot] = false;
            self.generation[slot] += 1;
        }
    }

    impl Backends for Nodes {
        fn usable(&mut self, slot: u16, generation: u16) -> Option<u64> {
            let s = slot as usize;
            (self.alive[s] && self.generation[s] as u16 == generation).then_some(s as u64)
        }
        fn pick(&mut self, hash: u64) -> Option<Target> {
            let live: Vec<usize> = (0..self.alive.len()).filter(|&i| self.alive[i]).collect();
            let s = *live.get((hash % live.len().max(1) as u64) as usize)?;
            Some(Target {
                slot: s as u16,
                generation: self.generation[s] as u16,
                mac: s as u64,
            })
        }
    }

    fn key(i: u32) -> Key {
        Key {
            src: 0xc612_0000 | i,
            dst: 0xc612_00fa,
            sport: (i % 60_000) as u16,
            dport: 9090,
            proto: 6,
        }
    }

    fn steer(t: &mut Table, k: &Key, seg: Segment, now: u32, n: &mut Nodes) -> Steer {
        t.steer(k.hash(), seg, now, n)
    }

    #[test]
    fn hash_is_fixed() {
        let k = Key {
            src: 0xc612_0064,
            dst: 0xc612_00fa,
            sport: 40000,
            dport: 9090,
            proto: 6,
        };
        assert_eq!(k.hash(), k.hash());
        assert_ne!(k.hash(), Key { sport: 40001, ..k }.hash());
    }

    #[test]
    fn syn_misses_then_data_hits_and_confirms() {
        let mut t = Table::new(1024, Timeouts::default());
        let mut n = Nodes::new(3);
        let k = key(1);
        let first = steer(&mut t, &k, Segment::Open, 0, &mut n);
        assert_eq!(first.outcome, Outcome::Miss);
        let again = steer(&mut t, &k, Segment::Open, 10, &mut n);
        assert_eq!(again.outcome, Outcome::Hit, "a retransmitted SYN follows");
        let data = steer(&mut t, &k, Segment::Data, 20, &mut n);
        assert_eq!(data.outcome, Outcome::Hit);
        assert_eq!(data.target.unwrap().slot, first.target.unwrap().slot);
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(&k, 20), Some(first.target.unwrap().slot));
    }

    #[test]
    fn dead_node_moves_only_its_flows() {
        let mut t = Table::new(10_000, Timeouts::default());
        let mut n = Nodes::new(4);
        let mut first = HashMap::new();
        for i in 0..2000 {
            let s = steer(&mut t, &key(i), Segment::Open, 0, &mut n);
            if steer(&mut t, &key(i), Segment::Data, 0, &mut n).outcome == Outcome::Hit {
                first.insert(i, s.target.unwrap().slot);
            }
        }
        assert!(first.len() > 1900);
        n.kill(2);
        // The double's pick changes for most flows once a node is gone: only
        // the table keeps the survivors' flows in place.
        for &i in first.keys() {
            let s = steer(&mut t, &key(i), Segment::Data, 5, &mut n);
            let slot = s.target.unwrap().slot;
            if first[&i] == 2 {
                assert_eq!(s.outcome, Outcome::Moved);
                assert_ne!(slot, 2);
            } else {
                assert_eq!(s.outcome, Outcome::Hit);
                assert_eq!(slot, first[&i]);
            }
        }
    }

    #[test]
    fn idle_flows_expire_and_fin_shortens() {
        let tm = Timeouts {
            unconfirmed_ms: 100,
            established_ms: 1000,
            closing_ms: 50,
        };
        let mut t = Table::new(64, tm);
        let mut n = Nodes::new(2);
        let k = key(7);
        steer(&mut t, &k, Segment::Open, 0, &mut n);
        steer(&mut t, &k, Segment::Data, 50, &mut n);
        assert_eq!(
            steer(&mut t, &k, Segment::Data, 900, &mut n).outcome,
            Outcome::Hit
        );
        assert_eq!(
            steer(&mut t, &k, Segment::Close, 950, &mut n).outcome,
            Outcome::Hit
        );
        assert!(t.get(&k, 990).is_some());
        assert!(t.get(&k, 1001).is_none(), "closing timeout is short");
        assert_eq!(
            steer(&mut t, &k, Segment::Data, 1100, &mut n).outcome,
            Outcome::Miss
        );
        assert_eq!(t.expire(100_000), 1);
        assert!(t.is_empty());
        // Time wraps.
        let k2 = key(8);
        steer(&mut t, &k2, Segment::Open, u32::MAX - 10, &mut n);
        assert_eq!(
            steer(&mut t, &k2, Segment::Data, 20, &mut n).outcome,
            Outcome::Hit
        );
    }

    /// More mid-stream flows than a bucket holds, arriving in a cycle: the
    /// first ones stay tracked and hit; the rest are untracked, nobody thrashes.
    #[test]
    fn overfull_bucket_does_not_thrash() {
        let mut t = Table::new(1, Timeouts::default());
        assert_eq!(t.slots(), WAYS);
        let mut n = Nodes::new(3);
        for round in 0..3 {
            let mut hits = 0;
            for i in 0..(3 * WAYS as u32) {
                let s = steer(&mut t, &key(i), Segment::Data, round, &mut n);
                assert_ne!(s.outcome, Outcome::MissEvicted);
                hits += usize::from(s.outcome == Outcome::Hit);
            }
            assert_eq!(hits, if round == 0 { 0 } else { WAYS });
        }
    }

    #[test]
    fn syn_to_reused_tuple_repicks() {
        let mut t = Table::new(64, Timeouts::default());
        let mut n = Nodes::new(2);
        let k = key(3);
        steer(&mut t, &k, Segment::Open, 0, &mut n);
        steer(&mut t, &k, Segment::Data, 1, &mut n);
        assert_eq!(
            steer(&mut t, &k, Segment::Open, 2, &mut n).outcome,
            Outcome::Miss
        );
    }

    #[test]
    fn fin_of_unknown_flow_is_not_recorded() {
        let mut t = Table::new(64, Timeouts::default());
        let mut n = Nodes::new(2);
        let s = steer(&mut t, &key(1), Segment::Close, 0, &mut n);
        assert_eq!(s.outcome, Outcome::Untracked);
        assert!(s.target.is_some());
        assert!(t.is_empty());
    }

    #[test]
    fn no_backend() {
        let mut t = Table::new(64, Timeouts::default());
        let mut n = Nodes::new(1);
        let k = key(1);
        steer(&mut t, &k, Segment::Open, 0, &mut n);
        n.kill(0);
        assert_eq!(
            steer(&mut t, &k, Segment::Data, 1, &mut n).outcome,
            Outcome::NoBackend
        );
        assert!(t.is_empty());
        assert_eq!(
            steer(&mut t, &key(2), Segment::Open, 1, &mut n).outcome,
            Outcome::NoBackend
        );
    }

    /// A SYN flood of a million spoofed tuples leaves every established flow
    /// in place and never grows the table.
    #[test]
    fn syn_flood_cannot_evict_established_flows() {
        let mut t = Table::new(1000, Timeouts::default());
        let slots = t.slots();
        let mem = t.memory_bytes();
        let mut n = Nodes::new(4);
        let mut established = Vec::new();
        for i in 0..800 {
            let k = key(i);
            let s = steer(&mut t, &k, Segment::Open, 1, &mut n);
            if s.outcome == Outcome::Miss {
                steer(&mut t, &k, Segment::Data, 1, &mut n);
                established.push((k, s.target.unwrap().slot));
            }
        }
        assert!(established.len() > 700);
        for (k, slot) in &established {
            assert_eq!(t.get(k, 1), Some(*slot), "after setup {k:?}");
        }
        let mut untracked = 0;
        let mut evicted = 0;
        for i in 0..1_000_000u32 {
            let k = Key {
                src: i.wrapping_mul(2_654_435_761),
                dst: 0xc612_00fa,
                sport: (i >> 7) as u16,
                dport: 9090,
                proto: 6,
            };
            match steer(&mut t, &k, Segment::Open, 2 + i / 1000, &mut n).outcome {
                Outcome::Untracked => untracked += 1,
                Outcome::MissEvicted => evicted += 1,
                _ => {}
            }
        }
        assert!(untracked > 0 && evicted > 0);
        assert!(t.len() <= slots);
        assert_eq!(t.memory_bytes(), mem);
        for (k, slot) in &established {
            assert_eq!(t.get(k, 1000), Some(*slot), "established flow evicted");
        }
    }

    /// A million one-packet spoofed ACKs cannot evict established flows, and
    /// afterwards every new real connection (SYN, then ACK) is still tracked:
    /// SYNs take back the probation entries the flood filled.
    #[test]
    fn spoofed_ack_flood_cannot_crowd_out_real_flows() {
        // Sized so that no bucket holds WAYS real established flows (those
        // would rightly leave a new SYN untracked, flood or not).
        let mut t = Table::new(10_000, Timeouts::default());
        let mut n = Nodes::new(4);
        let mut established = Vec::new();
        for i in 0..600 {
            let k = key(i);
            let s = steer(&mut t, &k, Segment::Open, 1, &mut n);
            if s.outcome == Outcome::Miss {
                steer(&mut t, &k, Segment::Data, 1, &mut n);
                established.push((k, s.target.unwrap().slot));
            }
        }
        let mut probation = 0;
        for i in 0..1_000_000u32 {
            let k = Key {
                src: i.wrapping_mul(2_654_435_761),
                dst: 0xc612_00fa,
                sport: (i >> 7) as u16,
                dport: 9090,
                proto: 6,
            };
            let s = steer(&mut t, &k, Segment::Data, 2, &mut n);
            assert_ne!(s.outcome, Outcome::MissEvicted, "data never evicts");
            probation += usize::from(s.outcome == Outcome::Probation);
        }
        assert!(
            probation > 0 && t.len() == t.slots(),
            "the flood filled the table"
        );
        for (k, slot) in &established {
            assert_eq!(t.get(k, 3), Some(*slot), "established flow evicted");
        }
        // New real connections after the flood: every one is tracked.
        for i in 10_000..10_500 {
            let k = key(i);
            let s = steer(&mut t, &k, Segment::Open, 3, &mut n);
            assert!(
                matches!(s.outcome, Outcome::Miss | Outcome::MissEvicted),
                "{:?}",
                s.outcome
            );
            assert_eq!(
                steer(&mut t, &k, Segment::Data, 3, &mut n).outcome,
                Outcome::Hit
            );
            assert!(t.get(&k, 3).is_some());
        }
    }

    /// A mid-stream flow is on probation; its next packet establishes it, so
    /// a later SYN flood cannot evict it.
    #[test]
    fn probation_is_confirmed_by_the_next_packet() {
        let mut t = Table::new(1, Timeouts::default());
        let mut n = Nodes::new(2);
        let k = key(1);
        assert_eq!(
            steer(&mut t, &k, Segment::Data, 0, &mut n).outcome,
            Outcome::Probation
        );
        assert_eq!(
            steer(&mut t, &k, Segment::Data, 1, &mut n).outcome,
            Outcome::Hit
        );
        for i in 100..200 {
            steer(&mut t, &key(i), Segment::Open, 2, &mut n);
        }
        assert!(t.get(&k, 2).is_some(), "established after probation");
        // A probation entry alone is evicted by a SYN.
        let mut t = Table::new(1, Timeouts::default());
        for i in 0..WAYS as u32 {
            steer(&mut t, &key(i), Segment::Data, 0, &mut n);
        }
        assert_eq!(
            steer(&mut t, &key(99), Segment::Open, 1, &mut n).outcome,
            Outcome::MissEvicted
        );
    }

    /// Bucket placement is seeded per table, the flow hash is not: two
    /// tables with different seeds place flows differently but every flow
    /// gets the same node from both.
    #[test]
    fn bucket_seed_is_random_but_the_flow_hash_is_not() {
        let a = Table::new(1 << 12, Timeouts::default());
        let b = Table::new(1 << 12, Timeouts::default());
        assert_ne!(a.seed, b.seed, "two tables, two random seeds");
        let moved = (0..1000)
            .filter(|&i| a.bucket_index(key(i).hash()) != b.bucket_index(key(i).hash()))
            .count();
        assert!(moved > 900, "placement depends on the seed ({moved})");
        let mut a = Table::with_seed(1 << 12, Timeouts::default(), 1);
        let mut b = Table::with_seed(1 << 12, Timeouts::default(), 2);
        let mut n = Nodes::new(5);
        for i in 0..1000 {
            let k = key(i);
            assert_eq!(
                steer(&mut a, &k, Segment::Open, 0, &mut n).target,
                steer(&mut b, &k, Segment::Open, 0, &mut n).target
            );
        }
    }

    #[test]
    fn fragments_follow_their_first_within_the_timeout() {
        let mut c = Fragments::new(8, 100);
        assert_eq!(c.slots(), 8);
        let k = |id: u16| FragKey {
            src: 0xc612_0064,
            dst: 0xc612_00fa,
            id,
            proto: 6,
        };
        let t = Target {
            slot: 3,
            generation: 9,
            mac: 0xabc,
        };
        assert_eq!(c.get(&k(1), 0), None, "unmatched");
        c.insert(&k(1), FragTo::Node(t), 0);
        c.insert(&k(2), FragTo::Local, 0);
        assert_eq!(c.get(&k(1), 100), Some(FragTo::Node(t)));
        assert_eq!(c.get(&k(2), 50), Some(FragTo::Local));
        assert_eq!(c.get(&k(1), 101), None, "expired");
        assert_eq!(
            c.get(&FragKey { proto: 17, ..k(1) }, 50),
            None,
            "other protocol"
        );
        // Bounded: thousands of datagrams never grow it, and the latest ones
        // are found.
        for id in 0..5000 {
            c.insert(&k(id), FragTo::Node(t), 200 + u32::from(id));
        }
        assert_eq!(c.slots(), 8);
        assert_eq!(c.get(&k(4999), 5199), Some(FragTo::Node(t)));
    }

    #[test]
    fn lookup_never_records() {
        let mut t = Table::new(64, Timeouts::default());
        let mut n = Nodes::new(3);
        let k = key(5);
        assert!(t.lookup(k.hash(), 0, &mut n).is_some(), "Maglev's choice");
        assert!(t.is_empty());
        let s = steer(&mut t, &k, Segment::Open, 0, &mut n);
        assert_eq!(t.lookup(k.hash(), 1, &mut n), s.target);
    }

    proptest::proptest! {
        /// Whatever arrives, the table never tracks more than its entries,
        /// `len` stays exact, and a live established flow is only ever hit
        /// (never evicted) by later SYNs of other tuples.
        #[test]
        fn bounded_and_established_survive(
            ops in proptest::collection::vec((0u32..64, 0u8..3, 0u32..50), 1..400),
        ) {
            let mut t = Table::new(8, Timeouts { unconfirmed_ms: 100, established_ms: 1_000_000, closing_ms: 100 });
            let mut n = Nodes::new(3);
            // One flow established first, then anything else happens.
            let keep = key(1000);
            steer(&mut t, &keep, Segment::Open, 0, &mut n);
            steer(&mut t, &keep, Segment::Data, 0, &mut n);
            let pinned = t.get(&keep, 0).unwrap();
            let mut now = 0u32;
            for (i, seg, dt) in ops {
                now += dt;
                let seg = [Segment::Open, Segment::Data, Segment::Close][seg as usize];
                let _ = steer(&mut t, &key(i), if seg == Segment::Data { Segment::Open } else { seg }, now, &mut n);
                proptest::prop_assert!(t.len() <= t.slots());
                let live = t.buckets_len();
                proptest::prop_assert_eq!(live, t.len());
            }
            proptest::prop_assert_eq!(t.get(&keep, now), Some(pinned));
        }
    }

    impl Table {
        fn buckets_len(&self) -> usize {
            self.storage
                .get()
                .iter()
                .flat_map(|b| b.0.iter())
                .filter(|e| e.state != EMPTY)
                .count()
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<Entry>(), 16);
        assert_eq!(std::mem::size_of::<Bucket>(), 128);
        let t = Table::new(DEFAULT_CAPACITY, Timeouts::default());
        assert!(t.slots() >= DEFAULT_CAPACITY * 5 / 4);
        assert!(t.slots() < DEFAULT_CAPACITY * 5 / 4 + WAYS);
        assert_eq!(Table::new(0, Timeouts::default()).slots(), WAYS);
    }
}
