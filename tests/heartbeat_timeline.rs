//! Heartbeat timelines on a virtual clock: several `heartbeat::Machine`s on
//! one simulated broadcast segment (1 ms latency), driven only through the
//! public sans-IO API ("at 5250 ms expect C FAILED").

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use proxyha::heartbeat::{
    self, Config, Event, LocalHealth, Machine, Member, NodeType, Ports, Reject, State,
};
use proxyha::wire::heartbeat as wire;

const UNIX0: u64 = 1_764_140_400_000;
const KEY: &[u8] = b"group-10-secret";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, last)
}

fn mac(last: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, last]
}

fn cfg(name: &str, last: u8, priority: u8, lbid: u16, key: Option<&[u8]>) -> Config {
    let mut c = Config::new(
        lbid,
        heartbeat::node_id_from_ipv4(ip(last)),
        name,
        priority,
        ip(last),
        mac(last),
    );
    c.key = key.map(<[u8]>::to_vec);
    c
}

fn healthy(connections: u32) -> LocalHealth {
    LocalHealth {
        ports: Ports::from_results(&[true]),
        connections,
        load_permille: 0,
        draining: false,
    }
}

struct Host {
    m: Machine,
    up: bool,
    events: Vec<(Duration, Event)>,
    /// Hosts (by index) whose frames this host does not hear.
    deaf_to: Vec<usize>,
}

struct Sim {
    t0: Instant,
    now: Instant,
    hosts: Vec<Host>,
    /// (deliver at, sender index or None for injected, source, payload)
    in_flight: Vec<(Instant, Option<usize>, Ipv4Addr, Vec<u8>)>,
    /// Every frame sent, for replay attacks: (sent at, sender, payload).
    tap: Vec<(Duration, usize, wire::Kind, Vec<u8>)>,
}

impl Sim {
    fn new() -> Self {
        let t0 = Instant::now();
        Sim {
            t0,
            now: t0,
            hosts: Vec::new(),
            in_flight: Vec::new(),
            tap: Vec::new(),
        }
    }

    fn at(&self, d: Duration) -> Instant {
        self.t0 + d
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn unix_ms(&self) -> u64 {
        UNIX0 + self.elapsed().as_millis() as u64
    }

    fn add(&mut self, c: Config, health: Option<LocalHealth>) -> usize {
        let mut m = Machine::new(c, self.now, self.unix_ms()).unwrap();
        if let Some(h) = health {
            m.set_local_health(self.now, h);
        }
        self.hosts.push(Host {
            m,
            up: true,
            events: Vec::new(),
            deaf_to: Vec::new(),
        });
        let i = self.hosts.len() - 1;
        self.drain(i);
        i
    }

    /// Replaces host `i` with a freshly started machine (a restart).
    fn restart(&mut self, i: usize, c: Config, health: LocalHealth) {
        let mut m = Machine::new(c, self.now, self.unix_ms()).unwrap();
        m.set_local_health(self.now, health);
        self.hosts[i].m = m;
        self.hosts[i].up = true;
        self.drain(i);
    }

    fn m(&mut self, i: usize) -> &mut Machine {
        &mut self.hosts[i].m
    }

    fn drain(&mut self, i: usize) {
        let now = self.now;
        let el = self.elapsed();
        while let Some(t) = self.hosts[i].m.poll_transmit() {
            assert_eq!(t.dst, Ipv4Addr::BROADCAST);
            assert_eq!(t.dst_mac, [0xff; 6]);
            self.tap.push((el, i, t.kind, t.payload.clone()));
            self.in_flight
                .push((now + ms(1), Some(i), t.src, t.payload));
        }
        while let Some(e) = self.hosts[i].m.poll_event() {
            self.hosts[i].events.push((el, e));
        }
    }

    fn inject(&mut self, src: Ipv4Addr, payload: Vec<u8>) {
        self.in_flight.push((self.now, None, src, payload));
        self.run_for(ms(0));
    }

    fn run_until(&mut self, until: Duration) {
        let until = self.at(until);
        loop {
            let mut next: Option<Instant> = self.in_flight.iter().map(|f| f.0).min();
            for h in self.hosts.iter().filter(|h| h.up) {
                if let Some(t) = h.m.poll_timeout() {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
            let Some(next) = next.filter(|t| *t <= until) else {
                break;
            };
            self.now = self.now.max(next);
            let now = self.now;
            let (due, rest): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|f| f.0 <= now);
            self.in_flight = rest;
            for (_, from, src, payload) in due {
                for i in 0..self.hosts.len() {
                    let h = &mut self.hosts[i];
                    if !h.up || Some(i) == from || from.is_some_and(|f| h.deaf_to.contains(&f)) {
                        continue;
                    }
                    h.m.handle_heartbeat(now, src, &payload);
                    self.drain(i);
                }
            }
            for i in 0..self.hosts.len() {
                if self.hosts[i].up && self.hosts[i].m.poll_timeout().is_some_and(|t| t <= now) {
                    self.hosts[i].m.handle_timeout(now);
                    self.drain(i);
                }
            }
        }
        self.now = self.now.max(until);
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.elapsed() + d;
        self.run_until(until);
    }

    fn state(&self, i: usize, of: usize) -> Option<State> {
        let id = self.hosts[of].m.config().node_id;
        self.hosts[i].m.node_state(id)
    }

    fn member_ids(&self, i: usize) -> Vec<u32> {
        self.hosts[i]
            .m
            .membership()
            .nodes
            .iter()
            .map(|m| m.id)
            .collect()
    }

    fn id(&self, i: usize) -> u32 {
        self.hosts[i].m.config().node_id
    }

    fn weight(&self, i: usize, of: usize) -> Option<u32> {
        let id = self.id(of);
        self.hosts[i]
            .m
            .membership()
            .nodes
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.weight)
    }

    fn rejected(&self, i: usize) -> Vec<(Reject, Ipv4Addr)> {
        self.hosts[i]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Rejected { reason, source, .. } => Some((*reason, *source)),
                _ => None,
            })
            .collect()
    }
}

