//! The whole dataplane pipeline on in-memory rings: classify → flow table /
//! Maglev → MAC rewrite → TX, control queues, the local share, and frame
//! accounting.

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use proxyha::balance::{health, maglev};
use proxyha::dataplane::classify::build::{self, ACK, FIN, SYN};
use proxyha::dataplane::classify::{DropReason, Filter, virtual_mac};
use proxyha::dataplane::mem::{self, MemPort};
use proxyha::dataplane::port::Port;
use proxyha::dataplane::redirect::MemorySink;
use proxyha::dataplane::stats::{Latency, Stats};
use proxyha::dataplane::worker::{self, Polling, Worker};
use proxyha::dataplane::{ControlKind, Queues, Shared};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);
const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x64];
const VRID: u8 = 51;
const M: u32 = 4099;

fn node_mac(slot: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x10, slot as u8]
}

fn slot_of_mac(mac: &[u8]) -> usize {
    assert_eq!(
        &mac[..5],
        &[0x02, 0, 0, 0, 0x10],
        "not a node MAC: {mac:02x?}"
    );
    usize::from(mac[5])
}

struct Lab {
    shared: Shared,
    queues: Queues,
    worker: Worker<MemPort, MemorySink>,
}

/// A worker on an in-memory port with an empty flow table.
fn new_worker(port: mem::Config, shared: &Shared, queues: &Queues) -> Worker<MemPort, MemorySink> {
    let cfg = worker::Config {
        flow_capacity: 1 << 16,
        polling: Polling::Busy,
        ..worker::Config::default()
    };
    Worker::new(
        MemPort::new(port),
        MemorySink::new(0),
        cfg,
        shared,
        queues.clone(),
        Arc::new(Stats::new()),
    )
}

impl Lab {
    /// A lab with `n` nodes up and Maglev built over them.
    fn with_up_nodes(n: usize) -> Lab {
        let lab = Lab::default();
        for s in 0..n {
            lab.set_node(s, health::State::Up);
        }
        lab.rebuild();
        lab
    }

    fn new(port: mem::Config, local_slot: Option<u16>, control_capacity: usize) -> Lab {
        let filter = Filter::new(VRID, OUR_MAC)
            .with_vip(VIP)
            .with_ports([9090])
            .with_local_slot(local_slot);
        let shared = Shared::new(filter, M).unwrap();
        let queues = Queues::new(control_capacity);
        let worker = new_worker(port, &shared, &queues);
        Lab {
            shared,
            queues,
            worker,
        }
    }

    fn default() -> Lab {
        Lab::new(mem::Config::default(), None, 64)
    }

    fn set_node(&self, slot: usize, state: health::State) {
        self.shared
            .health
            .set(
                slot,
                health::NodeInfo {
                    id: 5000 + slot as u64,
                    mac: node_mac(slot),
                    ip: Ipv4Addr::new(198, 18, 0, 10 + slot as u8),
                    state,
                    weight: 100,
                    connections: 0,
                },
            )
            .unwrap();
    }

    fn rebuild(&self) {
        let b = maglev::backends_from_health(&self.shared.health);
        self.shared.maglev.rebuild_if_changed(&b, M).unwrap();
    }

    /// Injects `frames`, runs the worker until RX is empty, returns TX.
    fn run(&mut self, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for chunk in frames.chunks(256) {
            for f in chunk {
                assert!(self.worker.port_mut().inject(f));
            }
            while self.worker.port().rx_pending() > 0 {
                self.worker.poll();
            }
            out.extend(self.worker.port_mut().take_tx());
        }
        out
    }

    fn stats(&self) -> proxyha::dataplane::stats::Snapshot {
        self.worker.stats().snapshot()
    }
}

fn client(i: u32) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::from(0xc612_0000 | (i % 60_000 + 256)),
        1024 + (i % 50_000) as u16,
    )
}

fn tcp(i: u32, flags: u8) -> Vec<u8> {
    let (ip, port) = client(i);
    build::tcp(
        virtual_mac(VRID),
        CLIENT_MAC,
        None,
        ip,
        port,
        VIP,
        9090,
        flags,
        if flags & SYN == 0 { b"data" } else { b"" },
    )
}

