//! The control plane: glues the sans-IO VRRP ([`crate::vrrp`]) and heartbeat
//! ([`crate::heartbeat`]) machines to the dataplane's frames and to timers,
//! writes the node-health table and publishes Maglev tables.
//!
//! [`Plane`] is itself free of I/O and clocks, like the machines it drives:
//!
//! * feed it every control frame the workers queued ([`Plane::handle_frame`]),
//!   the local probe results ([`Plane::set_local_health`]), whether the
//!   dataplane is healthy ([`Plane::set_dataplane_healthy`]), and call
//!   [`Plane::handle_timeout`] when [`Plane::poll_timeout`] has passed;
//! * then send every frame from [`Plane::poll_transmit`] through a worker's
//!   TX queue, and apply [`Plane::is_master`] to the XDP filter's active flag.
//!
//! The daemon ([`crate::node`]) does exactly that with real time and real
//! queues; tests run several planes on one simulated segment.
//!
//! **Membership → Maglev.** The heartbeat machine says which nodes to balance
//! over (on the active director its own view, on a passive director exactly
//! the active director's announcement). Each change is written to the
//! node-health table (members `Up`, or `Draining` at weight 0; nodes that
//! left `Failed`, so their flows move), then a Maglev table is built from the
//! `Up` members in node-id order and published with one pointer swap.
//!
//! **Rebuilds are coalesced.** The health-table writes happen at once (a
//! `Failed` node loses its flows at the workers' next batch: failing fast
//! matters more than the rebuild rate), but Maglev is rebuilt at most once
//! per [`REBUILD_INTERVAL`]: a change inside the window only marks a rebuild
//! due at the window's end ([`Plane::poll_timeout`] includes it), and that
//! rebuild reads the health table as it is then, so the latest membership
//! is always what gets published. Flapping input therefore costs at most
//! one table build per window on the control thread. Counted:
//! `maglev_rebuilds` (builds run) and `maglev_rebuilds_coalesced`
//! (membership changes folded into a later build).

pub mod event;
pub mod forwarding;
pub mod frames;
pub mod ipv6;
pub mod status;

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::balance::{health, maglev};
use crate::config::{Config, VrrpVersion};
use crate::dataplane::classify::Filter;
use crate::dataplane::{ControlKind, Shared};
use crate::heartbeat::{self, LocalHealth};
use crate::log;
use crate::vrrp;
use crate::wire::{arp, ethernet, ipv4};

pub use event::Event;

/// The shortest time between two Maglev rebuilds (see the module docs).
pub const REBUILD_INTERVAL: Duration = Duration::from_millis(150);

