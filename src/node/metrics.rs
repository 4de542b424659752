//! The Prometheus text exposition format (version 0.0.4) of a node,
//! rendered from the very documents `proxyha stats --json` and `proxyha
//! status --json` print (the daemon's published [`StatsReport`] and
//! [`Status`]), so the two views cannot disagree. Every metric is listed in
//! `docs/metrics.md` (a test checks it).
//!
//! Counters of the protocol machines are rendered from their JSON objects
//! field by field (`vrrp.counters.rx_adverts` becomes
//! `proxyha_vrrp_rx_adverts_total`): a counter added there appears here
//! without a second list to keep in step.

use std::collections::BTreeSet;
use std::fmt::{Display, Write as _};

use crate::control::status::{Entry, Status};
use crate::node::report::StatsReport;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The VRRP states, as `proxyha_vrrp_state{state=...}` lists them.
const VRRP_STATES: [&str; 3] = ["Initialize", "Backup", "Master"];
/// The heartbeat entry states, as `proxyha_node_state{state=...}` lists them
/// (a state not listed here, reported by a newer daemon, is added).
const NODE_STATES: [&str; 7] = [
    "UNKNOWN",
    "OK",
    "NETWORK",
    "REDUNDANT",
    "FAILED",
    "DRAINING",
    "STALE",
];

/// Renders the published JSON documents; a document that does not parse
/// (none published yet) leaves its metrics out, and `proxyha_up` says so.
pub fn render_json(stats: &str, status: &str) -> String {
    let stats = serde_json::from_str::<StatsReport>(stats).ok();
    let status = serde_json::from_str::<Status>(status).ok();
    render(stats.as_ref(), status.as_ref())
}

/// Renders one node's metrics.
pub fn render(stats: Option<&StatsReport>, status: Option<&Status>) -> String {
    let mut o = Out::default();
    o.family(
        "proxyha_up",
        "gauge",
        "1 when both the stats and the status were available.",
    );
    o.sample(
        "proxyha_up",
        &[],
        u8::from(stats.is_some() && status.is_some()),
    );
    if let Some(r) = stats {
        dataplane(&mut o, r);
    }
    if let Some(s) = status {
        protocols(&mut o, s);
        nodes(&mut o, s);
    }
    o.s
}

/// The text being built, and the families already declared.
#[derive(Default)]
struct Out {
    s: String,
    families: BTreeSet<String>,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        if self.families.insert(name.to_owned()) {
            let _ = writeln!(self.s, "# HELP {name} {help}");
            let _ = writeln!(self.s, "# TYPE {name} {kind}");
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.s.push_str(name);
        if !labels.is_empty() {
            self.s.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.s.push(',');
                }
                let _ = write!(self.s, "{k}=\"{}\"", escape(v));
            }
            self.s.push('}');
        }
        let _ = writeln!(self.s, " {value}");
    }

    /// One counter family per numeric field of `obj`, named
    /// `{prefix}_{field}_total`.
    fn counters(&mut self, prefix: &str, obj: &serde_json::Value, help: &str) {
        let Some(map) = obj.as_object() else { return };
        for (k, v) in map {
            if let Some(n) = v.as_u64() {
                let name = format!("{prefix}_{}_total", sanitize(k));
                self.family(&name, "counter", &format!("{help}: {k}."));
                self.sample(&name, &[], n);
            }
        }
    }
}

