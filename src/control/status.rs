//! What the daemon reports over the control socket: the data behind
//! `proxyha status` and `proxyha stats`, as serde types shared by the daemon
//! (which fills them) and the CLI (which renders them).

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

/// One entry of the `mfend-lb -s` style node list.
///
/// A director appears twice, as the original shows it: once in its director
/// role (`type: director` with `state: NETWORK` on the Active Director,
/// `type: redundant` with `state: REDUNDANT` on a Passive one) and once as a
/// scanning node (`type: scanning`). This node's own scanning entry is named
/// `__SELF__`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub device: String,
    /// Unix seconds of the last state change (0 = never changed).
    pub statechange: u64,
    pub ip: Ipv4Addr,
    pub ip6: Ipv6Addr,
    /// Bitmap of the protocols the node serves: bit 0 = IPv4 TCP proxying.
    pub protocols: u32,
    pub mac: [u8; 6],
    /// OK, NETWORK, REDUNDANT, FAILED, DRAINING, STALE.
    pub state: String,
    /// The five counters, in order: active connections to the proxy port,
    /// load (per mille of CPU), capacity, heartbeats received, heartbeats missed.
    pub stats: [u64; 5],
    /// 1 while the entry is backed by fresh heartbeats, 0 once stale.
    pub statusvalid: u8,
    /// director, redundant or scanning.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The whole `proxyha status` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub node: String,
    pub lbid: u16,
    pub vrid: u8,
    pub priority: u8,
    /// Initialize, Backup, Master, or `scanning` for priority-0 nodes.
    pub vrrp_state: String,
    pub master_ip: Option<Ipv4Addr>,
    /// Heartbeats carry an HMAC.
    pub authenticated: bool,
    pub entries: Vec<Entry>,
    /// The VRRP instance's own snapshot (timers, counters), as JSON.
    pub vrrp: serde_json::Value,
    /// The heartbeat protocol's counters, as JSON.
    pub heartbeat: serde_json::Value,
}
