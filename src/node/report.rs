//! What `proxyha stats` returns: one typed report, built by one constructor
//! ([`StatsReport::collect`]) that the daemon and the perf lab's director
//! both call, and read back by the CLI with the same type.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::balance::health;
use crate::dataplane::stats::{Buckets, Latency, LatencySummary, Snapshot, Stats};
use crate::xsk::{FastPath, FilterStats, NodeCounters};

/// The dataplane counters of one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsReport {
    pub node: String,
    pub uptime_ms: u64,
    pub workers: usize,
    /// The XDP attach mode (native, generic).
    pub xdp_mode: String,
    /// Each socket's bind mode (copy, zero-copy), by worker.
    pub bind_mode: Vec<String>,
    /// One entry per RX queue (worker), in queue order.
    #[serde(default)]
    pub queues: Vec<QueueReport>,
    /// All workers summed.
    pub total: Snapshot,
    pub per_worker: Vec<Snapshot>,
    /// Batch processing time since start.
    pub batch_time: LatencySummary,
    /// The same, in the buckets the metrics endpoint exposes.
    #[serde(default)]
    pub batch_time_buckets: Buckets,
    /// The XDP filter's counters (absent when they could not be read).
    pub xdp: Option<FilterStats>,
    /// Whether the XDP fast path is on (docs/dataplane.md).
    #[serde(default)]
    pub fast_path: bool,
    /// What the fast path forwarded, per node slot (non-zero only), beside
    /// the workers' `tx_redirected`: a flow's packets are counted in one or
    /// the other, never both.
    #[serde(default)]
    pub fast_per_node: BTreeMap<u16, NodeCounters>,
    /// Entries of the fast path's flow cache that hold a flow (of any
    /// epoch), out of [`crate::xsk::FLOW_ENTRIES`]; `None` with the fast
    /// path off.
    #[serde(default)]
    pub fast_flows: Option<u64>,
    /// Health-table slot → node IPv4, to read `tx_redirected`.
    pub slots: Vec<(u16, Ipv4Addr)>,
    /// Frames the control plane could not queue to a worker.
    pub control_tx_dropped: u64,
    /// The notification commands and `proxyha events` followers (set by
    /// the daemon after [`collect`](Self::collect); zero elsewhere).
    #[serde(default)]
    pub events: EventCounters,
}

/// Counters of the event consumers (docs/notifications.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCounters {
    /// The notification commands.
    pub notify: crate::node::notify::Counters,
    /// `proxyha events --follow` connections now.
    pub followers: u64,
    /// Followers dropped because they did not keep up (or went away).
    pub followers_dropped: u64,
}

/// A queue's worker as it was started: the fixed half of a [`QueueReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    pub queue: u32,
    /// The CPU its worker is pinned to (`None`: not pinned).
    pub cpu: Option<usize>,
    /// The socket's bind mode: `zero-copy` or `copy`.
    pub mode: String,
    /// Bound with `XDP_USE_NEED_WAKEUP`.
    pub need_wakeup: bool,
}

/// One RX queue: its worker's placement, its socket's mode and its main
/// counters (the full set is in `per_worker`, same order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueReport {
    pub queue: u32,
    pub cpu: Option<usize>,
    pub mode: String,
    pub need_wakeup: bool,
    pub rx_frames: u64,
    pub tx_frames: u64,
    pub tx_local: u64,
    /// VRRP, heartbeat and ARP frames this queue handed to the control plane.
    pub rx_control: u64,
    /// Frames dropped, all reasons.
    pub drops: u64,
}

/// What a report is made of; the constructor's argument.
pub struct Sources<'a> {
    pub node: &'a str,
    pub uptime: Duration,
    pub xdp_mode: &'a str,
    /// Every worker's queue, CPU and mode, in the order of `workers`.
    pub queues: &'a [QueueInfo],
    /// Every worker's counters, in queue order.
    pub workers: &'a [Arc<Stats>],
    /// The batch-time accumulator; drained from the workers here.
    pub latency: &'a mut Latency,
    pub xdp: Option<FilterStats>,
    /// The fast path's maps, when it is on.
    pub fast: Option<&'a FastPath>,
    pub health: &'a health::Table,
    pub control_tx_dropped: u64,
}

