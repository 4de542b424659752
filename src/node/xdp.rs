//! The node's XDP side: the filter program and its maps, and the unicast
//! MAC entry that lets a real NIC accept the virtual MAC while this node is
//! the VRRP Master.

use std::sync::Arc;

use crate::config::Config;
use crate::log;
use crate::xsk;

use super::Error;
use super::iface::Interface;

/// The attached filter plus the Master-only state.
pub struct Steering {
    pub filter: Arc<xsk::Filter>,
    ifname: String,
    vmac: [u8; 6],
    unicast_mac: Option<xsk::UnicastMac>,
    /// The IPv6 virtual MAC, with IPv6 VIPs, and its unicast-list entry.
    vmac6: Option<[u8; 6]>,
    unicast_mac6: Option<xsk::UnicastMac>,
}

impl Steering {
    /// Mounts bpffs when needed, detaches a program a crashed run left,
    /// attaches the filter and fills its maps: the VIPs, the redirected TCP
    /// ports, and what to steer (a scanning node: heartbeats only; only
    /// heartbeats of this node's LBID).
    pub fn attach(cfg: &Config, iface: &Interface, director: bool) -> Result<Steering, Error> {
        if xsk::ensure_bpffs()? {
            log!("xdp", "mounted bpffs at /sys/fs/bpf");
        }
        let stale = xsk::detach_stale(&iface.name)?;
        if stale > 0 {
            log!(
                "xdp",
                "detached {stale} stale proxyha program(s) left by a crash"
            );
        }
        let filter = xsk::Filter::attach(&iface.name, xsk::AttachMode::Auto)?;
        log!(
            "xdp",
            "filter attached to {} in {} mode",
            iface.name,
            filter.mode()
        );
        filter.set_vips(&cfg.vip_addrs())?;
        filter.add_vips6(&cfg.advert_vips6())?;
        let ports: Vec<u16> = cfg.redirected_ports().collect();
        filter.set_ports(xsk::L4::Tcp, &ports)?;
        // Only heartbeats of our LBID reach the control queue; others are
        // dropped and counted in XDP.
        let mut fcfg = xsk::FilterConfig::director(cfg.vrrp.vrid, false).with_lbid(cfg.node.lbid);
        if !director {
            fcfg.flags = xsk::FLAG_HEARTBEAT;
        }
        filter.set_config(&fcfg)?;
        Ok(Steering {
            filter: Arc::new(filter),
            ifname: iface.name.clone(),
            vmac: cfg.vrrp.virtual_mac(),
            unicast_mac: None,
            vmac6: (!cfg.virtual_ips6.is_empty())
                .then(|| crate::wire::ethernet::Address::vrrp_virtual_ipv6(cfg.vrrp.vrid).octets()),
            unicast_mac6: None,
        })
    }

    /// On a VRRP role change: the filter steers VIP traffic only on the
    /// Master, and only the Master holds the virtual MAC in the NIC's
    /// unicast list. Failures are logged; the node keeps running.
    pub fn set_master(&mut self, master: bool) {
        if let Err(e) = self.filter.set_active(master) {
            log!("xdp", "cannot set the active flag: {e}");
        }
        self.unicast_mac = None;
        self.unicast_mac6 = None;
        if master {
            match xsk::UnicastMac::add(&self.ifname, self.vmac) {
                Ok(m) => self.unicast_mac = Some(m),
                Err(e) => log!("xdp", "cannot add the virtual MAC to {}: {e}", self.ifname),
            }
            // IPv6 VIPs: their virtual MAC too (issue 16).
            if let Some(vmac6) = self.vmac6 {
                match xsk::UnicastMac::add(&self.ifname, vmac6) {
                    Ok(m) => self.unicast_mac6 = Some(m),
                    Err(e) => log!(
                        "xdp",
                        "cannot add the IPv6 virtual MAC to {}: {e}",
                        self.ifname
                    ),
                }
            }
        }
    }

    /// Stops steering and detaches the program (call after the workers,
    /// which hold clones of the filter, have stopped).
    pub fn release(self) {
        let _ = self.filter.set_active(false);
        drop(self.unicast_mac);
        drop(self.unicast_mac6);
        match Arc::try_unwrap(self.filter) {
            Ok(f) => {
                if let Err(e) = f.detach() {
                    log!("xdp", "detach failed: {e}");
                }
            }
            Err(_) => log!("xdp", "filter still shared at exit; detached on drop"),
        }
    }
}
