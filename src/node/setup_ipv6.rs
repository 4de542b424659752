//! The scanning side for IPv6 VIPs (issue 16), beside `setup`'s IPv4 one:
//!
//! * every non-link-local IPv6 VIP sits on `lo` as a /128 (`nodad`: it is
//!   the cluster's, not this host's, and lo does no duplicate detection
//!   anyway), so the kernel accepts the redirected packets and the proxy
//!   answers from the VIP (direct server return);
//! * IPv6 needs no `arp_ignore` counterpart: Linux answers a neighbour
//!   solicitation only for an address on the receiving interface, so a VIP
//!   on `lo` is never announced; only IPv6 must be on
//!   (`disable_ipv6 = 0` on `lo` and the interface);
//! * a port redirect whose ports differ gets an `ip6` nftables `dnat` in
//!   its own table (`table ip6 proxyha_<lbid>`), as IPv4's.
//!
//! The IPv6 VIPs change only with a restart, so there is no reload path.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::Command;

use super::setup::{Error, Guard, run};
use crate::config::Config;
use crate::wire::ipv6::is_link_local;

/// The `/proc/sys` file of `net.ipv6.conf.<ifname>.<key>`.
pub fn ipv6_conf_path(ifname: &str, key: &str) -> PathBuf {
    PathBuf::from("/proc/sys/net/ipv6/conf")
        .join(ifname)
        .join(key)
}

/// The IPv6 VIPs that go on `lo`: all but the link-local one.
pub fn lo_vips6(cfg: &Config) -> Vec<Ipv6Addr> {
    cfg.vip6_addrs()
        .into_iter()
        .filter(|a| !is_link_local(*a))
        .collect()
}

/// The `ip6` nftables ruleset for the redirects whose ports differ, or `None`.
pub fn nft_ruleset6(cfg: &Config, table: &str) -> Option<String> {
    let vips: Vec<(String, String)> = lo_vips6(cfg)
        .iter()
        .map(|v| (v.to_string(), format!("[{v}]")))
        .collect();
    super::setup::dnat_ruleset(cfg, "ip6", table, &vips)
}

/// Whether `addr` is already on `lo`.
fn on_lo6(addr: Ipv6Addr) -> bool {
    Command::new("ip")
        .args(["-6", "-o", "addr", "show", "dev", "lo"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("inet6 {addr}/")))
        .unwrap_or(false)
}

/// Lets the director's TAP (its own share of the balanced flows enters the
/// stack there) take IPv6: `xsk::TapSink` turns IPv6 off on it, and
/// autoconfiguration and router advertisements stay off. Best effort, like
/// the TAP's own IPv6 setting: a failure shows as IPv6 flows of the own
/// share not being answered (`tx_local` counts them).
pub fn enable_on_tap(tap: &str) {
    for (key, value) in [("accept_ra", "0"), ("autoconf", "0"), ("disable_ipv6", "0")] {
        let _ = std::fs::write(ipv6_conf_path(tap, key), value);
    }
}

/// What the IPv6 setup changed, undone on drop.
#[derive(Debug, Default)]
pub struct Ipv6Setup {
    added: Vec<Ipv6Addr>,
    nft_table: Option<String>,
}

impl Guard {
    /// Sets up the IPv6 VIPs of `cfg` (nothing without them).
    pub(super) fn apply_ipv6(&mut self, cfg: &Config) -> Result<(), Error> {
        if cfg.virtual_ips6.is_empty() {
            return Ok(());
        }
        for name in ["lo", cfg.dataplane.interface.as_str()] {
            self.sysctl(ipv6_conf_path(name, "disable_ipv6"), "0")?;
        }
        let mut s = Ipv6Setup::default();
        for a in lo_vips6(cfg) {
            if !on_lo6(a) {
                run(
                    "ip",
                    &[
                        "-6",
                        "addr",
                        "add",
                        &format!("{a}/128"),
                        "dev",
                        "lo",
                        "nodad",
                    ],
                    None,
                )?;
            }
            s.added.push(a);
        }
        let table = format!("proxyha_{}", cfg.node.lbid);
        if let Some(rules) = nft_ruleset6(cfg, &table) {
            let _ = run("nft", &["delete", "table", "ip6", &table], None);
            run("nft", &["-f", "-"], Some(&rules))?;
            s.nft_table = Some(table);
        }
        self.ipv6 = s;
        Ok(())
    }
}

impl Drop for Ipv6Setup {
    fn drop(&mut self) {
        if let Some(t) = self.nft_table.take() {
            let _ = run("nft", &["delete", "table", "ip6", &t], None);
        }
        for a in self.added.drain(..) {
            let _ = run(
                "ip",
                &["-6", "addr", "del", &format!("{a}/128"), "dev", "lo"],
                None,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ports: &str, proxy: u16) -> Config {
        let text = format!(
            "[node]\nname=\"n\"\nmanagement_ip=\"198.18.0.3\"\npriority=0\nlbid=10\n[vrrp]\ninterface=\"eth0\"\nvrid=51\nversion=3\n[[virtual_ip]]\naddress=\"198.18.0.250/24\"\n[[virtual_ip]]\naddress=\"2001:2::250/64\"\n[[virtual_ip]]\naddress=\"fe80::51/64\"\n[[port_redirect]]\noriginal_ports=\"{ports}\"\nproxy_port={proxy}\n[heartbeat]\ninsecure=true\n"
        );
        crate::config::parse("t.toml", &text, std::path::Path::new(".")).unwrap()
    }

    #[test]
    fn the_link_local_vip_stays_off_lo() {
        assert_eq!(
            lo_vips6(&cfg("9090", 9090)),
            ["2001:2::250".parse::<Ipv6Addr>().unwrap()]
        );
        assert_eq!(
            ipv6_conf_path("eth0.100", "disable_ipv6"),
            std::path::Path::new("/proc/sys/net/ipv6/conf/eth0.100/disable_ipv6")
        );
    }

    #[test]
    fn differing_ports_get_an_ip6_dnat() {
        assert_eq!(nft_ruleset6(&cfg("9090", 9090), "proxyha_10"), None);
        let r = nft_ruleset6(&cfg("80,8080-8090", 9090), "proxyha_10").unwrap();
        assert!(r.starts_with("table ip6 proxyha_10 {"), "{r}");
        assert!(
            r.contains(
                "ip6 daddr 2001:2::250 tcp dport { 80,8080-8090 } dnat to [2001:2::250]:9090"
            ),
            "{r}"
        );
        assert!(!r.contains("fe80"), "{r}");
    }
}
