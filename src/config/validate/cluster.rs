//! `[cluster]`: how the directors share the traffic.

use super::Validator;
use crate::config::raw::RawCluster;
use crate::config::{Cluster, ClusterMode, DEFAULT_ANNOUNCE_TABLE, Error};

/// Kernel routing tables that are not ours to fill: 0 (unspecified), 253
/// (default), 254 (main) and 255 (local).
const RESERVED_TABLES: [i64; 4] = [0, 253, 254, 255];

impl Validator<'_> {
    pub(super) fn cluster(&self, raw: RawCluster) -> Result<Cluster, Error> {
        let mode = match raw.mode.as_deref() {
            None | Some("active-passive") => ClusterMode::ActivePassive,
            Some("active-active") => ClusterMode::ActiveActive,
            Some(other) => {
                return self.fail(
                    "cluster.mode",
                    format!("{other:?}"),
                    "must be \"active-passive\" or \"active-active\"",
                );
            }
        };
        if let Some(t) = raw.announce_table {
            if mode != ClusterMode::ActiveActive {
                return self.fail(
                    "cluster.announce_table",
                    t,
                    "only applies with cluster.mode = \"active-active\"",
                );
            }
            if RESERVED_TABLES.contains(&t) {
                return self.fail(
                    "cluster.announce_table",
                    t,
                    "must not be 0, 253 (default), 254 (main) or 255 (local)",
                );
            }
        }
        let announce_table = self.int(
            "cluster.announce_table",
            raw.announce_table,
            Some(DEFAULT_ANNOUNCE_TABLE),
            1,
            i64::from(u32::MAX),
        )?;
        Ok(Cluster {
            mode,
            announce_table,
        })
    }
}
