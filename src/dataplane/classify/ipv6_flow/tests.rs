use super::super::classify;
use super::*;
use crate::control::frames::build_ipv6;
use crate::wire::ethernet::Address;
use crate::wire::ipv4::Protocol;
use proptest::prelude::*;

const VMAC6: Address = Address([0, 0, 0x5e, 0, 2, 51]);
const CLIENT_MAC: Address = Address([2, 0, 0, 0, 0, 9]);

fn vip() -> Ipv6Addr {
    "2001:2::250".parse().unwrap()
}

fn client() -> Ipv6Addr {
    "2001:2::100".parse().unwrap()
}

fn filter() -> Filter {
    Filter::new(51, [2, 0, 0, 0, 0, 1])
        .with_vip6(vip())
        .with_ports([9090])
}

/// A TCP segment header (20 bytes) with `flags`.
fn tcp(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t
}

fn packet(dst_mac: Address, src: Ipv6Addr, dst: Ipv6Addr, next: u8, body: &[u8]) -> Vec<u8> {
    build_ipv6(
        CLIENT_MAC,
        dst_mac,
        src,
        dst,
        Protocol::from_u8(next),
        64,
        body,
    )
}

fn syn(dport: u16) -> Vec<u8> {
    packet(VMAC6, client(), vip(), 6, &tcp(40000, dport, 0x02))
}

#[test]
fn tcp_to_the_vip_is_balanced_with_the_folded_key() {
    let want = key(client(), vip(), 40000, 9090, 6);
    assert_eq!(
        classify(&filter(), &syn(9090)),
        Verdict::ProxyFlow(ProxyFlow {
            key: want,
            segment: flow::Segment::Open,
            l3_offset: 14,
        })
    );
    let fin = packet(VMAC6, client(), vip(), 6, &tcp(40000, 9090, 0x11));
    assert!(matches!(
        classify(&filter(), &fin),
        Verdict::ProxyFlow(ProxyFlow {
            segment: flow::Segment::Close,
            ..
        })
    ));
    let ack = packet(VMAC6, client(), vip(), 6, &tcp(40000, 9090, 0x10));
    assert!(matches!(
        classify(&filter(), &ack),
        Verdict::ProxyFlow(ProxyFlow {
            segment: flow::Segment::Data,
            ..
        })
    ));
    // UDP on the port too, as IPv4.
    let mut udp = vec![0u8; 8];
    udp[0..2].copy_from_slice(&5353u16.to_be_bytes());
    udp[2..4].copy_from_slice(&9090u16.to_be_bytes());
    assert!(matches!(
        classify(&filter(), &packet(VMAC6, client(), vip(), 17, &udp)),
        Verdict::ProxyFlow(_)
    ));
}

#[test]
fn what_is_not_a_balanced_flow_passes() {
    assert_eq!(classify(&filter(), &syn(9191)), Verdict::Pass, "other port");
    let own = packet(
        Address([2, 0, 0, 0, 0, 1]),
        client(),
        vip(),
        6,
        &tcp(1, 9090, 2),
    );
    assert_eq!(
        classify(&filter(), &own),
        Verdict::Pass,
        "own MAC (a redirected frame)"
    );
    let v4mac = packet(
        Address([0, 0, 0x5e, 0, 1, 51]),
        client(),
        vip(),
        6,
        &tcp(1, 9090, 2),
    );
    assert_eq!(
        classify(&filter(), &v4mac),
        Verdict::Pass,
        "IPv4 virtual MAC"
    );
    let other = packet(
        VMAC6,
        client(),
        "2001:2::1".parse().unwrap(),
        6,
        &tcp(1, 9090, 2),
    );
    assert_eq!(classify(&filter(), &other), Verdict::Pass, "not a VIP");
    let echo = packet(VMAC6, client(), vip(), ICMPV6, &[128, 0, 0, 0, 0, 1, 0, 1]);
    assert_eq!(classify(&filter(), &echo), Verdict::Pass, "echo request");
}

