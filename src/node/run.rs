//! `proxyha run`: one node in the foreground.
//!
//! Start-up, in order: signals ([`super::shutdown`]), the scanning side
//! ([`super::setup`]), the XDP filter and its maps ([`super::xdp`]), one
//! AF_XDP socket and one pinned worker per queue ([`super::workers`]), the
//! probe thread ([`super::probe`]), the admin socket ([`super::admin`]),
//! then the control loop ([`crate::control::Plane`]) on the main thread.
//! SIGINT/SIGTERM stop it gracefully (see [`super::shutdown`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::control::Plane;
use crate::dataplane::Shared;
use crate::dataplane::classify::Filter as DpFilter;
use crate::dataplane::shared::{CONTROL_BUDGET, VRRP_QUEUE};
use crate::dataplane::stats::{Latency, Stats};
use crate::heartbeat::format_mac;
use crate::log;

use super::admin::{self, Peer, Request};
use super::iface::Interface;
use super::report::{QueueInfo, Sources, StatsReport};
use super::shutdown::{self, Drain};
use super::xdp::Steering;
use super::{Error, lock, probe, queues, setup, workers};

/// How often the published status and stats snapshots are refreshed.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// How often the dataplane's health (workers alive, link up) is checked.
const HEALTH_EVERY: Duration = Duration::from_millis(100);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The JSON documents the admin socket serves, refreshed by the run loop.
#[derive(Clone, Default)]
struct Published {
    status: Arc<Mutex<String>>,
    stats: Arc<Mutex<String>>,
}

impl Published {
    fn set(slot: &Mutex<String>, json: String) {
        if let Ok(mut s) = slot.lock() {
            *s = json;
        }
    }