/// Why the control plane could not start.
#[derive(Debug, Error)]
pub enum Error {
    #[error("vrrp: {0}")]
    Vrrp(#[from] vrrp::Error),
    #[error("heartbeat: {0}")]
    Heartbeat(#[from] heartbeat::Error),
    #[error("maglev: {0}")]
    Maglev(#[from] maglev::Error),
}

/// Counters of the glue itself (the machines keep their own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Control frames that did not parse as Ethernet/IPv4 (or ARP).
    pub drop_malformed: u64,
    /// ARP requests for a VIP answered as Master.
    pub arp_replies: u64,
    /// ARP requests for a VIP ignored (not Master, or not a request).
    pub arp_ignored: u64,
    /// Maglev tables published.
    pub maglev_published: u64,
    /// Maglev rebuilds run (a rebuild that finds the table unchanged
    /// publishes nothing).
    pub maglev_rebuilds: u64,
    /// Membership changes that did not get a rebuild of their own: they fell
    /// inside [`REBUILD_INTERVAL`] of the last one and were folded into the
    /// rebuild at the window's end.
    pub maglev_rebuilds_coalesced: u64,
    /// Heartbeats dropped because their TTL was not 255 (not from this segment).
    pub drop_heartbeat_ttl: u64,
    /// Failed nodes' health-table slots freed to make room for a member.
    pub health_evicted: u64,
    /// Operator events dropped because [`event::MAX_QUEUED`] were waiting.
    pub events_dropped: u64,
}

/// Local probes in a row that must find the proxy down before a director
/// tracking it (`vrrp.track_proxy_weight`) lowers its priority.
pub const TRACK_FALL: u32 = 2;

/// One node's control plane.
pub struct Plane {
    cfg: Config,
    our_mac: [u8; 6],
    vmac: ethernet::Address,
    vips: Vec<Ipv4Addr>,
    vrrp: Option<vrrp::Instance>,
    /// The IPv6 VRRP instance (IPv6 VIPs configured, directors only).
    v6: Option<ipv6::V6>,
    hb: heartbeat::Machine,
    shared: Shared,
    tx: VecDeque<Vec<u8>>,
    /// Proxy probes the heartbeat machine asked for: (node id, IPv4).
    probes: VecDeque<(u32, Ipv4Addr)>,
    master: bool,
    /// Tracked objects: this node's own proxy, the tracked links.
    proxy_down: bool,
    /// Consecutive local probes that found a proxy port closed.
    proxy_down_samples: u32,
    links_down: bool,
    membership_generation: Option<u64>,
    dataplane_healthy: bool,
    counters: Counters,
    ttl_log: log::RateLimit<Ipv4Addr>,
    last_rebuild: Option<Instant>,
    rebuild_due: Option<Instant>,
    /// The wall clock (Unix ms) at an instant, for published times.
    anchor: (Instant, u64),
    maglev: Option<status::Maglev>,
    events: event::Queue,
    /// The VRRP state as events name it (`INITIALIZE`, `BACKUP`, `MASTER`).
    vrrp_state: &'static str,
}

/// The node id of this node: its management IPv4 as a number, so every
/// director orders nodes the same way.
pub fn node_id(cfg: &Config) -> u32 {
    heartbeat::node_id_from_ipv4(cfg.node.management_ip)
}

/// The VRRP settings for `cfg`.
pub fn vrrp_config(cfg: &Config) -> vrrp::Config {
    let v = &cfg.vrrp;
    let mut c = vrrp::Config::new(
        v.vrid,
        cfg.node.priority,
        cfg.node.management_ip,
        cfg.vip_addrs(),
    );
    c.version = match v.version {
        VrrpVersion::V2 => vrrp::Version::V2,
        VrrpVersion::V3 => vrrp::Version::V3,
    };
    c.adver_int = v.advert_interval;
    c.preempt = v.preempt;
    c.preempt_delay = v.preempt_delay;
    c.garp_count = v.garp_count;
    c.garp_refresh = v.garp_refresh;
    c.auth = v.auth_pass;
    c.peers = v.peers.clone();
    c
}

/// The heartbeat settings for `cfg`, with this node's MAC.
pub fn heartbeat_config(cfg: &Config, mac: [u8; 6]) -> heartbeat::Config {
    let mut c = heartbeat::Config::new(
        cfg.node.lbid,
        node_id(cfg),
        &cfg.node.name,
        cfg.node.priority,
        cfg.node.management_ip,
        mac,
    );
    c.ipv6 = cfg
        .node
        .management_ip6
        .unwrap_or(std::net::Ipv6Addr::UNSPECIFIED);
    c.capacity = cfg.node.capacity;
    c.interval = cfg.heartbeat.interval;
    c.misses = cfg.heartbeat.misses;
    c.hold_stale = cfg.heartbeat.hold_stale;
    c.key = cfg.heartbeat.key.clone();
    c.key_next = cfg.heartbeat.key_next.clone();
    c.max_capacity = cfg.heartbeat.max_capacity;
    c.accept_unlisted = cfg.heartbeat.accept_unlisted;
    c.static_nodes = cfg
        .heartbeat
        .static_nodes
        .iter()
        .map(|s| heartbeat::StaticNode {
            id: heartbeat::node_id_from_ipv4(s.ip),
            name: s.name.clone(),
            ip: s.ip,
            mac: s.mac,
        })
        .collect();
    c
}

impl Plane {
    /// A control plane for `cfg` on an interface with MAC `our_mac`,
    /// publishing into `shared`. `unix_ms` is the wall clock at `now`.
    pub fn new(
        cfg: Config,
        our_mac: [u8; 6],
        shared: Shared,
        now: Instant,
        unix_ms: u64,
    ) -> Result<Plane, Error> {
        let vrrp = if cfg.node.is_director() {
            Some(vrrp::Instance::new(vrrp_config(&cfg))?)
        } else {
            None
        };
        let v6 = ipv6::V6::new(&cfg, our_mac)?;
        let hb = heartbeat::Machine::new(heartbeat_config(&cfg, our_mac), now, unix_ms)?;
        if cfg.heartbeat.insecure {
            log!(
                "heartbeat",
                "heartbeat.insecure = true: heartbeats are NOT authenticated; anyone on the \
                 segment can add or impersonate nodes (create a key with `proxyha key new FILE` \
                 and set heartbeat.key_file)"
            );
        }
        let vips = cfg.vip_addrs();
        let vmac = ethernet::Address::vrrp_virtual(cfg.vrrp.vrid);
        let mut p = Plane {
            cfg,
            our_mac,
            vmac,
            vips,
            vrrp,
            v6,
            hb,
            shared,
            tx: VecDeque::new(),
            probes: VecDeque::new(),
            master: false,
            proxy_down: false,
            proxy_down_samples: 0,
            links_down: false,
            membership_generation: None,
            dataplane_healthy: true,
            counters: Counters::default(),
            ttl_log: log::RateLimit::new(heartbeat::REJECT_LOG_KEYS, log::RATE_PERIOD),
            last_rebuild: None,
            rebuild_due: None,
            anchor: (now, unix_ms),
            maglev: None,
            events: event::Queue::default(),
            vrrp_state: "INITIALIZE",
        };
        p.publish_filter(None);
        p.drain(now);
        Ok(p)
    }

    /// The VRRP Startup event (directors only).
    pub fn start(&mut self, now: Instant) {
        if let Some(v) = self.vrrp.as_mut() {
            v.handle_startup(now);
        }
        if let Some(v) = self.v6.as_mut() {
            v.start(now);
        }
        self.drain(now);
    }

    /// The VRRP Shutdown event: a priority-0 advert, so that the Backup takes
    /// over after Skew_Time.
    pub fn shutdown(&mut self, now: Instant) {
        let from = self.vrrp_state;
        self.emit_own(event::Kind::Stop, from, "STOP", "signal");
        if let Some(v) = self.vrrp.as_mut() {
            v.handle_shutdown(now);
        }
        if let Some(v) = self.v6.as_mut() {
            v.shutdown(now);
        }
        self.drain(now);
    }

    /// Whether this node is the VRRP Master: the Active Director
    /// (active-passive) or the coordinator (active-active).
    pub fn is_master(&self) -> bool {
        self.master
    }

    /// What this node does with VIP traffic now ([`forwarding`]).
    pub fn forwarding(&self) -> forwarding::Forwarding {
        forwarding::Forwarding::decide(
            self.cfg.cluster.mode,
            self.cfg.node.is_director(),
            self.master,
            self.our_mac,
            self.vmac.octets(),
        )
    }

    /// Whether this node announces the VIP to the router now
    /// ([`forwarding::announce`]); `draining` and `stopping` come from the
    /// daemon.
    pub fn announce(&self, draining: bool, stopping: bool) -> bool {
        let m = self.hb.membership();
        let healthy = m.nodes.iter().filter(|n| n.weight > 0).count();
        forwarding::announce(
            self.cfg.cluster.mode,
            self.cfg.node.is_director(),
            self.dataplane_healthy,
            healthy,
            draining,
            stopping,
        )
    }

    /// The glue's counters.
    pub fn counters(&self) -> Counters {
        Counters {
            events_dropped: self.events.dropped,
            ..self.counters
        }
    }

    /// The earliest instant at which [`Plane::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let a = self.vrrp.as_ref().and_then(vrrp::Instance::poll_timeout);
        let b = self.hb.poll_timeout();
        let c = self.v6.as_ref().and_then(ipv6::V6::poll_timeout);
        [a, b, c, self.rebuild_due].into_iter().flatten().min()
    }

    /// The next whole Ethernet frame to transmit.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.tx.pop_front()
    }

