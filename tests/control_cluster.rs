//! Three control planes (director-a 99, director-b 89, scanner-c 0) on a
//! simulated broadcast segment with a virtual clock: no root, no sockets.
//! Checks the election, discovery, and that both directors build the very
//! same Maglev table (by node id), which is what keeps established flows on
//! their node across a takeover.

use std::time::{Duration, Instant};

use proxyha::balance::health;
use proxyha::control::Plane;
use proxyha::dataplane::classify::Filter;
use proxyha::dataplane::{ControlKind, Shared};
use proxyha::heartbeat::{LocalHealth, Ports};
use proxyha::wire::arp;
use proxyha::wire::ethernet::Address;

fn config(name: &str, ip: &str, priority: u8, extra: &str) -> proxyha::config::Config {
    let text = format!(
        r#"
[node]
name = "{name}"
management_ip = "{ip}"
priority = {priority}
lbid = 10
[vrrp]
interface = "eth0"
vrid = 51
[[virtual_ip]]
address = "198.18.0.250/24"
[[port_redirect]]
original_ports = "9090"
proxy_port = 9090
[heartbeat]
insecure = true
{extra}
"#
    );
    proxyha::config::parse("sim.toml", &text, std::path::Path::new(".")).unwrap()
}

struct Node {
    plane: Plane,
    shared: Shared,
    up: bool,
}

struct Segment {
    t0: Instant,
    now: Instant,
    nodes: Vec<Node>,
    /// ARP frames each node transmitted (gratuitous ARP, replies).
    arp_sent: Vec<usize>,
}

/// Which control kind a worker would have queued this frame as.
fn kind(frame: &[u8]) -> Option<ControlKind> {
    match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0806 => Some(ControlKind::Arp),
        0x0800 => match frame[23] {
            112 => Some(ControlKind::Vrrp),
            253 => Some(ControlKind::Heartbeat),
            _ => None,
        },
        _ => None,
    }
}

impl Segment {
    fn new() -> Segment {
        Segment::with("")
    }

    /// A segment whose nodes' configs end with `extra` (e.g. a `[cluster]`).
    fn with(extra: &str) -> Segment {
        let t0 = Instant::now();
        let mut nodes = Vec::new();
        for (i, (name, ip, prio)) in [
            ("director-a", "198.18.0.1", 99),
            ("director-b", "198.18.0.2", 89),
            ("scanner-c", "198.18.0.3", 0),
        ]
        .into_iter()
        .enumerate()
        {
            let mac = [2, 0, 0, 0, 0, i as u8 + 1];
            let shared = Shared::new(Filter::new(51, mac), 65537).unwrap();
            let mut plane = Plane::new(
                config(name, ip, prio, extra),
                mac,
                shared.clone(),
                t0,
                1_764_140_400_000,
            )
            .unwrap();
            plane.start(t0);
            nodes.push(Node {
                plane,
                shared,
                up: true,
            });
        }
        Segment {
            t0,
            now: t0,
            arp_sent: vec![0; nodes.len()],
            nodes,
        }
    }

    /// Advances the clock to `ms` after start in 5 ms steps, delivering every
    /// transmitted frame to every other live node (ARP only to directors).
    fn run_until(&mut self, ms: u64) {
        let end = self.t0 + Duration::from_millis(ms);
        while self.now < end {
            self.now += Duration::from_millis(5);
            let now = self.now;
            // The probe thread's report, once a second: the proxy answers.
            let probe = (now - self.t0).as_millis().is_multiple_of(1000);
            for n in self.nodes.iter_mut().filter(|n| n.up) {
                if probe {
                    n.plane.set_local_health(
                        now,
                        LocalHealth {
                            ports: Ports::from_results(&[true]),
                            ..LocalHealth::default()
                        },
                    );
                }
                n.plane.handle_timeout(now);
            }
            loop {
                let mut frames = Vec::new();
                for (i, n) in self.nodes.iter_mut().enumerate() {
                    while let Some(f) = n.plane.poll_transmit() {
                        if n.up {
                            frames.push((i, f));
                        }
                    }
                }
                if frames.is_empty() {
                    break;
                }
                for (from, f) in frames {
                    let Some(k) = kind(&f) else { continue };
                    if k == ControlKind::Arp {
                        self.arp_sent[from] += 1;
                    }
                    for (j, n) in self.nodes.iter_mut().enumerate() {
                        if j != from && n.up {
                            n.plane.handle_frame(now, k, &f);
                        }
                    }
                }
            }
        }
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].up && self.nodes[i].plane.is_master())
            .collect()
    }

    /// The published Maglev table as node ids, so directors whose health
    /// tables numbered the slots differently still compare equal.
    fn table_by_id(&self, i: usize) -> Vec<u64> {
        let s = &self.nodes[i].shared;
        let t = s.maglev.load();
        t.entries()
            .iter()
            .map(|&slot| {
                s.health
                    .get(usize::from(slot))
                    .filter(|n| n.state != health::State::Empty)
                    .map_or(u64::MAX, |n| n.id)
            })
            .collect()
    }
}

