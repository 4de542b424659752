//! The node configuration: a TOML file that mirrors the original product's
//! "Network Setup: Proxy HA" screen, validated once into typed values.
//!
//! The core never sees clap or TOML: [`load`] turns a file into a
//! [`Config`], and every error names the file, the key and the rule, e.g.
//! `cluster.toml: vrrp.vrid = 300: must be 1..255`.
//!
//! ```toml
//! [node]
//! name = "director-a"
//! management_ip = "198.18.0.1"
//! priority = 99            # 0 = scanning node only, 1..254 = director
//! lbid = 10
//!
//! [vrrp]
//! interface = "eth0"
//! vrid = 51
//! version = 2
//! advert_interval = "1s"
//!
//! [[virtual_ip]]
//! address = "198.18.0.250/24"
//! interface = "eth0"
//!
//! [[port_redirect]]
//! protocol = "http"
//! original_ports = "9090"
//! proxy_port = 9090
//!
//! [heartbeat]
//! interval = "1s"
//!
//! [dataplane]
//! interface = "eth0"
//! offload = "xdp"   # the XDP fast path for established flows ("off": workers only)
//!
//! [cluster]                # optional
//! mode = "active-passive"  # or "active-active" (docs/active-active.md)
//! ```

mod raw;
pub mod reload;
mod render;
mod validate;
mod values;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use crate::wire::ethernet;

pub use values::{cpu_ranges, format_ports, parse_duration, parse_ports};

/// A configuration error. Its message names the file, the key and the rule.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{file}: {message}")]
pub struct Error {
    /// The file's name as given.
    pub file: String,
    /// `key = value: rule`, or the parser's complaint.
    pub message: String,
}

/// A validated node configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub node: Node,
    pub vrrp: Vrrp,
    pub virtual_ips: Vec<VirtualIp>,
    /// The `[[virtual_ip]]` entries with IPv6 addresses, in file order (see
    /// docs/ipv6.md): announced by their own VRRPv3 instance.
    pub virtual_ips6: Vec<VirtualIp6>,
    pub port_redirects: Vec<PortRedirect>,
    pub heartbeat: Heartbeat,
    pub dataplane: Dataplane,
    pub cluster: Cluster,
    /// `[notify]`: commands run on events (docs/notifications.md).
    pub notify: Notify,
    /// `[metrics]`: the Prometheus endpoint (docs/metrics.md).
    pub metrics: Metrics,
}

/// How the directors of a group share the traffic (`[cluster] mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ClusterMode {
    /// One Active Director (the VRRP Master) forwards, reached through the
    /// virtual MAC; the original's behaviour and the default.
    ActivePassive,
    /// Every healthy director forwards what an ECMP router sends to its own
    /// MAC; each announces the VIP through a routing table that bird2
    /// exports (docs/active-active.md). VRRP still elects the coordinator
    /// that sends the heartbeat requests and announces the membership.
    ActiveActive,
}

impl ClusterMode {
    /// The word the file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterMode::ActivePassive => "active-passive",
            ClusterMode::ActiveActive => "active-active",
        }
    }
}

/// The `[cluster]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cluster {
    pub mode: ClusterMode,
    /// Active-active: the kernel routing table in which the director puts
    /// `VIP/32` while it may receive traffic (bird2's kernel protocol
    /// learns it from there and exports it over BGP).
    pub announce_table: u32,
}

/// The default `cluster.announce_table`.
pub const DEFAULT_ANNOUNCE_TABLE: u32 = 100;

/// This node's identity and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub name: String,
    pub management_ip: Ipv4Addr,
    /// This node's IPv6 management address, carried in its heartbeats and
    /// shown by `status` (`ip6:`); none: `::`.
    pub management_ip6: Option<Ipv6Addr>,
    /// 0 = scanning node only; 1..=254 = director (highest becomes Active).
    pub priority: u8,
    /// The load-balancing ID that keeps clusters on one segment apart.
    pub lbid: u16,
    /// The Unix socket the CLI talks to.
    pub control_socket: PathBuf,
    /// A group whose members may read `status` and `stats` on the control
    /// socket (mode 0660); none: mode 0600.
    pub control_group: Option<String>,
    /// The proxy's capacity in relative units (feeds the Maglev weight).
    pub capacity: u32,
}

