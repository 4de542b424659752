//! The views `proxyha status` shows.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::{Counters, Machine, Membership, Role, SELF_DEVICE, State};

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

impl Machine {
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
