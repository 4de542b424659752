//! The AF_XDP director cases, run as a child process inside the director's
//! namespace (`ip netns exec phperf-dir proxyha-perflab director ...`), the
//! way the daemon runs in the lab: `ip netns exec` gives the process its own
//! mount namespace with a fresh /sys, where the xsk filter mounts bpffs
//! without touching the host's mounts.
//!
//! * `proxyha` (case a): proxyha's XDP filter steers VIP:9090 frames to one
//!   AF_XDP socket per queue (copy mode), and `dataplane::Worker` classifies
//!   them, looks the flow up (flow table, else Maglev over the two sinks),
//!   rewrites the MACs and transmits.
//! * `proxyha --offload` (case e): the same, with the XDP fast path: the
//!   workers install established flows, which the filter then forwards
//!   with `XDP_TX`.
//! * `proxyha --own tap|xdp` (cases ot, ox): the director is the only node,
//!   so every flow is its own share, delivered to its stack through a TAP
//!   device per worker (`tap`) or, once installed, from XDP with `XDP_PASS`
//!   (`xdp`, with `--offload`).
//! * `hairpin` (case c): the same filter and socket, and a bare loop that
//!   sets the destination MAC to one of the two sinks (by the source port's
//!   low bit) and transmits: the AF_XDP I/O ceiling with no processing.
//!
//! While it runs, its control socket (`--socket`, the daemon's one-line
//! protocol from `proxyha::node::admin`) answers `stats` with the daemon's own report
//! (`proxyha::node::report::StatsReport`), so `proxyha stats --socket PATH --watch`
//! shows live rates; the harness samples it at the start and end of every
//! repeat.
//!
//! Protocol with the harness: the child prints `ready <tid> <tid>...` (its
//! worker threads) on stdout once its sockets are in the XSKMAP, runs until
//! its stdin closes (or SIGTERM), then prints one JSON line of counters and
//! exits, detaching the filter.

use std::io::{BufRead, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use proxyha::balance::{flow, health, maglev};
use proxyha::dataplane::classify::Filter as Classifier;
use proxyha::dataplane::offload::{Offload, Settings};
use proxyha::dataplane::port::{Frame, Port};
use proxyha::dataplane::redirect::{LocalSink, MemorySink};
use proxyha::dataplane::stats::{Latency, Stats, bump};
use proxyha::dataplane::worker::{self, Polling, Worker};
use proxyha::dataplane::{Queues, Shared};
use proxyha::node::report::{QueueInfo, Sources, StatsReport};
use proxyha::node::workers::TapDelivery;
use proxyha::xsk;

use crate::anyhow_lite::{Context, Error, bail};
use crate::{IF_DIR, MAC_S1, MAC_S2, PORT, VIP, VIP6, VMAC, own_tid, pin_self};

/// Maglev table size (the design's default).
const MAGLEV_M: u32 = 65_537;

/// Which loop the child runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// proxyha's dataplane worker (case a).
    Proxyha,
    /// A bare rx→MAC-set→tx loop (case c).
    Hairpin,
}

/// Arguments of the `director` subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Which loop to run.
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// Queues (one socket and one worker thread each).
    #[arg(long, default_value_t = 1)]
    pub queues: u32,
    /// CPU of each worker, comma-separated (one per queue; the last repeats).
    #[arg(long, default_value = "1")]
    pub cpus: String,
    /// Spin always (`busy`) or sleep in poll(2) after idle polls (`adaptive`).
    #[arg(long, default_value = "busy")]
    pub polling: String,
    /// Preferred busy polling on the sockets (`SO_PREFER_BUSY_POLL`,
    /// `SO_BUSY_POLL` 20 us, `SO_BUSY_POLL_BUDGET` 64), as the daemon sets
    /// with `poll = "busy"`.
    #[arg(long)]
    pub busy_poll: bool,
    /// The XDP fast path (case e; with `--own xdp`, case ox).
    #[arg(long)]
    pub offload: bool,
    /// Every flow is the director's own share, delivered through a TAP
    /// (`tap`) or from XDP (`xdp`, needs `--offload`).
    #[arg(long)]
    pub own: Option<String>,
    /// Flow-table capacity per worker.
    #[arg(long, default_value_t = 1 << 20)]
    pub flow_capacity: usize,
    /// Control socket answering `stats` with the workers' summed counters
    /// (the daemon's protocol, `proxyha::node::admin`), for live rates during a run.
    /// Not under /run/proxyha, where `proxyha` looks for its daemons.
    #[arg(long, default_value = "/run/proxyha-perflab/director.sock")]
    pub socket: std::path::PathBuf,
}