/// The original's example cluster: A active director (99), B passive (89),
/// C scanning node, LBID 10. A becomes active at 0 ms.
fn cluster(key: Option<&[u8]>) -> (Sim, usize, usize, usize) {
    let mut s = Sim::new();
    let a = s.add(cfg("dir-a", 1, 99, 10, key), Some(healthy(100)));
    let b = s.add(cfg("dir-b", 2, 89, 10, key), Some(healthy(100)));
    let c = s.add(cfg("scan-c", 3, 0, 10, key), Some(healthy(100)));
    let now = s.now;
    s.m(a).set_active(now, true).unwrap();
    s.drain(a);
    (s, a, b, c)
}

#[test]
fn discovery_of_three_nodes() {
    let (mut s, a, b, c) = cluster(None);
    // At 0 ms A sends its first request; B and C answer at 1 ms; every node
    // hears everything by 2 ms.
    s.run_until(ms(10));
    for (i, others) in [(a, [b, c]), (b, [a, c]), (c, [a, b])] {
        for o in others {
            assert_eq!(s.state(i, o), Some(State::Ok), "{i} sees {o}");
        }
    }
    // A's first request announced only what it knew (itself); the second
    // (1000 ms) announces all three, sorted by id.
    s.run_until(ms(1010));
    let all = vec![s.id(a), s.id(b), s.id(c)];
    assert_eq!(s.member_ids(a), all);
    assert_eq!(s.hosts[b].m.membership(), s.hosts[a].m.membership());
    assert_eq!(s.hosts[c].m.membership(), s.hosts[a].m.membership());
    assert!(
        s.hosts[a]
            .m
            .membership()
            .nodes
            .iter()
            .all(|m| m.weight == 900)
    );

    // `proxyha status` on A and on B.
    let va = s.hosts[a].m.nodes();
    let rows: Vec<(String, State, NodeType, bool)> = va
        .iter()
        .map(|v| (v.device.clone(), v.state, v.kind, v.statusvalid))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("dir-a".into(), State::Network, NodeType::Director, true),
            ("__SELF__".into(), State::Ok, NodeType::Scanning, true),
            ("dir-b".into(), State::Redundant, NodeType::Redundant, true),
            ("dir-b".into(), State::Ok, NodeType::Scanning, true),
            ("scan-c".into(), State::Ok, NodeType::Scanning, true),
        ]
    );
    let vb = s.hosts[b].m.nodes();
    let kinds: Vec<(String, State, NodeType)> = vb
        .iter()
        .map(|v| (v.device.clone(), v.state, v.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("dir-b".into(), State::Redundant, NodeType::Redundant),
            ("__SELF__".into(), State::Ok, NodeType::Scanning),
            ("dir-a".into(), State::Network, NodeType::Director),
            ("dir-a".into(), State::Ok, NodeType::Scanning),
            ("scan-c".into(), State::Ok, NodeType::Scanning),
        ]
    );
    // stats: connections, load, capacity, received, missed. C answered the
    // requests at 0 and 1000 ms and the extra announcement A sent at 11 ms,
    // when B and C turned OK (membership changes are announced at once).
    let c_row = va.iter().find(|v| v.name == "scan-c").unwrap();
    assert_eq!(c_row.stats, [100, 0, 1000, 3, 0]);
    assert_eq!(c_row.statechange, UNIX0 / 1000);
    let json = serde_json::to_value(s.hosts[b].m.status()).unwrap();
    assert_eq!(json["authenticated"], false);
    assert_eq!(json["nodes"][0]["type"], "redundant");
    assert_eq!(json["nodes"][0]["state"], "REDUNDANT");
    assert_eq!(json["nodes"][4]["mac"], "020000000003");
    assert_eq!(json["nodes"][4]["ip"], "198.18.0.3");
    assert_eq!(json["membership"]["nodes"].as_array().unwrap().len(), 3);

    let discovered: Vec<u32> = s.hosts[a]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Discovered { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(discovered, vec![s.id(b), s.id(c)]);
}

#[test]
fn a_node_missing_three_heartbeats_fails_leaves_and_comes_back() {
    let (mut s, a, b, c) = cluster(Some(KEY));
    s.run_until(ms(2500));
    assert!(s.member_ids(a).contains(&s.id(c)));
    let gen_before = s.hosts[a].m.membership().generation;
    // At 2500 ms C is killed (kill -9). Requests at 3000, 4000, 5000 go
    // unanswered; each miss is counted reply_timeout (250 ms) later.
    s.hosts[c].up = false;
    s.run_until(ms(5249));
    assert_eq!(s.state(a, c), Some(State::Ok));
    s.run_until(ms(5251));
    // FAILED 2751 ms after the kill: within 3 intervals + 10 %.
    assert_eq!(s.state(a, c), Some(State::Failed));
    assert!(!s.member_ids(a).contains(&s.id(c)), "left at once");
    assert!(s.hosts[a].m.membership().generation > gen_before);
    // B counted the same misses from the requests it heard.
    assert_eq!(s.state(b, c), Some(State::Failed));
    // A announces the change at once, in an extra request 10 ms later
    // (changes that close share one), not at the next regular request
    // (6000 ms): B adopts it by 5262 ms.
    assert!(s.member_ids(b).contains(&s.id(c)));
    s.run_until(ms(5262));
    assert_eq!(s.hosts[b].m.membership(), s.hosts[a].m.membership());
    // (the first announced the discovery at 11 ms)
    assert_eq!(s.hosts[a].m.counters().tx_announcements, 2);
    // The extra request started no miss check on A or B: C's miss count
    // still grows by one per interval.
    s.run_until(ms(6010));
    assert_eq!(s.hosts[b].m.membership(), s.hosts[a].m.membership());
    assert_eq!(s.member_ids(a), vec![s.id(a), s.id(b)]);
    assert!(s.hosts[a].events.iter().any(|(t, e)| *t == ms(5250)
        && matches!(
            e,
            Event::StateChanged {
                to: State::Failed,
                from: State::Ok,
                ..
            }
        )));
    let row = s.hosts[a]
        .m
        .nodes()
        .into_iter()
        .find(|v| v.name == "scan-c")
        .unwrap();
    assert!(!row.statusvalid);
    assert_eq!(row.stats[4], 3); // missed 3000, 4000, 5000 (6000 is counted at 6250)

    // At 8500 ms C restarts (fresh machine, fresh sequence numbers, same key).
    s.run_until(ms(8500));
    s.restart(c, cfg("scan-c", 3, 0, 10, Some(KEY)), healthy(100));
    s.run_until(ms(9010));
    // One good heartbeat is not enough to re-enter (rise = 2)...
    assert_eq!(s.state(a, c), Some(State::Failed));
    s.run_until(ms(10010));
    // ...two are: C is OK and back in the membership on both directors.
    assert_eq!(s.state(a, c), Some(State::Ok));
    assert!(s.member_ids(a).contains(&s.id(c)));
    s.run_until(ms(11010));
    assert_eq!(s.hosts[b].m.membership(), s.hosts[a].m.membership());
    assert_eq!(s.hosts[a].m.counters().drop_replay, 0);
}

