//! `[dataplane]`: the AF_XDP workers.

use super::Validator;
use crate::balance::{flow, maglev};
use crate::config::raw::{CpuList, IntOrString, RawDataplane};
use crate::config::{Dataplane, Error, Offload, OffloadLocal, PollMode, QueueCount, XdpMode};

impl Validator<'_> {
    /// The dataplane settings; without an interface it runs on `default_interface`.
    pub(super) fn dataplane(
        &self,
        rd: RawDataplane,
        default_interface: &str,
    ) -> Result<Dataplane, Error> {
        let interface =
            self.interface("dataplane.interface", rd.interface, Some(default_interface))?;
        let queues = match rd.queues {
            None => QueueCount::All,
            Some(IntOrString::Str(w)) if w == "all" => QueueCount::All,
            Some(IntOrString::Str(w)) => {
                return self.fail(
                    "dataplane.queues",
                    format!("{w:?}"),
                    "must be \"all\" or a number of queues 1..64",
                );
            }
            Some(IntOrString::Int(n)) => {
                QueueCount::Count(self.int("dataplane.queues", Some(n), None, 1, MAX_QUEUES)?)
            }
        };
        let set_channels = rd.set_channels.unwrap_or(false);
        if set_channels && queues == QueueCount::All {
            return self.fail(
                "dataplane.set_channels",
                true,
                "needs dataplane.queues = N (the channel count to set)",
            );
        }
        let cpus = match rd.cpus {
            None => Vec::new(),
            Some(CpuList::Str(s)) => match parse_cpu_list(&s) {
                Some(v) => v,
                None => {
                    return self.fail(
                        "dataplane.cpus",
                        format!("{s:?}"),
                        "must be a CPU list like \"1-3,5\" (CPUs 0..4095)",
                    );
                }
            },
            Some(CpuList::List(c)) => {
                if c.is_empty() {
                    return self.fail("dataplane.cpus", "[]", "must list at least one CPU");
                }
                let mut out = Vec::new();
                for (i, n) in c.into_iter().enumerate() {
                    out.push(self.int(
                        &format!("dataplane.cpus[{i}]"),
                        Some(n),
                        None,
                        0,
                        MAX_CPU,
                    )?);
                }
                out
            }
        };
        let mode = match rd.mode.as_deref() {
            None | Some("auto") => XdpMode::Auto,
            Some("copy") => XdpMode::Copy,
            Some("zero-copy" | "zerocopy") => XdpMode::ZeroCopy,
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
        let offload = match rd.offload.as_deref() {
            None | Some("auto") => Offload::Auto,
            Some("xdp") => Offload::Xdp,
            Some("off") => Offload::Off,
            Some(s) => {
                return self.fail(
                    "dataplane.offload",
                    format!("{s:?}"),
                    "must be \"xdp\", \"off\" or \"auto\"",
                );
            }
        };
        let offload_local = match rd.offload_local.as_deref() {
            None | Some("tap") => OffloadLocal::Tap,
            Some("xdp") => OffloadLocal::Xdp,
            Some(s) => {
                return self.fail(
                    "dataplane.offload_local",
                    format!("{s:?}"),
                    "must be \"tap\" or \"xdp\"",
                );
            }
        };
        if offload == Offload::Off && offload_local == OffloadLocal::Xdp {
            return self.fail(
                "dataplane.offload_local",
                "\"xdp\"",
                "needs dataplane.offload = \"xdp\" or \"auto\"",
            );
        }
        let batch_size: u32 = self.int("dataplane.batch_size", rd.batch_size, Some(64), 1, 1024)?;
        let flow_capacity: u32 = self.int(
            "dataplane.flow_capacity",
            rd.flow_capacity,
            Some(DEFAULT_FLOW_CAPACITY),
            1024,
            1 << 24,
        )?;
        let maglev_table_size: u32 = self.int(
            "dataplane.maglev_table_size",
            rd.maglev_table_size,
            Some(maglev::DEFAULT_SIZE),
            101,
            1_000_003,
        )?;
        // In range, so it fits whichever integer `is_prime` takes.
        if !maglev::is_prime(maglev_table_size as _) {
            return self.fail(
                "dataplane.maglev_table_size",
                maglev_table_size,
                "must be prime",
            );
        }
        let rx_ring = self.ring("dataplane.rx_ring", rd.rx_ring, 2048, 64, 16384)?;
        let tx_ring = self.ring("dataplane.tx_ring", rd.tx_ring, 2048, 64, 16384)?;
        let umem_frames = self.ring("dataplane.umem_frames", rd.umem_frames, 4096, 512, 1 << 18)?;
        if umem_frames < rx_ring {
            return self.fail(
                "dataplane.umem_frames",
                umem_frames,
                &format!("must be at least dataplane.rx_ring ({rx_ring}), to keep the RX ring fed"),
            );
        }
        let frame_size: u32 = self.int(
            "dataplane.frame_size",
            rd.frame_size,
            Some(2048),
            2048,
            4096,
        )?;
        if frame_size != 2048 && frame_size != 4096 {
            return self.fail("dataplane.frame_size", frame_size, "must be 2048 or 4096");
        }
        Ok(Dataplane {
            interface,
            queues,
            set_channels,
            cpus,
            mode,
            poll,
            offload,
            offload_local,
            batch_size,
            flow_capacity,
            maglev_table_size,
            rx_ring,
            tx_ring,
            umem_frames,
            frame_size,
        })
    }

    /// A ring or UMEM size: a power of two in `lo..=hi`.
    fn ring(
        &self,
        key: &str,
        v: Option<i64>,
        default: u32,
        lo: i64,
        hi: i64,
    ) -> Result<u32, Error> {
        let n: u32 = self.int(key, v, Some(default), lo, hi)?;
        if !n.is_power_of_two() {
            return self.fail(key, n, "must be a power of two");
        }
        Ok(n)
    }
}

/// The most queues a node serves, as the file's integer type.
const MAX_QUEUES: i64 = crate::config::MAX_QUEUES as i64;
/// The highest CPU number accepted.
const MAX_CPU: i64 = 4095;

/// Parses a CPU list as the kernel writes it (`0-3,6,8-9`); `None` when
/// malformed, empty, a range runs backwards or a CPU is above 4095.
pub fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for (lo, hi) in crate::config::cpu_ranges(s)? {
        if hi > MAX_CPU as usize {
            return None;
        }
        out.extend(lo..=hi);
    }
    (!out.is_empty()).then_some(out)
}

/// The flow table's default capacity, as the file's integer type.
const DEFAULT_FLOW_CAPACITY: u32 = flow::DEFAULT_CAPACITY as u32;
const _: () = assert!(flow::DEFAULT_CAPACITY <= u32::MAX as usize);

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;
    use proptest::prelude::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,6"), Some(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_cpu_list("1"), Some(vec![1]));
        assert_eq!(parse_cpu_list(" 2 - 3 , 5"), Some(vec![2, 3, 5]));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("1,,2"), None);
        assert_eq!(parse_cpu_list("4096"), None);
        assert_eq!(parse_cpu_list("a"), None);
    }

    proptest! {
        #[test]
        fn cpu_list_parser_never_panics_and_stays_in_range(s in "[0-9,\\- ]{0,24}") {
            if let Some(v) = parse_cpu_list(&s) {
                prop_assert!(!v.is_empty());
                prop_assert!(v.iter().all(|&c| c <= 4095));
            }
        }
    }
}
