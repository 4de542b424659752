//! The perf lab's kernel pieces on top of [`proxyha::bpf`]: the lab's BPF
//! objects (`perf/lab/bpf/perf_*.bpf.c`), XDP programs attached in the lab's
//! network namespaces, the in-kernel MAC-rewrite baseline, and the packet
//! generator.
//!
//! # The generator
//!
//! Socket-based generators reach 0.12–0.38 Mpps on the lab machine. This one
//! runs the XDP program `perf_gen` with `BPF_PROG_TEST_RUN` and
//! `BPF_F_TEST_XDP_LIVE_FRAMES` (kernel ≥ 5.18): the kernel runs the program
//! `repeat` times on page-pool frames and really transmits every frame the
//! program returns `XDP_TX` (out of `ingress_ifindex`) or redirects for. The
//! program rebuilds the whole 64-byte TCP frame each time (the kernel
//! recycles frame buffers with whatever was written into them) and puts a
//! 32-bit sequence number and a 48-bit `bpf_ktime_get_ns()` timestamp in the
//! payload, which the sinks ([`crate::sinkcount`]) read for loss and latency.
//!
//! `BPF_PROG_TEST_RUN` uses the calling thread's network namespace to find
//! `ingress_ifindex`, so a [`Generator`] must run on a thread that entered
//! the generator's namespace ([`bpf::enter_netns`]).

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use proxyha::bpf::{self, Elf, Map, Object, Program, XdpMode};

/// Errors of the perf lab's kernel pieces.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A BPF object, map, program, attach or namespace call failed.
    #[error(transparent)]
    Bpf(#[from] bpf::Error),
    /// No interface of that name in the calling thread's namespace.
    #[error(transparent)]
    Interface(#[from] proxyha::xsk::Error),
    /// A generator setting is out of range.
    #[error("generator config: {0}")]
    Config(String),
    /// A helper thread panicked.
    #[error("netns helper thread panicked")]
    Thread,
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, Error>;

/// The lab's compiled BPF objects, embedded at build time (build.rs).
pub mod objects {
    use proxyha::bpf::Elf;

    /// The generator (`perf_gen`).
    pub static GEN: &Elf = proxyha::embedded_object!("perf_gen.bpf.o");
    /// The sinks' drop-and-count program (`perf_sink`) and the `perf_pass` stub.
    pub static SINK: &Elf = proxyha::embedded_object!("perf_sink.bpf.o");
    /// Baseline (b): in-kernel MAC rewrite + XDP_TX (`perf_rewrite`).
    pub static REWRITE: &Elf = proxyha::embedded_object!("perf_rewrite.bpf.o");
}

/// The key of the lab's single-entry maps.
pub const KEY0: [u8; 4] = 0u32.to_ne_bytes();

/// Loads `object` and finds its program `program` and its maps `maps`.
pub fn load<const N: usize>(
    object: &'static str,
    elf: &'static Elf,
    program: &str,
    maps: [&str; N],
) -> Result<(Program, [Map; N])> {
    let obj = Object::load(object, elf)?;
    let mut found = Vec::with_capacity(N);
    for m in maps {
        found.push(obj.map(m)?);
    }
    let maps = found
        .try_into()
        .unwrap_or_else(|_| unreachable!("one map per name"));
    Ok((obj.program(program)?, maps))
}

/// Runs `f` on a scoped thread inside the namespace `ns` and returns its
/// result.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            bpf::enter_netns(ns)?;
            f()
        })
        .join()
        .map_err(|_| Error::Thread)?
    })
}

/// An XDP program attached to an interface in a namespace; detached on drop
/// (deleting the namespace also removes it).
#[derive(Debug)]
pub struct XdpAttachment {
    ns: String,
    ifname: String,
    mode: XdpMode,
}