/// Counters the child reports at exit.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// Frames received from the sockets.
    pub rx: u64,
    /// Frames the sockets accepted for transmission.
    pub tx: u64,
    /// Flow-table hits and misses (case a).
    pub flow_hits: u64,
    /// Flow-table misses (new flows).
    pub flow_misses: u64,
    /// The workers' batch-time p50 / p99, ns (case a).
    pub batch_p50_ns: u64,
    /// See above.
    pub batch_p99_ns: u64,
    /// How the sockets were bound.
    pub bound: String,
}

fn cpu_list(s: &str, n: u32) -> Result<Vec<usize>, Error> {
    let v: Vec<usize> = s
        .split(',')
        .map(|c| c.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .context(format!("--cpus {s}"))?;
    let Some(&last) = v.last() else {
        bail!("--cpus is empty");
    };
    Ok((0..n as usize)
        .map(|i| v.get(i).copied().unwrap_or(last))
        .collect())
}

/// The child's main: set up, report ready, run until stdin closes.
pub fn run(args: Args) -> Result<(), Error> {
    let polling = match args.polling.as_str() {
        "busy" => Polling::Busy,
        "adaptive" => Polling::default(),
        other => bail!("--polling {other}: busy or adaptive"),
    };
    let cpus = cpu_list(&args.cpus, args.queues)?;
    let filter = xsk::Filter::attach(IF_DIR, xsk::AttachMode::Native).context("XDP filter")?;
    filter.set_vips(&[VIP]).context("filter VIPs")?;
    // The IPv6 cases' VIP (a6, e6); the IPv4 cases never send to it.
    filter.add_vips6(&[VIP6]).context("filter IPv6 VIPs")?;
    filter
        .set_ports(xsk::L4::Tcp, &[PORT])
        .context("filter ports")?;
    let own_xdp = match args.own.as_deref() {
        None | Some("tap") => false,
        Some("xdp") if args.offload => true,
        Some(other) => bail!("--own {other}: tap, or xdp with --offload"),
    };
    let own = args.own.is_some();
    // With --own the director is the only node (slot 0): every flow is its
    // own share.
    let local_slot = own.then_some(0u16);
    filter
        .set_config(&xsk::FilterConfig::director(VMAC[5], true).with_offload(
            args.offload,
            own_xdp,
            VMAC,
            local_slot,
        ))
        .context("filter config")?;

    // Balancing state for case a: the two sinks, healthy, in a Maglev table.
    let shared = Shared::new(
        Classifier::new(VMAC[5], VMAC)
            .with_vip(VIP)
            .with_vip6(VIP6)
            .with_ports([PORT])
            .with_local_slot(local_slot),
        MAGLEV_M,
    )
    .map_err(|e| Error(e.to_string()))?;
    let nodes: &[(usize, [u8; 6], Ipv4Addr)] = if own {
        &[(0, VMAC, VIP)]
    } else {
        &[
            (0, MAC_S1, Ipv4Addr::new(198, 19, 0, 11)),
            (1, MAC_S2, Ipv4Addr::new(198, 19, 0, 12)),
        ]
    };
    for &(slot, mac, ip) in nodes {
        shared
            .health
            .set(
                slot,
                health::NodeInfo {
                    id: 1000 + slot as u64,
                    mac,
                    ip,
                    state: health::State::Up,
                    weight: 100,
                    connections: 0,
                },
            )
            .map_err(|e| Error(e.to_string()))?;
    }
    let backends = maglev::backends_from_health(&shared.health);
    shared
        .maglev
        .rebuild_if_changed(&backends, MAGLEV_M)
        .map_err(|e| Error(e.to_string()))?;
    filter
        .fast_path()
        .sync_nodes(&shared.health)
        .context("fast-path node slots")?;
    let filter = Arc::new(filter);

    let stop = Arc::new(AtomicBool::new(false));
    let mut sockets = Vec::new();
    for q in 0..args.queues {
        let sock = xsk::Socket::open(
            IF_DIR,
            q,
            &xsk::SocketConfig {
                mode: xsk::BindMode::Copy,
                busy_poll: args.busy_poll.then_some(xsk::BusyPoll {
                    usecs: 20,
                    budget: worker::DEFAULT_BATCH as u32,
                }),
                ..xsk::SocketConfig::default()
            },
        )
        .context(format!("AF_XDP socket on queue {q}"))?;
        if let Err(why) = sock.busy_poll() {
            bail!("queue {q}: the kernel refused the busy-poll options: {why}");
        }
        filter.add_socket(&sock).context("XSKMAP")?;
        sockets.push(sock);
    }
    let bound = sockets
        .first()
        .map(|s| s.bound().to_string())
        .unwrap_or_default();

    let (tid_tx, tid_rx) = std::sync::mpsc::channel::<u32>();
    let mut handles = Vec::new();
    let mut all_stats = Vec::new();
    for (i, sock) in sockets.into_iter().enumerate() {
        let cpu = cpus[i];
        let stats = Arc::new(Stats::new());
        all_stats.push(stats.clone());
        let stop = stop.clone();
        let shared = shared.clone();
        let tid_tx = tid_tx.clone();
        let mode = args.mode;
        let flow_capacity = args.flow_capacity;
        let offload = args.offload.then(|| Settings {
            to: Box::new(ToMap(filter.clone())) as Box<dyn Offload>,
            local: own_xdp,
        });
        // The own share's first packets (and, without --own xdp, all of
        // them) go through the workers into the stack.
        let tap = if own && mode == Mode::Proxyha {
            Some(xsk::TapSink::open(&format!("phtap{i}")).context("TAP device")?)
        } else {
            None
        };
        handles.push(
            thread::Builder::new()
                .name(format!("perflab-w{i}"))
                .spawn(move || -> Report {
                    pin_self(cpu);
                    let _ = tid_tx.send(own_tid().unwrap_or(0));
                    drop(tid_tx);
                    match mode {
                        Mode::Proxyha => {
                            let w = WorkerArgs {
                                polling,
                                flow_capacity,
                                offload,
                            };
                            match tap {
                                Some(t) => run_worker(sock, TapDelivery::new(t), &shared, stats, w),
                                None => run_worker(sock, MemorySink::new(0), &shared, stats, w),
                            }
                        }
                        Mode::Hairpin => run_hairpin(sock, &stop, &stats),
                    }
                })
                .context("spawning a worker")?,
        );
    }
    drop(tid_tx);
    // `proxyha stats --socket PATH [--watch]` reads this: the daemon's own
    // report type, filled from this director's workers and filter.
    let batch = Arc::new(std::sync::Mutex::new(Latency::default()));
    let server =
        {
            let all_stats = all_stats.clone();
            let batch = batch.clone();
            let filter = filter.clone();
            let queue_info: Vec<QueueInfo> = (0..all_stats.len())
                .map(|q| QueueInfo {
                    queue: q as u32,
                    cpu: Some(cpus[q]),
                    mode: bound.clone(),
                    need_wakeup: true,
                })
                .collect();
            let start = std::time::Instant::now();
            let health = shared.health.clone();
            proxyha::node::admin::Server::bind(&args.socket, Default::default(), move |req, _| {
                match req {
                    "stats" => {
                        let mut latency = batch.lock().unwrap_or_else(|e| e.into_inner());
                        let report = StatsReport::collect(Sources {
                            node: "perflab-director",
                            uptime: start.elapsed(),
                            xdp_mode: &filter.mode().to_string(),
                            queues: &queue_info,
                            workers: &all_stats,
                            latency: &mut latency,
                            xdp: filter.stats().ok(),
                            fast: args.offload.then(|| filter.fast_path()),
                            health: &health,
                            control_tx_dropped: 0,
                        });
                        serde_json::to_string(&report).unwrap_or_default()
                    }
                    other => serde_json::json!({ "error": format!("unknown request {other:?}") })
                        .to_string(),
                }
            })
            .context(format!("control socket {}", args.socket.display()))?
        };
    let tids: Vec<String> = tid_rx
        .iter()
        .take(handles.len())
        .map(|t| t.to_string())
        .collect();
    println!("ready {}", tids.join(" "));
    std::io::stdout().flush().ok();

    // Run until stdin closes (the harness drops its end) or a signal.
    let sig = crate::perfgen::stop_flag();
    let eof = Arc::new(AtomicBool::new(false));
    {
        let eof = eof.clone();
        thread::spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                if line.is_err() {
                    break;
                }
            }
            eof.store(true, Ordering::Relaxed);
        });
    }
    while !eof.load(Ordering::Relaxed) && !sig.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(20));
        let mut lat = batch.lock().unwrap_or_else(|e| e.into_inner());
        for st in &all_stats {
            lat.collect(st);
        }
    }
    stop.store(true, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    let mut total = Report {
        bound,
        ..Report::default()
    };
    for h in handles {
        let r = h.join().map_err(|_| Error("a worker panicked".into()))?;
        total.rx += r.rx;
        total.tx += r.tx;
        total.flow_hits += r.flow_hits;
        total.flow_misses += r.flow_misses;
    }
    let b = {
        let mut lat = batch.lock().unwrap_or_else(|e| e.into_inner());
        for st in &all_stats {
            lat.collect(st);
        }
        lat.summary()
    };
    total.batch_p50_ns = b.p50_ns;
    total.batch_p99_ns = b.p99_ns;
    drop(server);
    println!("{}", serde_json::to_string(&total)?);
    drop(filter);
    Ok(())
}

