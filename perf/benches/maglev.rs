//! Maglev: a lookup, and a rebuild for 1000 nodes at M = 65537.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proxyha::balance::maglev::{Backend, DEFAULT_SIZE, Table};
use proxyha::balance::mix64;

fn backends(n: usize, weighted: bool) -> Vec<Backend> {
    (0..n)
        .map(|i| Backend {
            id: 10_000 + i as u64,
            slot: (i % 256) as u16,
            weight: if weighted {
                1 + (mix64(i as u64) % 100) as u32
            } else {
                1
            },
        })
        .collect()
}

fn bench_maglev(c: &mut Criterion) {
    let mut g = c.benchmark_group("maglev");
    let table = Table::build(&backends(1000, false), DEFAULT_SIZE).unwrap();
    let hashes: Vec<u64> = (0..1024u64).map(mix64).collect();
    g.throughput(Throughput::Elements(hashes.len() as u64));
    g.bench_function("lookup_x1024", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &h in &hashes {
                acc = acc.wrapping_add(u32::from(table.lookup(black_box(h)).unwrap_or(0)));
            }
            acc
        })
    });
    g.throughput(Throughput::Elements(1));
    let equal = backends(1000, false);
    g.bench_function("rebuild_1000_nodes_M65537", |b| {
        b.iter(|| Table::build(black_box(&equal), DEFAULT_SIZE).unwrap())
    });
    let weighted = backends(1000, true);
    g.bench_function("rebuild_1000_weighted_nodes_M65537", |b| {
        b.iter(|| Table::build(black_box(&weighted), DEFAULT_SIZE).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_maglev);
criterion_main!(benches);
