//! `[vrrp]`: the director election.

use std::time::Duration;

use super::Validator;
use crate::config::raw::RawVrrp;
use crate::config::{Error, Vrrp, VrrpVersion};

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
        let shown = rv.advert_interval.clone().unwrap_or_default();
        let advert_interval = self.duration(
            "vrrp.advert_interval",
            rv.advert_interval,
            Duration::from_secs(1),
        )?;
        match version {
            VrrpVersion::V2 => {
                if advert_interval.subsec_nanos() != 0
                    || !(1..=255).contains(&advert_interval.as_secs())
                {
                    return self.fail(
                        "vrrp.advert_interval",
                        format!("{shown:?}"),
                        "must be whole seconds 1s..255s in VRRPv2",
                    );
                }
            }
            VrrpVersion::V3 => {
                let ms = advert_interval.as_millis();
                if advert_interval.as_nanos() % 10_000_000 != 0 || !(10..=40_950).contains(&ms) {
                    return self.fail(
                        "vrrp.advert_interval",
                        format!("{shown:?}"),
                        "must be a multiple of 10ms, 10ms..40950ms in VRRPv3",
                    );
                }
            }
        }
        let shown = rv.preempt_delay.clone().unwrap_or_default();
        let preempt_delay =
            self.duration("vrrp.preempt_delay", rv.preempt_delay, Duration::ZERO)?;
        if preempt_delay > Duration::from_secs(3600) {
            return self.fail(
                "vrrp.preempt_delay",
                format!("{shown:?}"),
                "must be at most 3600s",
            );
        }
        let garp_count: u32 = self.int("vrrp.garp_count", rv.garp_count, Some(5), 0, 100)?;
        let garp_refresh = match rv.garp_refresh.as_deref() {
            Some("off") => None,
            other => {
                let shown = other.unwrap_or_default().to_string();
                let d = self.duration(
                    "vrrp.garp_refresh",
                    other.map(str::to_string),
                    Duration::from_secs(5),
                )?;
                if d.is_zero() || d > Duration::from_secs(3600) {
                    return self.fail(
                        "vrrp.garp_refresh",
                        format!("{shown:?}"),
                        "must be \"off\" or 1ms..3600s",
                    );
                }
                Some(d)
            }
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
        Ok(Vrrp {
            interface,
            vrid,
            version,
            advert_interval,
            preempt: rv.preempt.unwrap_or(true),
            preempt_delay,
            garp_count,
            garp_refresh,
            auth_pass,
        })
    }
}
