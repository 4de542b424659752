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
//! [`Machine::poll_event`] (log them; `Rejected` events come only once per
//! (reason, source)), then read [`Machine::membership`] (publish a new
//! Maglev table when its generation changed) and [`Machine::poll_timeout`].

pub mod local;
pub mod weight;

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;

use crate::wire::heartbeat as wire;

pub use crate::log::Once as LogOnce;
pub use crate::wire::heartbeat::{Ports, Role, State};

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
/// Default accepted clock difference for authenticated heartbeats.
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(30);
/// Default time after which a discovered node that stays FAILED is forgotten.
pub const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(300);
/// Most nodes the table holds; heartbeats from further new ids are dropped.
pub const MAX_NODES: usize = 256;
/// The name `proxyha status` prints for this node's own scanning entry.
pub const SELF_DEVICE: &str = "__SELF__";
/// Where heartbeats go: the limited broadcast address (see `docs/heartbeat.md` §1).
pub const BROADCAST_IP: Ipv4Addr = Ipv4Addr::BROADCAST;
/// The Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// Why a heartbeat configuration or call was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
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
}

/// A node pinned by the configuration: it is in the table from the start
/// (UNKNOWN until heard), is never forgotten, and heartbeats claiming its id
/// from another IPv4 or MAC are rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticNode {
    /// Node id.
    pub id: u32,
    /// Name shown until the node is heard.
    pub name: String,
    /// Its management IPv4.
    pub ip: Ipv4Addr,
    /// Its MAC.
    pub mac: [u8; 6],
}

/// Settings of one node's heartbeat machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Load-balancing group id (`MFEND_LBID`).
    pub lbid: u16,
    /// This node's id (see [`node_id_from_ipv4`]).
    pub node_id: u32,
    /// This node's name, at most 32 bytes.
    pub name: String,
    /// Director priority; 0 makes a scanning node only.
    pub priority: u8,
    /// Management IPv4 (heartbeats are sent from it).
    pub ipv4: Ipv4Addr,
    /// Management IPv6, `::` when none.
    pub ipv6: Ipv6Addr,
    /// Management MAC.
    pub mac: [u8; 6],
    /// Connections this node is sized for (default 1000).
    pub capacity: u32,
    /// Request interval (default 1 s, at least 100 ms).
    pub interval: Duration,
    /// Missed requests before FAILED (default 3).
    pub misses: u32,
    /// Consecutive good heartbeats before a FAILED node is OK (default 2).
    pub rise: u32,
    /// HMAC-SHA256 key; `None` sends and accepts unauthenticated heartbeats.
    pub key: Option<Vec<u8>>,
    /// Accepted clock difference for authenticated heartbeats (default 30 s).
    pub replay_window: Duration,
    /// Pinned nodes.
    pub static_nodes: Vec<StaticNode>,
    /// Whether nodes outside `static_nodes` are discovered (default true).
    pub accept_unlisted: bool,
    /// Discovered nodes FAILED this long are dropped from the table (default 300 s).
    pub forget_after: Duration,
    /// Weight tuning.
    pub weights: weight::Params,
}

impl Config {
    /// A configuration with every default (see the field docs).
    pub fn new(
        lbid: u16,
        node_id: u32,
        name: &str,
        priority: u8,
        ipv4: Ipv4Addr,
        mac: [u8; 6],
    ) -> Self {
        Config {
            lbid,
            node_id,
            name: name.to_owned(),
            priority,
            ipv4,
            ipv6: Ipv6Addr::UNSPECIFIED,
            mac,
            capacity: 1000,
            interval: DEFAULT_INTERVAL,
            misses: DEFAULT_MISSES,
            rise: DEFAULT_RISE,
            key: None,
            replay_window: DEFAULT_REPLAY_WINDOW,
            static_nodes: Vec::new(),
            accept_unlisted: true,
            forget_after: DEFAULT_FORGET_AFTER,
            weights: weight::Params::default(),
        }
    }

    /// Director or scanning node, from the priority.
    pub fn role(&self) -> Role {
        if self.priority == 0 {
            Role::Scanning
        } else {
            Role::Director
        }
    }

