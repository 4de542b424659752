//! The XDP filter's IPv6 rules (`src/bpf/filter_ipv6.h`) in the real
//! kernel: IPv6 VRRP of our VRID goes to the AF_XDP socket while the VRRP
//! flag is set, everything else IPv6 is passed. Needs root and `ip`
//! (`proxyha::node::prereq`); the parent builds namespace `p6a-xsk<pid>`
//! with a veth pair and runs `child_ipv6_verdicts` inside it.

mod common;

use common::cmd::run;
use std::process::{Command, Stdio};

use proxyha::control::frames::build_ipv6;
use proxyha::node::prereq;
use proxyha::wire::ethernet::Address;
use proxyha::wire::ipv4::Protocol;
use proxyha::wire::ipv6::VRRP_MULTICAST;
use proxyha::xsk;

const IF_A: &str = "p6a0";
const IF_B: &str = "p6a1";
const VRID: u8 = 51;

/// The namespace, deleted on drop.
struct Ns(String);

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn xdp_filter_steers_ipv6_vrrp() {
    const NAME: &str = "xsk_ipv6::xdp_filter_steers_ipv6_vrrp";
    if !prereq::require_root(NAME) || !prereq::require_tool(NAME, "ip") {
        return;
    }
    let ns = Ns(format!("p6a-xsk{}", std::process::id()));
    let _ = Command::new("ip")
        .args(["netns", "del", &ns.0])
        .stderr(Stdio::null())
        .status();
    run(&["ip", "netns", "add", &ns.0]);
    run(&[
        "ip", "-n", &ns.0, "link", "add", IF_A, "type", "veth", "peer", "name", IF_B,
    ]);
    for dev in [IF_A, IF_B, "lo"] {
        run(&["ip", "-n", &ns.0, "link", "set", dev, "up"]);
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args(["child_ipv6_verdicts", "--exact", "--ignored", "--nocapture"])
        .env("P6A_XSK_CHILD", "1")
        .output()
        .unwrap();
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed");
}

fn vrrp6(vrid: u8, payload_len: usize) -> Vec<u8> {
    let mut body = vec![0x31, vrid, 100, 1, 0, 100, 0, 0];
    body.resize(payload_len, 0);
    build_ipv6(
        Address::vrrp_virtual_ipv6(vrid),
        Address::ipv6_multicast(VRRP_MULTICAST),
        "fe80::1".parse().unwrap(),
        VRRP_MULTICAST,
        Protocol::Vrrp,
        255,
        &body,
    )
}

#[test]
#[ignore = "runs inside a namespace, started by xdp_filter_steers_ipv6_vrrp"]
fn child_ipv6_verdicts() {
    use xsk::Verdict::{Pass, ToSocket};
    prereq::require_parent("child_ipv6_verdicts", "P6A_XSK_CHILD");
    let filter = xsk::Filter::attach(IF_A, xsk::AttachMode::Native).expect("attach");
    let sock = xsk::Socket::open(IF_A, 0, &xsk::SocketConfig::default()).expect("socket");
    filter.add_socket(&sock).unwrap();
    filter
        .set_config(&xsk::FilterConfig::director(VRID, false))
        .unwrap();
    let check = |name: &str, frame: &[u8], want: xsk::Verdict| {
        assert_eq!(filter.verdict(frame).expect(name), want, "{name}");
    };
    check("IPv6 VRRP, our VRID", &vrrp6(VRID, 40), ToSocket);
    check("IPv6 VRRP, other VRID", &vrrp6(52, 40), Pass);
    let mut tagged = vrrp6(VRID, 40);
    tagged.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    check("IPv6 VRRP, 802.1Q", &tagged, ToSocket);
    let mut tcp = vrrp6(VRID, 40);
    tcp[20] = 6;
    check("IPv6 TCP", &tcp, Pass);
    let mut v4 = vrrp6(VRID, 40);
    v4[14] = 0x45;
    check("version 4 in an IPv6 frame", &v4, Pass);
    check("cut before the VRID", &vrrp6(VRID, 40)[..14 + 41], Pass);
    // Neighbour solicitations: for an IPv6 VIP only.
    let vip: std::net::Ipv6Addr = "2001:2::250".parse().unwrap();
    filter.add_vips6(&[vip]).unwrap();
    let ns = |target: std::net::Ipv6Addr, hop_limit: u8| {
        let src = "fe80::9".parse().unwrap();
        let dst = proxyha::wire::ipv6::solicited_node(target);
        build_ipv6(
            Address([2, 0, 0, 0, 0, 9]),
            Address::ipv6_multicast(dst),
            src,
            dst,
            Protocol::Unknown(58),
            hop_limit,
            &proxyha::wire::ndp::solicitation(src, Address([2, 0, 0, 0, 0, 9]), target),
        )
    };
    check("NS for the IPv6 VIP", &ns(vip, 255), ToSocket);
    check(
        "NS for another address",
        &ns("2001:2::1".parse().unwrap(), 255),
        Pass,
    );
    check("NS with hop limit 254", &ns(vip, 254), Pass);
    check(
        "NS cut before its target",
        &ns(vip, 255)[..14 + 40 + 20],
        Pass,
    );
    assert_eq!(filter.stats().unwrap().to_xsk_arp, 1);
    // Flows: only while active, only to the IPv6 virtual MAC for a VIP.
    let flow = |dst_mac: [u8; 6], dst: std::net::Ipv6Addr, next: u8| {
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&9090u16.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 2;
        build_ipv6(
            Address([2, 0, 0, 0, 0, 9]),
            Address(dst_mac),
            "2001:2::100".parse().unwrap(),
            dst,
            Protocol::from_u8(next),
            64,
            &tcp,
        )
    };
    let vmac6 = Address::vrrp_virtual_ipv6(VRID).octets();
    let vmac4 = Address::vrrp_virtual(VRID).octets();
    check("TCP to the VIP, backup", &flow(vmac6, vip, 6), Pass);
    filter
        .set_config(&xsk::FilterConfig::director(VRID, true))
        .unwrap();
    check("TCP to the VIP, active", &flow(vmac6, vip, 6), ToSocket);
    check(
        "fragment to the VIP, active",
        &flow(vmac6, vip, 44),
        ToSocket,
    );
    check(
        "TCP to the VIP, IPv4 virtual MAC",
        &flow(vmac4, vip, 6),
        Pass,
    );
    check(
        "TCP to the VIP, own MAC",
        &flow([2, 0, 0, 0, 0, 1], vip, 6),
        Pass,
    );
    check(
        "TCP to another address",
        &flow(vmac6, "2001:2::1".parse().unwrap(), 6),
        Pass,
    );
    assert_eq!(filter.stats().unwrap().to_xsk_vip, 2);
    let before = filter.stats().unwrap().to_xsk_vrrp;
    // A scanning node (no VRRP flag) passes IPv6 VRRP to its kernel.
    let scanning = xsk::FilterConfig {
        flags: 0,
        ..xsk::FilterConfig::director(VRID, false)
    };
    filter.set_config(&scanning).unwrap();
    check("IPv6 VRRP on a scanning node", &vrrp6(VRID, 40), Pass);
    check("NS on a scanning node", &ns(vip, 255), Pass);
    assert_eq!(filter.stats().unwrap().to_xsk_vrrp, before);
    assert_eq!(before, 2, "two IPv6 adverts steered");
}