impl XdpAttachment {
    /// Attaches `prog` to `ifname` in namespace `ns`, in native (driver)
    /// mode, or generic (skb) mode when `generic`. Replaces whatever program
    /// was there.
    pub fn attach(ns: &str, ifname: &str, prog: &Program, generic: bool) -> Result<Self> {
        let mode = if generic {
            XdpMode::Generic
        } else {
            XdpMode::Native
        };
        in_netns(ns, || {
            bpf::xdp_attach(proxyha::xsk::ifindex(ifname)?, prog, mode)?;
            Ok(())
        })?;
        Ok(XdpAttachment {
            ns: ns.to_owned(),
            ifname: ifname.to_owned(),
            mode,
        })
    }
}

fn detach(ns: &str, ifname: &str, mode: XdpMode) -> Result<()> {
    in_netns(ns, || {
        bpf::xdp_detach(proxyha::xsk::ifindex(ifname)?, mode)?;
        Ok(())
    })
}

impl Drop for XdpAttachment {
    fn drop(&mut self) {
        // The namespace may already be gone, which removed the program too.
        let _ = detach(&self.ns, &self.ifname, self.mode);
    }
}

/// What the generator sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenConfig {
    /// Destination MAC (the VRRP virtual MAC, or a sink's for the floor case).
    pub dst_mac: [u8; 6],
    /// Source MAC (the generator's interface).
    pub src_mac: [u8; 6],
    /// First source address; flow i uses `src_ip + i / ports_per_ip`.
    pub src_ip: Ipv4Addr,
    /// Destination address (the VIP).
    pub dst_ip: Ipv4Addr,
    /// Destination port (9090).
    pub dst_port: u16,
    /// First source port; flow i uses `sport_base + i % ports_per_ip`.
    pub sport_base: u16,
    /// Number of flows, 1..=`MAX_FLOWS`.
    pub flows: u32,
    /// Source ports per source address.
    pub ports_per_ip: u32,
    /// Redirect to this ifindex instead of `XDP_TX` out of the ingress
    /// interface (0 = `XDP_TX`).
    pub redirect_ifindex: u32,
    /// Whether the first packet of each flow is a SYN (then ACK|PSH data).
    pub syn_first: bool,
    /// IPv6 frames (84 bytes) from 2001:2::`src_ip` to 2001:2::`dst_ip`
    /// instead of IPv4 (64 bytes).
    pub ipv6: bool,
}

/// Frames sent back to back per due time in paced mode (see perf_gen.bpf.c:
/// amortises the receiver's cross-CPU wakeups). The frames of a burst queue
/// behind each other at the director, which adds up to 3 service times to
/// the latency of the last; 4 kept the offered rate within about 5-10% of
/// the asked one in the lab.
pub const PACED_BURST: u32 = 4;

/// The most flows the generator makes (1M, per the lab's brief).
pub const MAX_FLOWS: u32 = 1 << 20;

impl GenConfig {
    /// The `struct gen_config` bytes of `perf_gen.bpf.c`; `interval_ns` 0
    /// sends flat out, else one frame per interval.
    pub fn to_bytes(&self, interval_ns: u64) -> Result<Vec<u8>> {
        if self.flows == 0 || self.flows > MAX_FLOWS {
            return Err(Error::Config(format!(
                "flows = {}: must be 1..={MAX_FLOWS}",
                self.flows
            )));
        }
        if self.ports_per_ip == 0 || u32::from(self.sport_base) + self.ports_per_ip > 65536 {
            return Err(Error::Config(format!(
                "ports_per_ip = {} from {}: must be >= 1 and end at or below 65535",
                self.ports_per_ip, self.sport_base
            )));
        }
        let addrs = self.flows.div_ceil(self.ports_per_ip);
        if u32::from(self.src_ip).checked_add(addrs).is_none() {
            return Err(Error::Config("source addresses overflow".into()));
        }
        let mut b = Vec::with_capacity(56);
        b.extend_from_slice(&self.dst_mac);
        b.extend_from_slice(&self.src_mac);
        b.extend_from_slice(&u32::from(self.src_ip).to_ne_bytes());
        b.extend_from_slice(&u32::from(self.dst_ip).to_ne_bytes());
        b.extend_from_slice(&self.dst_port.to_ne_bytes());
        b.extend_from_slice(&self.sport_base.to_ne_bytes());
        b.extend_from_slice(&self.flows.to_ne_bytes());
        b.extend_from_slice(&self.ports_per_ip.to_ne_bytes());
        b.extend_from_slice(&self.redirect_ifindex.to_ne_bytes());
        b.extend_from_slice(&u32::from(self.syn_first).to_ne_bytes());
        b.extend_from_slice(&interval_ns.to_ne_bytes());
        b.extend_from_slice(&PACED_BURST.to_ne_bytes());
        b.extend_from_slice(&u32::from(self.ipv6).to_ne_bytes());
        Ok(b)
    }
}

