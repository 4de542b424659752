use super::*;
use proptest::prelude::*;

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);

/// VRID 51, priority 99, one address 198.18.0.250, auth none, 1 s: the
/// advert tcpdump prints as "VRRPv2, Advertisement, vrid 51, prio 99,
/// authtype none, intvl 1s, length 20". Checksum computed by hand:
/// 2133+6301+0001+c612+00fa = 0x14b41 -> 4b42 -> !4b42 = b4bd.
static V2_BYTES: [u8; 20] = [
    0x21, 0x33, 0x63, 0x01, 0x00, 0x01, 0xb4, 0xbd, 198, 18, 0, 250, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// The same in v3 with Max Adver Int 100 cs, from 198.18.0.1 to 224.0.0.18.
/// Pseudo-header c612+0001+e000+0012+0070+000c = 0x1a6a1, message
/// 3133+6301+0064+c612+00fa = 0x15ba4, total 0x30245 -> 0248 -> fdb7.
static V3_BYTES: [u8; 12] = [
    0x31, 0x33, 0x63, 0x01, 0x00, 0x64, 0xfd, 0xb7, 198, 18, 0, 250,
];

fn v2_repr() -> Repr {
    Repr {
        version: Version::V2,
        vrid: 51,
        priority: 99,
        adver_int: 1,
        auth: Auth::None,
        addrs: vec![VIP],
    }
}

fn v3_repr() -> Repr {
    Repr {
        version: Version::V3,
        adver_int: 100,
        ..v2_repr()
    }
}

#[test]
fn v2_deconstruct() {
    let p = Packet::new_checked(&V2_BYTES[..]).unwrap();
    assert_eq!(p.version(), Version::V2);
    assert_eq!(p.msg_type(), 1);
    assert_eq!(p.vrid(), 51);
    assert_eq!(p.priority(), 99);
    assert_eq!(p.addr_count(), 1);
    assert_eq!(p.auth_type(), AUTH_TYPE_NONE);
    assert_eq!(p.adver_int(), 1);
    assert_eq!(p.checksum(), 0xb4bd);
    assert_eq!(p.addr(0), Some(VIP));
    assert_eq!(p.addr(1), None);
    assert_eq!(p.auth_data(), Some([0; 8]));
    assert_eq!(p.message_len(), 20);
    assert!(p.verify_checksum(SRC, MULTICAST_ADDR));
    // v2 ignores the IP addresses.
    assert!(p.verify_checksum(Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST));
    assert_eq!(Repr::parse(&p, SRC, MULTICAST_ADDR).unwrap(), v2_repr());
}

#[test]
fn v2_construct() {
    assert_eq!(v2_repr().to_bytes(SRC, MULTICAST_ADDR).unwrap(), V2_BYTES);
}

#[test]
fn v3_deconstruct() {
    let p = Packet::new_checked(&V3_BYTES[..]).unwrap();
    assert_eq!(p.version(), Version::V3);
    assert_eq!(p.reserved(), 0);
    assert_eq!(p.max_adver_int(), 100);
    assert_eq!(p.checksum(), 0xfdb7);
    assert_eq!(p.auth_data(), None);
    assert_eq!(p.message_len(), 12);
    assert!(p.verify_checksum(SRC, MULTICAST_ADDR));
    // The pseudo-header matters in v3.
    assert!(!p.verify_checksum(Ipv4Addr::new(198, 18, 0, 2), MULTICAST_ADDR));
    assert_eq!(Repr::parse(&p, SRC, MULTICAST_ADDR).unwrap(), v3_repr());
}

#[test]
fn v3_construct() {
    assert_eq!(v3_repr().to_bytes(SRC, MULTICAST_ADDR).unwrap(), V3_BYTES);
}

#[test]
fn v3_reserved_bits_ignored_on_receive() {
    let mut b = V3_BYTES;
    b[4] |= 0xf0;
    // Fix the checksum for the changed byte.
    let mut p = Packet::new_checked(&mut b[..]).unwrap();
    p.fill_checksum(SRC, MULTICAST_ADDR);
    let p = Packet::new_checked(&b[..]).unwrap();
    assert_eq!(p.reserved(), 0xf);
    assert_eq!(Repr::parse(&p, SRC, MULTICAST_ADDR).unwrap(), v3_repr());
}

#[test]
fn v2_simple_text_auth() {
    let repr = Repr {
        auth: Auth::SimpleText(*b"secret\0\0"),
        ..v2_repr()
    };
    let bytes = repr.to_bytes(SRC, MULTICAST_ADDR).unwrap();
    assert_eq!(bytes[4], AUTH_TYPE_SIMPLE_TEXT);
    assert_eq!(&bytes[12..20], b"secret\0\0");
    let p = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(Repr::parse(&p, SRC, MULTICAST_ADDR).unwrap(), repr);
}

#[test]
fn v2_auth_none_ignores_data_on_receive() {
    let mut b = V2_BYTES;
    b[12..20].copy_from_slice(b"garbage!");
    let mut p = Packet::new_checked(&mut b[..]).unwrap();
    p.fill_checksum(SRC, MULTICAST_ADDR);
    let p = Packet::new_checked(&b[..]).unwrap();
    assert_eq!(Repr::parse(&p, SRC, MULTICAST_ADDR).unwrap(), v2_repr());
}

#[test]
fn errors_name_what_was_wrong() {
    assert_eq!(
        Packet::new_checked(&V2_BYTES[..7]).unwrap_err(),
        Error::Truncated {
            what: "vrrp",
            need: 8,
            have: 7
        }
    );
    // v2 with one address needs the 8 bytes of auth data too.
    assert_eq!(
        Packet::new_checked(&V2_BYTES[..12]).unwrap_err(),
        Error::Truncated {
            what: "vrrp",
            need: 20,
            have: 12
        }
    );
    let mut b = V2_BYTES;
    b[3] = 2; // two addresses announced, one present
    assert_eq!(
        Packet::new_checked(&b[..]).unwrap_err(),
        Error::Truncated {
            what: "vrrp",
            need: 24,
            have: 20
        }
    );
    let mut b = V2_BYTES;
    b[0] = 0x41;
    assert_eq!(
        Packet::new_checked(&b[..]).unwrap_err(),
        Error::BadVersion {
            what: "vrrp",
            value: 4
        }
    );
    let mut b = V2_BYTES;
    b[0] = 0x22;
    let p = Packet::new_checked(&b[..]).unwrap();
    assert_eq!(
        Repr::parse(&p, SRC, MULTICAST_ADDR).unwrap_err(),
        Error::BadField {
            what: "vrrp",
            field: "type",
            value: 2
        }
    );
    let mut b = V2_BYTES;
    b[2] = 100; // priority changed, checksum not updated
    let p = Packet::new_checked(&b[..]).unwrap();
    assert_eq!(
        Repr::parse(&p, SRC, MULTICAST_ADDR).unwrap_err(),
        Error::BadChecksum { what: "vrrp" }
    );
    let b = [0x31, 51, 99, 0, 0, 100, 0, 0];
    let p = Packet::new_checked(&b[..]).unwrap();
    assert_eq!(
        Repr::parse(&p, SRC, MULTICAST_ADDR).unwrap_err(),
        Error::BadField {
            what: "vrrp",
            field: "count",
            value: 0
        }
    );
}

#[test]
fn emit_rejects_what_does_not_fit() {
    let too_long = Repr {
        adver_int: 4096,
        ..v3_repr()
    };
    assert!(matches!(
        too_long.to_bytes(SRC, MULTICAST_ADDR),
        Err(Error::BadField {
            field: "adver_int",
            ..
        })
    ));
    let v2_too_long = Repr {
        adver_int: 256,
        ..v2_repr()
    };
    assert!(v2_too_long.to_bytes(SRC, MULTICAST_ADDR).is_err());
    let no_addrs = Repr {
        addrs: vec![],
        ..v2_repr()
    };
    assert!(no_addrs.to_bytes(SRC, MULTICAST_ADDR).is_err());
    let v3_auth = Repr {
        auth: Auth::SimpleText([1; 8]),
        ..v3_repr()
    };
    assert!(v3_auth.to_bytes(SRC, MULTICAST_ADDR).is_err());
    let mut small = [0u8; 19];
    assert!(matches!(
        v2_repr().emit(
            &mut Packet::new_unchecked(&mut small[..]),
            SRC,
            MULTICAST_ADDR
        ),
        Err(Error::Truncated {
            need: 20,
            have: 19,
            ..
        })
    ));
}

#[test]
fn trailing_bytes_are_not_part_of_the_message() {
    let mut b = V3_BYTES.to_vec();
    b.extend_from_slice(&[0xaa, 0xbb]);
    let p = Packet::new_checked(&b[..]).unwrap();
    assert_eq!(p.message_len(), 12);
    assert_eq!(Repr::parse(&p, SRC, MULTICAST_ADDR).unwrap(), v3_repr());
}

fn arb_repr() -> impl Strategy<Value = Repr> {
    let addrs = proptest::collection::vec(any::<u32>().prop_map(Ipv4Addr::from), 1..=255);
    let v2 = (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        prop_oneof![
            Just(Auth::None),
            any::<[u8; 8]>().prop_map(Auth::SimpleText),
            (2u8..=255).prop_map(Auth::Unknown),
        ],
        addrs.clone(),
    )
        .prop_map(|(vrid, priority, int, auth, addrs)| Repr {
            version: Version::V2,
            vrid,
            priority,
            adver_int: u16::from(int),
            auth,
            addrs,
        });
    let v3 = (any::<u8>(), any::<u8>(), 0u16..=MAX_ADVER_INT_CS, addrs).prop_map(
        |(vrid, priority, adver_int, addrs)| Repr {
            version: Version::V3,
            vrid,
            priority,
            adver_int,
            auth: Auth::None,
            addrs,
        },
    );
    prop_oneof![v2, v3]
}

proptest! {
    #[test]
    fn round_trip(repr in arb_repr(), src in any::<u32>(), dst in any::<u32>()) {
        let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
        let bytes = repr.to_bytes(src, dst).unwrap();
        prop_assert_eq!(bytes.len(), repr.buffer_len());
        let p = Packet::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(Repr::parse(&p, src, dst).unwrap(), repr);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1100),
                                   src in any::<u32>(), dst in any::<u32>()) {
        let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
        if let Ok(p) = Packet::new_checked(&bytes[..]) {
            let _ = (p.version(), p.msg_type(), p.vrid(), p.priority(), p.auth_type(),
                     p.adver_int(), p.reserved(), p.max_adver_int(), p.checksum(),
                     p.auth_data(), p.verify_checksum(src, dst));
            prop_assert_eq!(p.addrs().count(), usize::from(p.addr_count()));
            if let Ok(repr) = Repr::parse(&p, src, dst) {
                // Whatever parses re-emits to a message that parses the same.
                let again = repr.to_bytes(src, dst).unwrap();
                let q = Packet::new_checked(&again[..]).unwrap();
                prop_assert_eq!(Repr::parse(&q, src, dst).unwrap(), repr);
            }
        }
    }

    #[test]
    fn short_headers_are_truncated(bytes in proptest::collection::vec(any::<u8>(), 0..8)) {
        let truncated = matches!(Packet::new_checked(&bytes[..]), Err(Error::Truncated { .. }));
        prop_assert!(truncated);
    }
}
