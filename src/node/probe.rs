//! The probe thread: every heartbeat interval it checks the proxy ports,
//! counts established connections and samples CPU load, and leaves the
//! latest [`LocalHealth`] for the run loop to pick up.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::heartbeat::{LocalHealth, local};
use crate::log;

/// The latest sample, taken by the run loop.
pub type Latest = Arc<Mutex<Option<LocalHealth>>>;

/// Starts the probe; it stops when `stop` is set. `draining` is reported in
/// every sample.
pub fn spawn(cfg: &Config, stop: Arc<AtomicBool>, draining: Arc<AtomicBool>) -> Latest {
    let out: Latest = Arc::new(Mutex::new(None));
    let vip = cfg.virtual_ips[0].address.address();
    let interval = cfg.heartbeat.interval;
    let targets: Vec<SocketAddr> = cfg
        .port_redirects
        .iter()
        .map(|r| SocketAddr::from((vip, r.proxy_port)))
        .collect();
    let latest = out.clone();
    let _ = thread::Builder::new()
        .name("proxyha-probe".into())
        .spawn(move || {
            let mut probe = local::Probe::new(targets);
            probe.timeout = (interval / 4).min(Duration::from_millis(250));
            let mut logged = false;
            while !stop.load(Ordering::Relaxed) {
                let (health, err) = probe.sample(draining.load(Ordering::Relaxed));
                if let Some(e) = err
                    && !logged
                {
                    log!("probe", "{e} (logged once)");
                    logged = true;
                }
                if let Ok(mut g) = latest.lock() {
                    *g = Some(health);
                }
                let until = Instant::now() + interval;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(20));
                }
            }
        });
    out
}

/// Takes the newest sample, if one arrived since the last call.
pub fn take(latest: &Latest) -> Option<LocalHealth> {
    latest.lock().ok().and_then(|mut g| g.take())
}