/// How long and how fast one generator run goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Offered packets per second; `None` sends flat out.
    pub rate: Option<f64>,
    /// Stop after this many packets.
    pub count: u64,
    /// Stop after this long.
    pub duration: Duration,
}

/// What one generator run did.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RunStats {
    /// Frames the program built and handed to the kernel to transmit.
    pub sent: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// `BPF_PROG_TEST_RUN` calls made.
    pub calls: u64,
}

impl RunStats {
    /// Offered rate in packets per second.
    pub fn pps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.sent as f64 / s } else { 0.0 }
    }
}

/// The 64-byte frame the kernel starts each page-pool buffer from; the
/// program overwrites all of it, so only its length matters.
const TEMPLATE: [u8; 64] = [0; 64];
/// The frame the program rebuilds in IPv6 mode (84 bytes).
const TEMPLATE6: [u8; 84] = [0; 84];

/// The live-frames packet generator. Create and use it on a thread that is
/// in the generator's namespace.
#[derive(Debug)]
pub struct Generator {
    prog: Program,
    cfg: Map,
    state: Map,
    ifindex: u32,
    config: GenConfig,
}

impl Generator {
    /// Loads `perf_gen` and configures it to send out of `ifname` (in the
    /// calling thread's namespace).
    pub fn new(ifname: &str, config: &GenConfig) -> Result<Self> {
        let mut g = Generator::detached(config)?;
        g.ifindex = proxyha::xsk::ifindex(ifname)?;
        Ok(g)
    }

    /// Loads `perf_gen` for [`Generator::frame`] only (no interface: frames
    /// are returned, not sent).
    pub fn detached(config: &GenConfig) -> Result<Self> {
        let (prog, [cfg, state]) = load(
            "perf_gen",
            objects::GEN,
            "perf_gen",
            ["perf_gen_cfg", "perf_gen_state"],
        )?;
        cfg.update_bytes(&KEY0, &config.to_bytes(0)?)?;
        Ok(Generator {
            prog,
            cfg,
            state,
            ifindex: 0,
            config: config.clone(),
        })
    }

    /// Runs the program once in ordinary (not live) test mode and returns the
    /// frame it built, with its XDP verdict. Advances the sequence like a
    /// sent frame. For tests of what the generator puts on the wire.
    #[cfg(test)]
    pub fn frame(&mut self) -> Result<(u32, Vec<u8>)> {
        Ok(self.prog.test_run(self.template())?)
    }

    /// Changes what is sent (e.g. the destination MAC between cases).
    pub fn configure(&mut self, config: &GenConfig) -> Result<()> {
        self.cfg.update_bytes(&KEY0, &config.to_bytes(0)?)?;
        self.config = config.clone();
        Ok(())
    }

    /// Packets built so far (the next payload sequence number).
    pub fn seq(&self) -> Result<u64> {
        // struct gen_state { seq, next_ns, last_ns, left }.
        Ok(self.state.lookup::<_, [u64; 4]>(&KEY0)?[0])
    }

    /// Restarts the sequence (the next packets are SYNs again) and the pacing.
    pub fn reset_seq(&mut self) -> Result<()> {
        Ok(self.state.zero(&KEY0)?)
    }

