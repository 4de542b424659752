//! Unit tests of the machine; the timelines are in `tests/heartbeat_timeline.rs`.

use std::net::Ipv6Addr;

use super::*;
use proptest::prelude::*;

const UNIX0: u64 = 1_764_140_400_000;

/// Director A's settings (LBID 10, node id 1, priority 99).
fn director_config() -> Config {
    Config::new(
        10,
        1,
        "dir-a",
        99,
        Ipv4Addr::new(198, 18, 0, 1),
        [2, 0, 0, 0, 0, 1],
    )
}

fn director(key: Option<&[u8]>, now: Instant) -> Machine {
    let mut c = director_config();
    c.key = key.map(<[u8]>::to_vec);
    let mut m = Machine::new(c, now, UNIX0).unwrap();
    m.set_local_health(
        now,
        LocalHealth {
            ports: Ports::from_results(&[true]),
            ..Default::default()
        },
    );
    m
}

fn reply(id: u32, ip: Ipv4Addr, sequence: u64) -> wire::Repr {
    wire::Repr {
        kind: wire::Kind::Reply,
        lbid: 10,
        node_id: id,
        name: format!("n{id}"),
        role: Role::Scanning,
        priority: 0,
        state: State::Ok,
        director_state: State::Unknown,
        ipv4: ip,
        ipv6: Ipv6Addr::UNSPECIFIED,
        mac: [2, 0, 0, 0, 1, 0],
        sequence,
        timestamp_ms: UNIX0,
        connections: 10,
        load_permille: 0,
        capacity: 1000,
        ports: Ports::from_results(&[true]),
        announcement: None,
    }
}

#[test]
fn the_table_is_bounded() {
    let now = Instant::now();
    let mut m = director(None, now);
    for i in 0..(MAX_NODES as u32 + 44) {
        let ip = Ipv4Addr::from(0xc612_1000 + i);
        let bytes = reply(1000 + i, ip, 1).to_bytes(None).unwrap();
        m.handle_heartbeat(now, ip, &bytes);
    }
    assert_eq!(m.node_ids().len(), MAX_NODES);
    assert_eq!(m.counters().drop_table_full, 44);
    // One Rejected event per source, and no more than LogOnce keeps.
    let mut rejected = 0;
    while let Some(e) = m.poll_event() {
        if matches!(
            e,
            Event::Rejected {
                reason: Reject::TableFull,
                ..
            }
        ) {
            rejected += 1;
        }
    }
    assert_eq!(rejected, 44);
}

#[test]
fn poll_timeout_tracks_requests_and_checks() {
    let t0 = Instant::now();
    let mut m = director(None, t0);
    m.set_active(t0, true).unwrap();
    assert!(m.poll_transmit().is_some());
    // The miss check of the first request comes first.
    assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_millis(250)));
    m.handle_timeout(t0 + Duration::from_millis(250));
    assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(1)));
    m.handle_timeout(t0 + Duration::from_secs(1));
    assert!(m.poll_transmit().is_some());
    m.set_active(t0 + Duration::from_secs(1), false).unwrap();
    m.handle_timeout(t0 + Duration::from_secs(3));
    assert!(
        m.poll_transmit().is_none(),
        "a passive director sends no requests"
    );
}

#[test]
fn only_a_directors_announcement_is_adopted() {
    let now = Instant::now();
    let mut m = director(None, now);
    let ip = Ipv4Addr::new(198, 18, 0, 3);
    let mut r = reply(3, ip, 1);
    r.kind = wire::Kind::Request;
    r.announcement = Some(wire::Announcement {
        generation: 7,
        entries: vec![wire::Entry {
            id: 3,
            ip,
            mac: [2, 0, 0, 0, 1, 0],
            weight: 5,
        }],
    });
    m.handle_heartbeat(now, ip, &r.to_bytes(None).unwrap());
    assert_eq!(m.membership(), &Membership::default());
    r.role = Role::Director;
    r.priority = 50;
    r.director_state = State::Network;
    r.sequence = 2;
    m.handle_heartbeat(now, ip, &r.to_bytes(None).unwrap());
    assert_eq!(m.membership().generation, 7);
    assert_eq!(
        m.membership().nodes,
        vec![Member {
            id: 3,
            mac: [2, 0, 0, 0, 1, 0],
            ip,
            weight: 5,
            held: false
        }]
    );
}

#[test]
fn drops_are_logged_at_most_once_a_period_per_reason_and_source() {
    let t0 = Instant::now();
    let mut m = director(None, t0);
    let ip = Ipv4Addr::new(198, 18, 0, 66);
    let mut bad = reply(66, ip, 1);
    bad.mac = [0x01, 0, 0x5e, 0, 0, 1];
    let bytes = bad.to_bytes(None).unwrap();
    let mut events = Vec::new();
    for i in 0..1000u64 {
        m.handle_heartbeat(t0 + Duration::from_millis(i), ip, &bytes);
        while let Some(e) = m.poll_event() {
            events.push(e);
        }
    }
    // Another source logs on its own.
    let other = Ipv4Addr::new(198, 18, 0, 67);
    m.handle_heartbeat(t0, other, &bytes);
    m.handle_heartbeat(t0 + REJECT_LOG_PERIOD, ip, &bytes);
    while let Some(e) = m.poll_event() {
        events.push(e);
    }
    let rejected: Vec<(Reject, Ipv4Addr, u64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Rejected {
                reason,
                source,
                held_back,
            } => Some((*reason, *source, *held_back)),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        vec![
            (Reject::BadMac, ip, 0),
            (Reject::SourceMismatch, other, 0),
            (Reject::BadMac, ip, 999),
        ]
    );
    assert_eq!(m.counters().drop_bad_mac, 1001);
}