#[test]
fn weights_follow_connection_counts_without_flapping() {
    let (mut s, a, _b, c) = cluster(None);
    s.run_until(ms(1500));
    assert_eq!(s.weight(a, c), Some(900));
    // C's connection count wobbles by 10 % every second for 20 s: the
    // weight does not move (dead band).
    for k in 0..20u64 {
        let conns = if k % 2 == 0 { 140 } else { 100 };
        let now = s.now;
        s.m(c).set_local_health(now, healthy(conns));
        s.run_for(ms(1000));
        assert_eq!(s.weight(a, c), Some(900), "at {k} s");
    }
    let generation = s.hosts[a].m.membership().generation;
    // C fills up: 900 connections, target weight 100. The weight falls
    // step by step, by at most 25 % per request, never below the target,
    // and settles within the dead band.
    let now = s.now;
    s.m(c).set_local_health(now, healthy(900));
    let mut seen = vec![900];
    for _ in 0..15 {
        s.run_for(ms(1000));
        seen.push(s.weight(a, c).unwrap());
    }
    for w in seen.windows(2) {
        assert!(w[1] <= w[0], "monotonic: {seen:?}");
        assert!(w[0] - w[1] <= w[0] / 4 + 1, "bounded step: {seen:?}");
        assert!(w[1] >= 100, "no overshoot: {seen:?}");
    }
    assert_eq!(seen.iter().find(|w| **w < 900), Some(&675), "{seen:?}");
    let last = *seen.last().unwrap();
    assert!(last <= 110, "settled: {seen:?}");
    // A's own weight did not move meanwhile.
    assert_eq!(s.weight(a, a), Some(900));
    assert!(s.hosts[a].m.membership().generation > generation);
    // Every step reached the passive director too.
    assert_eq!(s.hosts[1].m.membership(), s.hosts[a].m.membership());
}

#[test]
fn draining_keeps_a_zero_weight_and_recovers() {
    let (mut s, a, _b, c) = cluster(None);
    s.run_until(ms(1500));
    let now = s.now;
    s.m(c).set_local_health(
        now,
        LocalHealth {
            draining: true,
            ..healthy(100)
        },
    );
    s.run_until(ms(2010));
    assert_eq!(s.state(a, c), Some(State::Draining));
    assert_eq!(s.weight(a, c), Some(0), "stays a member with weight 0");
    let now = s.now;
    s.m(c).set_local_health(now, healthy(100));
    s.run_until(ms(3010));
    assert_eq!(s.state(a, c), Some(State::Ok));
    assert_eq!(s.weight(a, c), Some(900));
}

#[test]
fn unreachable_proxy_port_fails_a_node_while_its_heartbeats_arrive() {
    let (mut s, a, _b, c) = cluster(None);
    s.run_until(ms(1500));
    let replies_before = s.hosts[a].m.counters().rx_replies;
    let now = s.now;
    s.m(c).set_local_health(
        now,
        LocalHealth {
            ports: Ports::from_results(&[false]),
            ..healthy(100)
        },
    );
    assert_eq!(s.state(c, c), Some(State::Failed));
    s.run_until(ms(2010));
    assert_eq!(s.state(a, c), Some(State::Failed));
    assert!(!s.member_ids(a).contains(&s.id(c)));
    assert!(
        s.hosts[a].m.counters().rx_replies > replies_before,
        "still heard"
    );

    // A node that reports OK but shows a port down in its bitmap is FAILED too.
    let now_ms = s.unix_ms();
    let liar = wire::Repr {
        kind: wire::Kind::Reply,
        lbid: 10,
        node_id: heartbeat::node_id_from_ipv4(ip(9)),
        name: "liar".into(),
        role: wire::Role::Scanning,
        priority: 0,
        state: State::Ok,
        director_state: State::Unknown,
        ipv4: ip(9),
        ipv6: std::net::Ipv6Addr::UNSPECIFIED,
        mac: mac(9),
        sequence: 1,
        timestamp_ms: now_ms,
        connections: 0,
        load_permille: 0,
        capacity: 1000,
        ports: Ports::from_results(&[true, false]),
        announcement: None,
    };
    s.inject(ip(9), liar.to_bytes(None).unwrap());
    assert_eq!(
        s.hosts[a].m.node_state(heartbeat::node_id_from_ipv4(ip(9))),
        Some(State::Failed)
    );
}

#[test]
fn other_lbid_heartbeats_are_ignored_and_counted() {
    let (mut s, a, b, c) = cluster(None);
    // A second group (LBID 20) on the same segment: its own active director
    // D and scanning node E.
    let d = s.add(cfg("dir-d", 11, 99, 20, None), Some(healthy(0)));
    let e = s.add(cfg("scan-e", 12, 0, 20, None), Some(healthy(0)));
    let now = s.now;
    s.m(d).set_active(now, true).unwrap();
    s.drain(d);
    s.run_until(ms(5010));
    for i in [a, b, c] {
        assert_eq!(s.hosts[i].m.node_ids().len(), 2, "group 1 host {i}");
        assert!(s.hosts[i].m.counters().drop_other_lbid > 0);
        assert_eq!(s.state(i, d), None);
        assert_eq!(s.state(i, e), None);
    }
    for i in [d, e] {
        assert_eq!(s.hosts[i].m.node_ids().len(), 1, "group 2 host {i}");
        assert!(s.hosts[i].m.counters().drop_other_lbid > 0);
    }
    assert_eq!(s.member_ids(a), vec![s.id(a), s.id(b), s.id(c)]);
    assert_eq!(s.member_ids(d), vec![s.id(d), s.id(e)]);
    assert_eq!(s.member_ids(b), s.member_ids(a));
    assert_eq!(s.member_ids(e), s.member_ids(d));
    // Logged once per source: D's 6 requests gave A one event.
    let from_d: Vec<_> = s
        .rejected(a)
        .into_iter()
        .filter(|r| *r == (Reject::OtherLbid, ip(11)))
        .collect();
    assert_eq!(from_d.len(), 1);
}

