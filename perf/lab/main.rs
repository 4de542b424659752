//! `proxyha-perflab`: the perf lab harness.
//!
//! It builds the lab topology (`perf/lab/topo.sh`: a bridge namespace with a
//! generator, a director and two sinks), attaches the sinks' drop-and-count
//! XDP programs, and then measures, back to back and repeated, the forwarding
//! rate through the director for each case:
//!
//! * `floor`: no director; the generator sends straight to sink 1 (the floor
//!   cost of the path);
//! * `a`: proxyha's dataplane worker on an AF_XDP socket (pending: needs the
//!   AF_XDP port and the worker);
//! * `b`: an in-kernel XDP program doing the same MAC rewrite with XDP_TX;
//! * `c`: a plain AF_XDP rx→tx hairpin (pending: needs the AF_XDP port);
//! * `d`: nftables DNAT with `jhash` over the two sinks.
//!
//! Then latency at 50% and 90% of the reference case's maximum rate, the CPU
//! time the director spent per forwarded packet, JSON under `perf/results/`,
//! a PNG plot, and the lab section of `perf/RESULTS.md`.
//!
//! Everything runs in this one process (threads that enter the namespaces),
//! and the topology is torn down on exit, on error and on Ctrl-C.
//!
//! Modules: `cases` (what each case sets up, the generator thread),
//! `perfgen` and `sinkcount` (the lab's BPF programs in `perf/lab/bpf/`,
//! loaded through `proxyha::bpf`), `director` (the AF_XDP director child),
//! `host` (commands, pinning, NAPI threads, counters), `report` and `plot`.

mod cases;
mod director;
mod host;
mod perfgen;
mod plot;
mod report;
mod sinkcount;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow_lite::{Context, Error, bail};
use cases::{Case, GenReq, GenThread, Setup, gen_config, setup_case};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use host::{
    cpu_busy, cpu_times, napi_threads, own_tid, parse_cpus, pin_self, sh, task_runtime_ns,
    task_sched, thread_and_pin, unthread, wire_packets,
};
use perfgen::{PassStub, Plan};
use serde::{Deserialize, Serialize};
use sinkcount::Sink;

/// A tiny error type for the harness (the library's errors are typed; here we
/// only need a message chain).
mod anyhow_lite {
    use std::fmt;

    /// A message with its causes.
    #[derive(Debug)]
    pub struct Error(pub String);

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl<E: std::error::Error> From<E> for Error {
        fn from(e: E) -> Self {
            Error(e.to_string())
        }
    }

    /// Adds what was being done to an error.
    pub trait Context<T> {
        /// Prefixes the error with `what`.
        fn context(self, what: impl fmt::Display) -> Result<T, Error>;
    }

    impl<T, E: fmt::Display> Context<T> for Result<T, E> {
        fn context(self, what: impl fmt::Display) -> Result<T, Error> {
            self.map_err(|e| Error(format!("{what}: {e}")))
        }
    }

    macro_rules! bail {
        ($($t:tt)*) => { return Err($crate::anyhow_lite::Error(format!($($t)*))) };
    }
    pub(crate) use bail;
}

const NS_SW: &str = "phperf-sw";
const NS_GEN: &str = "phperf-gen";
const NS_DIR: &str = "phperf-dir";
const NS_S1: &str = "phperf-s1";
const NS_S2: &str = "phperf-s2";
const IF_GEN: &str = "pgen0";
const IF_DIR: &str = "pdir0";
const IF_S1: &str = "ps1";
const IF_S2: &str = "ps2";
const SW_GEN: &str = "psw-gen";
const SW_DIR: &str = "psw-dir";
const MAC_GEN: [u8; 6] = [0x02, 0x50, 0x19, 0, 0, 0x01];
/// The VRRP virtual MAC for VRID 51 (0x33), which the director's interface carries.
const VMAC: [u8; 6] = proxyha::wire::ethernet::Address::vrrp_virtual(0x33).octets();
const MAC_S1: [u8; 6] = [0x02, 0x50, 0x19, 0, 0, 0x11];
const MAC_S2: [u8; 6] = [0x02, 0x50, 0x19, 0, 0, 0x12];
const VIP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 250);
/// The IPv6 virtual MAC for VRID 51, where the IPv6 cases send.
const VMAC6: [u8; 6] = proxyha::wire::ethernet::Address::vrrp_virtual_ipv6(0x33).octets();
/// The IPv6 VIP of the IPv6 cases: 2001:2::<VIP> (RFC 5180's range), as the
/// generator writes it (perf_gen.bpf.c).
const VIP6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0xc613, 0x00fa);
const PORT: u16 = 9090;
/// Flow sources: 198.19.0.128.. (outside the nodes' /25), ports 1024..65535.
const SRC_BASE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 128);
const SPORT_BASE: u16 = 1024;
const PORTS_PER_IP: u32 = 64_512;
/// The AF_XDP director child's control socket.
const DIRECTOR_SOCKET: &str = "/run/proxyha-perflab/director.sock";

