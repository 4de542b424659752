//! `proxyha run`: one node in the foreground.
//!
//! Start-up, in order: the scanning side ([`crate::node_setup`]), the XDP
//! filter and its maps ([`crate::xsk::Filter`]), one AF_XDP socket and one
//! pinned worker per queue ([`crate::dataplane::worker`]), the probe thread,
//! the control socket ([`crate::ctl`]), then the control loop
//! ([`crate::control::Plane`]) on the main thread. SIGINT/SIGTERM stop it:
//! a director first sends its priority-0 advert, then the workers stop, the
//! XDP program is detached and the scanning-side setup is undone.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use thiserror::Error;

use crate::config::{Config, PollMode, XdpMode};
use crate::control::{self, Plane};
use crate::ctl;
use crate::dataplane::classify::Filter as DpFilter;
use crate::dataplane::redirect::LocalSink;
use crate::dataplane::stats::{Latency, LatencySummary, Snapshot, Stats};
use crate::dataplane::worker::{self, Queues, Shared, Worker};
use crate::heartbeat::{LocalHealth, local};
use crate::ifinfo::{self, Interface};
use crate::log;
use crate::node_setup;
use crate::xsk;

/// Why the daemon could not start.
#[derive(Debug, Error)]
pub enum Error {
    #[error("{0}")]
    Interface(#[from] ifinfo::Error),
    #[error("node setup: {0}")]
    Setup(#[from] node_setup::Error),
    #[error("XDP/AF_XDP: {0}")]
    Xsk(#[from] xsk::Error),
    #[error("control plane: {0}")]
    Control(#[from] control::Error),
    #[error("control socket: {0}")]
    Ctl(#[from] ctl::Error),
    #[error("signals: {0}")]
    Signal(std::io::Error),
    #[error("worker for queue {queue} failed to start: {detail}")]
    Worker { queue: u32, detail: String },
    #[error("{0}")]
    Config(String),
}

/// A worker's local sink: the TAP device into this node's own stack. The
/// destination MAC is rewritten to the TAP's so the kernel accepts the frame.
struct TapDelivery {
    tap: xsk::TapSink,
    buf: Vec<u8>,
}

impl LocalSink for TapDelivery {
    fn deliver(&mut self, frame: &[u8]) -> bool {
        if frame.len() < 14 {
            return false;
        }
        self.buf.clear();
        self.buf.extend_from_slice(frame);
        self.buf[..6].copy_from_slice(&self.tap.mac());
        self.tap.deliver(&self.buf).is_ok()
    }
}

/// A frame sink for scanning nodes: they steer only heartbeats to their
/// socket, so anything else reaching the worker is dropped and counted.
struct NoLocal;

impl LocalSink for NoLocal {
    fn deliver(&mut self, _frame: &[u8]) -> bool {
        false
    }
}

/// What `proxyha stats` returns.
#[derive(Debug, Clone, Serialize)]
pub struct StatsReport {
    pub node: String,
    pub uptime_ms: u64,
    pub workers: usize,
    pub xdp_mode: String,
    pub bind_mode: Vec<String>,
    /// All workers summed.
    pub total: Snapshot,
    pub per_worker: Vec<Snapshot>,
    /// Batch processing time since start.
    pub batch_time: LatencySummary,
    /// The XDP filter's counters.
    pub xdp: serde_json::Value,
    /// Health-table slot → node IPv4, to read `tx_redirected`.
    pub slots: Vec<(u16, Ipv4Addr)>,
    /// Frames the control plane could not queue to a worker.
    pub control_tx_dropped: u64,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn worker_config(cfg: &Config) -> worker::Config {
    let polling = match cfg.dataplane.poll {
        PollMode::Busy => worker::Polling::Busy,
        // Wake at least every 2 ms so that control frames (adverts at 10 cs
        // in VRRPv3, heartbeats) queued while the worker sleeps go out
        // promptly; an arriving frame wakes it at once anyway.
        PollMode::Adaptive => worker::Polling::Adaptive {
            idle_polls: 256,
            wait: Duration::from_millis(2),
        },
    };
    worker::Config {
        batch: cfg.dataplane.batch_size as usize,
        polling,
        flow_capacity: cfg.dataplane.flow_capacity as usize,
        ..worker::Config::default()
    }
}

struct WorkerHandle {
    queue: u32,
    queues: Queues,
    stats: Arc<Stats>,
    thread: JoinHandle<()>,
    bound: String,
}

fn spawn_worker(
    cfg: &Config,
    queue: u32,
    core: Option<core_affinity::CoreId>,
    shared: &Shared,
    filter: &Arc<xsk::Filter>,
    director: bool,
) -> Result<WorkerHandle, Error> {
    let ifname = cfg.dataplane.interface.clone();
    let sock_cfg = xsk::SocketConfig {
        mode: match cfg.dataplane.mode {
            XdpMode::Auto => xsk::BindMode::Auto,
            XdpMode::Copy => xsk::BindMode::Copy,
            XdpMode::ZeroCopy => xsk::BindMode::ZeroCopy,
        },
        ..xsk::SocketConfig::default()
    };
    let queues = Queues::new(1024);
    let stats = Arc::new(Stats::new());
    let wcfg = worker_config(cfg);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<String, String>>();
    let (shared2, queues2, stats2, filter2) = (
        shared.clone(),
        queues.clone(),
        stats.clone(),
        filter.clone(),
    );
    let thread = thread::Builder::new()
        .name(format!("proxyha-w{queue}"))
        .spawn(move || {
            if let Some(c) = core
                && !core_affinity::set_for_current(c)
            {
                log!(
                    "dataplane",
                    "worker {queue}: could not pin to core {}",
                    c.id
                );
            }
            let sock = match xsk::Socket::open(&ifname, queue, &sock_cfg) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            if let Err(e) = filter2.add_socket(&sock) {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
            let bound = sock.bound().to_string();
            if director {
                let tap = match xsk::TapSink::open(&format!("proxyha{queue}")) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(bound));
                let sink = TapDelivery {
                    tap,
                    buf: Vec::with_capacity(2048),
                };
                Worker::new(sock, sink, wcfg, &shared2, queues2, stats2).run();
            } else {
                let _ = ready_tx.send(Ok(bound));
                Worker::new(sock, NoLocal, wcfg, &shared2, queues2, stats2).run();
            }
            let _ = filter2.remove_socket(queue);
        })
        .map_err(|e| Error::Worker {
            queue,
            detail: e.to_string(),
        })?;
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(bound)) => Ok(WorkerHandle {
            queue,
            queues,
            stats,
            thread,
            bound,
        }),
        Ok(Err(detail)) => {
            let _ = thread.join();
            Err(Error::Worker { queue, detail })
        }
        Err(_) => Err(Error::Worker {
            queue,
            detail: "did not report within 10 s".into(),
        }),
    }
}

/// The probe thread: every heartbeat interval, checks the proxy ports,
/// counts established connections and samples CPU load.
fn spawn_prober(
    cfg: &Config,
    out: Arc<Mutex<Option<LocalHealth>>>,
    stop: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
) {
    let ports: Vec<u16> = cfg.port_redirects.iter().map(|r| r.proxy_port).collect();
    let vip = cfg.virtual_ips[0].address.address();
    let interval = cfg.heartbeat.interval;
    let targets: Vec<SocketAddr> = ports.iter().map(|&p| SocketAddr::from((vip, p))).collect();
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
                if let Ok(mut g) = out.lock() {
                    *g = Some(health);
                }
                let until = Instant::now() + interval;
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(20));
                }
            }
        });
}

