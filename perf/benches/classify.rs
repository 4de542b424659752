//! The classifier alone, over a batch of 64-byte TCP frames to the VIP.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proxyha::dataplane::classify::{Verdict, classify};

mod common;
use common::*;

fn bench_classify(c: &mut Criterion) {
    let frames = flow_frames(64);
    let f = filter();
    let mut g = c.benchmark_group("classify");
    g.throughput(Throughput::Elements(64));
    g.bench_function("tcp_64B_x64", |b| {
        b.iter(|| {
            let mut n = 0;
            for fr in frames.chunks_exact(FRAME) {
                if matches!(classify(&f, black_box(fr)), Verdict::ProxyFlow(_)) {
                    n += 1;
                }
            }
            assert_eq!(n, 64);
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench_classify);
criterion_main!(benches);