    /// The next proxy probe to run: (node id, IPv4). Report its result
    /// with [`Plane::set_proxy_probe`].
    pub fn poll_probe(&mut self) -> Option<(u32, Ipv4Addr)> {
        self.probes.pop_front()
    }

    /// Whether every proxy port of node `id` accepted a connection.
    pub fn set_proxy_probe(&mut self, now: Instant, id: u32, alive: bool) {
        self.hb.set_proxy_probe(now, id, alive);
        self.drain(now);
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(v) = self.vrrp.as_mut()
            && v.poll_timeout().is_some_and(|t| t <= now)
        {
            v.handle_timeout(now);
        }
        if let Some(v) = self.v6.as_mut() {
            v.handle_timeout(now);
        }
        if self.hb.poll_timeout().is_some_and(|t| t <= now) {
            self.hb.handle_timeout(now);
        }
        self.drain(now);
        if self.rebuild_due.is_some_and(|t| t <= now) {
            self.rebuild_maglev(now);
        }
    }

    /// A frame a worker queued for the control plane.
    pub fn handle_frame(&mut self, now: Instant, kind: ControlKind, frame: &[u8]) {
        let ethertype = ethernet::Packet::new_checked(frame).map(|e| e.ethertype());
        if ethertype == Ok(ethernet::EtherType::Ipv6) {
            self.handle_ipv6(now, kind, frame);
            self.drain(now);
            return;
        }
        match kind {
            ControlKind::Arp => self.handle_arp(frame),
            ControlKind::Vrrp | ControlKind::Heartbeat => {
                let Ok(ip) = frames::parse_ipv4(frame) else {
                    self.counters.drop_malformed += 1;
                    return;
                };
                match (kind, self.vrrp.as_mut()) {
                    (ControlKind::Vrrp, Some(v)) => {
                        let meta = vrrp::IpMeta {
                            src: ip.src,
                            dst: ip.dst,
                            ttl: ip.ttl,
                            protocol: ip.protocol.into(),
                        };
                        if let Err(r) = v.handle_packet(now, &meta, ip.payload)
                            && r.log
                        {
                            log!(
                                "vrrp",
                                "dropped advert from {}: {:?} (logged once per reason and peer)",
                                r.peer,
                                r.reason
                            );
                        }
                    }
                    (ControlKind::Vrrp, None) => {}
                    // Heartbeats are sent with TTL 255 and never routed: a
                    // lower TTL came from off the segment (as VRRP's check).
                    _ if ip.ttl != 255 => {
                        self.counters.drop_heartbeat_ttl += 1;
                        if let Some(n) = self.ttl_log.check(ip.src, now) {
                            log!(
                                "heartbeat",
                                "dropped heartbeat from {} with TTL {} ({n} more since the \
                                 last line; at most one line per minute per source)",
                                ip.src,
                                ip.ttl
                            );
                        }
                    }
                    _ => self.hb.handle_heartbeat(now, ip.src, ip.payload),
                }
            }
        }
        self.drain(now);
    }

