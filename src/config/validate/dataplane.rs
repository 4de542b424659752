//! `[dataplane]`: the AF_XDP workers.

use super::Validator;
use crate::balance::{flow, maglev};
use crate::config::raw::RawDataplane;
use crate::config::{Dataplane, Error, PollMode, XdpMode};

impl Validator<'_> {
    /// The dataplane settings; without an interface it runs on `default_interface`.
    pub(super) fn dataplane(
        &self,
        rd: RawDataplane,
        default_interface: &str,
    ) -> Result<Dataplane, Error> {
        let interface =
            self.interface("dataplane.interface", rd.interface, Some(default_interface))?;
        let nqueues: u32 = self.int("dataplane.queues", rd.queues, Some(1), 1, 64)?;
        let queues: Vec<u32> = (0..nqueues).collect();
        let cores = match rd.cores {
            None => Vec::new(),
            Some(c) => {
                if c.len() != queues.len() {
                    return self.fail(
                        "dataplane.cores",
                        format!("{c:?}"),
                        &format!("must list one core per queue ({} queues)", queues.len()),
                    );
                }
                let mut out = Vec::new();
                for (i, n) in c.into_iter().enumerate() {
                    out.push(self.int(&format!("dataplane.cores[{i}]"), Some(n), None, 0, 4095)?);
                }
                out
            }
        };
        let mode = match rd.mode.as_deref() {
            None | Some("auto") => XdpMode::Auto,
            Some("copy") => XdpMode::Copy,
            Some("zero-copy") => XdpMode::ZeroCopy,
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
        Ok(Dataplane {
            interface,
            queues,
            cores,
            mode,
            poll,
            batch_size,
            flow_capacity,
            maglev_table_size,
        })
    }
}

/// The flow table's default capacity, as the file's integer type.
const DEFAULT_FLOW_CAPACITY: u32 = flow::DEFAULT_CAPACITY as u32;
const _: () = assert!(flow::DEFAULT_CAPACITY <= u32::MAX as usize);
