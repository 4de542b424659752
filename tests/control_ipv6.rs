//! Two directors' control planes with an IPv6 VIP next to the IPv4 one, on
//! a simulated segment with a virtual clock (no root, no sockets). Every
//! frame a plane sends is classified by the real classifier
//! (`dataplane::classify`) of each receiver, exactly as a worker would,
//! before it reaches the receiver's plane. Checks the IPv6 VRRP instance's
//! election and failover beside the IPv4 one, and that tshark decodes its
//! adverts (VRID, priority, the IPv6 addresses, a good checksum) with no
//! malformed-packet or expert warning.

use std::net::Ipv6Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use proxyha::control::Plane;
use proxyha::control::frames::parse_ipv6;
use proxyha::dataplane::classify::{Filter, Verdict, classify};
use proxyha::dataplane::{ControlKind, Shared};
use proxyha::node::prereq::require_tool;
use proxyha::wire::ethernet::Address;
use proxyha::wire::ipv4::Protocol;
use proxyha::wire::vrrp::v6 as wire6;
use proxyha::wire::{ipv6, ndp, pcap};

const LL_VIP: &str = "fe80::200:5eff:fe00:233";

fn config_with(name: &str, ip: &str, priority: u8, vrrp_extra: &str) -> proxyha::config::Config {
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
version = 3
{vrrp_extra}
[[virtual_ip]]
address = "198.18.0.250/24"
[[virtual_ip]]
address = "2001:2::250/64"
[[port_redirect]]
original_ports = "9090"
proxy_port = 9090
[heartbeat]
insecure = true
"#
    );
    proxyha::config::parse("sim.toml", &text, std::path::Path::new(".")).unwrap()
}

struct Sim {
    t0: Instant,
    now: Instant,
    planes: Vec<(Plane, Shared, bool)>,
    /// Every frame sent, with the sender's index.
    sent: Vec<(usize, Vec<u8>)>,
}

impl Sim {
    fn new() -> Sim {
        Sim::with("")
    }

    /// Two directors whose `[vrrp]` sections get `vrrp_extra`.
    fn with(vrrp_extra: &str) -> Sim {
        let t0 = Instant::now();
        let planes = [
            ("director-a", "198.18.0.1", 99),
            ("director-b", "198.18.0.2", 89),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (name, ip, prio))| {
            let mac = [2, 0, 0, 0, 0, i as u8 + 1];
            let shared = Shared::new(Filter::new(51, mac), 65537).unwrap();
            let cfg = config_with(name, ip, prio, vrrp_extra);
            let mut p = Plane::new(cfg, mac, shared.clone(), t0, 1_764_140_400_000).unwrap();
            p.start(t0);
            (p, shared, true)
        })
        .collect();
        Sim {
            t0,
            now: t0,
            planes,
            sent: vec![],
        }
    }

    fn run_until(&mut self, ms: u64) {
        let end = self.t0 + Duration::from_millis(ms);
        while self.now < end {
            self.now += Duration::from_millis(5);
            let now = self.now;
            for (p, _, up) in &mut self.planes {
                if *up {
                    p.handle_timeout(now);
                }
            }
            loop {
                let mut frames = vec![];
                for (i, (p, _, up)) in self.planes.iter_mut().enumerate() {
                    while let Some(f) = p.poll_transmit() {
                        if *up {
                            frames.push((i, f));
                        }
                    }
                }
                if frames.is_empty() {
                    break;
                }
                for (from, f) in frames {
                    for (j, (p, shared, up)) in self.planes.iter_mut().enumerate() {
                        if j == from || !*up {
                            continue;
                        }
                        let kind = match classify(&shared.filter.load(), &f) {
                            Verdict::Vrrp => ControlKind::Vrrp,
                            Verdict::Heartbeat => ControlKind::Heartbeat,
                            Verdict::ArpForVip => ControlKind::Arp,
                            _ => continue,
                        };
                        p.handle_frame(now, kind, &f);
                    }
                    self.sent.push((from, f));
                }
            }
        }
    }

    fn masters(&self) -> Vec<(bool, Option<bool>)> {
        self.planes
            .iter()
            .map(|(p, _, _)| (p.is_master(), p.is_master6()))
            .collect()
    }

    fn ipv6_adverts(&self, from: usize) -> Vec<&Vec<u8>> {
        self.sent
            .iter()
            .filter(|(i, f)| *i == from && parse_ipv6(f).is_ok_and(|p| p.next_header == 112))
            .map(|(_, f)| f)
            .collect()
    }
}