#[derive(Parser, Debug)]
#[command(
    name = "proxyha-perflab",
    about = "The proxyha perf lab: generator, director cases, sinks, results"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// A full run: every case, repeated, with latency, JSON, plot and RESULTS.md.
    Run(RunArgs),
    /// A few-second smoke run of the harness (one repeat, short, no files
    /// unless --out is given).
    Smoke(RunArgs),
    /// Run only the generator against the floor path (generator -> bridge ->
    /// sink 1) and print what it sent and what arrived.
    Gen {
        /// Offered packets per second (flat out when absent).
        #[arg(long)]
        rate: Option<f64>,
        /// Seconds to send.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Number of flows.
        #[arg(long, default_value_t = 60_000)]
        flows: u32,
    },
    /// (Internal) the AF_XDP director of cases a and c; the harness runs it
    /// inside the director's namespace.
    Director(director::Args),
    /// Redraw the PNG and (with --results-md) the RESULTS.md section from a
    /// run's JSON.
    Replot {
        /// The run's JSON (perf/results/perflab-*.json).
        json: PathBuf,
        /// Rewrite the lab section of this RESULTS.md.
        #[arg(long)]
        results_md: Option<PathBuf>,
    },
    /// Only build the topology (topo.sh up) and leave it.
    Up,
    /// Tear the topology down (topo.sh down).
    Down,
}

#[derive(clap::Parser, Debug, Clone)]
struct RunArgs {
    /// Cases to run, comma-separated: floor, a, a2, abp, b, c, d, e, a6, e6,
    /// ot, ox.
    #[arg(long, default_value = "floor,b,d")]
    cases: String,
    /// Back-to-back repeats of each case.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Run the repeats in rounds, one repeat of every case per round (each
    /// set up and torn down), instead of all repeats of a case back to
    /// back: a drift in the shared machine's speed then falls on every case
    /// alike, which keeps the ratios between cases honest.
    #[arg(long)]
    interleave: bool,
    /// Seconds of flat-out sending per repeat.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Seconds of fixed-rate sending per latency point (0 = no latency runs).
    #[arg(long, default_value_t = 2.0)]
    latency_seconds: f64,
    /// Number of flows (source IP/port pairs), 1..=1048576.
    #[arg(long, default_value_t = 60_000)]
    flows: u32,
    /// CPU of the generator thread.
    #[arg(long, default_value_t = 0)]
    gen_cpu: usize,
    /// CPU of the director's receive NAPI thread and its workers.
    #[arg(long, default_value_t = 1)]
    dir_cpu: usize,
    /// With --thread-path: CPU of the threaded NAPI of the director's bridge
    /// port and the sinks.
    #[arg(long, default_value_t = 0)]
    path_cpu: usize,
    /// Thread and pin the NAPI of the director's bridge port and the sinks
    /// (default: they run in softirq on the CPU that queued the frame).
    #[arg(long)]
    thread_path: bool,
    /// CPUs of the AF_XDP director's workers (cases a, c), comma-separated.
    #[arg(long, default_value = "1")]
    worker_cpus: String,
    /// CPUs of the two workers of case a2 (and of pdir0's two NAPI threads).
    #[arg(long, default_value = "1,0")]
    worker_cpus2: String,
    /// Polling of the AF_XDP workers: busy or adaptive.
    #[arg(long, default_value = "busy")]
    polling: String,
    /// Directory for JSON and PNG results (smoke: none unless given).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Rewrite the lab section of this RESULTS.md.
    #[arg(long)]
    results_md: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("proxyha-perflab: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.cmd {
        Cmd::Up => topo("up"),
        Cmd::Replot { json, results_md } => {
            let run: RunResult = serde_json::from_str(
                &std::fs::read_to_string(&json).context(format!("reading {}", json.display()))?,
            )?;
            let png = json.with_extension("png");
            plot::draw(&run, &png)?;
            if let Some(md) = results_md {
                report::update_results_md(&md, &run, &json, &png)?;
            }
            Ok(())
        }
        Cmd::Director(a) => director::run(a),
        Cmd::Gen {
            rate,
            seconds,
            flows,
        } => gen_only(rate, seconds, flows),
        Cmd::Down => topo("down"),
        Cmd::Run(args) => {
            let cmdline = std::env::args().collect::<Vec<_>>().join(" ");
            lab_run(args, false, cmdline)
        }
        Cmd::Smoke(mut args) => {
            args.repeats = args.repeats.min(1);
            args.seconds = args.seconds.min(1.0);
            args.latency_seconds = args.latency_seconds.min(0.5);
            let cmdline = std::env::args().collect::<Vec<_>>().join(" ");
            lab_run(args, true, cmdline)
        }
    }
}

