//! The worker: one poll loop per queue, generic over [`Port`] and [`LocalSink`].
//!
//! One [`Worker::poll`] is one batch:
//! 1. reclaim finished transmissions;
//! 2. transmit frames the control plane queued (adverts, GARPs, heartbeats):
//!    allocate a frame, copy, queue for TX;
//! 3. receive up to `batch` frames and classify them all, prefetching each
//!    flow's flow-table bucket so that the cache misses overlap;
//! 4. steer each balanced frame (flow table, else Maglev), rewrite its MACs
//!    and queue it for TX, or deliver it to the local sink when it is this
//!    node's own share; send IPv4 fragments where their first fragment went
//!    (the fragment cache) and ICMP errors to the node owning the quoted
//!    flow; copy VRRP adverts into their own queue and heartbeat and
//!    ARP-for-VIP frames into the shared queue to the control plane (never
//!    blocking: a full queue is a counted drop); give not-ours frames to the
//!    local sink; drop malformed frames with a counted reason;
//! 5. send the TX batch (frames the ring refused are released and counted as
//!    `ring_full`), flush, and give every other frame back to the port;
//! 6. install the flows this batch saw established into the XDP fast path,
//!    if there is one ([`super::offload`]), with one call.
//!
//! Frames never leak: every received or allocated frame is either accepted
//! by `send` or `release`d within the same call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Cache};

use hdrhistogram::Histogram;

use super::classify::{self, DropReason, Filter, Verdict};
use super::offload;
use super::port::{Frame, Port};
use super::redirect::{self, LocalSink};
use super::stats::{self, Stats, bump};
use super::{ControlFrame, ControlKind, Queues, Shared};
use crate::balance::{flow, health, maglev};

/// The default batch size.
pub const DEFAULT_BATCH: usize = 64;

/// How a worker waits for frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polling {
    /// Spin always (appliances, benchmarks).
    Busy,
    /// After `idle_polls` empty polls in a row, sleep in [`Port::wait`] for
    /// up to `wait`; wakes at the next frame.
    Adaptive {
        /// Empty polls before sleeping.
        idle_polls: u32,
        /// The longest sleep (bounds how late the stop flag is seen).
        wait: Duration,
    },
}

impl Default for Polling {
    fn default() -> Self {
        Polling::Adaptive {
            idle_polls: 1024,
            wait: Duration::from_millis(100),
        }
    }
}

/// Worker settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Frames per batch (default 64).
    pub batch: usize,
    /// Polling mode.
    pub polling: Polling,
    /// Flow-table capacity (flows).
    pub flow_capacity: usize,
    /// Flow idle timeouts.
    pub timeouts: flow::Timeouts,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            batch: DEFAULT_BATCH,
            polling: Polling::default(),
            flow_capacity: flow::DEFAULT_CAPACITY,
            timeouts: flow::Timeouts::default(),
        }
    }
}

/// The flow table's view of the nodes: the health table plus Maglev.
struct Nodes<'a> {
    health: &'a health::Table,
    maglev: &'a maglev::Table,
}

/// How many successive Maglev entries a new flow may try when the table
/// still names a node the health table already marks down (between a node
/// failing and the rebuilt table being published).
const PICK_PROBES: usize = 8;

impl flow::Backends for Nodes<'_> {
    #[inline]
    fn usable(&mut self, slot: u16, generation: u16) -> Option<u64> {
        self.health.usable_mac(usize::from(slot), generation)
    }

    #[inline]
    fn pick(&mut self, hash: u64, new_flow: bool) -> Option<flow::Target> {
        let entries = self.maglev.entries();
        let m = entries.len();
        let first = self.maglev.index(hash);
        for probe in 0..PICK_PROBES.min(m) {
            let i = if first + probe >= m {
                first + probe - m
            } else {
                first + probe
            };
            let slot = *entries.get(i)?;
            if slot == maglev::NO_NODE {
                return None;
            }
            if let Some(n) = self.health.get(usize::from(slot))
                && (n.state == health::State::Up || (!new_flow && n.state.keeps_flows()))
            {
                return Some(flow::Target {
                    slot,
                    generation: n.generation as u16,
                    mac: health::mac_to_u64(n.mac),
                });
            }
        }
        None
    }
}

/// Hands `fr` to the local sink (this node's own stack), counts it in `ok`
/// or, when the sink is full, in `local_sink_full`, and gives the frame back.
#[inline]
fn to_local<P: Port, S: LocalSink>(
    port: &P,
    sink: &mut S,
    done: &mut Vec<Frame>,
    fr: Frame,
    ok: &std::sync::atomic::AtomicU64,
    c: &stats::Counters,
) {
    if sink.deliver(port.data(fr)) {
        bump(ok, 1);
    } else {
        bump(&c.local_sink_full, 1);
    }
    done.push(fr);
}

