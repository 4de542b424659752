//! The whole pipeline on in-memory rings: 64-byte TCP frames over 1M flows,
//! one core. Each iteration injects one batch of 64 frames (the "NIC" side),
//! runs one worker poll (classify → flow table / Maglev → MAC rewrite → TX)
//! and drains TX (the "NIC" again). The baseline does the same ring traffic
//! with only a MAC swap in between: the I/O floor of this harness.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proxyha::balance::{flow, maglev};
use proxyha::dataplane::mem::{self, MemPort};
use proxyha::dataplane::port::{Frame, Port};
use proxyha::dataplane::redirect::{MemorySink, rewrite_macs};
use proxyha::dataplane::stats::Stats;
use proxyha::dataplane::worker::{self, Polling, Worker};
use proxyha::dataplane::{Queues, Shared};

mod common;
use common::*;

const BATCH: usize = 64;

fn port() -> MemPort {
    // 1024 frames of 2 KiB, rings of 512: a 2 MiB UMEM, like a small AF_XDP setup.
    MemPort::new(mem::Config {
        frames: 1024,
        frame_size: 2048,
        ring_size: 512,
    })
}

fn worker(flows: u32) -> Worker<MemPort, MemorySink> {
    let shared = Shared::new(filter(), maglev::DEFAULT_SIZE).unwrap();
    nodes(&shared.health, 16);
    let b = maglev::backends_from_health(&shared.health);
    shared
        .maglev
        .rebuild_if_changed(&b, maglev::DEFAULT_SIZE)
        .unwrap();
    let cfg = worker::Config {
        batch: BATCH,
        polling: Polling::Busy,
        flow_capacity: (flows as usize).max(flow::DEFAULT_CAPACITY),
        timeouts: flow::Timeouts::default(),
    };
    Worker::new(
        port(),
        MemorySink::new(0),
        cfg,
        &shared,
        Queues::new(64),
        Arc::new(Stats::new()),
    )
}

/// One batch through the worker.
#[inline]
fn step(w: &mut Worker<MemPort, MemorySink>, frames: &[u8], cursor: &mut usize) {
    let p = w.port_mut();
    for _ in 0..BATCH {
        let at = *cursor * FRAME;
        p.inject(&frames[at..at + FRAME]);
        *cursor += 1;
        if *cursor * FRAME >= frames.len() {
            *cursor = 0;
        }
    }
    w.poll();
    w.port_mut().drain_tx(|_| {});
}

fn bench_pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(BATCH as u64));
    for flows in [1u32 << 20, 1024] {
        // Built on first use, so a filtered run (e.g. for profiling) only
        // builds what it measures.
        let mut state: Option<(Vec<u8>, Worker<MemPort, MemorySink>, usize)> = None;
        let name = if flows >= 1 << 20 {
            "1M_flows"
        } else {
            "1k_flows"
        };
        g.bench_function(name, |b| {
            let (frames, w, cursor) = state.get_or_insert_with(|| {
                let frames = flow_frames(flows);
                let mut w = worker(flows);
                // Warm up: every flow seen twice (recorded, then confirmed).
                let mut cursor = 0;
                for _ in 0..(2 * flows as usize).div_ceil(BATCH) {
                    step(&mut w, &frames, &mut cursor);
                }
                (frames, w, cursor)
            });
            b.iter(|| step(w, frames, cursor))
        });
        if let Some((_, w, _)) = &state {
            let s = w.stats().snapshot();
            eprintln!(
                "{name}: hits {} misses {} untracked {} evictions {} ring_full {}",
                s.flow_hits, s.flow_misses, s.flow_untracked, s.flow_evictions, s.ring_full
            );
            assert!(
                s.flow_hits > s.flow_misses,
                "the measured path is the flow-table hit path"
            );
            assert_eq!(s.ring_full, 0);
        }
    }

    // Baseline: the same injection and draining, recv → MAC swap → send.
    let mut base: Option<(Vec<u8>, MemPort, usize)> = None;
    let mut rx = [Frame::default(); BATCH];
    g.bench_function("baseline_ring_macswap", |b| {
        let (frames, p, cursor) = base.get_or_insert_with(|| (flow_frames(1 << 20), port(), 0));
        b.iter(|| {
            for _ in 0..BATCH {
                let at = *cursor * FRAME;
                p.inject(&frames[at..at + FRAME]);
                *cursor += 1;
                if *cursor * FRAME >= frames.len() {
                    *cursor = 0;
                }
            }
            p.reclaim();
            let n = p.recv(&mut rx);
            for &f in &rx[..n] {
                let buf = p.buffer_mut(f);
                let mut dst = [0u8; 6];
                dst.copy_from_slice(&buf[6..12]);
                rewrite_macs(buf, proxyha::balance::health::mac_to_u64(dst), OUR_MAC);
            }
            p.send(&rx[..n]);
            p.drain_tx(|_| {});
        })
    });
    g.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
