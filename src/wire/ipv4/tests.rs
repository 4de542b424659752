use super::*;
use proptest::prelude::*;

/// The worked example of Wikipedia's "IPv4 header checksum" article: a
/// UDP datagram 192.168.0.1 -> 192.168.0.199 (total length 115, DF,
/// TTL 64) with checksum 0xb861. Kernel captures are in `pcap::captured`.
/// The 95 payload bytes are not part of the fixture; tests pad zeros.
static CAPTURED_HEADER: [u8; 20] = [
    0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01,
    0xc0, 0xa8, 0x00, 0xc7,
];

fn captured_packet() -> Vec<u8> {
    let mut v = CAPTURED_HEADER.to_vec();
    v.resize(0x73, 0);
    v
}

/// An IGMPv2 report from 198.18.0.7 to 224.0.0.22 with the Router Alert
/// option (RFC 2113: 0x94 0x04 0x00 0x00), IHL 6, TOS 0xc0, TTL 1.
/// Checksum 0x3de8 computed independently (Python).
static WITH_OPTIONS: [u8; 32] = [
    0x46, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02, 0x3d, 0xe8, 198, 18, 0, 7, 224, 0,
    0, 22, 0x94, 0x04, 0x00, 0x00, 0x16, 0x00, 0xfa, 0x04, 0xe0, 0x00, 0x00, 0x16,
];

use crate::wire::pcap::captured;

/// The IPv4 packet inside a captured Ethernet frame.
fn ip_of(frame_hex: &str) -> Vec<u8> {
    captured::hex(frame_hex)[14..].to_vec()
}

#[test]
fn kernel_captured_echo_request() {
    let buf = ip_of(captured::ECHO_REQUEST);
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(
        (p.header_len(), p.total_len(), p.ident(), p.ttl()),
        (20, 84, 8, 64)
    );
    assert!(p.dont_frag() && !p.is_fragment());
    assert_eq!(p.protocol(), Protocol::Icmp);
    assert_eq!(p.checksum(), 0xac79);
    assert!(p.verify_checksum());
    assert_eq!(p.src_addr(), Ipv4Addr::new(198, 18, 1, 1));
    assert_eq!(p.dst_addr(), Ipv4Addr::new(198, 18, 1, 2));
    assert_eq!(p.payload().len(), 64);
    let repr = Repr::parse(&p).unwrap();
    // Our emit reproduces the kernel's header byte for byte, checksum included.
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut out[..]));
    assert_eq!(out[..20], buf[..20]);

    let reply = ip_of(captured::ECHO_REPLY);
    let p = Packet::new_checked(&reply[..]).unwrap();
    assert_eq!(
        (p.checksum(), p.ident(), p.dont_frag()),
        (0x8828, 25689, false)
    );
    let repr = Repr::parse(&p).unwrap();
    repr.emit(&mut Packet::new_unchecked(&mut out[..]));
    assert_eq!(out[..20], reply[..20]);
}

#[test]
fn kernel_captured_record_route_options() {
    let buf = ip_of(captured::ECHO_REQUEST_RR);
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(p.header_len(), 60);
    assert_eq!(p.total_len(), 124);
    assert_eq!(p.checksum(), 0xb32d);
    assert!(p.verify_checksum());
    // NOP, then RR: type 7, length 39, pointer 8, first slot 198.18.1.1.
    assert_eq!(p.options()[..8], [0x01, 0x07, 0x27, 0x08, 198, 18, 1, 1]);
    assert_eq!(p.options().len(), 40);
    assert_eq!(p.payload().len(), 64);
    assert_eq!(p.payload()[0], 8); // ICMP echo request
    let repr = Repr::parse(&p).unwrap();
    assert_eq!(repr.options.len(), 40);
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut out[..]));
    assert_eq!(out[..60], buf[..60]);
    // One flipped bit anywhere in the header breaks the checksum.
    for i in 0..60 {
        let mut b = buf.clone();
        b[i] ^= 0x10;
        if let Ok(p) = Packet::new_checked(&b[..]) {
            assert!(!p.verify_checksum(), "bit flip at {i} not detected");
        }
    }
}

#[test]
fn deconstruct_captured_header() {
    let buf = captured_packet();
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(p.version(), 4);
    assert_eq!(p.header_len(), 20);
    assert_eq!(p.total_len(), 115);
    assert_eq!(p.ident(), 0);
    assert!(p.dont_frag());
    assert!(!p.more_frags());
    assert!(!p.is_fragment());
    assert_eq!(p.ttl(), 64);
    assert_eq!(p.protocol(), Protocol::Udp);
    assert_eq!(p.checksum(), 0xb861);
    assert!(p.verify_checksum());
    assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
    assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
    assert_eq!(p.options(), &[] as &[u8]);
    assert_eq!(p.payload().len(), 95);
}

