//! One AF_XDP socket and one pinned worker thread per queue.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::config::{Config, PollMode, XdpMode};
use crate::dataplane::offload;
use crate::dataplane::redirect::LocalSink;
use crate::dataplane::stats::Stats;
use crate::dataplane::worker::{self, Worker};
use crate::dataplane::{Queues, Shared};
use crate::log;
use crate::xsk;

use super::Error;

/// A worker's local sink: the TAP device into this node's own stack. The
/// destination MAC is rewritten to the TAP's so the kernel accepts the frame.
pub struct TapDelivery {
    tap: xsk::TapSink,
    buf: Vec<u8>,
}

impl TapDelivery {
    /// Delivers into `tap`.
    pub fn new(tap: xsk::TapSink) -> TapDelivery {
        TapDelivery {
            tap,
            buf: Vec::with_capacity(2048),
        }
    }
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

/// The worker settings a node config asks for.
/// The TAP device of queue `queue`'s worker on a director (its local
/// delivery; queue 0's also carries the active-active announcement, see
/// [`super::announce`]).
pub fn tap_name(queue: u32) -> String {
    format!("proxyha{queue}")
}

pub fn worker_config(cfg: &Config) -> worker::Config {
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

/// A running worker.
pub struct Handle {
    pub queue: u32,
    pub queues: Queues,
    pub stats: Arc<Stats>,
    pub thread: JoinHandle<()>,
    /// The socket's bind mode (copy or zero-copy).
    pub bound: String,
    /// The CPU the worker is pinned to (`None`: not pinned).
    pub cpu: Option<usize>,
    /// The socket was bound with `XDP_USE_NEED_WAKEUP`.
    pub need_wakeup: bool,
}

/// What a worker reports once its socket is bound.
struct Ready {
    bound: String,
    pinned: bool,
    need_wakeup: bool,
    /// The per-queue outcome to log once: zero-copy refusal, busy polling.
    notes: Vec<String>,
}

/// The socket settings a node config asks for.
pub fn socket_config(cfg: &Config) -> xsk::SocketConfig {
    let d = &cfg.dataplane;
    xsk::SocketConfig {
        mode: match d.mode {
            XdpMode::Auto => xsk::BindMode::Auto,
            XdpMode::Copy => xsk::BindMode::Copy,
            XdpMode::ZeroCopy => xsk::BindMode::ZeroCopy,
        },
        frame_count: d.umem_frames,
        frame_size: d.frame_size,
        rx_size: d.rx_ring,
        tx_size: d.tx_ring,
        busy_poll: (d.poll == PollMode::Busy).then_some(xsk::BusyPoll {
            usecs: BUSY_POLL_USECS,
            budget: d.batch_size,
        }),
        ..xsk::SocketConfig::default()
    }
}

/// `SO_BUSY_POLL` with `poll = "busy"`: as the kernel's AF_XDP docs suggest.
const BUSY_POLL_USECS: u32 = 20;

/// Opens the socket for `queue` on the worker's own thread (pinned to
/// `core`), registers it with the filter and starts polling. Returns once
/// the worker reports that its socket is bound, or with its error.
pub fn spawn(
    cfg: &Config,
    queue: u32,
    core: Option<core_affinity::CoreId>,
    shared: &Shared,
    filter: &Arc<xsk::Filter>,
    director: bool,
    offload: Option<offload::Settings>,
) -> Result<Handle, Error> {
    let ifname = cfg.dataplane.interface.clone();
    let ipv6 = !cfg.virtual_ips6.is_empty();
    let sock_cfg = socket_config(cfg);
    let queues = Queues::new(1024);
    let stats = Arc::new(Stats::new());
    let wcfg = worker_config(cfg);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<Ready, String>>();
    let (shared2, queues2, stats2, filter2) = (
        shared.clone(),
        queues.clone(),
        stats.clone(),
        filter.clone(),
    );
    let thread = thread::Builder::new()
        .name(format!("proxyha-w{queue}"))
        .spawn(move || {
            let mut pinned = false;
            if let Some(c) = core {
                pinned = core_affinity::set_for_current(c);
                if !pinned {
                    log!(
                        "dataplane",
                        "worker {queue}: could not pin to core {}",
                        c.id
                    );
                }
            }
            let sock = match xsk::Socket::open(&ifname, queue, &sock_cfg) {
                Ok(s) => s,
                Err(e) if sock_cfg.mode == xsk::BindMode::ZeroCopy => {
                    let _ = ready_tx.send(Err(format!(
                        "dataplane.mode = \"zero-copy\", but the driver of {ifname} cannot \
                         bind queue {queue} in zero-copy mode ({e}); set dataplane.mode = \
                         \"auto\" (zero-copy where offered, else copy) or \"copy\""
                    )));
                    return;
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            if let Err(e) = filter2.add_socket(&sock) {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
            let mut notes = Vec::new();
            if let Some(why) = sock.zerocopy_refused() {
                notes.push(format!("zero-copy refused: {why}"));
            }
            match sock.busy_poll() {
                Ok(true) => notes.push("preferred busy polling".into()),
                Ok(false) => {}
                Err(why) => notes.push(format!("busy-poll options refused: {why}")),
            }
            let ready = Ready {
                bound: sock.bound().to_string(),
                pinned,
                need_wakeup: sock.need_wakeup(),
                notes,
            };
            if director {
                let tap = match xsk::TapSink::open(&tap_name(queue)) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                // IPv6 VIPs (issue 16): the director's own share of IPv6
                // flows enters its stack through the TAP too.
                if ipv6 {
                    crate::node::setup_ipv6::enable_on_tap(tap.name());
                }
                let _ = ready_tx.send(Ok(ready));
                let sink = TapDelivery::new(tap);
                let mut w = Worker::new(sock, sink, wcfg, &shared2, queues2, stats2);
                if let Some(o) = offload {
                    w.set_offload(o);
                }
                w.run();
            } else {
                let _ = ready_tx.send(Ok(ready));
                Worker::new(sock, NoLocal, wcfg, &shared2, queues2, stats2).run();
            }
            let _ = filter2.remove_socket(queue);
        })
        .map_err(|e| Error::Worker {
            queue,
            detail: e.to_string(),
        })?;
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(r)) => {
            log!(
                "dataplane",
                "queue {queue}: AF_XDP {} mode (asked {}), need-wakeup {}, worker on CPU {}{}",
                r.bound,
                match cfg.dataplane.mode {
                    XdpMode::Auto => "auto",
                    XdpMode::Copy => "copy",
                    XdpMode::ZeroCopy => "zero-copy",
                },
                if r.need_wakeup { "on" } else { "off" },
                core.filter(|_| r.pinned)
                    .map_or("any".into(), |c| c.id.to_string()),
                r.notes.iter().map(|n| format!("; {n}")).collect::<String>()
            );
            Ok(Handle {
                queue,
                queues,
                stats,
                thread,
                bound: r.bound,
                cpu: core.filter(|_| r.pinned).map(|c| c.id),
                need_wakeup: r.need_wakeup,
            })
        }
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

/// Starts a worker for each of queues `0..n`, placed by `cpus` (see
/// [`super::queues::place`]).
pub fn spawn_all(
    cfg: &Config,
    n: u32,
    cpus: &[Option<usize>],
    shared: &Shared,
    filter: &Arc<xsk::Filter>,
    director: bool,
    offload: impl Fn() -> Option<offload::Settings>,
) -> Result<Vec<Handle>, Error> {
    let mut workers = Vec::new();
    for q in 0..n {
        let core = cpus
            .get(q as usize)
            .copied()
            .flatten()
            .map(|id| core_affinity::CoreId { id });
        let w = match spawn(cfg, q, core, shared, filter, director, offload()) {
            Ok(w) => w,
            Err(e) => {
                stop_all(shared, workers);
                return Err(e);
            }
        };
        workers.push(w);
    }
    log!(
        "dataplane",
        "{n} worker(s), {:?} polling, batch {}",
        cfg.dataplane.poll,
        cfg.dataplane.batch_size
    );
    Ok(workers)
}

/// Stops every worker (they watch `shared.stop`) and waits for them.
pub fn stop_all(shared: &Shared, workers: Vec<Handle>) {
    shared
        .stop
        .store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        if w.thread.join().is_err() {
            log!("dataplane", "worker {} panicked", w.queue);
        }
    }
}
