//! The director cases: what each sets up on the director (in-kernel
//! baselines, nftables, the AF_XDP director child), and the generator thread
//! that drives them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::anyhow_lite::{Context, Error, bail};
use crate::director;
use crate::host::{nft_load, nsexec, own_tid, pin_self, set_channels};
use crate::perfgen::{self, GenConfig, Generator, PassStub, Plan, RewriteConfig, Rewriter};
use crate::{
    DIRECTOR_SOCKET, IF_DIR, IF_GEN, MAC_GEN, MAC_S1, MAC_S2, NS_DIR, NS_GEN, PORT, PORTS_PER_IP,
    RunArgs, SPORT_BASE, SRC_BASE, VIP, VMAC, VMAC6,
};

/// The director cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Case {
    Floor,
    A,
    A2,
    /// Case a with preferred busy polling on the socket.
    Abp,
    B,
    C,
    D,
    /// proxyha with the XDP fast path.
    E,
    /// Case a with IPv6 traffic.
    A6,
    /// Case e with IPv6 traffic.
    E6,
    /// Every flow the director's own share, through its workers and TAPs.
    OwnTap,
    /// Every flow the director's own share, installed flows handed to the
    /// stack from XDP.
    OwnXdp,
}

impl Case {
    pub(crate) fn parse(s: &str) -> Result<Case, Error> {
        Ok(match s.trim() {
            "floor" => Case::Floor,
            "a" => Case::A,
            "a2" => Case::A2,
            "abp" => Case::Abp,
            "b" => Case::B,
            "c" => Case::C,
            "d" => Case::D,
            "e" => Case::E,
            "a6" => Case::A6,
            "e6" => Case::E6,
            "ot" => Case::OwnTap,
            "ox" => Case::OwnXdp,
            other => {
                bail!("unknown case {other:?} (floor, a, a2, abp, b, c, d, e, a6, e6, ot, ox)")
            }
        })
    }

    pub(crate) fn key(self) -> &'static str {
        match self {
            Case::Floor => "floor",
            Case::A => "a",
            Case::A2 => "a2",
            Case::Abp => "abp",
            Case::B => "b",
            Case::C => "c",
            Case::D => "d",
            Case::E => "e",
            Case::A6 => "a6",
            Case::E6 => "e6",
            Case::OwnTap => "ot",
            Case::OwnXdp => "ox",
        }
    }

    pub(crate) fn what(self) -> &'static str {
        match self {
            Case::Floor => "no director: generator -> bridge -> sink 1",
            Case::A => "proxyha, 1 worker, AF_XDP copy mode",
            Case::A2 => "proxyha, 2 workers on 2 queues, AF_XDP copy mode",
            Case::Abp => {
                "proxyha, 1 worker, copy mode, preferred busy polling (SO_PREFER_BUSY_POLL, SO_BUSY_POLL 20 us, budget 64)"
            }
            Case::B => "in-kernel XDP MAC rewrite + XDP_TX",
            Case::C => "plain AF_XDP rx->tx hairpin",
            Case::D => "nftables DNAT, jhash over 2 sinks",
            Case::E => {
                "proxyha, 1 worker (adaptive polling), copy mode, XDP fast path (XDP_TX) for established flows"
            }
            Case::A6 => "case a with IPv6 traffic (84-byte frames to the IPv6 VIP)",
            Case::E6 => "case e with IPv6 traffic (84-byte frames to the IPv6 VIP)",
            Case::OwnTap => {
                "proxyha, every flow its own share: worker -> TAP -> stack (counted at the stack)"
            }
            Case::OwnXdp => {
                "proxyha (adaptive polling), every flow its own share: fast path XDP_PASS -> stack (counted at the stack)"
            }
        }
    }

    /// Whether the case's flows are established by a warm-up before each
    /// measurement, which then sends no SYN: proxyha's cases, whose fast
    /// path takes established flows only. Not the kernel baselines: to
    /// conntrack (d) every later ACK of a flow whose sink never answers is
    /// INVALID, so d keeps the SYN-first traffic of the earlier runs.
    pub(crate) fn warms_up(self) -> bool {
        matches!(
            self,
            Case::A
                | Case::A2
                | Case::Abp
                | Case::E
                | Case::A6
                | Case::E6
                | Case::OwnTap
                | Case::OwnXdp
        )
    }

    /// Whether the case sends IPv6 frames.
    pub(crate) fn ipv6(self) -> bool {
        matches!(self, Case::A6 | Case::E6)
    }

    /// Whether the case's frames end at the director's own stack (counted
    /// there) rather than at the sinks.
    pub(crate) fn own_share(self) -> bool {
        matches!(self, Case::OwnTap | Case::OwnXdp)
    }
}

