//! The perf lab's sinks: a native-XDP drop-and-count program
//! (`perf/lab/bpf/perf_sink.bpf.c`) on each sink's veth, and its counters and
//! latency histogram read back from userspace.
//!
//! The program counts lab frames (IPv4/TCP to the lab port, 64 bytes) and
//! everything else separately. When latency recording is on it reads the
//! generator's 48-bit `bpf_ktime_get_ns()` send time from the payload and
//! counts `now - sent` into a log-linear histogram with [`SUB`] linear
//! sub-buckets per power of two (about 6% resolution), which [`Sink::latency`]
//! turns into an [`hdrhistogram::Histogram`]. Both ends use the same
//! monotonic clock of the one machine, so the difference is the one-way
//! latency from frame build to sink XDP.

use hdrhistogram::Histogram;

use proxyha::bpf::{Map, Program};

use crate::perfgen::{KEY0, Result, XdpAttachment, load, objects};

/// log2 of the linear sub-buckets per power of two (`SUB_BITS` in the C).
pub const SUB_BITS: u32 = 4;
/// Linear sub-buckets per power of two.
pub const SUB: u32 = 1 << SUB_BITS;
/// The highest power of two with its own buckets (`MAX_EXP` in the C).
pub const MAX_EXP: u32 = 40;
/// Number of histogram buckets.
pub const BUCKETS: u32 = (MAX_EXP + 1) * SUB;

/// The bucket of a value, exactly as `bucket_of()` in `perf_sink.bpf.c`
/// (the tests check the buckets against it).
#[cfg(test)]
pub fn bucket_of(v: u64) -> u32 {
    if v < u64::from(SUB) {
        return v as u32;
    }
    let e = 63 - v.leading_zeros();
    if e > MAX_EXP - 1 + SUB_BITS {
        return BUCKETS - 1;
    }
    let b = (e - SUB_BITS + 1) * SUB + ((v >> (e - SUB_BITS)) as u32 & (SUB - 1));
    b.min(BUCKETS - 1)
}

/// The smallest value in bucket `b`.
pub fn bucket_low(b: u32) -> u64 {
    if b < SUB {
        return u64::from(b);
    }
    let e = b / SUB + SUB_BITS - 1;
    let sub = u64::from(b % SUB);
    (1u64 << e) | (sub << (e - SUB_BITS))
}

/// The largest value in bucket `b` (the last bucket also holds everything
/// above it).
pub fn bucket_high(b: u32) -> u64 {
    if b + 1 >= BUCKETS {
        return u64::MAX;
    }
    bucket_low(b + 1) - 1
}

/// A sink's counters, summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Counts {
    /// Lab frames received (and dropped).
    pub frames: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Other frames (ARP, anything not to the lab port).
    pub other: u64,
    /// Frames whose latency was recorded.
    pub lat_samples: u64,
    /// The highest payload sequence number seen (per CPU maximum).
    pub last_seq: u64,
}

/// The drop-and-count program attached to one sink interface.
#[derive(Debug)]
pub struct Sink {
    _attach: Option<XdpAttachment>,
    prog: Program,
    cfg: Map,
    stats: Map,
    lat: Map,
    port: u16,
}

impl Sink {
    /// Loads `perf_sink`, counting frames to TCP `port`, and attaches it in
    /// native mode to `ifname` in namespace `ns`.
    pub fn attach(ns: &str, ifname: &str, port: u16) -> Result<Self> {
        let mut sink = Sink::detached(port)?;
        sink._attach = Some(XdpAttachment::attach(ns, ifname, &sink.prog, false)?);
        Ok(sink)
    }

    /// Loads `perf_sink` without attaching it, for [`Sink::run_once`].
    pub fn detached(port: u16) -> Result<Self> {
        let (prog, [cfg, stats, lat]) = load(
            "perf_sink",
            objects::SINK,
            "perf_sink",
            ["perf_sink_cfg", "perf_sink_stats", "perf_sink_lat"],
        )?;
        let sink = Sink {
            _attach: None,
            prog,
            cfg,
            stats,
            lat,
            port,
        };
        sink.set_latency(false)?;
        Ok(sink)
    }

    /// Runs the program once on `frame` (ordinary test mode) and returns its
    /// XDP verdict. For tests.
    #[cfg(test)]
    pub fn run_once(&self, frame: &[u8]) -> Result<u32> {
        Ok(self.prog.test_run(frame)?.0)
    }

    /// Turns latency recording on or off (it costs a clock read per frame).
    pub fn set_latency(&self, on: bool) -> Result<()> {
        // struct sink_config { dst_port, latency }.
        let cfg: [u32; 2] = [u32::from(self.port), u32::from(on)];
        Ok(self.cfg.update(&KEY0, &cfg)?)
    }

    /// The counters now.
    pub fn counts(&self) -> Result<Counts> {
        let mut c = Counts::default();
        // struct sink_stats { frames, bytes, other, lat_samples, last_seq }.
        for [frames, bytes, other, lat_samples, last_seq] in
            self.stats.lookup_percpu::<_, [u64; 5]>(&KEY0)?
        {
            c.frames += frames;
            c.bytes += bytes;
            c.other += other;
            c.lat_samples += lat_samples;
            c.last_seq = c.last_seq.max(last_seq);
        }
        Ok(c)
    }