#[test]
fn construct_captured_header() {
    let repr = Repr {
        src: Ipv4Addr::new(192, 168, 0, 1),
        dst: Ipv4Addr::new(192, 168, 0, 199),
        protocol: Protocol::Udp,
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: 0,
        dont_frag: true,
        payload_len: 95,
        options: Options::NONE,
    };
    let mut buf = vec![0xaa; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
    assert_eq!(buf[..20], CAPTURED_HEADER);
    assert_eq!(
        Repr::parse(&Packet::new_checked(&captured_packet()[..]).unwrap()).unwrap(),
        repr
    );
}

#[test]
fn options_deconstruct_and_construct() {
    let p = Packet::new_checked(&WITH_OPTIONS[..]).unwrap();
    assert_eq!(p.header_len(), 24);
    assert_eq!(p.dscp(), 48);
    assert_eq!(p.ecn(), 0);
    assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
    assert_eq!(p.payload(), &WITH_OPTIONS[24..]);
    assert_eq!(p.protocol(), Protocol::Unknown(2));
    assert!(p.verify_checksum());
    let repr = Repr::parse(&p).unwrap();
    assert_eq!(repr.options.as_bytes(), &[0x94, 0x04, 0x00, 0x00]);
    assert_eq!(repr.payload_len, 8);

    let mut buf = [0u8; 32];
    buf[24..].copy_from_slice(&WITH_OPTIONS[24..]);
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
    assert_eq!(buf, WITH_OPTIONS);
}

#[test]
fn ethernet_padding_is_not_payload() {
    let mut buf = WITH_OPTIONS.to_vec();
    buf.extend_from_slice(&[0; 14]);
    let p = Packet::new_checked(&buf[..]).unwrap();
    assert_eq!(p.payload(), &WITH_OPTIONS[24..]);
}

#[test]
fn bad_headers_name_what_was_wrong() {
    let good = captured_packet();
    assert_eq!(
        Packet::new_checked(&good[..19]).unwrap_err(),
        Error::Truncated {
            what: "ipv4",
            need: 20,
            have: 19
        }
    );
    let mut b = good.clone();
    b[0] = 0x65;
    assert_eq!(
        Packet::new_checked(&b[..]).unwrap_err(),
        Error::BadVersion {
            what: "ipv4",
            value: 6
        }
    );
    b[0] = 0x44;
    assert_eq!(
        Packet::new_checked(&b[..]).unwrap_err(),
        Error::BadLength {
            what: "ipv4 header length",
            value: 16
        }
    );
    b[0] = 0x4f;
    assert_eq!(
        Packet::new_checked(&b[..40]).unwrap_err(),
        Error::Truncated {
            what: "ipv4 header",
            need: 60,
            have: 40
        }
    );
    let mut b = good.clone();
    b[2..4].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(
        Packet::new_checked(&b[..]).unwrap_err(),
        Error::BadLength {
            what: "ipv4 total length",
            value: 19
        }
    );
    assert_eq!(
        Packet::new_checked(&good[..100]).unwrap_err(),
        Error::Truncated {
            what: "ipv4 total length",
            need: 115,
            have: 100
        }
    );
    let mut b = good.clone();
    b[10] ^= 1;
    assert_eq!(
        Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap_err(),
        Error::BadChecksum { what: "ipv4" }
    );
}

#[test]
fn fragments_are_seen_but_not_parsed() {
    let mut b = captured_packet();
    let mut p = Packet::new_checked(&mut b[..]).unwrap();
    p.set_frag(false, true, 0);
    p.fill_checksum();
    assert!(p.is_fragment() && p.more_frags());
    assert_eq!(
        Repr::parse(&p).unwrap_err(),
        Error::BadField {
            what: "ipv4",
            field: "more-fragments flag",
            value: 1
        }
    );
    p.set_frag(false, false, 1480);
    p.fill_checksum();
    assert_eq!(p.frag_offset(), 1480);
    assert_eq!(
        Repr::parse(&p).unwrap_err(),
        Error::BadField {
            what: "ipv4",
            field: "fragment offset",
            value: 1480
        }
    );
}

#[test]
fn options_must_be_whole_words() {
    assert!(Options::new(&[1, 1, 1, 0]).is_ok());
    assert_eq!(
        Options::new(&[1, 1, 1]).unwrap_err(),
        Error::BadLength {
            what: "ipv4 options",
            value: 3
        }
    );
    assert_eq!(
        Options::new(&[0; 44]).unwrap_err(),
        Error::BadLength {
            what: "ipv4 options",
            value: 44
        }
    );
}

#[test]
fn cidr() {
    let c: Cidr = "198.18.0.250/24".parse().unwrap();
    assert_eq!(c.address(), Ipv4Addr::new(198, 18, 0, 250));
    assert_eq!(c.prefix_len(), 24);
    assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
    assert_eq!(c.network(), Ipv4Addr::new(198, 18, 0, 0));
    assert_eq!(c.broadcast(), Ipv4Addr::new(198, 18, 0, 255));
    assert!(c.contains(Ipv4Addr::new(198, 18, 0, 1)));
    assert!(!c.contains(Ipv4Addr::new(198, 18, 1, 1)));
    assert_eq!(c.to_string(), "198.18.0.250/24");
    let all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
    assert_eq!(all.netmask(), Ipv4Addr::UNSPECIFIED);
    let host: Cidr = "198.18.0.250/32".parse().unwrap();
    assert!(host.contains(Ipv4Addr::new(198, 18, 0, 250)));
    assert!(!host.contains(Ipv4Addr::new(198, 18, 0, 251)));
    assert_eq!(
        "198.18.0.250/33".parse::<Cidr>().unwrap_err(),
        Error::BadField {
            what: "ipv4 cidr",
            field: "prefix length",
            value: 33
        }
    );
    for bad in [
        "198.18.0.250",
        "198.18.0.250/",
        "198.18.0/24",
        "198.18.0.250/+4",
        "198.18.0.250/024",
        "x/24",
    ] {
        assert_eq!(
            bad.parse::<Cidr>().unwrap_err(),
            Error::BadText {
                what: "ipv4 cidr",
                text: bad.to_string()
            },
            "{bad:?}"
        );
    }
}

#[test]
fn protocol_numbers() {
    for (p, v) in [
        (Protocol::Icmp, 1),
        (Protocol::Tcp, 6),
        (Protocol::Udp, 17),
        (Protocol::Vrrp, 112),
        (Protocol::Heartbeat, 253),
        (Protocol::Unknown(89), 89),
    ] {
        assert_eq!(u8::from(p), v);
        assert_eq!(Protocol::from(v), p);
    }
}

pub(crate) fn arb_ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn arb_repr() -> impl Strategy<Value = Repr> {
    (
        (
            arb_ipv4(),
            arb_ipv4(),
            any::<u8>().prop_map(Protocol::from),
            any::<u8>(),
        ),
        (0u8..64, 0u8..4, any::<u16>(), any::<bool>()),
        0usize..200,
        (0usize..=10).prop_flat_map(|words| proptest::collection::vec(any::<u8>(), words * 4)),
    )
        .prop_map(
            |((src, dst, protocol, ttl), (dscp, ecn, ident, dont_frag), payload_len, opts)| Repr {
                src,
                dst,
                protocol,
                ttl,
                dscp,
                ecn,
                ident,
                dont_frag,
                payload_len,
                options: Options::new(&opts).unwrap(),
            },
        )
}

proptest! {
    #[test]
    fn round_trip(repr in arb_repr()) {
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        let p = Packet::new_checked(&buf[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(Repr::parse(&p).unwrap(), repr);
    }

    #[test]
    fn cidr_text_round_trip(a in arb_ipv4(), len in 0u8..=32) {
        let c = Cidr::new(a, len).unwrap();
        prop_assert_eq!(c.to_string().parse::<Cidr>().unwrap(), c);
        prop_assert!(c.contains(a));
        prop_assert!(c.contains(c.network()) && c.contains(c.broadcast()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..80), fix_version in any::<bool>()) {
        if fix_version && !bytes.is_empty() {
            // Most random first bytes are not version 4; steer half the cases in.
            bytes[0] = 0x40 | (bytes[0] & 0x0f);
            if bytes.len() >= 4 {
                let l = bytes.len() as u16;
                let t = u16::from_be_bytes([bytes[2], bytes[3]]) % (l + 1);
                bytes[2..4].copy_from_slice(&t.to_be_bytes());
            }
        }
        if let Ok(p) = Packet::new_checked(&bytes[..]) {
            let _ = (p.version(), p.header_len(), p.dscp(), p.ecn(), p.total_len(), p.ident());
            let _ = (p.dont_frag(), p.more_frags(), p.frag_offset(), p.is_fragment(), p.ttl());
            let _ = (p.protocol(), p.checksum(), p.src_addr(), p.dst_addr(), p.verify_checksum());
            prop_assert_eq!(p.header_len() + p.payload().len(), usize::from(p.total_len()));
            prop_assert_eq!(p.options().len(), p.header_len() - 20);
            let _ = Repr::parse(&p);
        } else {
            prop_assert!(Repr::parse(&Packet::new_unchecked(&bytes[..])).is_err());
        }
        let mut copy = bytes.clone();
        if let Ok(mut p) = Packet::new_checked(&mut copy[..]) {
            p.fill_checksum();
            prop_assert!(p.verify_checksum());
            let _ = (p.options_mut().len(), p.payload_mut().len());
            // Setters that break the layout must not make accessors panic.
            p.set_header_len(60);
            p.set_total_len(u16::MAX);
            let _ = (p.options().len(), p.payload().len(), p.verify_checksum());
            p.fill_checksum();
        }
    }
}
