//! The perf lab's kernel pieces: loading the lab's BPF objects
//! (`src/bpf/perf_*.bpf.c`), entering network namespaces, attaching XDP
//! programs, the in-kernel MAC-rewrite baseline, and the packet generator.
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
//! payload, which the sinks ([`super::sinkcount`]) read for loss and latency.
//!
//! `BPF_PROG_TEST_RUN` uses the calling thread's network namespace to find
//! `ingress_ifindex`, so a [`Generator`] must run on a thread that entered
//! the generator's namespace ([`enter_netns`]).

use std::ffi::{CString, c_void};
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use libxdp_sys as sys;

/// Errors of the perf lab's kernel pieces.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// libbpf could not open or load a BPF object.
    #[error("BPF object {object}: {what}: {source}")]
    Object {
        /// The object's name.
        object: &'static str,
        /// The step that failed.
        what: &'static str,
        /// The errno.
        source: std::io::Error,
    },
    /// The object has no program or map of that name.
    #[error("BPF object {object}: no {kind} named {name}")]
    Missing {
        /// The object's name.
        object: &'static str,
        /// "program" or "map".
        kind: &'static str,
        /// The name looked for.
        name: String,
    },
    /// A map read or write failed.
    #[error("BPF map {map}: {what}: {source}")]
    Map {
        /// The map's name.
        map: String,
        /// "lookup" or "update".
        what: &'static str,
        /// The errno.
        source: std::io::Error,
    },
    /// A value passed to a map has the wrong size.
    #[error("BPF map {map}: value is {got} bytes, the map wants {want}")]
    ValueSize {
        /// The map's name.
        map: String,
        /// Bytes given.
        got: usize,
        /// Bytes the map expects.
        want: usize,
    },
    /// Entering a network namespace failed.
    #[error("network namespace {ns}: {source}")]
    Netns {
        /// The namespace name (under /run/netns).
        ns: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No interface of that name in the current namespace.
    #[error("no interface {0} in this network namespace")]
    NoInterface(String),
    /// Attaching or detaching an XDP program failed.
    #[error("XDP {what} on {ifname}: {source}")]
    Xdp {
        /// The interface.
        ifname: String,
        /// "attach" or "detach".
        what: &'static str,
        /// The errno.
        source: std::io::Error,
    },
    /// `BPF_PROG_TEST_RUN` failed.
    #[error("BPF_PROG_TEST_RUN (live frames): {0}")]
    TestRun(std::io::Error),
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
    /// The generator (`perf_gen`).
    pub const GEN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/perf_gen.bpf.o"));
    /// The sinks' drop-and-count program (`perf_sink`) and the `perf_pass` stub.
    pub const SINK: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/perf_sink.bpf.o"));
    /// Baseline (b): in-kernel MAC rewrite + XDP_TX (`perf_rewrite`).
    pub const REWRITE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/perf_rewrite.bpf.o"));
}

fn errno() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// A loaded BPF object (libbpf `bpf_object`), closed on drop.
#[derive(Debug)]
pub struct Object {
    obj: NonNull<sys::bpf_object>,
    name: &'static str,
}

// SAFETY: a `bpf_object` is only read (program/map fds) after load, and all
// mutation goes through `&mut self` or drop; libbpf keeps no thread-local state
// for it. The fds it owns are valid process-wide.
unsafe impl Send for Object {}
// SAFETY: the shared-reference methods only read fds out of the loaded object.
unsafe impl Sync for Object {}

impl Object {
    /// Opens and loads an ELF object from memory (one of [`objects`]).
    pub fn load(name: &'static str, elf: &'static [u8]) -> Result<Self> {
        let cname = CString::new(name).map_err(|_| Error::Config("object name has NUL".into()))?;
        // SAFETY: an all-zero `bpf_object_open_opts` is its documented default
        // state apart from `sz`, which we set.
        let mut opts: sys::bpf_object_open_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<sys::bpf_object_open_opts>();
        opts.object_name = cname.as_ptr();
        // SAFETY: `elf` is a valid buffer of `elf.len()` bytes for the call;
        // libbpf copies what it needs. `opts` and `cname` outlive the call.
        let raw = unsafe { sys::bpf_object__open_mem(elf.as_ptr().cast(), elf.len(), &opts) };
        let obj = NonNull::new(raw).ok_or_else(|| Error::Object {
            object: name,
            what: "open",
            source: errno(),
        })?;
        let this = Object { obj, name };
        // SAFETY: `obj` is a valid, opened, not yet loaded object.
        let rc = unsafe { sys::bpf_object__load(this.obj.as_ptr()) };
        if rc != 0 {
            return Err(Error::Object {
                object: name,
                what: "load (verifier)",
                source: std::io::Error::from_raw_os_error(-rc),
            });
        }
        Ok(this)
    }

