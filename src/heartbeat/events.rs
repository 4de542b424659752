//! What a [`Machine`](super::Machine) hands back: heartbeats to send, and
//! events to log.

use std::net::Ipv4Addr;

use serde::Serialize;

use super::{State, wire};

/// A heartbeat to send: `payload` as an IPv4 packet with protocol 253 from
/// `src` to `dst` (Ethernet destination `dst_mac`), TTL 255.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Source address: this node's management IPv4.
    pub src: Ipv4Addr,
    /// Destination: [`BROADCAST_IP`](super::BROADCAST_IP).
    pub dst: Ipv4Addr,
    /// Ethernet destination: [`BROADCAST_MAC`](super::BROADCAST_MAC).
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
    /// The node table is full of nodes that may not be evicted.
    TableFull,
    /// It claims a known node's id from another IPv4 or MAC while that node
    /// still answers (it is bound until it is FAILED by misses).
    IdentityMismatch,
    /// Its MAC (or one in its announcement) is multicast or all zeros.
    BadMac,
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
            Reject::IdentityMismatch => "claims a live node's id from another IPv4 or MAC",
            Reject::BadMac => "multicast or zero MAC",
        }
    }
}

/// Something the owner should know, from [`Machine::poll_event`](super::Machine::poll_event).
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
    /// The balancing set changed: rebuild Maglev from [`Machine::membership`](super::Machine::membership).
    MembershipChanged {
        /// The new generation.
        generation: u64,
    },
    /// A heartbeat was dropped; emitted at most once per
    /// [`REJECT_LOG_PERIOD`](super::REJECT_LOG_PERIOD) per (reason, source).
    Rejected {
        /// Why.
        reason: Reject,
        /// The IPv4 source of the packet.
        source: Ipv4Addr,
        /// Drops of the same (reason, source) not reported since the last
        /// event for it (each one is counted in the counters).
        held_back: u64,
    },
    /// A known node id moved to another IPv4/MAC after its old binding
    /// had FAILED (stopped answering).
    Rebound {
        /// Node id.
        id: u32,
        /// The old IPv4.
        from: Ipv4Addr,
        /// The new IPv4.
        to: Ipv4Addr,
        /// The new MAC.
        mac: [u8; 6],
    },
    /// A discovered node that stayed FAILED was removed from the table.
    Forgotten {
        /// Node id.
        id: u32,
    },
    /// Active director: node `id` missed a request; probe its proxy ports
    /// at `ip` and report with [`Machine::set_proxy_probe`](super::Machine::set_proxy_probe).
    /// While they answer, a node whose heartbeats stop is held as STALE.
    ProbeProxy {
        /// Node id.
        id: u32,
        /// Its IPv4.
        ip: Ipv4Addr,
    },
}
