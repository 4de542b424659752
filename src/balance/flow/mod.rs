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

mod prefetch;

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
    /// An IPv6 flow, its addresses folded into 32 bits each
    /// (`dataplane::classify::ipv6_flow::fold`). Not part of [`Key::hash`]
    /// (Maglev's input is the tuple alone); the XDP fast path's flow id
    /// carries it, so that an IPv4 and an IPv6 flow never share an entry.
    pub v6: bool,
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
    /// Maglev's choice for a flow hash. A new flow (`new_flow`: its SYN)
    /// needs a node that takes new flows; a packet of a flow already under
    /// way that this table does not know (a takeover) may also go to a node
    /// that only keeps its flows (a held, STALE node's Maglev share).
    fn pick(&mut self, hash: u64, new_flow: bool) -> Option<Target>;
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
    /// The flow's entry is established after this packet (confirmed by a
    /// non-SYN packet after its SYN, or by a second non-SYN packet after
    /// probation, and not closing): what the XDP fast path may offload
    /// (docs/dataplane.md, "The XDP fast path").
    pub established: bool,
}

impl Steer {
    /// To `target`, decided as `outcome`.
    #[inline]
    fn to(target: Target, outcome: Outcome) -> Steer {
        Steer {
            target: Some(target),
            outcome,
            established: false,
        }
    }

    /// Marks the flow established when its entry's state `state` is.
    #[inline]
    fn with_state(self, state: u8) -> Steer {
        Steer {
            established: state == ESTABLISHED,
            ..self
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
        Steer {
            target,
            outcome,
            established: false,
        }
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

    /// Prefetches the bucket of `hash` (both its cache lines) so that a
    /// following [`Table::steer`] finds it in cache: the worker calls it for
    /// each frame of a batch as it classifies it, so the misses of the whole
    /// batch are in flight while it works. Costs no stall.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if let Some(b) = self.storage.get().get(self.bucket_index(hash)) {
            prefetch::prefetch(&b.0[0]);
            prefetch::prefetch(&b.0[WAYS / 2]);
        }
    }

    /// Touches the bucket of `hash` with two loads instead (the way before
    /// [`Table::prefetch`], kept for the benchmark that compares them):
    /// returns a value to feed to `std::hint::black_box` so the loads stay.
    #[inline]
    pub fn touch(&self, hash: u64) -> u64 {
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
        // All eight ways compared into a bit mask, without a branch per
        // way: the way that matches is random, so a search loop that stops
        // at it mispredicts its exit on nearly every packet.
        let mut matches = 0u32;
        for (w, e) in bucket.0.iter().enumerate() {
            matches |= u32::from(e.hash == hash) << w;
        }
        // An emptied entry keeps its hash: skip such ways (rare).
        while matches != 0 && bucket.0[matches.trailing_zeros() as usize % WAYS].state == EMPTY {
            matches &= matches - 1;
        }
        if matches != 0 {
            let w = matches.trailing_zeros() as usize % WAYS;
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
                return Steer::to(target, Outcome::Hit).with_state(e.state);
            }
            // Re-pick, in the same entry: a live flow whose node died keeps
            // its state (Moved); an idle flow, or a new connection on a
            // reused tuple, starts a new flow (Miss).
            return match backends.pick(hash, segment == Segment::Open) {
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
                        .with_state(e.state)
                }
                other => {
                    e.state = EMPTY;
                    self.len -= 1;
                    Steer::untracked(other)
                }
            };
        }
        let Some(t) = backends.pick(hash, segment == Segment::Open) else {
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
        backends.pick(hash, false)
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
/// A seed drawn at random (the process's `RandomState` keys), for hash
/// placement an outsider must not predict.
pub(crate) fn random_seed() -> u64 {
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
mod tests;