#[test]
fn every_frame_kind_is_classified_and_routed() {
    let mut lab = Lab::default();
    lab.set_node(0, health::State::Up);
    lab.rebuild();
    let client_ip = Ipv4Addr::new(198, 18, 0, 100);
    let proxy = tcp(1, SYN);
    let vrrp = build::vrrp_advert(CLIENT_MAC, client_ip, VRID, 99, VIP);
    let heartbeat = build::ipv4(
        [0xff; 6],
        CLIENT_MAC,
        None,
        client_ip,
        Ipv4Addr::new(198, 18, 0, 255),
        253,
        &[0x50; 48],
    );
    let arp = build::arp_request(CLIENT_MAC, client_ip, VIP);
    let pass = build::tcp(
        OUR_MAC,
        CLIENT_MAC,
        None,
        client_ip,
        5555,
        client_ip,
        22,
        SYN,
        &[],
    );
    let runt = vec![0u8; 10];
    let mut bad_ip = proxy.clone();
    bad_ip[14] = 0x41;
    let vlan = build::tcp(
        virtual_mac(VRID),
        CLIENT_MAC,
        Some(100),
        client_ip,
        7777,
        VIP,
        9090,
        SYN,
        &[],
    );
    let tx = lab.run(&[
        proxy.clone(),
        vrrp.clone(),
        heartbeat.clone(),
        arp.clone(),
        pass.clone(),
        runt,
        bad_ip,
        vlan,
    ]);
    assert_eq!(
        tx.len(),
        2,
        "the two balanced frames (plain and VLAN) go out"
    );
    assert!(tx.iter().all(|f| slot_of_mac(&f[..6]) == 0));
    let s = lab.stats();
    assert_eq!(s.rx_frames, 8);
    assert_eq!(s.tx_frames, 2);
    assert_eq!((s.rx_vrrp, s.rx_heartbeat, s.rx_arp), (1, 1, 1));
    assert_eq!(s.passed, 1);
    assert_eq!(s.drops.get(DropReason::Runt.name()), Some(&1));
    assert_eq!(s.drops.get(DropReason::BadIpv4Header.name()), Some(&1));
    assert_eq!(s.tx_redirected.get(&0), Some(&2));
    let adverts: Vec<_> = std::iter::from_fn(|| lab.queues.vrrp_to_control.pop()).collect();
    assert_eq!(adverts.len(), 1, "VRRP has its own queue");
    assert_eq!(
        (adverts[0].kind, &adverts[0].data),
        (ControlKind::Vrrp, &vrrp)
    );
    let got: Vec<_> = std::iter::from_fn(|| lab.queues.to_control.pop()).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(
        (got[0].kind, &got[0].data),
        (ControlKind::Heartbeat, &heartbeat)
    );
    assert_eq!((got[1].kind, &got[1].data), (ControlKind::Arp, &arp));
    lab.worker.port_mut().reclaim();
    lab.worker.port().check().unwrap();
}

#[test]
fn mac_rewrite_leaves_the_ip_packet_byte_identical() {
    let mut lab = Lab::with_up_nodes(3);
    let frames: Vec<Vec<u8>> = (0..300)
        .map(|i| tcp(i, if i % 2 == 0 { SYN } else { ACK }))
        .collect();
    let tx = lab.run(&frames);
    assert_eq!(tx.len(), frames.len());
    let mut per_node = [0; 3];
    for (orig, out) in frames.iter().zip(&tx) {
        assert_eq!(out.len(), orig.len());
        per_node[slot_of_mac(&out[..6])] += 1;
        assert_eq!(&out[6..12], &OUR_MAC, "source MAC is ours");
        assert_eq!(&out[12..], &orig[12..], "EtherType and IP packet unchanged");
    }
    assert!(per_node.iter().all(|&n| n > 50), "{per_node:?}");
}

#[test]
fn flows_stick_to_their_node_while_nodes_join() {
    let mut lab = Lab::with_up_nodes(3);
    let n = 3000;
    let syns: Vec<_> = (0..n).map(|i| tcp(i, SYN)).collect();
    let first = lab.run(&syns);
    let acks: Vec<_> = (0..n).map(|i| tcp(i, ACK)).collect();
    lab.run(&acks);
    // Two nodes join; Maglev is rebuilt and would move some of these flows.
    lab.set_node(3, health::State::Up);
    lab.set_node(4, health::State::Up);
    lab.rebuild();
    let table = lab.shared.maglev.load();
    let data: Vec<_> = (0..n).map(|i| tcp(i, ACK)).collect();
    let later = lab.run(&data);
    let mut would_move = 0;
    for (i, (a, b)) in first.iter().zip(&later).enumerate() {
        assert_eq!(&a[..6], &b[..6], "flow {i} changed node");
        let (ip, port) = client(i as u32);
        let key = proxyha::balance::flow::Key {
            src: u32::from(ip),
            dst: u32::from(VIP),
            sport: port,
            dport: 9090,
            proto: 6,
            v6: false,
        };
        if table.lookup(key.hash()) != Some(slot_of_mac(&a[..6]) as u16) {
            would_move += 1;
        }
    }
    assert!(
        would_move > n / 5,
        "the test must exercise moved Maglev entries ({would_move})"
    );
    // New flows use the new nodes too.
    let fresh: Vec<_> = (n..n + 2000).map(|i| tcp(i, SYN)).collect();
    let mut per_node = [0; 5];
    for f in lab.run(&fresh) {
        per_node[slot_of_mac(&f[..6])] += 1;
    }
    assert!(per_node.iter().all(|&c| c > 200), "{per_node:?}");
    assert_eq!(lab.stats().flow_moved, 0);
}