/// Runs one node until SIGINT or SIGTERM.
pub fn run(cfg: Config) -> Result<(), Error> {
    log::init(&cfg.node.name);
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(Error::Signal)?;
    }
    if cfg.vrrp.interface != cfg.dataplane.interface {
        return Err(Error::Config(format!(
            "vrrp.interface ({}) and dataplane.interface ({}) must be the same interface",
            cfg.vrrp.interface, cfg.dataplane.interface
        )));
    }
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
        crate::heartbeat::format_mac(&iface.mac)
    );
    let setup = node_setup::apply(&cfg)?;

    if xsk::ensure_bpffs()? {
        log!("xdp", "mounted bpffs at /sys/fs/bpf");
    }
    let stale = xsk::detach_stale(&iface.name)?;
    if stale > 0 {
        log!(
            "xdp",
            "detached {stale} stale proxyha program(s) left by a crash"
        );
    }
    let filter = Arc::new(xsk::Filter::attach(&iface.name, xsk::AttachMode::Auto)?);
    log!(
        "xdp",
        "filter attached to {} in {} mode",
        iface.name,
        filter.mode()
    );
    let vips = cfg.vip_addrs();
    let ports: Vec<u16> = cfg.redirected_ports().collect();
    filter.set_vips(&vips)?;
    filter.set_ports(xsk::L4::Tcp, &ports)?;
    let mut fcfg = xsk::FilterConfig::director(cfg.vrrp.vrid, false);
    if !director {
        fcfg.flags = xsk::FLAG_HEARTBEAT;
    }
    filter.set_config(&fcfg)?;

    let shared = Shared::new(
        DpFilter::new(cfg.vrrp.vrid, iface.mac),
        cfg.dataplane.maglev_table_size,
    )
    .map_err(control::Error::Maglev)?;

    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let mut workers = Vec::new();
    for (i, &q) in cfg.dataplane.queues.iter().enumerate() {
        let core = match cfg.dataplane.cores.get(i) {
            Some(&id) => Some(core_affinity::CoreId { id }),
            None if !cores.is_empty() => Some(cores[i % cores.len()]),
            None => None,
        };
        let w = spawn_worker(&cfg, q, core, &shared, &filter, director)?;
        log!(
            "dataplane",
            "worker {q} on core {} ({} mode, {:?} polling, batch {})",
            core.map_or("any".into(), |c| c.id.to_string()),
            w.bound,
            cfg.dataplane.poll,
            cfg.dataplane.batch_size
        );
        workers.push(w);
    }

    let start = Instant::now();
    let mut plane = Plane::new(cfg.clone(), iface.mac, shared.clone(), start, unix_ms())?;
    let probe = Arc::new(Mutex::new(None));
    // Set by `proxyha drain`: the node then reports DRAINING in its
    // heartbeats, takes no new flows and keeps the ones it has.
    let draining = Arc::new(AtomicBool::new(false));
    spawn_prober(&cfg, probe.clone(), stop.clone(), draining.clone());

    // The control socket reads snapshots the loop refreshes.
    let status_json = Arc::new(Mutex::new(String::from("{}")));
    let stats_json = Arc::new(Mutex::new(String::from("{}")));
    let (s1, s2) = (status_json.clone(), stats_json.clone());
    let _server = ctl::Server::bind(&cfg.node.control_socket, move |req| match req {
        "status" => s1.lock().map(|s| s.clone()).unwrap_or_default(),
        "stats" => s2.lock().map(|s| s.clone()).unwrap_or_default(),
        "drain on" | "drain off" => {
            let on = req == "drain on";
            if draining.swap(on, Ordering::Relaxed) != on {
                log!(
                    "node",
                    "draining {}",
                    if on { "on: no new flows" } else { "off" }
                );
            }
            serde_json::json!({ "draining": on }).to_string()
        }
        other => serde_json::json!({ "error": format!("unknown request {other:?}") }).to_string(),
    })?;
    log!(
        "node",
        "control socket {}",
        cfg.node.control_socket.display()
    );

    plane.start(start);
    let mut master = false;
    let mut unicast_mac: Option<xsk::UnicastMac> = None;
    let mut latency = Latency::default();
    let mut control_tx_dropped = 0u64;
    let mut last_publish = start - Duration::from_secs(1);
    let mut last_health = start;
    let xdp_mode = filter.mode().to_string();
    let bind_mode: Vec<String> = workers.iter().map(|w| w.bound.clone()).collect();

    // A graceful stop leaves the cluster before it lets go of anything: the
    // node reports its proxy down (so the Active Director drops it from the
    // balancing set at the next heartbeat instead of after `misses`
    // intervals), a director sends its priority-0 advert (the Backup takes
    // over after Skew_Time), and the loop keeps running for one heartbeat
    // interval so that in-flight flows still find the VIP and the reply goes out.
    let mut drain_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if stop.load(Ordering::Relaxed) && drain_until.is_none() {
            let drain = cfg.heartbeat.interval + Duration::from_millis(300);
            log!(
                "node",
                "stopping: leaving the cluster, draining for {drain:?}"
            );
            let down = vec![false; cfg.port_redirects.len()];
            plane.set_local_health(
                now,
                LocalHealth {
                    ports: crate::wire::heartbeat::Ports::from_results(&down),
                    ..LocalHealth::default()
                },
            );
            plane.shutdown(now);
            drain_until = Some(now + drain);
        }
        if drain_until.is_some_and(|t| now >= t) {
            break;
        }
        for w in &workers {
            while let Some(cf) = w.queues.to_control.pop() {
                plane.handle_frame(now, cf.kind, &cf.data);
            }
        }
        if drain_until.is_none()
            && let Some(h) = probe.lock().ok().and_then(|mut g| g.take())
        {
            plane.set_local_health(now, h);
        }
        if now.duration_since(last_health) >= Duration::from_millis(100) {
            last_health = now;
            let alive = workers.iter().all(|w| !w.thread.is_finished());
            plane.set_dataplane_healthy(now, alive && iface.is_up());
        }
        if plane.poll_timeout().is_some_and(|t| t <= now) {
            plane.handle_timeout(now);
        }
        let mut publish_now = false;
        if plane.is_master() != master {
            master = plane.is_master();
            // The CLI must never see a stale role: publish at once.
            publish_now = true;
            if let Err(e) = filter.set_active(master) {
                log!("xdp", "cannot set the active flag: {e}");
            }
            unicast_mac = None;
            if master {
                match xsk::UnicastMac::add(&iface.name, cfg.vrrp.virtual_mac()) {
                    Ok(m) => unicast_mac = Some(m),
                    Err(e) => log!("xdp", "cannot add the virtual MAC to {}: {e}", iface.name),
                }
            }
        }
        while let Some(f) = plane.poll_transmit() {
            if workers[0].queues.from_control.push(f).is_err() {
                control_tx_dropped += 1;
            }
        }
        if publish_now && let Ok(mut s) = status_json.lock() {
            *s = serde_json::to_string(&plane.status(now)).unwrap_or_default();
        }
        if now.duration_since(last_publish) >= Duration::from_millis(100) {
            last_publish = now;
            if let Ok(mut s) = status_json.lock() {
                *s = serde_json::to_string(&plane.status(now)).unwrap_or_default();
            }
            let mut total = Snapshot::default();
            let mut per_worker = Vec::new();
            for w in &workers {
                latency.collect(&w.stats);
                let s = w.stats.snapshot();
                total.add(&s);
                per_worker.push(s);
            }
            let report = StatsReport {
                node: cfg.node.name.clone(),
                uptime_ms: now.duration_since(start).as_millis() as u64,
                workers: workers.len(),
                xdp_mode: xdp_mode.clone(),
                bind_mode: bind_mode.clone(),
                total,
                per_worker,
                batch_time: latency.summary(),
                xdp: filter
                    .stats()
                    .map(|s| serde_json::to_value(s).unwrap_or_default())
                    .unwrap_or_default(),
                slots: shared
                    .health
                    .nodes()
                    .into_iter()
                    .filter_map(|(slot, n)| Some((u16::try_from(slot).ok()?, n.ip)))
                    .collect(),
                control_tx_dropped,
            };
            if let Ok(mut s) = stats_json.lock() {
                *s = serde_json::to_string(&report).unwrap_or_default();
            }
        }
        let budget = plane.sleep_budget(Instant::now(), Duration::from_millis(1));
        thread::sleep(budget.max(Duration::from_micros(200)));
    }

    log!("node", "drained; stopping the dataplane");
    shared.stop.store(true, Ordering::Relaxed);
    for w in workers {
        if w.thread.join().is_err() {
            log!("dataplane", "worker {} panicked", w.queue);
        }
    }
    let _ = filter.set_active(false);
    drop(unicast_mac);
    match Arc::try_unwrap(filter) {
        Ok(f) => {
            if let Err(e) = f.detach() {
                log!("xdp", "detach failed: {e}");
            }
        }
        Err(_) => log!("xdp", "filter still shared at exit; detached on drop"),
    }
    drop(setup);
    log!("node", "stopped");
    Ok(())
}
