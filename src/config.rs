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
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

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
    pub port_redirects: Vec<PortRedirect>,
    pub heartbeat: Heartbeat,
    pub dataplane: Dataplane,
}

/// This node's identity and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub name: String,
    pub management_ip: Ipv4Addr,
    /// 0 = scanning node only; 1..=254 = director (highest becomes Active).
    pub priority: u8,
    /// The load-balancing ID that keeps clusters on one segment apart.
    pub lbid: u16,
    /// The Unix socket the CLI talks to.
    pub control_socket: PathBuf,
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
}

impl Vrrp {
    /// The virtual MAC 00:00:5e:00:01:{VRID}.
    pub fn virtual_mac(&self) -> [u8; 6] {
        [0x00, 0x00, 0x5e, 0x00, 0x01, self.vrid]
    }
}

pub use crate::wire::ipv4::Cidr;

/// Parses `198.18.0.250/24`, with messages that name the rule.
fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| "must be IPv4 CIDR like 198.18.0.250/24".to_string())?;
    let addr: Ipv4Addr = a
        .parse()
        .map_err(|_| format!("`{a}` is not an IPv4 address"))?;
    let prefix: u8 = p
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("prefix `{p}` must be 0..32"))?;
    Cidr::new(addr, prefix).map_err(|e| e.to_string())
}

/// A virtual IP and the interface it lives on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualIp {
    pub address: Cidr,
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
    /// The key file's path; its bytes are in `key`.
    pub key_file: Option<PathBuf>,
    #[serde(skip)]
    pub key: Option<Vec<u8>>,
    /// Nodes pinned by management IP (discovery still finds the others).
    pub static_nodes: Vec<Ipv4Addr>,
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

/// The dataplane settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dataplane {
    pub interface: String,
    /// RX queue indices, one worker each.
    pub queues: Vec<u32>,
    /// The core each worker is pinned to (same length as `queues`), or empty
    /// to pin worker i to core i mod the number of cores.
    pub cores: Vec<usize>,
    pub mode: XdpMode,
    pub poll: PollMode,
    pub batch_size: u32,
    pub flow_capacity: u32,
    pub maglev_table_size: u32,
}

// ---------------------------------------------------------------------------
// The raw, as-written file.

#[derive(Deserialize)]
struct RawFile {
    node: Option<RawNode>,
    vrrp: Option<RawVrrp>,
    #[serde(default)]
    virtual_ip: Vec<RawVirtualIp>,
    #[serde(default)]
    port_redirect: Vec<RawPortRedirect>,
    heartbeat: Option<RawHeartbeat>,
    dataplane: Option<RawDataplane>,
}

#[derive(Deserialize)]
struct RawNode {
    name: Option<String>,
    management_ip: Option<String>,
    priority: Option<i64>,
    lbid: Option<i64>,
    control_socket: Option<String>,
    capacity: Option<i64>,
}

#[derive(Deserialize)]
struct RawVrrp {
    interface: Option<String>,
    vrid: Option<i64>,
    version: Option<i64>,
    advert_interval: Option<String>,
    preempt: Option<bool>,
    preempt_delay: Option<String>,
    garp_count: Option<i64>,
    garp_refresh: Option<String>,
    auth_pass: Option<String>,
}

#[derive(Deserialize)]
struct RawVirtualIp {
    address: Option<String>,
    interface: Option<String>,
}

#[derive(Deserialize)]
struct RawPortRedirect {
    protocol: Option<String>,
    original_ports: Option<toml::Value>,
    proxy_port: Option<i64>,
    comment: Option<String>,
}

#[derive(Deserialize)]
struct RawHeartbeat {
    interval: Option<String>,
    misses: Option<i64>,
    key_file: Option<String>,
    #[serde(default)]
    static_nodes: Vec<String>,
}

#[derive(Deserialize)]
struct RawDataplane {
    interface: Option<String>,
    queues: Option<i64>,
    cores: Option<Vec<i64>>,
    mode: Option<String>,
    poll: Option<String>,
    batch_size: Option<i64>,
    flow_capacity: Option<i64>,
    maglev_table_size: Option<i64>,
}

// ---------------------------------------------------------------------------

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
    let raw: RawFile = serde_ignored::deserialize(de, |p| unknown.push(p.to_string()))
        .map_err(|e| err(describe_toml_error(text, &e)))?;
    if let Some(k) = unknown.first() {
        return Err(err(format!("{}: unknown key", key_path(k))));
    }
    let v = Validator { file };
    v.validate(raw, base)
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