    /// Time after a request within which a node must be heard.
    pub fn reply_timeout(&self) -> Duration {
        self.interval / 4
    }

    /// Checks the rules the fields must follow.
    pub fn validate(&self) -> Result<(), Error> {
        if self.interval < MIN_INTERVAL {
            return Err(Error::IntervalTooShort(self.interval));
        }
        if self.misses == 0 {
            return Err(Error::ZeroMisses);
        }
        if self.name.len() > wire::MAX_NAME_LEN {
            return Err(Error::NameTooLong(self.name.clone()));
        }
        if self.key.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::EmptyKey);
        }
        if self.static_nodes.len() > MAX_NODES {
            return Err(Error::TooManyStatic);
        }
        let mut ids = std::collections::BTreeSet::new();
        for s in &self.static_nodes {
            if s.id == self.node_id || !ids.insert(s.id) {
                return Err(Error::DuplicateStatic(s.id));
            }
            if s.name.len() > wire::MAX_NAME_LEN {
                return Err(Error::NameTooLong(s.name.clone()));
            }
        }
        Ok(())
    }
}

/// The default node id: the management IPv4 address as a big-endian u32.
/// It is unique on the segment and gives every director the same order.
pub fn node_id_from_ipv4(ip: Ipv4Addr) -> u32 {
    u32::from(ip)
}

/// One node the active director balances with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Member {
    /// Node id.
    pub id: u32,
    /// The MAC the dataplane rewrites to.
    pub mac: [u8; 6],
    /// The node's IPv4 address.
    pub ip: Ipv4Addr,
    /// Maglev weight. 0 means DRAINING: keep its established flows, give it
    /// no new ones. A node absent from the set is FAILED: move its flows.
    pub weight: u32,
}

/// The balancing set: what Maglev is built from. `nodes` is sorted by id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Membership {
    /// Changes whenever `nodes` changes; rebuild Maglev when it does.
    pub generation: u64,
    /// Members, sorted by node id, at most 64.
    pub nodes: Vec<Member>,
}

impl Membership {
    fn from_announcement(a: &wire::Announcement) -> Self {
        let mut nodes: Vec<Member> = a
            .entries
            .iter()
            .map(|e| Member {
                id: e.id,
                mac: e.mac,
                ip: e.ip,
                weight: e.weight,
            })
            .collect();
        nodes.sort_by_key(|m| m.id);
        Membership {
            generation: a.generation,
            nodes,
        }
    }

    fn to_announcement(&self) -> wire::Announcement {
        wire::Announcement {
            generation: self.generation,
            entries: self
                .nodes
                .iter()
                .map(|m| wire::Entry {
                    id: m.id,
                    ip: m.ip,
                    mac: m.mac,
                    weight: m.weight,
                })
                .collect(),
        }
    }
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

/// A heartbeat to send: `payload` as an IPv4 packet with protocol 253 from
/// `src` to `dst` (Ethernet destination `dst_mac`), TTL 255.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Source address: this node's management IPv4.
    pub src: Ipv4Addr,
    /// Destination: [`BROADCAST_IP`].
    pub dst: Ipv4Addr,
    /// Ethernet destination: [`BROADCAST_MAC`].
    pub dst_mac: [u8; 6],
    /// Request or reply.
    pub kind: wire::Kind,
    /// The heartbeat message.
    pub payload: Vec<u8>,
}

/// Why a received heartbeat was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reject {
    /// It did not parse.
    Malformed,
    /// It belongs to another LBID group.
    OtherLbid,
    /// A key is configured and it carries no HMAC.
    Unauthenticated,
    /// Its HMAC does not verify (forged, or another key).
    BadHmac,
    /// Its timestamp is outside the replay window.
    Stale,
    /// Its sequence number is not above the last accepted one of that node.
    Replay,
    /// Its management IPv4 is not the packet's source address.
    SourceMismatch,
    /// It claims this node's id from another address.
    IdConflict,
    /// It claims a static node's id from another IPv4 or MAC.
    StaticMismatch,
    /// Its node is not listed and discovery is off.
    Unlisted,
    /// The node table is full.
    TableFull,
}

