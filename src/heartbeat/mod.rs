//! Protocol-253 heartbeats: node discovery and health, load-aware weights,
//! LBID groups and authentication, as a sans-IO state machine.
//!
//! The protocol is specified in `docs/heartbeat.md`; in brief:
//!
//! * The active director broadcasts a **request** every interval (default
//!   1 s, minimum 100 ms). It carries the director's own status and the
//!   **membership announcement**: the (node id, MAC, IPv4, weight) set it
//!   balances with, and a generation number.
//! * Every other node of the group (passive directors and scanning nodes)
//!   answers each request with a broadcast **reply** carrying its status,
//!   so every director hears every reply and a passive director's table is
//!   warm when it takes over.
//! * Misses are counted per request: a node that has not been heard within
//!   `reply_timeout` (interval / 4) of a request has missed it; after
//!   `misses` (default 3) in a row it is FAILED. No request, no miss: a
//!   passive director whose active director died keeps its table warm.
//! * A passive director balances with exactly the announced membership.
//!
//! # Driving a [`Machine`]
//!
//! [`Machine`] does no I/O and reads no clock. Feed it:
//!
//! 1. [`Machine::handle_heartbeat`] with every protocol-253 IP payload
//!    received (and its IPv4 source address);
//! 2. [`Machine::handle_timeout`] whenever the instant from
//!    [`Machine::poll_timeout`] has passed;
//! 3. [`Machine::set_active`] when VRRP makes this director Master or
//!    Backup, and [`Machine::set_local_health`] after each local probe
//!    ([`local`]).
//!
//! After each call, drain in this order: [`Machine::poll_transmit`] (send
//! each payload as IPv4 protocol 253 from the management address to
//! [`Transmit::dst`] / [`Transmit::dst_mac`] with TTL 255),
//! [`Machine::poll_event`] (log them; `Rejected` events come at most once
//! per [`REJECT_LOG_PERIOD`] per (reason, source)), then read [`Machine::membership`] (publish a new
//! Maglev table when its generation changed) and [`Machine::poll_timeout`].
pub mod local;
pub mod weight;

mod config;
mod counters;
mod events;
mod membership;
mod node;
mod receive;
mod status;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::wire::heartbeat as wire;

pub use self::config::{Config, StaticNode, node_id_from_ipv4};
pub use self::counters::Counters;
pub use self::events::{Event, Reject, Transmit};
pub use self::membership::{Member, Membership};
pub use self::status::{NodeType, NodeView, Status, format_mac};
pub use crate::log::Once as LogOnce;
use crate::log::RateLimit;
pub use crate::wire::heartbeat::{Ports, Role, State};

use self::node::Node;