fn topo_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("perf/lab/topo.sh")
}

fn topo(action: &str) -> Result<(), Error> {
    let st = Command::new(topo_script())
        .arg(action)
        .status()
        .context(format!("running topo.sh {action}"))?;
    if !st.success() {
        bail!("topo.sh {action} failed: {st}");
    }
    Ok(())
}

/// Tears the topology down when dropped (errors, panics, normal exit).
struct TopoGuard;

impl Drop for TopoGuard {
    fn drop(&mut self) {
        let _ = topo("down");
    }
}

/// CPU placement of one case, recorded with its figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Placement {
    generator_cpu: usize,
    director_cpu: usize,
    /// CPU of the path's threaded NAPI (None: softirq where queued).
    path_cpu: Option<usize>,
    /// NAPI thread → CPU, as pinned.
    napi: BTreeMap<String, String>,
}

/// One flat-out repeat of a case.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Repeat {
    sent: u64,
    on_wire: u64,
    received: u64,
    seconds: f64,
    offered_mpps: f64,
    mpps: f64,
    /// Frames the generator built that never reached the wire (veth ring full).
    gen_drop: f64,
    /// Frames on the wire that did not reach a sink.
    loss: f64,
    director_cpu_ns: u64,
    cpu_ns_per_packet: f64,
    director_cpu_util: f64,
    /// Busy fraction of each CPU during the repeat (all users of the machine).
    cpu_busy: Vec<f64>,
    /// Frames the AF_XDP director's workers received per second, read live
    /// from its control socket (`stats`) before and after the repeat.
    director_rx_mpps: Option<f64>,
    /// Fraction of the repeat the generator thread ran on its CPU, and the
    /// fraction it was runnable but waiting for it (others' load).
    generator_running: f64,
    generator_waiting: f64,
    sink_split: [u64; 2],
}

/// Latency at one offered rate.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LatencyPoint {
    fraction_of_reference: f64,
    /// The rate asked for (the offered rate can fall short when the
    /// generator's CPU is taken by other work).
    #[serde(default)]
    target_mpps: f64,
    /// Fractions of the run the generator ran / waited for its CPU.
    #[serde(default)]
    generator_running: f64,
    #[serde(default)]
    generator_waiting: f64,
    offered_mpps: f64,
    received_mpps: f64,
    loss: f64,
    samples: u64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
    /// (latency µs, cumulative fraction) for the CDF plot.
    cdf: Vec<(f64, f64)>,
}

/// Everything measured for one case.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CaseResult {
    case: Case,
    what: String,
    repeats: Vec<Repeat>,
    median_mpps: f64,
    min_mpps: f64,
    max_mpps: f64,
    median_loss: f64,
    median_cpu_ns_per_packet: f64,
    latency: Vec<LatencyPoint>,
    placement: Placement,
    /// The AF_XDP director's own counters over the flat-out repeats (a, c).
    director: Option<director::Report>,
}