impl Reject {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Malformed => "malformed",
            Reject::OtherLbid => "other LBID",
            Reject::Unauthenticated => "unauthenticated",
            Reject::BadHmac => "bad HMAC (forged?)",
            Reject::Stale => "timestamp outside the replay window",
            Reject::Replay => "replayed sequence number",
            Reject::SourceMismatch => "IPv4 field differs from the source address",
            Reject::IdConflict => "claims this node's id",
            Reject::StaticMismatch => "claims a static node's id from another address",
            Reject::Unlisted => "node not in the static list",
            Reject::TableFull => "node table full",
        }
    }
}

/// Something the owner should know, from [`Machine::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A node was heard for the first time.
    Discovered {
        /// Node id.
        id: u32,
        /// Its name.
        name: String,
        /// Its IPv4.
        ip: Ipv4Addr,
    },
    /// A node's scanning-side state changed (this node included).
    StateChanged {
        /// Node id.
        id: u32,
        /// Its name.
        name: String,
        /// The old state.
        from: State,
        /// The new state.
        to: State,
    },
    /// The balancing set changed: rebuild Maglev from [`Machine::membership`].
    MembershipChanged {
        /// The new generation.
        generation: u64,
    },
    /// A heartbeat was dropped; emitted only the first time per (reason, source).
    Rejected {
        /// Why.
        reason: Reject,
        /// The IPv4 source of the packet.
        source: Ipv4Addr,
    },
    /// A discovered node that stayed FAILED was removed from the table.
    Forgotten {
        /// Node id.
        id: u32,
    },
}

/// Counters of one machine (plain integers: the control plane owns it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Counters {
    /// Heartbeats handed to `handle_heartbeat`.
    pub rx_heartbeats: u64,
    /// Requests accepted.
    pub rx_requests: u64,
    /// Replies accepted.
    pub rx_replies: u64,
    /// Our own heartbeats heard back (ignored).
    pub rx_own: u64,
    /// Requests sent.
    pub tx_requests: u64,
    /// Replies sent.
    pub tx_replies: u64,
    /// Messages that could not be built (should stay 0).
    pub tx_errors: u64,
    /// Dropped: did not parse.
    pub drop_malformed: u64,
    /// Dropped: another LBID.
    pub drop_other_lbid: u64,
    /// Dropped: no HMAC while a key is configured.
    pub drop_unauthenticated: u64,
    /// Dropped: HMAC did not verify.
    pub drop_bad_hmac: u64,
    /// Dropped: timestamp outside the replay window.
    pub drop_stale: u64,
    /// Dropped: sequence number not increasing.
    pub drop_replay: u64,
    /// Dropped: IPv4 field differs from the source address.
    pub drop_source_mismatch: u64,
    /// Dropped: claims our node id.
    pub drop_id_conflict: u64,
    /// Dropped: claims a static node's id from elsewhere.
    pub drop_static_mismatch: u64,
    /// Dropped: unlisted node while discovery is off.
    pub drop_unlisted: u64,
    /// Dropped: node table full.
    pub drop_table_full: u64,
    /// Missed requests, all nodes together.
    pub misses: u64,
    /// Transitions of any node into FAILED.
    pub node_failures: u64,
    /// Membership generations adopted or produced.
    pub membership_changes: u64,
    /// Nodes forgotten after staying FAILED.
    pub nodes_forgotten: u64,
}

impl Counters {
    fn drop_for(&mut self, r: Reject) -> &mut u64 {
        match r {
            Reject::Malformed => &mut self.drop_malformed,
            Reject::OtherLbid => &mut self.drop_other_lbid,
            Reject::Unauthenticated => &mut self.drop_unauthenticated,
            Reject::BadHmac => &mut self.drop_bad_hmac,
            Reject::Stale => &mut self.drop_stale,
            Reject::Replay => &mut self.drop_replay,
            Reject::SourceMismatch => &mut self.drop_source_mismatch,
            Reject::IdConflict => &mut self.drop_id_conflict,
            Reject::StaticMismatch => &mut self.drop_static_mismatch,
            Reject::Unlisted => &mut self.drop_unlisted,
            Reject::TableFull => &mut self.drop_table_full,
        }
    }
}

