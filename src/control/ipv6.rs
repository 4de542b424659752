//! The IPv6 side of the control plane: the IPv6 VRRP instance and its
//! adverts. RFC 5798 runs one instance per address family ("VRRP for IPv4
//! and VRRP for IPv6 [...] are separate", §4.4); proxyha's IPv6 instance
//! shares the group's VRID, priority, interval and preemption with the IPv4
//! one, and uses the IPv6 virtual MAC 00:00:5e:00:02:{VRID}.
//!
//! Adverts go from this node's link-local address (modified EUI-64 of its
//! MAC) to ff02::12 with hop limit 255 (§5.1.2), carrying the instance's
//! link-local virtual address first (§5.2.9) and then the configured IPv6
//! VIPs. Received adverts must arrive with hop limit 255 (§7.1).
//!
//! The IPv4 instance alone drives the dataplane's active flag; the IPv6
//! instance's state decides who answers neighbour solicitations for the
//! IPv6 VIPs. With the same priorities and timers the two elect the same
//! node.
//!
//! **Neighbour discovery** (RFC 5798 §6.4.3: the Master "MUST respond to ND
//! Neighbor Solicitation message for the IPv6 address associated with the
//! virtual router"; a Backup "MUST NOT respond"). The answer is a solicited
//! advertisement with the virtual MAC as target link-layer address and the
//! Override flag; on becoming Master (§6.4.1) and again `garp_refresh`
//! later, `garp_count` unsolicited advertisements per IPv6 VIP go to
//! ff02::1 with Override set and Solicited unset. The Router flag, which
//! RFC 5798 sets, is set only with `vrrp.nd_router_flag = true`: a load
//! balancer's VIP is not a default router, and hosts would add it as one.

use std::collections::VecDeque;
use std::net::Ipv6Addr;
use std::time::Instant;

use serde::Serialize;

use super::frames;
use crate::config::Config;
use crate::log;
use crate::vrrp;
use crate::wire::vrrp::v6 as wire6;
use crate::wire::{ethernet, ipv4, ipv6, ndp};

/// The IPv6 VRRP settings of `cfg` for a node whose own link-local address
/// is `link_local`; `None` without IPv6 VIPs or on a scanning node.
pub fn vrrp6_config(cfg: &Config, link_local: Ipv6Addr) -> Option<vrrp::Config<Ipv6Addr>> {
    if cfg.virtual_ips6.is_empty() || !cfg.node.is_director() {
        return None;
    }
    let v = &cfg.vrrp;
    let mut c = vrrp::Config::new(v.vrid, cfg.node.priority, link_local, cfg.advert_vips6());
    c.version = vrrp::Version::V3;
    c.adver_int = v.advert_interval;
    c.preempt = v.preempt;
    c.preempt_delay = v.preempt_delay;
    c.garp_count = v.garp_count;
    c.garp_refresh = v.garp_refresh;
    Some(c)
}

/// What the IPv6 side did, beside the instance's own counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Neighbour solicitations for an IPv6 VIP answered as Master.
    pub nd_replies: u64,
    /// Solicitations not answered: not Master, or not for an IPv6 VIP.
    pub nd_ignored: u64,
    /// Solicitations that failed the RFC 4861 §7.1.1 checks (hop limit,
    /// checksum, code, length, options, target).
    pub nd_malformed: u64,
    /// Unsolicited neighbour advertisements sent (takeover and refresh).
    pub tx_unsolicited_na: u64,
}

/// The IPv6 instance and what the plane needs around it.
pub(super) struct V6 {
    vrrp: vrrp::Instance<Ipv6Addr>,
    master: bool,
    vmac: ethernet::Address,
    link_local: Ipv6Addr,
    router_flag: bool,
    counters: Counters,
}

impl V6 {
    /// The IPv6 side for `cfg` on an interface with MAC `our_mac`, if `cfg`
    /// has IPv6 VIPs and this node is a director.
    pub(super) fn new(cfg: &Config, our_mac: [u8; 6]) -> Result<Option<V6>, vrrp::Error> {
        let link_local = ipv6::link_local_from_mac(our_mac);
        let Some(c) = vrrp6_config(cfg, link_local) else {
            return Ok(None);
        };
        Ok(Some(V6 {
            vrrp: vrrp::Instance::new(c)?,
            master: false,
            vmac: ethernet::Address::vrrp_virtual_ipv6(cfg.vrrp.vrid),
            link_local,
            router_flag: cfg.vrrp.nd_router_flag,
            counters: Counters::default(),
        }))
    }

    /// The IPv6 side's counters.
    pub(super) fn counters(&self) -> Counters {
        self.counters
    }

    /// Whether the IPv6 instance is Master.
    pub(super) fn is_master(&self) -> bool {
        self.master
    }

    /// The instance, for status and tests.
    pub(super) fn instance(&self) -> &vrrp::Instance<Ipv6Addr> {
        &self.vrrp
    }

    pub(super) fn start(&mut self, now: Instant) {
        self.vrrp.handle_startup(now);
    }

    pub(super) fn shutdown(&mut self, now: Instant) {
        self.vrrp.handle_shutdown(now);
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.vrrp.poll_timeout()
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        if self.vrrp.poll_timeout().is_some_and(|t| t <= now) {
            self.vrrp.handle_timeout(now);
        }
    }