impl CaseResult {
    fn case_key(&self) -> &'static str {
        self.case.key()
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunResult {
    date_utc: String,
    commit: String,
    machine: report::Machine,
    command: String,
    flows: u32,
    seconds_per_repeat: f64,
    repeats: usize,
    /// Repeats in rounds across the cases (`--interleave`).
    #[serde(default)]
    interleaved: bool,
    frame_bytes: u32,
    cases: Vec<CaseResult>,
    /// Cases asked for that could not run, with the reason.
    pending: BTreeMap<String, String>,
    /// a/b, a/c, a/d (when a ran), and the others against b.
    ratios: BTreeMap<String, f64>,
    /// With `--interleave`: the median of the per-round ratios.
    #[serde(default)]
    paired_ratios: BTreeMap<String, f64>,
    latency_reference: Option<String>,
}

/// The lab: topology, sinks, peer stubs and the generator.
struct Lab {
    gen_thread: GenThread,
    sinks: [Sink; 2],
    _stubs: Vec<PassStub>,
    args: RunArgs,
    _topo: TopoGuard,
}

impl Lab {
    fn up(args: &RunArgs) -> Result<Lab, Error> {
        if !proxyha::node::prereq::is_root() {
            bail!("the perf lab needs root (network namespaces, XDP, BPF_PROG_TEST_RUN)");
        }
        // The guard tears down whatever exists, also after a failed `up`.
        let guard = TopoGuard;
        // `ip netns add` can race with other users' namespace operations on
        // a shared machine (seen once: "Invalid netns value"): retry once.
        if let Err(e) = topo("up") {
            eprintln!("perflab: {e}; retrying once");
            thread::sleep(Duration::from_secs(1));
            topo("up")?;
        }
        let sinks = [
            Sink::attach(NS_S1, IF_S1, PORT).context("sink 1")?,
            Sink::attach(NS_S2, IF_S2, PORT).context("sink 2")?,
        ];
        // The generator XDP_TXes out of pgen0: its peer needs XDP to deliver.
        // XDP_TX or redirected frames into a veth are delivered only when the
        // peer runs XDP: the generator's (psw-gen) and the director's
        // (psw-dir, for case b; kept for every case so that the return path
        // is the same).
        let stubs = vec![
            PassStub::attach(NS_SW, SW_GEN).context("stub on psw-gen")?,
            PassStub::attach(NS_SW, SW_DIR).context("stub on psw-dir")?,
        ];
        let gen_thread = GenThread::start(args.gen_cpu, gen_config(Case::Floor, args.flows))?;
        Ok(Lab {
            gen_thread,
            sinks,
            _stubs: stubs,
            args: args.clone(),
            _topo: guard,
        })
    }

    fn place(&self, case: Case) -> Result<Placement, Error> {
        let mut napi = BTreeMap::new();
        let mut pin = |ns: &str, ifn: &str, cpus: Option<Vec<usize>>| -> Result<(), Error> {
            match cpus {
                Some(cpus) => {
                    for (pid, cpu) in thread_and_pin(ns, ifn, &cpus)? {
                        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                            .unwrap_or_default();
                        napi.insert(comm.trim().to_owned(), format!("CPU{cpu}"));
                    }
                }
                None => {
                    unthread(ns, ifn)?;
                    napi.insert(
                        format!("{ifn} (softirq)"),
                        "the CPU that queued the frame".to_owned(),
                    );
                }
            }
            Ok(())
        };
        // The generator's peer stays in softirq: BPF_PROG_TEST_RUN flushes each
        // batch and runs the peer's NAPI inline, which paces the generator to
        // what the bridge takes. Threaded, the generator starves it.
        pin(NS_SW, SW_GEN, None)?;
        let path = self.args.thread_path.then_some(self.args.path_cpu);
        for (ns, ifn) in [(NS_SW, SW_DIR), (NS_S1, IF_S1), (NS_S2, IF_S2)] {
            pin(ns, ifn, path.map(|c| vec![c]))?;
        }
        // The director's receive NAPI: one thread per queue; with two queues
        // each goes with its worker.
        let dir_cpus = if case == Case::A2 {
            parse_cpus(&self.args.worker_cpus2)?
        } else {
            vec![self.args.dir_cpu]
        };
        pin(NS_DIR, IF_DIR, Some(dir_cpus))?;
        Ok(Placement {
            generator_cpu: self.args.gen_cpu,
            director_cpu: self.args.dir_cpu,
            path_cpu: path,
            napi,
        })
    }