#[test]
fn only_a_dead_nodes_flows_move() {
    for rebuild_first in [true, false] {
        let mut lab = Lab::default();
        for s in 0..4 {
            lab.set_node(s, health::State::Up);
        }
        lab.rebuild();
        let n = 4000;
        let syns: Vec<_> = (0..n).map(|i| tcp(i, SYN)).collect();
        let before = lab.run(&syns);
        lab.set_node(2, health::State::Failed);
        if rebuild_first {
            lab.rebuild();
        }
        // Without a rebuild, the stale table still names node 2; the worker
        // must not send there.
        let acks: Vec<_> = (0..n).map(|i| tcp(i, ACK)).collect();
        let after = lab.run(&acks);
        assert_eq!(after.len(), n as usize);
        let mut moved = 0;
        for (a, b) in before.iter().zip(&after) {
            let (sa, sb) = (slot_of_mac(&a[..6]), slot_of_mac(&b[..6]));
            assert_ne!(sb, 2, "nothing goes to the dead node");
            if sa == 2 {
                moved += 1;
            } else {
                assert_eq!(sa, sb, "a surviving node's flow moved");
            }
        }
        assert!(moved > n / 8, "node 2 had a share ({moved})");
        assert_eq!(lab.stats().flow_moved, moved as u64);
        // It comes back: its old flows stay where they moved to.
        lab.set_node(2, health::State::Up);
        lab.rebuild();
        let again = lab.run(&acks);
        for (b, c) in after.iter().zip(&again) {
            assert_eq!(&b[..6], &c[..6]);
        }
    }
}

#[test]
fn draining_node_keeps_flows_but_takes_no_new_ones() {
    let mut lab = Lab::with_up_nodes(2);
    let before = lab.run(&(0..500).map(|i| tcp(i, SYN)).collect::<Vec<_>>());
    lab.set_node(1, health::State::Draining);
    lab.rebuild();
    let after = lab.run(&(0..500).map(|i| tcp(i, ACK)).collect::<Vec<_>>());
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(&a[..6], &b[..6]);
    }
    let fresh = lab.run(&(500..1000).map(|i| tcp(i, SYN)).collect::<Vec<_>>());
    assert!(fresh.iter().all(|f| slot_of_mac(&f[..6]) == 0));
}

/// A STALE node is held: in the health table as Draining but with its
/// weight, so Maglev keeps its share. A director that never saw its flows
/// (a fresh worker, as after a takeover) still sends their mid-stream
/// packets to it, and sends new connections elsewhere.
#[test]
fn held_node_keeps_its_flows_on_a_director_that_never_saw_them() {
    let mut lab = Lab::with_up_nodes(2);
    let before = lab.run(&(0..500).map(|i| tcp(i, SYN)).collect::<Vec<_>>());
    assert!(before.iter().any(|f| slot_of_mac(&f[..6]) == 1));
    lab.set_node(1, health::State::Draining);
    lab.rebuild();
    // A fresh worker: empty flow table.
    lab.worker = new_worker(mem::Config::default(), &lab.shared, &lab.queues);
    let after = lab.run(&(0..500).map(|i| tcp(i, ACK)).collect::<Vec<_>>());
    assert_eq!(after.len(), 500);
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(&a[..6], &b[..6], "mid-stream packets keep their node");
    }
    let fresh = lab.run(&(500..1000).map(|i| tcp(i, SYN)).collect::<Vec<_>>());
    assert_eq!(fresh.len(), 500);
    assert!(
        fresh.iter().all(|f| slot_of_mac(&f[..6]) == 0),
        "no new connection goes to a held node"
    );
}