    pub(super) fn set_priority(&mut self, now: Instant, priority: u8) {
        if self.vrrp.priority() != priority {
            self.vrrp.set_priority(now, priority);
        }
    }

    /// A reload: the new settings (the VIPs change only with a restart).
    pub(super) fn reconfigure(&mut self, cfg: &Config) -> Result<(), vrrp::Error> {
        self.router_flag = cfg.vrrp.nd_router_flag;
        match vrrp6_config(cfg, self.link_local) {
            Some(c) => self.vrrp.reconfigure(c),
            None => Err(vrrp::Error::NeedsRestart),
        }
    }

    /// An IPv6 VRRP advert a worker queued.
    pub(super) fn handle_vrrp(&mut self, now: Instant, ip: &frames::Ip6Frame<'_>) {
        let meta = vrrp::IpMeta {
            src: ip.src,
            dst: ip.dst,
            ttl: ip.hop_limit,
            protocol: ip.next_header,
        };
        if let Err(r) = self.vrrp.handle_packet(now, &meta, ip.payload)
            && r.log
        {
            log!(
                "vrrp",
                "dropped IPv6 advert from {}: {:?} (logged once per reason and peer)",
                r.peer,
                r.reason
            );
        }
    }

    /// Turns every pending action into frames on `tx`; true if there was any.
    pub(super) fn drain(&mut self, tx: &mut VecDeque<Vec<u8>>) -> bool {
        let mut any = false;
        while let Some(a) = self.vrrp.poll_action() {
            any = true;
            match a {
                vrrp::Action::SendAdvert { priority } => {
                    if let Some(f) = self.advert_frame(priority) {
                        tx.push_back(f);
                    }
                }
                vrrp::Action::BecomeMaster { reason } => {
                    log!("vrrp", "IPv6 instance became Master: {reason:?}");
                    self.master = true;
                }
                vrrp::Action::BecomeBackup { reason } => {
                    if self.master {
                        log!("vrrp", "IPv6 instance became Backup: {reason:?}");
                    }
                    self.master = false;
                }
                vrrp::Action::BecomeInitialize { reason } => {
                    log!("vrrp", "IPv6 instance left the election: {reason:?}");
                    self.master = false;
                }
                vrrp::Action::SendGratuitousArp { vip } => {
                    self.counters.tx_unsolicited_na += 1;
                    tx.push_back(self.advertisement(vip, ndp::ALL_NODES, None, false));
                }
            }
        }
        any
    }

    /// A neighbour solicitation a worker queued (RFC 4861 §7.2.4): the
    /// Master answers one for an IPv6 VIP, to the solicitor (Solicited set)
    /// or, from `::`, to ff02::1.
    pub(super) fn handle_solicitation(
        &mut self,
        ip: &frames::Ip6Frame<'_>,
        tx: &mut VecDeque<Vec<u8>>,
    ) {
        if ip.next_header != ndp::NEXT_HEADER {
            self.counters.nd_ignored += 1;
            return;
        }
        let Ok(ns) = ndp::Solicitation::parse(ip.payload, ip.src, ip.dst, ip.hop_limit) else {
            self.counters.nd_malformed += 1;
            return;
        };
        if !self.master || !self.vrrp.config().vips.contains(&ns.target) {
            self.counters.nd_ignored += 1;
            return;
        }
        self.counters.nd_replies += 1;
        let f = if ip.src.is_unspecified() {
            self.advertisement(ns.target, ndp::ALL_NODES, None, false)
        } else {
            let mac = ns.source_lladdr.unwrap_or(ip.src_mac);
            self.advertisement(ns.target, ip.src, Some(mac), true)
        };
        tx.push_back(f);
    }

    /// A neighbour advertisement for `target` with the virtual MAC, from
    /// `target` to `dst` (Ethernet `dst_mac`, or the group's for ff02::1),
    /// Override set, Router only when configured.
    fn advertisement(
        &self,
        target: Ipv6Addr,
        dst: Ipv6Addr,
        dst_mac: Option<ethernet::Address>,
        solicited: bool,
    ) -> Vec<u8> {
        let na = ndp::Advertisement {
            flags: ndp::Flags {
                router: self.router_flag,
                solicited,
                override_: true,
            },
            target,
            target_lladdr: self.vmac,
        };
        frames::build_ipv6(
            self.vmac,
            dst_mac.unwrap_or_else(|| ethernet::Address::ipv6_multicast(dst)),
            target,
            dst,
            ipv4::Protocol::Unknown(ndp::NEXT_HEADER),
            ndp::HOP_LIMIT,
            &na.to_bytes(target, dst),
        )
    }

    /// The whole advert frame at `priority`: RFC 5798 §7.3, the source MAC
    /// is the virtual router MAC; §5.1.2, from our link-local address to
    /// ff02::12 with hop limit 255.
    fn advert_frame(&self, priority: u8) -> Option<Vec<u8>> {
        let dst = wire6::MULTICAST_ADDR;
        let payload = match self
            .vrrp
            .advert_repr(priority)
            .to_bytes(self.link_local, dst)
        {
            Ok(p) => p,
            Err(e) => {
                log!("vrrp", "cannot build IPv6 advert: {e}");
                return None;
            }
        };
        Some(frames::build_ipv6(
            self.vmac,
            ethernet::Address::ipv6_multicast(dst),
            self.link_local,
            dst,
            ipv4::Protocol::Vrrp,
            wire6::HOP_LIMIT,
            &payload,
        ))
    }
}
