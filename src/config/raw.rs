//! The file as written: every key optional, so that the validator, not
//! serde, names what is missing.

use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct RawFile {
    pub(super) node: Option<RawNode>,
    pub(super) vrrp: Option<RawVrrp>,
    #[serde(default)]
    pub(super) virtual_ip: Vec<RawVirtualIp>,
    #[serde(default)]
    pub(super) port_redirect: Vec<RawPortRedirect>,
    pub(super) heartbeat: Option<RawHeartbeat>,
    pub(super) dataplane: Option<RawDataplane>,
    pub(super) notify: Option<RawNotify>,
    pub(super) metrics: Option<RawMetrics>,
    pub(super) cluster: Option<RawCluster>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawCluster {
    pub(super) mode: Option<String>,
    pub(super) announce_table: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct RawNode {
    pub(super) name: Option<String>,
    pub(super) management_ip: Option<String>,
    pub(super) management_ip6: Option<String>,
    pub(super) priority: Option<i64>,
    pub(super) lbid: Option<i64>,
    pub(super) control_socket: Option<String>,
    pub(super) control_group: Option<String>,
    pub(super) capacity: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct RawVrrp {
    pub(super) interface: Option<String>,
    pub(super) vrid: Option<i64>,
    pub(super) version: Option<i64>,
    pub(super) advert_interval: Option<String>,
    pub(super) preempt: Option<bool>,
    pub(super) preempt_delay: Option<String>,
    pub(super) garp_count: Option<i64>,
    pub(super) garp_refresh: Option<String>,
    pub(super) auth_pass: Option<String>,
    pub(super) peers: Option<Vec<String>>,
    pub(super) track_proxy_weight: Option<i64>,
    pub(super) track_interfaces: Option<Vec<String>>,
    pub(super) track_interface_weight: Option<i64>,
    pub(super) nd_router_flag: Option<bool>,
}

#[derive(Deserialize)]
pub(super) struct RawVirtualIp {
    pub(super) address: Option<String>,
    pub(super) interface: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawPortRedirect {
    pub(super) protocol: Option<String>,
    pub(super) original_ports: Option<toml::Value>,
    pub(super) proxy_port: Option<i64>,
    pub(super) comment: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawHeartbeat {
    pub(super) interval: Option<String>,
    pub(super) misses: Option<i64>,
    pub(super) key_file: Option<String>,
    pub(super) key_file_next: Option<String>,
    pub(super) insecure: Option<bool>,
    pub(super) max_capacity: Option<i64>,
    pub(super) accept_unlisted: Option<bool>,
    pub(super) hold_stale: Option<bool>,
    /// Tables `{ ip, mac, name }`; kept as values so that a plain string
    /// (the old syntax) gets an error that says what to write instead.
    #[serde(default)]
    pub(super) static_nodes: Vec<toml::Value>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawDataplane {
    pub(super) interface: Option<String>,
    pub(super) queues: Option<IntOrString>,
    pub(super) set_channels: Option<bool>,
    pub(super) cpus: Option<CpuList>,
    pub(super) mode: Option<String>,
    pub(super) poll: Option<String>,
    pub(super) offload: Option<String>,
    pub(super) offload_local: Option<String>,
    pub(super) batch_size: Option<i64>,
    pub(super) flow_capacity: Option<i64>,
    pub(super) maglev_table_size: Option<i64>,
    pub(super) rx_ring: Option<i64>,
    pub(super) tx_ring: Option<i64>,
    pub(super) umem_frames: Option<i64>,
    pub(super) frame_size: Option<i64>,
}

/// A key that takes a number or a word (`queues = 4` or `queues = "all"`).
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub(super) enum IntOrString {
    Int(i64),
    Str(String),
}

/// A CPU list: `"0-3,6"` (as taskset and the kernel write it) or `[0, 1]`.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub(super) enum CpuList {
    Str(String),
    List(Vec<i64>),
}

#[derive(Deserialize, Default)]
pub(super) struct RawNotify {
    pub(super) master: Option<StringOrList>,
    pub(super) backup: Option<StringOrList>,
    pub(super) fault: Option<StringOrList>,
    pub(super) stop: Option<StringOrList>,
    pub(super) node: Option<StringOrList>,
    pub(super) timeout: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawMetrics {
    pub(super) listen: Option<String>,
}

/// A command: `"/path arg"` (split on whitespace) or `["/path", "arg"]`.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub(super) enum StringOrList {
    Str(String),
    List(Vec<String>),
}
