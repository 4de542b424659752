//! Which RX queues get a worker, and on which CPU.
//!
//! Every RX queue of the dataplane interface must have a socket: RSS spreads
//! frames (client flows, VRRP adverts, heartbeats, ARP) over all of them,
//! and the XDP filter passes a frame whose queue has no socket to the
//! kernel, which drops what is addressed to the virtual MAC. So
//! `dataplane.queues = "all"` (the default) serves every queue, and
//! `queues = N` refuses to start on an interface with a different count,
//! unless `set_channels = true` makes the NIC use N first (restored on
//! exit by [`ChannelGuard`]).

use std::time::{Duration, Instant};

use crate::config::{Dataplane, MAX_QUEUES, QueueCount};
use crate::log;
use crate::xsk;

use super::iface::Interface;

/// The interface's RX queue count: ethtool's channels where the driver
/// reports them, else the `rx-*` queues in sysfs.
pub fn rx_queue_count(iface: &Interface) -> u32 {
    match xsk::channels(&iface.name) {
        Ok(c) if c.rx_queues() > 0 => c.rx_queues(),
        _ => iface.rx_queues,
    }
}

/// Checks the configured count against the interface's `have` RX queues
/// and returns how many queues to serve, or the error that names the count
/// and the fix.
/// `ethtool_args(n)` is what `ethtool -L IF ...` takes to set `n` queues on
/// this NIC (`combined n`, or `rx n tx n` on NICs without combined channels).
pub fn check_count(
    ifname: &str,
    want: QueueCount,
    have: u32,
    ethtool_args: impl Fn(u32) -> String,
) -> Result<u32, String> {
    if have > MAX_QUEUES {
        return Err(format!(
            "{ifname} has {have} RX queues, more than proxyha serves ({MAX_QUEUES}); set \
             dataplane.queues = {MAX_QUEUES} and dataplane.set_channels = true (or run \
             `ethtool -L {ifname} {}` first)",
            ethtool_args(MAX_QUEUES)
        ));
    }
    let n = match want {
        QueueCount::All => return Ok(have),
        QueueCount::Count(n) => n,
    };
    if n == have {
        return Ok(n);
    }
    let fix = format!(
        "set dataplane.queues = \"all\" (or {have}), or dataplane.set_channels = true to make \
         {ifname} use {n} (or run `ethtool -L {ifname} {}` first)",
        ethtool_args(n)
    );
    if n < have {
        Err(format!(
            "dataplane.queues = {n}, but {ifname} has {have} RX queues: frames the NIC puts on \
             queues {n}..{} would reach no worker; {fix}",
            have - 1
        ))
    } else {
        Err(format!(
            "dataplane.queues = {n}, but {ifname} has only {have} RX queues; {fix}"
        ))
    }
}

/// Restores the NIC's channels on drop (after the workers' sockets closed).
pub struct ChannelGuard {
    ifname: String,
    old: xsk::Channels,
}