    /// An IPv6 control frame: a VRRP advert for the IPv6 instance, or a
    /// neighbour solicitation for an IPv6 VIP; a node without an IPv6
    /// instance ignores both.
    fn handle_ipv6(&mut self, now: Instant, kind: ControlKind, frame: &[u8]) {
        let Some(v6) = self.v6.as_mut() else {
            return;
        };
        let Ok(ip) = frames::parse_ipv6(frame) else {
            self.counters.drop_malformed += 1;
            return;
        };
        match kind {
            ControlKind::Vrrp => v6.handle_vrrp(now, &ip),
            ControlKind::Arp => v6.handle_solicitation(&ip, &mut self.tx),
            ControlKind::Heartbeat => {}
        }
    }

    /// The IPv6 side's counters (`None`: no IPv6 instance).
    pub fn counters6(&self) -> Option<ipv6::Counters> {
        self.v6.as_ref().map(ipv6::V6::counters)
    }

    /// Whether the IPv6 VRRP instance is Master (`None`: no IPv6 instance).
    pub fn is_master6(&self) -> Option<bool> {
        self.v6.as_ref().map(ipv6::V6::is_master)
    }

    /// The IPv6 VRRP instance's status (`None`: no IPv6 instance).
    pub fn vrrp6_status(&self, now: Instant) -> Option<vrrp::Status<std::net::Ipv6Addr>> {
        self.v6.as_ref().map(|v| v.instance().status(now))
    }

    /// RFC 5798 §6.4.3: as Master, "MUST respond to ARP requests for the
    /// IPv4 address(es) associated with the virtual router" with the virtual
    /// MAC. A Backup "MUST NOT respond to ARP requests".
    fn handle_arp(&mut self, frame: &[u8]) {
        let Ok(eth) = ethernet::Packet::new_checked(frame) else {
            self.counters.drop_malformed += 1;
            return;
        };
        let Ok(pkt) = arp::Packet::new_checked(eth.payload()) else {
            self.counters.drop_malformed += 1;
            return;
        };
        let Ok(req) = arp::Repr::parse(&pkt) else {
            self.counters.drop_malformed += 1;
            return;
        };
        if !self.forwarding().virtual_mac
            || req.operation != arp::Operation::Request
            || !self.vips.contains(&req.target_ip)
            || req.is_gratuitous()
        {
            self.counters.arp_ignored += 1;
            return;
        }
        self.counters.arp_replies += 1;
        self.tx
            .push_back(arp::Repr::reply(&req, self.vmac).to_frame(eth.vlan_id()));
    }

