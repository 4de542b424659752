use super::build::*;
use super::*;
use proptest::prelude::*;

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
const OUR: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x64];

/// A TCP segment from the client's 40000 to VIP:9090, untagged, to the virtual MAC.
fn client_tcp(flags: u8, payload: &[u8]) -> Vec<u8> {
    tcp(
        vmac(),
        CLIENT_MAC,
        None,
        CLIENT,
        40000,
        VIP,
        9090,
        flags,
        payload,
    )
}

fn filter() -> Filter {
    Filter::new(51, OUR).with_vip(VIP).with_ports([9090, 8080])
}

fn vmac() -> [u8; 6] {
    virtual_mac(51)
}

#[test]
fn proxy_flow_tcp_and_udp() {
    let f = filter();
    let syn = client_tcp(SYN, &[]);
    let Verdict::ProxyFlow(p) = classify(&f, &syn) else {
        panic!("{:?}", classify(&f, &syn))
    };
    assert_eq!(
        p.key,
        flow::Key {
            src: u32::from(CLIENT),
            dst: u32::from(VIP),
            sport: 40000,
            dport: 9090,
            proto: 6,
            v6: false,
        }
    );
    assert_eq!(p.segment, flow::Segment::Open);
    assert_eq!(p.l3_offset, 14);
    let ack = client_tcp(ACK, b"GET");
    assert!(
        matches!(classify(&f, &ack), Verdict::ProxyFlow(p) if p.segment == flow::Segment::Data)
    );
    let synack = client_tcp(SYN | ACK, &[]);
    assert!(
        matches!(classify(&f, &synack), Verdict::ProxyFlow(p) if p.segment == flow::Segment::Data)
    );
    for fl in [FIN | ACK, RST, RST | ACK] {
        let fr = client_tcp(fl, &[]);
        assert!(
            matches!(classify(&f, &fr), Verdict::ProxyFlow(p) if p.segment == flow::Segment::Close)
        );
    }
    let vlan = tcp(
        vmac(),
        CLIENT_MAC,
        Some(7),
        CLIENT,
        40000,
        VIP,
        8080,
        ACK,
        &[],
    );
    assert!(
        matches!(classify(&f, &vlan), Verdict::ProxyFlow(p) if p.l3_offset == 18 && p.key.dport == 8080)
    );
    // An 802.1ad service tag is looked through the same way.
    let mut qinq = vlan.clone();
    qinq[12..14].copy_from_slice(&ETHERTYPE_QINQ.to_be_bytes());
    assert_eq!(classify(&f, &qinq), classify(&f, &vlan));
    let u = udp(vmac(), CLIENT_MAC, CLIENT, 5000, VIP, 9090, b"x");
    assert!(matches!(classify(&f, &u), Verdict::ProxyFlow(p) if p.key.proto == 17));
}

#[test]
fn passes_what_is_not_ours() {
    let f = filter();
    // Other port, other destination, our own MAC (a scanning node's redirected frame).
    let other_port = tcp(vmac(), CLIENT_MAC, None, CLIENT, 40000, VIP, 22, SYN, &[]);
    let other_ip = tcp(
        vmac(),
        CLIENT_MAC,
        None,
        CLIENT,
        40000,
        CLIENT,
        9090,
        SYN,
        &[],
    );
    let own_mac = tcp(OUR, CLIENT_MAC, None, CLIENT, 40000, VIP, 9090, SYN, &[]);
    let icmp = ipv4(vmac(), CLIENT_MAC, None, CLIENT, VIP, 1, &[8, 0, 0, 0]);
    let arp_other = arp_request(CLIENT_MAC, CLIENT, Ipv4Addr::new(198, 18, 0, 1));
    let vrrp_other = vrrp_advert(CLIENT_MAC, CLIENT, 52, 100, VIP);
    let mut ipv6 = vec![0u8; 60];
    ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    // A well-formed IPv6 header, next header TCP, no payload.
    ipv6[14] = 0x60;
    ipv6[20] = 6;
    for fr in [
        other_port, other_ip, own_mac, icmp, arp_other, vrrp_other, ipv6,
    ] {
        assert_eq!(classify(&f, &fr), Verdict::Pass);
    }
}

