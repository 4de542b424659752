//! What `proxyha stats` returns: one typed report, built by one constructor
//! ([`StatsReport::collect`]) that the daemon and the perf lab's director
//! both call, and read back by the CLI with the same type.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::balance::health;
use crate::dataplane::stats::{Latency, LatencySummary, Snapshot, Stats};
use crate::xsk::FilterStats;

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
    /// All workers summed.
    pub total: Snapshot,
    pub per_worker: Vec<Snapshot>,
    /// Batch processing time since start.
    pub batch_time: LatencySummary,
    /// The XDP filter's counters (absent when they could not be read).
    pub xdp: Option<FilterStats>,
    /// Health-table slot → node IPv4, to read `tx_redirected`.
    pub slots: Vec<(u16, Ipv4Addr)>,
    /// Frames the control plane could not queue to a worker.
    pub control_tx_dropped: u64,
}

/// What a report is made of; the constructor's argument.
pub struct Sources<'a> {
    pub node: &'a str,
    pub uptime: Duration,
    pub xdp_mode: &'a str,
    pub bind_mode: &'a [String],
    /// Every worker's counters, in queue order.
    pub workers: &'a [Arc<Stats>],
    /// The batch-time accumulator; drained from the workers here.
    pub latency: &'a mut Latency,
    pub xdp: Option<FilterStats>,
    pub health: &'a health::Table,
    pub control_tx_dropped: u64,
}

impl StatsReport {
    /// Reads every worker's counters once and sums them.
    pub fn collect(src: Sources<'_>) -> StatsReport {
        let mut total = Snapshot::default();
        let mut per_worker = Vec::with_capacity(src.workers.len());
        for w in src.workers {
            src.latency.collect(w);
            let s = w.snapshot();
            total.add(&s);
            per_worker.push(s);
        }
        StatsReport {
            node: src.node.to_owned(),
            uptime_ms: u64::try_from(src.uptime.as_millis()).unwrap_or(u64::MAX),
            workers: src.workers.len(),
            xdp_mode: src.xdp_mode.to_owned(),
            bind_mode: src.bind_mode.to_vec(),
            total,
            per_worker,
            batch_time: src.latency.summary(),
            xdp: src.xdp,
            slots: src
                .health
                .nodes()
                .into_iter()
                .filter_map(|(slot, n)| Some((u16::try_from(slot).ok()?, n.ip)))
                .collect(),
            control_tx_dropped: src.control_tx_dropped,
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
            bind_mode: &["copy".into(), "copy".into()],
            workers: &workers,
            latency: &mut latency,
            xdp: Some(FilterStats {
                rx_frames: 9,
                ..FilterStats::default()
            }),
            health: &health,
            control_tx_dropped: 1,
        });
        assert_eq!(r.total.rx_frames, 7);
        assert_eq!(r.per_worker.len(), 2);
        assert_eq!(r.uptime_ms, 1500);
        let back: StatsReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
