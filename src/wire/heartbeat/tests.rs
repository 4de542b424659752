use super::*;
use proptest::prelude::*;

fn fixture_repr() -> Repr {
    Repr {
        kind: Kind::Request,
        lbid: 10,
        node_id: 0xc612_0001,
        name: "dir-a".into(),
        role: Role::Director,
        priority: 99,
        state: State::Ok,
        director_state: State::Network,
        ipv4: Ipv4Addr::new(198, 18, 0, 1),
        ipv6: Ipv6Addr::UNSPECIFIED,
        mac: [0x02, 0, 0, 0, 0, 0x01],
        sequence: 7,
        timestamp_ms: 1_764_140_400_000,
        connections: 42,
        load_permille: 250,
        capacity: 1000,
        ports: Ports {
            count: 1,
            reachable: 1,
        },
        announcement: Some(Announcement {
            generation: 3,
            entries: vec![Entry {
                id: 0xc612_0003,
                ip: Ipv4Addr::new(198, 18, 0, 3),
                mac: [0x02, 0, 0, 0, 0, 0x03],
                weight: 900,
            }],
        }),
    }
}

#[rustfmt::skip]
const FIXTURE: [u8; 111] = [
    0x50, 0x58, 0x48, 0x42,             // magic "PXHB"
    0x01, 0x01,                         // version 1, type request
    0x00, 0x02,                         // flags: ANNOUNCE
    0x00, 111,                          // length
    0x00, 10,                           // LBID 10
    0xc6, 0x12, 0x00, 0x01,             // node id
    0, 0, 0, 0, 0, 0, 0, 7,             // sequence 7
    0x00, 0x00, 0x01, 0x9a, 0xbe, 0xf6, 0x3d, 0x80, // timestamp ms
    198, 18, 0, 1,                      // ipv4
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ipv6 ::
    0x02, 0, 0, 0, 0, 0x01,             // mac
    1, 99, 1, 2,                        // role director, prio 99, OK, NETWORK
    1, 5,                               // 1 port, name length 5
    0x00, 0x01,                         // port 0 reachable
    0x00, 0xfa,                         // load 250
    0, 0, 0, 42,                        // connections
    0, 0, 0x03, 0xe8,                   // capacity 1000
    b'd', b'i', b'r', b'-', b'a',       // name
    0, 0, 0, 0, 0, 0, 0, 3,             // generation 3
    0x00, 0x01, 0x00, 0x00,             // 1 entry, reserved
    0xc6, 0x12, 0x00, 0x03, 198, 18, 0, 3, 0x02, 0, 0, 0, 0, 0x03, 0, 0, 0x03, 0x84,
];

/// A placeholder announcement entry, for filling announcements up.
const ENTRY: Entry = Entry {
    id: 1,
    ip: Ipv4Addr::UNSPECIFIED,
    mac: [0; 6],
    weight: 1,
};

#[test]
fn deconstruct() {
    let p = Packet::new_checked(&FIXTURE[..]).unwrap();
    assert_eq!(p.magic(), MAGIC);
    assert_eq!(p.length(), 111);
    assert_eq!(p.lbid(), 10);
    assert_eq!(p.name(), b"dir-a");
    assert!(!p.has_auth());
    assert_eq!(p.entry(0).unwrap().weight, 900);
    assert_eq!(p.entry(1), None);
    assert_eq!(Repr::parse(&p).unwrap(), fixture_repr());
}

#[test]
fn construct() {
    let bytes = fixture_repr().to_bytes(None).unwrap();
    assert_eq!(&bytes[..], &FIXTURE[..]);
}

// HMAC-SHA256 computed independently:
// python3 -c 'import hmac,hashlib;print(hmac.new(b"secret",bytes(FIXTURE with
//   flags=0x0003 and length=143),hashlib.sha256).hexdigest())'
const FIXTURE_HMAC: &str = "b00cec5adcdb68efbe26c49c14743e05130bb0bd8dafc1968a79dbc446514157";

