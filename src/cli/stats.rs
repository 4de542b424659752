//! `proxyha stats`: the dataplane counters of a running node.

use std::fmt::Write;
use std::time::{Duration, Instant};

use crate::node::admin::{self, Request};
use crate::node::report::StatsReport;

/// How many leading counters a rate dump always shows, even at zero
/// (`rx_frames`, `tx_frames`, `tx_local`, `passed`).
const ALWAYS_SHOWN: usize = 4;

fn fetch(path: &std::path::Path) -> Result<StatsReport, String> {
    let a = admin::ask(path, Request::Stats).map_err(|e| e.to_string())?;
    serde_json::from_str(&a).map_err(|e| {
        format!(
            "unexpected answer from {}: {e}: {}",
            path.display(),
            a.trim()
        )
    })
}

/// Every counter of the report by name: the workers' counters in their
/// declared order, the drops by reason, then the frames redirected to each
/// node (named by its IPv4 address).
fn counters(r: &StatsReport) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = r
        .total
        .counters()
        .into_iter()
        .map(|(k, n)| (k.to_owned(), n))
        .collect();
    for (slot, n) in &r.total.tx_redirected {
        let node = r
            .slot_ip(*slot)
            .map_or(format!("slot {slot}"), |ip| ip.to_string());
        out.push((format!("tx_redirected[{node}]"), *n));
    }
    for (slot, c) in &r.fast_per_node {
        let node = r
            .slot_ip(*slot)
            .map_or(format!("slot {slot}"), |ip| ip.to_string());
        out.push((format!("fast_tx[{node}]"), c.packets));
        out.push((format!("fast_tx_bytes[{node}]"), c.bytes));
    }
    out
}

/// Renders one dump.
pub fn render(r: &StatsReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "node: {}  uptime: {:.1}s  workers: {}  xdp: {}  sockets: {}  fast path: {}",
        r.node,
        r.uptime_ms as f64 / 1000.0,
        r.workers,
        r.xdp_mode,
        r.bind_mode.join(","),
        match (r.fast_path, r.fast_flows) {
            (true, Some(n)) => format!("on ({n} of {} flows cached)", crate::xsk::FLOW_ENTRIES),
            (true, None) => "on".to_owned(),
            (false, _) => "off".to_owned(),
        }
    );
    for (k, n) in counters(r) {
        let _ = writeln!(s, "  {k:<34}{n:>14}");
    }
    if !r.queues.is_empty() {
        let _ = writeln!(
            s,
            "  {:<6}{:>5}  {:<10}{:<12}{:>14}{:>14}{:>12}{:>12}{:>10}",
            "queue",
            "cpu",
            "mode",
            "need-wakeup",
            "rx_frames",
            "tx_frames",
            "tx_local",
            "control",
            "drops"
        );
        for q in &r.queues {
            let _ = writeln!(
                s,
                "  {:<6}{:>5}  {:<10}{:<12}{:>14}{:>14}{:>12}{:>12}{:>10}",
                q.queue,
                q.cpu.map_or("any".into(), |c| c.to_string()),
                q.mode,
                if q.need_wakeup { "on" } else { "off" },
                q.rx_frames,
                q.tx_frames,
                q.tx_local,
                q.rx_control,
                q.drops
            );
        }
    }
    let b = &r.batch_time;
    let _ = writeln!(
        s,
        "  batch time (ns): p50 {}  p99 {}  p99.9 {}  max {}  ({} batches)",
        b.p50_ns, b.p99_ns, b.p999_ns, b.max_ns, b.batches
    );
    if let Some(x) = &r.xdp {
        let _ = writeln!(
            s,
            "  xdp program: rx_frames {}  to_xsk_vip {}  to_xsk_arp {}  to_xsk_vrrp {}  \
             to_xsk_heartbeat {}  passed {}  no_socket {}  drop_heartbeat {}  drop_orphan {}  \
             fast_tx {}  fast_local {}  fast_stale {}",
            x.rx_frames,
            x.to_xsk_vip,
            x.to_xsk_arp,
            x.to_xsk_vrrp,
            x.to_xsk_heartbeat,
            x.passed,
            x.no_socket,
            x.drop_heartbeat,
            x.drop_orphan,
            x.fast_tx,
            x.fast_local,
            x.fast_stale
        );
    }
    s
}

