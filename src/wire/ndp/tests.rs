//! Byte fixtures (checksums computed independently, with Python's
//! `ipaddress` and a plain RFC 1071 sum over the pseudo-header) and
//! properties.

use super::*;
use proptest::prelude::*;

const CLIENT: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const CLIENT_MAC: ethernet::Address = ethernet::Address([2, 0, 0, 0, 0, 9]);
const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x250);
const VMAC: ethernet::Address = ethernet::Address([0, 0, 0x5e, 0, 2, 0x33]);

/// NS from fe80::1 (source link-layer option 02:00:00:00:00:09) for
/// 2001:2::250, to ff02::1:ff00:250. Checksum 0x5471.
static NS: [u8; 32] = [
    0x87, 0x00, 0x54, 0x71, 0x00, 0x00, 0x00, 0x00, //
    0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x50,
    0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x09,
];

/// The answer: NA from 2001:2::250 to fe80::1, S and O set, target
/// link-layer address 00:00:5e:00:02:33. Checksum 0x7248.
static NA_SOLICITED: [u8; 32] = [
    0x88, 0x00, 0x72, 0x48, 0x60, 0x00, 0x00, 0x00, //
    0x20, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x50,
    0x02, 0x01, 0x00, 0x00, 0x5e, 0x00, 0x02, 0x33,
];

fn solicited_node() -> Ipv6Addr {
    ipv6::solicited_node(VIP)
}

#[test]
fn solicitation_fixture_parses_and_builds() {
    assert_eq!(
        solicited_node(),
        "ff02::1:ff00:250".parse::<Ipv6Addr>().unwrap()
    );
    assert_eq!(solicitation(CLIENT, CLIENT_MAC, VIP), NS);
    let s = Solicitation::parse(&NS, CLIENT, solicited_node(), 255).unwrap();
    assert_eq!(
        s,
        Solicitation {
            target: VIP,
            source_lladdr: Some(CLIENT_MAC),
        }
    );
}

#[test]
fn advertisement_fixtures() {
    let na = Advertisement {
        flags: Flags {
            router: false,
            solicited: true,
            override_: true,
        },
        target: VIP,
        target_lladdr: VMAC,
    };
    assert_eq!(na.to_bytes(VIP, CLIENT), NA_SOLICITED);
    assert_eq!(
        Advertisement::parse(&NA_SOLICITED, VIP, CLIENT).unwrap(),
        na
    );
    // Unsolicited to ff02::1: O only (checksum 0xb1c6), R and O (0x31c6).
    let unsolicited = Advertisement {
        flags: Flags {
            override_: true,
            ..Flags::default()
        },
        ..na
    };
    let b = unsolicited.to_bytes(VIP, ALL_NODES);
    assert_eq!((b[4], &b[2..4]), (0x20, &[0xb1, 0xc6][..]));
    let router = Advertisement {
        flags: Flags {
            router: true,
            override_: true,
            ..Flags::default()
        },
        ..na
    };
    let b = router.to_bytes(VIP, ALL_NODES);
    assert_eq!((b[4], &b[2..4]), (0xa0, &[0x31, 0xc6][..]));
    // Another destination: the checksum no longer verifies.
    assert_eq!(
        Advertisement::parse(&NA_SOLICITED, VIP, ALL_NODES),
        Err(Error::BadChecksum { what: WHAT })
    );
}

#[test]
fn solicitation_from_the_unspecified_address() {
    // Duplicate address detection: from ::, no option, to the
    // solicited-node group. Checksum 0x5605.
    let dad = solicitation(Ipv6Addr::UNSPECIFIED, CLIENT_MAC, VIP);
    assert_eq!(dad.len(), 24);
    assert_eq!(&dad[2..4], &[0x56, 0x05]);
    let s = Solicitation::parse(&dad, Ipv6Addr::UNSPECIFIED, solicited_node(), 255).unwrap();
    assert_eq!(s.source_lladdr, None);
    // From :: to another group: refused (checksum recomputed for it).
    let other = ALL_NODES;
    let mut b = dad.clone();
    b[2..4].copy_from_slice(&[0, 0]);
    let c = compute_checksum(&b, Ipv6Addr::UNSPECIFIED, other);
    b[2..4].copy_from_slice(&c.to_be_bytes());
    assert!(Solicitation::parse(&b, Ipv6Addr::UNSPECIFIED, other, 255).is_err());
}

#[test]
fn rfc4861_validation() {
    let dst = solicited_node();
    // Hop limit not 255: from off the link.
    assert!(Solicitation::parse(&NS, CLIENT, dst, 254).is_err());
    // Bad checksum.
    let mut b = NS;
    b[3] ^= 1;
    assert_eq!(
        Solicitation::parse(&b, CLIENT, dst, 255),
        Err(Error::BadChecksum { what: WHAT })
    );
    // Each rule with the checksum refilled, so only the rule fails.
    let refill = |mut b: Vec<u8>| {
        b[2..4].copy_from_slice(&[0, 0]);
        let c = compute_checksum(&b, CLIENT, dst);
        b[2..4].copy_from_slice(&c.to_be_bytes());
        b
    };
    let mut code = NS.to_vec();
    code[1] = 1;
    assert!(Solicitation::parse(&refill(code), CLIENT, dst, 255).is_err());
    let mut mcast = NS.to_vec();
    mcast[8] = 0xff;
    assert!(Solicitation::parse(&refill(mcast), CLIENT, dst, 255).is_err());
    let mut zero_opt = NS.to_vec();
    zero_opt[25] = 0;
    assert!(Solicitation::parse(&refill(zero_opt), CLIENT, dst, 255).is_err());
    let mut long_opt = NS.to_vec();
    long_opt[25] = 2;
    assert!(Solicitation::parse(&refill(long_opt), CLIENT, dst, 255).is_err());
    assert!(Solicitation::parse(&NS[..23], CLIENT, dst, 255).is_err());
    // An NA is not an NS.
    assert!(Solicitation::parse(&NA_SOLICITED, VIP, CLIENT, 255).is_err());
    // An unknown option is skipped.
    let mut extra = NS.to_vec();
    extra.extend_from_slice(&[14, 1, 0, 0, 0, 0, 0, 0]);
    assert!(Solicitation::parse(&refill(extra), CLIENT, dst, 255).is_ok());
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80), hl: u8) {
        let _ = Solicitation::parse(&bytes, CLIENT, solicited_node(), hl);
        let _ = Advertisement::parse(&bytes, VIP, CLIENT);
    }

    #[test]
    fn advertisement_round_trips(t: u128, m: [u8; 6], r: bool, s: bool, o: bool) {
        let na = Advertisement {
            flags: Flags { router: r, solicited: s, override_: o },
            target: Ipv6Addr::from(t),
            target_lladdr: ethernet::Address(m),
        };
        let b = na.to_bytes(VIP, ALL_NODES);
        prop_assert_eq!(Advertisement::parse(&b, VIP, ALL_NODES).unwrap(), na);
    }
}