impl Node {
    /// Whether this node takes part in the director election.
    pub fn is_director(&self) -> bool {
        self.priority > 0
    }
}

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum VrrpVersion {
    /// RFC 3768: intervals in whole seconds.
    V2,
    /// RFC 5798: intervals in centiseconds.
    V3,
}

/// The VRRP settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vrrp {
    pub interface: String,
    pub vrid: u8,
    pub version: VrrpVersion,
    pub advert_interval: Duration,
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub garp_count: u32,
    /// A second burst of gratuitous ARPs this long after becoming Master.
    pub garp_refresh: Option<Duration>,
    /// VRRPv2 simple-text authentication (RFC 2338 type 1), zero-padded.
    pub auth_pass: Option<[u8; 8]>,
    /// Accepted advert sources; empty = any (VRRP itself has no
    /// authentication, see docs/security.md).
    pub peers: Vec<Ipv4Addr>,
    /// Priority given up while this node's own proxy is down (0: not
    /// tracked; [`TRACK_RESIGN`]: give up Master, priority 0).
    pub track_proxy_weight: u8,
    /// Links whose state the priority follows.
    pub track_interfaces: Vec<String>,
    /// Priority given up while any tracked link is down ([`TRACK_RESIGN`]
    /// by default: give up Master).
    pub track_interface_weight: u8,
    /// Set the Router flag in the neighbour advertisements for the IPv6
    /// VIPs (default false: a load balancer's VIP is not a router; RFC 5798
    /// §6.4.1 sets it because VRRP's VIP is a default gateway).
    pub nd_router_flag: bool,
}

/// A tracking weight that gives up Master outright (priority 0).
pub const TRACK_RESIGN: u8 = 255;

impl Vrrp {
    /// The priority to advertise: `base` less what the tracked objects
    /// that are down take away; 0 (give up Master) when a resigning one is
    /// down or nothing is left.
    pub fn tracked_priority(&self, base: u8, proxy_down: bool, links_down: bool) -> u8 {
        let mut p = base;
        for (down, w) in [
            (proxy_down, self.track_proxy_weight),
            (links_down, self.track_interface_weight),
        ] {
            if down && w > 0 {
                p = if w == TRACK_RESIGN {
                    0
                } else {
                    p.saturating_sub(w)
                };
            }
        }
        p
    }
}

impl Vrrp {
    /// The virtual MAC 00:00:5e:00:01:{VRID}.
    pub fn virtual_mac(&self) -> [u8; 6] {
        ethernet::Address::vrrp_virtual(self.vrid).octets()
    }
}

pub use crate::wire::ipv4::Cidr;
pub use crate::wire::ipv6::Cidr as Cidr6;

/// A virtual IP and the interface it lives on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualIp {
    pub address: Cidr,
    pub interface: String,
}

/// An IPv6 virtual IP and the interface it lives on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualIp6 {
    pub address: Cidr6,
    pub interface: String,
}

/// One row of the port-redirect table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortRedirect {
    pub protocol: String,
    /// Sorted, non-overlapping inclusive ranges.
    pub original_ports: Vec<(u16, u16)>,
    pub proxy_port: u16,
    pub comment: String,
}

impl PortRedirect {
    /// Whether `port` is one of this redirect's original destination ports.
    pub fn matches(&self, port: u16) -> bool {
        self.original_ports
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&port))
    }
}

/// The heartbeat settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heartbeat {
    pub interval: Duration,
    /// Heartbeats missed before a node is FAILED.
    pub misses: u32,
    /// The key file's path; its bytes are in `key`. Required unless
    /// `insecure` (see `docs/heartbeat.md` §3.7).
    pub key_file: Option<PathBuf>,
    #[serde(skip)]
    pub key: Option<Vec<u8>>,
    /// A second accepted key during a rotation; its bytes are in `key_next`.
    pub key_file_next: Option<PathBuf>,
    #[serde(skip)]
    pub key_next: Option<Vec<u8>>,
    /// The operator's explicit opt-out: no key, unauthenticated heartbeats.
    pub insecure: bool,
    /// The most capacity a remote node's heartbeats may claim.
    pub max_capacity: u32,
    /// Whether nodes outside `static_nodes` are discovered.
    pub accept_unlisted: bool,
    /// Whether a silent node whose proxy still answers is held as STALE
    /// (keeps its flows) instead of FAILED.
    pub hold_stale: bool,
    /// Nodes pinned by IPv4 and MAC: in the table from the start, never
    /// forgotten, their id never accepted from elsewhere.
    pub static_nodes: Vec<StaticNode>,
}