    /// The fd of a program in the object.
    pub fn program_fd(&self, prog: &str) -> Result<i32> {
        let missing = || Error::Missing {
            object: self.name,
            kind: "program",
            name: prog.to_owned(),
        };
        let c = CString::new(prog).map_err(|_| missing())?;
        // SAFETY: `obj` is valid for self's lifetime; `c` is NUL-terminated.
        let p = unsafe { sys::bpf_object__find_program_by_name(self.obj.as_ptr(), c.as_ptr()) };
        if p.is_null() {
            return Err(missing());
        }
        // SAFETY: `p` is a program of the loaded object.
        let fd = unsafe { sys::bpf_program__fd(p) };
        if fd < 0 { Err(missing()) } else { Ok(fd) }
    }

    /// A map of the object.
    pub fn map(&self, map: &str) -> Result<Map> {
        let missing = || Error::Missing {
            object: self.name,
            kind: "map",
            name: map.to_owned(),
        };
        let c = CString::new(map).map_err(|_| missing())?;
        // SAFETY: `obj` is valid for self's lifetime; `c` is NUL-terminated.
        let m = unsafe { sys::bpf_object__find_map_by_name(self.obj.as_ptr(), c.as_ptr()) };
        if m.is_null() {
            return Err(missing());
        }
        // SAFETY: `m` is a map of the loaded object.
        let (fd, value_size) = unsafe { (sys::bpf_map__fd(m), sys::bpf_map__value_size(m)) };
        if fd < 0 {
            return Err(missing());
        }
        Ok(Map {
            fd,
            value_size: value_size as usize,
            name: map.to_owned(),
        })
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: `obj` came from bpf_object__open_mem and is closed once.
        unsafe { sys::bpf_object__close(self.obj.as_ptr()) }
    }
}

/// A BPF map with `u32` keys, borrowed from an [`Object`] (its fd is valid
/// while the object lives).
#[derive(Debug, Clone)]
pub struct Map {
    fd: i32,
    value_size: usize,
    name: String,
}

impl Map {
    /// Bytes per value (per CPU, for per-CPU maps).
    pub fn value_size(&self) -> usize {
        self.value_size
    }

    /// Writes `value` (exactly `value_size` bytes, or that times the number
    /// of possible CPUs rounded to 8 bytes each for per-CPU maps) at `key`.
    pub fn update(&self, key: u32, value: &[u8]) -> Result<()> {
        // SAFETY: key and value point at live memory of the sizes the map was
        // created with (the caller's slice length is checked by the kernel
        // copying exactly value_size bytes; we pass slices sized by callers in
        // this module from `value_size`).
        let rc = unsafe {
            sys::bpf_map_update_elem(
                self.fd,
                (&key as *const u32).cast(),
                value.as_ptr().cast(),
                0,
            )
        };
        if rc != 0 {
            return Err(Error::Map {
                map: self.name.clone(),
                what: "update",
                source: errno(),
            });
        }
        Ok(())
    }

    /// Reads the value at `key` into `out` (sized as for [`Map::update`]).
    pub fn lookup(&self, key: u32, out: &mut [u8]) -> Result<()> {
        // SAFETY: `out` is writable for the value size (callers size it from
        // `value_size` and the CPU count); `key` lives across the call.
        let rc = unsafe {
            sys::bpf_map_lookup_elem(
                self.fd,
                (&key as *const u32).cast(),
                out.as_mut_ptr().cast::<c_void>(),
            )
        };
        if rc != 0 {
            return Err(Error::Map {
                map: self.name.clone(),
                what: "lookup",
                source: errno(),
            });
        }
        Ok(())
    }

    /// Writes a plain (not per-CPU) value after checking its size.
    pub fn set(&self, key: u32, value: &[u8]) -> Result<()> {
        if value.len() != self.value_size {
            return Err(Error::ValueSize {
                map: self.name.clone(),
                got: value.len(),
                want: self.value_size,
            });
        }
        self.update(key, value)
    }