#[test]
fn the_next_key_is_accepted_and_the_current_one_sent() {
    let now = Instant::now();
    let mut c = director_config();
    c.key = Some(b"current-key-0001".to_vec());
    c.key_next = Some(b"next-key-0000002".to_vec());
    let mut m = Machine::new(c, now, UNIX0).unwrap();
    let ip = Ipv4Addr::new(198, 18, 0, 3);
    let mut r = reply(3, ip, 1);
    r.kind = wire::Kind::Request;
    m.handle_heartbeat(now, ip, &r.to_bytes(Some(b"next-key-0000002")).unwrap());
    assert_eq!(m.counters().rx_next_key, 1);
    assert_eq!(m.node_ids(), vec![3]);
    let t = m.poll_transmit().expect("a reply");
    let p = wire::Packet::new_checked(&t.payload[..]).unwrap();
    assert!(p.verify(b"current-key-0001").is_ok());
    assert!(p.verify(b"next-key-0000002").is_err());
    r.sequence = 2;
    m.handle_heartbeat(now, ip, &r.to_bytes(Some(b"wrong-key-000003")).unwrap());
    assert_eq!(m.counters().drop_bad_hmac, 1);
    let mut bad = Config::new(10, 1, "a", 99, ip, [2, 0, 0, 0, 0, 1]);
    bad.key_next = Some(b"next-key-0000002".to_vec());
    assert_eq!(
        Machine::new(bad.clone(), now, UNIX0).unwrap_err(),
        Error::NextKeyWithoutKey
    );
    bad.key_next = None;
    bad.mac = [1, 0, 0x5e, 0, 0, 1];
    assert!(matches!(
        Machine::new(bad, now, UNIX0),
        Err(Error::BadMac(_))
    ));
}

proptest! {
    /// Without a key (the insecure opt-out), forged heartbeats may add
    /// nodes but never move a live node: whatever ids, addresses and MACs
    /// they claim, node 3 keeps its IPv4 and MAC and the table stays bounded.
    #[test]
    fn forged_claims_never_move_a_live_node(
        claims in proptest::collection::vec((0u32..8, 1u8..=254, any::<[u8; 6]>()), 1..60),
    ) {
        let now = Instant::now();
        let mut m = director(None, now);
        let known = Ipv4Addr::new(198, 18, 0, 3);
        m.handle_heartbeat(now, known, &reply(3, known, 1).to_bytes(None).unwrap());
        for (n, (id, last, mac)) in claims.into_iter().enumerate() {
            let src = Ipv4Addr::new(198, 18, 0, last);
            let mut r = reply(id, src, 10 + n as u64);
            r.mac = mac;
            m.handle_heartbeat(now, src, &r.to_bytes(None).unwrap());
        }
        let v = m.nodes().into_iter().find(|v| v.id == 3 && !v.is_self).unwrap();
        prop_assert_eq!(v.ip, known);
        prop_assert_eq!(v.mac, [2, 0, 0, 0, 1, 0]);
        prop_assert!(m.node_ids().len() <= MAX_NODES);
        for v in m.nodes() {
            prop_assert!(is_unicast_mac(&v.mac));
        }
    }

    /// With a key, no input but a correctly signed heartbeat changes
    /// anything or makes the machine send: arbitrary bytes, and valid
    /// signed messages with bytes changed.
    #[test]
    fn unsigned_or_altered_input_changes_nothing(
        junk in proptest::collection::vec(any::<u8>(), 0..1400),
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
        src: u32,
    ) {
        let now = Instant::now();
        let key = b"k".as_slice();
        let mut m = director(Some(key), now);
        let known = Ipv4Addr::new(198, 18, 0, 3);
        m.handle_heartbeat(now, known, &reply(3, known, 5).to_bytes(Some(key)).unwrap());
        prop_assert_eq!(m.node_ids(), vec![3]);
        while m.poll_transmit().is_some() {}
        let before = (m.nodes(), m.membership().clone());

        m.handle_heartbeat(now, Ipv4Addr::from(src), &junk);
        let signed = reply(3, known, 6).to_bytes(Some(key)).unwrap();
        let mut altered = signed.clone();
        for (i, x) in flips {
            let n = altered.len();
            altered[i % n] ^= x;
        }
        // Two flips of one byte can cancel out.
        prop_assume!(altered != signed);
        m.handle_heartbeat(now, known, &altered);
        prop_assert_eq!((m.nodes(), m.membership().clone()), before);
        prop_assert!(m.poll_transmit().is_none());
        prop_assert_eq!(m.counters().rx_replies, 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic_without_a_key(
        msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
    ) {
        let now = Instant::now();
        let mut m = director(None, now);
        m.set_active(now, true).unwrap();
        for b in &msgs {
            m.handle_heartbeat(now, Ipv4Addr::new(198, 18, 0, 9), b);
        }
        m.handle_timeout(now + Duration::from_secs(5));
        let _ = m.status();
    }
}