#[test]
fn election_discovery_and_identical_tables() {
    let mut seg = Segment::new();
    seg.run_until(3000);
    assert!(
        seg.masters().is_empty(),
        "no Master before Master_Down_Interval"
    );
    seg.run_until(4000);
    assert_eq!(seg.masters(), vec![0], "director-a (99) is Master");

    seg.run_until(8000);
    let st = seg.nodes[0].plane.status(seg.now);
    let kinds: Vec<(String, String)> = st
        .entries
        .iter()
        .map(|e| (e.device.clone(), e.kind.clone()))
        .collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    for n in ["director-b", "scanner-c"] {
        assert!(
            kinds.iter().any(|(d, _)| d == n),
            "{n} not discovered: {kinds:?}"
        );
    }
    // Every node names the Active Director, the scanning node too.
    for (i, n) in seg.nodes.iter().enumerate() {
        let st = n.plane.status(seg.now);
        assert_eq!(
            st.master_ip,
            Some("198.18.0.1".parse().unwrap()),
            "node {i}"
        );
    }
    assert_eq!(seg.nodes[2].plane.status(seg.now).vrrp_state, "scanning");

    // Both directors balance over the same 3 nodes with the same table.
    let a = seg.table_by_id(0);
    let b = seg.table_by_id(1);
    let nodes: std::collections::BTreeSet<u64> = a.iter().copied().collect();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    assert_eq!(
        a, b,
        "director-b's table differs from the Active Director's"
    );

    // Takeover: director-a dies; director-b becomes Master with the same
    // table, so established flows keep their node until the dead director
    // is declared FAILED.
    seg.nodes[0].up = false;
    seg.run_until(8000 + 3700);
    assert_eq!(seg.masters(), vec![1], "director-b took over");
    let b_after = seg.table_by_id(1);
    assert_eq!(b_after, a, "the table changed at takeover");

    // Once director-a misses 3 heartbeats it leaves; only its entries move.
    seg.run_until(8000 + 9000);
    let b_late = seg.table_by_id(1);
    let a_id = u64::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 1)));
    assert!(!b_late.contains(&a_id), "director-a still in the table");
    let moved = a
        .iter()
        .zip(&b_late)
        .filter(|(x, y)| x != y && **x != a_id)
        .count();
    assert!(
        moved * 100 <= a.len(),
        "{moved} entries of surviving nodes moved (more than 1%)"
    );
}