    /// Reads a per-CPU value: one `value_size` slice per possible CPU.
    pub fn lookup_percpu(&self, key: u32) -> Result<Vec<Vec<u8>>> {
        let cpus = possible_cpus();
        let stride = self.value_size.div_ceil(8) * 8;
        let mut buf = vec![0u8; stride * cpus];
        self.lookup(key, &mut buf)?;
        Ok(buf
            .chunks(stride)
            .map(|c| c[..self.value_size].to_vec())
            .collect())
    }

    /// Zeroes a per-CPU value on every CPU.
    pub fn zero_percpu(&self, key: u32) -> Result<()> {
        let stride = self.value_size.div_ceil(8) * 8;
        self.update(key, &vec![0u8; stride * possible_cpus()])
    }
}

/// The number of possible CPUs (the per-CPU map value count), from
/// `/sys/devices/system/cpu/possible` (`0-1`, `0`, `0-3,5`...).
pub fn possible_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| parse_cpu_list(s.trim()))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The highest CPU in a kernel CPU list plus one (`0-1` → 2).
fn parse_cpu_list(s: &str) -> Option<usize> {
    let mut max = None;
    for part in s.split(',') {
        let last = part.rsplit('-').next()?.trim().parse::<usize>().ok()?;
        max = Some(max.map_or(last, |m: usize| m.max(last)));
    }
    max.map(|m| m + 1)
}

/// Moves the calling thread into the network namespace `/run/netns/{ns}`.
/// Only this thread changes namespace; use a dedicated thread.
pub fn enter_netns(ns: &str) -> Result<()> {
    let err = |source| Error::Netns {
        ns: ns.to_owned(),
        source,
    };
    let f = File::open(format!("/run/netns/{ns}")).map_err(err)?;
    // SAFETY: `f` is an open namespace file for the duration of the call;
    // setns only changes the calling thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(err(errno()));
    }
    Ok(())
}

/// Runs `f` on a scoped thread inside the namespace `ns` and returns its
/// result.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            enter_netns(ns)?;
            f()
        })
        .join()
        .map_err(|_| Error::Thread)?
    })
}

/// The ifindex of `ifname` in the calling thread's namespace.
pub fn ifindex(ifname: &str) -> Result<u32> {
    let c = CString::new(ifname).map_err(|_| Error::NoInterface(ifname.to_owned()))?;
    // SAFETY: `c` is NUL-terminated and lives across the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        Err(Error::NoInterface(ifname.to_owned()))
    } else {
        Ok(idx)
    }
}

const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// An XDP program attached to an interface in a namespace; detached on drop
/// (deleting the namespace also removes it).
#[derive(Debug)]
pub struct XdpAttachment {
    ns: String,
    ifname: String,
    flags: u32,
}

impl XdpAttachment {
    /// Attaches `prog_fd` to `ifname` in namespace `ns`, in native (driver)
    /// mode, or generic (skb) mode when `generic`. Replaces whatever program
    /// was there.
    pub fn attach(ns: &str, ifname: &str, prog_fd: i32, generic: bool) -> Result<Self> {
        let flags = if generic {
            XDP_FLAGS_SKB_MODE
        } else {
            XDP_FLAGS_DRV_MODE
        };
        in_netns(ns, || {
            let idx = ifindex(ifname)?;
            // SAFETY: plain syscall wrapper; a null opts pointer means defaults.
            let rc = unsafe { sys::bpf_xdp_attach(idx as i32, prog_fd, flags, std::ptr::null()) };
            if rc != 0 {
                return Err(Error::Xdp {
                    ifname: ifname.to_owned(),
                    what: "attach",
                    source: std::io::Error::from_raw_os_error(-rc),
                });
            }
            Ok(())
        })?;
        Ok(XdpAttachment {
            ns: ns.to_owned(),
            ifname: ifname.to_owned(),
            flags,
        })
    }

    /// Detaches now, reporting errors (drop ignores them).
    pub fn detach(self) -> Result<()> {
        let r = detach(&self.ns, &self.ifname, self.flags);
        std::mem::forget(self);
        r
    }
}

fn detach(ns: &str, ifname: &str, flags: u32) -> Result<()> {
    in_netns(ns, || {
        let idx = ifindex(ifname)?;
        // SAFETY: plain syscall wrapper; a null opts pointer means defaults.
        let rc = unsafe { sys::bpf_xdp_detach(idx as i32, flags, std::ptr::null()) };
        if rc != 0 {
            return Err(Error::Xdp {
                ifname: ifname.to_owned(),
                what: "detach",
                source: std::io::Error::from_raw_os_error(-rc),
            });
        }
        Ok(())
    })
}

