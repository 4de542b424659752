//! Per-worker counters and the batch-time histogram.
//!
//! Firecracker style: every counter is a relaxed `AtomicU64` that only its
//! worker writes (a load and a store, no locked instruction) and anyone reads;
//! readers keep the previous [`Snapshot`] and take deltas to show rates. Each
//! worker's block sits in its own cache lines (`CachePadded`), so workers
//! never share a line.
//!
//! The batch-time histogram belongs to the worker. Every
//! [`HISTOGRAM_PERIOD`] it hands its interval histogram over through a small
//! lock-free queue and starts a fresh one; a [`Latency`] reader drains the
//! queue and accumulates. If the queue is full the worker keeps recording
//! into the same histogram and tries again later, so nothing is lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam::queue::ArrayQueue;
use crossbeam::utils::CachePadded;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::classify::DropReason;
use crate::balance::health;

/// How often a worker hands its batch-time histogram over.
pub const HISTOGRAM_PERIOD: Duration = Duration::from_millis(100);

/// Adds `n` to a counter that only the calling thread writes.
#[inline]
pub fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// One worker's counters. Written only by that worker.
        #[derive(Debug)]
        pub struct Counters {
            $($(#[$doc])* pub $name: AtomicU64,)*
            /// Drops, indexed by `DropReason as usize`.
            pub drops: [AtomicU64; DropReason::COUNT],
            /// Frames redirected to each node slot.
            pub tx_redirected: [AtomicU64; health::CAPACITY],
        }

        impl Default for Counters {
            fn default() -> Self {
                Counters {
                    $($name: AtomicU64::new(0),)*
                    drops: std::array::from_fn(|_| AtomicU64::new(0)),
                    tx_redirected: std::array::from_fn(|_| AtomicU64::new(0)),
                }
            }
        }

        /// A copy of counters at one moment (or a delta between two), ready
        /// for `--json`.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Snapshot {
            $($(#[$doc])* pub $name: u64,)*
            /// Drops per reason, by counter name (`drop_runt`, ...), non-zero only.
            pub drops: BTreeMap<String, u64>,
            /// Redirected frames per node slot, non-zero only.
            pub tx_redirected: BTreeMap<u16, u64>,
        }

        impl Counters {
            /// Reads every counter.
            pub fn snapshot(&self) -> Snapshot {
                Snapshot {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                    drops: DropReason::ALL
                        .iter()
                        .map(|&r| (r.name().to_owned(), self.drops[r as usize].load(Ordering::Relaxed)))
                        .filter(|&(_, v)| v != 0)
                        .collect(),
                    tx_redirected: self
                        .tx_redirected
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (i as u16, c.load(Ordering::Relaxed)))
                        .filter(|&(_, v)| v != 0)
                        .collect(),
                }
            }
        }

        impl Snapshot {
            /// `self − earlier`, counter by counter (saturating).
            pub fn delta(&self, earlier: &Snapshot) -> Snapshot {
                Snapshot {
                    $($name: self.$name.saturating_sub(earlier.$name),)*
                    drops: sub_maps(&self.drops, &earlier.drops),
                    tx_redirected: sub_maps(&self.tx_redirected, &earlier.tx_redirected),
                }
            }

            /// Every plain counter by name, in declaration order (the order
            /// `proxyha stats` shows them in), then the drops by reason.
            pub fn counters(&self) -> Vec<(&str, u64)> {
                let mut out = vec![$((stringify!($name), self.$name),)*];
                out.extend(self.drops.iter().map(|(k, v)| (k.as_str(), *v)));
                out
            }

            /// Adds `other` into `self` (summing workers).
            pub fn add(&mut self, other: &Snapshot) {
                $(self.$name += other.$name;)*
                for (k, v) in &other.drops {
                    *self.drops.entry(k.clone()).or_default() += v;
                }
                for (k, v) in &other.tx_redirected {
                    *self.tx_redirected.entry(*k).or_default() += v;
                }
            }
        }
    };
}

fn sub_maps<K: Ord + Clone>(a: &BTreeMap<K, u64>, b: &BTreeMap<K, u64>) -> BTreeMap<K, u64> {
    a.iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(b.get(k).copied().unwrap_or(0))))
        .filter(|&(_, v)| v != 0)
        .collect()
}

