//! The XDP fast path's maps (docs/dataplane.md, "The XDP fast path"): the
//! flows the workers install, the node slots the control plane mirrors from
//! the health table, and the per-node per-CPU counters. The program side is
//! `fast_path` in `src/bpf/filter.bpf.c`; the layouts here mirror its
//! `struct flow_entry`, `struct node_slot` and `struct fast_counter`.
//!
//! The flows live in a flow cache that the program and the workers share
//! through a mapping of the array map (see filter.bpf.c for the layout and
//! why concurrent reads never pair one flow's id with another's target).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytemuck::{Pod, Zeroable};

use crate::balance::{flow, health};
use crate::bpf::{Map, MappedWords};

use super::Error;

/// Sets of the fast-path flow cache, as bits (`FLOW_SET_BITS` in
/// filter.bpf.c).
pub const FLOW_SET_BITS: u32 = 16;
/// Ways per set (`FLOW_WAYS`): one 64-byte cache line per set.
pub const FLOW_WAYS: usize = 4;
/// Entries of the flow cache (`FLOW_ENTRIES`): 262,144 of 16 bytes, 4 MiB.
/// When all four ways of a flow's set hold other live flows, installing it
/// replaces one of them (chosen by two bits of the flow's id), whose next
/// packet goes to the workers, which install it again.
pub const FLOW_ENTRIES: usize = FLOW_WAYS << FLOW_SET_BITS;
/// 64-bit words per entry (`struct flow_entry`: id, target).
const WORDS: usize = 2;

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

/// A flow as the program reads it from a frame: the tuple's wire bytes
/// loaded in host order, as two words (addresses; ports and protocol).
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
            ports: u64::from(u32::from_ne_bytes(p)) | (u64::from(k.proto) << 32),
        }
    }
}

impl FlowKey {
    /// The flow's id under `seed` (`flow_id`): never 0, its top
    /// [`FLOW_SET_BITS`] bits name its set.
    #[inline]
    fn id(&self, seed: u64) -> u64 {
        mix(self.addrs ^ mix(self.ports ^ seed)) | 1
    }
}

/// The first entry of the set of flow `id`.
#[inline]
fn set_of(id: u64) -> usize {
    (id >> (64 - FLOW_SET_BITS)) as usize * FLOW_WAYS
}

/// The 16 bits of an id a target carries (bits 16..31).
#[inline]
fn tag(id: u64) -> u64 {
    (id >> 16) & 0xffff
}

/// `struct flow_entry`'s target word: where an installed flow goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTarget {
    /// The node's health slot.
    pub slot: u16,
    /// The low 16 bits of the slot generation it was steered under.
    pub generation: u16,
    /// The low 8 bits of the fast-path epoch it was installed in.
    pub epoch: u8,
    /// When it was installed ([`stamp_now`]).
    pub stamp: u8,
}

impl FlowTarget {
    /// The target word of flow `id`.
    fn word(self, id: u64) -> u64 {
        u64::from(self.slot)
            | (u64::from(self.generation) << 16)
            | (u64::from(self.epoch) << 32)
            | (u64::from(self.stamp) << 40)
            | (tag(id) << 48)
    }