/// A label value escaped as the format requires (backslash, quote, newline).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON field name as a metric-name part: `[a-zA-Z0-9_]` only.
fn sanitize(k: &str) -> String {
    k.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Seconds, as the exposition writes them.
fn seconds(ns: u64) -> String {
    format!("{}", ns as f64 / 1e9)
}

fn dataplane(o: &mut Out, r: &StatsReport) {
    o.family(
        "proxyha_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
    );
    o.sample(
        "proxyha_uptime_seconds",
        &[],
        seconds(r.uptime_ms * 1_000_000),
    );
    o.family(
        "proxyha_workers",
        "gauge",
        "Dataplane workers (one per RX queue).",
    );
    o.sample("proxyha_workers", &[], r.workers);
    // The node's totals, then the same counters per queue.
    let plain: Vec<(String, u64)> = r
        .total
        .counters()
        .into_iter()
        .filter(|(k, _)| !r.total.drops.contains_key(*k))
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    for (k, v) in &plain {
        let name = format!("proxyha_dataplane_{k}_total");
        o.family(
            &name,
            "counter",
            &format!("All workers' {k} (proxyha stats: total.{k})."),
        );
        o.sample(&name, &[], v);
    }
    o.family(
        "proxyha_dataplane_drops_total",
        "counter",
        "Frames the workers dropped, by reason (non-zero reasons only).",
    );
    for (reason, v) in &r.total.drops {
        o.sample("proxyha_dataplane_drops_total", &[("reason", reason)], v);
    }
    let queues: Vec<(String, &crate::dataplane::stats::Snapshot)> = r
        .per_worker
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let q = r.queues.get(i).map_or(i as u32, |q| q.queue);
            (q.to_string(), s)
        })
        .collect();
    for (k, _) in &plain {
        let name = format!("proxyha_queue_{k}_total");
        o.family(
            &name,
            "counter",
            &format!("One queue's worker's {k} (proxyha stats: per_worker[i].{k})."),
        );
        for (q, s) in &queues {
            let v = s
                .counters()
                .iter()
                .find(|(n, _)| n == k)
                .map_or(0, |(_, v)| *v);
            o.sample(&name, &[("queue", q)], v);
        }
    }
    o.family(
        "proxyha_queue_drops_total",
        "counter",
        "Frames one queue's worker dropped, by reason (non-zero reasons only).",
    );
    for (q, s) in &queues {
        for (reason, v) in &s.drops {
            o.sample(
                "proxyha_queue_drops_total",
                &[("queue", q), ("reason", reason)],
                v,
            );
        }
    }
    o.family(
        "proxyha_dataplane_tx_redirected_frames_total",
        "counter",
        "Frames redirected to each node (by health-table slot and the node's IPv4).",
    );
    for (slot, v) in &r.total.tx_redirected {
        let ip = r.slot_ip(*slot).map(|a| a.to_string()).unwrap_or_default();
        o.sample(
            "proxyha_dataplane_tx_redirected_frames_total",
            &[("slot", &slot.to_string()), ("ip", &ip)],
            v,
        );
    }
    o.family(
        "proxyha_fastpath_enabled",
        "gauge",
        "1 while the XDP fast path for established flows is on (docs/dataplane.md).",
    );
    o.sample("proxyha_fastpath_enabled", &[], u64::from(r.fast_path));
    if let Some(n) = r.fast_flows {
        o.family(
            "proxyha_fastpath_flows",
            "gauge",
            "Entries of the XDP fast path's flow cache that hold a flow (of 262144).",
        );
        o.sample("proxyha_fastpath_flows", &[], n);
    }
    for (name, help, pick) in [
        (
            "proxyha_fastpath_tx_frames_total",
            "Frames the XDP fast path forwarded to each node (by slot and IPv4).",
            (|c: &crate::xsk::NodeCounters| c.packets) as fn(&crate::xsk::NodeCounters) -> u64,
        ),
        (
            "proxyha_fastpath_tx_bytes_total",
            "Bytes the XDP fast path forwarded to each node (by slot and IPv4).",
            |c: &crate::xsk::NodeCounters| c.bytes,
        ),
    ] {
        o.family(name, "counter", help);
        for (slot, c) in &r.fast_per_node {
            let ip = r.slot_ip(*slot).map(|a| a.to_string()).unwrap_or_default();
            o.sample(name, &[("slot", &slot.to_string()), ("ip", &ip)], pick(c));
        }
    }
    o.family(
        "proxyha_control_tx_dropped_total",
        "counter",
        "Frames the control plane could not queue to a worker.",
    );
    o.sample(
        "proxyha_control_tx_dropped_total",
        &[],
        r.control_tx_dropped,
    );
    if let Some(x) = &r.xdp {
        o.counters(
            "proxyha_xdp",
            &serde_json::to_value(x).unwrap_or_default(),
            "XDP filter program counter",
        );
    }
    batch_histogram(o, r);
    let e = &r.events;
    o.counters(
        "proxyha_notify",
        &serde_json::to_value(e.notify).unwrap_or_default(),
        "Notification commands",
    );
    o.family(
        "proxyha_events_followers",
        "gauge",
        "proxyha events --follow connections now.",
    );
    o.sample("proxyha_events_followers", &[], e.followers);
    o.family(
        "proxyha_events_followers_dropped_total",
        "counter",
        "Event followers dropped because they did not keep up or went away.",
    );
    o.sample(
        "proxyha_events_followers_dropped_total",
        &[],
        e.followers_dropped,
    );
}

fn batch_histogram(o: &mut Out, r: &StatsReport) {
    let h = &r.batch_time_buckets;
    let name = "proxyha_batch_duration_seconds";
    o.family(
        name,
        "histogram",
        "Time one worker took to process one batch of frames.",
    );
    let b = format!("{name}_bucket");
    for (le, n) in &h.le_ns {
        o.sample(&b, &[("le", &seconds(*le))], n);
    }
    o.sample(&b, &[("le", "+Inf")], h.count);
    o.sample(&format!("{name}_sum"), &[], seconds(h.sum_ns));
    o.sample(&format!("{name}_count"), &[], h.count);
}