/// Default request interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest request interval allowed.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Longest request interval the configuration file accepts.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// Default number of missed requests after which a node is FAILED.
pub const DEFAULT_MISSES: u32 = 3;
/// Most missed requests the configuration file accepts before FAILED.
pub const MAX_MISSES: u32 = 100;
/// Default number of consecutive good heartbeats a FAILED node needs to be OK again.
pub const DEFAULT_RISE: u32 = 2;
/// Membership changes this close together share one extra announcement.
pub const ANNOUNCE_COALESCE: Duration = Duration::from_millis(10);
/// Default accepted clock difference for authenticated heartbeats.
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(30);
/// Default time after which a discovered node that stays FAILED is forgotten.
pub const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(300);
/// Most nodes the table holds. A new id that finds it full evicts the
/// oldest FAILED discovered node (never an OK, DRAINING or static one), or
/// is dropped when there is none.
pub const MAX_NODES: usize = 256;
/// Default cap on the capacity a remote node may claim (`heartbeat.max_capacity`).
pub const DEFAULT_MAX_CAPACITY: u32 = 10_000;
/// How often a drop is logged per (reason, source); see [`crate::log::RateLimit`].
pub const REJECT_LOG_PERIOD: Duration = crate::log::RATE_PERIOD;
/// Most (reason, source) keys the drop-log limiter remembers.
pub const REJECT_LOG_KEYS: usize = 1024;
/// The name `proxyha status` prints for this node's own scanning entry.
pub const SELF_DEVICE: &str = "__SELF__";
/// Where heartbeats go: the limited broadcast address (see `docs/heartbeat.md` §1).
pub const BROADCAST_IP: Ipv4Addr = Ipv4Addr::BROADCAST;
/// The Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// Why a heartbeat configuration or call was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// A reload tried to change this node's identity.
    #[error("the LBID, node id, name, role and addresses change only with a restart")]
    NeedsRestart,
    /// The interval is below [`MIN_INTERVAL`].
    #[error("heartbeat.interval = {0:?}: must be at least {min} ms", min = MIN_INTERVAL.as_millis())]
    IntervalTooShort(Duration),
    /// Zero misses would fail every node at once.
    #[error("heartbeat.misses = 0: must be at least 1")]
    ZeroMisses,
    /// The name does not fit the wire format.
    #[error("node name {0:?}: must be at most 32 bytes")]
    NameTooLong(String),
    /// An empty HMAC key authenticates nothing.
    #[error("heartbeat key: must not be empty")]
    EmptyKey,
    /// A static node appears twice, or has this node's id.
    #[error("heartbeat static node {0:#010x}: listed twice or equal to this node's id")]
    DuplicateStatic(u32),
    /// More static nodes than the table holds.
    #[error("heartbeat static nodes: at most {MAX_NODES}")]
    TooManyStatic,
    /// A scanning node (priority 0) was asked to become the active director.
    #[error("a scanning node (priority 0) cannot be the active director")]
    NotADirector,
    /// A next key without a current one.
    #[error("heartbeat key_next: needs a current key")]
    NextKeyWithoutKey,
    /// A capacity cap of 0 would give every node the same fallback weight.
    #[error("heartbeat max_capacity: must be at least 1")]
    ZeroMaxCapacity,
    /// This node's or a static node's MAC is multicast or all zeros.
    #[error("MAC {}: must be a unicast, non-zero address", format_mac(.0))]
    BadMac([u8; 6]),
}