#[test]
fn own_share_goes_to_the_local_sink_unchanged() {
    let mut lab = Lab::new(mem::Config::default(), Some(1), 64);
    lab.worker.sink_mut().limit = 10_000;
    for s in 0..2 {
        lab.set_node(s, health::State::Up);
    }
    lab.rebuild();
    let frames: Vec<_> = (0..400).map(|i| tcp(i, SYN)).collect();
    let tx = lab.run(&frames);
    let local = lab.worker.sink().frames.clone();
    assert_eq!(tx.len() + local.len(), 400);
    assert!(local.len() > 100 && tx.len() > 100);
    for f in &local {
        assert!(frames.contains(f), "local frames are delivered unchanged");
    }
    let s = lab.stats();
    assert_eq!(s.tx_local, local.len() as u64);
    assert_eq!(s.tx_redirected.get(&0), Some(&(tx.len() as u64)));
    lab.worker.port_mut().reclaim();
    lab.worker.port().check().unwrap();
}

#[test]
fn no_backend_is_a_counted_drop() {
    let mut lab = Lab::default();
    let tx = lab.run(&[tcp(1, SYN), tcp(2, ACK)]);
    assert!(tx.is_empty());
    assert_eq!(lab.stats().drops.get("drop_no_backend"), Some(&2));
    lab.worker.port().check().unwrap();
}

#[test]
fn control_plane_frames_go_out_through_tx() {
    let mut lab = Lab::default();
    let advert = build::vrrp_advert(OUR_MAC, Ipv4Addr::new(198, 18, 0, 1), VRID, 99, VIP);
    lab.queues.from_control.push(advert.clone()).unwrap();
    lab.queues.from_control.push(vec![0; 100_000]).unwrap();
    assert_eq!(lab.worker.poll(), 2);
    let tx = lab.worker.port_mut().take_tx();
    assert_eq!(tx, vec![advert]);
    let s = lab.stats();
    assert_eq!((s.tx_control, s.tx_control_dropped), (1, 1));
    lab.worker.port_mut().reclaim();
    lab.worker.port().check().unwrap();
}

#[test]
fn full_control_queue_never_blocks_and_counts() {
    let mut lab = Lab::new(mem::Config::default(), None, 2);
    let arp = build::arp_request(CLIENT_MAC, Ipv4Addr::new(198, 18, 0, 2), VIP);
    lab.run(&vec![arp; 5]);
    let s = lab.stats();
    assert_eq!((s.rx_arp, s.control_queue_full), (2, 3));
    let vrrp = build::vrrp_advert(CLIENT_MAC, Ipv4Addr::new(198, 18, 0, 2), VRID, 89, VIP);
    let n = proxyha::dataplane::shared::VRRP_QUEUE;
    lab.run(&vec![vrrp; n + 3]);
    let s = lab.stats();
    assert_eq!((s.rx_vrrp, s.vrrp_queue_full), (n as u64, 3));
    lab.worker.port().check().unwrap();
}

/// A heartbeat and ARP flood fills only the shared control queue: every
/// VRRP advert in the middle of it still reaches the control plane, in its
/// own queue.
#[test]
fn heartbeat_flood_never_drops_a_vrrp_advert() {
    let mut lab = Lab::new(mem::Config::default(), None, 16);
    let src = Ipv4Addr::new(198, 18, 0, 66);
    let mut frames = Vec::new();
    for i in 0..20_000u32 {
        if i % 1000 == 0 {
            frames.push(build::vrrp_advert(CLIENT_MAC, src, VRID, 99, VIP));
        }
        frames.push(if i % 2 == 0 {
            build::ipv4(
                [0xff; 6],
                CLIENT_MAC,
                None,
                src,
                Ipv4Addr::new(198, 18, 0, 255),
                253,
                &[0x50; 80],
            )
        } else {
            build::arp_request(CLIENT_MAC, src, VIP)
        });
    }
    lab.run(&frames);
    let s = lab.stats();
    assert_eq!(s.rx_vrrp, 20, "every advert queued");
    assert_eq!(s.vrrp_queue_full, 0);
    assert_eq!(s.rx_heartbeat + s.rx_arp, 16);
    assert_eq!(s.control_queue_full, 20_000 - 16);
    let adverts = std::iter::from_fn(|| lab.queues.vrrp_to_control.pop()).count();
    assert_eq!(adverts, 20);
    lab.worker.port().check().unwrap();
}