#[test]
fn forged_replayed_and_unauthenticated_heartbeats_change_nothing() {
    let (mut s, a, b, c) = cluster(Some(KEY));
    s.run_until(ms(2500));
    let before_a = s.hosts[a].m.nodes();
    let before_b_membership = s.hosts[b].m.membership().clone();
    let c_ip = ip(3);

    // 1. Unauthenticated: a well-formed reply from a new node, no HMAC.
    let intruder = wire::Repr {
        kind: wire::Kind::Reply,
        lbid: 10,
        node_id: heartbeat::node_id_from_ipv4(ip(66)),
        name: "intruder".into(),
        role: wire::Role::Scanning,
        priority: 0,
        state: State::Ok,
        director_state: State::Unknown,
        ipv4: ip(66),
        ipv6: std::net::Ipv6Addr::UNSPECIFIED,
        mac: mac(66),
        sequence: u64::MAX / 2,
        timestamp_ms: s.unix_ms(),
        connections: 0,
        load_permille: 0,
        capacity: 1000,
        ports: Ports::from_results(&[true]),
        announcement: None,
    };
    for _ in 0..5 {
        s.inject(ip(66), intruder.to_bytes(None).unwrap());
    }
    // 2. Forged: signed with the wrong key; and C's identity claiming FAILED.
    s.inject(ip(66), intruder.to_bytes(Some(b"guess")).unwrap());
    let mut fake_c = intruder.clone();
    fake_c.node_id = s.id(c);
    fake_c.ipv4 = c_ip;
    fake_c.mac = mac(3);
    fake_c.name = "scan-c".into();
    fake_c.state = State::Failed;
    for _ in 0..5 {
        s.inject(c_ip, fake_c.to_bytes(Some(b"guess")).unwrap());
    }
    // 3. Forged: a real C reply with its connection count edited.
    let (_, _, _, real_c) = s
        .tap
        .iter()
        .rev()
        .find(|(_, from, kind, _)| *from == c && *kind == wire::Kind::Reply)
        .cloned()
        .unwrap();
    let mut edited = real_c.clone();
    edited[68..72].copy_from_slice(&5000u32.to_be_bytes());
    s.inject(c_ip, edited);
    // 4. Forged request: a fake active director announcing only itself.
    let mut fake_dir = intruder.clone();
    fake_dir.kind = wire::Kind::Request;
    fake_dir.role = wire::Role::Director;
    fake_dir.director_state = State::Network;
    fake_dir.announcement = Some(wire::Announcement {
        generation: 999,
        entries: vec![wire::Entry {
            id: fake_dir.node_id,
            ip: ip(66),
            mac: mac(66),
            weight: 1,
        }],
    });
    s.inject(ip(66), fake_dir.to_bytes(None).unwrap());
    s.inject(ip(66), fake_dir.to_bytes(Some(b"guess")).unwrap());
    // 5. Replayed: C's real (validly signed) reply again, five times.
    for _ in 0..5 {
        s.inject(c_ip, real_c.clone());
    }
    // 6. Replayed after the window: an old signed message to a node that
    // never heard it (a freshly restarted B) 31 s later. The cluster
    // keeps running meanwhile.
    let (_, _, _, old_a) = s
        .tap
        .iter()
        .find(|(_, from, kind, _)| *from == a && *kind == wire::Kind::Request)
        .cloned()
        .unwrap();

    // Nothing changed, nothing was answered, everything was counted.
    let after_a = s.hosts[a].m.nodes();
    assert_eq!(after_a, before_a);
    assert_eq!(s.hosts[b].m.membership(), &before_b_membership);
    assert_eq!(s.state(a, c), Some(State::Ok));
    assert_eq!(s.hosts[a].m.node_ids().len(), 2);
    let ca = *s.hosts[a].m.counters();
    assert_eq!(ca.drop_unauthenticated, 5 + 1);
    assert_eq!(ca.drop_bad_hmac, 1 + 5 + 1 + 1);
    assert_eq!(ca.drop_replay, 5);
    // The injections provoked no reply from anybody.
    let replies_at_2500 = s
        .tap
        .iter()
        .filter(|(t, _, kind, _)| *t >= ms(2500) && *kind == wire::Kind::Reply)
        .count();
    assert_eq!(replies_at_2500, 0);
    // Logged once per (reason, source).
    let mut r = s.rejected(a);
    r.sort_by_key(|(reason, src)| (format!("{reason:?}"), *src));
    assert_eq!(
        r,
        vec![
            (Reject::BadHmac, ip(3)),
            (Reject::BadHmac, ip(66)),
            (Reject::Replay, ip(3)),
            (Reject::Unauthenticated, ip(66)),
        ]
    );

    s.run_until(ms(33_000));
    let now = s.now;
    s.restart(b, cfg("dir-b", 2, 89, 10, Some(KEY)), healthy(100));
    let stale_before = s.hosts[b].m.counters().drop_stale;
    s.hosts[b].m.handle_heartbeat(now, ip(1), &old_a);
    assert_eq!(s.hosts[b].m.counters().drop_stale, stale_before + 1);
    assert_eq!(s.hosts[b].m.node_ids(), Vec::<u32>::new());
    // The live cluster is intact.
    assert_eq!(s.member_ids(a), vec![s.id(a), s.id(b), s.id(c)]);
}