#[test]
fn only_the_master_answers_arp_for_the_vip() {
    let mut seg = Segment::new();
    seg.run_until(4000);
    assert!(seg.arp_sent[0] > 0, "the new Master sends gratuitous ARP");
    assert_eq!(&seg.arp_sent[1..], &[0, 0]);
    let req = arp_for_vip();
    let now = seg.now;
    for n in seg.nodes.iter_mut() {
        while n.plane.poll_transmit().is_some() {}
        n.plane.handle_frame(now, ControlKind::Arp, &req);
    }
    let replies: Vec<Vec<u8>> = seg.nodes[0].plane.poll_transmit().into_iter().collect();
    assert_eq!(replies.len(), 1, "the Master answers once");
    let eth = proxyha::wire::ethernet::Packet::new_checked(&replies[0][..]).unwrap();
    let r = arp::Repr::parse(&arp::Packet::new_checked(eth.payload()).unwrap()).unwrap();
    assert_eq!(r.operation, arp::Operation::Reply);
    assert_eq!(
        r.sender_hw,
        Address([0, 0, 0x5e, 0, 1, 51]),
        "with the virtual MAC"
    );
    assert!(
        seg.nodes[1].plane.poll_transmit().is_none(),
        "a Backup never answers"
    );
    assert!(
        seg.nodes[2].plane.poll_transmit().is_none(),
        "a scanning node never answers"
    );
}

/// A node that dies is FAILED in the health table (its flows move), then,
/// once the heartbeat protocol forgets it (`forget_after`, 300 s), its slot
/// is freed with a new generation, so no flow pinned to the slot follows it
/// to whichever node gets the slot next.
#[test]
fn a_forgotten_node_frees_its_health_slot() {
    let mut seg = Segment::new();
    seg.run_until(6000);
    let c_id = u64::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 3)));
    let slot = seg.nodes[0]
        .shared
        .health
        .find(c_id)
        .expect("scanner-c has a slot");
    let g = seg.nodes[0].shared.health.get(slot).unwrap().generation;
    seg.nodes[2].up = false;
    seg.run_until(6000 + 10_000);
    let failed = seg.nodes[0].shared.health.get(slot).unwrap();
    assert_eq!((failed.id, failed.state), (c_id, health::State::Failed));
    seg.run_until(6000 + 320_000);
    let h = &seg.nodes[0].shared.health;
    assert_eq!(h.find(c_id), None, "scanner-c still holds a slot");
    let freed = h.get(slot).unwrap();
    assert_eq!(freed.state, health::State::Empty);
    assert!(freed.generation > failed.generation && failed.generation > g);
    // The passive director frees it too.
    assert_eq!(seg.nodes[1].shared.health.find(c_id), None);
}

/// Flapping input cannot make the control plane rebuild Maglev at its own
/// rate: the Active Director's proxy port flaps every 5 ms for 2 s, the
/// health table follows at once, Maglev is rebuilt at most once per
/// `REBUILD_INTERVAL`, and the table published at the end of the window is
/// the latest membership.
#[test]
fn maglev_rebuilds_are_coalesced_under_flapping() {
    let mut seg = Segment::new();
    seg.run_until(8000);
    let a_id = u64::from(u32::from(std::net::Ipv4Addr::new(198, 18, 0, 1)));
    assert!(seg.table_by_id(0).contains(&a_id));
    let before = seg.nodes[0].plane.counters();
    let flap_ms = 2000u64;
    let start = seg.now;
    let mut up = true;
    let mut steps = 0u64;
    while seg.now < start + Duration::from_millis(flap_ms) {
        up = !up;
        steps += 1;
        let now = seg.now;
        seg.nodes[0].plane.set_local_health(
            now,
            LocalHealth {
                ports: Ports::from_results(&[up]),
                ..LocalHealth::default()
            },
        );
        let ms = (seg.now - seg.t0).as_millis() as u64 + 5;
        seg.run_until(ms);
    }
    let after = seg.nodes[0].plane.counters();
    let rebuilds = after.maglev_rebuilds - before.maglev_rebuilds;
    let coalesced = after.maglev_rebuilds_coalesced - before.maglev_rebuilds_coalesced;
    let window = proxyha::control::REBUILD_INTERVAL.as_millis() as u64;
    println!("{steps} flaps in {flap_ms} ms: {rebuilds} rebuilds, {coalesced} coalesced");
    assert!(coalesced > 0, "the flapping changed the membership");
    assert!(
        rebuilds <= flap_ms / window + 2,
        "{rebuilds} rebuilds in {flap_ms} ms"
    );
    // Stop with the port down: once the window closes the table is the
    // latest membership (without director-a), though the probe said "up"
    // to the rebuild before.
    let now = seg.now;
    seg.nodes[0].plane.set_local_health(
        now,
        LocalHealth {
            ports: Ports::from_results(&[false]),
            ..LocalHealth::default()
        },
    );
    let ms = (seg.now - seg.t0).as_millis() as u64;
    seg.run_until(ms + window + 10);
    assert!(
        !seg.table_by_id(0).contains(&a_id),
        "the last change was applied at the end of the window"
    );
}