#[test]
fn adaptive_polling_sleeps_and_stops() {
    let filter = Filter::new(VRID, OUR_MAC).with_vip(VIP).with_ports([9090]);
    let shared = Shared::new(filter, M).unwrap();
    let stats = Arc::new(Stats::new());
    let cfg = worker::Config {
        flow_capacity: 1024,
        polling: Polling::Adaptive {
            idle_polls: 16,
            wait: Duration::from_millis(1),
        },
        ..worker::Config::default()
    };
    let mut port = MemPort::new(mem::Config::default());
    port.inject(&tcp(1, SYN));
    let mut w = Worker::new(
        port,
        MemorySink::new(0),
        cfg,
        &shared,
        Queues::new(8),
        stats.clone(),
    );
    let stop = shared.stop.clone();
    let t = std::thread::spawn(move || {
        w.run();
        w
    });
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let w = t.join().unwrap();
    let s = stats.snapshot();
    assert_eq!(s.rx_frames, 1);
    assert!(s.idle_waits > 0);
    assert_eq!(w.port().waits, s.idle_waits);
    let mut lat = Latency::default();
    lat.collect(&stats);
    assert_eq!(
        lat.summary().batches,
        1,
        "the last histogram is handed over on stop"
    );
    w.port().check().unwrap();
}

/// A million frames of every kind, with a tiny TX ring and a tiny control
/// queue so that the refusal paths run too: afterwards every frame is back.
#[test]
fn no_frame_leaks_after_a_million_frames() {
    let port = mem::Config {
        frames: 512,
        frame_size: 2048,
        ring_size: 128,
    };
    let mut lab = Lab::new(port, Some(3), 4);
    for s in 0..4 {
        lab.set_node(s, health::State::Up);
    }
    lab.rebuild();
    let client_ip = Ipv4Addr::new(198, 18, 0, 100);
    let extra = [
        build::vrrp_advert(CLIENT_MAC, client_ip, VRID, 99, VIP),
        build::arp_request(CLIENT_MAC, client_ip, VIP),
        vec![0u8; 9],
        build::tcp(
            OUR_MAC,
            CLIENT_MAC,
            None,
            client_ip,
            1,
            client_ip,
            22,
            ACK,
            &[],
        ),
    ];
    let mut injected = 0u64;
    let mut transmitted = 0u64;
    let mut counts: HashMap<usize, u64> = HashMap::new();
    let mut i = 0u32;
    while injected < 1_000_000 {
        // Inject more than the TX ring holds, and drain TX only every other
        // round, so the ring fills and refusals happen.
        for _ in 0..192 {
            let f = match i % 50 {
                0 => extra[(i / 50) as usize % extra.len()].clone(),
                1 => tcp(i % 20_000, FIN | ACK),
                k if k < 10 => tcp(i % 20_000, SYN),
                _ => tcp(i % 20_000, ACK),
            };
            i += 1;
            if lab.worker.port_mut().inject(&f) {
                injected += 1;
            }
        }
        while lab.worker.port().rx_pending() > 0 {
            lab.worker.poll();
        }
        if i.is_multiple_of(384) {
            transmitted += lab.worker.port_mut().drain_tx(|f| {
                // Control frames (multicast adverts) go out too.
                if f[0] & 1 == 0 {
                    *counts.entry(slot_of_mac(&f[..6])).or_default() += 1;
                }
            }) as u64;
        }
        if i % 10_000 < 192 {
            // The node set changes now and then.
            let state = if (i / 10_000).is_multiple_of(2) {
                health::State::Failed
            } else {
                health::State::Up
            };
            lab.set_node(1, state);
            lab.rebuild();
        }
        // The VRRP queue is never read here (it fills), the shared one
        // only in one round of four (it fills too).
        if i % 768 < 192 {
            let _ = lab.queues.to_control.pop();
        }
        if i % 1000 < 192 {
            let _ = lab.queues.from_control.push(extra[0].clone());
        }
    }
    transmitted += lab.worker.port_mut().drain_tx(|_| {}) as u64;
    lab.worker.poll();
    transmitted += lab.worker.port_mut().drain_tx(|_| {}) as u64;
    lab.worker.port_mut().reclaim();
    lab.worker.port().check().unwrap();
    let acc = lab.worker.port().accounting();
    assert_eq!(acc.total(), 512);
    let s = lab.stats();
    assert_eq!(s.rx_frames, injected);
    assert!(s.ring_full > 0, "the TX-full path ran");
    assert!(s.control_queue_full > 0, "the control-queue-full path ran");
    assert!(s.vrrp_queue_full > 0, "the VRRP-queue-full path ran");
    assert!(s.tx_local > 0 && s.tx_control > 0);
    assert_eq!(s.tx_frames, transmitted);
    assert!(
        !counts.contains_key(&3),
        "the local share is never transmitted"
    );
}

