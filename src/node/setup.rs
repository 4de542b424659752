//! The scanning side of a node, set up by proxyha itself and undone on exit:
//!
//! * every VIP sits on `lo` as a /32, so the kernel accepts the redirected
//!   frames (which keep the VIP as destination) and the proxy answers the
//!   client directly from the VIP (direct server return, as LVS-DR);
//! * `arp_ignore=1` and `arp_announce=2` on the interface and on `all`, so the
//!   node never answers ARP for the VIP nor announces it: only the Active
//!   Director answers, with the virtual MAC;
//! * when a port redirect's original ports differ from its proxy port, an
//!   nftables `dnat` to `VIP:proxy_port` in our own table (`proxyha_<lbid>`),
//!   so the kernel translates the reply back.
//!
//! IPv6 VIPs: `setup_ipv6`.
//!
//! Everything goes through `ip`, `nft` and `/proc/sys`, never a shell string.
//! The VIPs on lo are always removed on exit, also one a crashed run left
//! behind; sysctls are restored only where this run changed them.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

use thiserror::Error;

use crate::config::Config;

/// A setup step that failed.
#[derive(Debug, Error)]
pub enum Error {
    #[error("`{cmd}` failed: {detail}")]
    Command { cmd: String, detail: String },
    #[error("cannot write {path}: {source}")]
    Sysctl {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What was changed, so that [`Drop`] can undo exactly that.
#[derive(Debug, Default)]
pub struct Guard {
    added_vips: Vec<Ipv4Addr>,
    nft_table: Option<String>,
    sysctls: Vec<(PathBuf, String)>,
    /// The IPv6 VIPs' setup (`setup_ipv6`), undone before the sysctls.
    pub(super) ipv6: super::setup_ipv6::Ipv6Setup,
}

pub(super) fn run(cmd: &str, args: &[&str], stdin: Option<&str>) -> Result<(), Error> {
    use std::io::Write;
    let shown = format!("{cmd} {}", args.join(" "));
    let mut c = Command::new(cmd);
    c.args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if stdin.is_some() {
        c.stdin(std::process::Stdio::piped());
    }
    let mut child = c.spawn().map_err(|e| Error::Command {
        cmd: shown.clone(),
        detail: e.to_string(),
    })?;
    if let (Some(text), Some(mut si)) = (stdin, child.stdin.take()) {
        let _ = si.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| Error::Command {
        cmd: shown.clone(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Command {
            cmd: shown,
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Whether `addr` is already on `lo`.
fn on_lo(addr: Ipv4Addr) -> bool {
    Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", "lo"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("inet {addr}/")))
        .unwrap_or(false)
}

/// The `/proc/sys` file of `net.ipv4.conf.<ifname>.<key>`. Written as a
/// path, not a dotted key, since interface names may contain dots (the
/// VLAN interface `eth0.100`).
pub fn ipv4_conf_path(ifname: &str, key: &str) -> PathBuf {
    PathBuf::from("/proc/sys/net/ipv4/conf")
        .join(ifname)
        .join(key)
}

impl Guard {
    pub(super) fn sysctl(&mut self, path: PathBuf, value: &str) -> Result<(), Error> {
        let old = std::fs::read_to_string(&path).map_err(|source| Error::Sysctl {
            path: path.clone(),
            source,
        })?;
        if old.trim() != value {
            std::fs::write(&path, value).map_err(|source| Error::Sysctl {
                path: path.clone(),
                source,
            })?;
            self.sysctls.push((path, old.trim().to_string()));
        }
        Ok(())
    }
}

/// The nftables ruleset for the redirects whose ports differ, or `None`.
pub fn nft_ruleset(cfg: &Config, table: &str) -> Option<String> {
    let vips: Vec<(String, String)> = cfg
        .vip_addrs()
        .iter()
        .map(|v| (v.to_string(), v.to_string()))
        .collect();
    dnat_ruleset(cfg, "ip", table, &vips)
}

/// The `family` ("ip" or "ip6") table that DNATs the redirects whose ports
/// differ to each VIP, given as (address as matched, address as a DNAT
/// target), or `None` when no redirect changes a port.
pub(super) fn dnat_ruleset(
    cfg: &Config,
    family: &str,
    table: &str,
    vips: &[(String, String)],
) -> Option<String> {
    let mut rules = String::new();
    for r in &cfg.port_redirects {
        let differs = r
            .original_ports
            .iter()
            .any(|&(lo, hi)| !(lo == hi && lo == r.proxy_port));
        if !differs {
            continue;
        }
        let ports = crate::config::format_ports(&r.original_ports);
        // `dnat` to the VIP itself, not `redirect`: redirect rewrites to the
        // incoming interface's primary address, and the director's own share
        // arrives on its TAP device, which has none.
        for (vip, target) in vips {
            rules.push_str(&format!(
                "    {family} daddr {vip} tcp dport {{ {ports} }} dnat to {target}:{}\n",
                r.proxy_port
            ));
        }
    }
    if rules.is_empty() {
        return None;
    }
    Some(format!(
        "table {family} {table} {{\n  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{rules}  }}\n}}\n"
    ))
}

/// Sets up the scanning side for `cfg`.
pub fn apply(cfg: &Config) -> Result<Guard, Error> {
    let mut g = Guard::default();
    let ifname = cfg.dataplane.interface.clone();
    for name in ["all", ifname.as_str()] {
        g.sysctl(ipv4_conf_path(name, "arp_ignore"), "1")?;
        g.sysctl(ipv4_conf_path(name, "arp_announce"), "2")?;
    }
    // The VIPs are this node's: one left on lo by a crashed run is taken over
    // and removed on exit like one added now.
    for a in cfg.vip_addrs() {
        if !on_lo(a) {
            run(
                "ip",
                &["addr", "add", &format!("{a}/32"), "dev", "lo"],
                None,
            )?;
        }
        g.added_vips.push(a);
    }
    let table = format!("proxyha_{}", cfg.node.lbid);
    if let Some(rules) = nft_ruleset(cfg, &table) {
        let _ = run("nft", &["delete", "table", "ip", &table], None);
        run("nft", &["-f", "-"], Some(&rules))?;
        g.nft_table = Some(table);
    }
    g.apply_ipv6(cfg)?;
    Ok(g)
}

impl Guard {
    /// A reload: adds the new VIPs to `lo`, removes the ones no longer
    /// configured, and replaces the nftables redirects in one transaction
    /// (no moment without them). Addresses already there stay untouched.
    pub fn update(&mut self, cfg: &Config) -> Result<(), Error> {
        let want = cfg.vip_addrs();
        for a in &want {
            if !self.added_vips.contains(a) {
                if !on_lo(*a) {
                    run(
                        "ip",
                        &["addr", "add", &format!("{a}/32"), "dev", "lo"],
                        None,
                    )?;
                }
                self.added_vips.push(*a);
            }
        }
        let table = format!("proxyha_{}", cfg.node.lbid);
        match nft_ruleset(cfg, &table) {
            Some(rules) => {
                // Declare, flush by deleting, re-create: one atomic batch.
                let batch = format!("table ip {table} {{}}\ndelete table ip {table}\n{rules}");
                run("nft", &["-f", "-"], Some(&batch))?;
                self.nft_table = Some(table);
            }
            None => {
                if let Some(t) = self.nft_table.take() {
                    let _ = run("nft", &["delete", "table", "ip", &t], None);
                }
            }
        }
        let gone: Vec<Ipv4Addr> = self
            .added_vips
            .iter()
            .filter(|a| !want.contains(a))
            .copied()
            .collect();
        for a in gone {
            let _ = run(
                "ip",
                &["addr", "del", &format!("{a}/32"), "dev", "lo"],
                None,
            );
            self.added_vips.retain(|x| *x != a);
        }
        Ok(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        drop(std::mem::take(&mut self.ipv6));
        if let Some(t) = self.nft_table.take() {
            let _ = run("nft", &["delete", "table", "ip", &t], None);
        }
        for a in self.added_vips.drain(..) {
            let _ = run(
                "ip",
                &["addr", "del", &format!("{a}/32"), "dev", "lo"],
                None,
            );
        }
        for (p, old) in self.sysctls.drain(..).rev() {
            let _ = std::fs::write(&p, old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_paths_keep_dotted_interface_names() {
        assert_eq!(
            ipv4_conf_path("eth0.100", "arp_ignore"),
            std::path::Path::new("/proc/sys/net/ipv4/conf/eth0.100/arp_ignore")
        );
        assert_eq!(
            ipv4_conf_path("all", "arp_announce"),
            std::path::Path::new("/proc/sys/net/ipv4/conf/all/arp_announce")
        );
    }

    fn cfg(ports: &str, proxy: u16) -> Config {
        let text = format!(
            "[node]\nname=\"n\"\nmanagement_ip=\"198.18.0.3\"\npriority=0\nlbid=10\n[vrrp]\ninterface=\"eth0\"\nvrid=51\n[[virtual_ip]]\naddress=\"198.18.0.250/24\"\n[[port_redirect]]\noriginal_ports=\"{ports}\"\nproxy_port={proxy}\n[heartbeat]\ninsecure=true\n"
        );
        crate::config::parse("t.toml", &text, std::path::Path::new(".")).unwrap()
    }

    #[test]
    fn same_port_needs_no_nat() {
        assert_eq!(nft_ruleset(&cfg("9090", 9090), "proxyha_10"), None);
    }

    #[test]
    fn differing_ports_get_a_redirect() {
        let r = nft_ruleset(&cfg("80,8080-8090", 9090), "proxyha_10").unwrap();
        assert!(
            r.contains(
                "ip daddr 198.18.0.250 tcp dport { 80,8080-8090 } dnat to 198.18.0.250:9090"
            ),
            "{r}"
        );
        assert!(r.contains("type nat hook prerouting priority dstnat"));
    }
}
