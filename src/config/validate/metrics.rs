//! `[metrics]`: the Prometheus endpoint (docs/metrics.md), off unless
//! `listen` is set.

use std::net::SocketAddr;

use super::Validator;
use crate::config::raw::RawMetrics;
use crate::config::{Error, Metrics};

impl Validator<'_> {
    pub(super) fn metrics(&self, r: RawMetrics) -> Result<Metrics, Error> {
        let Some(s) = r.listen else {
            return Ok(Metrics::default());
        };
        const RULE: &str = "must be IP:PORT (e.g. \"127.0.0.1:9800\" or \"[::1]:9800\") with a \
                            unicast or unspecified address and a port 1..65535";
        let Ok(addr) = s.parse::<SocketAddr>() else {
            return self.fail("metrics.listen", format!("{s:?}"), RULE);
        };
        let bad_ip = match addr.ip() {
            std::net::IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
            std::net::IpAddr::V6(a) => a.is_multicast(),
        };
        if addr.port() == 0 || bad_ip {
            return self.fail("metrics.listen", format!("{s:?}"), RULE);
        }
        Ok(Metrics { listen: Some(addr) })
    }
}