#[test]
fn passive_director_adopts_the_announced_membership_and_keeps_it_at_takeover() {
    let (mut s, a, b, c) = cluster(None);
    // From 2500 ms B cannot hear C (asymmetric path): B's own view of C
    // goes FAILED, but B balances with exactly what A announces, C included.
    s.run_until(ms(2500));
    s.hosts[b].deaf_to.push(c);
    s.run_until(ms(5500));
    assert_eq!(s.state(b, c), Some(State::Failed));
    assert_eq!(s.state(a, c), Some(State::Ok));
    assert_eq!(s.hosts[b].m.membership(), s.hosts[a].m.membership());
    assert!(s.member_ids(b).contains(&s.id(c)));
    let announced = s.hosts[a].m.membership().clone();

    // At 5500 ms A dies. No requests: B counts no misses and its table
    // stays as it was (warm), for as long as VRRP takes.
    s.hosts[a].up = false;
    s.run_until(ms(9150));
    assert_eq!(s.state(b, a), Some(State::Ok));
    assert_eq!(s.hosts[b].m.membership(), &announced);

    // At 9150 ms VRRP makes B Master. Its first request carries the adopted
    // membership unchanged (same generation, same nodes, same weights).
    let now = s.now;
    s.m(b).set_active(now, true).unwrap();
    s.drain(b);
    assert_eq!(s.hosts[b].m.membership(), &announced);
    let (_, _, _, first) = s.tap.last().cloned().unwrap();
    let p = wire::Packet::new_checked(&first[..]).unwrap();
    let r = wire::Repr::parse(&p).unwrap();
    assert_eq!(r.kind, wire::Kind::Request);
    let ann = r.announcement.unwrap();
    assert_eq!(ann.generation, announced.generation);
    let ids: Vec<u32> = ann.entries.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        announced.nodes.iter().map(|m| m.id).collect::<Vec<_>>()
    );
    // C heard B's request and adopted it too.
    s.run_until(ms(9160));
    assert_eq!(s.hosts[c].m.membership(), &announced);

    // Then B's own view takes over: C (which B cannot hear) leaves at the
    // next request, and A leaves after 3 missed requests.
    s.run_until(ms(10_160));
    assert!(!s.member_ids(b).contains(&s.id(c)));
    assert!(s.hosts[b].m.membership().generation > announced.generation);
    s.run_until(ms(12_500));
    assert_eq!(s.state(b, a), Some(State::Failed));
    assert_eq!(s.member_ids(b), vec![s.id(b)]);
    let nb = s.hosts[b].m.nodes();
    assert_eq!(nb[0].state, State::Network);
    assert_eq!(nb[0].kind, NodeType::Director);
}

#[test]
fn static_nodes_are_pinned() {
    let mut s = Sim::new();
    let mut ca = cfg("dir-a", 1, 99, 10, None);
    ca.static_nodes.push(heartbeat::StaticNode {
        id: heartbeat::node_id_from_ipv4(ip(3)),
        name: "scan-c".into(),
        ip: ip(3),
        mac: mac(3),
    });
    ca.forget_after = ms(2000);
    let a = s.add(ca.clone(), Some(healthy(0)));
    let now = s.now;
    s.m(a).set_active(now, true).unwrap();
    s.drain(a);
    let static_id = heartbeat::node_id_from_ipv4(ip(3));
    assert_eq!(s.hosts[a].m.node_state(static_id), Some(State::Unknown));
    // A dynamic node X comes and goes.
    let x = s.add(cfg("scan-x", 7, 0, 10, None), Some(healthy(0)));
    s.run_until(ms(1010));
    assert_eq!(s.state(a, x), Some(State::Ok));
    s.hosts[x].up = false;
    s.run_until(ms(20_000));
    // The never-heard static node is FAILED, and stays in the table; the
    // dynamic one is forgotten after forget_after.
    assert_eq!(s.hosts[a].m.node_state(static_id), Some(State::Failed));
    assert_eq!(s.state(a, x), None);
    assert!(
        s.hosts[a]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::Forgotten { .. }))
    );
    // Someone claiming the static node's id from another address is refused.
    let mut c_imp = cfg("scan-c", 4, 0, 10, None);
    c_imp.node_id = static_id;
    s.add(c_imp, Some(healthy(0)));
    s.run_until(ms(21_010));
    assert!(s.hosts[a].m.counters().drop_static_mismatch > 0);
    assert_eq!(s.hosts[a].m.node_state(static_id), Some(State::Failed));
    // The real one is accepted and comes up (after `rise` heartbeats).
    let c = s.add(cfg("scan-c", 3, 0, 10, None), Some(healthy(0)));
    s.run_until(ms(23_010));
    assert_eq!(s.state(a, c), Some(State::Ok));

    // With discovery off, unlisted nodes are refused.
    let mut s2 = Sim::new();
    let mut strict = ca;
    strict.accept_unlisted = false;
    let a2 = s2.add(strict, Some(healthy(0)));
    let now = s2.now;
    s2.m(a2).set_active(now, true).unwrap();
    s2.drain(a2);
    let y = s2.add(cfg("scan-y", 8, 0, 10, None), Some(healthy(0)));
    s2.run_until(ms(3010));
    assert_eq!(s2.state(a2, y), None);
    assert!(s2.hosts[a2].m.counters().drop_unlisted > 0);
}

#[test]
fn identity_and_source_checks() {
    let (mut s, a, _b, c) = cluster(None);
    s.run_until(ms(1500));
    // C's real reply, delivered with another source address.
    let (_, _, _, real_c) = s
        .tap
        .iter()
        .rev()
        .find(|(_, from, kind, _)| *from == c && *kind == wire::Kind::Reply)
        .cloned()
        .unwrap();
    s.inject(ip(77), real_c);
    assert_eq!(s.hosts[a].m.counters().drop_source_mismatch, 1);
    // Someone else using A's id (it drops A's requests for the same reason,
    // so make it send requests of its own).
    let mut clone_a = cfg("evil", 5, 50, 10, None);
    clone_a.node_id = s.id(a);
    let e = s.add(clone_a, Some(healthy(0)));
    let now = s.now;
    s.m(e).set_active(now, true).unwrap();
    s.drain(e);
    s.run_until(ms(2010));
    assert!(s.hosts[a].m.counters().drop_id_conflict > 0);
    // Garbage.
    s.inject(ip(78), vec![0x50, 0x58, 0x48, 0x42, 9, 9, 9]);
    assert_eq!(s.hosts[a].m.counters().drop_malformed, 1);
}