/// A node pinned by `heartbeat.static_nodes`; its node id is its IPv4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticNode {
    pub name: String,
    pub ip: Ipv4Addr,
    #[serde(serialize_with = "ser_mac")]
    pub mac: [u8; 6],
}

fn ser_mac<S: serde::Serializer>(mac: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&ethernet::Address(*mac).to_string())
}

/// How AF_XDP sockets bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum XdpMode {
    /// Try zero-copy, fall back to copy, and log which.
    Auto,
    Copy,
    ZeroCopy,
}

/// How workers wait for frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PollMode {
    /// Sleep in poll() after a run of empty polls (default).
    Adaptive,
    /// Spin always (appliances, benchmarks).
    Busy,
}

/// The XDP fast path for established flows (docs/dataplane.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Offload {
    /// `"xdp"` where the filter runs in native (driver) mode on an interface
    /// backed by a device (a NIC, virtio-net); `"off"` in generic mode and
    /// on software interfaces such as veth, whose peer must run an XDP
    /// program for `XDP_TX` to arrive (default).
    Auto,
    /// Established flows are forwarded in XDP (`XDP_TX`).
    Xdp,
    /// Every packet goes through the workers.
    Off,
}

/// How the fast path delivers the director's own share of installed flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OffloadLocal {
    /// Through the workers and the TAP device, as without the fast path
    /// (default).
    Tap,
    /// `XDP_PASS` to the stack, the destination MAC rewritten to the
    /// interface's.
    Xdp,
}

/// The most RX queues a node serves: the XDP filter's XSKMAP
/// (`proxyha_xsks` in `src/bpf/filter.bpf.c`) has 64 entries.
pub const MAX_QUEUES: u32 = 64;

/// Which RX queues get a socket and a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum QueueCount {
    /// Every RX queue (combined channel) the interface has (default).
    All,
    /// Queues 0..N; the node refuses to start when the interface has more
    /// (unless `set_channels` makes it N).
    Count(u32),
}

/// The dataplane settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dataplane {
    pub interface: String,
    /// The RX queues to serve, one socket and one worker each.
    pub queues: QueueCount,
    /// With `queues = N`: set the NIC's channels to N at start (ethtool's
    /// channels call) and restore them on exit.
    pub set_channels: bool,
    /// The CPUs workers are pinned to, worker i on `cpus[i % len]`; empty
    /// for one core per worker, avoiding the control thread's core where
    /// there are enough cores.
    pub cpus: Vec<usize>,
    pub mode: XdpMode,
    pub poll: PollMode,
    /// The XDP fast path.
    pub offload: Offload,
    /// The fast path's own share.
    pub offload_local: OffloadLocal,
    pub batch_size: u32,
    pub flow_capacity: u32,
    pub maglev_table_size: u32,
    /// AF_XDP RX and TX ring slots per socket (powers of two).
    pub rx_ring: u32,
    pub tx_ring: u32,
    /// UMEM frames per socket (a power of two) and bytes per frame.
    pub umem_frames: u32,
    pub frame_size: u32,
}

/// `[notify]`: the command (program and its own arguments; the event's
/// arguments follow them) run for each kind of event, and how long one may
/// run. See docs/notifications.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Notify {
    pub master: Option<Vec<String>>,
    pub backup: Option<Vec<String>>,
    pub fault: Option<Vec<String>>,
    pub stop: Option<Vec<String>>,
    pub node: Option<Vec<String>>,
    /// A command still running after this is killed (its process group).
    pub timeout: Duration,
}

impl Notify {
    /// The command for events of `kind`, if one is configured.
    pub fn command(&self, kind: crate::control::event::Kind) -> Option<&[String]> {
        use crate::control::event::Kind;
        match kind {
            Kind::Master => self.master.as_deref(),
            Kind::Backup => self.backup.as_deref(),
            Kind::Fault => self.fault.as_deref(),
            Kind::Stop => self.stop.as_deref(),
            Kind::Node => self.node.as_deref(),
        }
    }
}

/// `[metrics]`: where the Prometheus endpoint listens (none: off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Metrics {
    pub listen: Option<std::net::SocketAddr>,
}

