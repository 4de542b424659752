//! Counters (plain data, owned by the control-plane thread) and the
//! log-once-per-reason-and-peer filter.

use std::net::IpAddr;

use serde::Serialize;

use super::Drop;

/// What one VRRP instance has seen and done. Transmit counters count the
/// actions the instance emitted (the host is expected to carry them out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Adverts that passed every receive check.
    pub rx_adverts: u64,
    /// Of those, adverts with priority 0 (a master resigning).
    pub rx_priority_zero: u64,
    /// Valid adverts the state machine discarded (a lower priority, or an
    /// equal priority from a lower address, or any advert in Initialize).
    pub rx_adverts_ignored: u64,
    /// Adverts sent, including priority 0.
    pub tx_adverts: u64,
    /// Priority-0 adverts sent (shutdown or resignation).
    pub tx_priority_zero: u64,
    /// Gratuitous ARPs sent.
    pub tx_garps: u64,
    /// Transitions into Master.
    pub became_master: u64,
    /// Transitions into Backup (including from Initialize at start-up).
    pub became_backup: u64,
    /// Transitions into Initialize (shutdown).
    pub became_initialize: u64,
    /// Dropped: IP protocol is not 112.
    pub drop_bad_protocol: u64,
    /// Dropped: TTL is not 255.
    pub drop_bad_ttl: u64,
    /// Dropped: our own advert came back.
    pub drop_looped_back: u64,
    /// Dropped: the source is not in `vrrp.peers`.
    pub drop_not_peer: u64,
    /// Dropped: shorter than the header.
    pub drop_truncated: u64,
    /// Dropped: wrong VRRP version.
    pub drop_wrong_version: u64,
    /// Dropped: type is not ADVERTISEMENT.
    pub drop_malformed: u64,
    /// Dropped: address count vs length, or addresses differ from ours.
    pub drop_bad_address_list: u64,
    /// Dropped: checksum.
    pub drop_bad_checksum: u64,
    /// Dropped: another VRID.
    pub drop_other_vrid: u64,
    /// Dropped: we are the address owner.
    pub drop_local_owner: u64,
    /// Dropped: v2 authentication mismatch.
    pub drop_auth_mismatch: u64,
    /// Dropped: advertisement interval mismatch (v2) or zero (v3).
    pub drop_bad_adver_int: u64,
}

impl Counters {
    /// The counter for one drop reason.
    pub fn drop_counter(&mut self, reason: Drop) -> &mut u64 {
        match reason {
            Drop::BadProtocol => &mut self.drop_bad_protocol,
            Drop::BadTtl => &mut self.drop_bad_ttl,
            Drop::LoopedBack => &mut self.drop_looped_back,
            Drop::NotPeer => &mut self.drop_not_peer,
            Drop::Truncated => &mut self.drop_truncated,
            Drop::WrongVersion => &mut self.drop_wrong_version,
            Drop::Malformed => &mut self.drop_malformed,
            Drop::BadAddressList => &mut self.drop_bad_address_list,
            Drop::BadChecksum => &mut self.drop_bad_checksum,
            Drop::OtherVrid => &mut self.drop_other_vrid,
            Drop::LocalOwner => &mut self.drop_local_owner,
            Drop::AuthMismatch => &mut self.drop_auth_mismatch,
            Drop::BadAdverInt => &mut self.drop_bad_adver_int,
        }
    }

    /// Counts one dropped advert.
    pub fn count_drop(&mut self, reason: Drop) {
        *self.drop_counter(reason) += 1;
    }

    /// All drops together.
    pub fn drops(&self) -> u64 {
        let mut c = self.clone();
        Drop::ALL.iter().map(|d| *c.drop_counter(*d)).sum()
    }
}

/// Decides when a drop is worth a log line: the first time each (reason, peer)
/// pair is seen, never per packet. Holds at most [`DropLog::CAPACITY`] pairs;
/// once full, new pairs are not logged (they are still counted in
/// [`Counters`] and in [`DropLog::unlogged`]), so a flood of spoofed sources
/// cannot grow memory or the log.
#[derive(Debug, Clone)]
pub struct DropLog(crate::log::Once<(Drop, IpAddr)>);

impl Default for DropLog {
    fn default() -> Self {
        DropLog(crate::log::Once::new(Self::CAPACITY))
    }
}

impl DropLog {
    /// The most (reason, peer) pairs remembered.
    pub const CAPACITY: usize = 256;

    /// A log that has seen nothing.
    pub fn new() -> DropLog {
        DropLog::default()
    }

    /// True only the first time `(reason, peer)` is seen, and only while
    /// fewer than [`CAPACITY`](Self::CAPACITY) pairs are remembered.
    pub fn should_log(&mut self, reason: Drop, peer: impl Into<IpAddr>) -> bool {
        self.0.first((reason, peer.into()))
    }

    /// New pairs that were not logged because the set was full.
    pub fn unlogged(&self) -> u64 {
        self.0.suppressed()
    }

    /// How many pairs are remembered.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing has been logged yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn each_reason_has_its_own_counter() {
        for (i, d) in Drop::ALL.iter().enumerate() {
            let mut c = Counters::default();
            for _ in 0..=i {
                c.count_drop(*d);
            }
            assert_eq!(*c.drop_counter(*d), i as u64 + 1);
            assert_eq!(
                c.drops(),
                i as u64 + 1,
                "{d:?} is counted once, nowhere else"
            );
        }
    }

    #[test]
    fn drop_log_logs_once_per_reason_and_peer() {
        let mut log = DropLog::new();
        let a = Ipv4Addr::new(198, 18, 0, 1);
        let b = Ipv4Addr::new(198, 18, 0, 2);
        assert!(log.should_log(Drop::BadTtl, a));
        assert!(!log.should_log(Drop::BadTtl, a));
        assert!(log.should_log(Drop::BadChecksum, a));
        assert!(log.should_log(Drop::BadTtl, b));
        assert!(!log.should_log(Drop::BadChecksum, a));
        assert_eq!(log.len(), 3);
    }

    #[test]
    fn drop_log_is_bounded() {
        let mut log = DropLog::new();
        for i in 0..1000u32 {
            log.should_log(Drop::BadTtl, Ipv4Addr::from(i));
        }
        assert_eq!(log.len(), DropLog::CAPACITY);
        assert_eq!(log.unlogged(), 1000 - DropLog::CAPACITY as u64);
        // Pairs seen before it filled still never log again.
        assert!(!log.should_log(Drop::BadTtl, Ipv4Addr::from(0)));
    }
}
