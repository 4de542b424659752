//! The node's XDP side: the filter program and its maps, the XDP fast path
//! (docs/dataplane.md), and the unicast MAC entry that lets a real NIC
//! accept the virtual MAC while this node is the VRRP Master.
//!
//! **Who forwards.** The control plane decides ([`crate::control::forwarding`],
//! active-passive or active-active); [`Steering::apply`] is the one place that
//! applies it: the filter's active flag gates both the steering to the
//! workers and the fast path in the same map write (and starts a new
//! fast-path epoch whenever forwarding starts).

use std::sync::Arc;

use crate::balance::flow;
use crate::config::{Config, Offload, OffloadLocal};
use crate::control::forwarding::Forwarding;
use crate::dataplane::Shared;
use crate::dataplane::offload;
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
    /// The fast path: `None` off, `Some(local)` on (own share in XDP too).
    offload: Option<bool>,
    /// The own slot last written into the filter's config.
    local_slot: Option<u16>,
    /// A fast-path sync failed and was logged (log the next one only after
    /// a success).
    sync_failing: bool,
    /// The IPv6 virtual MAC, with IPv6 VIPs, and its unicast-list entry.
    vmac6: Option<[u8; 6]>,
    unicast_mac6: Option<xsk::UnicastMac>,
}

/// Whether `ifname` is backed by a device (a NIC, virtio-net), not a
/// software interface such as veth, where `XDP_TX` reaches the peer only if
/// the peer runs an XDP program too, which this node cannot see: there
/// `offload = "auto"` leaves the fast path off.
fn has_device(ifname: &str) -> bool {
    std::path::Path::new(&format!("/sys/class/net/{ifname}/device")).exists()
}

/// The fast path's flow map as a worker's install target.
struct MapOffload(Arc<xsk::Filter>);

impl offload::Offload for MapOffload {
    fn install(&mut self, flows: &[(flow::Key, flow::Target)]) -> Result<usize, String> {
        self.0.fast_path().install(flows).map_err(|e| e.to_string())
    }
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
        let offload = director
            && match cfg.dataplane.offload {
                Offload::Xdp => true,
                Offload::Off => false,
                Offload::Auto => {
                    filter.mode() == xsk::AttachMode::Native && has_device(&iface.name)
                }
            };
        let local = offload && cfg.dataplane.offload_local == OffloadLocal::Xdp;
        if director {
            log!(
                "xdp",
                "fast path {}{}",
                if offload { "on" } else { "off" },
                match (offload, local) {
                    (true, true) => ", own share to the stack from XDP",
                    (true, false) => ", own share through the workers",
                    _ => "",
                }
            );
        }
        filter.set_config(&fcfg.with_offload(offload, local, iface.mac, None))?;
        Ok(Steering {
            filter: Arc::new(filter),
            ifname: iface.name.clone(),
            vmac: cfg.vrrp.virtual_mac(),
            unicast_mac: None,
            offload: offload.then_some(local),
            local_slot: None,
            sync_failing: false,
            vmac6: (!cfg.virtual_ips6.is_empty())
                .then(|| crate::wire::ethernet::Address::vrrp_virtual_ipv6(cfg.vrrp.vrid).octets()),
            unicast_mac6: None,
        })
    }

    /// The fast path's maps, if it is on.
    pub fn fast_path(&self) -> Option<&xsk::FastPath> {
        self.offload.map(|_| self.filter.fast_path())
    }

    /// A worker's fast-path install settings, if the fast path is on.
    pub fn offload(&self) -> Option<offload::Settings> {
        self.offload.map(|local| offload::Settings {
            to: Box::new(MapOffload(self.filter.clone())),
            local,
        })
    }

    /// Mirrors what the fast path needs from the control plane's shared
    /// state: the health table's slots (generation, state, MAC: a FAILED
    /// node's flows are void at once) and this node's own slot. Call it at
    /// every turn of the control loop: it costs an atomic load and a
    /// pointer load when nothing changed.
    pub fn sync(&mut self, shared: &Shared) {
        if self.offload.is_none() {
            return;
        }
        let local = shared.filter.load().local_slot;
        let mut result = self
            .filter
            .fast_path()
            .sync_nodes(&shared.health)
            .map(|_| ());
        if result.is_ok() && local != self.local_slot {
            let c = self.filter.config();
            result = self.filter.set_config(&xsk::FilterConfig {
                local_slot: local,
                ..c
            });
            if result.is_ok() {
                self.local_slot = local;
            }
        }
        match result {
            Ok(()) => self.sync_failing = false,
            Err(e) if !self.sync_failing => {
                self.sync_failing = true;
                log!("xdp", "cannot update the fast path's maps: {e}");
            }
            Err(_) => {}
        }
    }

    /// Applies the control plane's forwarding decision
    /// ([`crate::control::forwarding`]): the filter steers VIP traffic sent
    /// to `dst_mac` while `steer` is set (and the fast path forwards only
    /// then, from a new epoch each time forwarding starts), and the virtual
    /// MAC is in the NIC's unicast list only while the node holds it.
    /// Failures are logged; the node keeps running.
    pub fn apply(&mut self, fwd: &Forwarding) {
        let mut config = self.filter.config();
        if fwd.steer && config.flags & xsk::FLAG_ACTIVE == 0 {
            config.epoch = config.epoch.wrapping_add(1);
        }
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
            self.unicast_mac6 = None;
        } else if self.unicast_mac.is_none() {
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