#[test]
fn malformed_transport_headers_are_dropped() {
    let short = packet(VMAC6, client(), vip(), 6, &tcp(40000, 9090, 2)[..19]);
    assert_eq!(
        classify(&filter(), &short),
        Verdict::Drop(DropReason::BadTcp)
    );
    let mut doff = tcp(40000, 9090, 2);
    doff[12] = 15 << 4;
    assert_eq!(
        classify(&filter(), &packet(VMAC6, client(), vip(), 6, &doff)),
        Verdict::Drop(DropReason::BadTcp)
    );
    assert_eq!(
        classify(&filter(), &packet(VMAC6, client(), vip(), 17, &[0; 7])),
        Verdict::Drop(DropReason::BadUdp)
    );
}

#[test]
fn extension_headers_and_fragments_are_counted_drops() {
    for next in [0u8, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254] {
        // A fragment header (8 bytes) then the TCP header: never steered.
        let mut body = vec![6, 0, 0, 1, 0, 0, 0, 7];
        body.extend_from_slice(&tcp(40000, 9090, 2));
        assert_eq!(
            classify(&filter(), &packet(VMAC6, client(), vip(), next, &body)),
            Verdict::Drop(DropReason::Ipv6ExtensionHeader),
            "next header {next}"
        );
    }
    // Not to a VIP: the kernel's business.
    let body = [6, 0, 0, 1, 0, 0, 0, 7];
    let other = packet(VMAC6, client(), "2001:2::1".parse().unwrap(), 44, &body);
    assert_eq!(classify(&filter(), &other), Verdict::Pass);
}

/// An ICMPv6 error of `kind` from a router to the VIP, quoting the node's
/// reply VIP:9090 → client:40000 (IPv6 header + 8 bytes, cut to `quoted`).
fn icmp_error(kind: u8, sport: u16, quoted: usize) -> Vec<u8> {
    let reply = packet(CLIENT_MAC, vip(), client(), 6, &tcp(sport, 40000, 0x10));
    let mut body = vec![kind, 0, 0, 0, 0, 0, 0x05, 0x00];
    body.extend_from_slice(&reply[14..14 + quoted]);
    packet(VMAC6, "2001:2::fe".parse().unwrap(), vip(), ICMPV6, &body)
}

#[test]
fn icmpv6_errors_quoting_a_flow_go_to_its_node() {
    let want = key(client(), vip(), 40000, 9090, 6);
    for kind in [1, 2, 3, 4] {
        assert_eq!(
            classify(&filter(), &icmp_error(kind, 9090, 48)),
            Verdict::IcmpError(want),
            "type {kind}"
        );
    }
    // The key is the data packets' key: the same flow-table entry.
    let Verdict::ProxyFlow(p) = classify(&filter(), &syn(9090)) else {
        panic!()
    };
    assert_eq!(p.key, want);
    assert_eq!(
        classify(&filter(), &icmp_error(2, 9090, 43)),
        Verdict::Drop(DropReason::BadIcmp),
        "quote cut before the ports"
    );
    assert_eq!(
        classify(&filter(), &icmp_error(2, 9191, 48)),
        Verdict::Pass,
        "not from a redirected port"
    );
}

#[test]
fn the_fold_is_fixed() {
    // Every director (and every version) must fold the same way: a change
    // would move every IPv6 flow at the next failover.
    assert_eq!(fold(vip()), fold("2001:2::250".parse().unwrap()));
    assert_eq!(
        fold(vip()),
        0x3137_e208,
        "fold(2001:2::250) = {:#x}",
        fold(vip())
    );
    assert_ne!(fold(vip()), fold(client()));
}

proptest! {
    #[test]
    fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..120), next: u8) {
        let _ = classify(&filter(), &packet(VMAC6, client(), vip(), next, &body));
    }
}
