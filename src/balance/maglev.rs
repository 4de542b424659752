//! Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
//! Software Network Load Balancer", NSDI 2016, §3.4), with weights.
//!
//! > "offset ← h1(name[i]) mod M; skip ← h2(name[i]) mod (M − 1) + 1;
//! > permutation[i][j] ← (offset + j × skip) mod M"
//!
//! > "Populate: ... for each i < N: c ← permutation[i][next[i]];
//! > while entry[c] ≥ 0 do next[i] ← next[i] + 1; c ← permutation[i][next[i]];
//! > entry[c] ← i; next[i] ← next[i] + 1; n ← n + 1; if n = M return"
//!
//! Weights: instead of strict round robin, node `i` takes its `k`-th turn at
//! virtual time `k / weight[i]`; turns run in virtual-time order, ties broken
//! by the node order. With equal weights this is exactly the paper's round
//! robin; with weights each node fills entries in proportion to its weight,
//! and removing a node leaves the survivors' relative turn order unchanged,
//! which keeps Maglev's minimal disruption.
//!
//! Every director must build the identical table, so the node order is the
//! node id order, and `h1`/`h2` are fixed hashes with fixed seeds.
//!
//! The table is built off the hot path and published with an atomic pointer
//! swap ([`Shared`]); workers read it through a [`Reader`] without locks.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};
use thiserror::Error;

use super::{hash_u64, health};

/// The default table size M (prime; > 100 × N keeps imbalance under 1% up to 655 nodes).
pub const DEFAULT_SIZE: u32 = 65537;

/// The largest table size accepted.
pub const MAX_SIZE: u32 = 1 << 24;

/// The seed of `h1` (the permutation offset), shared by every director.
pub const SEED_OFFSET: u64 = 0x7072_6f78_7968_6131; // "proxyha1"
/// The seed of `h2` (the permutation skip), shared by every director.
pub const SEED_SKIP: u64 = 0x7072_6f78_7968_6132; // "proxyha2"

/// The entry value meaning "no node" (only in a table with no nodes).
pub const NO_NODE: u16 = u16::MAX;

/// Errors from building a Maglev table.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The table size is not prime.
    #[error("maglev table size {0} is not prime")]
    NotPrime(u32),
    /// The table size is outside 2..=MAX_SIZE.
    #[error("maglev table size {0} must be 2..={MAX_SIZE}")]
    BadSize(u32),
    /// Fewer entries than nodes.
    #[error("maglev table size {size} is smaller than the {nodes} nodes")]
    TooSmall {
        /// M.
        size: u32,
        /// N.
        nodes: usize,
    },
    /// Two backends share one id.
    #[error("maglev: node id {0} appears twice")]
    DuplicateNode(u64),
    /// A backend's slot is the reserved [`NO_NODE`] value.
    #[error("maglev: node id {0} has the reserved slot {NO_NODE}")]
    BadSlot(u64),
}

/// One node as Maglev sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Backend {
    /// Stable node identity: the hash input, and the sort key.
    pub id: u64,
    /// Its slot in the [`health::Table`]; what lookups return.
    pub slot: u16,
    /// Relative weight; 0 takes no entries.
    pub weight: u32,
}

/// Whether `n` is prime (deterministic trial division: fine for table
/// sizes and anything up to `u32::MAX`, slow for very large `u64`s).
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3u64;
    while d <= n / d {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// A populated Maglev lookup table. Immutable once built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    entries: Box<[u16]>,
    size: u32,
    /// Lemire's fastmod constant for `size`: `u64::MAX / size + 1`.
    fastmod: u64,
    backends: Vec<Backend>,
}

/// A pending turn of node `index`: its `k`-th turn happens at virtual time
/// `k / weight`. Ordered so that `BinaryHeap` pops the earliest turn, ties by
/// the lower node index.
#[derive(PartialEq, Eq)]
struct Turn {
    k: u64,
    weight: u64,
    index: usize,
}

impl Ord for Turn {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // self.k / self.weight vs other.k / other.weight, reversed for a
        // min-heap. k <= M + 1 <= 2^24 + 1 and weight < 2^32: no overflow.
        let lhs = self.k * other.weight;
        let rhs = other.k * self.weight;
        rhs.cmp(&lhs).then(other.index.cmp(&self.index))
    }
}

impl PartialOrd for Turn {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Table {
    /// A table that routes nothing (no healthy nodes).
    pub fn empty(size: u32) -> Result<Table, Error> {
        Table::build(&[], size)
    }