    /// The target in `word`, if it carries `id`'s tag.
    fn of(word: u64, id: u64) -> Option<FlowTarget> {
        (word >> 48 == tag(id)).then_some(FlowTarget {
            slot: word as u16,
            generation: (word >> 16) as u16,
            epoch: (word >> 32) as u8,
            stamp: (word >> 40) as u8,
        })
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
    /// Entry `i`: its id and target words.
    fn entry(&self, i: usize) -> Option<(&AtomicU64, &AtomicU64)> {
        match self.words.get(i * WORDS..(i + 1) * WORDS)? {
            [id, target] => Some((id, target)),
            _ => None,
        }
    }

    /// Writes `key` → `target` into its set: over its own entry, else an
    /// empty way or one of another epoch, else the way two bits of the id
    /// name. The id is cleared first and written last, so the program never
    /// pairs an id with another flow's target (see filter.bpf.c).
    fn install(&self, key: FlowKey, target: FlowTarget) -> bool {
        let id = key.id(self.seed);
        let set = set_of(id);
        let mut way = None;
        for w in 0..FLOW_WAYS {
            let Some((eid, et)) = self.entry(set + w) else {
                return false;
            };
            let other = eid.load(Ordering::Relaxed);
            if other == id {
                way = Some(w);
                break;
            }
            let free = other == 0
                || FlowTarget::of(et.load(Ordering::Relaxed), other)
                    .is_none_or(|t| t.epoch != target.epoch);
            if way.is_none() && free {
                way = Some(w);
            }
        }
        let w = way.unwrap_or(((id >> 1) & (FLOW_WAYS as u64 - 1)) as usize);
        let Some((eid, et)) = self.entry(set + w) else {
            return false;
        };
        if eid.load(Ordering::Relaxed) != id {
            eid.store(0, Ordering::Relaxed);
        }
        et.store(target.word(id), Ordering::Release);
        eid.store(id, Ordering::Release);
        true
    }

    fn lookup(&self, key: FlowKey) -> Option<FlowTarget> {
        let id = key.id(self.seed);
        let set = set_of(id);
        (0..FLOW_WAYS).find_map(|w| {
            let (eid, et) = self.entry(set + w)?;
            if eid.load(Ordering::Acquire) != id {
                return None;
            }
            let t = et.load(Ordering::Acquire);
            (eid.load(Ordering::Relaxed) == id)
                .then(|| FlowTarget::of(t, id))
                .flatten()
        })
    }

    /// Entries that hold a flow (any epoch).
    fn len(&self) -> usize {
        self.words
            .chunks_exact(WORDS)
            .filter(|e| e[0].load(Ordering::Relaxed) != 0)
            .count()
    }

    /// Empties every entry.
    fn clear(&self) {
        for e in self.words.chunks_exact(WORDS) {
            e[0].store(0, Ordering::Relaxed);
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
                words: flows.mmap_words(FLOW_ENTRIES, WORDS * 8)?,
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
                cache.install(
                    FlowKey::from(k),
                    FlowTarget {
                        slot: t.slot,
                        generation: t.generation,
                        epoch,
                        stamp,
                    },
                )
            })
            .count())
    }

    /// The installed entry of a flow, if any (whatever its epoch).
    pub fn lookup(&self, key: &flow::Key) -> Result<Option<FlowTarget>, Error> {
        Ok(self.flows.cache().lookup(FlowKey::from(key)))
    }

    /// The number of entries in the flow cache that hold a flow, of any
    /// epoch (a walk of 4 MiB: for tests and diagnostics).
    pub fn len(&self) -> Result<usize, Error> {
        Ok(self.flows.cache().len())
    }

    /// Whether the flow cache holds no valid entry.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.flows.cache().len() == 0)
    }

    /// Empties the flow cache (a walk of 4 MiB, about a millisecond): with
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
        });
        // The words hold the wire bytes as the program loads them.
        assert_eq!(k.addrs.to_ne_bytes(), [198, 18, 0, 1, 198, 18, 0, 250]);
        assert_eq!(k.ports.to_ne_bytes()[..4], [0x9c, 0x40, 0x23, 0x82]);
        assert_eq!(k.ports >> 32, 6);
        let t = FlowTarget {
            slot: 3,
            generation: 0xbeef,
            epoch: 7,
            stamp: 0x12,
        };
        let id = 0xaaaa_bbbb_cccc_dddd;
        assert_eq!(
            t.word(id),
            3 | 0xbeef << 16 | 7 << 32 | 0x12 << 40 | 0xcccc << 48
        );
        assert_eq!(FlowTarget::of(t.word(id), id), Some(t));
        assert_eq!(FlowTarget::of(t.word(id), id ^ 1 << 20), None, "tag");
        assert_eq!(set_of(id), 0xaaaa * FLOW_WAYS);
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
        (0..n * WORDS).map(|_| AtomicU64::new(0)).collect()
    }

    fn key(i: u32) -> FlowKey {
        FlowKey::from(&flow::Key {
            src: 0xc612_0000 + i,
            dst: 0xc612_00fa,
            sport: 1024 + (i % 50_000) as u16,
            dport: 9090,
            proto: 6,
        })
    }

    fn t(slot: u16, epoch: u8) -> FlowTarget {
        FlowTarget {
            slot,
            generation: 1,
            epoch,
            stamp: 0,
        }
    }

    #[test]
    fn a_full_set_replaces_one_way_and_keeps_its_own() {
        let w = words(FLOW_ENTRIES);
        let c = Cache {
            words: &w,
            seed: 0x1234,
        };
        // Six flows of one set (found by search: the seed is fixed here).
        let first = set_of(key(0).id(c.seed));
        let same: Vec<FlowKey> = (0..20_000_000)
            .map(key)
            .filter(|k| set_of(k.id(c.seed)) == first)
            .take(6)
            .collect();
        assert_eq!(same.len(), 6);
        for (i, k) in same[..4].iter().enumerate() {
            assert!(c.install(*k, t(i as u16, 1)));
        }
        for (i, k) in same[..4].iter().enumerate() {
            assert_eq!(c.lookup(*k), Some(t(i as u16, 1)), "way {i}");
        }
        assert!(c.install(same[0], t(9, 1)), "an update writes its own way");
        assert_eq!(c.lookup(same[0]), Some(t(9, 1)));
        assert_eq!(c.len(), 4);
        assert!(c.install(same[4], t(4, 1)));
        assert_eq!(c.lookup(same[4]), Some(t(4, 1)));
        assert_eq!(
            same[..4].iter().filter(|k| c.lookup(**k).is_some()).count(),
            3,
            "the fifth flow of a set replaces one of the four"
        );
        assert_eq!(c.len(), 4);
        // An entry of another epoch goes before a live one.
        let keep: Vec<FlowKey> = same[..5]
            .iter()
            .copied()
            .filter(|k| c.lookup(*k).is_some())
            .collect();
        assert!(c.install(keep[0], t(7, 2)));
        assert!(c.install(same[5], t(5, 2)));
        assert_eq!(
            c.lookup(keep[0]),
            Some(t(7, 2)),
            "the new epoch's flow stays"
        );
        assert_eq!(c.lookup(same[5]), Some(t(5, 2)));
        c.clear();
        assert_eq!(c.len(), 0);
        assert!(same.iter().all(|k| c.lookup(*k).is_none()));
    }

    #[test]
    fn an_id_never_pairs_with_another_flows_target() {
        let w = words(FLOW_ENTRIES);
        let c = Cache {
            words: &w,
            seed: 77,
        };
        let a = key(1);
        assert!(c.install(a, t(3, 1)));
        let id = a.id(c.seed);
        let i = (0..FLOW_ENTRIES)
            .find(|&i| w[i * WORDS].load(Ordering::Relaxed) == id)
            .unwrap();
        // Another flow's target under a's id (what a torn read on a weakly
        // ordered CPU could see): refused by the tag.
        let other = key(2).id(c.seed);
        w[i * WORDS + 1].store(t(4, 1).word(other), Ordering::Relaxed);
        assert_eq!(c.lookup(a), None);
        // A SYN's void (id 0) empties the entry.
        assert!(c.install(a, t(3, 1)));
        w[i * WORDS].store(0, Ordering::Relaxed);
        assert_eq!(c.lookup(a), None);
    }

    /// The program's read (filter.bpf.c `fast_path`): the id, the target,
    /// the id again, and the tag; loads in program order, as the program's
    /// plain loads are on x86.
    fn program_read(e: &[AtomicU64], id: u64) -> Option<FlowTarget> {
        if e[0].load(Ordering::Acquire) != id {
            return None;
        }
        let t = e[1].load(Ordering::Acquire);
        if e[0].load(Ordering::Acquire) != id {
            return None;
        }
        FlowTarget::of(t, id)
    }

    /// Writers racing over one set while a reader reads as the program does.
    /// (Checked when written: with the reader's tag check removed the test
    /// still passes on x86, the write order alone is enough there; with the
    /// writer's clearing of the id also removed, it fails.)
    #[test]
    fn a_reader_never_pairs_an_id_with_another_flows_target() {
        let w: &'static [AtomicU64] = Box::leak(words(FLOW_ENTRIES).into_boxed_slice());
        let seed = 0x5eed;
        // Six flows of one set, each always installed with its own slot:
        // two writers keep replacing each other's entries in four ways.
        let first = set_of(key(0).id(seed));
        let same: Vec<FlowKey> = (0..20_000_000)
            .map(key)
            .filter(|k| set_of(k.id(seed)) == first)
            .take(6)
            .collect();
        assert_eq!(same.len(), 6);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = [0usize, 3]
            .into_iter()
            .map(|from| {
                let same = same.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let c = Cache { words: w, seed };
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for (i, k) in same.iter().enumerate().skip(from).take(3) {
                            c.install(*k, t(i as u16, 1));
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
                for way in 0..FLOW_WAYS {
                    let e = &w[(first + way) * WORDS..(first + way + 1) * WORDS];
                    reads += 1;
                    if let Some(got) = program_read(e, *id) {
                        hits += 1;
                        assert_eq!(got.slot, i as u16, "flow {i} read with another's target");
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
        fn ids_are_never_zero_and_targets_round_trip(
            a: u64, p: u64, seed: u64, slot: u16, generation: u16, epoch: u8, stamp: u8
        ) {
            let id = FlowKey { addrs: a, ports: p }.id(seed);
            proptest::prop_assert_ne!(id, 0);
            let t = FlowTarget { slot, generation, epoch, stamp };
            proptest::prop_assert_eq!(FlowTarget::of(t.word(id), id), Some(t));
            proptest::prop_assert!(set_of(id) + FLOW_WAYS <= FLOW_ENTRIES);
        }
    }
}