/// Counts how the flow table steered a packet.
#[inline]
fn count_outcome(c: &stats::Counters, outcome: flow::Outcome) {
    match outcome {
        flow::Outcome::Hit => bump(&c.flow_hits, 1),
        flow::Outcome::Miss => bump(&c.flow_misses, 1),
        flow::Outcome::MissEvicted => {
            bump(&c.flow_misses, 1);
            bump(&c.flow_evictions, 1);
        }
        flow::Outcome::Probation => {
            bump(&c.flow_misses, 1);
            bump(&c.flow_probation, 1);
        }
        flow::Outcome::Moved => bump(&c.flow_moved, 1),
        flow::Outcome::Untracked => bump(&c.flow_untracked, 1),
        flow::Outcome::NoBackend => {}
    }
}

/// One dataplane worker.
pub struct Worker<P: Port, S: LocalSink> {
    port: P,
    sink: S,
    cfg: Config,
    filter: Cache<Arc<ArcSwap<Filter>>, Arc<Filter>>,
    health: Arc<health::Table>,
    maglev: maglev::Reader,
    stop: Arc<AtomicBool>,
    queues: Queues,
    stats: Arc<Stats>,
    flows: flow::Table,
    frags: flow::Fragments,
    histogram: Histogram<u64>,
    last_handoff: Instant,
    clock: Instant,
    rx: Vec<Frame>,
    verdicts: Vec<(Verdict, u64)>,
    tx: Vec<Frame>,
    done: Vec<Frame>,
    offload: Option<offload::Settings>,
    installs: Vec<(flow::Key, flow::Target)>,
    idle: u32,
}

impl<P: Port, S: LocalSink> std::fmt::Debug for Worker<P, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("dataplane::Worker")
            .field("cfg", &self.cfg)
            .field("flows", &self.flows.len())
            .finish()
    }
}

impl<P: Port, S: LocalSink> Worker<P, S> {
    /// A worker on `port`, delivering its local share to `sink`.
    pub fn new(
        port: P,
        sink: S,
        cfg: Config,
        shared: &Shared,
        queues: Queues,
        stats: Arc<Stats>,
    ) -> Worker<P, S> {
        let batch = cfg.batch.max(1);
        let now = Instant::now();
        Worker {
            port,
            sink,
            cfg: Config { batch, ..cfg },
            filter: Cache::new(shared.filter.clone()),
            health: shared.health.clone(),
            maglev: shared.maglev.reader(),
            stop: shared.stop.clone(),
            queues,
            stats,
            flows: flow::Table::new(cfg.flow_capacity, cfg.timeouts),
            frags: flow::Fragments::new(flow::FRAG_CAPACITY, flow::FRAG_TIMEOUT_MS),
            histogram: stats::new_histogram(),
            last_handoff: now,
            clock: now,
            rx: vec![Frame::default(); batch],
            verdicts: Vec::with_capacity(batch),
            tx: Vec::with_capacity(batch * 2),
            done: Vec::with_capacity(batch * 2),
            offload: None,
            installs: Vec::with_capacity(batch),
            idle: 0,
        }
    }

    /// Installs flows into the XDP fast path once they are established
    /// (see [`super::offload`]).
    pub fn set_offload(&mut self, settings: offload::Settings) {
        self.offload = Some(settings);
    }

    /// The port.
    pub fn port(&self) -> &P {
        &self.port
    }

    /// The port, mutably (tests inject and drain through it).
    pub fn port_mut(&mut self) -> &mut P {
        &mut self.port
    }

    /// The local sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The local sink, mutably.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// The flow table.
    pub fn flows(&self) -> &flow::Table {
        &self.flows
    }

    /// This worker's statistics.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Gives back the port and the sink.
    pub fn into_parts(self) -> (P, S) {
        (self.port, self.sink)
    }

    /// Runs until the stop flag is set, polling as configured. Hands the
    /// last batch-time histogram over before returning.
    pub fn run(&mut self) {
        while !self.stop.load(Ordering::Relaxed) {
            let n = self.poll();
            if n > 0 {
                self.idle = 0;
                continue;
            }
            if let Polling::Adaptive { idle_polls, wait } = self.cfg.polling {
                self.idle += 1;
                if self.idle >= idle_polls {
                    self.idle = 0;
                    bump(&self.stats.counters.idle_waits, 1);
                    // An error here (e.g. EINTR) just means poll again.
                    let _ = self.port.wait(wait);
                }
            } else {
                std::hint::spin_loop();
            }
        }
        self.handoff_histogram(true);
    }