/// The `type` column of `proxyha status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    /// The active director's director entry.
    Director,
    /// A passive director's director entry.
    Redundant,
    /// A scanning entry (every node has one; directors scan too).
    Scanning,
}

fn mac_hex<S: serde::Serializer>(mac: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_mac(mac))
}

/// A MAC as `mfend-lb -s` prints it: 12 lowercase hex digits.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect()
}

/// One entry of `proxyha status` (the original's `mfend-lb -s`). A director
/// has two entries: its director entry and its scanning entry.
///
/// `stats` are, in order: established connections to the proxy port(s),
/// CPU load (per-mille), capacity, heartbeats received from the node (for
/// this node's own entries: heartbeats sent), heartbeats missed (requests
/// it did not answer in time, in total).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// What `device:` prints: the name, or [`SELF_DEVICE`] for this node's
    /// own scanning entry.
    pub device: String,
    /// The node's name.
    pub name: String,
    /// Node id.
    pub id: u32,
    /// Management IPv4.
    pub ip: Ipv4Addr,
    /// Management IPv6.
    pub ip6: Ipv6Addr,
    /// MAC (serialized as 12 hex digits).
    #[serde(serialize_with = "mac_hex")]
    pub mac: [u8; 6],
    /// State of this entry.
    pub state: State,
    /// director, redundant or scanning.
    #[serde(rename = "type")]
    pub kind: NodeType,
    /// This node's own entry.
    pub is_self: bool,
    /// Last state change, seconds since the Unix epoch (0: never).
    pub statechange: u64,
    /// connections, load per-mille, capacity, heartbeats received, missed.
    pub stats: [u64; 5],
    /// The status is current (heard within `misses` requests / probed).
    pub statusvalid: bool,
}

/// Everything `proxyha status --json` shows about heartbeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// LBID of this group.
    pub lbid: u16,
    /// Whether heartbeats are authenticated (a key is configured). When
    /// false, `proxyha status` warns.
    pub authenticated: bool,
    /// Whether this node is the active director.
    pub active: bool,
    /// Request interval in milliseconds.
    pub interval_ms: u64,
    /// The balancing set in use.
    pub membership: Membership,
    /// Every known node, this node first.
    pub nodes: Vec<NodeView>,
    /// Counters.
    pub counters: Counters,
}

/// A remote node in the table.
#[derive(Debug, Clone)]
struct Node {
    name: String,
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
    mac: [u8; 6],
    role: Role,
    is_static: bool,
    /// Last reported values.
    reported: State,
    reported_director: State,
    ports: Ports,
    connections: u32,
    load: u16,
    capacity: u32,
    /// Bookkeeping.
    last_heard: Option<Instant>,
    last_seq: Option<u64>,
    received: u64,
    missed: u32,
    total_missed: u64,
    good_streak: u32,
    timed_out: bool,
    /// Effective states and when they last changed.
    state: State,
    state_changed: Option<Instant>,
    director_state: State,
    director_changed: Option<Instant>,
}

impl Node {
    fn new(name: String, ipv4: Ipv4Addr, mac: [u8; 6], is_static: bool) -> Self {
        Node {
            name,
            ipv4,
            ipv6: Ipv6Addr::UNSPECIFIED,
            mac,
            role: Role::Scanning,
            is_static,
            reported: State::Unknown,
            reported_director: State::Unknown,
            ports: Ports::default(),
            connections: 0,
            load: 0,
            capacity: 0,
            last_heard: None,
            last_seq: None,
            received: 0,
            missed: 0,
            total_missed: 0,
            good_streak: 0,
            timed_out: false,
            state: State::Unknown,
            state_changed: None,
            director_state: State::Unknown,
            director_changed: None,
        }
    }

    fn reported_good(&self) -> bool {
        self.reported == State::Ok && self.ports.all_reachable()
    }

    /// The scanning-side state these facts give.
    fn effective(&self, rise: u32) -> State {
        let failed =
            self.timed_out || self.reported == State::Failed || !self.ports.all_reachable();
        let candidate = if failed {
            State::Failed
        } else {
            match self.reported {
                State::Draining => State::Draining,
                State::Ok => State::Ok,
                _ => State::Unknown,
            }
        };
        if self.state == State::Failed && candidate == State::Ok && self.good_streak < rise {
            State::Failed
        } else {
            candidate
        }
    }