    fn reset_sinks(&self) -> Result<(), Error> {
        for s in &self.sinks {
            s.reset()?;
        }
        Ok(())
    }

    fn received(&self) -> Result<[u64; 2], Error> {
        Ok([
            self.sinks[0].counts()?.frames,
            self.sinks[1].counts()?.frames,
        ])
    }

    /// The director's threads: pdir0's NAPI and the case's workers.
    fn director_tasks(&self, setup: &Setup) -> Vec<u32> {
        let mut t = napi_threads(IF_DIR);
        t.extend_from_slice(setup.worker_tids());
        t
    }

    /// Establishes every flow before a measurement ([`cases::warm_up_plan`]).
    fn warm_up(&self, case: Case) -> Result<(), Error> {
        if case.warms_up() {
            let flows = self.args.flows;
            self.gen_thread
                .run(gen_config(case, flows), cases::warm_up_plan(flows))?;
            thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn measured(&self, case: Case) -> perfgen::GenConfig {
        cases::measured_config(case, self.args.flows)
    }

    fn repeat(&self, case: Case, setup: &Setup) -> Result<Repeat, Error> {
        self.warm_up(case)?;
        self.reset_sinks()?;
        let tasks = self.director_tasks(setup);
        let cpu0: u64 = tasks.iter().map(|&p| task_runtime_ns(p)).sum();
        let wire0 = wire_packets();
        let stat0 = cpu_times();
        let gen0 = task_sched(self.gen_thread.tid);
        let live0 = setup.live_rx();
        let local0 = setup.local_rx();
        let st = self.gen_thread.run(
            self.measured(case),
            Plan {
                rate: None,
                count: u64::MAX,
                duration: Duration::from_secs_f64(self.args.seconds),
            },
        )?;
        let cpu1: u64 = tasks.iter().map(|&p| task_runtime_ns(p)).sum();
        let busy = cpu_busy(&stat0, &cpu_times());
        let gen1 = task_sched(self.gen_thread.tid);
        let live1 = setup.live_rx();
        thread::sleep(Duration::from_millis(300));
        let wire = wire_packets().saturating_sub(wire0);
        let split = self.received()?;
        // The own-share cases end at the director's stack, not the sinks.
        let received = match (local0, setup.local_rx()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => split[0] + split[1],
        };
        let secs = st.elapsed.as_secs_f64();
        let cpu_ns = cpu1.saturating_sub(cpu0);
        Ok(Repeat {
            sent: st.sent,
            on_wire: wire,
            received,
            seconds: secs,
            offered_mpps: st.sent as f64 / secs / 1e6,
            mpps: received as f64 / secs / 1e6,
            gen_drop: if st.sent > 0 {
                1.0 - wire as f64 / st.sent as f64
            } else {
                0.0
            },
            loss: if wire > 0 {
                1.0 - received as f64 / wire as f64
            } else {
                0.0
            },
            director_cpu_ns: cpu_ns,
            cpu_ns_per_packet: if received > 0 && case != Case::Floor {
                cpu_ns as f64 / received as f64
            } else {
                0.0
            },
            director_cpu_util: cpu_ns as f64 / 1e9 / secs,
            cpu_busy: busy,
            director_rx_mpps: match (live0, live1) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / secs / 1e6),
                _ => None,
            },
            generator_running: (gen1.0.saturating_sub(gen0.0)) as f64 / 1e9 / secs,
            generator_waiting: (gen1.1.saturating_sub(gen0.1)) as f64 / 1e9 / secs,
            sink_split: split,
        })
    }