fn signed_fixture() -> Vec<u8> {
    let mut v = FIXTURE.to_vec();
    v[7] = 0x03;
    v[9] = 143;
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn construct_signed_matches_independent_hmac() {
    let bytes = fixture_repr().to_bytes(Some(b"secret")).unwrap();
    assert_eq!(bytes.len(), 143);
    assert_eq!(&bytes[..111], &signed_fixture()[..]);
    assert_eq!(hex(&bytes[111..]), FIXTURE_HMAC);
    let p = Packet::new_checked(&bytes[..]).unwrap();
    assert!(p.verify(b"secret").is_ok());
    assert_eq!(p.verify(b"other"), Err(Error::BadAuth { what: WHAT }));
    assert_eq!(Repr::parse(&p).unwrap(), fixture_repr());
}

#[test]
fn verify_rejects_missing_and_tampered() {
    let p = Packet::new_checked(&FIXTURE[..]).unwrap();
    assert!(p.verify(b"secret").is_err());
    let mut bytes = fixture_repr().to_bytes(Some(b"secret")).unwrap();
    bytes[70] ^= 1; // connections
    let p = Packet::new_checked(&bytes[..]).unwrap();
    assert!(p.verify(b"secret").is_err());
}

#[test]
fn typed_errors() {
    let mut b = FIXTURE;
    b[0] = 0;
    assert!(matches!(
        Packet::new_checked(&b[..]),
        Err(Error::BadMagic { .. })
    ));
    let mut b = FIXTURE;
    b[4] = 2;
    assert_eq!(
        Packet::new_checked(&b[..]).unwrap_err(),
        Error::BadVersion {
            what: WHAT,
            value: 2
        }
    );
    assert!(matches!(
        Packet::new_checked(&FIXTURE[..50]),
        Err(Error::Truncated {
            need: 76,
            have: 50,
            ..
        })
    ));
    assert!(matches!(
        Packet::new_checked(&FIXTURE[..110]),
        Err(Error::Truncated {
            need: 111,
            have: 110,
            ..
        })
    ));
    let mut b = FIXTURE;
    b[9] = 110;
    assert!(matches!(
        Packet::new_checked(&b[..]),
        Err(Error::BadLength { value: 110, .. })
    ));
    let mut b = FIXTURE;
    b[63] = 33;
    assert!(matches!(
        Packet::new_checked(&b[..]),
        Err(Error::BadField {
            field: "name length",
            value: 33,
            ..
        })
    ));
    let mut b = FIXTURE;
    b[7] = 0x06;
    assert!(matches!(
        Packet::new_checked(&b[..]),
        Err(Error::BadField { field: "flags", .. })
    ));
    let check = |i: usize, v: u8, field: &str| {
        let mut b = FIXTURE;
        b[i] = v;
        let p = Packet::new_checked(&b[..]).unwrap();
        match Repr::parse(&p) {
            Err(Error::BadField { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    };
    check(5, 3, "type");
    check(58, 2, "role");
    check(60, 2, "state"); // NETWORK is not a scanning state
    check(61, 1, "director state"); // OK is not a director state
    check(62, 17, "port count");
    check(65, 0x03, "port bitmap"); // bit 1 set with 1 port
    check(66, 0x04, "load"); // 0x04fa = 1274 > 1000
    check(76, 0xff, "name (UTF-8 at byte)");
    check(92, 1, "announcement reserved");
}

#[test]
fn trailing_bytes_are_ignored() {
    let mut v = FIXTURE.to_vec();
    v.extend_from_slice(&[0xaa; 10]);
    let p = Packet::new_checked(&v[..]).unwrap();
    assert_eq!(Repr::parse(&p).unwrap(), fixture_repr());
}

#[test]
fn emit_rejects_bad_values_and_short_buffers() {
    let mut r = fixture_repr();
    r.name = "x".repeat(33);
    assert!(r.to_bytes(None).is_err());
    let r = fixture_repr();
    let mut small = [0u8; 100];
    assert!(matches!(
        r.emit(&mut small, None),
        Err(Error::Truncated { .. })
    ));
    let mut r = fixture_repr();
    r.announcement.as_mut().unwrap().entries = vec![ENTRY; MAX_MEMBERS + 1];
    assert!(r.to_bytes(None).is_err());
}

#[test]
fn max_len_fits_16_bits_and_mtu() {
    let mut r = fixture_repr();
    r.name = "n".repeat(MAX_NAME_LEN);
    r.announcement.as_mut().unwrap().entries = vec![ENTRY; MAX_MEMBERS];
    let b = r.to_bytes(Some(b"k")).unwrap();
    assert_eq!(b.len(), MAX_LEN);
    const { assert!(MAX_LEN + 20 <= 1500) };
    let p = Packet::new_checked(&b[..]).unwrap();
    assert_eq!(Repr::parse(&p).unwrap(), r);
}

fn arb_state(scanning: bool) -> impl Strategy<Value = State> {
    if scanning {
        prop_oneof![
            Just(State::Unknown),
            Just(State::Ok),
            Just(State::Failed),
            Just(State::Draining)
        ]
        .boxed()
    } else {
        prop_oneof![
            Just(State::Unknown),
            Just(State::Network),
            Just(State::Redundant)
        ]
        .boxed()
    }
}

prop_compose! {
    fn arb_entry()(id: u32, ip: u32, mac: [u8; 6], weight: u32) -> Entry {
        Entry { id, ip: Ipv4Addr::from(ip), mac, weight }
    }
}

prop_compose! {
    fn arb_ports()(count in 0u8..=16, bits: u16) -> Ports {
        Ports { count, reachable: bits & Ports::mask(count) }
    }
}

prop_compose! {
    fn arb_repr()(
        req: bool, lbid: u16, node_id: u32, name in "\\PC{0,8}",
        director: bool, priority: u8,
        state in arb_state(true), director_state in arb_state(false),
        ipv4: u32, ipv6: u128, mac: [u8; 6], sequence: u64, timestamp_ms: u64,
        connections: u32, load_permille in 0u16..=1000, capacity: u32,
        ports in arb_ports(),
        announcement in proptest::option::of(
            (any::<u64>(), proptest::collection::vec(arb_entry(), 0..=MAX_MEMBERS))
        ),
    ) -> Repr {
        let mut name = name;
        while name.len() > MAX_NAME_LEN { name.pop(); }
        Repr {
            kind: if req { Kind::Request } else { Kind::Reply },
            lbid, node_id, name,
            role: if director { Role::Director } else { Role::Scanning },
            priority, state, director_state,
            ipv4: Ipv4Addr::from(ipv4), ipv6: Ipv6Addr::from(ipv6), mac,
            sequence, timestamp_ms, connections, load_permille, capacity, ports,
            announcement: announcement.map(|(generation, entries)| Announcement { generation, entries }),
        }
    }
}

proptest! {
    #[test]
    fn round_trip(r in arb_repr(), key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))) {
        let bytes = r.to_bytes(key.as_deref()).unwrap();
        prop_assert_eq!(bytes.len(), r.buffer_len(key.is_some()));
        let p = Packet::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(Repr::parse(&p).unwrap(), r);
        if let Some(k) = &key {
            prop_assert!(p.verify(k).is_ok());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1400)) {
        exercise(&bytes);
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        r in arb_repr(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)
    ) {
        let mut bytes = r.to_bytes(Some(b"k")).unwrap();
        for (i, v) in flips {
            let n = bytes.len();
            bytes[i % n] = v;
        }
        exercise(&bytes);
    }
}

/// Runs every accessor and the parser on `bytes`.
pub(super) fn exercise(bytes: &[u8]) {
    if let Ok(p) = Packet::new_checked(bytes) {
        let _ = (
            p.msg_type(),
            p.flags(),
            p.name(),
            p.generation(),
            p.member_count(),
        );
        for i in 0..=p.member_count() {
            let _ = p.entry(i);
        }
        let _ = (p.hmac(), p.signed_bytes(), p.verify(b"k"));
        if let Ok(r) = Repr::parse(&p) {
            let again = r.to_bytes(None).unwrap();
            let p2 = Packet::new_checked(&again[..]).unwrap();
            assert_eq!(Repr::parse(&p2).unwrap(), r);
        }
    }
}