/// The quoted packet of an ICMP error: a node's direct reply, VIP:9090
/// → client (IP header + 8 bytes).
fn reply_quote() -> Vec<u8> {
    tcp(CLIENT_MAC, OUR, None, VIP, 9090, CLIENT, 40000, ACK, &[])[14..14 + 28].to_vec()
}

#[test]
fn icmp_errors_about_a_flow_are_steered() {
    let f = filter();
    let want = Verdict::IcmpError(flow::Key {
        src: u32::from(CLIENT),
        dst: u32::from(VIP),
        sport: 40000,
        dport: 9090,
        proto: PROTO_TCP,
        v6: false,
    });
    let router = Ipv4Addr::new(198, 18, 0, 254);
    // Fragmentation needed, port unreachable, time exceeded.
    for (kind, code) in [(3, 4), (3, 3), (11, 0)] {
        let fr = icmp_error(
            vmac(),
            CLIENT_MAC,
            router,
            VIP,
            kind,
            code,
            1400,
            &reply_quote(),
        );
        assert_eq!(classify(&f, &fr), want, "type {kind} code {code}");
    }
    // The key is the flow table's: the same hash as the client's own packets.
    let client = client_tcp(ACK, &[]);
    let Verdict::ProxyFlow(p) = classify(&f, &client) else {
        panic!("client frame")
    };
    assert_eq!(Verdict::IcmpError(p.key), want);
    // Quoted IP options are skipped by IHL.
    let mut q = reply_quote();
    q[0] = 0x46;
    q.splice(20..20, [1, 1, 1, 1]);
    let fr = icmp_error(vmac(), CLIENT_MAC, router, VIP, 3, 4, 1400, &q);
    assert_eq!(classify(&f, &fr), want, "quoted options");
    // Not about a balanced flow: the local stack has it.
    let echo = icmp_error(vmac(), CLIENT_MAC, router, VIP, 8, 0, 0, &reply_quote());
    assert_eq!(classify(&f, &echo), Verdict::Pass, "echo request");
    let other_port = tcp(CLIENT_MAC, OUR, None, VIP, 22, CLIENT, 40000, ACK, &[]);
    let fr = icmp_error(
        vmac(),
        CLIENT_MAC,
        router,
        VIP,
        3,
        4,
        1400,
        &other_port[14..],
    );
    assert_eq!(classify(&f, &fr), Verdict::Pass, "quote from another port");
    let fr = icmp_error(OUR, CLIENT_MAC, router, VIP, 3, 4, 1400, &reply_quote());
    assert_eq!(
        classify(&f, &fr),
        Verdict::Pass,
        "not sent to the virtual MAC"
    );
    // A quote cut short: a counted drop.
    let fr = icmp_error(
        vmac(),
        CLIENT_MAC,
        router,
        VIP,
        3,
        4,
        1400,
        &reply_quote()[..22],
    );
    assert_eq!(classify(&f, &fr), Verdict::Drop(DropReason::BadIcmp));
    let fr = icmp_error(vmac(), CLIENT_MAC, router, VIP, 3, 4, 1400, &[]);
    assert_eq!(classify(&f, &fr), Verdict::Drop(DropReason::BadIcmp));
}

#[test]
fn fragments_are_told_apart() {
    let f = filter();
    let data = client_tcp(ACK, &[0; 40]);
    let fk = flow::FragKey {
        src: u32::from(CLIENT),
        dst: u32::from(VIP),
        id: 77,
        proto: PROTO_TCP,
    };
    let Verdict::FirstFragment(Some(p), k) = classify(&f, &fragment(data.clone(), 77, true, 0))
    else {
        panic!("first fragment")
    };
    assert_eq!((p.key.sport, p.key.dport, k), (40000, 9090, fk));
    assert_eq!(
        classify(&f, &fragment(data.clone(), 77, true, 3)),
        Verdict::Fragment(fk)
    );
    assert_eq!(
        classify(&f, &fragment(data.clone(), 77, false, 3)),
        Verdict::Fragment(fk),
        "last fragment"
    );
    // A first fragment of another port: remembered for the local stack.
    let other = tcp(
        vmac(),
        CLIENT_MAC,
        None,
        CLIENT,
        40000,
        VIP,
        22,
        ACK,
        &[0; 40],
    );
    assert_eq!(
        classify(&f, &fragment(other, 78, true, 0)),
        Verdict::FirstFragment(None, flow::FragKey { id: 78, ..fk })
    );
    // A first fragment too short for the ports: a counted drop.
    let mut short = fragment(data, 79, true, 0);
    short[16..18].copy_from_slice(&23u16.to_be_bytes());
    short.truncate(14 + 23);
    let mut fixed = short.clone();
    fixed[24..26].fill(0);
    let c = crate::wire::checksum::checksum(&fixed[14..34]);
    fixed[24..26].copy_from_slice(&c.to_be_bytes());
    assert_eq!(classify(&f, &fixed), Verdict::Drop(DropReason::BadTcp));
}

