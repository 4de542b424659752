//! The XDP fast path's maps (docs/dataplane.md, "The XDP fast path"): the
//! flows the workers install, the node slots the control plane mirrors from
//! the health table, and the per-node per-CPU counters. The program side is
//! `fast_path` in `src/bpf/filter.bpf.c`; the layouts here mirror its
//! `struct flow_entry`, `struct node_slot` and `struct fast_counter`.
//!
//! The flows live in a flow cache that the program and the workers share
//! through a mapping of the array map: one 64-bit word per flow, so that a
//! read never pairs one flow with another's target (see filter.bpf.c).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytemuck::{Pod, Zeroable};

use crate::balance::{flow, health};
use crate::bpf::{Map, MappedWords};

use super::Error;

/// Sets of the fast-path flow cache, as bits (`FLOW_SET_BITS` in
/// filter.bpf.c).
pub const FLOW_SET_BITS: u32 = 15;
/// Ways per set (`FLOW_WAYS`): one 64-byte cache line of 8-byte entries.
pub const FLOW_WAYS: usize = 8;
/// Sets (`FLOW_SETS`: the map's entries).
const FLOW_SETS: usize = 1 << FLOW_SET_BITS;
/// Entries of the flow cache: 262,144 of 8 bytes, 2 MiB. When all eight
/// ways of a flow's set hold other live flows, installing it replaces one of
/// them (chosen by three bits of the flow's id), whose next packet goes to
/// the workers, which install it again.
pub const FLOW_ENTRIES: usize = FLOW_WAYS * FLOW_SETS;

/// Entries older than this many stamp units (2^30 ns, about 64 s in all)
/// are misses (`FLOW_REFRESH`): a worker sees every live offloaded flow at
/// least once a minute, so its flow-table entry (300 s idle timeout) lives
/// as long as the flow.
pub const FLOW_REFRESH: u8 = 60;

/// Now, as an entry's stamp: CLOCK_MONOTONIC_COARSE (the clock of the
/// program's `bpf_ktime_get_coarse_ns`) in units of 2^30 ns, low 8 bits.
pub fn stamp_now() -> u8 {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_MONOTONIC_COARSE).map_or(0, |t| {
        let ns = (t.tv_sec() as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(t.tv_nsec() as u64);
        (ns >> 30) as u8
    })
}

/// MurmurHash3's 64-bit finaliser (`mix` in filter.bpf.c).
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Where the ports word of a [`FlowKey`] marks an IPv6 flow
/// (`FLOW_FAMILY_V6` in the program).
const FAMILY_SHIFT: u32 = 40;

/// A flow as the program reads it from a frame: the tuple's wire bytes
/// loaded in host order, as two words (addresses; ports, protocol and
/// family). An IPv6 flow's addresses are folded into 32 bits each, as the
/// workers fold them (`classify::ipv6_flow::fold`), and its family bit is
/// set, so that it never shares an id with an IPv4 flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    addrs: u64,
    ports: u64,
}

impl From<&flow::Key> for FlowKey {
    fn from(k: &flow::Key) -> FlowKey {
        let mut a = [0u8; 8];
        a[..4].copy_from_slice(&k.src.to_be_bytes());
        a[4..].copy_from_slice(&k.dst.to_be_bytes());
        let mut p = [0u8; 4];
        p[..2].copy_from_slice(&k.sport.to_be_bytes());
        p[2..].copy_from_slice(&k.dport.to_be_bytes());
        FlowKey {
            addrs: u64::from_ne_bytes(a),
            ports: u64::from(u32::from_ne_bytes(p))
                | (u64::from(k.proto) << 32)
                | (u64::from(k.v6) << FAMILY_SHIFT),
        }
    }
}

impl FlowKey {
    /// The flow's id under `seed` (`flow_id`): its top [`FLOW_SET_BITS`]
    /// bits name its set, its low 32 bits (never 0) are its tag.
    #[inline]
    fn id(&self, seed: u64) -> u64 {
        mix(self.addrs ^ mix(self.ports ^ seed)) | 1
    }
}

/// The first word of the set of flow `id`.
#[inline]
fn set_of(id: u64) -> usize {
    (id >> (64 - FLOW_SET_BITS)) as usize * FLOW_WAYS
}

/// The 32 bits of an id an entry carries (also the tag field of an entry
/// word): never 0 for an id, so an empty word (0) matches no flow.
#[inline]
fn tag(id: u64) -> u64 {
    id & 0xffff_ffff
}

