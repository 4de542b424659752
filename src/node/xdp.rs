//! The node's XDP side: the filter program and its maps, and the unicast
//! MAC entry that lets a real NIC accept the virtual MAC while this node
//! holds it (the active-passive Master).

use std::sync::Arc;

use crate::config::Config;
use crate::control::forwarding::Forwarding;
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
        })
    }

    /// Applies the control plane's forwarding decision
    /// ([`crate::control::forwarding`]): the filter steers VIP traffic sent
    /// to `dst_mac` while `steer` is set, and the virtual MAC is in the NIC's
    /// unicast list only while the node holds it. Failures are logged; the
    /// node keeps running.
    pub fn apply(&mut self, fwd: &Forwarding) {
        let mut config = self.filter.config();
        config.vmac = fwd.dst_mac;
        config.flags &= !(xsk::FLAG_ACTIVE | xsk::FLAG_DROP_ORPHANS | xsk::FLAG_PEERS);
        for (on, flag) in [
            (fwd.steer, xsk::FLAG_ACTIVE),
            (fwd.drop_orphans, xsk::FLAG_DROP_ORPHANS),
            (fwd.peer_macs, xsk::FLAG_PEERS),
        ] {
            if on {
                config.flags |= flag;
            }
        }
        if let Err(e) = self.filter.set_config(&config) {
            log!("xdp", "cannot set the active flag and MAC: {e}");
        }
        if !fwd.virtual_mac {
            self.unicast_mac = None;
        } else if self.unicast_mac.is_none() {
            match xsk::UnicastMac::add(&self.ifname, self.vmac) {
                Ok(m) => self.unicast_mac = Some(m),
                Err(e) => log!("xdp", "cannot add the virtual MAC to {}: {e}", self.ifname),
            }
        }
    }

    /// Active-active: the members' MACs, whose frames to us are their
    /// redirects (the same set the workers' classify filter holds).
    pub fn set_peers(&mut self, macs: &[[u8; 6]]) {
        if let Err(e) = self.filter.set_peers(macs) {
            log!("xdp", "cannot set the peer MACs: {e}");
        }
    }

    /// Stops steering and detaches the program (call after the workers,
    /// which hold clones of the filter, have stopped).
    pub fn release(self) {
        let _ = self.filter.set_active(false);
        drop(self.unicast_mac);
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
