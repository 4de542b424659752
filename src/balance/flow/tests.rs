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
    fn pick(&mut self, hash: u64, _new_flow: bool) -> Option<Target> {
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
        v6: false,
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
        v6: false,
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
            v6: false,
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
            v6: false,
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

/// What the XDP fast path may install: only a flow whose entry is
/// established after the packet (never a SYN, a lone spoofed ACK, or a
/// closing flow).
#[test]
fn established_only_after_a_confirming_packet() {
    let mut t = Table::new(1024, Timeouts::default());
    let mut n = Nodes::new(3);
    let k = key(7);
    assert!(!steer(&mut t, &k, Segment::Open, 0, &mut n).established);
    assert!(!steer(&mut t, &k, Segment::Open, 1, &mut n).established);
    assert!(steer(&mut t, &k, Segment::Data, 2, &mut n).established);
    assert!(steer(&mut t, &k, Segment::Data, 3, &mut n).established);
    assert!(!steer(&mut t, &k, Segment::Close, 4, &mut n).established);
    assert!(!steer(&mut t, &k, Segment::Data, 5, &mut n).established);
    // A mid-stream flow: the first packet is only on probation.
    let m = key(8);
    let first = steer(&mut t, &m, Segment::Data, 0, &mut n);
    assert_eq!(first.outcome, Outcome::Probation);
    assert!(!first.established);
    assert!(steer(&mut t, &m, Segment::Data, 1, &mut n).established);
    // Its node dies: re-picked, and still established (to be re-installed).
    let slot = steer(&mut t, &m, Segment::Data, 2, &mut n)
        .target
        .unwrap()
        .slot;
    n.kill(usize::from(slot));
    let moved = steer(&mut t, &m, Segment::Data, 3, &mut n);
    assert_eq!(moved.outcome, Outcome::Moved);
    assert!(moved.established);
}

/// An emptied entry keeps its old hash; the way-match mask must skip it, so
/// the flow's next packet is a fresh record, never a hit on the dead entry.
#[test]
fn emptied_entry_is_never_matched() {
    let mut t = Table::with_seed(1, Timeouts::default(), 7);
    let mut n = Nodes::new(1);
    let k = key(3);
    steer(&mut t, &k, Segment::Open, 0, &mut n);
    steer(&mut t, &k, Segment::Data, 1, &mut n);
    // Its node dies and none is left: the entry is emptied in place.
    n.kill(0);
    assert_eq!(
        steer(&mut t, &k, Segment::Data, 2, &mut n).outcome,
        Outcome::NoBackend
    );
    assert!(t.is_empty());
    assert_eq!(t.get(&k, 2), None);
    n.alive[0] = true;
    let s = steer(&mut t, &k, Segment::Data, 3, &mut n);
    assert_eq!(s.outcome, Outcome::Probation);
    assert_eq!(t.len(), 1);
    assert_eq!(
        steer(&mut t, &k, Segment::Data, 4, &mut n).outcome,
        Outcome::Hit
    );
}
