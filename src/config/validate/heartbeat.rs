//! `[heartbeat]`: node discovery and health. The interval and miss limits
//! are the heartbeat machine's own ([`crate::heartbeat`]).

use std::path::Path;

use super::Validator;
use crate::config::raw::RawHeartbeat;
use crate::config::values::fmt_duration;
use crate::config::{Error, Heartbeat};
use crate::heartbeat::{DEFAULT_INTERVAL, DEFAULT_MISSES, MAX_INTERVAL, MAX_MISSES, MIN_INTERVAL};

/// The shortest HMAC key the file may name.
const MIN_KEY_LEN: usize = 16;

impl Validator<'_> {
    /// The heartbeat settings; the key file resolves against `base`.
    pub(super) fn heartbeat(&self, rh: RawHeartbeat, base: &Path) -> Result<Heartbeat, Error> {
        let interval = self.duration_where(
            "heartbeat.interval",
            rh.interval,
            DEFAULT_INTERVAL,
            |d| (MIN_INTERVAL..=MAX_INTERVAL).contains(&d),
            &format!(
                "must be {}..{}",
                fmt_duration(MIN_INTERVAL),
                fmt_duration(MAX_INTERVAL)
            ),
        )?;
        let misses: u32 = self.int(
            "heartbeat.misses",
            rh.misses,
            Some(DEFAULT_MISSES),
            1,
            i64::from(MAX_MISSES),
        )?;
        let (key_file, key) = match rh.key_file {
            None => (None, None),
            Some(f) => {
                let p = base.join(&f);
                let bytes = match std::fs::read(&p) {
                    Ok(b) => b,
                    Err(e) => {
                        return self.fail(
                            "heartbeat.key_file",
                            format!("{f:?}"),
                            &format!("cannot read: {e}"),
                        );
                    }
                };
                let trimmed: Vec<u8> = bytes.trim_ascii().to_vec();
                if trimmed.len() < MIN_KEY_LEN {
                    return self.fail(
                        "heartbeat.key_file",
                        format!("{f:?}"),
                        &format!("key must be at least {MIN_KEY_LEN} bytes"),
                    );
                }
                (Some(p), Some(trimmed))
            }
        };
        let mut static_nodes = Vec::new();
        for (i, s) in rh.static_nodes.iter().enumerate() {
            static_nodes.push(self.ipv4(&format!("heartbeat.static_nodes[{i}]"), s)?);
        }
        Ok(Heartbeat {
            interval,
            misses,
            key_file,
            key,
            static_nodes,
        })
    }
}