/// An entry's target: where an installed flow goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTarget {
    /// The node's health slot (`health::CAPACITY` is 256).
    pub slot: u8,
    /// The low 8 bits of the slot generation it was steered under.
    pub generation: u8,
    /// The low 8 bits of the fast-path epoch it was installed in.
    pub epoch: u8,
    /// When it was installed ([`stamp_now`]).
    pub stamp: u8,
}

impl FlowTarget {
    /// The entry word of flow `id` (`struct flow_set`'s layout).
    fn word(self, id: u64) -> u64 {
        tag(id)
            | (u64::from(self.slot) << 32)
            | (u64::from(self.generation) << 40)
            | (u64::from(self.epoch) << 48)
            | (u64::from(self.stamp) << 56)
    }

    /// The target in `word`, if it is flow `id`'s entry.
    fn of(word: u64, id: u64) -> Option<FlowTarget> {
        (tag(word) == tag(id)).then_some(FlowTarget {
            slot: (word >> 32) as u8,
            generation: (word >> 40) as u8,
            epoch: (word >> 48) as u8,
            stamp: (word >> 56) as u8,
        })
    }

    /// The epoch of any non-empty entry word.
    fn epoch_of(word: u64) -> u8 {
        (word >> 48) as u8
    }
}

/// The flow cache, mapped from the program's `proxyha_flows`.
struct Flows {
    words: MappedWords,
    seed: u64,
}

impl Flows {
    fn cache(&self) -> Cache<'_> {
        Cache {
            words: self.words.words(),
            seed: self.seed,
        }
    }
}

/// The flow cache's logic over its words (mapped, or on the heap in tests).
struct Cache<'a> {
    words: &'a [AtomicU64],
    seed: u64,
}