    /// One `BPF_PROG_TEST_RUN` call that runs the program `repeat` times
    /// (each run sends a frame, or in paced mode drops until one is due).
    pub fn burst(&mut self, repeat: u32) -> Result<()> {
        Ok(self
            .prog
            .test_run_live(self.template(), self.ifindex, repeat)?)
    }

    /// The frame the program rebuilds: its length is the frame's.
    fn template(&self) -> &'static [u8] {
        if self.config.ipv6 {
            &TEMPLATE6
        } else {
            &TEMPLATE
        }
    }

    /// Sends according to `plan`: flat out, or paced by the program itself
    /// at `plan.rate` (see `perf_gen.bpf.c`). Calls are sized to about
    /// 0.5 s each (a call costs ~20 ms to set up, so they must be long);
    /// the run stops at `plan.count` packets or after `plan.duration`,
    /// whichever comes first, to within one call.
    pub fn run(&mut self, plan: &Plan) -> Result<RunStats> {
        let interval_ns = match plan.rate {
            None => 0,
            Some(rate) if rate > 0.0 && rate.is_finite() => ((1e9 / rate) as u64).max(1),
            Some(rate) => return Err(Error::Config(format!("rate = {rate}: must be > 0"))),
        };
        self.cfg
            .update_bytes(&KEY0, &self.config.to_bytes(interval_ns)?)?;
        self.reset_seq()?;
        let start = Instant::now();
        let mut st = RunStats::default();
        let mut chunk: u64 = 65_536;
        while st.sent < plan.count && start.elapsed() < plan.duration {
            // In paced mode most runs are drops, so bound the call by time,
            // not by frames; flat out, never send past `count`.
            let n = if interval_ns == 0 {
                chunk.min(plan.count - st.sent)
            } else {
                chunk
            };
            let t = Instant::now();
            self.burst(n.min(u64::from(u32::MAX)) as u32)?;
            st.calls += 1;
            let before = st.sent;
            st.sent = self.seq()?;
            if std::env::var_os("PERFGEN_DEBUG").is_some() {
                eprintln!(
                    "perfgen: call of {n} runs took {:?}, sent {}",
                    t.elapsed(),
                    st.sent - before
                );
            }
            let per_run = t.elapsed().as_secs_f64() / n as f64;
            let left = plan.duration.saturating_sub(start.elapsed()).as_secs_f64();
            chunk = ((0.5f64.min(left) / per_run.max(1e-10)) as u64).clamp(1024, 1 << 26);
        }
        st.elapsed = start.elapsed();
        Ok(st)
    }
}

/// Baseline (b): the director's MAC rewrite done in the kernel with XDP_TX.
#[derive(Debug)]
pub struct Rewriter {
    _attach: Option<XdpAttachment>,
    prog: Program,
    stats: Map,
}

/// The settings of [`Rewriter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteConfig {
    /// Frames to this MAC are balanced (the VRRP virtual MAC).
    pub vmac: [u8; 6],
    /// Source MAC of the rewritten frames.
    pub own_mac: [u8; 6],
    /// The VIP.
    pub vip: Ipv4Addr,
    /// The balanced TCP port.
    pub port: u16,
    /// The backends' MACs (1..=8).
    pub backends: Vec<[u8; 6]>,
}

impl Rewriter {
    /// Loads `perf_rewrite`, configures it and attaches it (native mode) to
    /// `ifname` in `ns`.
    pub fn attach(ns: &str, ifname: &str, config: &RewriteConfig) -> Result<Self> {
        let mut rw = Rewriter::detached(config)?;
        rw._attach = Some(XdpAttachment::attach(ns, ifname, &rw.prog, false)?);
        Ok(rw)
    }

    /// Runs the program once on `frame` (ordinary test mode): its verdict and
    /// the frame as it left it. For tests.
    #[cfg(test)]
    pub fn run_once(&self, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
        Ok(self.prog.test_run(frame)?)
    }

