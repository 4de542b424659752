//! `proxyha config check`'s listing of the resolved settings.

use super::values::fmt_duration;
use super::{ClusterMode, Config, QueueCount, VrrpVersion, format_ports};
use crate::wire::ethernet;

impl Config {
    /// The resolved settings, as `proxyha config check` prints them.
    pub fn render(&self) -> String {
        let n = &self.node;
        let v = &self.vrrp;
        let role = if n.is_director() {
            "director"
        } else {
            "scanning node only"
        };
        let mut s = String::new();
        let mut line = |k: &str, val: String| s.push_str(&format!("{k:<30}{val}\n"));
        line("node.name", n.name.clone());
        line("node.management_ip", n.management_ip.to_string());
        if let Some(a) = n.management_ip6 {
            line("node.management_ip6", a.to_string());
        }
        line("node.priority", format!("{} ({role})", n.priority));
        line("node.lbid", n.lbid.to_string());
        line("node.capacity", n.capacity.to_string());
        line(
            "node.control_socket",
            n.control_socket.display().to_string(),
        );
        line(
            "node.control_group",
            n.control_group
                .clone()
                .unwrap_or_else(|| "none (socket mode 0600)".into()),
        );
        line("vrrp.interface", v.interface.clone());
        line("vrrp.vrid", v.vrid.to_string());
        line(
            "vrrp.version",
            match v.version {
                VrrpVersion::V2 => "2 (RFC 3768)".into(),
                VrrpVersion::V3 => "3 (RFC 5798)".into(),
            },
        );
        line(
            "vrrp.virtual_mac",
            ethernet::Address(v.virtual_mac()).to_string(),
        );
        line("vrrp.advert_interval", fmt_duration(v.advert_interval));
        line("vrrp.preempt", v.preempt.to_string());
        line("vrrp.preempt_delay", fmt_duration(v.preempt_delay));
        line("vrrp.garp_count", v.garp_count.to_string());
        line(
            "vrrp.garp_refresh",
            v.garp_refresh.map_or("off".into(), fmt_duration),
        );
        line(
            "vrrp.auth",
            if v.auth_pass.is_some() {
                "simple text".into()
            } else {
                "none".into()
            },
        );
        line(
            "vrrp.peers",
            if v.peers.is_empty() {
                "any".into()
            } else {
                v.peers
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        );
        let weight = |w: u8| match w {
            0 => "not tracked".to_string(),
            crate::config::TRACK_RESIGN => "gives up Master".to_string(),
            w => format!("priority -{w}"),
        };
        line("vrrp.track_proxy", weight(v.track_proxy_weight));
        if !v.track_interfaces.is_empty() {
            line(
                "vrrp.track_interfaces",
                format!(
                    "{} ({})",
                    v.track_interfaces.join(", "),
                    weight(v.track_interface_weight)
                ),
            );
        }
        for (i, vip) in self.virtual_ips.iter().enumerate() {
            line(
                &format!("virtual_ip[{i}]"),
                format!("{} on {}", vip.address, vip.interface),
            );
        }
        if !self.virtual_ips6.is_empty() {
            line("vrrp.nd_router_flag", v.nd_router_flag.to_string());
        }
        for (i, vip) in self.virtual_ips6.iter().enumerate() {
            line(
                &format!("virtual_ip6[{i}]"),
                format!("{} on {}", vip.address, vip.interface),
            );
        }
        if !self.virtual_ips6.is_empty() {
            line(
                "vrrp.ipv6_link_local",
                format!(
                    "{} (first address of the IPv6 adverts)",
                    self.link_local_vip6()
                ),
            );
        }
        for (i, r) in self.port_redirects.iter().enumerate() {
            line(
                &format!("port_redirect[{i}]"),
                format!(
                    "{} {} -> {}{}",
                    r.protocol,
                    format_ports(&r.original_ports),
                    r.proxy_port,
                    if r.comment.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", r.comment)
                    }
                ),
            );
        }
        let h = &self.heartbeat;
        line("heartbeat.interval", fmt_duration(h.interval));
        line("heartbeat.misses", h.misses.to_string());
        line(
            "heartbeat.auth",
            match (&h.key_file, &h.key_file_next) {
                (Some(p), None) => format!("HMAC-SHA256 (key {})", p.display()),
                (Some(p), Some(n)) => format!(
                    "HMAC-SHA256 (key {}, also accepting {})",
                    p.display(),
                    n.display()
                ),
                _ => "none: heartbeat.insecure = true (heartbeats are unauthenticated)".into(),
            },
        );
        line("heartbeat.max_capacity", h.max_capacity.to_string());
        if !h.static_nodes.is_empty() {
            line(
                "heartbeat.static_nodes",
                h.static_nodes
                    .iter()
                    .map(|s| format!("{} {} {}", s.name, s.ip, ethernet::Address(s.mac)))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        if !h.hold_stale {
            line(
                "heartbeat.hold_stale",
                "false (a silent node fails even if its proxy answers)".into(),
            );
        }
        if !h.accept_unlisted {
            line(
                "heartbeat.accept_unlisted",
                "false (only static_nodes)".into(),
            );
        }
        let d = &self.dataplane;
        line("dataplane.interface", d.interface.clone());
        line(
            "dataplane.queues",
            match d.queues {
                QueueCount::All => "all".into(),
                QueueCount::Count(n) => n.to_string(),
            },
        );
        line("dataplane.set_channels", d.set_channels.to_string());
        line(
            "dataplane.cpus",
            if d.cpus.is_empty() {
                "auto".into()
            } else {
                format!("{:?}", d.cpus)
            },
        );
        line(
            "dataplane.mode",
            format!("{:?}", d.mode)
                .to_lowercase()
                .replace("zerocopy", "zero-copy"),
        );
        line("dataplane.poll", format!("{:?}", d.poll).to_lowercase());
        line(
            "dataplane.offload",
            format!("{:?}", d.offload).to_lowercase(),
        );
        line(
            "dataplane.offload_local",
            format!("{:?}", d.offload_local).to_lowercase(),
        );
        line("dataplane.batch_size", d.batch_size.to_string());
        line("dataplane.flow_capacity", d.flow_capacity.to_string());
        line(
            "dataplane.maglev_table_size",
            d.maglev_table_size.to_string(),
        );
        line("dataplane.rx_ring", d.rx_ring.to_string());
        line("dataplane.tx_ring", d.tx_ring.to_string());
        line("dataplane.umem_frames", d.umem_frames.to_string());
        line("dataplane.frame_size", d.frame_size.to_string());
        line("cluster.mode", self.cluster.mode.as_str().into());
        if self.cluster.mode == ClusterMode::ActiveActive {
            line(
                "cluster.announce_table",
                self.cluster.announce_table.to_string(),
            );
        }
        for kind in crate::control::event::Kind::ALL {
            if let Some(c) = self.notify.command(kind) {
                line(&format!("notify.{}", kind.as_str()), c.join(" "));
            }
        }
        line("notify.timeout", fmt_duration(self.notify.timeout));
        line(
            "metrics.listen",
            self.metrics
                .listen
                .map_or("off".into(), |a| format!("http://{a}/metrics")),
        );
        s
    }
}