    /// Populates a table of size `size` (prime) for `backends`. Backends with
    /// weight 0 take no entries. The input order does not matter.
    pub fn build(backends: &[Backend], size: u32) -> Result<Table, Error> {
        if !(2..=MAX_SIZE).contains(&size) {
            return Err(Error::BadSize(size));
        }
        if !is_prime(u64::from(size)) {
            return Err(Error::NotPrime(size));
        }
        let mut bs: Vec<Backend> = backends.to_vec();
        bs.sort_unstable_by_key(|b| b.id);
        for w in bs.windows(2) {
            if w[0].id == w[1].id {
                return Err(Error::DuplicateNode(w[0].id));
            }
        }
        if let Some(b) = bs.iter().find(|b| b.slot == NO_NODE) {
            return Err(Error::BadSlot(b.id));
        }
        bs.retain(|b| b.weight > 0);
        let m = size as usize;
        if bs.len() > m {
            return Err(Error::TooSmall {
                size,
                nodes: bs.len(),
            });
        }
        let mut entries = vec![NO_NODE; m].into_boxed_slice();
        if !bs.is_empty() {
            populate(&bs, &mut entries);
        }
        Ok(Table {
            entries,
            size,
            fastmod: (u64::MAX / u64::from(size)).wrapping_add(1),
            backends: bs,
        })
    }

    /// The node slot for a flow hash: `entry[fold(hash) mod M]`, where `fold`
    /// xors the hash's two 32-bit halves. `None` when the table has no nodes.
    #[inline]
    pub fn lookup(&self, hash: u64) -> Option<u16> {
        let i = self.index(hash);
        match self.entries.get(i) {
            Some(&s) if s != NO_NODE => Some(s),
            _ => None,
        }
    }

    /// `fold(hash) mod M`, computed with Lemire's multiply-only fastmod.
    #[inline]
    pub fn index(&self, hash: u64) -> usize {
        let a = (hash ^ (hash >> 32)) as u32;
        let low = self.fastmod.wrapping_mul(u64::from(a));
        ((u128::from(low) * u128::from(self.size)) >> 64) as usize
    }

    /// The raw entries (node slots, or [`NO_NODE`]).
    pub fn entries(&self) -> &[u16] {
        &self.entries
    }

    /// M.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The nodes in the table (weight > 0), sorted by id.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }
}

fn permutation(id: u64, m: usize) -> (usize, usize) {
    let m64 = m as u64;
    let offset = (hash_u64(id, SEED_OFFSET) % m64) as usize;
    let skip = if m > 1 {
        (hash_u64(id, SEED_SKIP) % (m64 - 1) + 1) as usize
    } else {
        1
    };
    (offset, skip)
}

/// Fills every entry. `bs` is non-empty, sorted by id, all weights > 0, and
/// `bs.len() <= entries.len()`; `entries.len()` is prime, so each node's
/// permutation visits every entry and the inner search always ends.
fn populate(bs: &[Backend], entries: &mut [u16]) {
    let m = entries.len();
    let mut next: Vec<(usize, usize)> = bs.iter().map(|b| permutation(b.id, m)).collect();
    let mut place = |i: usize, entries: &mut [u16]| {
        let (mut c, skip) = next[i];
        while entries[c] != NO_NODE {
            c += skip;
            if c >= m {
                c -= m;
            }
        }
        entries[c] = bs[i].slot;
        c += skip;
        if c >= m {
            c -= m;
        }
        next[i].0 = c;
    };
    let equal = bs.iter().all(|b| b.weight == bs[0].weight);
    let mut filled = 0;
    if equal {
        // The paper's round robin (identical to the weighted order below).
        'rounds: loop {
            for i in 0..bs.len() {
                place(i, entries);
                filled += 1;
                if filled == m {
                    break 'rounds;
                }
            }
        }
    } else {
        let mut heap: BinaryHeap<Turn> = bs
            .iter()
            .enumerate()
            .map(|(index, b)| Turn {
                k: 1,
                weight: u64::from(b.weight),
                index,
            })
            .collect();
        while filled < m {
            let Some(mut t) = heap.pop() else { break };
            place(t.index, entries);
            filled += 1;
            t.k += 1;
            heap.push(t);
        }
    }
}

/// The backends Maglev should balance over, read from the health table:
/// nodes that are up with a weight above zero.
pub fn backends_from_health(table: &health::Table) -> Vec<Backend> {
    table
        .nodes()
        .into_iter()
        .filter(|(_, n)| n.state.keeps_flows() && n.weight > 0)
        .filter_map(|(slot, n)| {
            Some(Backend {
                id: n.id,
                slot: u16::try_from(slot).ok()?,
                weight: n.weight,
            })
        })
        .collect()
}