/// What a case leaves set up on the director while it runs.
pub(crate) enum Setup {
    None,
    Rewriter(Rewriter),
    Nft(PassStub),
    Child(DirectorChild),
    /// An own-share case: the child, the VIP on the director's lo, and an
    /// nftables input counter that counts and drops what reaches the stack.
    Own(DirectorChild),
}

/// The nftables table of the own-share cases.
const OWN_TABLE: &str = "phperfown";

impl Setup {
    /// Director threads besides pdir0's NAPI (the AF_XDP workers).
    pub(crate) fn worker_tids(&self) -> &[u32] {
        match self {
            Setup::Child(c) | Setup::Own(c) => &c.tids,
            _ => &[],
        }
    }

    /// The AF_XDP director's received-frame counter, live over its control
    /// socket.
    pub(crate) fn live_rx(&self) -> Option<u64> {
        match self {
            Setup::Child(_) | Setup::Own(_) => {
                let reply = proxyha::node::admin::ask(
                    Path::new(DIRECTOR_SOCKET),
                    proxyha::node::admin::Request::Stats,
                )
                .ok()?;
                let report: proxyha::node::report::StatsReport =
                    serde_json::from_str(&reply).ok()?;
                Some(report.total.rx_frames)
            }
            _ => None,
        }
    }

    /// Frames the director's stack received for the VIP (the own-share
    /// cases' nftables counter).
    pub(crate) fn local_rx(&self) -> Option<u64> {
        let Setup::Own(_) = self else {
            return None;
        };
        let out = nsexec(NS_DIR, &format!("nft list table ip {OWN_TABLE}")).ok()?;
        let at = out.find("counter packets ")? + "counter packets ".len();
        out[at..].split_whitespace().next()?.parse().ok()
    }

    /// Removes the case's director setup; returns the child's counters.
    pub(crate) fn teardown(self) -> Result<Option<director::Report>, Error> {
        match self {
            Setup::None => Ok(None),
            Setup::Rewriter(rw) => {
                let (tx, pass) = rw.counts()?;
                Ok(Some(director::Report {
                    rx: tx + pass,
                    tx,
                    bound: "native XDP".into(),
                    ..director::Report::default()
                }))
            }
            Setup::Nft(_stub) => {
                nsexec(NS_DIR, "nft delete table ip phperf")?;
                Ok(None)
            }
            Setup::Child(c) => c.stop().map(Some),
            Setup::Own(c) => {
                let r = c.stop().map(Some);
                nsexec(
                    NS_DIR,
                    &format!("nft delete table ip {OWN_TABLE}; ip addr del {VIP}/32 dev lo"),
                )?;
                r
            }
        }
    }
}

/// The AF_XDP director (`proxyha-perflab director ...`) running in the
/// director's namespace. Stopped by closing its stdin; killed by PID on drop
/// if it is still running.
pub(crate) struct DirectorChild {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: Option<std::io::BufReader<std::process::ChildStdout>>,
    tids: Vec<u32>,
    queues: u32,
}

impl DirectorChild {
    fn start(
        mode: &str,
        args: &RunArgs,
        queues: u32,
        extra: &[&str],
    ) -> Result<DirectorChild, Error> {
        // With the fast path the worker sees only first packets: it polls
        // adaptively (the daemon's default), or its spinning would take the
        // CPU from the XDP program on the same core.
        let polling = extra.contains(&"--offload").then_some("adaptive");
        use std::io::BufRead as _;
        let exe = std::env::current_exe().context("finding my own executable")?;
        let cpus = if queues > 1 {
            args.worker_cpus2.clone()
        } else {
            args.worker_cpus.clone()
        };
        let mut child = Command::new("ip")
            .args(["netns", "exec", NS_DIR])
            .arg(exe)
            .args([
                "director",
                "--mode",
                mode,
                "--queues",
                &queues.to_string(),
                "--cpus",
                &cpus,
                "--polling",
                polling.unwrap_or(&args.polling),
                "--socket",
                DIRECTOR_SOCKET,
            ])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the AF_XDP director")?;
        let stdin = child.stdin.take();
        let mut stdout = child.stdout.take().map(std::io::BufReader::new);
        let mut this = DirectorChild {
            child,
            stdin,
            stdout: None,
            tids: Vec::new(),
            queues,
        };
        let mut line = String::new();
        if let Some(out) = stdout.as_mut() {
            out.read_line(&mut line)
                .context("reading the director's ready line")?;
        }
        let Some(rest) = line.trim().strip_prefix("ready") else {
            bail!("the AF_XDP director did not start (said {:?})", line.trim());
        };
        this.tids = rest
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        this.stdout = stdout;
        eprintln!("perflab: live rates: proxyha stats --socket {DIRECTOR_SOCKET} --watch");
        Ok(this)
    }

