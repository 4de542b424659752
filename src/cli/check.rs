//! `proxyha check`: the original's `mwg-mon -c`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::heartbeat::local::probe_port;

/// The check's outcome for each port, and the lines it prints.
pub fn report(results: &[(u16, bool)]) -> (bool, String) {
    let ok = !results.is_empty() && results.iter().all(|&(_, up)| up);
    let mut s = format!("current state: {}\n", if ok { "ok" } else { "failed" });
    for &(port, up) in results {
        s.push_str(&format!(
            "port {port} {}\n",
            if up { "reachable" } else { "unreachable" }
        ));
    }
    (ok, s)
}

/// `proxyha check`.
pub fn command(config: Option<&Path>, port: Option<u16>, timeout_ms: u64) -> i32 {
    let targets: Vec<SocketAddr> = match config {
        Some(f) => match crate::config::load(f) {
            Ok(c) => {
                let vip = c.virtual_ips[0].address.address();
                let mut ports: Vec<u16> = c.port_redirects.iter().map(|r| r.proxy_port).collect();
                ports.dedup();
                ports
                    .into_iter()
                    .map(|p| SocketAddr::from((vip, p)))
                    .collect()
            }
            Err(e) => {
                crate::eprintln_safe!("proxyha: {e}");
                return 2;
            }
        },
        None => vec![SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            port.unwrap_or(9090),
        ))],
    };
    let timeout = Duration::from_millis(timeout_ms.max(1));
    let results: Vec<(u16, bool)> = targets
        .iter()
        .map(|a| (a.port(), probe_port(*a, timeout)))
        .collect();
    let (ok, text) = report(&results);
    print!("{text}");
    if ok { 0 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_format_matches_mwg_mon() {
        assert_eq!(
            report(&[(9090, true)]),
            (true, "current state: ok\nport 9090 reachable\n".into())
        );
    }

    #[test]
    fn a_dead_port_fails() {
        let (ok, s) = report(&[(9090, true), (3128, false)]);
        assert!(!ok);
        assert_eq!(
            s,
            "current state: failed\nport 9090 reachable\nport 3128 unreachable\n"
        );
    }

    #[test]
    fn probes_a_real_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(command(None, Some(port), 500), 0);
        drop(l);
        assert_eq!(command(None, Some(port), 500), 1);
    }
}