/// The published table, shared between the control plane (which swaps in new
/// tables) and the workers (which read through [`Reader`]s).
#[derive(Debug, Clone)]
pub struct Shared {
    current: Arc<ArcSwap<Table>>,
}

impl Shared {
    /// Publishes `table` as the first table.
    pub fn new(table: Table) -> Shared {
        Shared {
            current: Arc::new(ArcSwap::from_pointee(table)),
        }
    }

    /// Atomically replaces the current table. Readers switch at their next load.
    pub fn publish(&self, table: Table) {
        self.current.store(Arc::new(table));
    }

    /// Rebuilds and publishes only if `backends` (as a set, with weights)
    /// differ from the current table's, or `size` changed. Returns whether it did.
    pub fn rebuild_if_changed(&self, backends: &[Backend], size: u32) -> Result<bool, Error> {
        let mut want: Vec<Backend> = backends.iter().copied().filter(|b| b.weight > 0).collect();
        want.sort_unstable_by_key(|b| b.id);
        let cur = self.current.load();
        if cur.size == size && cur.backends == want {
            return Ok(false);
        }
        self.publish(Table::build(&want, size)?);
        Ok(true)
    }

    /// The current table (clones the `Arc`; for the control plane and tests).
    pub fn load(&self) -> Arc<Table> {
        self.current.load_full()
    }

    /// A per-worker reader that caches the current table.
    pub fn reader(&self) -> Reader {
        Reader {
            cache: Cache::new(self.current.clone()),
        }
    }
}

/// A worker's handle on the published table: [`Reader::current`] costs one
/// atomic load when the table has not changed, and never locks.
pub struct Reader {
    cache: Cache<Arc<ArcSwap<Table>>, Arc<Table>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("maglev::Reader")
    }
}

impl Reader {
    /// The newest published table.
    #[inline]
    pub fn current(&mut self) -> &Arc<Table> {
        self.cache.load()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nodes(n: usize, weight: impl Fn(usize) -> u32) -> Vec<Backend> {
        (0..n)
            .map(|i| Backend {
                id: 1000 + i as u64 * 7,
                slot: i as u16,
                weight: weight(i),
            })
            .collect()
    }

    fn counts(t: &Table, slots: usize) -> Vec<usize> {
        let mut c = vec![0; slots];
        for &e in t.entries() {
            c[e as usize] += 1;
        }
        c
    }

    #[test]
    fn primality() {
        let primes: Vec<u64> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(65537));
        assert!(is_prime(4_294_967_291));
        assert!(!is_prime(65535));
        assert!(!is_prime(4_294_967_295));
        assert!(is_prime(4_294_967_311)); // the first prime above u32::MAX
        assert!(!is_prime(u64::MAX));
    }

    #[test]
    fn rejects_bad_inputs() {
        assert_eq!(Table::build(&[], 65536), Err(Error::NotPrime(65536)));
        assert_eq!(Table::build(&[], 1), Err(Error::BadSize(1)));
        assert_eq!(
            Table::build(&[], 16_777_259),
            Err(Error::BadSize(16_777_259))
        );
        let two = nodes(2, |_| 1);
        assert_eq!(
            Table::build(&[two[0], two[0]], 7),
            Err(Error::DuplicateNode(two[0].id))
        );
        assert_eq!(
            Table::build(&nodes(5, |_| 1), 3),
            Err(Error::TooSmall { size: 3, nodes: 5 })
        );
        let bad = Backend {
            slot: NO_NODE,
            ..two[0]
        };
        assert_eq!(Table::build(&[bad], 7), Err(Error::BadSlot(bad.id)));
    }

    #[test]
    fn empty_table_routes_nothing() {
        let t = Table::empty(13).unwrap();
        assert_eq!(t.lookup(12345), None);
        let zero = Table::build(&nodes(3, |_| 0), 13).unwrap();
        assert_eq!(zero.lookup(12345), None);
    }

    #[test]
    fn index_is_hash_mod_m() {
        let t = Table::empty(65537).unwrap();
        for h in [
            0u64,
            1,
            65536,
            65537,
            65538,
            u64::MAX,
            0xdead_beef_0bad_f00d,
        ] {
            let folded = (h ^ (h >> 32)) as u32;
            assert_eq!(t.index(h), (folded % 65537) as usize);
        }
    }

    #[test]
    fn small_table_fixture() {
        // Three equal nodes, M = 7: every entry filled, shares 3/2/2.
        let t = Table::build(&nodes(3, |_| 1), 7).unwrap();
        assert!(t.entries().iter().all(|&e| e < 3));
        let mut c = counts(&t, 3);
        c.sort_unstable();
        assert_eq!(c, [2, 2, 3]);
    }