fn protocols(o: &mut Out, s: &Status) {
    o.family(
        "proxyha_priority",
        "gauge",
        "This node's configured VRRP priority (0: scanning node).",
    );
    o.sample("proxyha_priority", &[], s.priority);
    if !s.vrrp.is_null() {
        o.family(
            "proxyha_vrrp_state",
            "gauge",
            "1 for this director's VRRP state, 0 for the others.",
        );
        let mut states: Vec<&str> = VRRP_STATES.to_vec();
        if !states.contains(&s.vrrp_state.as_str()) {
            states.push(&s.vrrp_state);
        }
        for st in states {
            o.sample(
                "proxyha_vrrp_state",
                &[("state", st)],
                u8::from(st == s.vrrp_state),
            );
        }
        for (k, help) in [
            ("priority", "The VRRP priority in use (0 while resigned)."),
            (
                "master_priority",
                "The current Master's priority, as last heard.",
            ),
        ] {
            if let Some(v) = s.vrrp.get(k).and_then(serde_json::Value::as_u64) {
                let name = format!("proxyha_vrrp_{k}");
                o.family(&name, "gauge", help);
                o.sample(&name, &[], v);
            }
        }
        o.counters("proxyha_vrrp", &s.vrrp["counters"], "VRRP counter");
    }
    let hb = &s.heartbeat;
    o.family(
        "proxyha_heartbeat_authenticated",
        "gauge",
        "1 when heartbeats carry an HMAC.",
    );
    o.sample(
        "proxyha_heartbeat_authenticated",
        &[],
        u8::from(s.authenticated),
    );
    if let Some(g) = hb["membership"]["generation"].as_u64() {
        o.family(
            "proxyha_membership_generation",
            "gauge",
            "The balancing set's generation (changes whenever the set changes).",
        );
        o.sample("proxyha_membership_generation", &[], g);
    }
    if let Some(n) = hb["membership"]["nodes"].as_array() {
        o.family(
            "proxyha_membership_nodes",
            "gauge",
            "Nodes in the balancing set.",
        );
        o.sample("proxyha_membership_nodes", &[], n.len());
    }
    o.counters("proxyha_heartbeat", &hb["counters"], "Heartbeat counter");
    o.counters("proxyha_control", &hb["control"], "Control-plane counter");
}

/// The labels of one status entry: its name, IPv4 and type.
fn entry_labels(e: &Entry) -> [(&'static str, String); 3] {
    [
        ("node", e.device.clone()),
        ("ip", e.ip.to_string()),
        ("type", e.kind.clone()),
    ]
}

fn entry_sample(o: &mut Out, name: &str, e: &Entry, state: Option<&str>, v: u64) {
    let l = entry_labels(e);
    let mut refs: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if let Some(st) = state {
        refs.push(("state", st));
    }
    o.sample(name, &refs, v);
}

fn nodes(o: &mut Out, s: &Status) {
    o.family(
        "proxyha_node_state",
        "gauge",
        "1 for each status entry's state, 0 for the others (proxyha status).",
    );
    for e in &s.entries {
        let mut states: Vec<&str> = NODE_STATES.to_vec();
        if !states.contains(&e.state.as_str()) {
            states.push(&e.state);
        }
        for st in states {
            entry_sample(
                o,
                "proxyha_node_state",
                e,
                Some(st),
                u64::from(st == e.state),
            );
        }
    }
    // The five `stats` of an entry, in their order.
    let stats: [(&str, &str, &str); 5] = [
        (
            "proxyha_node_connections",
            "gauge",
            "Established connections to the node's proxy port.",
        ),
        (
            "proxyha_node_load_permille",
            "gauge",
            "The node's CPU load, per mille.",
        ),
        (
            "proxyha_node_capacity",
            "gauge",
            "The node's configured capacity.",
        ),
        (
            "proxyha_node_heartbeats_received_total",
            "counter",
            "Heartbeats received from the node (this node's own entries: sent).",
        ),
        (
            "proxyha_node_heartbeats_missed_total",
            "counter",
            "Heartbeat requests the node did not answer in time.",
        ),
    ];
    for (i, (name, kind, help)) in stats.iter().enumerate() {
        o.family(name, kind, help);
        for e in &s.entries {
            entry_sample(o, name, e, None, e.stats[i]);
        }
    }
    o.family(
        "proxyha_node_status_valid",
        "gauge",
        "1 while the entry is backed by fresh heartbeats.",
    );
    for e in &s.entries {
        entry_sample(
            o,
            "proxyha_node_status_valid",
            e,
            None,
            u64::from(e.statusvalid),
        );
    }
    o.family(
        "proxyha_node_weight",
        "gauge",
        "The Maglev weight of each member of the balancing set (0: draining).",
    );
    for m in s.heartbeat["membership"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let ip = m["ip"].as_str().unwrap_or_default();
        let name = s
            .entries
            .iter()
            .find(|e| e.ip.to_string() == ip && e.kind == "scanning")
            .map_or(String::new(), |e| e.device.clone());
        let w = m["weight"].as_u64().unwrap_or(0);
        o.sample("proxyha_node_weight", &[("node", &name), ("ip", ip)], w);
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
