//! The IPv6 VRRP instance (`vrrp::Instance<Ipv6Addr>`, RFC 5798 over IPv6)
//! on a virtual clock: every `SendAdvert` becomes real VRRPv3-over-IPv6
//! bytes (`wire::vrrp::v6`, IPv6 pseudo-header checksum) from the sender's
//! link-local address to ff02::12, delivered through `handle_packet` so the
//! receive checks run. Read each test as "at N ms ... expect ...".

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use proxyha::vrrp::{self, Action, Config, Drop, Instance, IpMeta, Reason, State, Version};
use proxyha::wire::ethernet::Address;
use proxyha::wire::ipv6::{is_link_local, link_local_from_mac};
use proxyha::wire::vrrp::v6 as wire6;

/// The link-local VIP of VRID 51 (EUI-64 of 00:00:5e:00:02:33) and a global one.
fn vips() -> Vec<Ipv6Addr> {
    vec![
        link_local_from_mac(Address::vrrp_virtual_ipv6(51).octets()),
        "2001:2::250".parse().unwrap(),
    ]
}

fn ll(n: u8) -> Ipv6Addr {
    link_local_from_mac([2, 0, 0, 0, 0, n])
}

fn cfg(priority: u8, n: u8) -> Config<Ipv6Addr> {
    let mut c = Config::new(51, priority, ll(n), vips());
    c.adver_int = Duration::from_secs(1);
    c
}

struct Net {
    t0: Instant,
    now_ms: u64,
    nodes: Vec<(Instance<Ipv6Addr>, bool)>,
    log: Vec<(u64, usize, Action<Ipv6Addr>)>,
}

impl Net {
    fn new(cfgs: Vec<Config<Ipv6Addr>>) -> Net {
        let t0 = Instant::now();
        let mut net = Net {
            t0,
            now_ms: 0,
            nodes: cfgs
                .into_iter()
                .map(|c| (Instance::new(c).unwrap(), true))
                .collect(),
            log: vec![],
        };
        for i in 0..net.nodes.len() {
            net.nodes[i].0.handle_startup(t0);
        }
        net.flush();
        net
    }

    fn now(&self) -> Instant {
        self.t0 + Duration::from_millis(self.now_ms)
    }

    /// Delivers every pending advert (as wire bytes) until nothing moves.
    fn flush(&mut self) {
        loop {
            let mut sent = vec![];
            for i in 0..self.nodes.len() {
                while let Some(a) = self.nodes[i].0.poll_action() {
                    self.log.push((self.now_ms, i, a));
                    if let Action::SendAdvert { priority } = a
                        && self.nodes[i].1
                    {
                        let src = self.nodes[i].0.config().primary_ip;
                        let bytes = self.nodes[i]
                            .0
                            .advert_repr(priority)
                            .to_bytes(src, wire6::MULTICAST_ADDR)
                            .unwrap();
                        sent.push((i, src, bytes));
                    }
                }
            }
            if sent.is_empty() {
                return;
            }
            let now = self.now();
            for (from, src, bytes) in sent {
                for j in 0..self.nodes.len() {
                    if j != from && self.nodes[j].1 {
                        self.nodes[j]
                            .0
                            .handle_packet(now, &IpMeta::advert_from(src), &bytes)
                            .unwrap();
                    }
                }
            }
        }
    }

    /// Advances to `ms` in 10 ms steps.
    fn run_to(&mut self, ms: u64) {
        while self.now_ms < ms {
            self.now_ms += 10;
            let now = self.now();
            for n in self.nodes.iter_mut().filter(|n| n.1) {
                if n.0.poll_timeout().is_some_and(|t| t <= now) {
                    n.0.handle_timeout(now);
                }
            }
            self.flush();
        }
    }

    fn states(&self) -> Vec<State> {
        self.nodes.iter().map(|n| n.0.state()).collect()
    }

    fn became_master_at(&self, node: usize) -> Vec<u64> {
        self.log
            .iter()
            .filter(|(_, i, a)| *i == node && matches!(a, Action::BecomeMaster { .. }))
            .map(|(ms, _, _)| *ms)
            .collect()
    }
}

#[test]
fn priority_99_becomes_master_at_3610_ms_and_89_stays_backup() {
    let mut net = Net::new(vec![cfg(99, 1), cfg(89, 2)]);
    net.run_to(3600);
    assert_eq!(net.states(), [State::Backup, State::Backup]);
    net.run_to(3610);
    assert_eq!(net.states(), [State::Master, State::Backup]);
    net.run_to(20_000);
    assert_eq!(net.states(), [State::Master, State::Backup]);
    assert_eq!(net.became_master_at(0), [3610]);
    // 5 unsolicited neighbour advertisements per IPv6 VIP at takeover, and
    // again 5 s later (the gratuitous-ARP settings).
    let na = |ms: u64| {
        net.log
            .iter()
            .filter(|(t, i, a)| {
                *t == ms && *i == 0 && matches!(a, Action::SendGratuitousArp { .. })
            })
            .count()
    };
    assert_eq!(na(3610), 10);
    assert_eq!(na(8610), 10);
    assert_eq!(
        net.nodes[1].0.status(net.now()).master_ip,
        Some(ll(1)),
        "the backup knows the master by its link-local address"
    );
}

