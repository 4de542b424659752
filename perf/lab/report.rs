//! Machine facts, the text summary and the lab section of perf/RESULTS.md.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::RunResult;
use crate::anyhow_lite::{Context, Error};

/// The machine a run was measured on.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cpus: usize,
    pub kernel: String,
    pub load_avg_at_start: String,
}

pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cpu_model,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        load_avg_at_start: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_owned(),
    }
}

fn capture(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub fn utc_now() -> String {
    capture("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).unwrap_or_else(|| "unknown".into())
}

/// The commit the binary was run from, with `-dirty` when the tree has changes.
pub fn commit() -> String {
    let head =
        capture("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    // The harness's own outputs do not make the code dirty.
    match capture(
        "git",
        &[
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":!perf/RESULTS.md",
            ":!perf/results",
        ],
    ) {
        Some(s) if !s.is_empty() => {
            let files: Vec<&str> = s.lines().map(|l| l.get(3..).unwrap_or(l)).collect();
            format!("{head}-dirty ({})", files.join(", "))
        }
        _ => head,
    }
}

/// The markdown tables of a run.
pub fn tables(run: &RunResult) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| case | what | Mpps at sinks, median (min–max) | loss (of frames on the wire, flat out) | director CPU ns/pkt | sink split (repeat 1) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for c in &run.cases {
        let split = c
            .repeats
            .first()
            .map(|r| format!("{}/{}", r.sink_split[0], r.sink_split[1]))
            .unwrap_or_default();
        let cpu = if c.median_cpu_ns_per_packet > 0.0 {
            format!("{:.0}", c.median_cpu_ns_per_packet)
        } else {
            "–".into()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} ({:.3}–{:.3}) | {:.1}% | {} | {} |",
            c.case_key(),
            c.what,
            c.median_mpps,
            c.min_mpps,
            c.max_mpps,
            c.median_loss * 100.0,
            cpu,
            split
        );
    }
    for (k, why) in &run.pending {
        let _ = writeln!(s, "| {k} | pending | – | – | – | {why} |");
    }
    if !run.ratios.is_empty() {
        let _ = writeln!(s);
        if run.paired_ratios.is_empty() {
            let _ = writeln!(s, "| ratio | value |");
            let _ = writeln!(s, "|---|---|");
            for (k, v) in &run.ratios {
                let _ = writeln!(s, "| {k} | {v:.2} |");
            }
        } else {
            let _ = writeln!(
                s,
                "| ratio | of the medians | paired (median of the per-round ratios) |"
            );
            let _ = writeln!(s, "|---|---|---|");
            for (k, v) in &run.ratios {
                let p = run
                    .paired_ratios
                    .get(k)
                    .map_or("–".to_owned(), |p| format!("{p:.2}"));
                let _ = writeln!(s, "| {k} | {v:.2} | {p} |");
            }
        }
    }
    if run.cases.iter().any(|c| !c.latency.is_empty()) {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Latency, generator to sink (one way, µs), at fixed offered rates of 50% and 90% of case {}'s maximum:",
            run.latency_reference.as_deref().unwrap_or("?")
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "| case | asked Mpps | offered Mpps | received Mpps | loss | p50 | p99 | p99.9 | max | samples |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
        for c in &run.cases {
            for p in &c.latency {
                let _ = writeln!(
                    s,
                    "| {} @{:.0}% | {:.3} | {:.3} | {:.3} | {:.1}% | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
                    c.case_key(),
                    p.fraction_of_reference * 100.0,
                    p.target_mpps,
                    p.offered_mpps,
                    p.received_mpps,
                    p.loss * 100.0,
                    p.p50_us,
                    p.p99_us,
                    p.p999_us,
                    p.max_us,
                    p.samples
                );
            }
        }
    }
    s
}

/// The short text summary printed at the end of a run.
pub fn summary(run: &RunResult) -> String {
    format!(
        "perf lab run {} at {} on {} ({} CPUs, kernel {})\n{}",
        run.commit,
        run.date_utc,
        run.machine.cpu_model,
        run.machine.cpus,
        run.machine.kernel,
        tables(run)
    )
}

const BEGIN: &str =
    "<!-- perflab:begin (written by proxyha-perflab; edit outside these markers) -->";
const END: &str = "<!-- perflab:end -->";

/// Rewrites the lab section of RESULTS.md (between the perflab markers, which
/// are appended when missing), leaving the rest of the file alone.
pub fn update_results_md(md: &Path, run: &RunResult, json: &Path, png: &Path) -> Result<(), Error> {
    let old = std::fs::read_to_string(md).unwrap_or_default();
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let base = abs(md.parent().unwrap_or(Path::new("."))).join("");
    let rel = |p: &Path| {
        let p = abs(p);
        p.strip_prefix(&base)
            .map(|r| r.to_string_lossy().into_owned())
            .unwrap_or_else(|_| p.to_string_lossy().into_owned())
    };
    let placement = run
        .cases
        .first()
        .map(|c| {
            // NAPI threads exist only while XDP runs on a veth: take every case's.
            let all: std::collections::BTreeMap<&String, &String> = run
                .cases
                .iter()
                .flat_map(|c| c.placement.napi.iter())
                .collect();
            // `napi/IF-ID` → the CPUs its threads were pinned to over the cases.
            let mut by_if: std::collections::BTreeMap<String, std::collections::BTreeSet<&String>> =
                std::collections::BTreeMap::new();
            for (k, v) in all.iter().filter(|(_, v)| v.starts_with("CPU")) {
                let base = k.rsplit_once('-').map_or(k.as_str(), |(b, _)| b).to_owned();
                by_if.entry(base).or_default().insert(v);
            }
            let pinned: Vec<String> = by_if
                .iter()
                .map(|(k, v)| {
                    let cpus: Vec<&str> = v.iter().map(|s| s.as_str()).collect();
                    format!("`{k}` → {}", cpus.join(" and "))
                })
                .collect();
            let softirq: Vec<String> = all
                .iter()
                .filter(|(_, v)| !v.starts_with("CPU"))
                .map(|(k, _)| k.trim_end_matches(" (softirq)").to_owned())
                .collect();
            format!(
                "all lab threads at nice -20 (the machine is shared); generator thread pinned to CPU{}; AF_XDP workers on CPU{} (a2: CPU1 and CPU0, with pdir0's second NAPI thread); threaded NAPI pinned: {}; NAPI in softirq on the CPU that queued the frame: {}.",
                c.placement.generator_cpu,
                c.placement.director_cpu,
                pinned.join(", "),
                softirq.join(", ")
            )
        })
        .unwrap_or_default();
    let mut sec = String::new();
    let _ = writeln!(sec, "{BEGIN}");
    let _ = writeln!(sec, "## Lab: forwarding through the director\n");
    let _ = writeln!(
        sec,
        "- **Date:** {} · **commit:** `{}` · **machine:** {}, {} vCPUs, kernel {} (load average at start: {}); the machine is shared, so compare cases only within one run.",
        run.date_utc,
        run.commit,
        run.machine.cpu_model,
        run.machine.cpus,
        run.machine.kernel,
        run.machine.load_avg_at_start
    );
    let _ = writeln!(
        sec,
        "- **Traffic:** {}-byte TCP frames to 198.19.0.250:9090 and MAC 00:00:5e:00:01:33 (cases a6 and e6: 84-byte IPv6 frames to [2001:2::c613:fa]:9090 and MAC 00:00:5e:00:02:33) over {} flows (proxyha's cases a, a2, abp, e, a6, e6, ot, ox: established first by an uncounted warm-up of four passes at 0.15 Mpps, SYN first, then ACK|PSH only; the others SYN first, then ACK|PSH), from the BPF_PROG_TEST_RUN live-frames generator, flat out for {:.1} s per repeat, {} repeats {}.",
        run.frame_bytes,
        run.flows,
        run.seconds_per_repeat,
        run.repeats,
        if run.interleaved {
            "in rounds (one repeat of every case per round, each set up afresh)"
        } else {
            "back to back"
        }
    );
    let _ = writeln!(sec, "- **CPU placement:** {placement}");
    let _ = writeln!(
        sec,
        "- **Reproduce (as root, from the repository root):** `scripts/setup.sh && cargo build --release --bin proxyha-perflab && {}`",
        run.command.replace(env!("CARGO_MANIFEST_DIR"), ".")
    );
    let _ = writeln!(sec, "- **Raw results:** `{}`\n", rel(json));
    sec.push_str(&tables(run));
    let _ = writeln!(sec, "\n![throughput and latency CDF]({})\n", rel(png));
    let _ = writeln!(sec, "{END}");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if e > b => {
            let rest = old[e + END.len()..].trim_start_matches('\n');
            let sep = if rest.is_empty() { "" } else { "\n" };
            format!("{}{}{}{}", &old[..b], sec, sep, rest)
        }
        _ => {
            let mut o = old;
            if !o.is_empty() && !o.ends_with("\n\n") {
                o.push('\n');
            }
            o + &sec
        }
    };
    std::fs::write(md, new).context(format!("writing {}", md.display()))
}
