//! The rules that tie sections together, checked once every section is
//! valid on its own.

use super::Validator;
use crate::config::{Config, Error, VrrpVersion};

impl Validator<'_> {
    pub(super) fn cross(&self, c: &Config) -> Result<(), Error> {
        for (i, vip) in c.virtual_ips.iter().enumerate() {
            if vip.address.address() == c.node.management_ip {
                return self.fail(
                    &format!("virtual_ip[{i}].address"),
                    format!("{:?}", vip.address.to_string()),
                    "must differ from node.management_ip",
                );
            }
        }
        self.cross_ipv6(c)?;
        // One interface carries the adverts and the frames: the XDP filter
        // that passes adverts to the control plane is the dataplane's.
        if c.vrrp.interface != c.dataplane.interface {
            return self.fail(
                "dataplane.interface",
                format!("{:?}", c.dataplane.interface),
                &format!(
                    "must be the same interface as vrrp.interface = {:?}",
                    c.vrrp.interface
                ),
            );
        }
        if c.node.capacity > c.heartbeat.max_capacity {
            return self.fail(
                "node.capacity",
                c.node.capacity,
                &format!(
                    "must be at most heartbeat.max_capacity = {} (the cap every node applies to \
                     the others' claims)",
                    c.heartbeat.max_capacity
                ),
            );
        }
        for (i, s) in c.heartbeat.static_nodes.iter().enumerate() {
            if s.ip == c.node.management_ip {
                return self.fail(
                    &format!("heartbeat.static_nodes[{i}].ip"),
                    format!("{:?}", s.ip.to_string()),
                    "is this node's node.management_ip (list only the other nodes)",
                );
            }
        }
        Ok(())
    }

    /// The rules for IPv6 virtual IPs and the IPv6 management address.
    fn cross_ipv6(&self, c: &Config) -> Result<(), Error> {
        if c.virtual_ips6.is_empty() {
            if c.vrrp.nd_router_flag {
                return self.fail(
                    "vrrp.nd_router_flag",
                    true,
                    "needs an IPv6 virtual IP (it is a flag of their neighbour advertisements)",
                );
            }
            return Ok(());
        }
        if c.vrrp.version != VrrpVersion::V3 {
            return self.fail(
                "vrrp.version",
                2,
                "must be 3 with IPv6 virtual IPs (VRRPv2, RFC 3768, is IPv4 only)",
            );
        }
        if !c.vrrp.peers.is_empty() {
            return self.fail(
                "vrrp.peers",
                format!("{} entries", c.vrrp.peers.len()),
                "must be empty with IPv6 virtual IPs (IPv6 adverts come from link-local \
                 addresses, which the IPv4 peer list cannot name)",
            );
        }
        if c.cluster.mode == crate::config::ClusterMode::ActiveActive {
            return self.fail(
                "cluster.mode",
                "\"active-active\"",
                "does not support IPv6 virtual IPs yet (their announcement and forwarding \
                 are IPv4 only; docs/ipv6.md)",
            );
        }
        Ok(())
    }
}