impl StatsReport {
    /// Reads every worker's counters once and sums them.
    pub fn collect(src: Sources<'_>) -> StatsReport {
        let mut total = Snapshot::default();
        let mut per_worker = Vec::with_capacity(src.workers.len());
        let mut queues = Vec::with_capacity(src.workers.len());
        for (i, w) in src.workers.iter().enumerate() {
            src.latency.collect(w);
            let s = w.snapshot();
            total.add(&s);
            let info = src.queues.get(i);
            queues.push(QueueReport {
                queue: info.map_or(i as u32, |q| q.queue),
                cpu: info.and_then(|q| q.cpu),
                mode: info.map(|q| q.mode.clone()).unwrap_or_default(),
                need_wakeup: info.is_some_and(|q| q.need_wakeup),
                rx_frames: s.rx_frames,
                tx_frames: s.tx_frames,
                tx_local: s.tx_local,
                rx_control: s.rx_vrrp + s.rx_heartbeat + s.rx_arp,
                drops: s.drops.values().sum(),
            });
            per_worker.push(s);
        }
        StatsReport {
            node: src.node.to_owned(),
            uptime_ms: u64::try_from(src.uptime.as_millis()).unwrap_or(u64::MAX),
            workers: src.workers.len(),
            xdp_mode: src.xdp_mode.to_owned(),
            bind_mode: src.queues.iter().map(|q| q.mode.clone()).collect(),
            queues,
            total,
            per_worker,
            batch_time: src.latency.summary(),
            batch_time_buckets: src.latency.buckets(),
            xdp: src.xdp,
            fast_path: src.fast.is_some(),
            fast_flows: src.fast.and_then(|f| f.len().ok()).map(|n| n as u64),
            fast_per_node: src
                .fast
                .map(|f| {
                    src.health
                        .nodes()
                        .into_iter()
                        .filter_map(|(slot, _)| {
                            let slot = u16::try_from(slot).ok()?;
                            let c = f.node_counters(slot).ok()?;
                            (c.packets > 0).then_some((slot, c))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            slots: src
                .health
                .nodes()
                .into_iter()
                .filter_map(|(slot, n)| Some((u16::try_from(slot).ok()?, n.ip)))
                .collect(),
            control_tx_dropped: src.control_tx_dropped,
            events: EventCounters::default(),
        }
    }

    /// The node's IPv4 address for a health-table slot.
    pub fn slot_ip(&self, slot: u16) -> Option<Ipv4Addr> {
        self.slots
            .iter()
            .find(|(s, _)| *s == slot)
            .map(|(_, ip)| *ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_sums_workers_and_round_trips_as_json() {
        let workers = vec![Arc::new(Stats::new()), Arc::new(Stats::new())];
        crate::dataplane::stats::bump(&workers[0].counters.rx_frames, 3);
        crate::dataplane::stats::bump(&workers[1].counters.rx_frames, 4);
        let health = health::Table::new();
        let mut latency = Latency::default();
        let r = StatsReport::collect(Sources {
            node: "n",
            uptime: Duration::from_millis(1500),
            xdp_mode: "native",
            queues: &[
                QueueInfo {
                    queue: 0,
                    cpu: Some(1),
                    mode: "copy".into(),
                    need_wakeup: true,
                },
                QueueInfo {
                    queue: 1,
                    cpu: None,
                    mode: "zero-copy".into(),
                    need_wakeup: false,
                },
            ],
            workers: &workers,
            latency: &mut latency,
            xdp: Some(FilterStats {
                rx_frames: 9,
                ..FilterStats::default()
            }),
            fast: None,
            health: &health,
            control_tx_dropped: 1,
        });
        assert_eq!(r.total.rx_frames, 7);
        assert_eq!(r.per_worker.len(), 2);
        assert_eq!(r.bind_mode, vec!["copy", "zero-copy"]);
        assert_eq!(r.queues.len(), 2);
        assert_eq!(
            (r.queues[0].queue, r.queues[0].cpu, r.queues[0].rx_frames),
            (0, Some(1), 3)
        );
        assert_eq!(
            (r.queues[1].queue, r.queues[1].cpu, r.queues[1].rx_frames),
            (1, None, 4)
        );
        assert_eq!(r.queues[1].mode, "zero-copy");
        let v = serde_json::to_value(&r).unwrap();
        for key in ["queue", "cpu", "mode", "rx_frames", "need_wakeup"] {
            assert!(v["queues"][0].get(key).is_some(), "queues[0].{key} in {v}");
        }
        assert_eq!(r.uptime_ms, 1500);
        let back: StatsReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
