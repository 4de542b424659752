//! The harness's host helpers: commands (in namespaces), nftables, CPU
//! pinning and priorities, threaded NAPI, and the CPU-time and wire counters
//! it samples.

use std::process::{Command, Stdio};

use crate::anyhow_lite::{Context, Error, bail};
use crate::{IF_DIR, NS_DIR, NS_SW, SW_DIR, SW_GEN};

/// Runs a command, returning its stdout; fails with its stderr.
pub(crate) fn sh(args: &[&str]) -> Result<String, Error> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .context(format!("running {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Loads an nftables ruleset in the director's namespace.
pub(crate) fn nft_load(rules: &str) -> Result<(), Error> {
    use std::io::Write as _;
    let mut child = Command::new("ip")
        .args(["netns", "exec", NS_DIR, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(rules.as_bytes())
            .context("writing to nft")?;
    }
    let out = child.wait_with_output().context("waiting for nft")?;
    if !out.status.success() {
        bail!(
            "nft -f - failed: {}\n{rules}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

pub(crate) fn nsexec(ns: &str, cmd: &str) -> Result<String, Error> {
    sh(&["ip", "netns", "exec", ns, "sh", "-c", cmd])
}

pub(crate) fn parse_cpus(s: &str) -> Result<Vec<usize>, Error> {
    let v = s
        .split(',')
        .map(|c| c.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .context(format!("CPU list {s:?}"))?;
    if v.is_empty() {
        bail!("empty CPU list");
    }
    Ok(v)
}

/// Nice value of the lab's own threads and NAPI threads: the machine is
/// shared, and at nice 0 a compiler on the same CPU halves the generator.
pub(crate) const NICE: &str = "-20";

/// The calling thread's id (from /proc/thread-self -> PID/task/TID).
pub(crate) fn own_tid() -> Option<u32> {
    std::fs::read_link("/proc/thread-self")
        .ok()?
        .file_name()?
        .to_str()?
        .parse()
        .ok()
}

pub(crate) fn renice(tid: u32) {
    let _ = sh(&["renice", "-n", NICE, "-p", &tid.to_string()]);
}

/// Pins the calling thread to `cpu` and raises its priority.
pub(crate) fn pin_self(cpu: usize) {
    let _ = core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
    if let Some(tid) = own_tid() {
        renice(tid);
    }
}

/// Threads of NAPI instances of an interface (`napi/IFNAME-ID`).
pub(crate) fn napi_threads(ifname: &str) -> Vec<u32> {
    let prefix = format!("napi/{ifname}-");
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                && comm.trim_end().starts_with(&prefix)
            {
                out.push(pid);
            }
        }
    }
    out.sort_unstable();
    out
}

/// Sets the director link's channels (queues in use) on both ends.
pub(crate) fn set_channels(n: u32) -> Result<(), Error> {
    // veth refuses more TX channels than an XDP-running peer has RX
    // channels: grow the peer (psw-dir, which runs the stub) first, shrink
    // it last.
    let s = n.to_string();
    let dir = [
        "ip", "netns", "exec", NS_DIR, "ethtool", "-L", IF_DIR, "rx", &s, "tx", &s,
    ];
    let sw = [
        "ip", "netns", "exec", NS_SW, "ethtool", "-L", SW_DIR, "rx", &s, "tx", &s,
    ];
    if n > 1 {
        sh(&sw)?;
        sh(&dir)?;
    } else {
        sh(&dir)?;
        sh(&sw)?;
    }
    Ok(())
}

/// Turns on threaded NAPI for an interface and pins its NAPI threads, the
/// i-th (by NAPI id) to `cpus[i]` (the last CPU repeats).
pub(crate) fn thread_and_pin(
    ns: &str,
    ifname: &str,
    cpus: &[usize],
) -> Result<Vec<(u32, usize)>, Error> {
    nsexec(
        ns,
        &format!("echo 1 > /sys/class/net/{ifname}/threaded 2>/dev/null || true"),
    )?;
    let mut pids = napi_threads(ifname);
    // Order by NAPI id (the comm's suffix), which follows the queue index.
    pids.sort_by_key(|p| {
        std::fs::read_to_string(format!("/proc/{p}/comm"))
            .ok()
            .and_then(|c| c.trim().rsplit('-').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    });
    let mut out = Vec::new();
    for (i, pid) in pids.iter().enumerate() {
        let cpu = cpus.get(i).or(cpus.last()).copied().unwrap_or(0);
        sh(&["taskset", "-pc", &cpu.to_string(), &pid.to_string()])?;
        renice(*pid);
        out.push((*pid, cpu));
    }
    Ok(out)
}

/// Turns threaded NAPI off for an interface.
pub(crate) fn unthread(ns: &str, ifname: &str) -> Result<(), Error> {
    nsexec(
        ns,
        &format!("echo 0 > /sys/class/net/{ifname}/threaded 2>/dev/null || true"),
    )?;
    Ok(())
}

/// (ns run on a CPU, ns runnable but waiting) of a task (`/proc/PID/schedstat`).
pub(crate) fn task_sched(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap_or_default();
    let mut it = s.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// Nanoseconds a task has run on a CPU (`/proc/PID/schedstat`, first field).
pub(crate) fn task_runtime_ns(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Per-CPU (busy, total) jiffies from /proc/stat.
pub(crate) fn cpu_times() -> Vec<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().take(8).sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

/// Busy fraction of each CPU between two `cpu_times` samples.
pub(crate) fn cpu_busy(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let t = y.1.saturating_sub(x.1);
            if t == 0 {
                0.0
            } else {
                y.0.saturating_sub(x.0) as f64 / t as f64
            }
        })
        .collect()
}

/// Packets the switch received from the generator (frames that made it onto
/// the wire).
pub(crate) fn wire_packets() -> u64 {
    let Ok(out) = sh(&["ip", "-n", NS_SW, "-s", "-j", "link", "show", SW_GEN]) else {
        return 0;
    };
    serde_json::from_str::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| {
            v.get(0)?
                .get("stats64")?
                .get("rx")?
                .get("packets")?
                .as_u64()
        })
        .unwrap_or(0)
}
