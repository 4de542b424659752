//! `proxyha run`: one node in the foreground.
//!
//! Start-up, in order: signals ([`super::shutdown`]), the scanning side
//! ([`super::setup`]), the XDP filter and its maps ([`super::xdp`]), one
//! AF_XDP socket and one pinned worker per queue ([`super::workers`]), the
//! probe thread ([`super::probe`]), the admin socket ([`super::admin`]),
//! then the control loop ([`crate::control::Plane`]) on the main thread.
//! SIGINT/SIGTERM stop it gracefully (see [`super::shutdown`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{ClusterMode, Config};
use crate::control::Plane;
use crate::dataplane::Shared;
use crate::dataplane::classify::Filter as DpFilter;
use crate::dataplane::shared::{CONTROL_BUDGET, VRRP_QUEUE};
use crate::dataplane::stats::{Latency, Stats};
use crate::heartbeat::format_mac;
use crate::log;

use super::admin::{self, Answer, Peer, Request};
use super::announce::Announcer;
use super::events::Hub;
use super::iface::Interface;
use super::notify;
use super::peer_probe::Prober;
use super::report::{EventCounters, QueueInfo, Sources, StatsReport};
use super::shutdown::{self, Drain};
use super::systemd::Notifier;
use super::xdp::Steering;
use super::{Error, lock, probe, queues, reload, setup, workers};

/// How often the published status and stats snapshots are refreshed.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// How often the dataplane's health (workers alive, link up) is checked.
const HEALTH_EVERY: Duration = Duration::from_millis(100);

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The JSON documents the admin socket serves, refreshed by the run loop,
/// and the event stream.
#[derive(Clone, Default)]
struct Published {
    status: Arc<Mutex<String>>,
    stats: Arc<Mutex<String>>,
    events: Arc<Hub>,
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

    /// Answers one admin request from `peer`. A reload is handed to the run
    /// loop over `reload`, and its outcome awaited.
    fn answer(&self, line: &str, peer: &Peer, draining: &AtomicBool, reload: &ReloadTx) -> Answer {
        match Request::parse(line) {
            Ok(Request::Events { follow: false }) => Answer::Once(self.events.recent().join("\n")),
            Ok(Request::Events { follow: true }) => match self.events.subscribe() {
                Ok((first, sub)) => Answer::Stream {
                    first,
                    lines: sub.lines.clone(),
                    hold: Box::new(sub),
                },
                Err(_) => Answer::Once(admin::error_answer(&format!(
                    "too many followers (at most {})",
                    super::events::MAX_SUBSCRIBERS
                ))),
            },
            other => Answer::Once(self.answer_once(other, peer, draining, reload)),
        }
    }

    fn answer_once(
        &self,
        request: Result<Request, String>,
        peer: &Peer,
        draining: &AtomicBool,
        reload: &ReloadTx,
    ) -> String {
        match request {
            Ok(Request::Status) => Self::get(&self.status),
            Ok(Request::Stats) => Self::get(&self.stats),
            Ok(Request::Events { .. }) => admin::error_answer("events: answered as a stream"),
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
            Ok(Request::Reload) => {
                let (tx, rx) = crossbeam::channel::bounded(1);
                if reload.try_send(tx).is_err() {
                    return admin::error_answer("a reload is already under way");
                }
                match rx.recv_timeout(RELOAD_WAIT) {
                    Ok(Ok(changed)) => {
                        serde_json::json!({ "reloaded": true, "changed": changed }).to_string()
                    }
                    Ok(Err(e)) => admin::error_answer(&e),
                    Err(_) => admin::error_answer("the daemon did not finish the reload in time"),
                }
            }
            Err(e) => admin::error_answer(&e),
        }
    }
}

/// A reload asked for over the admin socket, with where to send its outcome.
type ReloadTx = crossbeam::channel::Sender<crossbeam::channel::Sender<Result<Vec<String>, String>>>;

/// How long `proxyha reload` waits for the run loop.
const RELOAD_WAIT: Duration = Duration::from_secs(4);