/// The fast path's flow map as a worker's install target (the daemon's is
/// private to `node::xdp`).
struct ToMap(Arc<xsk::Filter>);

impl Offload for ToMap {
    fn install(&mut self, flows: &[(flow::Key, flow::Target)]) -> Result<usize, String> {
        self.0.fast_path().install(flows).map_err(|e| e.to_string())
    }
}

/// A proxyha worker's settings.
struct WorkerArgs {
    polling: Polling,
    flow_capacity: usize,
    offload: Option<Settings>,
}

fn run_worker<S: LocalSink>(
    sock: xsk::Socket,
    sink: S,
    shared: &Shared,
    stats: Arc<Stats>,
    args: WorkerArgs,
) -> Report {
    let mut w = Worker::new(
        sock,
        sink,
        worker::Config {
            polling: args.polling,
            flow_capacity: args.flow_capacity,
            ..worker::Config::default()
        },
        shared,
        Queues::new(64),
        stats.clone(),
    );
    if let Some(o) = args.offload {
        w.set_offload(o);
    }
    // `Worker::run` returns when `shared.stop` is set.
    w.run();
    let s = stats.snapshot();
    Report {
        rx: s.rx_frames,
        tx: s.tx_frames,
        flow_hits: s.flow_hits,
        flow_misses: s.flow_misses,
        ..Report::default()
    }
}

/// The bare loop: only the rx/tx counters (for the live `stats`), no
/// classification, no flow table.
fn run_hairpin(mut sock: xsk::Socket, stop: &AtomicBool, stats: &Stats) -> Report {
    let mut rx = vec![Frame::default(); worker::DEFAULT_BATCH];
    let mut r = Report::default();
    while !stop.load(Ordering::Relaxed) {
        sock.reclaim();
        let n = sock.recv(&mut rx);
        if n == 0 {
            std::hint::spin_loop();
            continue;
        }
        r.rx += n as u64;
        bump(&stats.counters.rx_frames, n as u64);
        for fr in &rx[..n] {
            let buf = sock.buffer_mut(*fr);
            if buf.len() >= 36 {
                let dst = if buf[35] & 1 == 0 { MAC_S1 } else { MAC_S2 };
                buf[..6].copy_from_slice(&dst);
                buf[6..12].copy_from_slice(&VMAC);
            }
        }
        let sent = sock.send(&rx[..n]);
        r.tx += sent as u64;
        bump(&stats.counters.tx_frames, sent as u64);
        if sent < n {
            sock.release(&rx[sent..n]);
        }
        let _ = sock.flush();
    }
    r
}