    #[test]
    fn input_order_does_not_matter() {
        let mut a = nodes(10, |i| 1 + i as u32);
        let t1 = Table::build(&a, 1009).unwrap();
        a.reverse();
        let t2 = Table::build(&a, 1009).unwrap();
        assert_eq!(t1, t2);
    }

    #[test]
    fn shared_publishes_and_readers_follow() {
        let shared = Shared::new(Table::empty(7).unwrap());
        let mut r = shared.reader();
        assert_eq!(r.current().lookup(1), None);
        assert!(shared.rebuild_if_changed(&nodes(2, |_| 1), 7).unwrap());
        assert!(r.current().lookup(1).is_some());
        assert!(!shared.rebuild_if_changed(&nodes(2, |_| 1), 7).unwrap());
        assert!(shared.rebuild_if_changed(&nodes(2, |_| 2), 7).unwrap());
    }

    #[test]
    fn backends_from_health_takes_nodes_keeping_flows_with_weight() {
        use std::net::Ipv4Addr;
        let h = health::Table::new();
        let mk = |id, state, weight| health::NodeInfo {
            id,
            mac: [2, 0, 0, 0, 0, id as u8],
            ip: Ipv4Addr::new(198, 18, 0, id as u8),
            state,
            weight,
            connections: 0,
        };
        h.set(0, mk(1, health::State::Up, 10)).unwrap();
        // Held (STALE): keeps its share so its flows stay where they are.
        h.set(1, mk(2, health::State::Draining, 10)).unwrap();
        h.set(2, mk(3, health::State::Up, 0)).unwrap();
        h.set(3, mk(5, health::State::Draining, 0)).unwrap();
        h.set(4, mk(6, health::State::Failed, 7)).unwrap();
        h.set(5, mk(4, health::State::Up, 3)).unwrap();
        let b = backends_from_health(&h);
        let ids: Vec<(u64, u16, u32)> = b.iter().map(|b| (b.id, b.slot, b.weight)).collect();
        assert_eq!(ids, [(1, 0, 10), (2, 1, 10), (4, 5, 3)]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// With N nodes each gets within 1% of the table of its weighted share.
        #[test]
        fn weighted_shares_within_one_percent(weights in proptest::collection::vec(1u32..=100, 1..=30)) {
            let bs = nodes(weights.len(), |i| weights[i]);
            let t = Table::build(&bs, DEFAULT_SIZE).unwrap();
            let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
            let c = counts(&t, weights.len());
            for (i, &w) in weights.iter().enumerate() {
                let want = f64::from(DEFAULT_SIZE) * f64::from(w) / total as f64;
                let diff = (c[i] as f64 - want).abs() / f64::from(DEFAULT_SIZE);
                prop_assert!(diff <= 0.01, "node {i}: {} entries, want {want:.0}", c[i]);
            }
        }

        /// Removing one node changes no more than 1% of the table's entries
        /// that belonged to surviving nodes.
        #[test]
        fn removal_moves_little_of_the_survivors(
            weights in proptest::collection::vec(1u32..=100, 2..=30),
            victim in any::<proptest::sample::Index>(),
        ) {
            let bs = nodes(weights.len(), |i| weights[i]);
            let before = Table::build(&bs, DEFAULT_SIZE).unwrap();
            let gone = victim.index(bs.len());
            let mut rest = bs.clone();
            rest.remove(gone);
            let after = Table::build(&rest, DEFAULT_SIZE).unwrap();
            let moved = before.entries().iter().zip(after.entries())
                .filter(|&(&b, &a)| b != gone as u16 && a != b)
                .count();
            prop_assert!(moved as f64 <= 0.01 * f64::from(DEFAULT_SIZE), "{moved} survivor entries moved");
            // And every entry of the removed node went to a survivor.
            prop_assert!(after.entries().iter().all(|&e| e != gone as u16));
        }

        /// Same inputs give the identical table; lookups never panic.
        #[test]
        fn deterministic(weights in proptest::collection::vec(0u32..=50, 0..=12), h in any::<u64>()) {
            let bs = nodes(weights.len(), |i| weights[i]);
            let a = Table::build(&bs, 4099).unwrap();
            let b = Table::build(&bs, 4099).unwrap();
            prop_assert_eq!(&a, &b);
            let any_weight = weights.iter().any(|&w| w > 0);
            prop_assert_eq!(a.lookup(h).is_some(), any_weight);
        }
    }
}
