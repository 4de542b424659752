//! Signals and the graceful stop.
//!
//! SIGINT and SIGTERM set one flag ([`register`]). The run loop then leaves
//! the cluster before it lets go of anything ([`Drain::begin`]): the node
//! reports its proxy down (so the Active Director drops it from the
//! balancing set at the next heartbeat instead of after `misses`
//! intervals), a director sends its priority-0 advert (the Backup takes
//! over after Skew_Time), and the loop keeps running for one heartbeat
//! interval so that in-flight flows still find the VIP and the reply goes
//! out. Only then are the workers stopped and the XDP program, the unicast
//! MAC and the scanning-side setup released, in that order.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::control::Plane;
use crate::heartbeat::LocalHealth;
use crate::log;
use crate::wire::heartbeat::Ports;

use super::Error;

/// The flag SIGINT and SIGTERM set.
pub fn register() -> Result<Arc<AtomicBool>, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(Error::Signal)?;
    }
    Ok(stop)
}

/// The flag SIGHUP sets: reload the config (the run loop clears it).
pub fn register_reload() -> Result<Arc<AtomicBool>, Error> {
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .map_err(Error::Signal)?;
    Ok(reload)
}

/// The drain phase of a graceful stop.
#[derive(Debug, Default)]
pub struct Drain {
    until: Option<Instant>,
}

impl Drain {
    /// Whether the drain has begun (the probe's samples are then ignored).
    pub fn started(&self) -> bool {
        self.until.is_some()
    }

    /// Leaves the cluster: proxy reported down, priority-0 advert, and a
    /// deadline one heartbeat interval (+300 ms) away.
    pub fn begin(&mut self, cfg: &Config, plane: &mut Plane, now: Instant) {
        let drain = cfg.heartbeat.interval + Duration::from_millis(300);
        log!(
            "node",
            "stopping: leaving the cluster, draining for {drain:?}"
        );
        let down = vec![false; cfg.port_redirects.len()];
        plane.set_local_health(
            now,
            LocalHealth {
                ports: Ports::from_results(&down),
                ..LocalHealth::default()
            },
        );
        plane.shutdown(now);
        self.until = Some(now + drain);
    }

    /// Whether the drain is over.
    pub fn done(&self, now: Instant) -> bool {
        self.until.is_some_and(|t| now >= t)
    }
}