    fn get(slot: &Mutex<String>) -> String {
        slot.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Answers one admin request from `peer`.
    fn answer(&self, line: &str, peer: &Peer, draining: &AtomicBool) -> String {
        match Request::parse(line) {
            Ok(Request::Status) => Self::get(&self.status),
            Ok(Request::Stats) => Self::get(&self.stats),
            Ok(r) if r.changes_state() && !peer.may_change() => {
                log!(
                    "node",
                    "refused {:?} from uid {} (pid {}): only root or the daemon's user may change state",
                    r.line(),
                    peer.uid,
                    peer.pid
                );
                admin::error_answer(&format!(
                    "permission denied: {:?} needs root or the daemon's user",
                    r.line()
                ))
            }
            Ok(Request::Drain(on)) => {
                if draining.swap(on, Ordering::Relaxed) != on {
                    log!(
                        "node",
                        "draining {}",
                        if on { "on: no new flows" } else { "off" }
                    );
                }
                serde_json::json!({ "draining": on }).to_string()
            }
            Err(e) => admin::error_answer(&e),
        }
    }
}

/// Runs one node until SIGINT or SIGTERM.
pub fn run(cfg: Config) -> Result<(), Error> {
    log::init(&cfg.node.name);
    // Before anything is touched: a second daemon for this node or this
    // interface stops here and leaves the running one alone.
    let _lock = lock::acquire(&cfg.node.name, &cfg.dataplane.interface)?;
    let stop = shutdown::register()?;
    let iface = Interface::lookup(&cfg.dataplane.interface)?;
    let director = cfg.node.is_director();
    log!(
        "node",
        "starting as {} (priority {}, LBID {}, VRID {}) on {} ({})",
        if director {
            "director"
        } else {
            "scanning node"
        },
        cfg.node.priority,
        cfg.node.lbid,
        cfg.vrrp.vrid,
        iface.name,
        format_mac(&iface.mac)
    );
    let (nqueues, channels) = queues::resolve(&cfg.dataplane, &iface).map_err(Error::Queues)?;
    let setup = setup::apply(&cfg)?;
    let mut steering = Steering::attach(&cfg, &iface, director)?;
    let shared = Shared::new(
        DpFilter::new(cfg.vrrp.vrid, iface.mac),
        cfg.dataplane.maglev_table_size,
    )
    .map_err(crate::control::Error::Maglev)?;
    let available: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let placement = queues::place(&cfg.dataplane.cpus, nqueues as usize, &available);
    // The control thread (this one, and the threads it starts from here on:
    // probe, admin) keeps off the workers' cores where there are enough.
    if let Some(c) = placement.control
        && core_affinity::set_for_current(core_affinity::CoreId { id: c })
    {
        log!("node", "control thread on CPU {c}");
    }
    let workers = workers::spawn_all(
        &cfg,
        nqueues,
        &placement.workers,
        &shared,
        &steering.filter,
        director,
        || steering.offload(),
    )?;

    let start = Instant::now();
    let mut plane = Plane::new(cfg.clone(), iface.mac, shared.clone(), start, unix_ms())?;
    // Set by `proxyha drain`: the node then reports DRAINING in its
    // heartbeats, takes no new flows and keeps the ones it has.
    let draining = Arc::new(AtomicBool::new(false));
    let probe = probe::spawn(&cfg, stop.clone(), draining.clone());
    let published = Published::default();
    let _server = {
        let published = published.clone();
        let access = admin::Access::with_group(cfg.node.control_group.as_deref())?;
        admin::Server::bind(&cfg.node.control_socket, access, move |line, peer| {
            published.answer(line, peer, &draining)
        })?
    };
    log!(
        "node",
        "control socket {}",
        cfg.node.control_socket.display()
    );

    plane.start(start);
    let mut master = false;
    let mut latency = Latency::default();
    let mut control_tx_dropped = 0u64;
    let mut last_publish = start - PUBLISH_EVERY;
    let mut last_health = start;
    let xdp_mode = steering.filter.mode().to_string();
    let queue_info: Vec<QueueInfo> = workers
        .iter()
        .map(|w| QueueInfo {
            queue: w.queue,
            cpu: w.cpu,
            mode: w.bound.clone(),
            need_wakeup: w.need_wakeup,
        })
        .collect();
    let worker_stats: Vec<Arc<Stats>> = workers.iter().map(|w| w.stats.clone()).collect();
    let mut drain = Drain::default();
    loop {
        let now = Instant::now();
        if stop.load(Ordering::Relaxed) && !drain.started() {
            drain.begin(&cfg, &mut plane, now);
        }
        if drain.done(now) {
            break;
        }
        // VRRP first, from every worker (at most one queue's worth each, so
        // that even a forged-advert flood cannot pin the loop here); then a
        // bounded batch of heartbeats and ARP per worker, so a flood of
        // those can neither delay an advert nor the timers.
        for w in &workers {
            for _ in 0..VRRP_QUEUE {
                let Some(cf) = w.queues.vrrp_to_control.pop() else {
                    break;
                };
                plane.handle_frame(now, cf.kind, &cf.data);
            }
        }
        for w in &workers {
            for _ in 0..CONTROL_BUDGET {
                let Some(cf) = w.queues.to_control.pop() else {
                    break;
                };
                plane.handle_frame(now, cf.kind, &cf.data);
            }
        }
        if !drain.started()
            && let Some(h) = probe::take(&probe)
        {
            plane.set_local_health(now, h);
        }
        if now.duration_since(last_health) >= HEALTH_EVERY {
            last_health = now;
            let alive = workers.iter().all(|w| !w.thread.is_finished());
            plane.set_dataplane_healthy(now, alive && iface.is_up());
        }
        if plane.poll_timeout().is_some_and(|t| t <= now) {
            plane.handle_timeout(now);
        }
        // After the control plane's writes of this turn: a node it just
        // marked FAILED leaves the fast path now.
        steering.sync(&shared);
        let mut publish_status = false;
        if plane.is_master() != master {
            master = plane.is_master();
            // The CLI must never see a stale role: publish at once.
            publish_status = true;
            steering.set_master(master);
        }
        while let Some(f) = plane.poll_transmit() {
            if workers[0].queues.from_control.push(f).is_err() {
                control_tx_dropped += 1;
            }
        }
        let publish_all = now.duration_since(last_publish) >= PUBLISH_EVERY;
        if publish_status || publish_all {
            let status = serde_json::to_string(&plane.status(now)).unwrap_or_default();
            Published::set(&published.status, status);
        }
        if publish_all {
            last_publish = now;
            let report = StatsReport::collect(Sources {
                node: &cfg.node.name,
                uptime: now.duration_since(start),
                xdp_mode: &xdp_mode,
                queues: &queue_info,
                workers: &worker_stats,
                latency: &mut latency,
                xdp: steering.filter.stats().ok(),
                fast: steering.fast_path(),
                health: &shared.health,
                control_tx_dropped,
            });
            Published::set(
                &published.stats,
                serde_json::to_string(&report).unwrap_or_default(),
            );
        }
        let budget = plane.sleep_budget(Instant::now(), Duration::from_millis(1));
        thread::sleep(budget.max(Duration::from_micros(200)));
    }

    log!("node", "drained; stopping the dataplane");
    workers::stop_all(&shared, workers);
    steering.release();
    drop(channels);
    drop(setup);
    log!("node", "stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_or_our_user_may_drain_others_may_read() {
        let p = Published::default();
        Published::set(&p.status, "{\"node\":\"n\"}".into());
        let draining = AtomicBool::new(false);
        let stranger = Peer {
            pid: 42,
            uid: 54321,
            gid: 54321,
        };
        assert_eq!(p.answer("status", &stranger, &draining), "{\"node\":\"n\"}");
        if !stranger.may_change() {
            let a = p.answer("drain on", &stranger, &draining);
            assert!(a.contains("permission denied"), "{a}");
            assert!(!draining.load(Ordering::Relaxed));
        }
        let root = Peer {
            pid: 1,
            uid: 0,
            gid: 0,
        };
        assert_eq!(
            p.answer("drain on", &root, &draining),
            "{\"draining\":true}"
        );
        assert!(draining.load(Ordering::Relaxed));
        assert!(
            p.answer("reboot", &root, &draining)
                .contains("unknown request")
        );
    }
}