    fn handoff_histogram(&mut self, force: bool) {
        if self.histogram.is_empty() {
            return;
        }
        if !force && self.last_handoff.elapsed() < stats::HISTOGRAM_PERIOD {
            return;
        }
        self.last_handoff = Instant::now();
        let h = std::mem::replace(&mut self.histogram, stats::new_histogram());
        if let Err(back) = self.stats.offer_histogram(h) {
            self.histogram = back;
        }
    }

    /// Processes one batch (see the module documentation). Returns the number
    /// of frames received plus control frames transmitted.
    pub fn poll(&mut self) -> usize {
        self.port.reclaim();
        let c = &*self.stats.counters;
        self.tx.clear();
        self.done.clear();

        // Control-plane frames out.
        let mut control_out = 0;
        while self.tx.len() < self.cfg.batch {
            let Some(pkt) = self.queues.from_control.pop() else {
                break;
            };
            control_out += 1;
            let Some(mut fr) = self.port.alloc() else {
                // No free frame now: this one is lost, the rest wait.
                bump(&c.tx_control_dropped, 1);
                break;
            };
            let buf = self.port.buffer_mut(fr);
            match buf.get_mut(..pkt.len()) {
                Some(dst) => {
                    dst.copy_from_slice(&pkt);
                    fr.len = pkt.len() as u32;
                    self.tx.push(fr);
                }
                None => {
                    bump(&c.tx_control_dropped, 1);
                    self.done.push(fr);
                }
            }
        }
        let control_tx = self.tx.len();

        let n = self.port.recv(&mut self.rx);
        if n == 0 && control_out == 0 {
            return 0;
        }
        // The clock is read only for a batch that has work: an empty poll
        // (a spinning worker does millions) costs no clock read. The batch
        // time recorded below therefore starts after the receive.
        let start = Instant::now();
        let now_ms = start.duration_since(self.clock).as_millis() as u32;
        bump(&c.rx_frames, n as u64);

        let filter = self.filter.load();
        let table = self.maglev.current();
        let mut nodes = Nodes {
            health: &self.health,
            maglev: table,
        };

        // Pass 1: classify and hash (the frames are in cache), and prefetch
        // each flow's bucket at once, so that the cache misses of the whole
        // batch are in flight while the rest of it is classified.
        self.verdicts.clear();
        for &fr in &self.rx[..n] {
            let v = classify::classify(filter, self.port.data(fr));
            let h = match v {
                Verdict::ProxyFlow(p) => {
                    let h = p.key.hash();
                    self.flows.prefetch(h);
                    h
                }
                Verdict::FirstFragment(Some(p), _) => p.key.hash(),
                Verdict::IcmpError(k) => k.hash(),
                _ => 0,
            };
            self.verdicts.push((v, h));
        }

        // Pass 2: act.
        let our_mac = filter.our_mac;
        let local = filter.local_slot;
        let offload_local = match &self.offload {
            Some(o) => o.local,
            None => false,
        };
        self.installs.clear();
        for (i, &fr) in self.rx[..n].iter().enumerate() {
            let (verdict, hash) = self.verdicts[i];
            // The node a balanced (or related) frame goes to, or a counted
            // drop reason; every other verdict is handled in its arm.
            let steered: Result<flow::Target, DropReason> = match verdict {
                Verdict::ProxyFlow(p) => {
                    let s = self.flows.steer(hash, p.segment, now_ms, &mut nodes);
                    count_outcome(c, s.outcome);
                    if let Some(t) = s.target
                        && s.established
                        && self.offload.is_some()
                        && (offload_local || Some(t.slot) != local)
                    {
                        self.installs.push((p.key, t));
                    }
                    s.target.ok_or(DropReason::NoBackend)
                }
                Verdict::FirstFragment(Some(p), fk) => {
                    let s = self.flows.steer(hash, p.segment, now_ms, &mut nodes);
                    count_outcome(c, s.outcome);
                    match s.target {
                        Some(t) => {
                            self.frags.insert(&fk, flow::FragTo::Node(t), now_ms);
                            bump(&c.frag_steered, 1);
                            Ok(t)
                        }
                        None => Err(DropReason::NoBackend),
                    }
                }
                Verdict::FirstFragment(None, fk) => {
                    self.frags.insert(&fk, flow::FragTo::Local, now_ms);
                    to_local(&self.port, &mut self.sink, &mut self.done, fr, &c.passed, c);
                    continue;
                }
                Verdict::Fragment(fk) => match self.frags.get(&fk, now_ms) {
                    Some(flow::FragTo::Node(t)) => {
                        match flow::Backends::usable(&mut nodes, t.slot, t.generation) {
                            Some(mac) => {
                                bump(&c.frag_steered, 1);
                                Ok(flow::Target { mac, ..t })
                            }
                            None => Err(DropReason::FragUnmatched),
                        }
                    }
                    Some(flow::FragTo::Local) => {
                        to_local(&self.port, &mut self.sink, &mut self.done, fr, &c.passed, c);
                        continue;
                    }
                    None => Err(DropReason::FragUnmatched),
                },
                Verdict::IcmpError(_) => match self.flows.lookup(hash, now_ms, &mut nodes) {
                    Some(t) => {
                        bump(&c.icmp_steered, 1);
                        Ok(t)
                    }
                    None => Err(DropReason::NoBackend),
                },
                Verdict::Vrrp | Verdict::Heartbeat | Verdict::ArpForVip => {
                    // Adverts have their own queue, so a heartbeat or ARP
                    // flood never crowds them out. A full queue is checked
                    // before the copy: a flood costs no allocation.
                    let (kind, queue, ctr, full) = match verdict {
                        Verdict::Vrrp => (
                            ControlKind::Vrrp,
                            &self.queues.vrrp_to_control,
                            &c.rx_vrrp,
                            &c.vrrp_queue_full,
                        ),
                        Verdict::Heartbeat => (
                            ControlKind::Heartbeat,
                            &self.queues.to_control,
                            &c.rx_heartbeat,
                            &c.control_queue_full,
                        ),
                        _ => (
                            ControlKind::Arp,
                            &self.queues.to_control,
                            &c.rx_arp,
                            &c.control_queue_full,
                        ),
                    };
                    let cf = (!queue.is_full()).then(|| ControlFrame {
                        kind,
                        data: self.port.data(fr).to_vec(),
                    });
                    match cf.map(|cf| queue.push(cf)) {
                        Some(Ok(())) => bump(ctr, 1),
                        _ => bump(full, 1),
                    }
                    self.done.push(fr);
                    continue;
                }
                Verdict::Pass => {
                    to_local(&self.port, &mut self.sink, &mut self.done, fr, &c.passed, c);
                    continue;
                }
                Verdict::Drop(r) => {
                    bump(&c.drops[r as usize], 1);
                    self.done.push(fr);
                    continue;
                }
            };
            match steered {
                Err(r) => {
                    bump(&c.drops[r as usize], 1);
                    self.done.push(fr);
                }
                Ok(t) if Some(t.slot) != local => {
                    redirect::rewrite_macs(self.port.buffer_mut(fr), t.mac, our_mac);
                    if let Some(ctr) = c.tx_redirected.get(usize::from(t.slot)) {
                        bump(ctr, 1);
                    }
                    self.tx.push(fr);
                }
                // This node's own share.
                Ok(_) => {
                    to_local(
                        &self.port,
                        &mut self.sink,
                        &mut self.done,
                        fr,
                        &c.tx_local,
                        c,
                    );
                }
            }
        }

        // Transmit; what the ring refuses is dropped and given back.
        if !self.tx.is_empty() {
            let mut sent = self.port.send(&self.tx);
            if sent < self.tx.len() && self.port.reclaim() > 0 {
                sent += self.port.send(&self.tx[sent..]);
            }
            bump(&c.tx_frames, sent as u64);
            bump(&c.tx_control, sent.min(control_tx) as u64);
            if sent < self.tx.len() {
                bump(&c.ring_full, (self.tx.len() - sent) as u64);
                self.done.extend_from_slice(&self.tx[sent..]);
            }
            // A failed kick is retried by the next batch's flush.
            let _ = self.port.flush();
        }
        if !self.done.is_empty() {
            self.port.release(&self.done);
        }
        self.sink.flush();
        // After the transmit, so that the install syscall delays no frame.
        if !self.installs.is_empty()
            && let Some(o) = self.offload.as_mut()
        {
            match o.to.install(&self.installs) {
                Ok(n) => bump(&c.offload_installs, n as u64),
                Err(_) => bump(&c.offload_errors, 1),
            }
        }
        bump(&c.batches, 1);
        let elapsed = start.elapsed().as_nanos() as u64;
        let _ = self.histogram.record(elapsed.max(1));
        self.handoff_histogram(false);
        n + control_out
    }
}