struct Validator<'a> {
    file: &'a str,
}

impl Validator<'_> {
    fn fail<T>(&self, key: &str, value: impl fmt::Display, rule: &str) -> Result<T, Error> {
        Err(Error {
            file: self.file.to_string(),
            message: format!("{key} = {value}: {rule}"),
        })
    }

    fn missing<T>(&self, key: &str) -> Result<T, Error> {
        Err(Error {
            file: self.file.to_string(),
            message: format!("{key}: missing (required)"),
        })
    }

    fn int<T: TryFrom<i64> + Copy>(
        &self,
        key: &str,
        v: Option<i64>,
        default: Option<T>,
        lo: i64,
        hi: i64,
    ) -> Result<T, Error> {
        let Some(n) = v else {
            return match default {
                Some(d) => Ok(d),
                None => self.missing(key),
            };
        };
        if n < lo || n > hi {
            return self.fail(key, n, &format!("must be {lo}..{hi}"));
        }
        match T::try_from(n) {
            Ok(t) => Ok(t),
            Err(_) => self.fail(key, n, &format!("must be {lo}..{hi}")),
        }
    }

    fn name(&self, key: &str, v: Option<String>, default: Option<&str>) -> Result<String, Error> {
        let s = match (v, default) {
            (Some(s), _) => s,
            (None, Some(d)) => d.to_string(),
            (None, None) => return self.missing(key),
        };
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
        if !ok {
            return self.fail(
                key,
                format!("{s:?}"),
                "must be 1..32 characters of A-Z a-z 0-9 . _ - @",
            );
        }
        Ok(s)
    }

    fn duration(&self, key: &str, v: Option<String>, default: Duration) -> Result<Duration, Error> {
        match v {
            None => Ok(default),
            Some(s) => match parse_duration(&s) {
                Some(d) => Ok(d),
                None => self.fail(
                    key,
                    format!("{s:?}"),
                    "must be a duration like \"1s\", \"100ms\" or \"10cs\"",
                ),
            },
        }
    }

    fn ipv4(&self, key: &str, s: &str) -> Result<Ipv4Addr, Error> {
        match s.parse::<Ipv4Addr>() {
            Ok(a) if !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast() => Ok(a),
            Ok(_) => self.fail(key, format!("{s:?}"), "must be a unicast IPv4 address"),
            Err(_) => self.fail(key, format!("{s:?}"), "must be an IPv4 address"),
        }
    }

    fn validate(&self, raw: RawFile, base: &Path) -> Result<Config, Error> {
        let Some(rn) = raw.node else {
            return self.missing("node");
        };
        let name = self.name("node.name", rn.name, None)?;
        let management_ip = match rn.management_ip {
            Some(s) => self.ipv4("node.management_ip", &s)?,
            None => return self.missing("node.management_ip"),
        };
        let priority: u8 = self.int("node.priority", rn.priority, None, 0, 254)?;
        let lbid: u16 = self.int("node.lbid", rn.lbid, None, 1, 65535)?;
        let capacity: u32 = self.int("node.capacity", rn.capacity, Some(100), 1, 1_000_000)?;
        let control_socket = match rn.control_socket {
            Some(s) if s.is_empty() => {
                return self.fail("node.control_socket", "\"\"", "must not be empty");
            }
            Some(s) => PathBuf::from(s),
            None => default_socket(&name),
        };
        let node = Node {
            name,
            management_ip,
            priority,
            lbid,
            control_socket,
            capacity,
        };

        let Some(rv) = raw.vrrp else {
            return self.missing("vrrp");
        };
        let interface = self.name("vrrp.interface", rv.interface, None)?;
        let vrid: u8 = self.int("vrrp.vrid", rv.vrid, None, 1, 255)?;
        let version = match rv.version {
            None | Some(2) => VrrpVersion::V2,
            Some(3) => VrrpVersion::V3,
            Some(n) => return self.fail("vrrp.version", n, "must be 2 or 3"),
        };
        let shown = rv.advert_interval.clone().unwrap_or_default();
        let advert_interval = self.duration(
            "vrrp.advert_interval",
            rv.advert_interval,
            Duration::from_secs(1),
        )?;
        match version {
            VrrpVersion::V2 => {
                if advert_interval.subsec_nanos() != 0
                    || !(1..=255).contains(&advert_interval.as_secs())
                {
                    return self.fail(
                        "vrrp.advert_interval",
                        format!("{shown:?}"),
                        "must be whole seconds 1s..255s in VRRPv2",
                    );
                }
            }
            VrrpVersion::V3 => {
                let ms = advert_interval.as_millis();
                if advert_interval.as_nanos() % 10_000_000 != 0 || !(10..=40_950).contains(&ms) {
                    return self.fail(
                        "vrrp.advert_interval",
                        format!("{shown:?}"),
                        "must be a multiple of 10ms, 10ms..40950ms in VRRPv3",
                    );
                }
            }
        }
        let shown = rv.preempt_delay.clone().unwrap_or_default();
        let preempt_delay =
            self.duration("vrrp.preempt_delay", rv.preempt_delay, Duration::ZERO)?;
        if preempt_delay > Duration::from_secs(3600) {
            return self.fail(
                "vrrp.preempt_delay",
                format!("{shown:?}"),
                "must be at most 3600s",
            );
        }
        let garp_count: u32 = self.int("vrrp.garp_count", rv.garp_count, Some(5), 0, 100)?;
        let garp_refresh = match rv.garp_refresh.as_deref() {
            Some("off") => None,
            other => {
                let shown = other.unwrap_or_default().to_string();
                let d = self.duration(
                    "vrrp.garp_refresh",
                    other.map(str::to_string),
                    Duration::from_secs(5),
                )?;
                if d.is_zero() || d > Duration::from_secs(3600) {
                    return self.fail(
                        "vrrp.garp_refresh",
                        format!("{shown:?}"),
                        "must be \"off\" or 1ms..3600s",
                    );
                }
                Some(d)
            }
        };
        let auth_pass = match rv.auth_pass {
            None => None,
            Some(p) => {
                if version != VrrpVersion::V2 {
                    return self.fail(
                        "vrrp.auth_pass",
                        "(hidden)",
                        "only VRRPv2 has authentication",
                    );
                }
                if p.is_empty() || p.len() > 8 || !p.is_ascii() {
                    return self.fail(
                        "vrrp.auth_pass",
                        "(hidden)",
                        "must be 1..8 ASCII characters",
                    );
                }
                let mut a = [0u8; 8];
                a[..p.len()].copy_from_slice(p.as_bytes());
                Some(a)
            }
        };
        let vrrp = Vrrp {
            interface,
            vrid,
            version,
            advert_interval,
            preempt: rv.preempt.unwrap_or(true),
            preempt_delay,
            garp_count,
            garp_refresh,
            auth_pass,
        };

        if raw.virtual_ip.is_empty() {
            return self.missing("virtual_ip");
        }
        let mut virtual_ips = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, r) in raw.virtual_ip.into_iter().enumerate() {
            let key = format!("virtual_ip[{i}].address");
            let Some(s) = r.address else {
                return self.missing(&key);
            };
            let address = match parse_cidr(&s) {
                Ok(c) => c,
                Err(rule) => return self.fail(&key, format!("{s:?}"), &rule),
            };
            self.ipv4(&key, &address.address().to_string())?;
            if !seen.insert(address.address()) {
                return self.fail(&key, format!("{s:?}"), "duplicate virtual IP");
            }
            if address.address() == node.management_ip {
                return self.fail(
                    &key,
                    format!("{s:?}"),
                    "must differ from node.management_ip",
                );
            }
            let interface = self.name(
                &format!("virtual_ip[{i}].interface"),
                r.interface,
                Some(&vrrp.interface),
            )?;
            virtual_ips.push(VirtualIp { address, interface });
        }

        if raw.port_redirect.is_empty() {
            return self.missing("port_redirect");
        }
        let mut port_redirects: Vec<PortRedirect> = Vec::new();
        for (i, r) in raw.port_redirect.into_iter().enumerate() {
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

        let rh = raw.heartbeat.unwrap_or(RawHeartbeat {
            interval: None,
            misses: None,
            key_file: None,
            static_nodes: Vec::new(),
        });
        let shown = rh.interval.clone().unwrap_or_default();
        let interval = self.duration("heartbeat.interval", rh.interval, Duration::from_secs(1))?;
        if interval < Duration::from_millis(100) || interval > Duration::from_secs(60) {
            return self.fail(
                "heartbeat.interval",
                format!("{shown:?}"),
                "must be 100ms..60s",
            );
        }
        let misses: u32 = self.int("heartbeat.misses", rh.misses, Some(3), 1, 100)?;
        let (key_file, key) = match rh.key_file {
            None => (None, None),
            Some(f) => {
                let p = base.join(&f);
                let bytes = match std::fs::read(&p) {
                    Ok(b) => b,
                    Err(e) => {
                        return self.fail(
                            "heartbeat.key_file",
                            format!("{f:?}"),
                            &format!("cannot read: {e}"),
                        );
                    }
                };
                let trimmed: Vec<u8> = bytes.trim_ascii().to_vec();
                if trimmed.len() < 16 {
                    return self.fail(
                        "heartbeat.key_file",
                        format!("{f:?}"),
                        "key must be at least 16 bytes",
                    );
                }
                (Some(p), Some(trimmed))
            }
        };
        let mut static_nodes = Vec::new();
        for (i, s) in rh.static_nodes.iter().enumerate() {
            static_nodes.push(self.ipv4(&format!("heartbeat.static_nodes[{i}]"), s)?);
        }
        let heartbeat = Heartbeat {
            interval,
            misses,
            key_file,
            key,
            static_nodes,
        };

        let rd = raw.dataplane.unwrap_or(RawDataplane {
            interface: None,
            queues: None,
            cores: None,
            mode: None,
            poll: None,
            batch_size: None,
            flow_capacity: None,
            maglev_table_size: None,
        });
        let interface = self.name("dataplane.interface", rd.interface, Some(&vrrp.interface))?;
        let nqueues: u32 = self.int("dataplane.queues", rd.queues, Some(1), 1, 64)?;
        let queues: Vec<u32> = (0..nqueues).collect();
        let cores = match rd.cores {
            None => Vec::new(),
            Some(c) => {
                if c.len() != queues.len() {
                    return self.fail(
                        "dataplane.cores",
                        format!("{c:?}"),
                        &format!("must list one core per queue ({} queues)", queues.len()),
                    );
                }
                let mut out = Vec::new();
                for (i, n) in c.into_iter().enumerate() {
                    out.push(self.int(&format!("dataplane.cores[{i}]"), Some(n), None, 0, 4095)?);
                }
                out
            }
        };
        let mode = match rd.mode.as_deref() {
            None | Some("auto") => XdpMode::Auto,
            Some("copy") => XdpMode::Copy,
            Some("zero-copy") => XdpMode::ZeroCopy,
            Some(s) => {
                return self.fail(
                    "dataplane.mode",
                    format!("{s:?}"),
                    "must be \"auto\", \"copy\" or \"zero-copy\"",
                );
            }
        };
        let poll = match rd.poll.as_deref() {
            None | Some("adaptive") => PollMode::Adaptive,
            Some("busy") => PollMode::Busy,
            Some(s) => {
                return self.fail(
                    "dataplane.poll",
                    format!("{s:?}"),
                    "must be \"adaptive\" or \"busy\"",
                );
            }
        };
        let batch_size: u32 = self.int("dataplane.batch_size", rd.batch_size, Some(64), 1, 1024)?;
        let flow_capacity: u32 = self.int(
            "dataplane.flow_capacity",
            rd.flow_capacity,
            Some(1 << 20),
            1024,
            1 << 24,
        )?;
        let maglev_table_size: u32 = self.int(
            "dataplane.maglev_table_size",
            rd.maglev_table_size,
            Some(65537),
            101,
            1_000_003,
        )?;
        if !is_prime(u64::from(maglev_table_size)) {
            return self.fail(
                "dataplane.maglev_table_size",
                maglev_table_size,
                "must be prime",
            );
        }
        let dataplane = Dataplane {
            interface,
            queues,
            cores,
            mode,
            poll,
            batch_size,
            flow_capacity,
            maglev_table_size,
        };

        Ok(Config {
            node,
            vrrp,
            virtual_ips,
            port_redirects,
            heartbeat,
            dataplane,
        })
    }
}

