//! Active-active: the VIP announcement, as routes in a kernel routing table
//! that bird2 exports over BGP (docs/active-active.md).
//!
//! proxyha decides, bird2 speaks BGP. While [`Announcer::set`] is given
//! `true`, every VIP sits in table `cluster.announce_table` as
//! `VIP/32 dev proxyha0 proto static`; bird2's kernel protocol learns it
//! (`learn`) and its BGP protocol exports it with this director as next
//! hop. `false` deletes the routes, and bird2 withdraws them.
//!
//! **Why `dev proxyha0`.** That is queue 0's TAP device, which the daemon
//! holds open (non-persistent): when the process dies for any reason,
//! `kill -9` included, the kernel deletes the device and every route
//! through it, and bird2 (which follows interface removals at once) withdraws
//! the VIP. The announcement cannot outlive the daemon, with no supervisor
//! involved. Table `announce_table` is never consulted by the kernel's own
//! forwarding (no `ip rule` points at it); it is only a channel to bird2.
//!
//! **Why the `ip` command.** setup.rs already configures the node through
//! iproute2 (`ip addr`, `ip link`): one tool, whose error messages are the
//! ones operators know, no netlink code of our own to parse replies, and
//! the call happens only when the decision changes (a few times in a
//! daemon's life, a few milliseconds each). A failure is logged and tried
//! again after [`RETRY`].

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::log;

/// How long after a failed `ip route` call the announcer tries again.
pub const RETRY: Duration = Duration::from_secs(1);

/// The announcement as `proxyha status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// `announced`, `withdrawn`, or `failed` (the last call failed).
    pub state: String,
    /// The kernel routing table.
    pub table: u32,
    /// The device the routes point at.
    pub device: String,
    /// Unix milliseconds of the last change (0 = never announced).
    pub since_ms: u64,
    /// The last error, when `state` is `failed`.
    pub error: Option<String>,
}

/// Puts the VIPs into, and takes them out of, the announcement table.
#[derive(Debug)]
pub struct Announcer {
    vips: Vec<Ipv4Addr>,
    table: u32,
    device: String,
    /// What the table holds, as far as we know.
    announced: bool,
    /// What the last call wanted.
    want: bool,
    error: Option<String>,
    retry_at: Option<Instant>,
    since_ms: u64,
}

impl Announcer {
    /// An announcer of `vips` in `table` through `device`. Routes a crashed
    /// run left behind are cleared first (that run's device is gone, so are
    /// its routes; this only matters if the device name was reused).
    pub fn new(vips: Vec<Ipv4Addr>, table: u32, device: &str) -> Announcer {
        let table_s = table.to_string();
        for vip in &vips {
            let _ = ip(&["route", "del", &format!("{vip}/32"), "table", &table_s]);
        }
        Announcer {
            vips,
            table,
            device: device.to_string(),
            announced: false,
            want: false,
            error: None,
            retry_at: None,
            since_ms: 0,
        }
    }

    /// Announces (`true`) or withdraws (`false`); runs `ip` only when that
    /// changes the table (or a failed call is due again). `unix_ms` stamps
    /// the change.
    pub fn set(&mut self, want: bool, now: Instant, unix_ms: u64) {
        let settled = self.error.is_none() && self.announced == want;
        let waiting =
            self.error.is_some() && want == self.want && self.retry_at.is_some_and(|t| now < t);
        if !settled && !waiting {
            self.apply(want, now, unix_ms);
        }
    }

    fn apply(&mut self, want: bool, now: Instant, unix_ms: u64) {
        self.want = want;
        let table = self.table.to_string();
        let mut failed = None;
        for vip in &self.vips {
            let dst = format!("{vip}/32");
            let r = if want {
                ip(&[
                    "route",
                    "replace",
                    &dst,
                    "dev",
                    &self.device,
                    "table",
                    &table,
                    "proto",
                    "static",
                ])
            } else {
                // Gone already is fine: that is what we want.
                match ip(&["route", "del", &dst, "table", &table]) {
                    Err(e) if e.contains("No such process") || e.contains("not found") => Ok(()),
                    r => r,
                }
            };
            if let Err(e) = r {
                failed = Some(e);
            }
        }
        match failed {
            None => {
                if self.announced != want || self.error.is_some() {
                    log!(
                        "announce",
                        "{} {} in table {} (dev {})",
                        if want { "announced" } else { "withdrew" },
                        self.vips
                            .iter()
                            .map(|v| format!("{v}/32"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        self.table,
                        self.device
                    );
                    if unix_ms > 0 {
                        self.since_ms = unix_ms;
                    }
                }
                self.announced = want;
                self.error = None;
                self.retry_at = None;
            }
            Some(e) => {
                if self.error.as_deref() != Some(e.as_str()) {
                    log!(
                        "announce",
                        "cannot {} the VIP in table {}: {e} (trying again every {}s)",
                        if want { "announce" } else { "withdraw" },
                        self.table,
                        RETRY.as_secs()
                    );
                }
                // Unknown: a withdrawal that failed may have left routes.
                self.announced = !want;
                self.error = Some(e);
                self.retry_at = Some(now + RETRY);
            }
        }
    }

    /// Whether the routes are in the table (as far as we know).
    pub fn announced(&self) -> bool {
        self.announced && self.error.is_none()
    }

    /// The `proxyha status` view.
    pub fn status(&self) -> Status {
        Status {
            state: if self.error.is_some() {
                "failed"
            } else if self.announced {
                "announced"
            } else {
                "withdrawn"
            }
            .to_string(),
            table: self.table,
            device: self.device.clone(),
            since_ms: self.since_ms,
            error: self.error.clone(),
        }
    }
}

impl Drop for Announcer {
    /// A clean stop withdraws (a crash loses the device, and so the routes).
    fn drop(&mut self) {
        if self.announced || self.error.is_some() {
            self.apply(false, Instant::now(), 0);
        }
    }
}

/// Runs `ip ARGS`; the error is its stderr.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
