//! Counters (plain data, owned by the control-plane thread).

use serde::Serialize;

use super::Reject;

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
    /// Dropped: node table full of nodes that may not be evicted.
    pub drop_table_full: u64,
    /// Dropped: claims a known node's id from another IPv4 or MAC while
    /// that node is still answering.
    pub drop_identity_mismatch: u64,
    /// Dropped: a multicast or all-zero MAC (in the header or an announcement).
    pub drop_bad_mac: u64,
    /// Accepted with the claimed capacity cut to `max_capacity`.
    pub capacity_capped: u64,
    /// Accepted with the second key (`key_next`) during a rotation.
    pub rx_next_key: u64,
    /// Known ids that moved to another IPv4/MAC after the old binding failed.
    pub nodes_rebound: u64,
    /// FAILED nodes forgotten early to make room in a full table.
    pub nodes_evicted: u64,
    /// Missed requests, all nodes together.
    pub misses: u64,
    /// Transitions of any node into FAILED.
    pub node_failures: u64,
    /// Extra requests sent at once to announce a membership change between
    /// two regular requests.
    pub tx_announcements: u64,
    /// Proxy probes asked for (active director, a node missed a request).
    pub proxy_probes: u64,
    /// Proxy probes that found a port not answering.
    pub proxy_probes_failed: u64,
    /// Transitions of any node into STALE.
    pub node_stale: u64,
    /// Membership generations adopted or produced.
    pub membership_changes: u64,
    /// Nodes forgotten after staying FAILED.
    pub nodes_forgotten: u64,
}

impl Counters {
    /// The counter of drops for one reason.
    pub(super) fn drop_for(&mut self, r: Reject) -> &mut u64 {
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
            Reject::IdentityMismatch => &mut self.drop_identity_mismatch,
            Reject::BadMac => &mut self.drop_bad_mac,
        }
    }
}
