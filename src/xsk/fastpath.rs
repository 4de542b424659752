//! The XDP fast path's maps (docs/dataplane.md, "The XDP fast path"): the
//! flows the workers install, the node slots the control plane mirrors from
//! the health table, and the per-node per-CPU counters. The program side is
//! `fast_path` in `src/bpf/filter.bpf.c`; the layouts here mirror its
//! `struct flow_entry`, `struct node_slot` and `struct fast_counter`.
//!
//! The flows live in a flow cache that the program and the workers share
//! through a mapping of the array map (see filter.bpf.c for the layout and
//! why a check word makes concurrent reads safe).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytemuck::{Pod, Zeroable};

use crate::balance::{flow, health};
use crate::bpf::{Map, MappedWords};

use super::Error;

/// Sets of the fast-path flow cache (`FLOW_SET_BITS` in filter.bpf.c).
pub const FLOW_SET_BITS: u32 = 17;
/// Ways per set (`FLOW_WAYS`).
pub const FLOW_WAYS: usize = 2;
/// Entries of the flow cache (`FLOW_ENTRIES`): 262,144 of 32 bytes, 8 MiB.
/// When both ways of a flow's set hold other live flows, installing it
/// replaces one of them (chosen by a bit of the tuple's hash), whose next
/// packet goes to the workers, which install it again.
pub const FLOW_ENTRIES: usize = FLOW_WAYS << FLOW_SET_BITS;
/// 64-bit words per entry (`struct flow_entry`).
const WORDS: usize = 4;
/// The salt of the check word (`flow_check` in filter.bpf.c).
const CHECK_SALT: u64 = 0x7068_612d_6368_6b31; // "pha-chk1"

/// MurmurHash3's 64-bit finaliser (`mix` in filter.bpf.c).
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// A flow as the program reads it from a frame: the `addrs` and `ports`
/// words of `struct flow_entry` (wire bytes loaded in host order).
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
    /// The index of the first entry of this flow's set (`flow_set`).
    #[inline]
    fn set(&self, seed: u64) -> usize {
        (mix(self.addrs ^ mix(self.ports ^ seed)) >> (64 - FLOW_SET_BITS)) as usize * FLOW_WAYS
    }

    /// The check word of this flow with `target` (`flow_check`).
    #[inline]
    fn check(&self, target: u64) -> u64 {
        mix(self.addrs ^ mix(self.ports ^ mix(target ^ CHECK_SALT)))
    }
}

/// Entries older than this many stamp units (2^30 ns, about 64 s in all)
/// are misses (`FLOW_REFRESH`): a worker sees every live offloaded flow at
/// least once a minute, so its flow-table entry (300 s idle timeout) lives
/// as long as the flow.
pub const FLOW_REFRESH: u16 = 60;

/// Now, as an entry's stamp: CLOCK_MONOTONIC_COARSE (the clock of the
/// program's `bpf_ktime_get_coarse_ns`) in units of 2^30 ns, low 16 bits.
pub fn stamp_now() -> u16 {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_MONOTONIC_COARSE).map_or(0, |t| {
        let ns = (t.tv_sec() as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(t.tv_nsec() as u64);
        (ns >> 30) as u16
    })
}

/// `struct flow_entry`'s target word: where an installed flow goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowTarget {
    /// The node's health slot.
    pub slot: u16,
    /// The low 16 bits of the slot generation it was steered under.
    pub generation: u16,
    /// The low 16 bits of the fast-path epoch it was installed in.
    pub epoch: u16,
    /// When it was installed ([`stamp_now`]).
    pub stamp: u16,
}

impl FlowTarget {
    fn word(self) -> u64 {
        u64::from(self.slot)
            | (u64::from(self.generation) << 16)
            | (u64::from(self.epoch) << 32)
            | (u64::from(self.stamp) << 48)
    }

    fn of(word: u64) -> FlowTarget {
        FlowTarget {
            slot: word as u16,
            generation: (word >> 16) as u16,
            epoch: (word >> 32) as u16,
            stamp: (word >> 48) as u16,
        }
    }
}