counters! {
    /// Frames received from the port.
    rx_frames,
    /// Frames the port accepted for transmission (redirected and control).
    tx_frames,
    /// Frames of this node's own share, delivered to the local stack.
    tx_local,
    /// Frames not ours, delivered to the local stack.
    passed,
    /// Local-stack deliveries refused by the sink (dropped).
    local_sink_full,
    /// VRRP frames queued to the control plane.
    rx_vrrp,
    /// Heartbeat frames queued to the control plane.
    rx_heartbeat,
    /// ARP-for-VIP frames queued to the control plane.
    rx_arp,
    /// Heartbeat and ARP frames dropped because the control queue was full.
    control_queue_full,
    /// VRRP adverts dropped because their own (priority) queue was full.
    vrrp_queue_full,
    /// Control-plane frames transmitted.
    tx_control,
    /// Control-plane frames dropped: no free frame or too big.
    tx_control_dropped,
    /// Flow-table hits.
    flow_hits,
    /// Flow-table misses (new flows, Maglev's choice recorded).
    flow_misses,
    /// Unconfirmed/closing flows evicted to make room.
    flow_evictions,
    /// Flows whose node died, re-picked.
    flow_moved,
    /// Flows forwarded on Maglev's choice without an entry (SYN-flood guard).
    flow_untracked,
    /// Non-SYN packets of unknown flows recorded on probation (evicted first).
    flow_probation,
    /// ICMP errors to a VIP steered to the node owning the quoted flow.
    icmp_steered,
    /// IPv4 fragments to a VIP steered to the node owning their flow.
    frag_steered,
    /// Frames the TX ring refused (dropped).
    ring_full,
    /// Established flows installed into the XDP fast path.
    offload_installs,
    /// Fast-path install batches that failed (the flows stay with the
    /// workers and are tried again at their next packet).
    offload_errors,
    /// Non-empty batches processed.
    batches,
    /// Times the adaptive poller slept.
    idle_waits,
}

/// One worker's statistics: counters plus the histogram handoff queue.
#[derive(Debug)]
pub struct Stats {
    /// The counters, padded to their own cache lines.
    pub counters: CachePadded<Counters>,
    histograms: ArrayQueue<Histogram<u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    /// Zeroed counters and an empty handoff queue.
    pub fn new() -> Stats {
        Stats {
            counters: CachePadded::new(Counters::default()),
            histograms: ArrayQueue::new(4),
        }
    }

    /// The worker's side: offers an interval histogram. Returns it back if
    /// the queue is full (the worker keeps recording into it).
    pub fn offer_histogram(&self, h: Histogram<u64>) -> Result<(), Histogram<u64>> {
        self.histograms.push(h)
    }

    /// Reads the counters.
    pub fn snapshot(&self) -> Snapshot {
        self.counters.snapshot()
    }
}

/// A new batch-time histogram: nanoseconds, 1 ns .. 10 s, 3 significant figures.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid histogram bounds")
}

/// Percentiles of batch processing time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Batches recorded.
    pub batches: u64,
    /// Median, ns.
    pub p50_ns: u64,
    /// 99th percentile, ns.
    pub p99_ns: u64,
    /// 99.9th percentile, ns.
    pub p999_ns: u64,
    /// Maximum, ns.
    pub max_ns: u64,
}

/// The batch-time histogram in fixed buckets, as Prometheus exposes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buckets {
    /// `(upper bound in ns, batches at or below it)`, cumulative, in
    /// [`BUCKET_BOUNDS_NS`] order; the `+Inf` bucket is `count`.
    pub le_ns: Vec<(u64, u64)>,
    /// Batches recorded.
    pub count: u64,
    /// Sum of the batch times, ns: exact to the histogram's precision (3
    /// significant digits, each value counted at the middle of its bin).
    pub sum_ns: u64,
}

/// The batch-time bucket bounds, ns: 1 µs to 100 ms.
pub const BUCKET_BOUNDS_NS: [u64; 14] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    100_000_000,
];

/// The reader's side of the histogram handoff: accumulates every interval
/// histogram the workers handed over.
#[derive(Debug)]
pub struct Latency {
    total: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            total: new_histogram(),
        }
    }
}

impl Latency {
    /// Drains `stats`' handoff queue into the total.
    pub fn collect(&mut self, stats: &Stats) {
        while let Some(h) = stats.histograms.pop() {
            // Same bounds on both sides, so adding cannot fail.
            let _ = self.total.add(&h);
        }
    }