/// A node's direct reply, VIP:9090 → client `i`, as an ICMP error quotes it.
fn reply_of(i: u32) -> Vec<u8> {
    let (ip, port) = client(i);
    build::tcp(
        CLIENT_MAC,
        node_mac(0),
        None,
        VIP,
        9090,
        ip,
        port,
        ACK,
        b"data",
    )[14..]
        .to_vec()
}

fn icmp_about(i: u32, kind: u8, code: u8) -> Vec<u8> {
    build::icmp_error(
        virtual_mac(VRID),
        CLIENT_MAC,
        Ipv4Addr::new(198, 18, 1, 254),
        VIP,
        kind,
        code,
        1280,
        &reply_of(i),
    )
}

/// ICMP "fragmentation needed" (and time exceeded) about a flow goes to the
/// node that owns the flow, even after a Maglev rebuild that would send a
/// new flow with that tuple elsewhere; about an unknown flow, to Maglev's
/// choice (where the flow would be). Nothing reaches the local stack.
#[test]
fn icmp_error_quoting_a_flow_goes_to_the_flows_node() {
    let mut lab = Lab::with_up_nodes(3);
    let mut owner = HashMap::new();
    for i in 0..300 {
        let tx = lab.run(&[tcp(i, SYN), tcp(i, ACK)]);
        owner.insert(i, slot_of_mac(&tx[0][..6]));
    }
    // A new node: Maglev moves about a quarter of the tuples.
    lab.set_node(3, health::State::Up);
    lab.rebuild();
    let icmp: Vec<_> = (0..300).map(|i| icmp_about(i, 3, 4)).collect();
    let tx = lab.run(&icmp);
    assert_eq!(tx.len(), 300);
    for (i, f) in tx.iter().enumerate() {
        assert_eq!(slot_of_mac(&f[..6]), owner[&(i as u32)], "flow {i}");
        assert_eq!(&f[6..12], &OUR_MAC);
        assert_eq!(&f[12..], &icmp[i][12..], "only the MACs change");
    }
    let tx = lab.run(&[icmp_about(1, 11, 0)]);
    assert_eq!(slot_of_mac(&tx[0][..6]), owner[&1], "time exceeded");
    // Unknown flows: Maglev's choice, the node a new flow would get.
    for i in 1000..1010 {
        let to_icmp = slot_of_mac(&lab.run(&[icmp_about(i, 3, 4)])[0][..6]);
        let to_syn = slot_of_mac(&lab.run(&[tcp(i, SYN)])[0][..6]);
        assert_eq!(to_icmp, to_syn);
    }
    let s = lab.stats();
    assert_eq!(s.icmp_steered, 311);
    assert_eq!(s.passed + s.tx_local, 0, "nothing for the local stack");
    lab.worker.port_mut().reclaim();
    lab.worker.port().check().unwrap();
}

/// Fragments of a datagram to the VIP: the first goes to the flow's node by
/// its ports, the later ones follow it; a later fragment whose first was
/// not seen is counted and dropped, never given to the local stack; the
/// fragments of a datagram to another port go to the local stack together.
#[test]
fn fragments_follow_the_first_and_unmatched_ones_are_dropped() {
    let mut lab = Lab::with_up_nodes(4);
    let mut seen = std::collections::HashSet::new();
    for i in 0..200u32 {
        let whole = build::tcp(
            virtual_mac(VRID),
            CLIENT_MAC,
            None,
            client(i).0,
            client(i).1,
            VIP,
            9090,
            ACK,
            &[7; 64],
        );
        let id = 1000 + i as u16;
        let tx = lab.run(&[
            build::fragment(whole.clone(), id, true, 0),
            build::fragment(whole.clone(), id, true, 5),
            build::fragment(whole, id, false, 10),
        ]);
        assert_eq!(tx.len(), 3, "datagram {i}");
        let first = slot_of_mac(&tx[0][..6]);
        assert!(tx.iter().all(|f| slot_of_mac(&f[..6]) == first));
        // The flow's own packets go to the same node.
        let again = lab.run(&[tcp(i, ACK)]);
        assert_eq!(slot_of_mac(&again[0][..6]), first);
        seen.insert(first);
    }
    assert!(seen.len() > 1, "datagrams spread over the nodes");
    // A later fragment with no first: counted, dropped.
    let whole = tcp(5000, ACK);
    let tx = lab.run(&[
        build::fragment(whole.clone(), 9, true, 5),
        build::fragment(whole.clone(), 9, false, 10),
    ]);
    assert!(tx.is_empty());
    // Another port: the local stack reassembles it.
    let (ip, port) = client(7);
    let other = build::tcp(
        virtual_mac(VRID),
        CLIENT_MAC,
        None,
        ip,
        port,
        VIP,
        22,
        ACK,
        &[1; 64],
    );
    let tx = lab.run(&[
        build::fragment(other.clone(), 77, true, 0),
        build::fragment(other, 77, false, 5),
    ]);
    assert!(tx.is_empty());
    let s = lab.stats();
    assert_eq!(s.frag_steered, 600);
    assert_eq!(s.drops.get(DropReason::FragUnmatched.name()), Some(&2));
    assert_eq!(
        s.passed, 2,
        "only the other port's fragments reach the local stack"
    );
    assert_eq!(lab.worker.sink().delivered, 2);
    lab.worker.port_mut().reclaim();
    lab.worker.port().check().unwrap();
}