/// Active-active (docs/active-active.md): VRRP still elects the coordinator,
/// but both directors forward, each on its own MAC, with the same table;
/// nobody holds the virtual MAC (no gratuitous ARP, no ARP replies); each
/// director treats the other members' MACs as redirects; both announce once
/// they have a membership, and not while draining or stopping.
#[test]
fn active_active_every_director_forwards_on_its_own_mac() {
    let mut seg = Segment::with("[cluster]\nmode = \"active-active\"\n");
    seg.run_until(2000);
    for i in [0, 1] {
        assert!(
            !seg.nodes[i].plane.announce(false, false),
            "node {i} announces before it has a membership"
        );
    }
    seg.run_until(8000);
    assert_eq!(seg.masters(), vec![0], "director-a coordinates");
    assert_eq!(seg.arp_sent, vec![0, 0, 0], "no gratuitous ARP");
    let macs: Vec<[u8; 6]> = (1..=3).map(|i| [2, 0, 0, 0, 0, i]).collect();
    for i in [0, 1] {
        let p = &seg.nodes[i].plane;
        let f = p.forwarding();
        assert!(f.steer && !f.virtual_mac && f.peer_macs, "node {i}: {f:?}");
        assert_eq!(
            f.dst_mac, macs[i],
            "node {i} balances what reaches its own MAC"
        );
        assert!(p.announce(false, false), "node {i} announces");
        assert!(!p.announce(true, false), "node {i} withdraws when draining");
        assert!(!p.announce(false, true), "node {i} withdraws when stopping");
        let st = p.status(seg.now);
        assert_eq!((st.mode.as_str(), st.forwarding), ("active-active", true));
        let filter = seg.nodes[i].shared.filter.load();
        assert_eq!(filter.steer_mac, macs[i]);
        let mut peers = filter.peer_macs.clone();
        peers.sort();
        let others: Vec<[u8; 6]> = macs.iter().copied().filter(|m| *m != macs[i]).collect();
        assert_eq!(peers, others, "node {i}: the other members are peers");
    }
    let sc = &seg.nodes[2].plane;
    assert!(!sc.forwarding().steer && !sc.announce(false, false));
    assert_eq!(seg.table_by_id(0), seg.table_by_id(1), "the same table");
    let fp = |i: usize| seg.nodes[i].plane.status(seg.now).maglev.unwrap();
    assert_eq!(fp(0).fingerprint, fp(1).fingerprint);
    assert_eq!(fp(0).nodes, 3);

    // Nobody answers ARP for the VIP.
    let req = arp_for_vip();
    let now = seg.now;
    for n in seg.nodes.iter_mut() {
        while n.plane.poll_transmit().is_some() {}
        n.plane.handle_frame(now, ControlKind::Arp, &req);
        assert!(n.plane.poll_transmit().is_none(), "an ARP reply");
    }

    // The coordinator dies: director-b takes over as coordinator and keeps
    // forwarding and announcing throughout.
    seg.nodes[0].up = false;
    seg.run_until(8000 + 3700);
    assert_eq!(seg.masters(), vec![1]);
    assert!(seg.nodes[1].plane.forwarding().steer);
    assert!(seg.nodes[1].plane.announce(false, false));
    assert_eq!(seg.arp_sent[1], 0, "no gratuitous ARP at takeover either");
}

/// Every event a node's plane queued so far, as `(event, subject, from, to, reason)`.
fn events(seg: &mut Segment, i: usize) -> Vec<proxyha::control::Event> {
    std::iter::from_fn(|| seg.nodes[i].plane.poll_event()).collect()
}