#[test]
fn control_frames() {
    let f = filter();
    assert_eq!(
        classify(&f, &vrrp_advert(CLIENT_MAC, CLIENT, 51, 99, VIP)),
        Verdict::Vrrp
    );
    let hb = ipv4(
        [0xff; 6],
        CLIENT_MAC,
        None,
        CLIENT,
        Ipv4Addr::new(198, 18, 0, 255),
        253,
        &[0; 40],
    );
    assert_eq!(classify(&f, &hb), Verdict::Heartbeat);
    assert_eq!(
        classify(&f, &arp_request(CLIENT_MAC, CLIENT, VIP)),
        Verdict::ArpForVip
    );
}

#[test]
fn malformed_frames_are_counted_drops() {
    let f = filter();
    let good = client_tcp(SYN, &[]);
    assert_eq!(classify(&f, &good[..13]), Verdict::Drop(DropReason::Runt));
    let vlan = tcp(
        vmac(),
        CLIENT_MAC,
        Some(1),
        CLIENT,
        40000,
        VIP,
        9090,
        SYN,
        &[],
    );
    assert_eq!(
        classify(&f, &vlan[..16]),
        Verdict::Drop(DropReason::BadVlan)
    );
    let arp = arp_request(CLIENT_MAC, CLIENT, VIP);
    assert_eq!(classify(&f, &arp[..40]), Verdict::Drop(DropReason::BadArp));
    let mut v6in4 = good.clone();
    v6in4[14] = 0x65;
    assert_eq!(
        classify(&f, &v6in4),
        Verdict::Drop(DropReason::BadIpv4Header)
    );
    let mut short_ihl = good.clone();
    short_ihl[14] = 0x44;
    assert_eq!(
        classify(&f, &short_ihl),
        Verdict::Drop(DropReason::BadIpv4Header)
    );
    assert_eq!(
        classify(&f, &good[..30]),
        Verdict::Drop(DropReason::BadIpv4Header)
    );
    let mut long = good.clone();
    long[16..18].copy_from_slice(&200u16.to_be_bytes());
    assert_eq!(
        classify(&f, &long),
        Verdict::Drop(DropReason::BadIpv4Length)
    );
    let mut tiny = good.clone();
    tiny[16..18].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(
        classify(&f, &tiny),
        Verdict::Drop(DropReason::BadIpv4Length)
    );
    let mut trunc_tcp = good.clone();
    trunc_tcp[16..18].copy_from_slice(&30u16.to_be_bytes());
    assert_eq!(classify(&f, &trunc_tcp), Verdict::Drop(DropReason::BadTcp));
    let mut bad_doff = good.clone();
    bad_doff[14 + 20 + 12] = 4 << 4;
    assert_eq!(classify(&f, &bad_doff), Verdict::Drop(DropReason::BadTcp));
    let mut trunc_udp = udp(vmac(), CLIENT_MAC, CLIENT, 1, VIP, 9090, &[]);
    trunc_udp[16..18].copy_from_slice(&24u16.to_be_bytes());
    assert_eq!(classify(&f, &trunc_udp), Verdict::Drop(DropReason::BadUdp));
    let mut vrrp = vrrp_advert(CLIENT_MAC, CLIENT, 51, 99, VIP);
    vrrp[16..18].copy_from_slice(&21u16.to_be_bytes());
    assert_eq!(classify(&f, &vrrp), Verdict::Drop(DropReason::BadVrrp));
}