#[test]
fn both_families_elect_the_same_director_and_fail_over_together() {
    let mut sim = Sim::new();
    sim.run_until(3500);
    assert_eq!(sim.masters(), [(false, Some(false)), (false, Some(false))]);
    sim.run_until(3700);
    assert_eq!(sim.masters(), [(true, Some(true)), (false, Some(false))]);
    sim.run_until(6000);
    // The backup knows the IPv6 master by its link-local address (EUI-64 of
    // 02:00:00:00:00:01).
    let b6 = sim.planes[1].0.vrrp6_status(sim.now).unwrap();
    assert_eq!(b6.master_ip, Some("fe80::ff:fe00:1".parse().unwrap()));
    assert!(b6.counters.rx_adverts >= 2, "{:?}", b6.counters);
    // The status JSON carries the IPv6 instance.
    let st = sim.planes[0].0.status(sim.now);
    assert_eq!(st.vrrp["ipv6"]["state"], "Master", "{}", st.vrrp);

    // Director A dies (kill -9: no priority-0 advert) at 6 s. Its last
    // adverts went out at 5610 ms; B takes over both families one
    // Master_Down_Interval (3650 ms at priority 89) later, at 9260 ms.
    sim.planes[0].2 = false;
    sim.run_until(9255);
    assert_eq!(sim.masters()[1], (false, Some(false)));
    sim.run_until(9260);
    assert_eq!(sim.masters()[1], (true, Some(true)));
}

/// Every IPv6 advert: from the sender's link-local address, virtual MAC
/// 00:00:5e:00:02:33 to 33:33:00:00:00:12, ff02::12, hop limit 255, the
/// link-local VIP first, and a checksum that verifies.
#[test]
fn ipv6_adverts_on_the_wire() {
    let mut sim = Sim::new();
    sim.run_until(6000);
    let adverts = sim.ipv6_adverts(0);
    assert!(adverts.len() >= 3, "{} adverts", adverts.len());
    assert!(
        sim.ipv6_adverts(1).is_empty(),
        "a backup does not advertise"
    );
    for f in adverts {
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 0x12]);
        assert_eq!(&f[6..12], &[0, 0, 0x5e, 0, 2, 51]);
        let p = parse_ipv6(f).unwrap();
        assert_eq!(p.hop_limit, 255);
        assert_eq!(p.dst, wire6::MULTICAST_ADDR);
        assert_eq!(p.src, "fe80::ff:fe00:1".parse::<Ipv6Addr>().unwrap());
        let r = wire6::Repr::parse(p.payload, p.src, p.dst).unwrap();
        assert_eq!((r.vrid, r.priority, r.max_adver_int), (51, 99, 100));
        assert_eq!(
            r.addrs,
            [
                LL_VIP.parse::<Ipv6Addr>().unwrap(),
                "2001:2::250".parse().unwrap()
            ]
        );
    }
}

#[test]
fn tshark_decodes_the_ipv6_adverts_cleanly() {
    const NAME: &str = "control_ipv6::tshark_decodes_the_ipv6_adverts_cleanly";
    if !require_tool(NAME, "tshark") {
        return;
    }
    let mut sim = Sim::new();
    sim.run_until(5000);
    let adverts: Vec<Vec<u8>> = sim.ipv6_adverts(0).into_iter().cloned().collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vrrp6.pcap");
    let mut w = pcap::Writer::new(std::fs::File::create(&path).unwrap()).unwrap();
    for (i, f) in adverts.iter().enumerate() {
        w.write_frame(Duration::from_secs(1_764_140_400 + i as u64), f)
            .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&path)
        .args(["-o", "vrrp.v3_checksum_as_in_v2:FALSE"])
        .args(["-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "vrrp.version",
            "-e",
            "vrrp.virt_rtr_id",
            "-e",
            "vrrp.prio",
        ])
        .args(["-e", "vrrp.short_adver_int", "-e", "vrrp.ipv6_addr"])
        .args([
            "-e",
            "vrrp.checksum.status",
            "-e",
            "ipv6.hlim",
            "-e",
            "_ws.malformed",
        ])
        .args(["-e", "_ws.expert.severity"])
        .output()
        .expect("running tshark");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), adverts.len(), "{stdout}");
    for l in lines {
        // Version 3, VRID 51, priority 99, 100 cs, both addresses, checksum
        // good (1), hop limit 255, no malformed mark, no expert info.
        assert_eq!(
            l,
            format!("3|51|99|100|{LL_VIP},2001:2::250|1|255||"),
            "tshark: {stdout}\n{stderr}"
        );
    }
}

const CLIENT_MAC: Address = Address([2, 0, 0, 0, 0, 9]);
const VMAC6: Address = Address([0, 0, 0x5e, 0, 2, 51]);

/// A neighbour solicitation for `target` from `src` (its option carries
/// the client's MAC unless `src` is `::`), with `hop_limit`.
fn solicitation(src: &str, target: &str, hop_limit: u8) -> Vec<u8> {
    let (src, target): (Ipv6Addr, Ipv6Addr) = (src.parse().unwrap(), target.parse().unwrap());
    let dst = ipv6::solicited_node(target);
    proxyha::control::frames::build_ipv6(
        CLIENT_MAC,
        Address::ipv6_multicast(dst),
        src,
        dst,
        Protocol::Unknown(ndp::NEXT_HEADER),
        hop_limit,
        &ndp::solicitation(src, CLIENT_MAC, target),
    )
}