/// A flood of a million spoofed ACKs from distinct sources cannot crowd
/// out real flows: the real established flows are all still tracked
/// afterwards, new real connections after the flood are tracked too, and
/// both stay on their node across a Maglev rebuild that moves about a
/// fifth of all tuples.
#[test]
fn spoofed_ack_flood_leaves_real_flows_tracked_across_a_rebuild() {
    let mut lab = Lab::with_up_nodes(4);
    let slots = lab.worker.flows().slots();
    let mut owner = HashMap::new();
    let mut connect = |lab: &mut Lab, range: std::ops::Range<u32>| {
        for i in range {
            let tx = lab.run(&[tcp(i, SYN), tcp(i, ACK)]);
            assert_eq!(tx.len(), 2);
            owner.insert(i, slot_of_mac(&tx[0][..6]));
        }
    };
    connect(&mut lab, 0..2000);
    let flood_src = |i: u32| Ipv4Addr::from(0xc613_0000 | (i & 0xffff));
    let mut sent = 0u32;
    while sent < 1_000_000 {
        let batch: Vec<_> = (sent..sent + 4096)
            .map(|i| {
                build::tcp(
                    virtual_mac(VRID),
                    [0x02, 0, 0, 0, 0, 0x66],
                    None,
                    flood_src(i),
                    1024 + (i >> 16) as u16,
                    VIP,
                    9090,
                    ACK,
                    b"x",
                )
            })
            .collect();
        lab.run(&batch);
        sent += 4096;
    }
    let flood = lab.stats();
    assert!(
        flood.flow_probation as usize >= slots / 2,
        "the flood filled the table"
    );
    assert!(lab.worker.flows().len() > slots * 9 / 10);
    // New real connections after the flood.
    connect(&mut lab, 2000..4000);
    // A fifth node joins: Maglev moves about 1/5 of all tuples.
    lab.set_node(4, health::State::Up);
    lab.rebuild();
    let before = lab.stats();
    for i in 0..4000 {
        let tx = lab.run(&[tcp(i, ACK)]);
        assert_eq!(slot_of_mac(&tx[0][..6]), owner[&i], "flow {i} moved");
    }
    let d = lab.stats().delta(&before);
    assert_eq!(d.flow_hits, 4000, "every real flow still tracked");
    assert_eq!(d.flow_misses + d.flow_untracked + d.flow_moved, 0);
    lab.worker.port_mut().reclaim();
    lab.worker.port().check().unwrap();
}