#[test]
fn port_set() {
    let mut s: PortSet = [0u16, 63, 64, 9090, 65535].into_iter().collect();
    assert!(s.contains(0) && s.contains(65535) && s.contains(9090));
    assert!(!s.contains(1) && !s.contains(9091));
    s.remove(63);
    assert_eq!(s.iter().collect::<Vec<_>>(), [0, 64, 9090, 65535]);
}

#[test]
fn drop_reason_names_are_unique() {
    let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), DropReason::COUNT);
    for (i, r) in DropReason::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i);
    }
}

proptest! {
    #[test]
    fn icmp_quote_never_panics_and_keys_a_vip_flow(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        let f = filter();
        if let Quote::Flow(k) = icmp_quote(&f, &bytes) {
            prop_assert_eq!(k.dst, u32::from(VIP));
            prop_assert!(f.ports.contains(k.dport));
            prop_assert!(k.proto == PROTO_TCP || k.proto == PROTO_UDP);
        }
    }

    #[test]
    fn icmp_quote_of_any_reply_gives_its_flow(sport in any::<u16>(), cport in any::<u16>(), client in any::<u32>(), kind in prop::sample::select(vec![3u8, 11]), code in 0u8..16) {
        let f = filter().with_ports([sport]);
        let reply = tcp(CLIENT_MAC, OUR, None, VIP, sport, Ipv4Addr::from(client), cport, ACK, &[]);
        let fr = icmp_error(vmac(), CLIENT_MAC, CLIENT, VIP, kind, code, 1280, &reply[14..]);
        prop_assert_eq!(classify(&f, &fr), Verdict::IcmpError(flow::Key {
            src: client, dst: u32::from(VIP), sport: cport, dport: sport, proto: PROTO_TCP, v6: false,
        }));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = classify(&filter(), &bytes);
    }

    /// Any truncation or single-byte corruption of a valid frame never panics.
    #[test]
    fn mutated_frames_never_panic(cut in 0usize..80, at in 0usize..80, val in any::<u8>(), vlan in any::<bool>()) {
        let mut fr = tcp(vmac(), CLIENT_MAC, vlan.then_some(3), CLIENT, 1234, VIP, 9090, SYN, &[1, 2, 3]);
        if at < fr.len() { fr[at] = val; }
        fr.truncate(cut.min(fr.len()));
        let _ = classify(&filter(), &fr);
    }
}

/// Active-active: frames to our own MAC are balanced, those to the virtual
/// MAC are not, and a member's redirect to us (its source MAC) goes to the
/// local stack, the ICMP errors about it too.
#[test]
fn active_active_balances_our_mac_and_passes_member_redirects() {
    const ROUTER: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];
    const PEER: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
    let f = filter().with_steer_mac(OUR).with_peer_macs([PEER, OUR]);
    assert_eq!(f.peer_macs, vec![PEER], "our own MAC is never a peer");
    let routed = tcp(OUR, ROUTER, None, CLIENT, 40000, VIP, 9090, SYN, &[]);
    assert!(matches!(classify(&f, &routed), Verdict::ProxyFlow(_)));
    let from_peer = tcp(OUR, PEER, None, CLIENT, 40000, VIP, 9090, SYN, &[]);
    assert_eq!(classify(&f, &from_peer), Verdict::Pass);
    let to_vmac = tcp(vmac(), ROUTER, None, CLIENT, 40000, VIP, 9090, SYN, &[]);
    assert_eq!(classify(&f, &to_vmac), Verdict::Pass);
    let reply = tcp(CLIENT_MAC, OUR, None, VIP, 9090, CLIENT, 40000, ACK, &[]);
    let icmp = icmp_error(OUR, PEER, CLIENT, VIP, 3, 4, 1400, &reply[14..]);
    assert_eq!(classify(&f, &icmp), Verdict::Pass);
    let icmp = icmp_error(OUR, ROUTER, CLIENT, VIP, 3, 4, 1400, &reply[14..]);
    assert!(matches!(classify(&f, &icmp), Verdict::IcmpError(_)));
}
