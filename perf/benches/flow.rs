//! The flow table holding 1M established flows: steering known flows in a
//! scattered order (the hit path), one at a time and in prefetched batches of 64.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proxyha::balance::flow::{Backends, DEFAULT_CAPACITY, Key, Segment, Table, Target, Timeouts};
use proxyha::balance::mix64;

struct Fixed;

impl Backends for Fixed {
    #[inline]
    fn usable(&mut self, slot: u16, _generation: u16) -> Option<u64> {
        Some(u64::from(slot))
    }
    #[inline]
    fn pick(&mut self, hash: u64, _new_flow: bool) -> Option<Target> {
        Some(Target {
            slot: (hash % 16) as u16,
            generation: 1,
            mac: hash % 16,
        })
    }
}

fn key(i: u32) -> Key {
    Key {
        src: 0xc612_0000 | (i >> 4),
        dst: 0xc612_00fa,
        sport: 1024 + (i & 15) as u16,
        dport: 9090,
        proto: 6,
        v6: false,
    }
}

fn bench_flow(c: &mut Criterion) {
    const FLOWS: u32 = 1 << 20;
    let mut t = Table::new(DEFAULT_CAPACITY, Timeouts::default());
    for i in 0..FLOWS {
        let k = key(i);
        t.steer(k.hash(), Segment::Open, 0, &mut Fixed);
        t.steer(k.hash(), Segment::Data, 0, &mut Fixed);
    }
    let tracked = (0..FLOWS).filter(|&i| t.get(&key(i), 0).is_some()).count();
    eprintln!(
        "flow table: {tracked} of {FLOWS} flows tracked in {} entries, {} MiB",
        t.slots(),
        t.memory_bytes() >> 20
    );
    // A scattered visiting order over all 1M flows.
    let order: Vec<(Key, u64)> = (0..FLOWS)
        .map(|i| key((mix64(u64::from(i)) % u64::from(FLOWS)) as u32))
        .map(|k| (k, k.hash()))
        .collect();
    let mut g = c.benchmark_group("flow_table_1M");
    g.throughput(Throughput::Elements(64));
    let mut at = 0usize;
    g.bench_function("steer_x64", |b| {
        b.iter(|| {
            let batch: [u64; 64] = std::array::from_fn(|_| {
                let (_, h) = order[at];
                at = (at + 1) % order.len();
                h
            });
            steer_all(&mut t, &batch)
        })
    });
    at = 0;
    g.bench_function("steer_x64_touched", |b| {
        b.iter(|| {
            let batch = &order[at..at + 64];
            at = (at + 64) % (order.len() - 64);
            let mut acc = 0u64;
            for (_, h) in batch {
                acc ^= t.touch(*h);
            }
            acc ^ steer_all(&mut t, batch.iter().map(|(_, h)| h))
        })
    });
    at = 0;
    g.bench_function("steer_x64_prefetched", |b| {
        b.iter(|| {
            let batch = &order[at..at + 64];
            at = (at + 64) % (order.len() - 64);
            for (_, h) in batch {
                t.prefetch(*h);
            }
            steer_all(&mut t, batch.iter().map(|(_, h)| h))
        })
    });
    g.finish();
}

/// Steers one established packet of each flow hash; returns a value that
/// depends on every result.
fn steer_all<'a>(t: &mut Table, hashes: impl IntoIterator<Item = &'a u64>) -> u64 {
    hashes.into_iter().fold(0, |acc, h| {
        acc ^ t
            .steer(*h, Segment::Data, 1, &mut Fixed)
            .target
            .map_or(0, |x| x.mac)
    })
}

criterion_group!(benches, bench_flow);
criterion_main!(benches);