impl Cache<'_> {
    /// The eight ways of flow `id`'s set.
    fn set(&self, id: u64) -> &[AtomicU64] {
        let first = set_of(id);
        self.words.get(first..first + FLOW_WAYS).unwrap_or(&[])
    }

    /// Writes `key` → `target` into its set, with one store: over its own
    /// entry, else an empty way or one of another epoch, else the way three
    /// bits of the id name.
    fn install(&self, key: FlowKey, target: FlowTarget) -> bool {
        let id = key.id(self.seed);
        let set = self.set(id);
        let mut free = None;
        let mut way = None;
        for (w, e) in set.iter().enumerate() {
            let word = e.load(Ordering::Relaxed);
            if FlowTarget::of(word, id).is_some() {
                way = Some(w);
                break;
            }
            if free.is_none() && (word == 0 || FlowTarget::epoch_of(word) != target.epoch) {
                free = Some(w);
            }
        }
        let w = way
            .or(free)
            .unwrap_or(((id >> 1) & (FLOW_WAYS as u64 - 1)) as usize);
        match set.get(w) {
            Some(e) => {
                e.store(target.word(id), Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    fn lookup(&self, key: FlowKey) -> Option<FlowTarget> {
        let id = key.id(self.seed);
        self.set(id)
            .iter()
            .find_map(|e| FlowTarget::of(e.load(Ordering::Relaxed), id))
    }

    /// Entries that hold a flow (any epoch).
    fn len(&self) -> usize {
        self.words
            .iter()
            .filter(|e| e.load(Ordering::Relaxed) != 0)
            .count()
    }

    /// Empties every entry.
    fn clear(&self) {
        for e in self.words {
            e.store(0, Ordering::Relaxed);
        }
    }
}

/// `struct node_slot`: one health slot as the program sees it.
fn node_slot(node: Option<&health::Node>) -> [u8; 12] {
    let mut b = [0u8; 12];
    if let Some(n) = node {
        b[..6].copy_from_slice(&n.mac);
        b[6..8].copy_from_slice(&(n.generation as u16).to_ne_bytes());
        b[8] = n.state as u8;
    }
    b
}

/// `struct fast_counter`, per CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
struct Counter {
    packets: u64,
    bytes: u64,
}

/// What the fast path forwarded for one node, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeCounters {
    /// Frames.
    pub packets: u64,
    /// Bytes (whole frames).
    pub bytes: u64,
}

/// The mirror of the health table last written, to write only changes.
struct Mirror {
    version: Option<u64>,
    slots: Vec<[u8; 12]>,
}

/// The fast path's maps, owned by the [`super::Filter`].
pub struct FastPath {
    flows: Flows,
    nodes: Map,
    counters: Map,
    /// The config's epoch, read by every install.
    pub(super) epoch: AtomicU32,
    mirror: Mutex<Mirror>,
}

impl FastPath {
    /// The fast path over the program's maps; `seed` keys the flow cache's
    /// set index (`filter_config.flow_seed`).
    pub(super) fn new(flows: Map, nodes: Map, counters: Map, seed: u64) -> Result<FastPath, Error> {
        Ok(FastPath {
            flows: Flows {
                words: flows.mmap_words(FLOW_SETS, FLOW_WAYS * 8)?,
                seed,
            },
            nodes,
            counters,
            epoch: AtomicU32::new(0),
            mirror: Mutex::new(Mirror {
                version: None,
                slots: vec![[0; 12]; health::CAPACITY],
            }),
        })
    }

    /// The seed of the flow cache's set index.
    pub(super) fn seed(&self) -> u64 {
        self.flows.seed
    }

    /// Installs `flows` (one worker batch) under the current epoch, by
    /// writing the shared flow cache: no syscall. Returns how many were
    /// written.
    pub fn install(&self, flows: &[(flow::Key, flow::Target)]) -> Result<usize, Error> {
        self.install_stamped(flows, stamp_now())
    }

    /// [`FastPath::install`] with the install time given ([`stamp_now`]
    /// minus an age, in tests of the refresh rule).
    pub fn install_stamped(
        &self,
        flows: &[(flow::Key, flow::Target)],
        stamp: u8,
    ) -> Result<usize, Error> {
        let epoch = self.epoch.load(Ordering::Relaxed) as u8;
        let cache = self.flows.cache();
        Ok(flows
            .iter()
            .filter(|(k, t)| {
                // Slots are below health::CAPACITY (256); a larger one
                // would be a bug, and is not installed.
                u8::try_from(t.slot).is_ok_and(|slot| {
                    cache.install(
                        FlowKey::from(k),
                        FlowTarget {
                            slot,
                            generation: t.generation as u8,
                            epoch,
                            stamp,
                        },
                    )
                })
            })
            .count())
    }

    /// The installed entry of a flow, if any (whatever its epoch).
    pub fn lookup(&self, key: &flow::Key) -> Result<Option<FlowTarget>, Error> {
        Ok(self.flows.cache().lookup(FlowKey::from(key)))
    }

    /// The number of entries in the flow cache that hold a flow, of any
    /// epoch (a walk of 2 MiB: for tests and diagnostics).
    pub fn len(&self) -> Result<usize, Error> {
        Ok(self.flows.cache().len())
    }

    /// Whether the flow cache holds no valid entry.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.flows.cache().len() == 0)
    }

    /// Empties the flow cache (a walk of 2 MiB, under a millisecond): with
    /// each new epoch, so that an entry can never come back to life when the
    /// 8 bits of epoch an entry keeps wrap.
    pub(super) fn clear(&self) {
        self.flows.cache().clear();
    }

    /// Mirrors the health table into the program's node array: every slot
    /// whose state, generation or MAC changed since the last call. Costs one
    /// atomic load when nothing was written ([`health::Table::version`]).
    /// Returns the number of slots written.
    pub fn sync_nodes(&self, table: &health::Table) -> Result<usize, Error> {
        let mut m = self.mirror.lock().unwrap_or_else(|e| e.into_inner());
        let version = table.version();
        if m.version == Some(version) {
            return Ok(0);
        }
        let mut written = 0;
        for slot in 0..table.capacity().min(health::CAPACITY) {
            let now = node_slot(table.get(slot).as_ref());
            if m.slots[slot] != now || m.version.is_none() {
                self.nodes.update(&(slot as u32), &now)?;
                m.slots[slot] = now;
                written += 1;
            }
        }
        m.version = Some(version);
        Ok(written)
    }

    /// What the fast path forwarded for the node in `slot`, summed over
    /// CPUs.
    pub fn node_counters(&self, slot: u16) -> Result<NodeCounters, Error> {
        let per_cpu: Vec<Counter> = self.counters.lookup_percpu(&u32::from(slot))?;
        Ok(per_cpu
            .iter()
            .fold(NodeCounters::default(), |a, c| NodeCounters {
                packets: a.packets.wrapping_add(c.packets),
                bytes: a.bytes.wrapping_add(c.bytes),
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_c_structs() {
        assert_eq!(std::mem::size_of::<Counter>(), 16);
        let k = FlowKey::from(&flow::Key {
            src: 0xc612_0001,
            dst: 0xc612_00fa,
            sport: 40000,
            dport: 9090,
            proto: 6,
            v6: false,
        });
        // The words hold the wire bytes as the program loads them.
        assert_eq!(k.addrs.to_ne_bytes(), [198, 18, 0, 1, 198, 18, 0, 250]);
        assert_eq!(k.ports.to_ne_bytes()[..4], [0x9c, 0x40, 0x23, 0x82]);
        assert_eq!(k.ports >> 32, 6);
        // The same tuple as an IPv6 flow's folded key: the family bit alone
        // sets it apart, in the id too.
        let k6 = FlowKey::from(&flow::Key {
            src: 0xc612_0001,
            dst: 0xc612_00fa,
            sport: 40000,
            dport: 9090,
            proto: 6,
            v6: true,
        });
        assert_eq!(k6.addrs, k.addrs);
        assert_eq!(k6.ports, k.ports | 1 << FAMILY_SHIFT);
        assert_ne!(k6.id(5), k.id(5));
        let t = FlowTarget {
            slot: 3,
            generation: 0xef,
            epoch: 7,
            stamp: 0x12,
        };
        let id = 0xaaaa_bbbb_cccc_dddd;
        assert_eq!(
            t.word(id),
            0xcccc_dddd | 3 << 32 | 0xef << 40 | 7 << 48 | 0x12 << 56
        );
        assert_eq!(FlowTarget::of(t.word(id), id), Some(t));
        assert_eq!(FlowTarget::of(t.word(id), id ^ 1 << 20), None, "tag");
        assert_eq!(FlowTarget::epoch_of(t.word(id)), 7);
        assert_eq!(
            set_of(id),
            (0xaaaa_bbbb_cccc_dddd_u64 >> 49) as usize * FLOW_WAYS
        );
        assert_eq!(FLOW_WAYS * 8, 64, "a set is one cache line");
        let n = health::Node {
            info: health::NodeInfo {
                id: 1,
                mac: [2, 0, 0, 0, 0, 7],
                ip: std::net::Ipv4Addr::new(198, 18, 0, 7),
                state: health::State::Draining,
                weight: 1,
                connections: 0,
            },
            generation: 0x1_0005,
        };
        let b = node_slot(Some(&n));
        assert_eq!(b[..6], [2, 0, 0, 0, 0, 7]);
        assert_eq!(b[6..8], 5u16.to_ne_bytes(), "the low 16 bits");
        assert_eq!(b[8], 2);
        assert_eq!(node_slot(None), [0; 12]);
    }

    /// A flow cache on heap words (the mapped one needs the program).
    fn words(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    fn key(i: u32) -> FlowKey {
        FlowKey::from(&flow::Key {
            src: 0xc612_0000 + i,
            dst: 0xc612_00fa,
            sport: 1024 + (i % 50_000) as u16,
            dport: 9090,
            proto: 6,
            v6: false,
        })
    }

    fn t(slot: u8, epoch: u8) -> FlowTarget {
        FlowTarget {
            slot,
            generation: 1,
            epoch,
            stamp: 0,
        }
    }

    /// `n` flows of one set (found by search: the seed is fixed here).
    fn one_set(seed: u64, n: usize) -> Vec<FlowKey> {
        let first = set_of(key(0).id(seed));
        let same: Vec<FlowKey> = (0..20_000_000)
            .map(key)
            .filter(|k| set_of(k.id(seed)) == first)
            .take(n)
            .collect();
        assert_eq!(same.len(), n);
        same
    }

    #[test]
    fn a_full_set_replaces_one_way_and_keeps_its_own() {
        let w = words(FLOW_ENTRIES);
        let c = Cache {
            words: &w,
            seed: 0x1234,
        };
        let same = one_set(c.seed, FLOW_WAYS + 2);
        let full = &same[..FLOW_WAYS];
        for (i, k) in full.iter().enumerate() {
            assert!(c.install(*k, t(i as u8, 1)));
        }
        for (i, k) in full.iter().enumerate() {
            assert_eq!(c.lookup(*k), Some(t(i as u8, 1)), "way {i}");
        }
        assert!(c.install(same[0], t(9, 1)), "an update writes its own way");
        assert_eq!(c.lookup(same[0]), Some(t(9, 1)));
        assert_eq!(c.len(), FLOW_WAYS);
        let extra = same[FLOW_WAYS];
        assert!(c.install(extra, t(20, 1)));
        assert_eq!(c.lookup(extra), Some(t(20, 1)));
        assert_eq!(
            full.iter().filter(|k| c.lookup(**k).is_some()).count(),
            FLOW_WAYS - 1,
            "a flow over a full set replaces exactly one of its flows"
        );
        assert_eq!(c.len(), FLOW_WAYS);
        // An entry of another epoch goes before a live one.
        let keep: Vec<FlowKey> = same[..=FLOW_WAYS]
            .iter()
            .copied()
            .filter(|k| c.lookup(*k).is_some())
            .collect();
        assert!(c.install(keep[0], t(7, 2)));
        let last = same[FLOW_WAYS + 1];
        assert!(c.install(last, t(5, 2)));
        assert_eq!(
            c.lookup(keep[0]),
            Some(t(7, 2)),
            "the new epoch's flow stays"
        );
        assert_eq!(c.lookup(last), Some(t(5, 2)));
        c.clear();
        assert_eq!(c.len(), 0);
        assert!(same.iter().all(|k| c.lookup(*k).is_none()));
    }

    #[test]
    fn a_flow_never_reads_another_flows_entry() {
        let w = words(FLOW_ENTRIES);
        let c = Cache {
            words: &w,
            seed: 77,
        };
        let a = key(1);
        assert!(c.install(a, t(3, 1)));
        let id = a.id(c.seed);
        let i = (0..FLOW_ENTRIES)
            .find(|&i| FlowTarget::of(w[i].load(Ordering::Relaxed), id).is_some())
            .unwrap();
        // Another flow's entry in a's way: refused by the tag.
        let other = key(2).id(c.seed);
        w[i].store(t(4, 1).word(other), Ordering::Relaxed);
        assert_eq!(c.lookup(a), None);
        // A SYN's void (0) empties the entry.
        w[i].store(0, Ordering::Relaxed);
        assert!(c.install(a, t(3, 1)));
        assert_eq!(c.lookup(a), Some(t(3, 1)));
        w[i].store(0, Ordering::Relaxed);
        assert_eq!(c.lookup(a), None);
        assert_eq!(c.len(), 0);
    }

    /// Writers racing over one set while a reader reads as the program does
    /// (one load per way, the tag compared): no flow is ever read with
    /// another flow's slot.
    #[test]
    fn a_reader_never_pairs_a_flow_with_another_flows_target() {
        let w: &'static [AtomicU64] = Box::leak(words(FLOW_ENTRIES).into_boxed_slice());
        let seed = 0x5eed;
        // Twelve flows of one set, each always installed with its own slot:
        // two writers keep replacing each other's entries in eight ways.
        let same = one_set(seed, 12);
        let first = set_of(same[0].id(seed));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = [0usize, 6]
            .into_iter()
            .map(|from| {
                let same = same.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let c = Cache { words: w, seed };
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for (i, k) in same.iter().enumerate().skip(from).take(6) {
                            c.install(*k, t(i as u8, 1));
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        let ids: Vec<u64> = same.iter().map(|k| k.id(seed)).collect();
        let (mut hits, mut reads) = (0u64, 0u64);
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
        while std::time::Instant::now() < deadline {
            for (i, id) in ids.iter().enumerate() {
                for e in &w[first..first + FLOW_WAYS] {
                    reads += 1;
                    if let Some(got) = FlowTarget::of(e.load(Ordering::Relaxed), *id) {
                        hits += 1;
                        assert_eq!(got.slot, i as u8, "flow {i} read with another's target");
                    }
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let installs: u64 = writers.into_iter().map(|h| h.join().unwrap()).sum();
        assert!(
            installs > 1000 && hits > 1000,
            "{installs} installs, {hits} of {reads} reads"
        );
    }

    proptest::proptest! {
        #[test]
        fn tags_are_never_zero_and_targets_round_trip(
            a: u64, p: u64, seed: u64, slot: u8, generation: u8, epoch: u8, stamp: u8
        ) {
            let id = FlowKey { addrs: a, ports: p }.id(seed);
            proptest::prop_assert_ne!(tag(id), 0);
            let t = FlowTarget { slot, generation, epoch, stamp };
            proptest::prop_assert_eq!(FlowTarget::of(t.word(id), id), Some(t));
            proptest::prop_assert!(set_of(id) + FLOW_WAYS <= FLOW_ENTRIES);
        }
    }
}