    fn latency(&self, case: Case, rate_pps: f64, fraction: f64) -> Result<LatencyPoint, Error> {
        self.warm_up(case)?;
        self.reset_sinks()?;
        for s in &self.sinks {
            s.set_latency(true)?;
        }
        let wire0 = wire_packets();
        let gen0 = task_sched(self.gen_thread.tid);
        let st = self.gen_thread.run(
            self.measured(case),
            Plan {
                rate: Some(rate_pps),
                count: u64::MAX,
                duration: Duration::from_secs_f64(self.args.latency_seconds),
            },
        );
        let gen1 = task_sched(self.gen_thread.tid);
        thread::sleep(Duration::from_millis(200));
        for s in &self.sinks {
            s.set_latency(false)?;
        }
        let st = st?;
        let mut h = Histogram::<u64>::new(3).expect("valid precision");
        for s in &self.sinks {
            h.add(s.latency()?).map_err(|e| Error(e.to_string()))?;
        }
        let rx = self.received()?;
        let received = rx[0] + rx[1];
        let wire = wire_packets().saturating_sub(wire0);
        let secs = st.elapsed.as_secs_f64();
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        let mut cdf = Vec::new();
        if !h.is_empty() {
            for v in h.iter_quantiles(4) {
                cdf.push((v.value_iterated_to() as f64 / 1e3, v.quantile_iterated_to()));
            }
        }
        let secs_run = st.elapsed.as_secs_f64();
        Ok(LatencyPoint {
            target_mpps: rate_pps / 1e6,
            generator_running: (gen1.0.saturating_sub(gen0.0)) as f64 / 1e9 / secs_run,
            generator_waiting: (gen1.1.saturating_sub(gen0.1)) as f64 / 1e9 / secs_run,
            fraction_of_reference: fraction,
            offered_mpps: st.sent as f64 / secs / 1e6,
            received_mpps: received as f64 / secs / 1e6,
            loss: if wire > 0 {
                1.0 - received as f64 / wire as f64
            } else {
                0.0
            },
            samples: h.len(),
            p50_us: us(0.5),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: h.max() as f64 / 1e3,
            cdf,
        })
    }
}

fn gen_only(rate: Option<f64>, seconds: f64, flows: u32) -> Result<(), Error> {
    let args = RunArgs::parse_from(["x", "--flows", &flows.to_string()]);
    let lab = Lab::up(&args)?;
    lab.place(Case::Floor)?;
    if let Some(tx) = &lab.gen_thread.tx {
        let (ptx, prx) = mpsc::channel();
        let _ = tx.send(GenReq::Probe(ptx));
        if let Ok(v) = prx.recv() {
            for (n, ms) in v {
                println!("probe: one call of {n} runs: {ms:.3} ms");
            }
        }
    }
    lab.reset_sinks()?;
    let wire0 = wire_packets();
    let st = lab.gen_thread.run(
        gen_config(Case::Floor, flows),
        Plan {
            rate,
            count: u64::MAX,
            duration: Duration::from_secs_f64(seconds),
        },
    )?;
    thread::sleep(Duration::from_millis(300));
    let wire = wire_packets().saturating_sub(wire0);
    let rx = lab.received()?;
    println!(
        "generator: sent {} in {:.3} s ({:.3} Mpps, {} calls); on wire {}; at sink 1 {}",
        st.sent,
        st.elapsed.as_secs_f64(),
        st.pps() / 1e6,
        st.calls,
        wire,
        rx[0]
    );
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn lab_run(args: RunArgs, smoke: bool, command: String) -> Result<(), Error> {
    let mut cases = Vec::new();
    for c in args.cases.split(',').filter(|s| !s.trim().is_empty()) {
        cases.push(Case::parse(c)?);
    }
    if cases.is_empty() {
        bail!("no cases given");
    }
    if args.flows == 0 || args.flows > perfgen::MAX_FLOWS {
        bail!("--flows {}: must be 1..={}", args.flows, perfgen::MAX_FLOWS);
    }
    let stop = perfgen::stop_flag();
    let lab = Lab::up(&args)?;
    eprintln!(
        "perflab: topology up; cases {}; {} x {:.1} s; {} flows",
        args.cases, args.repeats, args.seconds, args.flows
    );
    // Blocks of (case, repeats), each set up, measured and torn down once.
    let schedule: Vec<(Case, usize)> = if args.interleave {
        (0..args.repeats.max(1))
            .flat_map(|_| cases.iter().map(|&c| (c, 1)))
            .collect()
    } else {
        cases.iter().map(|&c| (c, args.repeats.max(1))).collect()
    };
    let mut done: BTreeMap<&'static str, (Vec<Repeat>, Placement, Option<director::Report>)> =
        BTreeMap::new();
    let mut pending = BTreeMap::new();
    for &(case, n) in &schedule {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if pending.contains_key(case.key()) {
            continue;
        }
        eprintln!("perflab: case {}: {}", case.key(), case.what());
        let setup = match setup_case(case, &args) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("perflab: case {}: {e}", case.key());
                pending.insert(case.key().to_owned(), e.to_string());
                continue;
            }
        };
        let placement = lab.place(case)?;
        let mut repeats = Vec::new();
        for _ in 0..n {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let r = lab.repeat(case, &setup)?;
            let i = done.get(case.key()).map_or(0, |d| d.0.len()) + repeats.len();
            eprintln!(
                "perflab: {:>5} #{}: offered {:.3} Mpps, on wire {:.3}, at sinks {:.3} Mpps (split {}/{}), loss {:.1}%, director {:.0} ns/pkt ({:.0}% CPU, rx {}); CPUs busy {:?}; generator ran {:.0}%, waited {:.0}%",
                case.key(),
                i + 1,
                r.offered_mpps,
                r.on_wire as f64 / r.seconds / 1e6,
                r.mpps,
                r.sink_split[0],
                r.sink_split[1],
                r.loss * 100.0,
                r.cpu_ns_per_packet,
                r.director_cpu_util * 100.0,
                r.director_rx_mpps
                    .map_or("n/a".to_owned(), |m| format!("{m:.3} Mpps live")),
                r.cpu_busy
                    .iter()
                    .map(|b| format!("{:.0}%", b * 100.0))
                    .collect::<Vec<_>>(),
                r.generator_running * 100.0,
                r.generator_waiting * 100.0
            );
            repeats.push(r);
        }
        let report = setup.teardown()?;
        if let Some(r) = &report {
            eprintln!(
                "perflab: {:>5} director: {}",
                case.key(),
                serde_json::to_string(r)?
            );
        }
        let entry = done
            .entry(case.key())
            .or_insert_with(|| (Vec::new(), placement, None));
        entry.0.extend(repeats);
        // The director's counters of the case's last block.
        if report.is_some() {
            entry.2 = report;
        }
    }
    let mut results: Vec<CaseResult> = Vec::new();
    for &case in &cases {
        let Some((repeats, placement, director)) = done.remove(case.key()) else {
            continue;
        };
        let mut mpps: Vec<f64> = repeats.iter().map(|r| r.mpps).collect();
        let mut loss: Vec<f64> = repeats.iter().map(|r| r.loss).collect();
        let mut cpu: Vec<f64> = repeats.iter().map(|r| r.cpu_ns_per_packet).collect();
        let min = mpps.iter().copied().fold(f64::INFINITY, f64::min);
        let max = mpps.iter().copied().fold(0.0, f64::max);
        results.push(CaseResult {
            case,
            what: case.what().to_owned(),
            median_mpps: median(&mut mpps),
            min_mpps: min,
            max_mpps: max,
            median_loss: median(&mut loss),
            median_cpu_ns_per_packet: median(&mut cpu),
            repeats,
            latency: Vec::new(),
            placement,
            director,
        });
    }