impl Drop for ChannelGuard {
    fn drop(&mut self) {
        // The kernel releases AF_XDP sockets asynchronously and refuses some
        // channel changes while they are bound: retry for a while.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match xsk::set_channels(&self.ifname, &self.old) {
                Ok(()) => {
                    log!(
                        "dataplane",
                        "restored {} to {} RX queues",
                        self.ifname,
                        self.old.rx_queues()
                    );
                    return;
                }
                Err(e) if Instant::now() >= deadline => {
                    log!(
                        "dataplane",
                        "cannot restore the channels of {}: {e}",
                        self.ifname
                    );
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// The `ethtool -L` arguments that set `n` RX queues on a NIC with `ch`.
fn ethtool_args(ch: Option<xsk::Channels>, n: u32) -> String {
    match ch {
        Some(c) if c.max_combined == 0 && c.max_rx > 0 => format!("rx {n} tx {n}"),
        _ => format!("combined {n}"),
    }
}

/// The queues to serve, after setting the NIC's channels if asked to.
pub fn resolve(dp: &Dataplane, iface: &Interface) -> Result<(u32, Option<ChannelGuard>), String> {
    let have = rx_queue_count(iface);
    let ch = xsk::channels(&iface.name).ok();
    let hint = |n| ethtool_args(ch, n);
    let (QueueCount::Count(n), true) = (dp.queues, dp.set_channels) else {
        return check_count(&iface.name, dp.queues, have, hint).map(|n| (n, None));
    };
    if n == have {
        return Ok((n, None));
    }
    let old = xsk::channels(&iface.name).map_err(|e| {
        format!(
            "dataplane.set_channels = true, but the channels of {} cannot be read ({e}); \
             set dataplane.queues = \"all\" (or {have}) instead",
            iface.name
        )
    })?;
    let new = old.with_rx_queues(n).ok_or_else(|| {
        format!(
            "dataplane.set_channels = true, but {} allows at most {} RX queues, not {n}",
            iface.name,
            old.max_combined.max(old.max_rx)
        )
    })?;
    xsk::set_channels(&iface.name, &new).map_err(|e| {
        format!(
            "dataplane.set_channels = true, but setting {} to {n} RX queues failed ({e}); \
             set dataplane.queues = \"all\" (or {have}) instead",
            iface.name
        )
    })?;
    let guard = ChannelGuard {
        ifname: iface.name.clone(),
        old,
    };
    log!(
        "dataplane",
        "set {} from {have} to {n} RX queues (restored on exit)",
        iface.name
    );
    // Re-read: a driver may round the count.
    let now = rx_queue_count(&Interface::lookup(&iface.name).map_err(|e| e.to_string())?);
    check_count(&iface.name, dp.queues, now, hint).map(|n| (n, Some(guard)))
}

/// CPU placement: the control thread's CPU (if it gets one of its own) and
/// each worker's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub control: Option<usize>,
    pub workers: Vec<Option<usize>>,
}

/// Places `n` workers. With `configured` CPUs, worker i runs on
/// `configured[i % len]` and the control thread on the first available CPU
/// not in that list. Without, each worker gets a core of its own after the
/// control thread's when there are more cores than workers, else they go
/// round-robin over all cores and the control thread is not pinned.
pub fn place(configured: &[usize], n: usize, available: &[usize]) -> Placement {
    if !configured.is_empty() {
        return Placement {
            control: available.iter().copied().find(|c| !configured.contains(c)),
            workers: (0..n)
                .map(|i| Some(configured[i % configured.len()]))
                .collect(),
        };
    }
    if available.is_empty() {
        return Placement {
            control: None,
            workers: vec![None; n],
        };
    }
    if available.len() > n {
        return Placement {
            control: Some(available[0]),
            workers: available[1..=n].iter().map(|&c| Some(c)).collect(),
        };
    }
    Placement {
        control: None,
        workers: (0..n)
            .map(|i| Some(available[i % available.len()]))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counts_are_checked_with_the_fix_named() {
        let hint = |n| ethtool_args(None, n);
        assert_eq!(check_count("eth0", QueueCount::All, 4, hint), Ok(4));
        assert_eq!(check_count("eth0", QueueCount::Count(4), 4, hint), Ok(4));
        let e = check_count("eth0", QueueCount::Count(2), 4, hint).unwrap_err();
        assert!(
            e.starts_with("dataplane.queues = 2, but eth0 has 4 RX queues"),
            "{e}"
        );
        assert!(e.contains("queues 2..3 would reach no worker"), "{e}");
        assert!(e.contains("dataplane.queues = \"all\" (or 4)"), "{e}");
        assert!(e.contains("dataplane.set_channels = true"), "{e}");
        assert!(e.contains("`ethtool -L eth0 combined 2`"), "{e}");
        let veth = xsk::Channels {
            max_rx: 4,
            max_tx: 4,
            rx: 4,
            tx: 4,
            ..xsk::Channels::default()
        };
        assert_eq!(ethtool_args(Some(veth), 2), "rx 2 tx 2");
        let e = check_count("eth0", QueueCount::All, 96, hint).unwrap_err();
        assert!(
            e.starts_with("eth0 has 96 RX queues, more than proxyha serves (64)"),
            "{e}"
        );
        let e = check_count("eth0", QueueCount::Count(8), 4, hint).unwrap_err();
        assert!(e.contains("has only 4 RX queues"), "{e}");
    }

    #[test]
    fn placement() {
        // 4 cores, 2 workers: control on 0, workers on 1 and 2.
        assert_eq!(
            place(&[], 2, &[0, 1, 2, 3]),
            Placement {
                control: Some(0),
                workers: vec![Some(1), Some(2)]
            }
        );
        // 2 cores, 4 workers: round-robin, control not pinned.
        assert_eq!(
            place(&[], 4, &[0, 1]),
            Placement {
                control: None,
                workers: vec![Some(0), Some(1), Some(0), Some(1)]
            }
        );
        // Configured: worker i on cpus[i % len], control elsewhere.
        assert_eq!(
            place(&[2, 3], 3, &[0, 1, 2, 3]),
            Placement {
                control: Some(0),
                workers: vec![Some(2), Some(3), Some(2)]
            }
        );
        assert_eq!(place(&[], 2, &[]).workers, vec![None, None]);
    }

    proptest! {
        #[test]
        fn every_worker_is_placed_and_avoids_the_control_cpu(
            n in 1usize..64,
            cores in 1usize..16,
        ) {
            let avail: Vec<usize> = (0..cores).collect();
            let p = place(&[], n, &avail);
            prop_assert_eq!(p.workers.len(), n);
            prop_assert!(p.workers.iter().all(|c| c.is_some_and(|c| c < cores)));
            if let Some(c) = p.control {
                prop_assert!(p.workers.iter().all(|w| *w != Some(c)));
            }
        }
    }
}