/// Renders per-second rates between two dumps.
pub fn render_rates(prev: &StatsReport, cur: &StatsReport, secs: f64) -> String {
    let before: std::collections::BTreeMap<String, u64> = counters(prev).into_iter().collect();
    let mut s = String::new();
    let _ = writeln!(s, "{} rates over {secs:.1}s:", cur.node);
    for (i, (k, n)) in counters(cur).into_iter().enumerate() {
        let d = n.saturating_sub(before.get(&k).copied().unwrap_or(0));
        if d > 0 || i < ALWAYS_SHOWN {
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
            crate::eprintln_safe!("proxyha: {e}");
            return 1;
        }
    };
    let first = match fetch(&path) {
        Ok(v) => v,
        Err(e) => {
            crate::eprintln_safe!("proxyha: {e}");
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
                crate::eprintln_safe!("proxyha: {e}");
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

    fn sample(rx: u64) -> StatsReport {
        serde_json::from_value(serde_json::json!({
            "node": "director-a", "uptime_ms": 1500, "workers": 1, "xdp_mode": "native",
            "bind_mode": ["copy"],
            "total": {"rx_frames": rx, "tx_frames": 5, "tx_local": 1, "passed": 0,
                      "local_sink_full": 0, "rx_vrrp": 0, "rx_heartbeat": 0, "rx_arp": 0,
                      "control_queue_full": 0, "tx_control": 0, "tx_control_dropped": 0,
                      "flow_hits": 0, "flow_misses": 0, "flow_evictions": 0, "flow_moved": 0,
                      "flow_untracked": 0, "ring_full": 0, "batches": 0, "idle_waits": 0,
                      "drops": {"drop_runt": 2}, "tx_redirected": {"1": 4}},
            "per_worker": [],
            "queues": [{"queue": 0, "cpu": 1, "mode": "copy", "need_wakeup": true, "rx_frames": rx,
                        "tx_frames": 5, "tx_local": 1, "rx_control": 2, "drops": 2}],
            "slots": [[1, "198.18.0.3"]],
            "batch_time": {"p50_ns": 100, "p99_ns": 200, "p999_ns": 300, "max_ns": 400, "batches": 9},
            "xdp": {"rx_frames": 10, "to_xsk_vip": 0, "to_xsk_arp": 0, "to_xsk_vrrp": 0,
                    "to_xsk_heartbeat": 0, "passed": 0, "no_socket": 0},
            "control_tx_dropped": 0,
            "fast_path": true,
            "fast_flows": 3,
            "fast_per_node": {"1": {"packets": 7, "bytes": 448}}
        }))
        .expect("a report as the daemon writes it")
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
        assert!(
            s.contains("fast path: on (3 of 262144 flows cached)"),
            "{s}"
        );
        assert!(
            s.lines()
                .any(|l| l.trim_start().starts_with("fast_tx[198.18.0.3]") && l.ends_with(" 7")),
            "{s}"
        );
        assert!(
            s.lines()
                .any(|l| l.trim_start().starts_with("fast_tx_bytes[198.18.0.3]")
                    && l.ends_with(" 448")),
            "{s}"
        );
        let q = s
            .lines()
            .find(|l| l.trim_start().starts_with("0 "))
            .unwrap_or_else(|| panic!("a line for queue 0 in {s}"));
        let cols: Vec<&str> = q.split_whitespace().collect();
        assert_eq!(
            cols,
            ["0", "1", "copy", "on", "10", "5", "1", "2", "2"],
            "{s}"
        );
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