    // Latency at 50% and 90% of the reference case's maximum rate: e's (the
    // fast path) when it ran, else a's, else c's, else b's.
    let reference = [Case::E, Case::A, Case::C, Case::B, Case::D]
        .into_iter()
        .find_map(|c| {
            results
                .iter()
                .find(|r| r.case == c)
                .map(|r| (c, r.max_mpps))
        });
    if args.latency_seconds > 0.0
        && let Some((ref_case, ref_mpps)) = reference
    {
        for result in results.iter_mut() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let case = result.case;
            // The sinks time the frames; the own-share cases reach none.
            if case.own_share() {
                continue;
            }
            let setup = setup_case(case, &args)?;
            lab.place(case)?;
            for frac in [0.5, 0.9] {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let p = lab.latency(case, ref_mpps * 1e6 * frac, frac)?;
                eprintln!(
                    "perflab: {:>5} latency at {:.0}% of {} max ({:.3} Mpps asked, {:.3} offered, {:.3} received; generator ran {:.0}% waited {:.0}%): p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us ({} samples)",
                    case.key(),
                    frac * 100.0,
                    ref_case.key(),
                    p.target_mpps,
                    p.offered_mpps,
                    p.received_mpps,
                    p.generator_running * 100.0,
                    p.generator_waiting * 100.0,
                    p.p50_us,
                    p.p99_us,
                    p.p999_us,
                    p.samples
                );
                result.latency.push(p);
            }
            setup.teardown()?;
        }
    }

    if stop.load(Ordering::Relaxed) {
        drop(lab);
        bail!("interrupted (the lab is torn down)");
    }
    let get = |c: Case| results.iter().find(|r| r.case == c).map(|r| r.median_mpps);
    let rounds = |c: Case| {
        results
            .iter()
            .find(|r| r.case == c)
            .map(|r| r.repeats.iter().map(|x| x.mpps).collect::<Vec<f64>>())
    };
    let mut ratios = BTreeMap::new();
    let mut paired_ratios = BTreeMap::new();
    for (num, den) in [
        (Case::A, Case::B),
        (Case::A, Case::C),
        (Case::A, Case::D),
        (Case::E, Case::B),
        (Case::E, Case::D),
        (Case::E, Case::A),
        (Case::E, Case::C),
        (Case::OwnXdp, Case::OwnTap),
        (Case::E6, Case::A6),
        (Case::E6, Case::E),
        (Case::A6, Case::A),
        (Case::A2, Case::A),
        (Case::Abp, Case::A),
        (Case::C, Case::B),
        (Case::D, Case::B),
        (Case::B, Case::Floor),
    ] {
        if let (Some(n), Some(d)) = (get(num), get(den))
            && d > 0.0
        {
            ratios.insert(format!("{}/{}", num.key(), den.key()), n / d);
        }
        // In rounds, repeat i of every case ran side by side: the median of
        // the per-round ratios is the paired figure.
        if let (true, Some(n), Some(d)) = (args.interleave, rounds(num), rounds(den)) {
            let mut per: Vec<f64> = n
                .iter()
                .zip(&d)
                .filter(|(_, d)| **d > 0.0)
                .map(|(n, d)| n / d)
                .collect();
            if !per.is_empty() {
                paired_ratios.insert(format!("{}/{}", num.key(), den.key()), median(&mut per));
            }
        }
    }
    let run = RunResult {
        date_utc: report::utc_now(),
        commit: report::commit(),
        machine: report::machine(),
        command,
        flows: args.flows,
        seconds_per_repeat: args.seconds,
        repeats: args.repeats,
        interleaved: args.interleave,
        frame_bytes: 64,
        cases: results,
        pending,
        ratios,
        paired_ratios,
        latency_reference: reference.map(|(c, _)| c.key().to_owned()),
    };
    drop(lab);
    // The lab is down: verify nothing of ours is left.
    let left = sh(&["ip", "netns", "list"])?;
    if left.lines().any(|l| l.starts_with("phperf-")) {
        bail!("namespaces left behind: {left}");
    }
    println!("{}", report::summary(&run));
    let out = args
        .out
        .clone()
        .or_else(|| (!smoke).then(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("perf/results")));
    if let Some(dir) = out.as_ref() {
        std::fs::create_dir_all(dir).context(format!("creating {}", dir.display()))?;
        let stem = format!("perflab-{}", run.date_utc.replace([':', '-'], ""));
        let json = dir.join(format!("{stem}.json"));
        std::fs::write(&json, serde_json::to_string_pretty(&run)?)
            .context(format!("writing {}", json.display()))?;
        let png = dir.join(format!("{stem}.png"));
        plot::draw(&run, &png).context("plotting")?;
        eprintln!("perflab: wrote {} and {}", json.display(), png.display());
        if let Some(md) = &args.results_md {
            report::update_results_md(md, &run, &json, &png)?;
            eprintln!("perflab: updated {}", md.display());
        }
    }
    Ok(())
}