/// The XDP fast path's install rule (docs/dataplane.md): a flow is
/// installed only once a packet leaves it established, never by a SYN flood
/// or lone spoofed ACKs; the own share only where the fast path delivers it.
#[test]
fn only_established_flows_are_offloaded() {
    use proxyha::dataplane::offload::{Recorder, Settings};
    let mut lab = Lab::new(mem::Config::default(), Some(1), 64);
    lab.worker.sink_mut().limit = 100_000;
    for s in 0..3 {
        lab.set_node(s, health::State::Up);
    }
    lab.rebuild();
    let rec = Recorder::default();
    lab.worker.set_offload(Settings {
        to: Box::new(rec.clone()),
        local: false,
    });
    // A SYN flood, then one spoofed ACK per tuple: nothing installed.
    lab.run(&(0..2000).map(|i| tcp(i, SYN)).collect::<Vec<_>>());
    lab.run(&(5000..7000).map(|i| tcp(i, ACK)).collect::<Vec<_>>());
    assert!(rec.installed().is_empty(), "{:?}", &rec.installed()[..3]);
    assert_eq!(lab.stats().offload_installs, 0);
    // The ACK after its SYN establishes: installed with the flow's target,
    // the own share's flows (slot 1) excepted.
    let tx = lab.run(&(0..2000).map(|i| tcp(i, ACK)).collect::<Vec<_>>());
    let got = rec.installed();
    assert_eq!(got.len(), tx.len(), "one install per forwarded ACK");
    assert!(got.len() > 1000 && got.len() < 2000, "{}", got.len());
    for (k, t) in &got {
        assert_ne!(t.slot, 1, "the own share stays with the worker");
        let n = lab.shared.health.get(usize::from(t.slot)).unwrap();
        assert_eq!(t.generation, n.generation as u16);
        assert_eq!(t.mac, health::mac_to_u64(n.mac));
        assert_eq!(k.dport, 9090);
        assert_eq!(k.dst, u32::from(VIP));
    }
    let batches = *rec.batches.lock().unwrap();
    assert!(batches < got.len() / 8, "batched: {batches} calls");
    // A second spoofed ACK of the same tuple confirms it (probation rule).
    lab.run(&(5000..5010).map(|i| tcp(i, ACK)).collect::<Vec<_>>());
    let n = rec.installed().len();
    assert!(
        n > got.len(),
        "mid-stream flows install at their second packet"
    );
    // FINs never install; with `local`, the own share is installed too.
    lab.run(&(0..100).map(|i| tcp(i, FIN | ACK)).collect::<Vec<_>>());
    assert_eq!(rec.installed().len(), n);
    let rec2 = Recorder::default();
    lab.worker.set_offload(Settings {
        to: Box::new(rec2.clone()),
        local: true,
    });
    lab.run(&(1000..2000).map(|i| tcp(i, ACK)).collect::<Vec<_>>());
    assert_eq!(rec2.installed().len(), 1000);
    assert!(rec2.installed().iter().any(|(_, t)| t.slot == 1));
    assert_eq!(lab.stats().offload_errors, 0);
}

/// IPv6 flows are installed into the XDP fast path like IPv4 ones, under
/// the key the program computes: folded addresses and the IPv6 family.
#[test]
fn ipv6_flows_are_offloaded_under_their_folded_keys() {
    use proxyha::dataplane::offload::{Recorder, Settings};
    use std::net::SocketAddrV6;
    let vip6: std::net::Ipv6Addr = "2001:2::250".parse().unwrap();
    let mut lab = Lab::default();
    for s in 0..3 {
        lab.set_node(s, health::State::Up);
    }
    lab.rebuild();
    lab.shared.filter.store(Arc::new(
        Filter::new(VRID, OUR_MAC)
            .with_vip(VIP)
            .with_vip6(vip6)
            .with_ports([9090]),
    ));
    let rec = Recorder::default();
    lab.worker.set_offload(Settings {
        to: Box::new(rec.clone()),
        local: true,
    });
    let tcp6 = |i: u16, flags: u8| {
        common::frames::tcp6(
            CLIENT_MAC,
            VRID,
            SocketAddrV6::new("2001:2::100".parse().unwrap(), 1024 + i, 0, 0),
            SocketAddrV6::new(vip6, 9090, 0, 0),
            flags,
            &[],
        )
    };
    lab.run(&(0..100).map(|i| tcp6(i, SYN)).collect::<Vec<_>>());
    let before = lab.stats();
    lab.run(&(0..100).map(|i| tcp6(i, ACK)).collect::<Vec<_>>());
    lab.run(&(0..100).map(|i| tcp6(i, ACK)).collect::<Vec<_>>());
    let d = lab.stats().delta(&before);
    assert_eq!(d.flow_hits, 200, "balanced through the flow table");
    // Each flow once per ACK round (the XDP program would take the second
    // round itself), under the key the program computes: folded addresses
    // and the IPv6 family.
    let six = rec.installed();
    assert_eq!(six.len(), 200);
    for (i, (k, _)) in six.iter().take(100).enumerate() {
        let want = proxyha::dataplane::classify::ipv6_flow::key(
            "2001:2::100".parse().unwrap(),
            vip6,
            1024 + i as u16,
            9090,
            6,
        );
        assert_eq!(*k, want);
        assert!(k.v6);
    }
    // IPv4 flows of the same worker are installed as IPv4.
    lab.run(&(0..10).map(|i| tcp(i, SYN)).collect::<Vec<_>>());
    lab.run(&(0..10).map(|i| tcp(i, ACK)).collect::<Vec<_>>());
    let all = rec.installed();
    assert_eq!(all.len(), 210);
    assert!(all[200..].iter().all(|(k, _)| !k.v6));
}