    fn stop(mut self) -> Result<director::Report, Error> {
        use std::io::BufRead as _;
        self.stdin.take();
        let mut line = String::new();
        if let Some(out) = self.stdout.as_mut() {
            out.read_line(&mut line)
                .context("reading the director's report")?;
        }
        let st = self.child.wait().context("waiting for the director")?;
        if self.queues > 1 {
            // The kernel releases AF_XDP sockets asynchronously; until then
            // it refuses fewer channels.
            let mut tries = 0;
            while let Err(e) = set_channels(1) {
                tries += 1;
                if tries > 50 {
                    return Err(e);
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
        if !st.success() {
            bail!("the AF_XDP director exited with {st}");
        }
        serde_json::from_str(line.trim()).context(format!("director report {:?}", line.trim()))
    }
}

impl Drop for DirectorChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stdin.take();
            thread::sleep(Duration::from_millis(300));
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn setup_case(case: Case, args: &RunArgs) -> Result<Setup, Error> {
    match case {
        Case::Floor => Ok(Setup::None),
        Case::B => Ok(Setup::Rewriter(Rewriter::attach(
            NS_DIR,
            IF_DIR,
            &RewriteConfig {
                vmac: VMAC,
                own_mac: VMAC,
                vip: VIP,
                port: PORT,
                backends: vec![MAC_S1, MAC_S2],
            },
        )?)),
        Case::D => {
            let rules = format!(
                "table ip phperf {{\n  chain pre {{\n    type nat hook prerouting priority dstnat; policy accept;\n    \
                 ip daddr {VIP} tcp dport {PORT} dnat to jhash ip saddr . tcp sport mod 2 \
                 map {{ 0 : 198.19.0.11, 1 : 198.19.0.12 }}\n  }}\n}}\n"
            );
            nft_load(&rules)?;
            // An XDP_PASS stub gives pdir0 a NAPI instance (threaded, pinnable),
            // as the XDP cases have.
            Ok(Setup::Nft(PassStub::attach(NS_DIR, IF_DIR)?))
        }
        Case::A | Case::A6 => Ok(Setup::Child(DirectorChild::start("proxyha", args, 1, &[])?)),
        Case::E | Case::E6 => Ok(Setup::Child(DirectorChild::start(
            "proxyha",
            args,
            1,
            &["--offload"],
        )?)),
        Case::OwnTap | Case::OwnXdp => {
            // The stack takes the VIP (on lo) from the TAPs and from pdir0;
            // an input rule counts and drops, so no RST is sent back.
            nsexec(
                NS_DIR,
                &format!("ip addr add {VIP}/32 dev lo && sysctl -qw net.ipv4.conf.all.rp_filter=0"),
            )?;
            nft_load(&format!(
                "table ip {OWN_TABLE} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    \
                 ip daddr {VIP} tcp dport {PORT} counter drop\n  }}\n}}\n"
            ))?;
            let extra: &[&str] = if case == Case::OwnXdp {
                &["--offload", "--own", "xdp"]
            } else {
                &["--own", "tap"]
            };
            match DirectorChild::start("proxyha", args, 1, extra) {
                Ok(c) => Ok(Setup::Own(c)),
                Err(e) => {
                    let _ = nsexec(
                        NS_DIR,
                        &format!("nft delete table ip {OWN_TABLE}; ip addr del {VIP}/32 dev lo"),
                    );
                    Err(e)
                }
            }
        }
        Case::Abp => Ok(Setup::Child(DirectorChild::start(
            "proxyha",
            args,
            1,
            &["--busy-poll"],
        )?)),
        Case::A2 => {
            set_channels(2)?;
            match DirectorChild::start("proxyha", args, 2, &[]) {
                Ok(c) => Ok(Setup::Child(c)),
                Err(e) => {
                    let _ = set_channels(1);
                    Err(e)
                }
            }
        }
        Case::C => Ok(Setup::Child(DirectorChild::start("hairpin", args, 1, &[])?)),
    }
}

/// Requests to the generator thread.
pub(crate) enum GenReq {
    Probe(mpsc::Sender<Vec<(u32, f64)>>),
    Run(
        Box<GenConfig>,
        Plan,
        mpsc::Sender<Result<perfgen::RunStats, String>>,
    ),
}

/// The generator: a thread in the generator's namespace, pinned to a CPU.
pub(crate) struct GenThread {
    pub(crate) tx: Option<mpsc::Sender<GenReq>>,
    handle: Option<thread::JoinHandle<()>>,
    pub(crate) tid: u32,
}

impl GenThread {
    pub(crate) fn start(cpu: usize, first: GenConfig) -> Result<GenThread, Error> {
        let (tx, rx) = mpsc::channel::<GenReq>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<u32, String>>();
        let handle = thread::Builder::new()
            .name("perflab-gen".into())
            .spawn(move || {
                let setup = (|| -> Result<Generator, String> {
                    proxyha::bpf::enter_netns(NS_GEN).map_err(|e| e.to_string())?;
                    pin_self(cpu);
                    Generator::new(IF_GEN, &first).map_err(|e| e.to_string())
                })();
                let mut generator = match setup {
                    Ok(g) => {
                        let _ = ready_tx.send(Ok(own_tid().unwrap_or(0)));
                        g
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(req) = rx.recv() {
                    let (cfg, plan, reply) = match req {
                        GenReq::Run(cfg, plan, reply) => (cfg, plan, reply),
                        GenReq::Probe(reply) => {
                            let mut v = Vec::new();
                            for n in [1u32, 64, 1024, 16384, 262144] {
                                let t = Instant::now();
                                let ok = generator.burst(n).is_ok();
                                v.push((
                                    n,
                                    if ok {
                                        t.elapsed().as_secs_f64() * 1e3
                                    } else {
                                        -1.0
                                    },
                                ));
                            }
                            let _ = reply.send(v);
                            continue;
                        }
                    };
                    let r = (|| {
                        generator.configure(&cfg)?;
                        generator.run(&plan)
                    })()
                    .map_err(|e| e.to_string());
                    let _ = reply.send(r);
                }
            })
            .context("spawning the generator thread")?;
        let tid = ready_rx
            .recv()
            .map_err(|_| Error("generator thread died".into()))?
            .map_err(|e| Error(format!("generator: {e}")))?;
        Ok(GenThread {
            tx: Some(tx),
            handle: Some(handle),
            tid,
        })
    }

    pub(crate) fn run(&self, cfg: GenConfig, plan: Plan) -> Result<perfgen::RunStats, Error> {
        let (rtx, rrx) = mpsc::channel();
        self.tx
            .as_ref()
            .ok_or_else(|| Error("generator stopped".into()))?
            .send(GenReq::Run(Box::new(cfg), plan, rtx))
            .map_err(|_| Error("generator thread gone".into()))?;
        rrx.recv()
            .map_err(|_| Error("generator thread gone".into()))?
            .map_err(|e| Error(format!("generator: {e}")))
    }
}

impl Drop for GenThread {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The warm-up before a measurement of a case that [`Case::warms_up`]: four
/// passes over the flows (SYN first) at 0.15 Mpps, which every case forwards
/// without loss, so that the measurement sees established flows (the fast
/// path's installed ones). Not counted.
pub(crate) fn warm_up_plan(flows: u32) -> Plan {
    Plan {
        rate: Some(150_000.0),
        count: 4 * u64::from(flows),
        duration: Duration::from_secs(5),
    }
}

/// The measured traffic: after a warm-up, ACK|PSH only (no SYN); else SYN
/// first, as in the earlier runs.
pub(crate) fn measured_config(case: Case, flows: u32) -> GenConfig {
    GenConfig {
        syn_first: !case.warms_up(),
        ..gen_config(case, flows)
    }
}

pub(crate) fn gen_config(case: Case, flows: u32) -> GenConfig {
    GenConfig {
        dst_mac: match case {
            Case::Floor => MAC_S1,
            c if c.ipv6() => VMAC6,
            _ => VMAC,
        },
        src_mac: MAC_GEN,
        src_ip: SRC_BASE,
        dst_ip: VIP,
        dst_port: PORT,
        sport_base: SPORT_BASE,
        flows,
        ports_per_ip: PORTS_PER_IP.min(flows.max(1)),
        redirect_ifindex: 0,
        syn_first: true,
        ipv6: case.ipv6(),
    }
}
