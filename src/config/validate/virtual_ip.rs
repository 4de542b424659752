//! `[[virtual_ip]]`: the addresses the cluster serves.

use std::collections::BTreeSet;

use super::Validator;
use crate::config::raw::RawVirtualIp;
use crate::config::values::parse_cidr;
use crate::config::{Error, VirtualIp};

/// The most virtual IPs: a VRRP advertisement counts its addresses in one byte.
const MAX_VIRTUAL_IPS: usize = u8::MAX as usize;

impl Validator<'_> {
    /// The virtual IPs; an entry without an interface is on `default_interface`.
    pub(super) fn virtual_ips(
        &self,
        raw: Vec<RawVirtualIp>,
        default_interface: &str,
    ) -> Result<Vec<VirtualIp>, Error> {
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
        let mut virtual_ips = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, r) in raw.into_iter().enumerate() {
            let key = format!("virtual_ip[{i}].address");
            let Some(s) = r.address else {
                return self.missing(&key);
            };
            let address = match parse_cidr(&s) {
                Ok(c) => c,
                Err(rule) => return self.fail(&key, format!("{s:?}"), &rule),
            };
            self.ipv4(&key, &address.address().to_string())?;
            if !seen.insert(address.address()) {
                return self.fail(&key, format!("{s:?}"), "duplicate virtual IP");
            }
            let interface = self.name(
                &format!("virtual_ip[{i}].interface"),
                r.interface,
                Some(default_interface),
            )?;
            virtual_ips.push(VirtualIp { address, interface });
        }
        Ok(virtual_ips)
    }
}