    fn effective_director(&self) -> State {
        if self.role != Role::Director {
            State::Unknown
        } else if self.timed_out {
            State::Failed
        } else {
            self.reported_director
        }
    }
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
    log_once: LogOnce<(Reject, Ipv4Addr)>,
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
            log_once: LogOnce::new(1024),
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
            if new == State::Failed {
                self.counters.node_failures += 1;
            }
            self.events.push_back(Event::StateChanged {
                id: self.cfg.node_id,
                name: self.cfg.name.clone(),
                from,
                to: new,
            });
            if self.active {
                self.recompute_membership(false);
            }
        }
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
            self.nodes.remove(&id);
            self.counters.nodes_forgotten += 1;
            self.events.push_back(Event::Forgotten { id });
        }
    }

    fn reject(&mut self, reason: Reject, source: Ipv4Addr) {
        *self.counters.drop_for(reason) += 1;
        if self.log_once.first((reason, source)) {
            self.events.push_back(Event::Rejected { reason, source });
        }
    }

    /// Handles one received protocol-253 IP payload from `src`.
    ///
    /// Checks, in order: it parses; same LBID; with a key: HMAC present and
    /// valid, timestamp within the replay window, sequence above the last
    /// accepted one of that node; the IPv4 field equals `src`; the id is not
    /// ours and matches a static entry's addresses; there is room in the
    /// table. Only then does it touch the node table, answer a request, or
    /// adopt an announcement. Every drop is counted; the first per (reason,
    /// source) is reported as [`Event::Rejected`].
    pub fn handle_heartbeat(&mut self, now: Instant, src: Ipv4Addr, payload: &[u8]) {
        self.counters.rx_heartbeats += 1;
        let Ok(packet) = wire::Packet::new_checked(payload) else {
            return self.reject(Reject::Malformed, src);
        };
        let Ok(repr) = wire::Repr::parse(&packet) else {
            return self.reject(Reject::Malformed, src);
        };
        if repr.lbid != self.cfg.lbid {
            return self.reject(Reject::OtherLbid, src);
        }
        if let Some(key) = &self.cfg.key {
            if !packet.has_auth() {
                return self.reject(Reject::Unauthenticated, src);
            }
            if packet.verify(key).is_err() {
                return self.reject(Reject::BadHmac, src);
            }
            let window = u64::try_from(self.cfg.replay_window.as_millis()).unwrap_or(u64::MAX);
            if repr.timestamp_ms.abs_diff(self.unix_ms(now)) > window {
                return self.reject(Reject::Stale, src);
            }
            if self
                .nodes
                .get(&repr.node_id)
                .and_then(|n| n.last_seq)
                .is_some_and(|last| repr.sequence <= last)
            {
                return self.reject(Reject::Replay, src);
            }
        }
        if repr.ipv4 != src {
            return self.reject(Reject::SourceMismatch, src);
        }
        if repr.node_id == self.cfg.node_id {
            if repr.ipv4 == self.cfg.ipv4 && repr.mac == self.cfg.mac {
                self.counters.rx_own += 1;
                return;
            }
            return self.reject(Reject::IdConflict, src);
        }
        match self.nodes.get(&repr.node_id) {
            Some(n) if n.is_static && (n.ipv4 != repr.ipv4 || n.mac != repr.mac) => {
                return self.reject(Reject::StaticMismatch, src);
            }
            Some(_) => {}
            None if !self.cfg.accept_unlisted => return self.reject(Reject::Unlisted, src),
            None if self.nodes.len() >= MAX_NODES => return self.reject(Reject::TableFull, src),
            None => {}
        }
        self.accept(now, repr);
    }

    fn accept(&mut self, now: Instant, repr: wire::Repr) {
        let id = repr.node_id;
        let is_request = repr.kind == wire::Kind::Request;
        if is_request {
            self.counters.rx_requests += 1;
        } else {
            self.counters.rx_replies += 1;
        }
        let n = self
            .nodes
            .entry(id)
            .or_insert_with(|| Node::new(repr.name.clone(), repr.ipv4, repr.mac, false));
        let discovered = n.received == 0 && !n.is_static;
        n.name = repr.name.clone();
        n.ipv4 = repr.ipv4;
        n.ipv6 = repr.ipv6;
        n.mac = repr.mac;
        n.role = repr.role;
        n.reported = repr.state;
        n.reported_director = if is_request && repr.role == Role::Director {
            State::Network
        } else {
            repr.director_state
        };
        n.ports = repr.ports;
        n.connections = repr.connections;
        n.load = repr.load_permille;
        n.capacity = repr.capacity;
        n.last_heard = Some(now);
        n.last_seq = Some(repr.sequence);
        n.received += 1;
        n.missed = 0;
        n.timed_out = false;
        n.good_streak = if n.reported_good() {
            n.good_streak.saturating_add(1)
        } else {
            0
        };
        if discovered {
            self.events.push_back(Event::Discovered {
                id,
                name: repr.name.clone(),
                ip: repr.ipv4,
            });
        }
        self.refresh(now, id);
        if is_request {
            if !self.active {
                self.checks.push_back((now + self.cfg.reply_timeout(), now));
                // Only a director can be the active director: a scanning
                // node's announcement (a misconfiguration) is ignored.
                if let Some(a) = &repr.announcement
                    && repr.role == Role::Director
                {
                    let m = Membership::from_announcement(a);
                    if m != self.membership {
                        self.membership = m;
                        self.counters.membership_changes += 1;
                        self.events.push_back(Event::MembershipChanged {
                            generation: self.membership.generation,
                        });
                    }
                }
            }
            self.queue(now, wire::Kind::Reply);
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
        if s == State::Failed {
            self.counters.node_failures += 1;
        }
        self.events.push_back(Event::StateChanged {
            id,
            name,
            from,
            to: s,
        });
        if self.active {
            // Failed nodes leave at once; recovered nodes re-enter at once.
            self.recompute_membership(false);
        }
    }

    /// Rebuilds the balancing set from the table (active director only).
    /// With `step`, weights move one rate-limited step toward their targets;
    /// without, only the member set changes (newcomers enter at target).
    fn recompute_membership(&mut self, step: bool) {
        let p = self.cfg.weights;
        let mut next: Vec<Member> = Vec::new();
        let mut weights = BTreeMap::new();
        let mut consider = |id: u32, ip: Ipv4Addr, mac: [u8; 6], state: State, tgt: u32| {
            let weight = match state {
                State::Ok => {
                    let w = match self.weights.get(&id) {
                        Some(&cur) if step => weight::step(&p, cur, tgt),
                        Some(&cur) => cur,
                        None => tgt,
                    };
                    weights.insert(id, w);
                    w
                }
                State::Draining => 0,
                _ => return,
            };
            next.push(Member {
                id,
                mac,
                ip,
                weight,
            });
        };
        if let Some(h) = self.local {
            consider(
                self.cfg.node_id,
                self.cfg.ipv4,
                self.cfg.mac,
                self.self_state,
                weight::target(&p, h.connections, h.load_permille, self.cfg.capacity),
            );
        }
        for (id, n) in &self.nodes {
            consider(
                *id,
                n.ipv4,
                n.mac,
                n.state,
                weight::target(&p, n.connections, n.load, n.capacity),
            );
        }
        next.sort_by_key(|m| m.id);
        next.truncate(wire::MAX_MEMBERS);
        weights.retain(|id, _| next.iter().any(|m| m.id == *id));
        self.weights = weights;
        if next != self.membership.nodes {
            self.membership.nodes = next;
            self.membership.generation = self.membership.generation.wrapping_add(1);
            self.counters.membership_changes += 1;
            self.events.push_back(Event::MembershipChanged {
                generation: self.membership.generation,
            });
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

    /// The entries of `proxyha status`: this node's (director entry first
    /// for a director, then its scanning entry as [`SELF_DEVICE`]), then
    /// every other node by id, director entry before scanning entry.
    pub fn nodes(&self) -> Vec<NodeView> {
        let mut out = Vec::new();
        let local = self.local.unwrap_or_default();
        let sent = self.counters.tx_requests + self.counters.tx_replies;
        let stats = [
            u64::from(local.connections),
            u64::from(local.load_permille),
            u64::from(self.cfg.capacity),
            sent,
            0,
        ];
        let me = |device: &str, state, kind, changed| NodeView {
            device: device.to_owned(),
            name: self.cfg.name.clone(),
            id: self.cfg.node_id,
            ip: self.cfg.ipv4,
            ip6: self.cfg.ipv6,
            mac: self.cfg.mac,
            state,
            kind,
            is_self: true,
            statechange: self.unix_secs(changed),
            stats,
            statusvalid: self.local.is_some(),
        };
        if self.cfg.role() == Role::Director {
            let (state, kind) = if self.active {
                (State::Network, NodeType::Director)
            } else {
                (State::Redundant, NodeType::Redundant)
            };
            let mut v = me(&self.cfg.name, state, kind, self.self_director_changed);
            v.statusvalid = true;
            out.push(v);
        }
        out.push(me(
            SELF_DEVICE,
            self.self_state,
            NodeType::Scanning,
            self.self_changed,
        ));
        for (id, n) in &self.nodes {
            let stats = [
                u64::from(n.connections),
                u64::from(n.load),
                u64::from(n.capacity),
                n.received,
                n.total_missed,
            ];
            let valid = n.last_heard.is_some() && !n.timed_out;
            let view = |state, kind, changed| NodeView {
                device: n.name.clone(),
                name: n.name.clone(),
                id: *id,
                ip: n.ipv4,
                ip6: n.ipv6,
                mac: n.mac,
                state,
                kind,
                is_self: false,
                statechange: self.unix_secs(changed),
                stats,
                statusvalid: valid,
            };
            if n.role == Role::Director {
                let kind = if n.reported_director == State::Network {
                    NodeType::Director
                } else {
                    NodeType::Redundant
                };
                out.push(view(n.director_state, kind, n.director_changed));
            }
            out.push(view(n.state, NodeType::Scanning, n.state_changed));
        }
        out
    }

    /// Everything `proxyha status` needs from heartbeats.
    pub fn status(&self) -> Status {
        Status {
            lbid: self.cfg.lbid,
            authenticated: self.cfg.key.is_some(),
            active: self.active,
            interval_ms: u64::try_from(self.cfg.interval.as_millis()).unwrap_or(u64::MAX),
            membership: self.membership.clone(),
            nodes: self.nodes(),
            counters: self.counters,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UNIX0: u64 = 1_764_140_400_000;

    fn director(key: Option<&[u8]>, now: Instant) -> Machine {
        let mut c = Config::new(
            10,
            1,
            "dir-a",
            99,
            Ipv4Addr::new(198, 18, 0, 1),
            [2, 0, 0, 0, 0, 1],
        );
        c.key = key.map(<[u8]>::to_vec);
        let mut m = Machine::new(c, now, UNIX0).unwrap();
        m.set_local_health(
            now,
            LocalHealth {
                ports: Ports::from_results(&[true]),
                ..Default::default()
            },
        );
        m
    }

    fn reply(id: u32, ip: Ipv4Addr, sequence: u64) -> wire::Repr {
        wire::Repr {
            kind: wire::Kind::Reply,
            lbid: 10,
            node_id: id,
            name: format!("n{id}"),
            role: Role::Scanning,
            priority: 0,
            state: State::Ok,
            director_state: State::Unknown,
            ipv4: ip,
            ipv6: Ipv6Addr::UNSPECIFIED,
            mac: [2, 0, 0, 0, 1, 0],
            sequence,
            timestamp_ms: UNIX0,
            connections: 10,
            load_permille: 0,
            capacity: 1000,
            ports: Ports::from_results(&[true]),
            announcement: None,
        }
    }

    #[test]
    fn the_table_is_bounded() {
        let now = Instant::now();
        let mut m = director(None, now);
        for i in 0..(MAX_NODES as u32 + 44) {
            let ip = Ipv4Addr::from(0xc612_1000 + i);
            let bytes = reply(1000 + i, ip, 1).to_bytes(None).unwrap();
            m.handle_heartbeat(now, ip, &bytes);
        }
        assert_eq!(m.node_ids().len(), MAX_NODES);
        assert_eq!(m.counters().drop_table_full, 44);
        // One Rejected event per source, and no more than LogOnce keeps.
        let mut rejected = 0;
        while let Some(e) = m.poll_event() {
            if matches!(
                e,
                Event::Rejected {
                    reason: Reject::TableFull,
                    ..
                }
            ) {
                rejected += 1;
            }
        }
        assert_eq!(rejected, 44);
    }

    #[test]
    fn poll_timeout_tracks_requests_and_checks() {
        let t0 = Instant::now();
        let mut m = director(None, t0);
        m.set_active(t0, true).unwrap();
        assert!(m.poll_transmit().is_some());
        // The miss check of the first request comes first.
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_millis(250)));
        m.handle_timeout(t0 + Duration::from_millis(250));
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        m.handle_timeout(t0 + Duration::from_secs(1));
        assert!(m.poll_transmit().is_some());
        m.set_active(t0 + Duration::from_secs(1), false).unwrap();
        m.handle_timeout(t0 + Duration::from_secs(3));
        assert!(
            m.poll_transmit().is_none(),
            "a passive director sends no requests"
        );
    }

    #[test]
    fn only_a_directors_announcement_is_adopted() {
        let now = Instant::now();
        let mut m = director(None, now);
        let ip = Ipv4Addr::new(198, 18, 0, 3);
        let mut r = reply(3, ip, 1);
        r.kind = wire::Kind::Request;
        r.announcement = Some(wire::Announcement {
            generation: 7,
            entries: vec![wire::Entry {
                id: 3,
                ip,
                mac: [2, 0, 0, 0, 1, 0],
                weight: 5,
            }],
        });
        m.handle_heartbeat(now, ip, &r.to_bytes(None).unwrap());
        assert_eq!(m.membership(), &Membership::default());
        r.role = Role::Director;
        r.priority = 50;
        r.director_state = State::Network;
        r.sequence = 2;
        m.handle_heartbeat(now, ip, &r.to_bytes(None).unwrap());
        assert_eq!(m.membership().generation, 7);
        assert_eq!(
            m.membership().nodes,
            vec![Member {
                id: 3,
                mac: [2, 0, 0, 0, 1, 0],
                ip,
                weight: 5
            }]
        );
    }

    proptest! {
        /// With a key, no input but a correctly signed heartbeat changes
        /// anything or makes the machine send: arbitrary bytes, and valid
        /// signed messages with bytes changed.
        #[test]
        fn unsigned_or_altered_input_changes_nothing(
            junk in proptest::collection::vec(any::<u8>(), 0..1400),
            flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
            src: u32,
        ) {
            let now = Instant::now();
            let key = b"k".as_slice();
            let mut m = director(Some(key), now);
            let known = Ipv4Addr::new(198, 18, 0, 3);
            m.handle_heartbeat(now, known, &reply(3, known, 5).to_bytes(Some(key)).unwrap());
            prop_assert_eq!(m.node_ids(), vec![3]);
            while m.poll_transmit().is_some() {}
            let before = (m.nodes(), m.membership().clone());

            m.handle_heartbeat(now, Ipv4Addr::from(src), &junk);
            let signed = reply(3, known, 6).to_bytes(Some(key)).unwrap();
            let mut altered = signed.clone();
            for (i, x) in flips {
                let n = altered.len();
                altered[i % n] ^= x;
            }
            // Two flips of one byte can cancel out.
            prop_assume!(altered != signed);
            m.handle_heartbeat(now, known, &altered);
            prop_assert_eq!((m.nodes(), m.membership().clone()), before);
            prop_assert!(m.poll_transmit().is_none());
            prop_assert_eq!(m.counters().rx_replies, 1);
        }

        #[test]
        fn arbitrary_bytes_never_panic_without_a_key(
            msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        ) {
            let now = Instant::now();
            let mut m = director(None, now);
            m.set_active(now, true).unwrap();
            for b in &msgs {
                m.handle_heartbeat(now, Ipv4Addr::new(198, 18, 0, 9), b);
            }
            m.handle_timeout(now + Duration::from_secs(5));
            let _ = m.status();
        }
    }
}