    /// Loads and configures `perf_rewrite` without attaching it.
    pub fn detached(config: &RewriteConfig) -> Result<Self> {
        if config.backends.is_empty() || config.backends.len() > 8 {
            return Err(Error::Config(format!(
                "{} backends: must be 1..=8",
                config.backends.len()
            )));
        }
        let (prog, [cfg, stats]) = load(
            "perf_rewrite",
            objects::REWRITE,
            "perf_rewrite",
            ["perf_rw_cfg", "perf_rw_stats"],
        )?;
        let mut b = Vec::with_capacity(cfg.value_size());
        b.extend_from_slice(&config.vmac);
        b.extend_from_slice(&config.own_mac);
        b.extend_from_slice(&u32::from(config.vip).to_ne_bytes());
        b.extend_from_slice(&u32::from(config.port).to_ne_bytes());
        b.extend_from_slice(&(config.backends.len() as u32).to_ne_bytes());
        for i in 0..8 {
            b.extend_from_slice(config.backends.get(i).unwrap_or(&[0; 6]));
        }
        b.resize(cfg.value_size(), 0);
        cfg.update_bytes(&KEY0, &b)?;
        Ok(Rewriter {
            _attach: None,
            prog,
            stats,
        })
    }

    /// Frames rewritten and transmitted, and frames passed, summed over CPUs.
    pub fn counts(&self) -> Result<(u64, u64)> {
        let mut tx = 0;
        let mut pass = 0;
        // struct rw_stats { tx, pass } per CPU.
        for [t, p] in self.stats.lookup_percpu::<_, [u64; 2]>(&KEY0)? {
            tx += t;
            pass += p;
        }
        Ok((tx, pass))
    }
}

/// A native-mode `XDP_PASS` stub, for the peer of a veth that receives
/// XDP_TX or redirected frames (veth delivers those only when the receiving
/// end runs XDP), and to give a veth a NAPI instance that can be threaded and
/// pinned.
#[derive(Debug)]
pub struct PassStub {
    _attach: XdpAttachment,
    _prog: Program,
}

impl PassStub {
    /// Attaches the stub to `ifname` in `ns`.
    pub fn attach(ns: &str, ifname: &str) -> Result<Self> {
        let (prog, []) = load("perf_sink", objects::SINK, "perf_pass", [])?;
        Ok(PassStub {
            _attach: XdpAttachment::attach(ns, ifname, &prog, false)?,
            _prog: prog,
        })
    }
}

