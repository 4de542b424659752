//! The settings of one node's heartbeat machine and the rules they follow.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::{
    DEFAULT_FORGET_AFTER, DEFAULT_INTERVAL, DEFAULT_MAX_CAPACITY, DEFAULT_MISSES,
    DEFAULT_REPLAY_WINDOW, DEFAULT_RISE, Error, MAX_NODES, MIN_INTERVAL, Role, weight, wire,
};

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
    /// A second accepted key, for rotation: heartbeats are sent with `key`
    /// and accepted when they verify with either.
    pub key_next: Option<Vec<u8>>,
    /// The most capacity a remote node may claim; higher claims are capped
    /// (counted in `capacity_capped`).
    pub max_capacity: u32,
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
    /// Whether the active director probes the proxy port of a node whose
    /// heartbeats stopped, and holds it as STALE (keeps its flows, no new
    /// ones) while the port answers, instead of failing it (default true).
    pub hold_stale: bool,
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
            key_next: None,
            max_capacity: DEFAULT_MAX_CAPACITY,
            replay_window: DEFAULT_REPLAY_WINDOW,
            static_nodes: Vec::new(),
            accept_unlisted: true,
            forget_after: DEFAULT_FORGET_AFTER,
            weights: weight::Params::default(),
            hold_stale: true,
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
        if self.key.as_ref().is_some_and(Vec::is_empty)
            || self.key_next.as_ref().is_some_and(Vec::is_empty)
        {
            return Err(Error::EmptyKey);
        }
        if self.key_next.is_some() && self.key.is_none() {
            return Err(Error::NextKeyWithoutKey);
        }
        if self.max_capacity == 0 {
            return Err(Error::ZeroMaxCapacity);
        }
        if !super::is_unicast_mac(&self.mac) {
            return Err(Error::BadMac(self.mac));
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
            if !super::is_unicast_mac(&s.mac) {
                return Err(Error::BadMac(s.mac));
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
