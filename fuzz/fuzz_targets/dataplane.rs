//! Arbitrary frames through the classifier and a whole worker on in-memory
//! rings: no panic, the classifier agrees with itself, and every frame is
//! accounted for afterwards.
#![no_main]

use std::net::Ipv4Addr;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use proxyha::balance::{health, maglev};
use proxyha::dataplane::classify::{Filter, classify};
use proxyha::dataplane::mem::{self, MemPort};
use proxyha::dataplane::port::Port;
use proxyha::dataplane::redirect::MemorySink;
use proxyha::dataplane::stats::Stats;
use proxyha::dataplane::worker::{self, Polling, Worker};
use proxyha::dataplane::{Queues, Shared};

fuzz_target!(|data: &[u8]| {
    let filter = Filter::new(51, [2, 0, 0, 0, 0, 1])
        .with_vip(Ipv4Addr::new(198, 18, 0, 250))
        .with_ports([9090, 80])
        .with_local_slot(Some(1));
    let shared = Shared::new(filter.clone(), 251).unwrap();
    for s in 0..3u8 {
        let info = health::NodeInfo {
            id: u64::from(s),
            mac: [2, 0, 0, 0, 0x10, s],
            ip: Ipv4Addr::new(198, 18, 0, 10 + s),
            state: health::State::Up,
            weight: 1 + u32::from(s),
            connections: 0,
        };
        shared.health.set(usize::from(s), info).unwrap();
    }
    let b = maglev::backends_from_health(&shared.health);
    shared.maglev.rebuild_if_changed(&b, 251).unwrap();
    let cfg = worker::Config {
        batch: 8,
        polling: Polling::Busy,
        flow_capacity: 64,
        ..worker::Config::default()
    };
    let port = MemPort::new(mem::Config { frames: 64, frame_size: 2048, ring_size: 16 });
    let mut w = Worker::new(port, MemorySink::new(4), cfg, &shared, Queues::new(2), Arc::new(Stats::new()));
    // Frames: a length byte, then that many bytes.
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (frame, tail) = tail.split_at(n);
        rest = tail;
        assert_eq!(classify(&filter, frame), classify(&filter, frame));
        w.port_mut().inject(frame);
        if w.port().rx_pending() >= 8 {
            w.poll();
            w.port_mut().drain_tx(|_| {});
        }
    }
    while w.port().rx_pending() > 0 {
        w.poll();
    }
    w.port_mut().drain_tx(|_| {});
    w.port_mut().reclaim();
    w.port().check().unwrap();
});