#[test]
fn shutdown_hands_over_after_skew_time_and_preemption_takes_it_back() {
    let mut net = Net::new(vec![cfg(99, 1), cfg(89, 2)]);
    net.run_to(5000);
    // At 5000 ms the master shuts down: a priority-0 advert.
    let now = net.now();
    net.nodes[0].0.handle_shutdown(now);
    net.flush();
    net.nodes[0].1 = false;
    // Skew_Time of priority 89 at 1 s: (256 - 89) * 100 / 256 = 65 cs.
    net.run_to(5640);
    assert_eq!(net.nodes[1].0.state(), State::Backup);
    net.run_to(5650);
    assert_eq!(net.nodes[1].0.state(), State::Master);
    assert!(matches!(
        net.nodes[1].0.status(net.now()).last_reason,
        Some(Reason::MasterResigned { from }) if from == ll(1)
    ));
    // At 10 s the 99 comes back: Backup first, then it preempts the 89
    // (its Master_Down_Timer, 3610 ms, discards the lower adverts).
    net.nodes[0].1 = true;
    let now = net.now();
    net.nodes[0].0.handle_startup(now);
    net.flush();
    net.run_to(net.now_ms + 3610);
    assert_eq!(net.states(), [State::Master, State::Backup]);
}

#[test]
fn equal_priority_ties_break_on_the_higher_link_local_address() {
    // Both start together at 99: both fire at 3610 ms, both advertise; the
    // higher link-local source (fe80::ff:fe00:2) stays Master.
    let mut net = Net::new(vec![cfg(99, 1), cfg(99, 2)]);
    net.run_to(4000);
    assert_eq!(net.states(), [State::Backup, State::Master]);
}

#[test]
fn receive_checks_of_ipv6_adverts() {
    let c = cfg(89, 2);
    let mut b = Instance::new(c.clone()).unwrap();
    let t0 = Instant::now();
    b.handle_startup(t0);
    let good = vrrp::Instance::new(cfg(99, 1))
        .unwrap()
        .advert_repr(99)
        .to_bytes(ll(1), wire6::MULTICAST_ADDR)
        .unwrap();
    let meta = IpMeta::advert_from(ll(1));
    assert!(vrrp::check_advert(&meta, &good, &c).is_ok());
    let hop254 = IpMeta { ttl: 254, ..meta };
    assert_eq!(vrrp::check_advert(&hop254, &good, &c), Err(Drop::BadTtl));
    // Another source: the pseudo-header checksum fails.
    let other = IpMeta::advert_from(ll(3));
    assert_eq!(
        vrrp::check_advert(&other, &good, &c),
        Err(Drop::BadChecksum)
    );
    // Our own address: looped back.
    let own = IpMeta::advert_from(ll(2));
    assert_eq!(vrrp::check_advert(&own, &good, &c), Err(Drop::LoopedBack));
    // The addresses in the other order: the first is not link-local.
    let mut swapped = good.clone();
    swapped[8..24].copy_from_slice(&good[24..40]);
    swapped[24..40].copy_from_slice(&good[8..24]);
    assert!(!is_link_local(Ipv6Addr::from(
        <[u8; 16]>::try_from(&swapped[8..24]).unwrap()
    )));
    assert_eq!(
        vrrp::check_advert(&meta, &swapped, &c),
        Err(Drop::BadAddressList)
    );
    // An IPv4-sized address list (count 2, 8 bytes of addresses).
    let mut short = good[..16].to_vec();
    short[3] = 2;
    assert_eq!(
        vrrp::check_advert(&meta, &short, &c),
        Err(Drop::BadAddressList)
    );
    // VRRPv2 over IPv6.
    let mut v2 = good.clone();
    v2[0] = 0x21;
    assert_eq!(vrrp::check_advert(&meta, &v2, &c), Err(Drop::WrongVersion));
    // The counters of the instance count each reason.
    let now = t0 + Duration::from_millis(10);
    assert!(b.handle_packet(now, &hop254, &good).is_err());
    assert_eq!(b.counters().drop_bad_ttl, 1);
    assert_eq!(b.handle_packet(now, &meta, &good).unwrap().src_ip, ll(1));
}

#[test]
fn vrrpv2_is_refused_for_ipv6() {
    let mut c = cfg(99, 1);
    assert_eq!(c.version, Version::V3, "IPv6 defaults to VRRPv3");
    c.version = Version::V2;
    assert_eq!(Instance::new(c).err(), Some(vrrp::Error::V2IsIpv4Only));
    let i = Instance::new(cfg(99, 1)).unwrap();
    assert_eq!(i.virtual_mac(), [0, 0, 0x5e, 0, 2, 51]);
}
