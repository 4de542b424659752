//! The validator: one function per section of the file, in file order, then
//! the rules that span sections ([`cross`]). The first broken rule is the
//! error; its message names the key, the value and the rule.

mod cluster;
mod cross;
mod dataplane;
mod heartbeat;
mod metrics;
mod node;
mod notify;
mod port_redirect;
mod virtual_ip;
mod vrrp;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use super::raw::RawFile;
use super::{Config, Error, parse_duration};

/// Validates `raw`; `file` names it in errors, relative paths resolve against `base`.
pub(super) fn validate(file: &str, raw: RawFile, base: &Path) -> Result<Config, Error> {
    let v = Validator { file };
    let node = v.node(raw.node)?;
    let vrrp = v.vrrp(raw.vrrp)?;
    let (virtual_ips, virtual_ips6) =
        v.virtual_ips(raw.virtual_ip, &vrrp.interface, node.management_ip6)?;
    let port_redirects = v.port_redirects(raw.port_redirect)?;
    let heartbeat = v.heartbeat(raw.heartbeat.unwrap_or_default(), base)?;
    let dataplane = v.dataplane(raw.dataplane.unwrap_or_default(), &vrrp.interface)?;
    let cluster = v.cluster(raw.cluster.unwrap_or_default())?;
    let notify = v.notify(raw.notify.unwrap_or_default())?;
    let metrics = v.metrics(raw.metrics.unwrap_or_default())?;
    let config = Config {
        node,
        vrrp,
        virtual_ips,
        virtual_ips6,
        port_redirects,
        heartbeat,
        dataplane,
        cluster,
        notify,
        metrics,
    };
    v.cross(&config)?;
    Ok(config)
}

/// Checks values of one file and words the errors.
struct Validator<'a> {
    file: &'a str,
}

impl Validator<'_> {
    fn fail<T>(&self, key: &str, value: impl fmt::Display, rule: &str) -> Result<T, Error> {
        Err(Error {
            file: self.file.to_string(),
            message: format!("{key} = {value}: {rule}"),
        })
    }

    fn missing<T>(&self, key: &str) -> Result<T, Error> {
        Err(Error {
            file: self.file.to_string(),
            message: format!("{key}: missing (required)"),
        })
    }

    fn int<T: TryFrom<i64> + Copy>(
        &self,
        key: &str,
        v: Option<i64>,
        default: Option<T>,
        lo: i64,
        hi: i64,
    ) -> Result<T, Error> {
        let Some(n) = v else {
            return match default {
                Some(d) => Ok(d),
                None => self.missing(key),
            };
        };
        if n < lo || n > hi {
            return self.fail(key, n, &format!("must be {lo}..{hi}"));
        }
        match T::try_from(n) {
            Ok(t) => Ok(t),
            Err(_) => self.fail(key, n, &format!("must be {lo}..{hi}")),
        }
    }

    fn name(&self, key: &str, v: Option<String>, default: Option<&str>) -> Result<String, Error> {
        let s = match (v, default) {
            (Some(s), _) => s,
            (None, Some(d)) => d.to_string(),
            (None, None) => return self.missing(key),
        };
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
        if !ok {
            return self.fail(
                key,
                format!("{s:?}"),
                "must be 1..32 characters of A-Z a-z 0-9 . _ - @",
            );
        }
        Ok(s)
    }

    /// A network interface the node opens: a [`name`](Self::name) that
    /// also fits the kernel's interface names (IFNAMSIZ, 16 bytes with the NUL).
    fn interface(
        &self,
        key: &str,
        v: Option<String>,
        default: Option<&str>,
    ) -> Result<String, Error> {
        let s = self.name(key, v, default)?;
        if s.len() > MAX_INTERFACE_LEN {
            return self.fail(
                key,
                format!("{s:?}"),
                &format!("must be at most {MAX_INTERFACE_LEN} characters (a Linux interface name)"),
            );
        }
        Ok(s)
    }

    fn duration(&self, key: &str, v: Option<String>, default: Duration) -> Result<Duration, Error> {
        match v {
            None => Ok(default),
            Some(s) => match parse_duration(&s) {
                Some(d) => Ok(d),
                None => self.fail(
                    key,
                    format!("{s:?}"),
                    "must be a duration like \"1s\", \"100ms\" or \"10cs\"",
                ),
            },
        }
    }

    /// A [`duration`](Self::duration) that must also pass `ok`; `rule` says how.
    fn duration_where(
        &self,
        key: &str,
        v: Option<String>,
        default: Duration,
        ok: impl FnOnce(Duration) -> bool,
        rule: &str,
    ) -> Result<Duration, Error> {
        let shown = v.clone().unwrap_or_default();
        let d = self.duration(key, v, default)?;
        if !ok(d) {
            return self.fail(key, format!("{shown:?}"), rule);
        }
        Ok(d)
    }

    fn ipv4(&self, key: &str, s: &str) -> Result<Ipv4Addr, Error> {
        match s.parse::<Ipv4Addr>() {
            Ok(a) if !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast() => Ok(a),
            Ok(_) => self.fail(key, format!("{s:?}"), "must be a unicast IPv4 address"),
            Err(_) => self.fail(key, format!("{s:?}"), "must be an IPv4 address"),
        }
    }

    /// A global or unique-local unicast IPv6 address (not `::`, loopback,
    /// multicast, link-local or IPv4-mapped).
    fn ipv6_unicast(&self, key: &str, s: &str) -> Result<Ipv6Addr, Error> {
        match s.parse::<Ipv6Addr>() {
            Ok(a) if crate::wire::ipv6::is_link_local(a) => self.fail(
                key,
                format!("{s:?}"),
                "must not be link-local (fe80::/10 is on every link)",
            ),
            Ok(a)
                if !a.is_unspecified()
                    && !a.is_loopback()
                    && !a.is_multicast()
                    && a.to_ipv4_mapped().is_none() =>
            {
                Ok(a)
            }
            Ok(_) => self.fail(key, format!("{s:?}"), "must be a unicast IPv6 address"),
            Err(_) => self.fail(key, format!("{s:?}"), "must be an IPv6 address"),
        }
    }
}

/// The longest Linux interface name (IFNAMSIZ less the NUL); the XDP and
/// AF_XDP calls refuse longer ones.
const MAX_INTERFACE_LEN: usize = libc::IFNAMSIZ - 1;