/// Runs one node until SIGINT or SIGTERM; SIGHUP reloads `path`.
pub fn run(mut cfg: Config, path: &Path) -> Result<(), Error> {
    log::init(&cfg.node.name);
    // Before anything is touched: a second daemon for this node or this
    // interface stops here and leaves the running one alone.
    let _lock = lock::acquire(&cfg.node.name, &cfg.dataplane.interface)?;
    let stop = shutdown::register()?;
    let hup = shutdown::register_reload()?;
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
    let mut setup = setup::apply(&cfg)?;
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
    let (probe, probe_settings) = probe::spawn(&cfg, stop.clone(), draining.clone());
    let mut prober = Prober::new(
        cfg.port_redirects.iter().map(|r| r.proxy_port).collect(),
        (cfg.heartbeat.interval / 4).min(Duration::from_millis(250)),
    );
    let published = Published::default();
    let (reload_tx, reload_rx) = crossbeam::channel::bounded(1);
    let _server = {
        let published = published.clone();
        let draining = draining.clone();
        let access = admin::Access::with_group(cfg.node.control_group.as_deref())?;
        admin::Server::bind_streaming(&cfg.node.control_socket, access, move |line, peer| {
            published.answer(line, peer, &draining, &reload_tx)
        })?
    };
    log!(
        "node",
        "control socket {}",
        cfg.node.control_socket.display()
    );

    // Active-active directors announce the VIP through queue 0's TAP device
    // (see `announce`: the routes die with the daemon).
    let mut announcer = (cfg.cluster.mode == ClusterMode::ActiveActive && director).then(|| {
        Announcer::new(
            cfg.vip_addrs(),
            cfg.cluster.announce_table,
            &workers::tap_name(workers[0].queue),
        )
    });
    let mut notifier = notify::Notifier::spawn(cfg.notify.clone()).map_err(Error::Notify)?;
    let _metrics = match cfg.metrics.listen {
        Some(addr) => {
            let published = published.clone();
            let server = super::http::Server::bind(addr, move || {
                super::metrics::render_json(
                    &Published::get(&published.stats),
                    &Published::get(&published.status),
                )
            })
            .map_err(Error::Metrics)?;
            log!("node", "metrics on http://{addr}/metrics");
            Some(server)
        }
        None => None,
    };

    plane.start(start);
    let mut sd = Notifier::from_env();
    let mut master = false;
    let mut forwarding = None;
    let mut peers: Vec<[u8; 6]> = Vec::new();
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
    let mut publish_now = false;
    let mut ready_sent = false;
    loop {
        let now = Instant::now();
        if stop.load(Ordering::Relaxed) && !drain.started() {
            sd.stopping();
            // Withdraw first: the router stops sending while we still
            // forward what is in flight.
            if let Some(a) = announcer.as_mut() {
                a.set(false, now, unix_ms());
            }
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
        let asked: Option<crossbeam::channel::Sender<_>> = reload_rx.try_recv().ok();
        if (asked.is_some() || hup.swap(false, Ordering::Relaxed)) && !drain.started() {
            sd.reloading();
            let outcome = reload::apply(
                path,
                &mut cfg,
                reload::Parts {
                    plane: &mut plane,
                    steering: &steering,
                    setup: &mut setup,
                    probe: &probe_settings,
                    prober: &mut prober,
                },
                now,
            );
            match &outcome {
                Ok(c) if c.is_empty() => log!("reload", "{}: nothing changed", path.display()),
                Ok(c) => log!("reload", "{}: applied {}", path.display(), c.join(", ")),
                Err(e) => log!("reload", "refused, nothing changed: {e}"),
            }
            if outcome.is_ok() {
                // New commands for the events from now on.
                notifier.reconfigure(cfg.notify.clone());
            }
            publish_now = true;
            sd.ready(&match &outcome {
                Ok(_) => "reloaded".to_string(),
                Err(e) => format!("reload refused: {e}"),
            });
            if let Some(tx) = asked {
                let _ = tx.send(outcome);
            }
        }
        while let Some((id, ip)) = plane.poll_probe() {
            prober.ask(id, ip);
        }
        for (id, alive) in prober.answers() {
            plane.set_proxy_probe(now, id, alive);
        }
        if now.duration_since(last_health) >= HEALTH_EVERY {
            last_health = now;
            let alive = workers.iter().all(|w| !w.thread.is_finished());
            plane.set_dataplane_healthy(now, alive && iface.is_up());
            // The watchdog is petted only while the run loop turns and
            // every worker lives: systemd restarts a hung or broken node.
            if alive {
                sd.pet(now);
            }
            if !ready_sent {
                ready_sent = true;
                sd.ready(&format!(
                    "{} on {} ({} queue(s), XDP {})",
                    if director {
                        "director"
                    } else {
                        "scanning node"
                    },
                    iface.name,
                    workers.len(),
                    xdp_mode
                ));
            }
            let links_down = cfg
                .vrrp
                .track_interfaces
                .iter()
                .any(|n| !super::iface::link_up(n));
            plane.set_links_down(now, links_down);
        }
        if plane.poll_timeout().is_some_and(|t| t <= now) {
            plane.handle_timeout(now);
        }
        // After the control plane's writes of this turn: a node it just
        // marked FAILED leaves the fast path now.
        steering.sync(&shared);
        let mut publish_status = std::mem::take(&mut publish_now);
        if plane.is_master() != master {
            master = plane.is_master();
            // The CLI must never see a stale role: publish at once.
            publish_status = true;
        }
        let fwd = plane.forwarding();
        if forwarding != Some(fwd) {
            forwarding = Some(fwd);
            publish_status = true;
            steering.apply(&fwd);
        }
        // The peer MACs the control plane published for the workers go to
        // the XDP filter too (active-active; empty otherwise).
        let published_filter = shared.filter.load();
        if published_filter.peer_macs != peers {
            peers.clone_from(&published_filter.peer_macs);
            steering.set_peers(&peers);
        }
        if let Some(a) = announcer.as_mut() {
            let was = a.announced();
            let want = plane.announce(draining.load(Ordering::Relaxed), drain.started());
            a.set(want, now, unix_ms());
            publish_status |= a.announced() != was;
        }
        while let Some(f) = plane.poll_transmit() {
            if workers[0].queues.from_control.push(f).is_err() {
                control_tx_dropped += 1;
            }
        }
        // Events in the order they happened, to both their consumers.
        while let Some(mut e) = plane.poll_event() {
            e.unix_ms = unix_ms();
            published.events.publish(&e);
            notifier.send(&e);
        }
        let publish_all = now.duration_since(last_publish) >= PUBLISH_EVERY;
        if publish_status || publish_all {
            let mut st = plane.status(now);
            st.announcement = announcer.as_ref().map(Announcer::status);
            let status = serde_json::to_string(&st).unwrap_or_default();
            Published::set(&published.status, status);
        }
        if publish_all {
            last_publish = now;
            let mut report = StatsReport::collect(Sources {
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
            report.events = EventCounters {
                notify: notifier.counters(),
                followers: published.events.subscribers() as u64,
                followers_dropped: published.events.dropped_subscribers.load(Ordering::Relaxed),
            };
            Published::set(
                &published.stats,
                serde_json::to_string(&report).unwrap_or_default(),
            );
        }
        let budget = plane.sleep_budget(Instant::now(), Duration::from_millis(1));
        thread::sleep(budget.max(Duration::from_micros(200)));
    }

    // The `stop` command (and any still queued) runs before the dataplane goes.
    notifier.finish(cfg.notify.timeout + Duration::from_secs(1));
    log!("node", "drained; stopping the dataplane");
    drop(announcer);
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

    impl Published {
        fn answer_text(
            &self,
            line: &str,
            peer: &Peer,
            draining: &AtomicBool,
            reload: &ReloadTx,
        ) -> String {
            match self.answer(line, peer, draining, reload) {
                Answer::Once(s) => s,
                Answer::Stream { .. } => panic!("{line}: a stream"),
            }
        }
    }

    #[test]
    fn only_root_or_our_user_may_drain_others_may_read() {
        let p = Published::default();
        Published::set(&p.status, "{\"node\":\"n\"}".into());
        let draining = AtomicBool::new(false);
        let (tx, _rx) = crossbeam::channel::bounded(1);
        let stranger = Peer {
            pid: 42,
            uid: 54321,
            gid: 54321,
        };
        assert_eq!(
            p.answer_text("status", &stranger, &draining, &tx),
            "{\"node\":\"n\"}"
        );
        if !stranger.may_change() {
            let a = p.answer_text("drain on", &stranger, &draining, &tx);
            assert!(a.contains("permission denied"), "{a}");
            assert!(!draining.load(Ordering::Relaxed));
        }
        let root = Peer {
            pid: 1,
            uid: 0,
            gid: 0,
        };
        assert_eq!(
            p.answer_text("drain on", &root, &draining, &tx),
            "{\"draining\":true}"
        );
        assert!(draining.load(Ordering::Relaxed));
        assert!(
            p.answer_text("reboot", &root, &draining, &tx)
                .contains("unknown request")
        );
    }
}

#[cfg(test)]
mod event_tests {
    use super::*;
    use crate::control::event::Kind;

    #[test]
    fn events_are_served_recent_and_followed() {
        let p = Published::default();
        let peer = Peer {
            pid: 42,
            uid: 54321,
            gid: 54321,
        };
        let draining = AtomicBool::new(false);
        let ev = |seq| crate::control::Event {
            seq,
            unix_ms: 5,
            node: "n".into(),
            kind: Kind::Master,
            subject: "n".into(),
            ip: std::net::Ipv4Addr::new(198, 18, 0, 1),
            from: "BACKUP".into(),
            to: "MASTER".into(),
            reason: "MasterDown".into(),
            priority: 99,
        };
        p.events.publish(&ev(1));
        let (tx, _rx) = crossbeam::channel::bounded(1);
        match p.answer("events", &peer, &draining, &tx) {
            Answer::Once(s) => assert!(
                s.contains("\"seq\":1") && s.contains("\"event\":\"master\""),
                "{s}"
            ),
            Answer::Stream { .. } => panic!("events without follow is one answer"),
        }
        // Reading needs no permission; following streams the recent, then new.
        let Answer::Stream { first, lines, .. } = p.answer("events follow", &peer, &draining, &tx)
        else {
            panic!("events follow is a stream")
        };
        assert_eq!(first.len(), 1);
        p.events.publish(&ev(2));
        assert!(lines.try_recv().unwrap().contains("\"seq\":2"));
    }
}