#[test]
fn config_rules_and_roles() {
    let now = Instant::now();
    let mut c = cfg("a", 1, 99, 10, None);
    c.interval = ms(99);
    assert_eq!(
        Machine::new(c.clone(), now, UNIX0).unwrap_err(),
        heartbeat::Error::IntervalTooShort(ms(99))
    );
    c.interval = ms(100);
    c.misses = 0;
    assert_eq!(
        Machine::new(c.clone(), now, UNIX0).unwrap_err(),
        heartbeat::Error::ZeroMisses
    );
    c.misses = 3;
    c.key = Some(Vec::new());
    assert_eq!(
        Machine::new(c.clone(), now, UNIX0).unwrap_err(),
        heartbeat::Error::EmptyKey
    );
    c.key = None;
    c.name = "n".repeat(33);
    assert!(matches!(
        Machine::new(c, now, UNIX0),
        Err(heartbeat::Error::NameTooLong(_))
    ));
    let mut scan = Machine::new(cfg("s", 3, 0, 10, None), now, UNIX0).unwrap();
    assert_eq!(
        scan.set_active(now, true),
        Err(heartbeat::Error::NotADirector)
    );
    // A fast 100 ms interval: a dead node fails in 3 × 100 ms + 25 ms.
    let mut s = Sim::new();
    let mut fa = cfg("dir-a", 1, 99, 10, None);
    fa.interval = ms(100);
    let a = s.add(fa, Some(healthy(0)));
    let x = s.add(cfg("scan-x", 7, 0, 10, None), Some(healthy(0)));
    let now = s.now;
    s.m(a).set_active(now, true).unwrap();
    s.drain(a);
    s.run_until(ms(150));
    s.hosts[x].up = false;
    s.run_until(ms(424));
    assert_eq!(s.state(a, x), Some(State::Ok));
    s.run_until(ms(426));
    assert_eq!(s.state(a, x), Some(State::Failed));
    let members: Vec<Member> = s.hosts[a].m.membership().nodes.clone();
    assert_eq!(members.len(), 1);
}

/// A heartbeat from a host that is not running proxyha (a forger): any id,
/// addresses, state and capacity, optionally signed.
#[allow(clippy::too_many_arguments)]
fn forged(
    id: u32,
    ip: Ipv4Addr,
    mac: [u8; 6],
    sequence: u64,
    unix_ms: u64,
    capacity: u32,
    key: Option<&[u8]>,
) -> Vec<u8> {
    wire::Repr {
        kind: wire::Kind::Reply,
        lbid: 10,
        node_id: id,
        name: format!("rogue-{id:x}"),
        role: wire::Role::Scanning,
        priority: 0,
        state: State::Ok,
        director_state: State::Unknown,
        ipv4: ip,
        ipv6: std::net::Ipv6Addr::UNSPECIFIED,
        mac,
        sequence,
        timestamp_ms: unix_ms,
        connections: 0,
        load_permille: 0,
        capacity,
        ports: Ports::from_results(&[true]),
        announcement: None,
    }
    .to_bytes(key)
    .unwrap()
}

fn mac_of(s: &Sim, i: usize, of: usize) -> Option<[u8; 6]> {
    let id = s.id(of);
    s.hosts[i]
        .m
        .nodes()
        .into_iter()
        .find(|v| v.id == id && !v.is_self)
        .map(|v| v.mac)
}

#[test]
fn a_stolen_id_is_dropped_and_counted_until_the_owner_fails() {
    let (mut s, a, _b, c) = cluster(None);
    s.run_until(ms(1500));
    assert_eq!(s.state(a, c), Some(State::Ok));
    let cid = s.id(c);
    let rogue_mac = [0x02, 0, 0, 0, 0, 0x66];
    // C's id from the rogue's own address, then with C's IPv4 but the
    // rogue's MAC (a spoofed source address).
    let f1 = forged(cid, ip(66), rogue_mac, 1, s.unix_ms(), 1000, None);
    s.inject(ip(66), f1);
    let f2 = forged(cid, ip(3), rogue_mac, 2, s.unix_ms(), 1000, None);
    s.inject(ip(3), f2);
    assert_eq!(s.hosts[a].m.counters().drop_identity_mismatch, 2);
    assert_eq!(mac_of(&s, a, c), Some(mac(3)));
    let m = s.hosts[a].m.membership().clone();
    assert!(m.nodes.iter().any(|n| n.id == cid && n.mac == mac(3)));
    assert!(m.nodes.iter().all(|n| n.mac != rogue_mac));
    assert!(s.rejected(a).contains(&(Reject::IdentityMismatch, ip(66))));
    // C dies at 2500 ms; until it is FAILED (5250 ms) the rogue keeps
    // being dropped, twice a second.
    s.run_until(ms(2500));
    s.hosts[c].up = false;
    let mut t = 2600;
    while t < 5200 {
        s.run_until(ms(t));
        let f = forged(cid, ip(66), rogue_mac, t, s.unix_ms(), 1000, None);
        s.inject(ip(66), f);
        t += 500;
    }
    assert_eq!(
        s.hosts[a].m.counters().drop_identity_mismatch,
        2 + 6,
        "{:?}",
        s.hosts[a].m.counters()
    );
    assert_eq!(s.hosts[a].m.counters().nodes_rebound, 0);
    assert_eq!(mac_of(&s, a, c), Some(mac(3)));
    s.run_until(ms(5300));
    assert_eq!(s.state(a, c), Some(State::Failed));
    // The old binding is FAILED: the id may move (a replaced NIC), and
    // it starts FAILED, needing `rise` good heartbeats like any node.
    let f = forged(cid, ip(66), rogue_mac, 9999, s.unix_ms(), 1000, None);
    s.inject(ip(66), f);
    assert_eq!(s.hosts[a].m.counters().nodes_rebound, 1);
    assert_eq!(mac_of(&s, a, c), Some(rogue_mac));
    assert_eq!(s.state(a, c), Some(State::Failed));
    assert!(
        s.hosts[a].events.iter().any(
            |(_, e)| matches!(e, Event::Rebound { id, to, .. } if *id == cid && *to == ip(66))
        )
    );
}