#[test]
fn operator_events_follow_the_election_failover_and_stop_in_order() {
    let mut seg = Segment::new();
    seg.run_until(8000);
    let a = events(&mut seg, 0);
    let vrrp = |evs: &[proxyha::control::Event]| -> Vec<(String, String, String, String)> {
        evs.iter()
            .filter(|e| e.kind != proxyha::control::event::Kind::Node)
            .map(|e| {
                (
                    e.kind.as_str().to_owned(),
                    e.from.clone(),
                    e.to.clone(),
                    e.reason.clone(),
                )
            })
            .collect()
    };
    let t = |k: &str, f: &str, to: &str, r: &str| (k.into(), f.into(), to.into(), r.into());
    assert_eq!(
        vrrp(&a),
        vec![
            t("backup", "INITIALIZE", "BACKUP", "Startup"),
            t("master", "BACKUP", "MASTER", "MasterDown"),
        ]
    );
    // Numbered 1, 2, 3, ... without gaps; every event names this node.
    for (i, e) in a.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "{a:?}");
        assert_eq!(e.node, "director-a");
        assert_eq!(e.priority, 99);
    }
    // The Active Director saw scanner-c become OK.
    assert!(
        a.iter()
            .any(|e| e.kind == proxyha::control::event::Kind::Node
                && e.subject == "scanner-c"
                && e.to == "OK"
                && e.ip == std::net::Ipv4Addr::new(198, 18, 0, 3)),
        "{a:?}"
    );
    let b = events(&mut seg, 1);
    assert_eq!(
        vrrp(&b),
        vec![t("backup", "INITIALIZE", "BACKUP", "Startup")]
    );

    // Failover: director-a dies; director-b takes over, then sees it FAILED.
    seg.nodes[0].up = false;
    seg.run_until(8000 + 9000);
    let b = events(&mut seg, 1);
    assert_eq!(
        vrrp(&b),
        vec![t("master", "BACKUP", "MASTER", "MasterDown")]
    );
    let master_at = b
        .iter()
        .position(|e| e.kind == proxyha::control::event::Kind::Master)
        .unwrap();
    let failed_at = b
        .iter()
        .position(|e| e.subject == "director-a" && e.to == "FAILED")
        .unwrap_or_else(|| panic!("director-a never FAILED: {b:?}"));
    assert!(master_at < failed_at, "{b:?}");

    // A graceful stop: `stop`, and nothing more from VRRP.
    let now = seg.now;
    seg.nodes[1].plane.shutdown(now);
    let b = events(&mut seg, 1);
    assert_eq!(vrrp(&b), vec![t("stop", "MASTER", "STOP", "signal")]);
}

#[test]
fn a_dataplane_fault_is_an_event_before_the_resignation() {
    let mut seg = Segment::new();
    seg.run_until(5000);
    assert_eq!(seg.masters(), vec![0]);
    let _ = events(&mut seg, 0);
    let now = seg.now;
    seg.nodes[0].plane.set_dataplane_healthy(now, false);
    seg.run_until(6000);
    let a: Vec<(String, String, String, String, u8)> = events(&mut seg, 0)
        .into_iter()
        .filter(|e| e.kind != proxyha::control::event::Kind::Node)
        .map(|e| {
            (
                e.kind.as_str().to_owned(),
                e.from,
                e.to,
                e.reason,
                e.priority,
            )
        })
        .collect();
    let t =
        |k: &str, f: &str, to: &str, r: &str, p: u8| (k.into(), f.into(), to.into(), r.into(), p);
    assert_eq!(
        a,
        vec![
            t("fault", "MASTER", "FAULT", "dataplane", 0),
            t("backup", "MASTER", "BACKUP", "Resigned", 0),
        ]
    );
    assert_eq!(seg.masters(), vec![1], "director-b took over");
}

/// A client's ARP request for the VIP.
fn arp_for_vip() -> Vec<u8> {
    arp::Repr {
        operation: arp::Operation::Request,
        sender_hw: Address([2, 0, 0, 0, 0, 0x64]),
        sender_ip: "198.18.0.100".parse().unwrap(),
        target_hw: Address([0; 6]),
        target_ip: "198.18.0.250".parse().unwrap(),
    }
    .to_frame(None)
}