impl Drop for XdpAttachment {
    fn drop(&mut self) {
        // The namespace may already be gone, which removed the program too.
        let _ = detach(&self.ns, &self.ifname, self.flags);
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
        b.extend_from_slice(&0u32.to_ne_bytes());
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

/// The live-frames packet generator. Create and use it on a thread that is
/// in the generator's namespace.
#[derive(Debug)]
pub struct Generator {
    _obj: Object,
    prog_fd: i32,
    cfg: Map,
    state: Map,
    ifindex: u32,
    config: GenConfig,
}

impl Generator {
    /// Loads `perf_gen` and configures it to send out of `ifname` (in the
    /// calling thread's namespace).
    pub fn new(ifname: &str, config: &GenConfig) -> Result<Self> {
        let obj = Object::load("perf_gen", objects::GEN)?;
        let prog_fd = obj.program_fd("perf_gen")?;
        let cfg = obj.map("perf_gen_cfg")?;
        let state = obj.map("perf_gen_state")?;
        let ifindex = ifindex(ifname)?;
        cfg.set(0, &config.to_bytes(0)?)?;
        Ok(Generator {
            _obj: obj,
            prog_fd,
            cfg,
            state,
            ifindex,
            config: config.clone(),
        })
    }

    /// Loads `perf_gen` for [`Generator::frame`] only (no interface: frames
    /// are returned, not sent).
    pub fn detached(config: &GenConfig) -> Result<Self> {
        let obj = Object::load("perf_gen", objects::GEN)?;
        let prog_fd = obj.program_fd("perf_gen")?;
        let cfg = obj.map("perf_gen_cfg")?;
        let state = obj.map("perf_gen_state")?;
        cfg.set(0, &config.to_bytes(0)?)?;
        Ok(Generator {
            _obj: obj,
            prog_fd,
            cfg,
            state,
            ifindex: 0,
            config: config.clone(),
        })
    }

    /// Runs the program once in ordinary (not live) test mode and returns the
    /// frame it built, with its XDP verdict. Advances the sequence like a
    /// sent frame. For tests of what the generator puts on the wire.
    pub fn frame(&mut self) -> Result<(u32, Vec<u8>)> {
        test_run_once(self.prog_fd, &TEMPLATE)
    }

    /// Changes what is sent (e.g. the destination MAC between cases).
    pub fn configure(&mut self, config: &GenConfig) -> Result<()> {
        self.cfg.set(0, &config.to_bytes(0)?)?;
        self.config = config.clone();
        Ok(())
    }

    /// Packets built so far (the next payload sequence number).
    pub fn seq(&self) -> Result<u64> {
        let mut v = vec![0u8; self.state.value_size()];
        self.state.lookup(0, &mut v)?;
        Ok(u64_at(&v, 0))
    }

    /// Restarts the sequence (the next packets are SYNs again) and the pacing.
    pub fn reset_seq(&mut self) -> Result<()> {
        self.state.set(0, &vec![0u8; self.state.value_size()])
    }

    /// One `BPF_PROG_TEST_RUN` call that runs the program `repeat` times
    /// (each run sends a frame, or in paced mode drops until one is due).
    pub fn burst(&mut self, repeat: u32) -> Result<()> {
        // SAFETY: an all-zero `xdp_md` is a valid context; we set the ifindex.
        let mut ctx: sys::xdp_md = unsafe { std::mem::zeroed() };
        ctx.data_end = TEMPLATE.len() as u32;
        ctx.ingress_ifindex = self.ifindex;
        // SAFETY: an all-zero `bpf_test_run_opts` is its default; we set sz.
        let mut opts: sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<sys::bpf_test_run_opts>();
        opts.data_in = TEMPLATE.as_ptr().cast();
        opts.data_size_in = TEMPLATE.len() as u32;
        opts.ctx_in = (&ctx as *const sys::xdp_md).cast();
        opts.ctx_size_in = std::mem::size_of::<sys::xdp_md>() as u32;
        opts.repeat = repeat.min(i32::MAX as u32) as i32;
        opts.flags = sys::BPF_F_TEST_XDP_LIVE_FRAMES;
        // SAFETY: `opts` points at `TEMPLATE` and `ctx`, both alive across the
        // call; no output buffers are given (live frames mode forbids them).
        let rc = unsafe { sys::bpf_prog_test_run_opts(self.prog_fd, &mut opts) };
        if rc != 0 {
            return Err(Error::TestRun(std::io::Error::from_raw_os_error(-rc)));
        }
        Ok(())
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
        self.cfg.set(0, &self.config.to_bytes(interval_ns)?)?;
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
    prog_fd: i32,
    stats: Map,
    _obj: Object,
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
        rw._attach = Some(XdpAttachment::attach(ns, ifname, rw.prog_fd, false)?);
        Ok(rw)
    }

    /// Runs the program once on `frame` (ordinary test mode): its verdict and
    /// the frame as it left it. For tests.
    pub fn run_once(&self, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
        test_run_once(self.prog_fd, frame)
    }

    /// Loads and configures `perf_rewrite` without attaching it.
    pub fn detached(config: &RewriteConfig) -> Result<Self> {
        if config.backends.is_empty() || config.backends.len() > 8 {
            return Err(Error::Config(format!(
                "{} backends: must be 1..=8",
                config.backends.len()
            )));
        }
        let obj = Object::load("perf_rewrite", objects::REWRITE)?;
        let cfg = obj.map("perf_rw_cfg")?;
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
        cfg.set(0, &b)?;
        let stats = obj.map("perf_rw_stats")?;
        Ok(Rewriter {
            _attach: None,
            prog_fd: obj.program_fd("perf_rewrite")?,
            stats,
            _obj: obj,
        })
    }

    /// Frames rewritten and transmitted, and frames passed, summed over CPUs.
    pub fn counts(&self) -> Result<(u64, u64)> {
        let mut tx = 0;
        let mut pass = 0;
        for v in self.stats.lookup_percpu(0)? {
            tx += u64_at(&v, 0);
            pass += u64_at(&v, 8);
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
    _obj: Object,
}

impl PassStub {
    /// Attaches the stub to `ifname` in `ns`.
    pub fn attach(ns: &str, ifname: &str) -> Result<Self> {
        let obj = Object::load("perf_sink", objects::SINK)?;
        let attach = XdpAttachment::attach(ns, ifname, obj.program_fd("perf_pass")?, false)?;
        Ok(PassStub {
            _attach: attach,
            _obj: obj,
        })
    }
}

/// Runs program `prog_fd` once on a copy of `frame` in ordinary
/// `BPF_PROG_TEST_RUN` mode and returns its verdict and the frame as the
/// program left it.
pub(crate) fn test_run_once(prog_fd: i32, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
    let mut out = vec![0u8; frame.len() + 256];
    // SAFETY: an all-zero `bpf_test_run_opts` is its default; we set sz.
    let mut opts: sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<sys::bpf_test_run_opts>();
    opts.data_in = frame.as_ptr().cast();
    opts.data_size_in = frame.len() as u32;
    opts.data_out = out.as_mut_ptr().cast();
    opts.data_size_out = out.len() as u32;
    opts.repeat = 1;
    // SAFETY: `opts` points at `frame` (read) and `out` (written, its length
    // given), both alive across the call.
    let rc = unsafe { sys::bpf_prog_test_run_opts(prog_fd, &mut opts) };
    if rc != 0 {
        return Err(Error::TestRun(std::io::Error::from_raw_os_error(-rc)));
    }
    out.truncate((opts.data_size_out as usize).min(out.len()));
    Ok((opts.retval, out))
}

/// The native-endian `u64` at `off` in `b` (0 when out of range).
pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

/// Whether the process runs as root (the lab needs it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_stop_signal(_sig: libc::c_int) {
    STOP.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Installs SIGINT/SIGTERM handlers that only set a flag, so that a harness
/// can finish its current step and tear its lab down; returns the flag.
pub fn stop_flag() -> &'static std::sync::atomic::AtomicBool {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; `signal` has no other preconditions.
        unsafe {
            libc::signal(sig, on_stop_signal as *const () as libc::sighandler_t);
        }
    }
    &STOP
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GenConfig {
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
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-3,5"), Some(6));
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn generated_frames_are_valid_tcp_syn_then_data_when_root() {
        use crate::wire::{checksum, ethernet, ipv4};
        if !is_root() {
            eprintln!("skipped: not root");
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
        if !is_root() {
            eprintln!("skipped: not root");
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
        // Loading needs CAP_BPF; as an ordinary user this checks nothing.
        if !crate::xsk::perfgen::is_root() {
            eprintln!("skipped: not root");
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