/// One entry as read: whether it holds `key`, and its target if its check
/// word is right (an empty, voided or torn entry has none).
#[inline]
fn read(e: &[AtomicU64]) -> (FlowKey, Option<FlowTarget>) {
    let key = FlowKey {
        addrs: e[0].load(Ordering::Relaxed),
        ports: e[1].load(Ordering::Relaxed),
    };
    let target = e[2].load(Ordering::Relaxed);
    let valid = target != 0 && e[3].load(Ordering::Relaxed) == key.check(target);
    (key, valid.then(|| FlowTarget::of(target)))
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
    fn entry(&self, i: usize) -> &[AtomicU64] {
        self.words.get(i * WORDS..(i + 1) * WORDS).unwrap_or(&[])
    }

    /// Writes `key` → `target` into its set: over its own entry, else an
    /// empty, voided or other-epoch way, else the way a bit of the tuple's
    /// hash names.
    fn install(&self, key: FlowKey, target: FlowTarget) -> bool {
        let set = key.set(self.seed);
        let mut way = None;
        for w in 0..FLOW_WAYS {
            let e = self.entry(set + w);
            if e.len() != WORDS {
                return false;
            }
            let (k, t) = read(e);
            if k == key {
                way = Some(w);
                break;
            }
            if way.is_none() && t.is_none_or(|t| t.epoch != target.epoch) {
                way = Some(w);
            }
        }
        let w = way.unwrap_or((mix(key.ports ^ key.addrs ^ self.seed) & 1) as usize);
        let e = self.entry(set + w);
        let t = target.word();
        // Four whole-word stores; a reader between them sees a check that
        // fits neither version and takes the slow path.
        e[0].store(key.addrs, Ordering::Relaxed);
        e[1].store(key.ports, Ordering::Relaxed);
        e[2].store(t, Ordering::Relaxed);
        e[3].store(key.check(t), Ordering::Release);
        true
    }

    fn lookup(&self, key: FlowKey) -> Option<FlowTarget> {
        let set = key.set(self.seed);
        (0..FLOW_WAYS).find_map(|w| match read(self.entry(set + w)) {
            (k, t) if k == key => t,
            _ => None,
        })
    }

    fn len(&self) -> usize {
        self.words
            .chunks_exact(WORDS)
            .filter(|e| read(e).1.is_some())
            .count()
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
        stamp: u16,
    ) -> Result<usize, Error> {
        let epoch = self.epoch.load(Ordering::Relaxed) as u16;
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

    /// The number of valid entries in the flow cache, of any epoch (a walk
    /// of 8 MiB: for tests and diagnostics).
    pub fn len(&self) -> Result<usize, Error> {
        Ok(self.flows.cache().len())
    }

    /// Whether the flow cache holds no valid entry.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.flows.cache().len() == 0)
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
            stamp: 0x1234,
        };
        assert_eq!(t.word(), 3 | 0xbeef << 16 | 7 << 32 | 0x1234 << 48);
        assert_eq!(FlowTarget::of(t.word()), t);
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

    #[test]
    fn an_entry_is_valid_only_whole() {
        let e = words(1);
        let k = key(1);
        let t = FlowTarget {
            slot: 2,
            generation: 9,
            epoch: 1,
            stamp: 5,
        };
        assert_eq!(read(&e).1, None, "all zero: empty");
        e[0].store(k.addrs, Ordering::Relaxed);
        e[1].store(k.ports, Ordering::Relaxed);
        e[2].store(t.word(), Ordering::Relaxed);
        assert_eq!(read(&e).1, None, "no check word yet");
        e[3].store(k.check(t.word()), Ordering::Relaxed);
        assert_eq!(read(&e), (k, Some(t)));
        // A torn read: any one word from another version fails the check.
        let other = key(2);
        for (i, w) in [other.addrs, other.ports, t.word() + 1, 0]
            .into_iter()
            .enumerate()
        {
            let saved = e[i].swap(w, Ordering::Relaxed);
            assert_eq!(read(&e).1, None, "word {i} from another entry");
            e[i].store(saved, Ordering::Relaxed);
        }
        // A SYN voids it (target 0).
        e[2].store(0, Ordering::Relaxed);
        assert_eq!(read(&e).1, None);
    }

    #[test]
    fn a_full_set_replaces_one_way_and_keeps_its_own() {
        let w = words(FLOW_ENTRIES);
        let c = Cache {
            words: &w,
            seed: 0x1234,
        };
        let t = |slot| FlowTarget {
            slot,
            generation: 1,
            epoch: 1,
            stamp: 0,
        };
        // Three flows of one set (found by search: the seed is fixed here).
        let first = key(0).set(c.seed);
        let same: Vec<FlowKey> = (1..2_000_000)
            .map(key)
            .filter(|k| k.set(c.seed) == first)
            .take(2)
            .collect();
        let (a, b, x) = (key(0), same[0], same[1]);
        assert!(c.install(a, t(1)) && c.install(b, t(2)));
        assert_eq!((c.lookup(a), c.lookup(b)), (Some(t(1)), Some(t(2))));
        assert!(c.install(a, t(3)), "an update writes over its own way");
        assert_eq!((c.lookup(a), c.lookup(b)), (Some(t(3)), Some(t(2))));
        assert!(c.install(x, t(4)));
        assert_eq!(c.lookup(x), Some(t(4)));
        assert_eq!(
            [c.lookup(a), c.lookup(b)]
                .iter()
                .filter(|t| t.is_some())
                .count(),
            1,
            "the third flow of a set replaces one of the two"
        );
        assert_eq!(c.len(), 2);
        // An entry of another epoch is free for the taking.
        let y = (2_000_000..4_000_000)
            .map(key)
            .find(|k| k.set(c.seed) == first)
            .unwrap();
        let new = FlowTarget { epoch: 2, ..t(5) };
        assert!(c.install(y, new));
        assert!(c.install(x, FlowTarget { epoch: 2, ..t(6) }));
        assert_eq!(c.lookup(y), Some(new), "both old-epoch ways went first");
    }

    proptest::proptest! {
        #[test]
        fn the_check_binds_every_word(a: u64, p: u64, t in 1u64.., flip in 0usize..192) {
            let k = FlowKey { addrs: a, ports: p };
            let c = k.check(t);
            let (mut a2, mut p2, mut t2) = (a, p, t);
            match flip / 64 {
                0 => a2 ^= 1 << (flip % 64),
                1 => p2 ^= 1 << (flip % 64),
                _ => t2 ^= 1 << (flip % 64),
            }
            proptest::prop_assert_ne!(FlowKey { addrs: a2, ports: p2 }.check(t2), c);
        }
    }
}
