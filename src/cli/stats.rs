//! `proxyha stats`: the dataplane counters of a running node.

use std::fmt::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Counters shown first, in this order; the rest follow alphabetically.
const ORDER: &[&str] = &[
    "rx_frames",
    "tx_frames",
    "tx_local",
    "passed",
    "rx_vrrp",
    "rx_heartbeat",
    "rx_arp",
    "tx_control",
    "flow_hits",
    "flow_misses",
    "flow_evictions",
    "flow_moved",
    "flow_untracked",
    "ring_full",
    "batches",
    "idle_waits",
];

fn fetch(path: &std::path::Path) -> Result<Value, String> {
    let a = crate::ctl::request(path, "stats").map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&a)
        .map_err(|e| format!("unexpected answer from {}: {e}", path.display()))?;
    if v.get("total").is_none() {
        return Err(format!("unexpected answer from {}: {a}", path.display()));
    }
    Ok(v)
}

fn counters(v: &Value) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Some(t) = v.get("total").and_then(Value::as_object) else {
        return out;
    };
    for k in ORDER {
        if let Some(n) = t.get(*k).and_then(Value::as_u64) {
            out.push((k.to_string(), n));
        }
    }
    for (k, val) in t {
        if ORDER.contains(&k.as_str()) {
            continue;
        }
        if let Some(n) = val.as_u64() {
            out.push((k.clone(), n));
        }
    }
    if let Some(d) = t.get("drops").and_then(Value::as_object) {
        for (k, n) in d {
            out.push((k.clone(), n.as_u64().unwrap_or(0)));
        }
    }
    let slots: Vec<(u64, String)> = v
        .get("slots")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p.get(0)?.as_u64()?, p.get(1)?.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    if let Some(r) = t.get("tx_redirected").and_then(Value::as_object) {
        for (slot, n) in r {
            let ip = slots
                .iter()
                .find(|(s, _)| s.to_string() == *slot)
                .map_or(format!("slot {slot}"), |(_, ip)| ip.clone());
            out.push((format!("tx_redirected[{ip}]"), n.as_u64().unwrap_or(0)));
        }
    }
    out
}

/// Renders one dump.
pub fn render(v: &Value) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "node: {}  uptime: {:.1}s  workers: {}  xdp: {}  sockets: {}",
        v["node"].as_str().unwrap_or("?"),
        v["uptime_ms"].as_u64().unwrap_or(0) as f64 / 1000.0,
        v["workers"].as_u64().unwrap_or(0),
        v["xdp_mode"].as_str().unwrap_or("?"),
        v["bind_mode"]
            .as_array()
            .map(|a| a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","))
            .unwrap_or_default()
    );
    for (k, n) in counters(v) {
        let _ = writeln!(s, "  {k:<34}{n:>14}");
    }
    let b = &v["batch_time"];
    let _ = writeln!(
        s,
        "  batch time (ns): p50 {}  p99 {}  p99.9 {}  max {}  ({} batches)",
        b["p50_ns"], b["p99_ns"], b["p999_ns"], b["max_ns"], b["batches"]
    );
    if let Some(x) = v["xdp"].as_object() {
        let parts: Vec<String> = x.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(s, "  xdp program: {}", parts.join("  "));
    }
    s
}

/// Renders per-second rates between two dumps.
pub fn render_rates(prev: &Value, cur: &Value, secs: f64) -> String {
    let before: std::collections::BTreeMap<String, u64> = counters(prev).into_iter().collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} rates over {secs:.1}s:",
        cur["node"].as_str().unwrap_or("?")
    );
    for (k, n) in counters(cur) {
        let d = n.saturating_sub(before.get(&k).copied().unwrap_or(0));
        if d > 0 || ORDER[..4].contains(&k.as_str()) {
            let _ = writeln!(s, "  {k:<34}{:>14.0}/s", d as f64 / secs);
        }
    }
    s
}

/// `proxyha stats`.
pub fn command(
    target: &super::Target,
    json: bool,
    watch: bool,
    interval: f64,
    count: Option<u64>,
) -> i32 {
    let path = match target.path() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("proxyha: {e}");
            return 1;
        }
    };
    let first = match fetch(&path) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("proxyha: {e}");
            return 1;
        }
    };
    if !watch {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&first).unwrap_or_default()
            );
        } else {
            print!("{}", render(&first));
        }
        return 0;
    }
    let mut prev = first;
    let mut t = Instant::now();
    let mut n = 0u64;
    loop {
        std::thread::sleep(Duration::from_secs_f64(interval));
        let cur = match fetch(&path) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("proxyha: {e}");
                return 1;
            }
        };
        let secs = t.elapsed().as_secs_f64();
        t = Instant::now();
        if json {
            println!(
                "{}",
                serde_json::json!({ "interval_s": secs, "stats": cur })
            );
        } else {
            print!("{}", render_rates(&prev, &cur, secs));
        }
        prev = cur;
        n += 1;
        if count.is_some_and(|c| n >= c) {
            return 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rx: u64) -> Value {
        serde_json::json!({
            "node": "director-a", "uptime_ms": 1500, "workers": 1, "xdp_mode": "native",
            "bind_mode": ["copy"],
            "total": {"rx_frames": rx, "tx_frames": 5, "tx_local": 1, "passed": 0,
                      "drops": {"drop_runt": 2}, "tx_redirected": {"1": 4}},
            "slots": [[1, "198.18.0.3"]],
            "batch_time": {"p50_ns": 100, "p99_ns": 200, "p999_ns": 300, "max_ns": 400, "batches": 9},
            "xdp": {"rx_frames": 10}
        })
    }

    #[test]
    fn renders_counters_with_node_ips() {
        let s = render(&sample(10));
        assert!(
            s.contains("node: director-a  uptime: 1.5s  workers: 1  xdp: native  sockets: copy"),
            "{s}"
        );
        assert!(
            s.lines()
                .any(|l| l.trim_start().starts_with("rx_frames") && l.ends_with(" 10")),
            "{s}"
        );
        assert!(s.contains("tx_redirected[198.18.0.3]"), "{s}");
        assert!(s.contains("drop_runt"), "{s}");
    }

    #[test]
    fn rates_are_deltas_per_second() {
        let s = render_rates(&sample(10), &sample(30), 2.0);
        assert!(
            s.lines()
                .any(|l| l.contains("rx_frames") && l.trim_end().ends_with("10/s")),
            "{s}"
        );
    }
}