/// Reads and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, Error> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error {
        file: file.clone(),
        message: format!("cannot read: {e}"),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&file, &text, base)
}

/// Parses and validates `text`; `file` names it in errors, and relative
/// paths inside it (the key file) resolve against `base`.
pub fn parse(file: &str, text: &str, base: &Path) -> Result<Config, Error> {
    let err = |message: String| Error {
        file: file.to_string(),
        message,
    };
    let mut unknown = Vec::new();
    let de = toml::Deserializer::new(text);
    let raw: raw::RawFile = serde_ignored::deserialize(de, |p| unknown.push(p.to_string()))
        .map_err(|e| err(describe_toml_error(text, &e)))?;
    if let Some(k) = unknown.first() {
        return Err(err(format!("{}: unknown key", key_path(k))));
    }
    validate::validate(file, raw, base)
}

/// Renders serde_ignored's path (`vrrp.?.vird`, `port_redirect.0.port`) as
/// the key a user wrote (`vrrp.vird`, `port_redirect[0].port`).
fn key_path(raw: &str) -> String {
    let mut out = String::new();
    for seg in raw.split('.').filter(|s| *s != "?") {
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// Turns a TOML error into `key: problem (line N)`, naming the key at the span.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    let Some(span) = e.span() else {
        return msg;
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string());
    // The table the line sits in: the nearest header above it.
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    match (table, key) {
        (Some(t), Some(k)) if !k.is_empty() && !k.starts_with('[') => {
            format!("{t}.{k}: {msg} (line {line_no})")
        }
        (None, Some(k)) if !k.is_empty() && !k.starts_with('[') => {
            format!("{k}: {msg} (line {line_no})")
        }
        _ => format!("line {line_no}: {msg}"),
    }
}

/// The default control socket of node `name`.
pub fn default_socket(name: &str) -> PathBuf {
    PathBuf::from(format!("/run/proxyha/{name}.sock"))
}

impl Config {
    /// The virtual IPv4 addresses, in config order.
    pub fn vip_addrs(&self) -> Vec<Ipv4Addr> {
        self.virtual_ips
            .iter()
            .map(|v| v.address.address())
            .collect()
    }

    /// The virtual IPv6 addresses, in config order (the link-local one
    /// included if configured).
    pub fn vip6_addrs(&self) -> Vec<Ipv6Addr> {
        self.virtual_ips6
            .iter()
            .map(|v| v.address.address())
            .collect()
    }

    /// The IPv6 VRRP instance's link-local address (RFC 5798 §5.2.9: the
    /// first address of an IPv6 advert): the configured link-local virtual
    /// IP, or else the modified EUI-64 address of the IPv6 virtual MAC
    /// 00:00:5e:00:02:{VRID}.
    pub fn link_local_vip6(&self) -> Ipv6Addr {
        self.virtual_ips6
            .iter()
            .map(|v| v.address.address())
            .find(|a| crate::wire::ipv6::is_link_local(*a))
            .unwrap_or_else(|| {
                crate::wire::ipv6::link_local_from_mac(
                    ethernet::Address::vrrp_virtual_ipv6(self.vrrp.vrid).octets(),
                )
            })
    }

    /// The IPv6 instance's addresses in advert order: the link-local one
    /// ([`Config::link_local_vip6`]) first, then the others in config
    /// order; empty without IPv6 VIPs.
    pub fn advert_vips6(&self) -> Vec<Ipv6Addr> {
        if self.virtual_ips6.is_empty() {
            return Vec::new();
        }
        let ll = self.link_local_vip6();
        let mut v = vec![ll];
        v.extend(self.vip6_addrs().into_iter().filter(|a| *a != ll));
        v
    }

    /// Every original destination port of every port redirect, expanded.
    pub fn redirected_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.port_redirects
            .iter()
            .flat_map(|r| r.original_ports.iter().flat_map(|&(lo, hi)| lo..=hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn primes() {
        use crate::balance::maglev::is_prime;
        assert!(is_prime(65537));
        assert!(is_prime(101));
        assert!(!is_prime(65536));
        assert!(!is_prime(1));
    }

    proptest! {
        #[test]
        fn config_parser_never_panics(s in "(?s).{0,300}") {
            let _ = parse("fuzz.toml", &s, Path::new("."));
        }
    }
}
