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

/// What the probe checks and how often; a reload replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub targets: Vec<SocketAddr>,
    pub interval: Duration,
}

impl Settings {
    /// The proxy ports at the first VIP, every heartbeat interval.
    pub fn of(cfg: &Config) -> Settings {
        let vip = cfg.virtual_ips[0].address.address();
        Settings {
            targets: cfg
                .port_redirects
                .iter()
                .map(|r| SocketAddr::from((vip, r.proxy_port)))
                .collect(),
            interval: cfg.heartbeat.interval,
        }
    }
}

/// The probe's settings, shared with the run loop (reload).
pub type Shared = Arc<Mutex<Settings>>;

/// Starts the probe; it stops when `stop` is set. `draining` is reported in
/// every sample.
pub fn spawn(cfg: &Config, stop: Arc<AtomicBool>, draining: Arc<AtomicBool>) -> (Latest, Shared) {
    let out: Latest = Arc::new(Mutex::new(None));
    let settings: Shared = Arc::new(Mutex::new(Settings::of(cfg)));
    let shared = settings.clone();
    let latest = out.clone();
    let _ = thread::Builder::new()
        .name("proxyha-probe".into())
        .spawn(move || {
            let mut current = Settings {
                targets: Vec::new(),
                interval: Duration::ZERO,
            };
            let mut probe = local::Probe::new(Vec::new());
            let mut logged = false;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(s) = settings.lock()
                    && *s != current
                {
                    current = s.clone();
                    probe = local::Probe::new(current.targets.clone());
                    probe.timeout = (current.interval / 4).min(Duration::from_millis(250));
                }
                let interval = current.interval;
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
    (out, shared)
}

/// Takes the newest sample, if one arrived since the last call.
pub fn take(latest: &Latest) -> Option<LocalHealth> {
    latest.lock().ok().and_then(|mut g| g.take())
}
