//! The one place that decides whether this node forwards VIP traffic, which
//! destination MAC that traffic arrives with, and (active-active) whether
//! the node announces the VIP to the router.
//!
//! * **active-passive** (the original): only the VRRP Master forwards, and
//!   the client's frames reach it addressed to the virtual MAC
//!   `00:00:5e:00:01:{VRID}`, which the Master holds (NIC unicast list, ARP
//!   replies, gratuitous ARP).
//! * **active-active**: every director forwards what reaches its *own*
//!   interface MAC (the router's ECMP next hop is the director's own
//!   address). Nobody holds the virtual MAC: no ARP replies for the VIP, no
//!   gratuitous ARP. VRRP still elects the coordinator that sends the
//!   heartbeat requests and announces the membership; the others forward
//!   with that membership. Frames that another director redirected to this
//!   node (source MAC of a member) are this node's own scanning share and go
//!   to its local stack, never balanced again ([`Forwarding::peer_macs`]
//!   in the classify filter): two directors whose flow tables disagree
//!   could otherwise pass a flow back and forth.
//!
//! Whatever applies the decision (the XDP filter's active flag and MAC, the
//! workers' classify filter, the NIC's unicast list, a future XDP fast
//! path) reads it from [`Forwarding`] and nowhere else.

use crate::config::ClusterMode;

/// What this node does with VIP traffic right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarding {
    /// Steer VIP frames addressed to [`Forwarding::dst_mac`] to the workers
    /// and balance them.
    pub steer: bool,
    /// The destination MAC of the frames to balance.
    pub dst_mac: [u8; 6],
    /// Hold the VRRP virtual MAC: NIC unicast entry, ARP replies for the
    /// VIPs, gratuitous ARP.
    pub virtual_mac: bool,
    /// Frames from cluster members are their redirects, for the local stack.
    pub peer_macs: bool,
    /// VIP frames the XDP filter would steer but that find no socket (the
    /// daemon died while its program stays attached) are dropped: passed,
    /// they would reach a kernel that owns the VIP and resets every flow
    /// it does not serve itself.
    pub drop_orphans: bool,
}

impl Forwarding {
    /// The decision for a node in `mode` (`director`: priority > 0), with
    /// its own interface MAC and the group's virtual MAC.
    pub fn decide(
        mode: ClusterMode,
        director: bool,
        master: bool,
        own_mac: [u8; 6],
        virtual_mac: [u8; 6],
    ) -> Forwarding {
        match mode {
            ClusterMode::ActivePassive => Forwarding {
                steer: director && master,
                dst_mac: virtual_mac,
                virtual_mac: director && master,
                peer_macs: false,
                drop_orphans: false,
            },
            ClusterMode::ActiveActive => Forwarding {
                steer: director,
                dst_mac: own_mac,
                virtual_mac: false,
                peer_macs: true,
                drop_orphans: director,
            },
        }
    }
}

/// Whether an active-active director announces the VIP: its dataplane is
/// up, the membership it forwards with has at least one node to send flows
/// to, and it is neither draining nor stopping. Never in active-passive
/// mode, nor on a scanning node.
///
/// A (re)starting director announces as soon as it has adopted the
/// coordinator's membership, before the coordinator has added it: the flows
/// the router then moves to it were started under that table (the other
/// directors pinned them to its choices), and it pins them the same way
/// within milliseconds of the route change. The table that includes it
/// reaches it with the coordinator's next request, one heartbeat interval
/// later, and by then those flows are in its flow table
/// (docs/active-active.md, "ECMP rehashing").
pub fn announce(
    mode: ClusterMode,
    director: bool,
    dataplane_healthy: bool,
    healthy_members: usize,
    draining: bool,
    stopping: bool,
) -> bool {
    mode == ClusterMode::ActiveActive
        && director
        && dataplane_healthy
        && healthy_members > 0
        && !draining
        && !stopping
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const VMAC: [u8; 6] = [0, 0, 0x5e, 0, 1, 51];

    #[test]
    fn active_passive_forwards_on_the_master_only_through_the_virtual_mac() {
        let ap = ClusterMode::ActivePassive;
        let m = Forwarding::decide(ap, true, true, OWN, VMAC);
        assert!(m.steer && m.virtual_mac && !m.peer_macs && !m.drop_orphans);
        assert_eq!(m.dst_mac, VMAC);
        let b = Forwarding::decide(ap, true, false, OWN, VMAC);
        assert!(!b.steer && !b.virtual_mac);
        assert!(!Forwarding::decide(ap, false, false, OWN, VMAC).steer);
    }

    #[test]
    fn active_active_forwards_on_every_director_through_its_own_mac() {
        let aa = ClusterMode::ActiveActive;
        for master in [true, false] {
            let f = Forwarding::decide(aa, true, master, OWN, VMAC);
            assert!(
                f.steer && !f.virtual_mac && f.peer_macs && f.drop_orphans,
                "master {master}"
            );
            assert_eq!(f.dst_mac, OWN);
        }
        assert!(!Forwarding::decide(aa, false, false, OWN, VMAC).steer);
    }

    #[test]
    fn announcement_needs_every_condition() {
        let aa = ClusterMode::ActiveActive;
        assert!(announce(aa, true, true, 1, false, false));
        let ap = ClusterMode::ActivePassive;
        assert!(!announce(ap, true, true, 1, false, false));
        assert!(!announce(aa, false, true, 1, false, false));
        assert!(!announce(aa, true, false, 1, false, false));
        assert!(!announce(aa, true, true, 0, false, false));
        assert!(!announce(aa, true, true, 1, true, false));
        assert!(!announce(aa, true, true, 1, false, true));
    }
}