    /// Zeroes the counters and the latency histogram.
    pub fn reset(&self) -> Result<()> {
        self.stats.zero(&KEY0)?;
        for b in 0..BUCKETS {
            self.lat.zero(&b)?;
        }
        Ok(())
    }

    /// The raw bucket counts (summed over CPUs), index = bucket.
    pub fn buckets(&self) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(BUCKETS as usize);
        for b in 0..BUCKETS {
            out.push(self.lat.lookup_percpu::<_, u64>(&b)?.iter().sum());
        }
        Ok(out)
    }

    /// The latency histogram in nanoseconds (each sample at its bucket's
    /// midpoint).
    pub fn latency(&self) -> Result<Histogram<u64>> {
        Ok(histogram_from_buckets(&self.buckets()?))
    }
}

/// Builds an hdrhistogram (ns, 3 significant digits) from bucket counts,
/// recording each bucket's samples at its midpoint.
pub fn histogram_from_buckets(buckets: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).expect("3 significant digits is valid");
    for (b, &n) in buckets.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let b = b as u32;
        let lo = bucket_low(b);
        let hi = bucket_high(b).min(lo.saturating_mul(2).max(lo + 1));
        let mid = lo + (hi - lo) / 2;
        // Auto-resizing histogram: recording cannot fail for u64 values.
        let _ = h.record_n(mid.max(1), n);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_values_are_their_own_bucket() {
        for v in 0..u64::from(SUB) {
            assert_eq!(bucket_of(v), v as u32);
            assert_eq!(bucket_low(v as u32), v);
        }
    }

    #[test]
    fn bucket_edges() {
        assert_eq!(bucket_of(16), 16);
        assert_eq!(bucket_low(16), 16);
        assert_eq!(bucket_of(31), 31);
        assert_eq!(bucket_of(32), 32);
        assert_eq!(bucket_low(32), 32);
        assert_eq!(bucket_low(33), 34);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn histogram_percentiles_follow_buckets() {
        let mut b = vec![0u64; BUCKETS as usize];
        b[bucket_of(10_000) as usize] = 99;
        b[bucket_of(1_000_000) as usize] = 1;
        let h = histogram_from_buckets(&b);
        assert_eq!(h.len(), 100);
        let p50 = h.value_at_quantile(0.5) as f64;
        assert!((p50 - 10_000.0).abs() / 10_000.0 < 0.07, "{p50}");
        let max = h.max() as f64;
        assert!((max - 1_000_000.0).abs() / 1_000_000.0 < 0.07, "{max}");
    }

    #[test]
    fn sink_counts_lab_frames_and_their_latency_when_root() {
        use crate::perfgen::{GenConfig, Generator};
        if !proxyha::node::prereq::require_root(
            "sink_counts_lab_frames_and_their_latency_when_root",
        ) {
            return;
        }
        let mut g = Generator::detached(&GenConfig {
            flows: 10,
            ports_per_ip: 10,
            ..crate::perfgen::tests::cfg()
        })
        .unwrap();
        let sink = Sink::detached(9090).unwrap();
        sink.reset().unwrap();
        sink.set_latency(true).unwrap();
        for _ in 0..5 {
            let (_, f) = g.frame().unwrap();
            assert_eq!(sink.run_once(&f).unwrap(), 1, "XDP_DROP");
        }
        // Not a lab frame: another port.
        let (_, mut f) = g.frame().unwrap();
        f[34 + 3] ^= 1;
        sink.run_once(&f).unwrap();
        let c = sink.counts().unwrap();
        assert_eq!(c.frames, 5);
        assert_eq!(c.other, 1);
        assert_eq!(c.bytes, 5 * 64);
        assert_eq!(c.lat_samples, 5);
        assert_eq!(c.last_seq, 4);
        let h = sink.latency().unwrap();
        assert_eq!(h.len(), 5);
        // Built and counted in the same process moments apart: well under 1 s.
        assert!(h.max() < 1_000_000_000, "{}", h.max());
        sink.reset().unwrap();
        assert_eq!(sink.counts().unwrap(), Counts::default());
        // IPv6 lab frames are counted too, with their sequence numbers.
        let mut g6 = Generator::detached(&GenConfig {
            flows: 10,
            ports_per_ip: 10,
            ipv6: true,
            ..crate::perfgen::tests::cfg()
        })
        .unwrap();
        for _ in 0..3 {
            let (_, f) = g6.frame().unwrap();
            assert_eq!(f.len(), 84);
            sink.run_once(&f).unwrap();
        }
        let (_, mut f) = g6.frame().unwrap();
        f[54 + 3] ^= 1;
        sink.run_once(&f).unwrap();
        let c = sink.counts().unwrap();
        assert_eq!((c.frames, c.other, c.bytes), (3, 1, 3 * 84));
        assert_eq!(c.last_seq, 2);
    }

    proptest! {
        #[test]
        fn every_value_lies_in_its_bucket(v in 0u64..(1u64 << 44)) {
            let b = bucket_of(v);
            prop_assert!(b < BUCKETS);
            prop_assert!(bucket_low(b) <= v, "low {} > {}", bucket_low(b), v);
            prop_assert!(v <= bucket_high(b), "high {} < {}", bucket_high(b), v);
        }

        #[test]
        fn buckets_are_monotonic(a in 0u64..(1u64 << 44), d in 0u64..(1u64 << 20)) {
            prop_assert!(bucket_of(a) <= bucket_of(a + d));
        }
    }
}