    /// The accumulated histogram.
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.total
    }

    /// The histogram in [`BUCKET_BOUNDS_NS`] buckets.
    pub fn buckets(&self) -> Buckets {
        let h = &self.total;
        let mut per = [0u64; BUCKET_BOUNDS_NS.len()];
        let mut sum = 0u64;
        for v in h.iter_recorded() {
            let value = v.value_iterated_to();
            let n = v.count_at_value();
            sum = sum.saturating_add(h.median_equivalent(value).saturating_mul(n));
            // A bin belongs to a bucket when all of it is at or below the bound.
            if let Some(i) = BUCKET_BOUNDS_NS.iter().position(|&b| value <= b) {
                per[i] += n;
            }
        }
        let mut acc = 0;
        Buckets {
            le_ns: BUCKET_BOUNDS_NS
                .iter()
                .zip(per)
                .map(|(&b, n)| {
                    acc += n;
                    (b, acc)
                })
                .collect(),
            count: h.len(),
            sum_ns: sum,
        }
    }

    /// Percentiles so far.
    pub fn summary(&self) -> LatencySummary {
        let h = &self.total;
        LatencySummary {
            batches: h.len(),
            p50_ns: h.value_at_quantile(0.5),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_count_everything() {
        let s = Stats::new();
        let mut h = new_histogram();
        for (v, n) in [(500u64, 3u64), (1_500, 2), (40_000, 1), (2_000_000_000, 1)] {
            h.record_n(v, n).unwrap();
        }
        s.offer_histogram(h).unwrap();
        let mut l = Latency::default();
        l.collect(&s);
        let b = l.buckets();
        assert_eq!(b.count, 7);
        assert_eq!(b.le_ns[0], (1_000, 3));
        assert_eq!(b.le_ns[1], (2_000, 5));
        assert_eq!(b.le_ns[5], (50_000, 6));
        // The 2 s batch is only in +Inf (count).
        assert_eq!(b.le_ns.last(), Some(&(100_000_000, 6)));
        let exact = 500 * 3 + 1_500 * 2 + 40_000 + 2_000_000_000u64;
        assert!(
            b.sum_ns.abs_diff(exact) * 1000 <= exact,
            "{} vs {exact}",
            b.sum_ns
        );
        assert!(b.le_ns.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn snapshot_delta_and_sum() {
        let s = Stats::new();
        bump(&s.counters.rx_frames, 10);
        bump(&s.counters.drops[DropReason::Runt as usize], 2);
        bump(&s.counters.tx_redirected[3], 7);
        let a = s.snapshot();
        assert_eq!(a.rx_frames, 10);
        assert_eq!(a.drops.get("drop_runt"), Some(&2));
        assert_eq!(a.tx_redirected.get(&3), Some(&7));
        bump(&s.counters.rx_frames, 5);
        bump(&s.counters.tx_redirected[3], 1);
        bump(&s.counters.tx_redirected[4], 1);
        let b = s.snapshot();
        let d = b.delta(&a);
        assert_eq!(d.rx_frames, 5);
        assert!(d.drops.is_empty());
        assert_eq!(d.tx_redirected, BTreeMap::from([(3, 1), (4, 1)]));
        let mut sum = a.clone();
        sum.add(&b);
        assert_eq!(sum.rx_frames, 25);
        assert_eq!(sum.tx_redirected.get(&3), Some(&15));
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains("\"rx_frames\":5"), "{json}");
    }

    #[test]
    fn histogram_handoff_loses_nothing() {
        let s = Stats::new();
        let mut lat = Latency::default();
        let mut h = new_histogram();
        let mut recorded = 0;
        for round in 0..10 {
            for v in 0..100u64 {
                h.record(1000 + v + round).unwrap();
                recorded += 1;
            }
            match s.offer_histogram(h) {
                Ok(()) => h = new_histogram(),
                Err(back) => h = back,
            }
        }
        // The queue holds 4; the rest stayed in `h`.
        lat.collect(&s);
        let _ = s.offer_histogram(h);
        lat.collect(&s);
        assert_eq!(lat.summary().batches, recorded);
        assert!(lat.summary().p50_ns >= 1000);
    }

    #[test]
    fn counters_are_padded() {
        assert!(std::mem::align_of::<CachePadded<Counters>>() >= 64);
    }
}