#[test]
fn multicast_and_zero_macs_are_dropped_and_counted() {
    let (mut s, a, b, c) = cluster(None);
    s.run_until(ms(1500));
    for (n, bad) in [
        [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12], // IPv4 multicast
        [0x33, 0x33, 0x00, 0x00, 0x00, 0x01], // IPv6 multicast
        [0xff; 6],                            // broadcast
        [0; 6],                               // zero
    ]
    .into_iter()
    .enumerate()
    {
        let src = ip(70 + n as u8);
        let f = forged(u32::from(src), src, bad, 1, s.unix_ms(), 1000, None);
        s.inject(src, f);
    }
    assert_eq!(s.hosts[a].m.counters().drop_bad_mac, 4);
    assert_eq!(s.hosts[a].m.node_ids(), vec![s.id(b), s.id(c)]);
    s.run_until(ms(2500));
    assert_eq!(s.member_ids(a), vec![s.id(a), s.id(b), s.id(c)]);
}

#[test]
fn claimed_capacity_is_capped() {
    let mut s = Sim::new();
    let mut ca = cfg("dir-a", 1, 99, 10, None);
    ca.max_capacity = 1000;
    let a = s.add(ca, Some(healthy(0)));
    let c = s.add(cfg("scan-c", 3, 0, 10, None), Some(healthy(0)));
    let mut greedy = cfg("greedy", 9, 0, 10, None);
    greedy.capacity = 1_000_000;
    let g = s.add(greedy, Some(healthy(0)));
    let now = s.now;
    s.m(a).set_active(now, true).unwrap();
    s.drain(a);
    s.run_until(ms(2500));
    assert!(s.hosts[a].m.counters().capacity_capped >= 2);
    let row = s.hosts[a]
        .m
        .nodes()
        .into_iter()
        .find(|v| v.name == "greedy")
        .unwrap();
    assert_eq!(row.stats[2], 1000, "capacity shown as capped");
    // The greedy node weighs no more than an honest node sized at the cap.
    assert_eq!(s.weight(a, g), s.weight(a, c));
    assert_eq!(s.weight(a, g), Some(1000));
}

#[test]
fn three_hundred_forged_ids_never_evict_live_nodes_and_their_slots_come_back() {
    let (mut s, a, b, c) = cluster(None);
    s.run_until(ms(1500));
    let forged_ip = |i: u32| Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 1, 0)) + i);
    for i in 0..300u32 {
        let src = forged_ip(i);
        let m = [0x02, 0xee, 0, 0, (i >> 8) as u8, i as u8];
        let f = forged(u32::from(src), src, m, 1, s.unix_ms(), 1000, None);
        s.inject(src, f);
    }
    let ids = s.hosts[a].m.node_ids();
    assert_eq!(ids.len(), heartbeat::MAX_NODES);
    assert!(ids.contains(&s.id(b)) && ids.contains(&s.id(c)));
    // The table is full of live (OK) forged nodes: nothing is evicted.
    assert_eq!(s.hosts[a].m.counters().drop_table_full, 300 - 254);
    assert_eq!(s.hosts[a].m.counters().nodes_evicted, 0);
    // The forger stops; its nodes miss 3 requests and are FAILED.
    s.run_until(ms(5500));
    assert_eq!(s.state(a, b), Some(State::Ok));
    assert_eq!(s.state(a, c), Some(State::Ok));
    // A real new node joins the full table: it takes a failed node's slot.
    let d = s.add(cfg("scan-d", 4, 0, 10, None), Some(healthy(0)));
    s.run_until(ms(8010));
    assert_eq!(s.state(a, d), Some(State::Ok));
    assert_eq!(s.hosts[a].m.counters().nodes_evicted, 1);
    assert_eq!(s.hosts[a].m.node_ids().len(), heartbeat::MAX_NODES);
    for i in [a, b, c, d] {
        assert!(s.member_ids(a).contains(&s.id(i)));
    }
    // After forget_after (300 s) every forged node is gone; the live ones stay.
    s.run_until(ms(320_000));
    let mut want = vec![s.id(b), s.id(c), s.id(d)];
    want.sort_unstable();
    assert_eq!(s.hosts[a].m.node_ids(), want);
    assert_eq!(s.hosts[a].m.counters().nodes_forgotten, 253);
    assert_eq!(
        s.hosts[a]
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Forgotten { .. }))
            .count(),
        254
    );
    // The flood was logged once per source, not once per packet.
    assert!(s.rejected(a).len() <= 300 - 254);
}

#[test]
fn key_rotation_with_key_next_never_flaps() {
    const NEW: &[u8] = b"group-10-secret-2027";
    let mut s = Sim::new();
    let with_next = |name: &str, last: u8, prio: u8, key: &[u8], next: &[u8]| {
        let mut c = cfg(name, last, prio, 10, Some(key));
        c.key_next = Some(next.to_vec());
        c
    };
    // Step 1: everyone sends with the old key and also accepts the new one.
    let a = s.add(with_next("dir-a", 1, 99, KEY, NEW), Some(healthy(0)));
    let b = s.add(with_next("dir-b", 2, 89, KEY, NEW), Some(healthy(0)));
    let c = s.add(with_next("scan-c", 3, 0, KEY, NEW), Some(healthy(0)));
    let now = s.now;
    s.m(a).set_active(now, true).unwrap();
    s.drain(a);
    s.run_until(ms(2500));
    // Step 2: one node at a time sends with the new key, accepting the old.
    s.restart(c, with_next("scan-c", 3, 0, NEW, KEY), healthy(0));
    s.run_until(ms(4500));
    s.restart(b, with_next("dir-b", 2, 89, NEW, KEY), healthy(0));
    s.run_until(ms(6500));
    assert!(s.hosts[a].m.counters().rx_next_key > 0);
    s.run_until(ms(9500));
    // (Step 3, once every node sends with the new key: drop key_next.)
    for i in [a, b, c] {
        let failures: Vec<_> = s.hosts[i]
            .events
            .iter()
            .filter(|(_, e)| {
                matches!(
                    e,
                    Event::StateChanged {
                        to: State::Failed,
                        ..
                    }
                )
            })
            .collect();
        assert!(failures.is_empty(), "host {i}: {failures:?}");
    }
    assert_eq!(s.state(a, c), Some(State::Ok));
    assert_eq!(s.state(a, b), Some(State::Ok));
    // A node with neither key is still refused.
    let f = forged(
        0xc612_0063,
        ip(99),
        mac(99),
        1,
        s.unix_ms(),
        1000,
        Some(b"some-other-key!!"),
    );
    s.inject(ip(99), f);
    assert_eq!(s.hosts[a].m.counters().drop_bad_hmac, 1);
}