    /// The latest local probe results. A director tracking its proxy
    /// (`vrrp.track_proxy_weight`) gives up priority while a proxy port
    /// does not answer (draining is not down).
    pub fn set_local_health(&mut self, now: Instant, health: LocalHealth) {
        self.hb.set_local_health(now, health);
        // Down after TRACK_FALL probes in a row (one slow connect, or the
        // first probe racing the proxy's start, moves nothing); up at once.
        if !health.draining && !health.ports.all_reachable() {
            self.proxy_down_samples = self.proxy_down_samples.saturating_add(1);
        } else {
            self.proxy_down_samples = 0;
        }
        let down = self.proxy_down_samples >= TRACK_FALL;
        if down != self.proxy_down {
            self.proxy_down = down;
            if self.cfg.vrrp.track_proxy_weight > 0 {
                log!(
                    "vrrp",
                    "own proxy {}",
                    if down { "down" } else { "up again" }
                );
            }
            self.apply_priority(now);
            if down && self.cfg.vrrp.track_proxy_weight > 0 {
                self.emit_fault("proxy");
            }
        }
        self.drain(now);
    }

    /// Whether any link in `vrrp.track_interfaces` is down.
    pub fn set_links_down(&mut self, now: Instant, down: bool) {
        if down != self.links_down {
            self.links_down = down;
            log!(
                "vrrp",
                "tracked link(s) {}",
                if down { "down" } else { "all up again" }
            );
            self.apply_priority(now);
            if down {
                self.emit_fault("link");
            }
            self.drain(now);
        }
    }

    /// A reload: applies `new` (already checked by
    /// [`crate::config::reload::restart_needed`]) to both state machines
    /// and the dataplane filter, without leaving the current VRRP state.
    pub fn reconfigure(&mut self, now: Instant, new: Config) -> Result<(), Error> {
        let hb = heartbeat_config(&new, self.our_mac);
        hb.validate()?;
        if let Some(v) = self.vrrp.as_mut() {
            v.reconfigure(vrrp_config(&new))?;
        }
        if let Some(v) = self.v6.as_mut() {
            v.reconfigure(&new)?;
        }
        self.hb.reconfigure(hb)?;
        self.vips = new.vip_addrs();
        self.cfg = new;
        let own = self.shared.health.find(u64::from(node_id(&self.cfg)));
        self.publish_filter(own.and_then(|s| u16::try_from(s).ok()));
        self.apply_priority(now);
        self.drain(now);
        Ok(())
    }

    /// The priority VRRP advertises: 0 while the dataplane is unhealthy,
    /// else the configured one less what the tracked objects take away.
    pub fn effective_priority(&self) -> u8 {
        if !self.dataplane_healthy {
            return 0;
        }
        self.cfg
            .vrrp
            .tracked_priority(self.cfg.node.priority, self.proxy_down, self.links_down)
    }

    fn apply_priority(&mut self, now: Instant) {
        let p = self.effective_priority();
        if let Some(v) = self.vrrp.as_mut()
            && v.priority() != p
        {
            log!("vrrp", "priority {} -> {p}", v.priority());
            v.set_priority(now, p);
        }
        if let Some(v) = self.v6.as_mut() {
            v.set_priority(now, p);
        }
    }

    /// Node health drives priority: a director whose workers stopped or
    /// whose interface is down must not stay Master, so it resigns with
    /// priority 0 and takes its configured priority back once healthy.
    pub fn set_dataplane_healthy(&mut self, now: Instant, healthy: bool) {
        if healthy == self.dataplane_healthy {
            return;
        }
        self.dataplane_healthy = healthy;
        if self.vrrp.is_some() {
            if healthy {
                log!("vrrp", "dataplane healthy again");
            } else {
                log!("vrrp", "dataplane unhealthy: resigning with priority 0");
            }
        }
        self.apply_priority(now);
        if !healthy {
            self.emit_fault("dataplane");
        }
        self.drain(now);
    }

