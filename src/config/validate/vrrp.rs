//! `[vrrp]`: the director election.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::Validator;
use crate::config::raw::RawVrrp;
use crate::config::values::fmt_duration;
use crate::config::{Error, Vrrp, VrrpVersion};

/// The longest preempt delay and gratuitous-ARP refresh.
const MAX_DELAY: Duration = Duration::from_secs(3600);

impl Validator<'_> {
    pub(super) fn vrrp(&self, raw: Option<RawVrrp>) -> Result<Vrrp, Error> {
        let Some(rv) = raw else {
            return self.missing("vrrp");
        };
        let interface = self.interface("vrrp.interface", rv.interface, None)?;
        let vrid: u8 = self.int("vrrp.vrid", rv.vrid, None, 1, 255)?;
        let version = match rv.version {
            None | Some(2) => VrrpVersion::V2,
            Some(3) => VrrpVersion::V3,
            Some(n) => return self.fail("vrrp.version", n, "must be 2 or 3"),
        };
        let rule = match version {
            VrrpVersion::V2 => "must be whole seconds 1s..255s in VRRPv2",
            VrrpVersion::V3 => "must be a multiple of 10ms, 10ms..40950ms in VRRPv3",
        };
        let advert_interval = self.duration_where(
            "vrrp.advert_interval",
            rv.advert_interval,
            Duration::from_secs(1),
            |d| advert_interval_fits(version, d),
            rule,
        )?;
        let preempt_delay = self.duration_where(
            "vrrp.preempt_delay",
            rv.preempt_delay,
            Duration::ZERO,
            |d| d <= MAX_DELAY,
            &format!("must be at most {}", fmt_duration(MAX_DELAY)),
        )?;
        let garp_count: u32 = self.int("vrrp.garp_count", rv.garp_count, Some(5), 0, 100)?;
        let garp_refresh = match rv.garp_refresh {
            Some(off) if off == "off" => None,
            other => Some(self.duration_where(
                "vrrp.garp_refresh",
                other,
                Duration::from_secs(5),
                |d| !d.is_zero() && d <= MAX_DELAY,
                &format!("must be \"off\" or 1ms..{}", fmt_duration(MAX_DELAY)),
            )?),
        };
        let auth_pass = match rv.auth_pass {
            None => None,
            Some(p) => {
                if version != VrrpVersion::V2 {
                    return self.fail(
                        "vrrp.auth_pass",
                        "(hidden)",
                        "only VRRPv2 has authentication",
                    );
                }
                if p.is_empty() || p.len() > 8 || !p.is_ascii() {
                    return self.fail(
                        "vrrp.auth_pass",
                        "(hidden)",
                        "must be 1..8 ASCII characters",
                    );
                }
                let mut a = [0u8; 8];
                a[..p.len()].copy_from_slice(p.as_bytes());
                Some(a)
            }
        };
        let mut peers = Vec::new();
        for (i, p) in rv.peers.unwrap_or_default().into_iter().enumerate() {
            match p.parse::<Ipv4Addr>() {
                Ok(ip) if ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast() => {
                    return self.fail(
                        &format!("vrrp.peers[{i}]"),
                        format!("{p:?}"),
                        "must be a unicast IPv4 address",
                    );
                }
                Ok(ip) => peers.push(ip),
                Err(_) => {
                    return self.fail(
                        &format!("vrrp.peers[{i}]"),
                        format!("{p:?}"),
                        "must be an IPv4 address",
                    );
                }
            }
        }
        let track_proxy_weight: u8 = self.int(
            "vrrp.track_proxy_weight",
            rv.track_proxy_weight,
            Some(0),
            0,
            255,
        )?;
        let track_interface_weight: u8 = self.int(
            "vrrp.track_interface_weight",
            rv.track_interface_weight,
            Some(crate::config::TRACK_RESIGN),
            1,
            255,
        )?;
        let mut track_interfaces = Vec::new();
        for (i, name) in rv
            .track_interfaces
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let key = format!("vrrp.track_interfaces[{i}]");
            let name = self.interface(&key, Some(name), None)?;
            if track_interfaces.contains(&name) {
                return self.fail(&key, format!("{name:?}"), "is listed twice");
            }
            track_interfaces.push(name);
        }
        Ok(Vrrp {
            interface,
            vrid,
            version,
            advert_interval,
            preempt: rv.preempt.unwrap_or(true),
            nd_router_flag: rv.nd_router_flag.unwrap_or(false),
            preempt_delay,
            garp_count,
            garp_refresh,
            auth_pass,
            peers,
            track_proxy_weight,
            track_interfaces,
            track_interface_weight,
        })
    }
}

/// Whether `d` fits the version's Advertisement_Interval field: whole
/// seconds 1..=255 in VRRPv2 (RFC 3768), centiseconds 1..=4095 in VRRPv3
/// (RFC 5798).
fn advert_interval_fits(version: VrrpVersion, d: Duration) -> bool {
    match version {
        VrrpVersion::V2 => d.subsec_nanos() == 0 && (1..=255).contains(&d.as_secs()),
        VrrpVersion::V3 => {
            d.as_nanos().is_multiple_of(10_000_000) && (10..=40_950).contains(&d.as_millis())
        }
    }
}
