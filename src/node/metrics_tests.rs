//! The renderer on a real control plane's status and a real stats report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::balance::health;
use crate::control::Plane;
use crate::dataplane::Shared;
use crate::dataplane::classify::{DropReason, Filter};
use crate::dataplane::stats::{Latency, Stats, bump, new_histogram};
use crate::node::report::{QueueInfo, Sources};

fn sample() -> (StatsReport, Status) {
    // The lab's Active Director, without its key file.
    let text = include_str!("../../pipelines/cluster-a/director-a.toml").replace(
        "key_file = \"/etc/proxyha/cluster-a.key\"",
        "insecure = true",
    );
    let cfg = crate::config::parse("m.toml", &text, std::path::Path::new(".")).unwrap();
    let mac = [2, 0, 0, 0, 0, 1];
    let shared = Shared::new(Filter::new(51, mac), 65537).unwrap();
    let t0 = Instant::now();
    let mut plane = Plane::new(cfg, mac, shared, t0, 1_764_400_000_000).unwrap();
    plane.start(t0);
    // Alone on the segment: Master after Master_Down_Interval.
    let mut now = t0;
    for _ in 0..100 {
        now += Duration::from_millis(50);
        plane.handle_timeout(now);
        while plane.poll_transmit().is_some() {}
    }
    assert!(plane.is_master());
    let status = plane.status(now);

    let workers = vec![Arc::new(Stats::new()), Arc::new(Stats::new())];
    bump(&workers[0].counters.rx_frames, 30);
    bump(&workers[1].counters.rx_frames, 12);
    bump(&workers[1].counters.drops[DropReason::Runt as usize], 2);
    bump(&workers[0].counters.tx_redirected[0], 5);
    let mut h = new_histogram();
    h.record_n(3_000, 10).unwrap();
    h.record_n(70_000, 2).unwrap();
    workers[0].offer_histogram(h).unwrap();
    let table = health::Table::new();
    let mut latency = Latency::default();
    let q = |queue| QueueInfo {
        queue,
        cpu: None,
        mode: "copy".into(),
        need_wakeup: true,
    };
    let mut report = StatsReport::collect(Sources {
        node: "director-a",
        uptime: Duration::from_millis(2500),
        xdp_mode: "native",
        queues: &[q(0), q(1)],
        workers: &workers,
        latency: &mut latency,
        xdp: Some(crate::xsk::FilterStats::default()),
        health: &table,
        control_tx_dropped: 0,
        fast: None,
    });
    report.events.notify.run = 4;
    // As a fast path with three cached flows reports it.
    report.fast_path = true;
    report.fast_flows = Some(3);
    // Through JSON both ways, as the daemon publishes and the endpoint reads.
    let report: StatsReport =
        serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    let status: Status = serde_json::from_str(&serde_json::to_string(&status).unwrap()).unwrap();
    (report, status)
}

/// `name{labels}` → value, for every sample line.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

fn value(text: &str, key: &str) -> f64 {
    samples(text)
        .into_iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("{key} missing in\n{text}"))
        .1
}

#[test]
fn values_match_the_stats_and_status_documents() {
    let (r, s) = sample();
    let text = render(Some(&r), Some(&s));
    assert_eq!(value(&text, "proxyha_up"), 1.0);
    assert_eq!(value(&text, "proxyha_dataplane_rx_frames_total"), 42.0);
    assert_eq!(
        value(&text, "proxyha_queue_rx_frames_total{queue=\"0\"}"),
        30.0
    );
    assert_eq!(
        value(&text, "proxyha_queue_rx_frames_total{queue=\"1\"}"),
        12.0
    );
    assert_eq!(
        value(
            &text,
            "proxyha_queue_drops_total{queue=\"1\",reason=\"drop_runt\"}"
        ),
        2.0
    );
    assert_eq!(
        value(&text, "proxyha_dataplane_drops_total{reason=\"drop_runt\"}"),
        2.0
    );
    assert_eq!(value(&text, "proxyha_vrrp_state{state=\"Master\"}"), 1.0);
    assert_eq!(value(&text, "proxyha_vrrp_state{state=\"Backup\"}"), 0.0);
    assert_eq!(value(&text, "proxyha_vrrp_became_master_total"), 1.0);
    assert_eq!(value(&text, "proxyha_notify_run_total"), 4.0);
    assert_eq!(value(&text, "proxyha_fastpath_flows"), 3.0);
    assert_eq!(
        value(&text, "proxyha_membership_generation"),
        s.heartbeat["membership"]["generation"].as_f64().unwrap()
    );
    assert_eq!(
        value(
            &text,
            "proxyha_node_state{node=\"director-a\",ip=\"198.18.0.1\",type=\"director\",state=\"NETWORK\"}"
        ),
        1.0
    );
    // The histogram: cumulative buckets, +Inf = count = batches recorded.
    assert_eq!(
        value(
            &text,
            "proxyha_batch_duration_seconds_bucket{le=\"0.000005\"}"
        ),
        10.0
    );
    assert_eq!(
        value(
            &text,
            "proxyha_batch_duration_seconds_bucket{le=\"0.0001\"}"
        ),
        12.0
    );
    assert_eq!(
        value(&text, "proxyha_batch_duration_seconds_bucket{le=\"+Inf\"}"),
        12.0
    );
    assert_eq!(value(&text, "proxyha_batch_duration_seconds_count"), 12.0);
    let sum = value(&text, "proxyha_batch_duration_seconds_sum");
    assert!((sum - 170e-6).abs() < 0.2e-6, "{sum}");
}

#[test]
fn every_metric_is_documented() {
    let (r, s) = sample();
    let text = render(Some(&r), Some(&s));
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let mut missing = Vec::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            if !doc.contains(&format!("`{name}`")) {
                missing.push(name.to_owned());
            }
        }
    }
    assert!(missing.is_empty(), "not in docs/metrics.md: {missing:#?}");
}

#[test]
fn families_are_declared_once_and_samples_grouped() {
    let (r, s) = sample();
    let text = render(Some(&r), Some(&s));
    let mut seen = std::collections::BTreeSet::new();
    let mut current = String::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            current = rest.split(' ').next().unwrap().to_owned();
            assert!(seen.insert(current.clone()), "{current} declared twice");
        } else if !l.starts_with('#') {
            let name = l.split(['{', ' ']).next().unwrap();
            assert!(
                name.starts_with(&current),
                "{name} outside its family {current}"
            );
        }
    }
}

#[test]
fn missing_documents_leave_their_metrics_out() {
    let text = render_json("", "not json");
    assert_eq!(value(&text, "proxyha_up"), 0.0);
    assert_eq!(samples(&text).len(), 1);
    assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

#[test]
fn promtool_accepts_the_output() {
    if !crate::node::prereq::require_tool("promtool_accepts_the_output", "promtool") {
        return;
    }
    use std::io::Write;
    let (r, s) = sample();
    let text = render(Some(&r), Some(&s));
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