    /// Runs every pending action and event of both machines.
    fn drain(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(a) = self.vrrp.as_mut().and_then(vrrp::Instance::poll_action) {
                progressed = true;
                self.vrrp_action(now, a);
            }
            if let Some(v) = self.v6.as_mut() {
                progressed |= v.drain(&mut self.tx);
            }
            while let Some(t) = self.hb.poll_transmit() {
                progressed = true;
                self.tx.push_back(frames::build_ipv4(
                    ethernet::Address(self.our_mac),
                    ethernet::Address(t.dst_mac),
                    t.src,
                    t.dst,
                    ipv4::Protocol::Heartbeat,
                    255,
                    &t.payload,
                ));
            }
            while let Some(e) = self.hb.poll_event() {
                progressed = true;
                self.heartbeat_event(e);
            }
            if !progressed {
                break;
            }
        }
        let generation = self.hb.membership().generation;
        if self.membership_generation != Some(generation) {
            self.membership_generation = Some(generation);
            self.apply_membership(now);
        }
    }

    fn vrrp_action(&mut self, now: Instant, a: vrrp::Action) {
        match a {
            vrrp::Action::SendAdvert { priority } => {
                let Some(v) = self.vrrp.as_ref() else { return };
                let repr = v.advert_repr(priority);
                let src = self.cfg.node.management_ip;
                let dst = Ipv4Addr::new(224, 0, 0, 18);
                let mut payload = vec![0u8; repr.buffer_len()];
                let mut pkt = crate::wire::vrrp::Packet::new_unchecked(&mut payload[..]);
                if let Err(e) = repr.emit(&mut pkt, src, dst) {
                    log!("vrrp", "cannot build advert: {e}");
                    return;
                }
                // RFC 5798 §7.3: the source MAC of an advert is the virtual
                // router MAC; the destination is the multicast MAC of 224.0.0.18.
                self.tx.push_back(frames::build_ipv4(
                    self.vmac,
                    ethernet::Address::ipv4_multicast(dst),
                    src,
                    dst,
                    ipv4::Protocol::Vrrp,
                    255,
                    &payload,
                ));
            }
            vrrp::Action::BecomeMaster { reason } => {
                let role = match self.cfg.cluster.mode {
                    crate::config::ClusterMode::ActivePassive => "Active Director",
                    crate::config::ClusterMode::ActiveActive => {
                        "coordinator: heartbeat requests and membership"
                    }
                };
                log!("vrrp", "became Master ({role}): {reason:?}");
                self.master = true;
                self.vrrp_changed(Some(event::Kind::Master), "MASTER", reason);
                if let Err(e) = self.hb.set_active(now, true) {
                    log!("heartbeat", "cannot become active: {e}");
                }
            }
            vrrp::Action::BecomeBackup { reason } => {
                if self.master {
                    log!("vrrp", "became Backup (Passive Director): {reason:?}");
                } else {
                    log!("vrrp", "Backup (Passive Director): {reason:?}");
                }
                self.master = false;
                self.vrrp_changed(Some(event::Kind::Backup), "BACKUP", reason);
                let _ = self.hb.set_active(now, false);
            }
            vrrp::Action::BecomeInitialize { reason } => {
                log!("vrrp", "left the election: {reason:?}");
                self.master = false;
                // Only a shutdown leads here; its `stop` event is already queued.
                self.vrrp_changed(None, "INITIALIZE", reason);
                let _ = self.hb.set_active(now, false);
            }
            // Active-active: nobody holds the virtual MAC (see `forwarding`).
            vrrp::Action::SendGratuitousArp { .. }
                if self.cfg.cluster.mode == crate::config::ClusterMode::ActiveActive => {}
            vrrp::Action::SendGratuitousArp { vip } => {
                self.tx
                    .push_back(arp::Repr::gratuitous(self.vmac, vip).to_frame(None));
            }
        }
    }

    fn heartbeat_event(&mut self, e: heartbeat::Event) {
        match e {
            heartbeat::Event::Discovered { id, name, ip } => {
                log!(
                    "heartbeat",
                    "discovered node {} ({ip}, id {id})",
                    log::escape(&name)
                );
            }
            heartbeat::Event::StateChanged { id, name, from, to } => {
                log!("heartbeat", "node {}: {from} -> {to}", log::escape(&name));
                // A node id is its management IPv4 (`node_id_from_ipv4`).
                let ip = Ipv4Addr::from(id);
                self.emit(
                    event::Kind::Node,
                    &name,
                    ip,
                    (from.as_str(), to.as_str()),
                    "heartbeat",
                );
            }
            heartbeat::Event::MembershipChanged { generation } => {
                log!(
                    "heartbeat",
                    "balancing set changed (generation {generation})"
                );
            }
            heartbeat::Event::Rejected {
                reason,
                source,
                held_back,
            } => {
                log!(
                    "heartbeat",
                    "dropped heartbeat from {source}: {} ({held_back} more since the last line; \
                     at most one line per minute per reason and source)",
                    reason.as_str()
                );
            }
            heartbeat::Event::Rebound { id, from, to, mac } => {
                log!(
                    "heartbeat",
                    "node id {id} moved from {from} to {to} ({}) after it had failed",
                    heartbeat::format_mac(&mac)
                );
            }
            heartbeat::Event::ProbeProxy { id, ip } => {
                // At most one pending request per node.
                if !self.probes.iter().any(|(i, _)| *i == id) {
                    self.probes.push_back((id, ip));
                }
            }
            heartbeat::Event::Forgotten { id } => {
                log!("heartbeat", "forgot node id {id}");
                // Free its slot: a later node may take it. Clearing bumps the
                // slot generation, so no flow follows the slot to a new node.
                let table = &self.shared.health;
                if let Some(slot) = table.find(u64::from(id)) {
                    let _ = table.clear(slot);
                }
            }
        }
    }

    /// Writes the membership into the health table at once, and rebuilds
    /// Maglev now or at the end of the current window (module docs).
    fn apply_membership(&mut self, now: Instant) {
        let m = self.hb.membership().clone();
        let table = &self.shared.health;
        let members: std::collections::BTreeSet<u64> =
            m.nodes.iter().map(|n| u64::from(n.id)).collect();
        for (slot, n) in table.nodes() {
            if !members.contains(&n.id) && n.state != health::State::Failed {
                let _ = table.set_state(slot, health::State::Failed);
            }
        }
        for n in &m.nodes {
            let info = health::NodeInfo {
                id: u64::from(n.id),
                mac: n.mac,
                ip: n.ip,
                // A held (STALE) node keeps its weight, so its Maglev share
                // and with it its established flows stay; Draining takes
                // no new flows. Active-active: ECMP may move any flow to a
                // director that never saw it, which can only follow Maglev,
                // so new flows must follow Maglev too: a held node keeps
                // taking them there (its proxy answers the probe; the
                // first closed port fails it).
                state: if n.weight > 0
                    && (!n.held
                        || self.cfg.cluster.mode == crate::config::ClusterMode::ActiveActive)
                {
                    health::State::Up
                } else {
                    health::State::Draining
                },
                weight: n.weight,
                connections: 0,
            };
            match table.upsert_evicting(info) {
                Ok((_, Some(old))) => {
                    self.counters.health_evicted += 1;
                    log!(
                        "balance",
                        "health table full: freed the slot of failed node id {old} for {}",
                        n.ip
                    );
                }
                Ok((_, None)) => {}
                Err(e) => log!("balance", "health table full, {} left out: {e}", n.ip),
            }
        }
        let own = table.find(u64::from(node_id(&self.cfg)));
        self.publish_filter(own.and_then(|s| u16::try_from(s).ok()));
        let window_open = self
            .last_rebuild
            .is_some_and(|t| now.saturating_duration_since(t) < REBUILD_INTERVAL);
        if window_open {
            self.counters.maglev_rebuilds_coalesced += 1;
            if self.rebuild_due.is_none() {
                self.rebuild_due = self.last_rebuild.map(|t| t + REBUILD_INTERVAL);
            }
        } else {
            self.rebuild_maglev(now);
        }
    }

    /// Builds Maglev from the health table as it is now and publishes it if
    /// it changed.
    fn rebuild_maglev(&mut self, now: Instant) {
        self.rebuild_due = None;
        self.last_rebuild = Some(now);
        self.counters.maglev_rebuilds += 1;
        let backends = maglev::backends_from_health(&self.shared.health);
        match self
            .shared
            .maglev
            .rebuild_if_changed(&backends, self.cfg.dataplane.maglev_table_size)
        {
            Ok(true) => {
                self.counters.maglev_published += 1;
                let since = now.saturating_duration_since(self.anchor.0).as_millis();
                self.maglev = Some(status::Maglev {
                    fingerprint: format!("{:016x}", self.shared.maglev.load().fingerprint()),
                    nodes: backends.len(),
                    published_ms: self
                        .anchor
                        .1
                        .saturating_add(u64::try_from(since).unwrap_or(u64::MAX)),
                });
                log!(
                    "balance",
                    "Maglev table published: {} nodes, generation {}",
                    backends.len(),
                    self.hb.membership().generation
                );
            }
            Ok(false) => {}
            Err(e) => log!("balance", "Maglev rebuild failed: {e}"),
        }
    }

    fn publish_filter(&self, local_slot: Option<u16>) {
        let fwd = self.forwarding();
        let mut f = Filter::new(self.cfg.vrrp.vrid, self.our_mac)
            .with_local_slot(local_slot)
            .with_steer_mac(fwd.dst_mac);
        if fwd.peer_macs {
            // Every node the health table knows, failed ones too: a member
            // whose proxy failed may still be forwarding.
            f = f.with_peer_macs(self.shared.health.nodes().into_iter().map(|(_, n)| n.mac));
        }
        for v in &self.vips {
            f = f.with_vip(*v);
        }
        if let Some(v6) = &self.v6 {
            for v in &v6.instance().config().vips {
                f = f.with_vip6(*v);
            }
        }
        f = f.with_ports(self.cfg.redirected_ports());
        self.shared.filter.store(Arc::new(f));
    }

    /// The `proxyha status` answer.
    pub fn status(&self, now: Instant) -> status::Status {
        let hb = self.hb.status();
        let entries = hb
            .nodes
            .iter()
            .map(|n| status::Entry {
                device: n.device.clone(),
                statechange: n.statechange,
                ip: n.ip,
                ip6: n.ip6,
                protocols: 1,
                mac: n.mac,
                state: n.state.as_str().to_string(),
                stats: n.stats,
                statusvalid: u8::from(n.statusvalid),
                kind: match n.kind {
                    heartbeat::NodeType::Director => "director",
                    heartbeat::NodeType::Redundant => "redundant",
                    heartbeat::NodeType::Scanning => "scanning",
                }
                .to_string(),
            })
            .collect();
        let (vrrp_state, master_ip, vrrp_json) = match &self.vrrp {
            Some(v) => {
                let s = v.status(now);
                (format!("{:?}", s.state), s.master_ip, {
                    let mut j = serde_json::to_value(&s).unwrap_or_default();
                    if let (Some(o), Some(v6)) = (j.as_object_mut(), &self.v6) {
                        o.insert(
                            "ipv6".into(),
                            serde_json::to_value(v6.instance().status(now)).unwrap_or_default(),
                        );
                        o.insert(
                            "ipv6_nd".into(),
                            serde_json::to_value(v6.counters()).unwrap_or_default(),
                        );
                    }
                    j
                })
            }
            // A scanning node knows the Active Director from its heartbeats.
            None => (
                "scanning".to_string(),
                hb.nodes
                    .iter()
                    .find(|n| n.kind == heartbeat::NodeType::Director)
                    .map(|n| n.ip),
                serde_json::Value::Null,
            ),
        };
        let mut hb_json = serde_json::to_value(&hb).unwrap_or_default();
        if let Some(o) = hb_json.as_object_mut() {
            o.remove("nodes");
            o.insert(
                "control".into(),
                serde_json::to_value(self.counters()).unwrap_or_default(),
            );
        }
        status::Status {
            node: self.cfg.node.name.clone(),
            lbid: self.cfg.node.lbid,
            vrid: self.cfg.vrrp.vrid,
            priority: self.cfg.node.priority,
            vrrp_state,
            master_ip,
            authenticated: hb.authenticated,
            entries,
            vrrp: vrrp_json,
            heartbeat: hb_json,
            mode: self.cfg.cluster.mode.as_str().to_string(),
            forwarding: self.forwarding().steer,
            announcement: None,
            maglev: self.maglev.clone(),
        }
    }

    /// How long the daemon may sleep without missing a timer.
    pub fn sleep_budget(&self, now: Instant, max: Duration) -> Duration {
        self.poll_timeout()
            .map_or(max, |t| t.saturating_duration_since(now).min(max))
    }
}
