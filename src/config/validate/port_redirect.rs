//! `[[port_redirect]]`: which destination ports go to which proxy port.

use super::Validator;
use crate::config::raw::RawPortRedirect;
use crate::config::{Error, PortRedirect, format_ports, parse_ports};

impl Validator<'_> {
    pub(super) fn port_redirects(
        &self,
        raw: Vec<RawPortRedirect>,
    ) -> Result<Vec<PortRedirect>, Error> {
        if raw.is_empty() {
            return self.missing("port_redirect");
        }
        let mut port_redirects: Vec<PortRedirect> = Vec::new();
        for (i, r) in raw.into_iter().enumerate() {
            let pkey = format!("port_redirect[{i}].protocol");
            let protocol = self.name(&pkey, r.protocol, Some("http"))?;
            let okey = format!("port_redirect[{i}].original_ports");
            let original_ports = match r.original_ports {
                None => return self.missing(&okey),
                Some(toml::Value::Integer(n)) => match parse_ports(&n.to_string()) {
                    Ok(p) => p,
                    Err(rule) => return self.fail(&okey, n, &rule),
                },
                Some(toml::Value::String(s)) => match parse_ports(&s) {
                    Ok(p) => p,
                    Err(rule) => return self.fail(&okey, format!("{s:?}"), &rule),
                },
                Some(v) => {
                    return self.fail(&okey, v, "must be a port list like \"80,8080-8090\"");
                }
            };
            for other in &port_redirects {
                for &(lo, hi) in &original_ports {
                    if other
                        .original_ports
                        .iter()
                        .any(|&(a, b)| lo <= b && a <= hi)
                    {
                        return self.fail(
                            &okey,
                            format_ports(&original_ports),
                            "overlaps another port_redirect",
                        );
                    }
                }
            }
            let proxy_port: u16 = self.int(
                &format!("port_redirect[{i}].proxy_port"),
                r.proxy_port,
                Some(9090),
                1,
                65535,
            )?;
            port_redirects.push(PortRedirect {
                protocol,
                original_ports,
                proxy_port,
                comment: r.comment.unwrap_or_default(),
            });
        }
        Ok(port_redirects)
    }
}