/// The default control socket of node `name`.
pub fn default_socket(name: &str) -> PathBuf {
    PathBuf::from(format!("/run/proxyha/{name}.sock"))
}

/// Parses `"1s"`, `"100ms"`, `"10cs"`, `"2m"` into a duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    if num.is_empty() || num.len() > 9 {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "cs" => Some(Duration::from_millis(n * 10)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        _ => None,
    }
}

/// Parses a port list like `"80,8080-8090"` into sorted, merged, inclusive ranges.
pub fn parse_ports(s: &str) -> Result<Vec<(u16, u16)>, String> {
    let port = |p: &str| -> Result<u16, String> {
        p.trim()
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("`{}` is not a port 1..65535", p.trim()))
    };
    let mut ranges = Vec::new();
    for part in s.split(',') {
        if part.trim().is_empty() {
            return Err("empty entry in port list".into());
        }
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(part)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(format!("range {lo}-{hi} is backwards"));
        }
        ranges.push((lo, hi));
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::new();
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    Ok(merged)
}

/// Formats ranges back as `"80,8080-8090"`.
pub fn format_ports(ranges: &[(u16, u16)]) -> String {
    ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl Config {
    /// The virtual IPv4 addresses, in config order.
    pub fn vip_addrs(&self) -> Vec<Ipv4Addr> {
        self.virtual_ips
            .iter()
            .map(|v| v.address.address())
            .collect()
    }

    /// Every original destination port of every port redirect, expanded.
    pub fn redirected_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.port_redirects
            .iter()
            .flat_map(|r| r.original_ports.iter().flat_map(|&(lo, hi)| lo..=hi))
    }

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
        line("node.priority", format!("{} ({role})", n.priority));
        line("node.lbid", n.lbid.to_string());
        line("node.capacity", n.capacity.to_string());
        line(
            "node.control_socket",
            n.control_socket.display().to_string(),
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
        line("vrrp.virtual_mac", {
            let m = v.virtual_mac();
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        });
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
        for (i, vip) in self.virtual_ips.iter().enumerate() {
            line(
                &format!("virtual_ip[{i}]"),
                format!("{} on {}", vip.address, vip.interface),
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
            match &h.key_file {
                Some(p) => format!("HMAC-SHA256 (key {})", p.display()),
                None => "none (heartbeats are unauthenticated)".into(),
            },
        );
        if !h.static_nodes.is_empty() {
            line(
                "heartbeat.static_nodes",
                h.static_nodes
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        let d = &self.dataplane;
        line("dataplane.interface", d.interface.clone());
        line("dataplane.queues", format!("{:?}", d.queues));
        line(
            "dataplane.cores",
            if d.cores.is_empty() {
                "auto".into()
            } else {
                format!("{:?}", d.cores)
            },
        );
        line(
            "dataplane.mode",
            format!("{:?}", d.mode)
                .to_lowercase()
                .replace("zerocopy", "zero-copy"),
        );
        line("dataplane.poll", format!("{:?}", d.poll).to_lowercase());
        line("dataplane.batch_size", d.batch_size.to_string());
        line("dataplane.flow_capacity", d.flow_capacity.to_string());
        line(
            "dataplane.maglev_table_size",
            d.maglev_table_size.to_string(),
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("10cs"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("1h"), None);
        assert_eq!(parse_duration("99999999999s"), None);
    }

    #[test]
    fn port_lists() {
        assert_eq!(parse_ports("9090"), Ok(vec![(9090, 9090)]));
        assert_eq!(
            parse_ports("80,8080-8090"),
            Ok(vec![(80, 80), (8080, 8090)])
        );
        assert_eq!(parse_ports("81,80,82-83"), Ok(vec![(80, 83)]));
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("90-80").is_err());
        assert!(parse_ports("80,,81").is_err());
        assert!(parse_ports("65536").is_err());
        assert_eq!(format_ports(&[(80, 80), (8080, 8090)]), "80,8080-8090");
    }

    #[test]
    fn primes() {
        assert!(is_prime(65537));
        assert!(is_prime(101));
        assert!(!is_prime(65536));
        assert!(!is_prime(1));
    }

    proptest! {
        #[test]
        fn port_list_round_trip(ranges in proptest::collection::vec((1u16..=65535, 0u16..50), 1..8)) {
            let text = ranges.iter().map(|&(a, len)| {
                let b = a.saturating_add(len);
                if a == b { a.to_string() } else { format!("{a}-{b}") }
            }).collect::<Vec<_>>().join(",");
            let parsed = parse_ports(&text).unwrap();
            prop_assert_eq!(parse_ports(&format_ports(&parsed)).unwrap(), parsed.clone());
            for &(a, len) in &ranges {
                let b = a.saturating_add(len);
                prop_assert!(parsed.iter().any(|&(lo, hi)| lo <= a && b <= hi));
            }
        }

        #[test]
        fn port_parser_never_panics(s in ".{0,40}") {
            let _ = parse_ports(&s);
        }

        #[test]
        fn duration_parser_never_panics(s in ".{0,20}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn config_parser_never_panics(s in "(?s).{0,300}") {
            let _ = parse("fuzz.toml", &s, Path::new("."));
        }
    }
}