/// Sends `frame` as a worker would (classified by the plane's own filter)
/// to plane `i` and returns what it transmitted.
fn deliver(sim: &mut Sim, i: usize, frame: &[u8]) -> Vec<Vec<u8>> {
    let (p, shared, _) = &mut sim.planes[i];
    assert_eq!(classify(&shared.filter.load(), frame), Verdict::ArpForVip);
    p.handle_frame(sim.now, ControlKind::Arp, frame);
    std::iter::from_fn(|| p.poll_transmit()).collect()
}

fn advertisement(f: &[u8]) -> (proxyha::control::frames::Ip6Frame<'_>, ndp::Advertisement) {
    let ip = parse_ipv6(f).unwrap();
    assert_eq!(ip.next_header, ndp::NEXT_HEADER);
    assert_eq!(ip.hop_limit, 255);
    assert_eq!(ip.src_mac, VMAC6);
    (
        ip,
        ndp::Advertisement::parse(ip.payload, ip.src, ip.dst).unwrap(),
    )
}

#[test]
fn only_the_master_answers_neighbour_solicitations() {
    let mut sim = Sim::new();
    sim.run_until(5000);
    // Backup: silent, counted.
    assert!(deliver(&mut sim, 1, &solicitation("fe80::9", "2001:2::250", 255)).is_empty());
    assert_eq!(sim.planes[1].0.counters6().unwrap().nd_ignored, 1);
    // Master: a solicited advertisement to the solicitor, S and O, no R.
    for target in ["2001:2::250", LL_VIP] {
        let out = deliver(&mut sim, 0, &solicitation("fe80::9", target, 255));
        assert_eq!(out.len(), 1, "{target}");
        let (ip, na) = advertisement(&out[0]);
        assert_eq!(&out[0][0..6], &CLIENT_MAC.octets());
        assert_eq!(ip.dst, "fe80::9".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip.src, target.parse::<Ipv6Addr>().unwrap());
        assert_eq!(na.target, ip.src);
        assert_eq!(na.target_lladdr, VMAC6);
        assert_eq!(
            na.flags,
            ndp::Flags {
                router: false,
                solicited: true,
                override_: true
            }
        );
    }
    // From :: (duplicate address detection): to ff02::1, S unset.
    let out = deliver(&mut sim, 0, &solicitation("::", "2001:2::250", 255));
    let (ip, na) = advertisement(&out[0]);
    assert_eq!(ip.dst, ndp::ALL_NODES);
    assert_eq!(&out[0][0..6], &[0x33, 0x33, 0, 0, 0, 1]);
    assert!(!na.flags.solicited);
    // Hop limit 254 (off the link): refused, counted.
    assert!(deliver(&mut sim, 0, &solicitation("fe80::9", "2001:2::250", 254)).is_empty());
    let c = sim.planes[0].0.counters6().unwrap();
    assert_eq!((c.nd_replies, c.nd_malformed), (3, 1));
    // Not an IPv6 VIP: the classifier passes it to the kernel.
    let other = solicitation("fe80::9", "2001:2::1", 255);
    assert_eq!(
        classify(&sim.planes[0].1.filter.load(), &other),
        Verdict::Pass
    );
}

/// On takeover: `garp_count` (5) unsolicited advertisements per IPv6 VIP
/// (the link-local one and 2001:2::250) to ff02::1, Override only; the
/// same burst `garp_refresh` (5 s) later. The Router flag only with
/// `vrrp.nd_router_flag = true`.
#[test]
fn unsolicited_advertisements_on_takeover() {
    for (extra, router) in [("", false), ("nd_router_flag = true", true)] {
        let mut sim = Sim::with(extra);
        sim.run_until(9000);
        let nas: Vec<(usize, Vec<u8>)> = sim
            .sent
            .iter()
            .filter(|(_, f)| parse_ipv6(f).is_ok_and(|p| p.next_header == ndp::NEXT_HEADER))
            .cloned()
            .collect();
        assert!(
            nas.iter().all(|(i, _)| *i == 0),
            "only the master sends them"
        );
        assert_eq!(nas.len(), 2 * 5 * 2, "{extra}");
        for (_, f) in &nas {
            let (ip, na) = advertisement(f);
            assert_eq!(ip.dst, ndp::ALL_NODES);
            assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
            assert_eq!(na.target, ip.src);
            assert_eq!(
                na.flags,
                ndp::Flags {
                    router,
                    solicited: false,
                    override_: true
                },
                "{extra}"
            );
        }
        assert_eq!(sim.planes[0].0.counters6().unwrap().tx_unsolicited_na, 20);
    }
}