/// Answers every proxy probe host `i` asked for after `since` with `alive`.
fn answer_probes(s: &mut Sim, i: usize, since: Duration, alive: bool) -> usize {
    let asked: Vec<u32> = s.hosts[i]
        .events
        .iter()
        .filter(|(t, _)| *t > since)
        .filter_map(|(_, e)| match e {
            Event::ProbeProxy { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    let now = s.now;
    for id in &asked {
        s.m(i).set_proxy_probe(now, *id, alive);
    }
    s.drain(i);
    asked.len()
}

#[test]
fn a_silent_node_whose_proxy_answers_is_held_stale_then_ok_or_failed() {
    let (mut s, a, b, c) = cluster(Some(KEY));
    s.run_until(ms(2500));
    let weight = s.weight(a, c).unwrap();
    assert!(weight > 0);
    // C's daemon is killed at 2500 ms; its proxy keeps running. From the
    // first miss (3250 ms) on, A probes C's proxy at every miss check.
    s.hosts[c].up = false;
    let mut t = 2500;
    while t < 5240 {
        t += 10;
        s.run_until(ms(t));
        answer_probes(&mut s, a, ms(t - 10), true);
    }
    assert_eq!(s.state(a, c), Some(State::Ok));
    assert!(
        s.hosts[a]
            .events
            .iter()
            .any(|(t, e)| *t == ms(3250)
                && matches!(e, Event::ProbeProxy { id, .. } if *id == s.id(c))),
        "the first miss asks for a probe"
    );
    s.run_until(ms(5251));
    // Timed out, proxy alive: STALE, not FAILED. It stays in the set at its
    // weight, held: its flows stay, it gets no new ones.
    assert_eq!(s.state(a, c), Some(State::Stale));
    let held = s.hosts[a]
        .m
        .membership()
        .nodes
        .iter()
        .find(|m| m.id == s.id(c))
        .copied()
        .expect("a STALE node stays in the membership");
    assert!(held.held);
    assert_eq!(held.weight, weight);
    assert_eq!(s.hosts[a].m.counters().node_failures, 0);
    assert_eq!(s.hosts[a].m.counters().node_stale, 1);
    // B adopts the held entry verbatim with the next request.
    s.run_until(ms(6010));
    assert_eq!(s.hosts[b].m.membership(), s.hosts[a].m.membership());
    // Only the active director probes.
    assert!(
        !s.hosts[b]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::ProbeProxy { .. }))
    );

    // C's daemon comes back at 8500 ms: OK at its first heartbeat (it never
    // stopped serving, so no `rise`), no longer held.
    s.run_until(ms(8500));
    s.restart(c, cfg("scan-c", 3, 0, 10, Some(KEY)), healthy(100));
    s.run_until(ms(9010));
    assert_eq!(s.state(a, c), Some(State::Ok));
    let back = s.hosts[a]
        .m
        .membership()
        .nodes
        .iter()
        .find(|m| m.id == s.id(c))
        .copied()
        .unwrap();
    assert!(!back.held);

    // Killed again, and this time the proxy is down too: FAILED and out.
    s.run_until(ms(9500));
    s.hosts[c].up = false;
    let mut t = 9500;
    while t < 12300 {
        t += 10;
        s.run_until(ms(t));
        answer_probes(&mut s, a, ms(t - 10), false);
    }
    assert_eq!(s.state(a, c), Some(State::Failed));
    assert!(!s.member_ids(a).contains(&s.id(c)));
    assert!(s.hosts[a].m.counters().proxy_probes_failed > 0);
}

#[test]
fn a_stale_node_whose_proxy_stops_answering_fails() {
    let (mut s, a, _b, c) = cluster(Some(KEY));
    s.run_until(ms(2500));
    s.hosts[c].up = false;
    let mut t = 2500;
    while t < 5300 {
        t += 10;
        s.run_until(ms(t));
        answer_probes(&mut s, a, ms(t - 10), true);
    }
    assert_eq!(s.state(a, c), Some(State::Stale));
    // The next miss check (6250 ms) asks again; the proxy is gone now.
    let mut asked = 0;
    while t < 6400 {
        t += 10;
        s.run_until(ms(t));
        asked += answer_probes(&mut s, a, ms(t - 10), false);
    }
    assert_eq!(asked, 1);
    assert_eq!(s.state(a, c), Some(State::Failed));
    assert!(!s.member_ids(a).contains(&s.id(c)));
}

#[test]
fn without_hold_stale_a_silent_node_fails_whatever_its_proxy_says() {
    let mut s = Sim::new();
    let mut ca = cfg("dir-a", 1, 99, 10, Some(KEY));
    ca.hold_stale = false;
    let a = s.add(ca, Some(healthy(100)));
    let c = s.add(cfg("scan-c", 3, 0, 10, Some(KEY)), Some(healthy(100)));
    let now = s.now;
    s.m(a).set_active(now, true).unwrap();
    s.drain(a);
    s.run_until(ms(2500));
    s.hosts[c].up = false;
    s.run_until(ms(5251));
    assert_eq!(s.state(a, c), Some(State::Failed));
    assert!(
        !s.hosts[a]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::ProbeProxy { .. }))
    );
}