/// Whether `mac` can be a node's address: unicast (group bit clear) and
/// not all zeros. Heartbeats claiming any other MAC are dropped
/// ([`Reject::BadMac`]): the dataplane would rewrite client frames to it.
pub fn is_unicast_mac(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 0 && *mac != [0; 6]
}
/// What the local probes found ([`local`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalHealth {
    /// Reachability of the configured proxy ports, in config order.
    pub ports: Ports,
    /// Established connections to the proxy port(s).
    pub connections: u32,
    /// CPU load, per-mille.
    pub load_permille: u16,
    /// The operator asked this node to drain.
    pub draining: bool,
}
/// One node's heartbeat protocol. See the module docs for how to drive it.
#[derive(Debug)]
pub struct Machine {
    cfg: Config,
    anchor: Instant,
    anchor_unix_ms: u64,
    active: bool,
    /// The first request after a takeover carries the adopted set unchanged.
    hold_weights: bool,
    /// Active: the membership changed between two requests (a node failed
    /// or recovered); announce it at once in an extra request, so passive
    /// directors adopt it within milliseconds, not at the next interval.
    announce_pending: bool,
    /// When the pending announcement goes out: changes within
    /// [`ANNOUNCE_COALESCE`] share one, and extras are at least a tenth of
    /// an interval apart (a flood of changes cannot become a request flood).
    announce_at: Option<Instant>,
    last_announcement: Option<Instant>,
    /// Passive: when the last request that started a miss check was heard.
    last_request_heard: Option<Instant>,
    local: Option<LocalHealth>,
    self_state: State,
    self_changed: Option<Instant>,
    self_director_changed: Option<Instant>,
    sequence: u64,
    next_request: Option<Instant>,
    next_housekeeping: Instant,
    /// (check at, request at): miss checks of requests sent or heard.
    checks: VecDeque<(Instant, Instant)>,
    nodes: BTreeMap<u32, Node>,
    membership: Membership,
    /// Current weights of the members this node balances with when active.
    weights: BTreeMap<u32, u32>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    counters: Counters,
    log_limit: RateLimit<(Reject, Ipv4Addr)>,
}
impl Machine {
    /// A machine that starts passive (not the active director). `now` and
    /// `unix_ms` are the same instant on the monotonic and the wall clock;
    /// the machine derives wall time (heartbeat timestamps, `statechange`)
    /// from them and never reads a clock.
    pub fn new(cfg: Config, now: Instant, unix_ms: u64) -> Result<Self, Error> {
        cfg.validate()?;
        let mut nodes = BTreeMap::new();
        for s in &cfg.static_nodes {
            nodes.insert(s.id, Node::new(s.name.clone(), s.ip, s.mac, true));
        }
        Ok(Machine {
            anchor: now,
            anchor_unix_ms: unix_ms,
            active: false,
            hold_weights: false,
            announce_pending: false,
            announce_at: None,
            last_announcement: None,
            last_request_heard: None,
            local: None,
            self_state: State::Unknown,
            self_changed: None,
            self_director_changed: if cfg.role() == Role::Director {
                Some(now)
            } else {
                None
            },
            // Sequence numbers start at the wall clock in microseconds and
            // grow by one per message, so they keep increasing across a
            // restart (messages are at least 100 ms apart).
            sequence: unix_ms.saturating_mul(1000),
            next_request: None,
            next_housekeeping: now + cfg.interval,
            checks: VecDeque::new(),
            nodes,
            membership: Membership::default(),
            weights: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            log_limit: RateLimit::new(REJECT_LOG_KEYS, REJECT_LOG_PERIOD),
            cfg,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether this node is the active director.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The balancing set: computed by this node when active, otherwise
    /// exactly the last announcement of the active director.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The scanning-side state of node `id` (this node included), if known.
    pub fn node_state(&self, id: u32) -> Option<State> {
        if id == self.cfg.node_id {
            return Some(self.self_state);
        }
        self.nodes.get(&id).map(|n| n.state)
    }

    /// Ids of the nodes in the table (this node excluded), ascending.
    pub fn node_ids(&self) -> Vec<u32> {
        self.nodes.keys().copied().collect()
    }

    fn unix_ms(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.anchor).as_millis();
        self.anchor_unix_ms
            .saturating_add(u64::try_from(since).unwrap_or(u64::MAX))
    }

    fn unix_secs(&self, t: Option<Instant>) -> u64 {
        t.map_or(0, |t| self.unix_ms(t) / 1000)
    }

    /// The next heartbeat to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_housekeeping;
        if let Some(r) = self.next_request {
            t = t.min(r);
        }
        if let Some((c, _)) = self.checks.front() {
            t = t.min(*c);
        }
        if let Some(a) = self.announce_at {
            t = t.min(a);
        }
        Some(t)
    }

    /// Makes this director the active one (VRRP Master) or a passive one.
    ///
    /// On becoming active it sends its first request at once. It keeps the
    /// membership it adopted from the previous active director, unchanged
    /// for that first request (so both directors' Maglev tables are
    /// identical at takeover), and evolves it from its own table afterwards.
    pub fn set_active(&mut self, now: Instant, active: bool) -> Result<(), Error> {
        if active && self.cfg.role() != Role::Director {
            return Err(Error::NotADirector);
        }
        if active == self.active {
            return Ok(());
        }
        self.active = active;
        self.self_director_changed = Some(now);
        if active {
            self.weights = self
                .membership
                .nodes
                .iter()
                .filter(|m| m.weight > 0)
                .map(|m| (m.id, m.weight))
                .collect();
            if self.membership.nodes.is_empty() {
                // Nothing adopted: start from our own view.
                self.recompute_membership(false);
            }
            self.hold_weights = true;
            self.next_request = Some(now);
            self.tick_request(now);
        } else {
            self.next_request = None;
        }
        Ok(())
    }

    /// The result of the proxy probe that [`Event::ProbeProxy`] asked for:
    /// whether every proxy port of node `id` accepted a connection.
    pub fn set_proxy_probe(&mut self, now: Instant, id: u32, alive: bool) {
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        // A node heard since the probe was asked for needs none.
        if n.missed == 0 {
            return;
        }
        n.proxy_alive = Some(alive);
        if !alive {
            self.counters.proxy_probes_failed += 1;
        }
        self.refresh(now, id);
        self.flush_announcement(now);
    }

    /// A reload: takes every setting of `cfg` (timing, keys, capacity,
    /// pinned nodes, discovery, STALE hold) keeping the node table, the
    /// membership and the counters. The identity (LBID, node id, name,
    /// role, addresses) must not change: only a restart changes it. Newly
    /// pinned nodes enter the table; a node no longer pinned stays, as a
    /// discovered one.
    pub fn reconfigure(&mut self, cfg: Config) -> Result<(), Error> {
        cfg.validate()?;
        let c = &self.cfg;
        if cfg.lbid != c.lbid
            || cfg.node_id != c.node_id
            || cfg.name != c.name
            || cfg.role() != c.role()
            || cfg.ipv4 != c.ipv4
            || cfg.mac != c.mac
        {
            return Err(Error::NeedsRestart);
        }
        for s in &cfg.static_nodes {
            self.nodes
                .entry(s.id)
                .or_insert_with(|| Node::new(s.name.clone(), s.ip, s.mac, true))
                .is_static = true;
        }
        for (id, n) in self.nodes.iter_mut() {
            if n.is_static && !cfg.static_nodes.iter().any(|s| s.id == *id) {
                n.is_static = false;
            }
        }
        self.cfg = cfg;
        Ok(())
    }

    /// Records the result of the local probes.
    pub fn set_local_health(&mut self, now: Instant, mut health: LocalHealth) {
        health.ports.count = health.ports.count.min(wire::MAX_PORTS);
        health.ports = Ports::from_results(
            &(0..health.ports.count)
                .map(|i| health.ports.is_reachable(i))
                .collect::<Vec<_>>(),
        );
        health.load_permille = health.load_permille.min(wire::MAX_LOAD);
        self.local = Some(health);
        let new = if health.draining {
            State::Draining
        } else if !health.ports.all_reachable() {
            State::Failed
        } else {
            State::Ok
        };
        if new != self.self_state {
            let from = self.self_state;
            self.self_state = new;
            self.self_changed = Some(now);
            self.state_changed(self.cfg.node_id, self.cfg.name.clone(), from, new);
        }
        self.flush_announcement(now);
    }

    /// Runs timers: sends due requests, counts misses, forgets dead nodes.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, req_at)) = self.checks.front() {
            if at > now {
                break;
            }
            self.checks.pop_front();
            self.check_misses(now, req_at);
        }
        if self.next_request.is_some_and(|t| t <= now) {
            self.tick_request(now);
        }
        if self.next_housekeeping <= now {
            self.housekeeping(now);
            self.next_housekeeping = now + self.cfg.interval;
        }
        self.flush_announcement(now);
    }

    /// Sends the extra announcement a membership change between two
    /// requests asked for (active only). It is a request like any other on
    /// the wire, but it starts no miss check here, and a passive node that
    /// hears it within half an interval of the last request starts none
    /// either, so miss counting keeps its one-per-interval pace.
    pub(super) fn flush_announcement(&mut self, now: Instant) {
        if !self.announce_pending || !self.active {
            self.announce_pending = false;
            self.announce_at = None;
            return;
        }
        let at = *self.announce_at.get_or_insert_with(|| {
            let soonest = now + ANNOUNCE_COALESCE;
            match self.last_announcement {
                Some(t) => soonest.max(t + self.cfg.interval / 10),
                None => soonest,
            }
        });
        if now < at {
            return;
        }
        self.announce_pending = false;
        self.announce_at = None;
        self.last_announcement = Some(now);
        self.counters.tx_announcements += 1;
        self.queue(now, wire::Kind::Request);
    }

    fn tick_request(&mut self, now: Instant) {
        if !self.active {
            return;
        }
        if self.hold_weights {
            self.hold_weights = false;
        } else {
            self.recompute_membership(true);
        }
        self.queue(now, wire::Kind::Request);
        self.announce_pending = false;
        self.announce_at = None;
        let interval = self.cfg.interval;
        let next = self.next_request.map_or(now, |t| t + interval);
        self.next_request = Some(if next <= now { now + interval } else { next });
        self.checks.push_back((now + self.cfg.reply_timeout(), now));
    }

    fn check_misses(&mut self, now: Instant, request_at: Instant) {
        let misses = self.cfg.misses;
        let ids: Vec<u32> = self.nodes.keys().copied().collect();
        for id in ids {
            if let Some(n) = self.nodes.get_mut(&id) {
                if n.last_heard.is_some_and(|h| h >= request_at) {
                    continue;
                }
                n.missed = n.missed.saturating_add(1);
                n.total_missed += 1;
                n.good_streak = 0;
                self.counters.misses += 1;
                if n.missed >= misses {
                    n.timed_out = true;
                }
                // From the first miss on, every miss check asks for a fresh
                // probe, so the answer is there when the node times out.
                if self.active
                    && self.cfg.hold_stale
                    && matches!(n.state, State::Ok | State::Draining | State::Stale)
                {
                    self.counters.proxy_probes += 1;
                    self.events.push_back(Event::ProbeProxy { id, ip: n.ipv4 });
                }
            }
            self.refresh(now, id);
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        let forget = self.cfg.forget_after;
        let gone: Vec<u32> = self
            .nodes
            .iter()
            .filter(|(_, n)| {
                !n.is_static
                    && n.state == State::Failed
                    && n.state_changed
                        .is_some_and(|t| now.saturating_duration_since(t) >= forget)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.forget(id);
            self.counters.nodes_forgotten += 1;
        }
    }

    /// Removes node `id` from the table (its slot is free again) and says so.
    fn forget(&mut self, id: u32) {
        if self.nodes.remove(&id).is_some() {
            self.weights.remove(&id);
            self.events.push_back(Event::Forgotten { id });
        }
    }

    /// Makes room for a new node in a full table: forgets the discovered
    /// node that has been FAILED longest, preferring one that stopped
    /// answering over one that still reports itself failed. Never an OK,
    /// DRAINING, UNKNOWN or static node. Returns whether it made room.
    pub(super) fn evict_one(&mut self) -> bool {
        let victim = self
            .nodes
            .iter()
            .filter(|(_, n)| !n.is_static && n.state == State::Failed)
            .min_by_key(|(id, n)| (!n.timed_out, n.state_changed, **id))
            .map(|(id, _)| *id);
        match victim {
            Some(id) => {
                self.forget(id);
                self.counters.nodes_evicted += 1;
                true
            }
            None => false,
        }
    }
    /// Recomputes node `id`'s effective states; reports and acts on changes.
    fn refresh(&mut self, now: Instant, id: u32) {
        let rise = self.cfg.rise;
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        let d = n.effective_director();
        if d != n.director_state {
            n.director_state = d;
            n.director_changed = Some(now);
        }
        let s = n.effective(rise);
        if s == n.state {
            return;
        }
        let from = n.state;
        n.state = s;
        n.state_changed = Some(now);
        let name = n.name.clone();
        self.state_changed(id, name, from, s);
    }

    /// Counts and reports a node's (or this node's) new scanning-side state;
    /// the active director updates the balancing set at once: failed nodes
    /// leave, recovered nodes re-enter.
    fn state_changed(&mut self, id: u32, name: String, from: State, to: State) {
        if to == State::Failed {
            self.counters.node_failures += 1;
        }
        if to == State::Stale {
            self.counters.node_stale += 1;
        }
        self.events
            .push_back(Event::StateChanged { id, name, from, to });
        if self.active {
            self.recompute_membership(false);
        }
    }

    fn queue(&mut self, now: Instant, kind: wire::Kind) {
        self.sequence = self.sequence.wrapping_add(1);
        let local = self.local.unwrap_or_default();
        let director_state = match (self.cfg.role(), self.active) {
            (Role::Scanning, _) => State::Unknown,
            (Role::Director, true) => State::Network,
            (Role::Director, false) => State::Redundant,
        };
        let repr = wire::Repr {
            kind,
            lbid: self.cfg.lbid,
            node_id: self.cfg.node_id,
            name: self.cfg.name.clone(),
            role: self.cfg.role(),
            priority: self.cfg.priority,
            state: self.self_state,
            director_state,
            ipv4: self.cfg.ipv4,
            ipv6: self.cfg.ipv6,
            mac: self.cfg.mac,
            sequence: self.sequence,
            timestamp_ms: self.unix_ms(now),
            connections: local.connections,
            load_permille: local.load_permille,
            capacity: self.cfg.capacity,
            ports: local.ports,
            announcement: (kind == wire::Kind::Request).then(|| self.membership.to_announcement()),
        };
        match repr.to_bytes(self.cfg.key.as_deref()) {
            Ok(payload) => {
                match kind {
                    wire::Kind::Request => self.counters.tx_requests += 1,
                    wire::Kind::Reply => self.counters.tx_replies += 1,
                }
                self.transmits.push_back(Transmit {
                    src: self.cfg.ipv4,
                    dst: BROADCAST_IP,
                    dst_mac: BROADCAST_MAC,
                    kind,
                    payload,
                });
            }
            Err(_) => self.counters.tx_errors += 1,
        }
    }
}
