//! `[[virtual_ip]]`: the addresses the cluster serves, IPv4 and IPv6.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};

use super::Validator;
use crate::config::raw::RawVirtualIp;
use crate::config::values::{parse_cidr, parse_cidr6};
use crate::config::{Error, VirtualIp, VirtualIp6};
use crate::wire::ipv6;

/// The most virtual IPs: a VRRP advertisement counts its addresses in one byte.
const MAX_VIRTUAL_IPS: usize = u8::MAX as usize;

/// The most IPv6 virtual IPs: an IPv6 advert carries them and the
/// link-local address, 16 bytes each, in one 1500-byte frame
/// ((1500 - 40 - 8) / 16 = 90 addresses).
pub const MAX_VIRTUAL_IPS6: usize = 89;

impl Validator<'_> {
    /// The virtual IPs, IPv4 and IPv6 apart; an entry without an interface
    /// is on `default_interface`.
    pub(super) fn virtual_ips(
        &self,
        raw: Vec<RawVirtualIp>,
        default_interface: &str,
        management_ip6: Option<Ipv6Addr>,
    ) -> Result<(Vec<VirtualIp>, Vec<VirtualIp6>), Error> {
        if raw.is_empty() {
            return self.missing("virtual_ip");
        }
        if raw.len() > MAX_VIRTUAL_IPS {
            return self.fail(
                "virtual_ip",
                format!("{} entries", raw.len()),
                &format!(
                    "must be at most {MAX_VIRTUAL_IPS} (a VRRP advertisement carries at most {MAX_VIRTUAL_IPS} addresses)"
                ),
            );
        }
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut seen = BTreeSet::new();
        let mut link_local = false;
        for (i, r) in raw.into_iter().enumerate() {
            let key = format!("virtual_ip[{i}].address");
            let Some(s) = r.address else {
                return self.missing(&key);
            };
            let interface = self.name(
                &format!("virtual_ip[{i}].interface"),
                r.interface,
                Some(default_interface),
            )?;
            let addr = if s.contains(':') {
                let address = match parse_cidr6(&s) {
                    Ok(c) => c,
                    Err(rule) => return self.fail(&key, format!("{s:?}"), &rule),
                };
                let a = address.address();
                if ipv6::is_link_local(a) {
                    if link_local {
                        return self.fail(
                            &key,
                            format!("{s:?}"),
                            "a second link-local virtual IP (the IPv6 instance has one, \
                             RFC 5798 §5.2.9)",
                        );
                    }
                    link_local = true;
                } else if a.is_unspecified()
                    || a.is_loopback()
                    || a.is_multicast()
                    || a.to_ipv4_mapped().is_some()
                {
                    return self.fail(&key, format!("{s:?}"), "must be a unicast IPv6 address");
                }
                if interface != default_interface {
                    return self.fail(
                        &format!("virtual_ip[{i}].interface"),
                        format!("{interface:?}"),
                        &format!(
                            "must be vrrp.interface = {default_interface:?} for an IPv6 address \
                             (its adverts and neighbour advertisements go out there)"
                        ),
                    );
                }
                if Some(a) == management_ip6 {
                    return self.fail(
                        &key,
                        format!("{s:?}"),
                        "must differ from node.management_ip6",
                    );
                }
                v6.push(VirtualIp6 { address, interface });
                IpAddr::V6(a)
            } else {
                let address = match parse_cidr(&s) {
                    Ok(c) => c,
                    Err(rule) => return self.fail(&key, format!("{s:?}"), &rule),
                };
                self.ipv4(&key, &address.address().to_string())?;
                v4.push(VirtualIp { address, interface });
                IpAddr::V4(address.address())
            };
            if !seen.insert(addr) {
                return self.fail(&key, format!("{s:?}"), "duplicate virtual IP");
            }
        }
        if v6.len() > MAX_VIRTUAL_IPS6 {
            return self.fail(
                "virtual_ip",
                format!("{} IPv6 entries", v6.len()),
                &format!(
                    "must be at most {MAX_VIRTUAL_IPS6} (an IPv6 advert carries them and the \
                     link-local address in one 1500-byte frame)"
                ),
            );
        }
        if v4.is_empty() {
            return self.fail(
                "virtual_ip",
                format!("{} IPv6 entries and no IPv4", v6.len()),
                "needs at least one IPv4 address (the proxy probe and `proxyha check` use the \
                 first IPv4 VIP; IPv6 virtual IPs come in addition, see docs/ipv6.md)",
            );
        }
        Ok((v4, v6))
    }
}