/// Sets a flag on SIGINT/SIGTERM (instead of dying), so that a harness can
/// finish its current step and tear its lab down; returns the flag. The
/// handlers are installed once.
pub fn stop_flag() -> &'static AtomicBool {
    static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    STOP.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&flag)) {
                eprintln!("perflab: cannot handle signal {sig}: {e}");
            }
        }
        flag
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proxyha::node::prereq::require_root;

    /// The lab's generator settings for tests (also the sinks' tests).
    pub(crate) fn cfg() -> GenConfig {
        GenConfig {
            dst_mac: [0, 0, 0x5e, 0, 1, 0x33],
            src_mac: [2, 0x50, 0x19, 0, 0, 1],
            src_ip: Ipv4Addr::new(198, 19, 0, 128),
            dst_ip: Ipv4Addr::new(198, 19, 0, 250),
            dst_port: 9090,
            sport_base: 1024,
            flows: 60_000,
            ports_per_ip: 64_512,
            redirect_ifindex: 0,
            syn_first: true,
            ipv6: false,
        }
    }

    #[test]
    fn config_bytes_match_the_c_layout() {
        let b = cfg().to_bytes(0).unwrap();
        assert_eq!(b.len(), 56);
        assert_eq!(&b[0..6], &[0, 0, 0x5e, 0, 1, 0x33]);
        assert_eq!(
            &b[12..16],
            &u32::from(Ipv4Addr::new(198, 19, 0, 128)).to_ne_bytes()
        );
        assert_eq!(&b[20..22], &9090u16.to_ne_bytes());
        assert_eq!(&b[24..28], &60_000u32.to_ne_bytes());
        assert_eq!(&b[36..40], &1u32.to_ne_bytes());
        assert_eq!(&b[52..56], &0u32.to_ne_bytes(), "IPv4");
        let b6 = GenConfig {
            ipv6: true,
            ..cfg()
        }
        .to_bytes(0)
        .unwrap();
        assert_eq!(&b6[52..56], &1u32.to_ne_bytes(), "IPv6");
    }

    #[test]
    fn generated_ipv6_frames_are_proxyhas_ipv6_flows_when_root() {
        use proxyha::dataplane::classify::{self, Filter, Verdict, ipv6_flow};
        use proxyha::wire::checksum;
        use std::net::Ipv6Addr;
        if !require_root("generated_ipv6_frames_are_proxyhas_ipv6_flows_when_root") {
            return;
        }
        let c = GenConfig {
            flows: 3,
            ports_per_ip: 2,
            ipv6: true,
            dst_mac: proxyha::wire::ethernet::Address::vrrp_virtual_ipv6(0x33).octets(),
            ..cfg()
        };
        let vip6 = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0xc613, 0x00fa);
        let filter = Filter::new(0x33, [2, 0, 0, 0, 0, 2])
            .with_vip6(vip6)
            .with_ports([9090]);
        let mut g = Generator::detached(&c).unwrap();
        for n in 0..6u32 {
            let (verdict, f) = g.frame().unwrap();
            assert_eq!(verdict, 3, "XDP_TX");
            assert_eq!(f.len(), 84);
            assert_eq!(f[..6], c.dst_mac);
            assert_eq!(f[12..14], [0x86, 0xdd]);
            let flow = n % 3;
            let src = Ipv6Addr::from(
                (0x2001_0002_u128 << 96) | u128::from(u32::from(c.src_ip) + flow / 2),
            );
            assert_eq!(f[22..38], src.octets(), "2001:2::<source>");
            assert_eq!(f[38..54], vip6.octets(), "2001:2::<VIP>");
            // The TCP checksum over the IPv6 pseudo-header (RFC 8200 §8.1).
            let seg = &f[54..];
            let mut pseudo = checksum::accumulate(0, &f[22..54]);
            pseudo = checksum::accumulate(pseudo, &[0, 0, 0, 30, 0, 0, 0, 6]);
            assert_eq!(
                checksum::finish(checksum::accumulate(pseudo, seg)),
                0,
                "frame {n}: TCP checksum"
            );
            // What proxyha's workers make of it: a balanced IPv6 flow.
            let sport = 1024 + (flow % 2) as u16;
            match classify::classify(&filter, &f) {
                Verdict::ProxyFlow(p) => {
                    assert_eq!(p.key, ipv6_flow::key(src, vip6, sport, 9090, 6));
                }
                other => panic!("frame {n}: {other:?}"),
            }
        }
    }

    #[test]
    fn config_rejects_out_of_range_values() {
        let mut c = cfg();
        c.flows = 0;
        assert!(c.to_bytes(0).is_err());
        c.flows = MAX_FLOWS + 1;
        assert!(c.to_bytes(0).is_err());
        let mut c = cfg();
        c.ports_per_ip = 64_513;
        assert!(c.to_bytes(0).is_err());
        c.ports_per_ip = 0;
        assert!(c.to_bytes(0).is_err());
    }

    #[test]
    fn generated_frames_are_valid_tcp_syn_then_data_when_root() {
        use proxyha::wire::{checksum, ethernet, ipv4};
        if !require_root("generated_frames_are_valid_tcp_syn_then_data_when_root") {
            return;
        }
        let mut c = cfg();
        c.flows = 3;
        c.ports_per_ip = 2;
        let mut g = Generator::detached(&c).unwrap();
        let mut last_ts = 0u64;
        for n in 0..7u32 {
            let (verdict, f) = g.frame().unwrap();
            assert_eq!(verdict, 3, "XDP_TX");
            assert_eq!(f.len(), 64);
            let eth = ethernet::Packet::new_checked(&f[..]).unwrap();
            assert_eq!(eth.dst_addr().as_bytes(), &c.dst_mac);
            assert_eq!(eth.src_addr().as_bytes(), &c.src_mac);
            let ip = ipv4::Packet::new_checked(eth.payload()).unwrap();
            assert!(ip.verify_checksum(), "frame {n}: IPv4 checksum");
            // Flow n % 3: source address base + flow / 2, port base + flow % 2.
            let flow = n % 3;
            let src = Ipv4Addr::from(u32::from(c.src_ip) + flow / 2);
            assert_eq!(ip.src_addr(), src);
            let seg = ip.payload();
            assert_eq!(seg.len(), 30);
            let pseudo = checksum::pseudo_header_v4(src, c.dst_ip, 6, 30);
            assert_eq!(
                checksum::finish(checksum::accumulate(pseudo, seg)),
                0,
                "frame {n}: TCP checksum"
            );
            assert_eq!(
                u16::from_be_bytes([seg[0], seg[1]]),
                1024 + (flow % 2) as u16
            );
            assert_eq!(u16::from_be_bytes([seg[2], seg[3]]), 9090);
            let flags = seg[13];
            if n < 3 {
                assert_eq!(flags, 0x02, "frame {n}: the first pass is SYN");
            } else {
                assert_eq!(flags, 0x18, "frame {n}: then ACK|PSH");
            }
            let payload = &seg[20..];
            assert_eq!(u32::from_be_bytes(payload[..4].try_into().unwrap()), n);
            let mut ts = [0u8; 8];
            ts[2..].copy_from_slice(&payload[4..10]);
            let ts = u64::from_be_bytes(ts);
            assert!(ts >= last_ts, "timestamps never go back");
            last_ts = ts;
        }
        assert_eq!(g.seq().unwrap(), 7);
    }

    #[test]
    fn rewrite_baseline_sets_macs_and_keeps_the_ip_packet_when_root() {
        if !require_root("rewrite_baseline_sets_macs_and_keeps_the_ip_packet_when_root") {
            return;
        }
        let c = cfg();
        let (s1, s2) = ([2, 0x50, 0x19, 0, 0, 0x11], [2, 0x50, 0x19, 0, 0, 0x12]);
        let rw = Rewriter::detached(&RewriteConfig {
            vmac: c.dst_mac,
            own_mac: [2, 0x50, 0x19, 0, 0, 2],
            vip: c.dst_ip,
            port: 9090,
            backends: vec![s1, s2],
        })
        .unwrap();
        let mut g = Generator::detached(&c).unwrap();
        let mut seen = [false; 2];
        for _ in 0..64 {
            let (_, f) = g.frame().unwrap();
            let (verdict, out) = rw.run_once(&f).unwrap();
            assert_eq!(verdict, 3, "XDP_TX");
            assert_eq!(&out[6..12], &[2, 0x50, 0x19, 0, 0, 2]);
            assert!(out[..6] == s1 || out[..6] == s2);
            seen[usize::from(out[..6] == s2)] = true;
            assert_eq!(&out[12..], &f[12..], "the IP packet is unchanged");
        }
        assert_eq!(seen, [true, true], "both backends get flows");
        // Not to the VIP's port: passed untouched.
        let (_, mut f) = g.frame().unwrap();
        f[37] ^= 1;
        let (verdict, out) = rw.run_once(&f).unwrap();
        assert_eq!(verdict, 2, "XDP_PASS");
        assert_eq!(out, f);
        assert_eq!(rw.counts().unwrap(), (64, 1));
    }

    #[test]
    fn embedded_objects_load_when_root() {
        // Loading needs CAP_BPF.
        if !require_root("embedded_objects_load_when_root") {
            return;
        }
        for (name, elf) in [
            ("perf_gen", objects::GEN),
            ("perf_sink", objects::SINK),
            ("perf_rewrite", objects::REWRITE),
        ] {
            Object::load(name, elf).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
