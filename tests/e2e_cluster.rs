//! End-to-end tests of the original's example cluster in network namespaces
//! (scripts/lab.sh): a client, an origin, director-a (99), director-b (89)
//! and scanner-c (0), each scanning node running squid on 9090, every node
//! running the proxyha binary built for this test run.
//!
//! They need root; without it each test prints why it skips. They run one
//! at a time (2 cores), and every lab is torn down on drop, even on failure.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::lab::{
    self, Lab, Options, Sampler, entries, finish_downloads, start_downloads, wait_until,
};

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One request: when it started and ended (unix seconds) and who served it.
type Sample = (f64, f64, Option<String>);

/// A bounded background request loop: one request every `gap`, each with a
/// short timeout, until stopped or `limit` has passed.
struct Loop {
    stop: Arc<AtomicBool>,
    handle: Option<thread::JoinHandle<Vec<Sample>>>,
}

impl Loop {
    fn start(lab: &Lab, gap: Duration, timeout_s: f32, limit: Duration) -> Loop {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let ns = lab.ns("client");
        let handle = thread::spawn(move || {
            let t = Instant::now();
            let mut out = Vec::new();
            while !s.load(Ordering::Relaxed) && t.elapsed() < limit {
                let start = unix_now();
                let o = Command::new("ip")
                    .args(["netns", "exec", &ns, "curl", "-s", "-m"])
                    .arg(timeout_s.to_string())
                    .args([
                        "-o",
                        "/dev/null",
                        "-D",
                        "-",
                        "-x",
                        "http://198.18.0.250:9090",
                    ])
                    .arg("http://198.18.0.200/index.html")
                    .output();
                let served = o
                    .ok()
                    .filter(|o| o.status.success())
                    .and_then(|o| lab::served_by(&String::from_utf8_lossy(&o.stdout)));
                out.push((start, unix_now(), served));
                thread::sleep(gap);
            }
            out
        });
        Loop {
            stop,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().unwrap()
    }
}

/// The gap between the last success that ended before `t` and the first
/// success that started after it.
fn downtime(results: &[Sample], t: f64) -> Option<f64> {
    let before = results
        .iter()
        .filter(|r| r.1 <= t && r.2.is_some())
        .map(|r| r.1)
        .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))));
    let after = results
        .iter()
        .filter(|r| r.0 > t && r.2.is_some())
        .map(|r| r.1)
        .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.min(x))));
    Some(after? - before?)
}

/// The timestamp (unix seconds) of the first log line of `node` containing `needle`
/// after line `skip`.
fn log_time(lab: &Lab, node: &str, needle: &str) -> Option<f64> {
    let text = std::fs::read_to_string(lab.path().join(node).join("proxyha.log")).ok()?;
    let line = text.lines().rev().find(|l| l.contains(needle))?;
    let ts = line.split_whitespace().next()?;
    // 2026-11-26T07:05:00.123Z
    let (date, time) = ts.trim_end_matches('Z').split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<f64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let days = days_from_civil(d[0], d[1], d[2]);
    Some(days as f64 * 86400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2])
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// VRRP itself: director-b is Master within Master_Down_Interval + 10% of
/// `killed`, timed from its own log so that no polling delay counts.
fn assert_takeover(lab: &Lab, killed: f64, mdi: f64, label: &str) {
    let became = log_time(lab, "director-b", "became Master").expect("takeover logged");
    let took = became - killed;
    eprintln!(
        "{label} takeover from director-b's log: {took:.3}s after kill -9 (limit {:.3}s)",
        mdi * 1.1
    );
    assert!(took <= mdi * 1.1, "{label} takeover took {took:.3}s");
}

#[test]
fn v2_election_balancing_failover_preemption() {
    let Some((_g, lab)) = Lab::start(
        "v2_election_balancing_failover_preemption",
        Options {
            prefix: "phe2",
            ..Options::default()
        },
    ) else {
        return;
    };
    // Election: 99 becomes Master after Master_Down_Interval, 89 stays Backup.
    let t = lab
        .wait_state("director-a", "Master", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("director-a never became Master\n{}", lab.logs()));
    assert_eq!(lab.vrrp_state("director-b"), "Backup", "{}", lab.logs());
    eprintln!(
        "election: director-a Master {:.2}s after the lab came up",
        t.as_secs_f64()
    );

    // The client resolves the VIP to the virtual MAC; ping reaches the Master.
    let ping = lab.exec("client", &["ping", "-c", "2", "-W", "1", "198.18.0.250"]);
    assert!(
        ping.status.success(),
        "ping VIP: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let neigh = lab.exec("client", &["ip", "neigh", "show", "198.18.0.250"]);
    assert!(
        String::from_utf8_lossy(&neigh.stdout).contains("00:00:5e:00:01:33"),
        "VIP not resolved to the virtual MAC: {}",
        String::from_utf8_lossy(&neigh.stdout)
    );

    // On the wire, tcpdump decodes our adverts exactly as the original's.
    let td = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("sw"),
            "timeout",
            "5",
            "tcpdump",
            "-np",
            "-c",
            "2",
            "-i",
            "br0",
            "vrrp",
        ])
        .output()
        .unwrap();
    let td = String::from_utf8_lossy(&td.stdout);
    assert!(
        td.contains("198.18.0.1 > 224.0.0.18: VRRPv2, Advertisement, vrid 51, prio 99, authtype none, intvl 1s, length 20"),
        "tcpdump -np vrrp printed: {td}"
    );

    // Discovery: both directors list every node with the right types and states.
    let ok = wait_until(Duration::from_secs(10), || {
        let a = lab
            .status("director-a")
            .map(|s| entries(&s))
            .unwrap_or_default();
        let b = lab
            .status("director-b")
            .map(|s| entries(&s))
            .unwrap_or_default();
        a.len() == 5 && b.len() == 5
    });
    assert!(ok.is_some(), "discovery incomplete\n{}", lab.logs());
    let a = entries(&lab.status("director-a").unwrap());
    let want = |d: &str, s: &str, k: &str| (d.to_string(), s.to_string(), k.to_string());
    for e in [
        want("director-a", "NETWORK", "director"),
        want("__SELF__", "OK", "scanning"),
        want("director-b", "REDUNDANT", "redundant"),
        want("director-b", "OK", "scanning"),
        want("scanner-c", "OK", "scanning"),
    ] {
        assert!(a.contains(&e), "director-a status lacks {e:?}: {a:?}");
    }
    let b = entries(&lab.status("director-b").unwrap());
    for e in [
        want("director-b", "REDUNDANT", "redundant"),
        want("__SELF__", "OK", "scanning"),
        want("director-a", "NETWORK", "director"),
        want("director-a", "OK", "scanning"),
        want("scanner-c", "OK", "scanning"),
    ] {
        assert!(b.contains(&e), "director-b status lacks {e:?}: {b:?}");
    }

    // 200 proxied requests all succeed and at least 2 nodes serve them.
    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..200 {
        let n = lab
            .request("/index.html", 3.0)
            .unwrap_or_else(|| panic!("request {i} failed\n{}", lab.logs()));
        *served.entry(n).or_default() += 1;
    }
    eprintln!("200 requests served by {served:?}");
    assert!(served.len() >= 2, "only {served:?} served");

    // Failover under load, with long-lived downloads in flight.
    let sampler = Sampler::start(&lab);
    let dls = start_downloads(&lab, 8);
    thread::sleep(Duration::from_secs(2));
    let reqs = Loop::start(
        &lab,
        Duration::from_millis(50),
        0.5,
        Duration::from_secs(40),
    );
    thread::sleep(Duration::from_secs(2));
    let killed = unix_now();
    lab.kill9("director-a");
    let takeover = lab
        .wait_state("director-b", "Master", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("director-b did not take over\n{}", lab.logs()));
    let master_up = unix_now();
    thread::sleep(Duration::from_secs(4));
    let results = reqs.finish();
    let dt = downtime(&results, killed).expect("no successes around the kill");
    // Master_Down_Interval for priority 89 at 1 s: 3 + (256-89)/256 s.
    let mdi = 3.0 + (256.0 - 89.0) / 256.0;
    eprintln!(
        "v2 failover: director-b Master {:.2}s after kill -9; client downtime {dt:.2}s (limit {:.2}s)",
        takeover.as_secs_f64(),
        mdi + 1.0
    );
    assert!(dt <= mdi + 1.0, "downtime {dt:.2}s > {:.2}s", mdi + 1.0);
    // VRRP itself: the Backup is Master within 3 x interval + skew + 10%
    // of the kill (from director-b's log, so no polling delay counts).
    assert_takeover(&lab, killed, mdi, "v2");
    // Once the new master is up, no request fails (allow the in-flight one).
    let failed_after: Vec<_> = results
        .iter()
        .filter(|r| r.0 > master_up + 0.6 && r.2.is_none())
        .collect();
    assert!(
        failed_after.is_empty(),
        "requests failed after takeover: {failed_after:?}"
    );

    let dl = finish_downloads(&lab, dls);
    let survived = dl.iter().filter(|d| d.1).count();
    eprintln!(
        "long-lived downloads across failover: {survived}/{} intact: {dl:?}",
        dl.len()
    );
    // Every connection runs across the takeover intact: the new master
    // steers their packets to the same node, because both directors built
    // the same Maglev table. That includes those on the killed director's
    // own node: its daemon is dead but its proxy answers director-b's probe,
    // so it is held STALE (keeps its flows) instead of FAILED.
    assert!(
        dl.iter().any(|(n, _)| n != "director-a"),
        "no download landed on a surviving node: {dl:?}"
    );
    for (node, intact) in &dl {
        assert!(
            *intact,
            "download served by {node} broke across the failover"
        );
    }
    let st = lab.status("director-b").expect("director-b status");
    assert!(
        entries(&st)
            .iter()
            .any(|(d, s, t)| d == "director-a" && t == "scanning" && s == "STALE"),
        "director-a (dead daemon, live proxy) not STALE on director-b: {st}"
    );

    // Preemption: the restarted director becomes Active again.
    lab.restart("director-a");
    let pre = lab
        .wait_state("director-a", "Master", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("director-a did not preempt\n{}", lab.logs()));
    assert!(
        lab.wait_state("director-b", "Backup", Duration::from_secs(3))
            .is_some()
    );
    eprintln!(
        "preemption: director-a Master again {:.2}s after restart",
        pre.as_secs_f64()
    );
    assert!(lab.request("/index.html", 3.0).is_some());
    // The kill -9 left its XDP program attached; the restart removed it.
    let log = std::fs::read_to_string(lab.path().join("director-a/proxyha.log")).unwrap();
    assert!(
        log.contains("detached 1 stale proxyha program"),
        "restart did not clean up the crashed run's XDP program"
    );

    let a_master = log_time(&lab, "director-a", "became Master").expect("director-a log");
    let b_backup = log_time(&lab, "director-b", "became Backup").expect("director-b log");
    let overlap = b_backup - a_master;
    eprintln!("preemption overlap (director-b Backup - director-a Master): {overlap:.3}s");
    assert!(
        overlap < 0.05,
        "two Masters for {overlap:.3}s at preemption"
    );

    // Graceful stop: the priority-0 advert hands over in Skew_Time.
    lab.sigterm("director-a");
    assert!(
        lab.wait_state("director-b", "Master", Duration::from_secs(5))
            .is_some(),
        "{}",
        lab.logs()
    );
    // A clean stop detaches the XDP program.
    assert!(
        wait_until(Duration::from_secs(5), || {
            let l = lab.exec("director-a", &["ip", "-d", "link", "show", "eth0"]);
            // The VIP the crashed run left on lo was taken over and removed too.
            let a = lab.exec("director-a", &["ip", "-4", "addr", "show", "dev", "lo"]);
            !String::from_utf8_lossy(&l.stdout).contains("prog/xdp")
                && !String::from_utf8_lossy(&a.stdout).contains("198.18.0.250")
        })
        .is_some(),
        "XDP program or VIP still there after SIGTERM"
    );
    let samples = sampler.finish();
    // The two directors are asked one after the other, a few ms apart, so a
    // sample can straddle the preemption hand-over (the new Master's first
    // advert makes the old one yield on receipt). Two Masters must never
    // persist from one sample to the next (100 ms), and the overlap measured
    // from both logs must be one advert's transit time.
    let dual: Vec<bool> = samples
        .iter()
        .map(|(a, b)| a == "Master" && b == "Master")
        .collect();
    let isolated = dual.iter().filter(|d| **d).count();
    assert!(
        !dual.windows(2).any(|w| w[0] && w[1]),
        "two Masters in consecutive samples: {samples:?}"
    );
    eprintln!(
        "two-Master samples: {isolated} of {} (none consecutive)",
        samples.len()
    );
    let stopped = log_time(&lab, "director-a", "node: stopping").expect("director-a stop log");
    let took = log_time(&lab, "director-b", "became Master").expect("director-b takeover log");
    let skew = (256.0 - 89.0) / 256.0;
    eprintln!(
        "graceful handover: {:.3}s from SIGTERM to director-b Master (Skew_Time {skew:.3}s)",
        took - stopped
    );
    assert!(
        took - stopped <= skew * 1.1 + 0.05,
        "handover took {:.3}s",
        took - stopped
    );
}

#[test]
fn v3_fast_failover() {
    let Some((_g, lab)) = Lab::start(
        "v3_fast_failover",
        Options {
            prefix: "phe3",
            vrrp_version: 3,
            ..Options::default()
        },
    ) else {
        return;
    };
    lab.wait_state("director-a", "Master", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("director-a never became Master\n{}", lab.logs()));
    assert!(
        wait_until(Duration::from_secs(5), || lab
            .request("/index.html", 2.0)
            .is_some())
        .is_some()
    );
    let reqs = Loop::start(
        &lab,
        Duration::from_millis(20),
        0.3,
        Duration::from_secs(20),
    );
    thread::sleep(Duration::from_secs(2));
    let killed = unix_now();
    lab.kill9("director-a");
    let takeover = lab
        .wait_state("director-b", "Master", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("director-b did not take over\n{}", lab.logs()));
    thread::sleep(Duration::from_secs(2));
    let results = reqs.finish();
    let dt = downtime(&results, killed).expect("no successes around the kill");
    eprintln!(
        "v3 (10 cs) failover: director-b Master {:.3}s after kill -9; client downtime {dt:.3}s",
        takeover.as_secs_f64()
    );
    assert!(dt <= 1.0, "v3 downtime {dt:.3}s > 1s");
    // Master_Down_Interval at 10 cs for priority 89: 3 x 0.1 + (256-89)/256 x 0.1 s.
    let mdi = 0.3 + (256.0 - 89.0) / 256.0 * 0.1;
    assert_takeover(&lab, killed, mdi, "v3");
}

#[test]
fn scanning_node_dies_and_rejoins() {
    let Some((_g, lab)) = Lab::start(
        "scanning_node_dies_and_rejoins",
        Options {
            prefix: "phe4",
            ..Options::default()
        },
    ) else {
        return;
    };
    lab.wait_state("director-a", "Master", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no Master\n{}", lab.logs()));
    let scanner_state = || {
        lab.status("director-a")
            .map(|s| entries(&s))
            .unwrap_or_default()
            .into_iter()
            .find(|e| e.0 == "scanner-c")
            .map(|e| e.1)
            .unwrap_or_default()
    };
    assert!(wait_until(Duration::from_secs(10), || scanner_state() == "OK").is_some());

    // `proxyha check` on the scanning node, proxy up.
    let cfg = lab.path().join("scanner-c/node.toml");
    let check = lab.exec(
        "scanner-c",
        &[
            lab::binary().to_str().unwrap(),
            "check",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    assert!(check.status.success());
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "current state: ok\nport 9090 reachable\n"
    );

    // Drain: scanner-c reports DRAINING, takes no new flows, then comes back.
    let drain = |state: &str| {
        let o = Command::new(lab::binary())
            .args(["drain", state, "--socket"])
            .arg(lab.socket("scanner-c"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    drain("on");
    assert!(
        wait_until(Duration::from_secs(5), || scanner_state() == "DRAINING").is_some(),
        "scanner-c not DRAINING\n{}",
        lab.logs()
    );
    thread::sleep(Duration::from_millis(300));
    for i in 0..40 {
        let n = lab
            .request("/index.html", 3.0)
            .unwrap_or_else(|| panic!("request {i} failed"));
        assert_ne!(n, "scanner-c", "a draining node took a new flow");
    }
    drain("off");
    assert!(wait_until(Duration::from_secs(8), || scanner_state() == "OK").is_some());
    let back = (0..60).any(|_| lab.request("/index.html", 3.0).as_deref() == Some("scanner-c"));
    assert!(back, "scanner-c takes no new flows after drain off");

    let dls = start_downloads(&lab, 6);
    thread::sleep(Duration::from_secs(2));
    let killed = unix_now();
    lab.kill9("scanner-c");
    lab.kill_squid("scanner-c");
    wait_until(Duration::from_secs(8), || scanner_state() == "FAILED")
        .unwrap_or_else(|| panic!("scanner-c never FAILED\n{}", lab.logs()));
    // When director-a's heartbeat machine declared it, from its log.
    let failed_at = log_time(&lab, "director-a", "node scanner-c: OK -> FAILED")
        .expect("director-a logged the failure");
    let t = failed_at - killed;
    eprintln!("scanner-c FAILED {t:.2}s after kill -9 (limit 3 intervals + 10% = 3.3s)");
    assert!(t <= 3.3, "took {t:.2}s");

    // `proxyha check` with the proxy down.
    let check = lab.exec(
        "scanner-c",
        &[
            lab::binary().to_str().unwrap(),
            "check",
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    assert_eq!(check.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "current state: failed\nport 9090 unreachable\n"
    );

    // New requests no longer go to it, and all succeed.
    for i in 0..60 {
        let n = lab
            .request("/index.html", 3.0)
            .unwrap_or_else(|| panic!("request {i} failed"));
        assert_ne!(n, "scanner-c");
    }
    // Connections to the other nodes are untouched.
    let dl = finish_downloads(&lab, dls);
    eprintln!("downloads while scanner-c died: {dl:?}");
    for (node, intact) in &dl {
        if node != "scanner-c" {
            assert!(*intact, "download on {node} broke when scanner-c died");
        }
    }

    // Restore it: it rejoins and serves again.
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns("scanner-c"), "squid", "-f"])
        .arg(lab.path().join("scanner-c/squid.conf"))
        .output()
        .unwrap();
    assert!(out.status.success());
    lab.restart("scanner-c");
    assert!(
        wait_until(Duration::from_secs(15), || scanner_state() == "OK").is_some(),
        "scanner-c did not rejoin\n{}",
        lab.logs()
    );
    let back = (0..100).any(|_| lab.request("/index.html", 3.0).as_deref() == Some("scanner-c"));
    assert!(back, "scanner-c serves nothing after rejoining");

    // Node health drives priority: the Master's interface goes down, so it
    // resigns (priority 0) and director-b takes over; when the link is back
    // it takes its priority back and preempts.
    let set = |state: &str| {
        let o = lab.exec("director-a", &["ip", "link", "set", "eth0", state]);
        assert!(o.status.success());
    };
    set("down");
    assert!(
        lab.wait_state("director-a", "Backup", Duration::from_secs(2))
            .is_some(),
        "director-a stayed Master with its interface down\n{}",
        lab.logs()
    );
    assert!(
        lab.wait_state("director-b", "Master", Duration::from_secs(6))
            .is_some(),
        "director-b did not take over\n{}",
        lab.logs()
    );
    set("up");
    assert!(
        lab.wait_state("director-a", "Master", Duration::from_secs(10))
            .is_some(),
        "director-a did not come back\n{}",
        lab.logs()
    );
    let log = std::fs::read_to_string(lab.path().join("director-a/proxyha.log")).unwrap();
    assert!(
        log.contains("dataplane unhealthy: resigning with priority 0"),
        "{log}"
    );
}

#[test]
fn two_lbid_groups_do_not_mix() {
    let Some((_g, lab)) = Lab::start(
        "two_lbid_groups_do_not_mix",
        Options {
            prefix: "phe5",
            group_b: true,
            ..Options::default()
        },
    ) else {
        return;
    };
    lab.wait_state("director-a", "Master", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no Master in group A\n{}", lab.logs()));
    lab.wait_state("b-director-a", "Master", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no Master in group B\n{}", lab.logs()));
    thread::sleep(Duration::from_secs(3));
    let a = lab.status("director-a").unwrap();
    let b = lab.status("b-director-a").unwrap();
    let names =
        |s: &serde_json::Value| -> Vec<String> { entries(s).into_iter().map(|e| e.0).collect() };
    let (na, nb) = (names(&a), names(&b));
    assert!(
        na.iter().all(|n| !n.starts_with("b-")),
        "group A sees {na:?}"
    );
    assert!(
        nb.iter().all(|n| n.starts_with("b-") || n == "__SELF__"),
        "group B sees {nb:?}"
    );
    assert!(nb.contains(&"b-scanner-c".to_string()), "{nb:?}");
    // Both groups sign their heartbeats, each with its own key.
    assert_eq!(b["authenticated"], true, "{}", b["heartbeat"]);
    assert_eq!(a["authenticated"], true, "{}", a["heartbeat"]);
    // Group B's heartbeats never reach group A's control plane: the XDP
    // filter drops other LBIDs and counts them.
    let stats = Command::new(lab::binary())
        .args(["stats", "--json", "--socket"])
        .arg(lab.socket("director-a"))
        .output()
        .expect("proxyha stats");
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    let other = stats["xdp"]["drop_heartbeat"].as_u64().unwrap_or(0);
    assert!(
        other > 0,
        "group A's filter dropped no other-LBID heartbeats: {stats}"
    );
    // Group B's VIP is served by group B only.
    for _ in 0..20 {
        let n = lab
            .request_via("198.18.0.251:9090", "/index.html", 3.0)
            .expect("group B request failed");
        assert!(n.starts_with("b-"), "group B's VIP served by {n}");
    }
}

#[test]
fn labs_leave_nothing_behind() {
    let _g = lab::serial();
    if !lab::can_run("labs_leave_nothing_behind") {
        return;
    }
    {
        // With a port redirect 80 -> 9090: the director balances VIP:80 and
        // each node's own nftables redirect hands it to the proxy on 9090.
        let lab = Lab::up(Options {
            prefix: "phe6",
            redirect_80: true,
            ..Options::default()
        });
        lab.wait_state("director-a", "Master", Duration::from_secs(15))
            .unwrap_or_else(|| panic!("no Master\n{}", lab.logs()));
        let rules = lab.exec("scanner-c", &["nft", "list", "table", "ip", "proxyha_10"]);
        let rules = String::from_utf8_lossy(&rules.stdout);
        assert!(
            rules.contains("ip daddr 198.18.0.250 tcp dport 80 dnat to 198.18.0.250:9090"),
            "{rules}"
        );
        assert!(
            wait_until(Duration::from_secs(8), || lab
                .status("director-a")
                .is_some_and(|s| entries(&s).len() == 5))
            .is_some()
        );
        let mut served = std::collections::BTreeSet::new();
        for i in 0..30 {
            let n = lab
                .request_via("198.18.0.250:80", "/index.html", 3.0)
                .unwrap_or_else(|| panic!("request {i} to VIP:80 failed\n{}", lab.logs()));
            served.insert(n);
        }
        eprintln!("VIP:80 (redirected to 9090) served by {served:?}");
        // The operator's live view: rates over two short intervals.
        let watch = Command::new(lab::binary())
            .args([
                "stats",
                "--watch",
                "--interval",
                "0.5",
                "--count",
                "2",
                "--socket",
            ])
            .arg(lab.socket("director-a"))
            .output()
            .unwrap();
        let w = String::from_utf8_lossy(&watch.stdout);
        assert!(
            watch.status.success(),
            "{}",
            String::from_utf8_lossy(&watch.stderr)
        );
        assert_eq!(w.matches("director-a rates over").count(), 2, "{w}");
        assert!(w.contains("rx_frames"), "{w}");
        assert!(served.len() >= 2, "{served:?}");
        // The fast path (the lab's directors run it): the connections the
        // workers saw established are in the flow cache, and their later
        // packets were forwarded by XDP.
        let st = lab.stats("director-a");
        assert_eq!(st["fast_path"], true, "{st}");
        assert!(st["fast_flows"].as_u64().unwrap_or(0) > 0, "{st}");
        let fast_packets: u64 = st["fast_per_node"]
            .as_object()
            .map(|m| m.values().filter_map(|c| c["packets"].as_u64()).sum())
            .unwrap_or(0);
        assert!(fast_packets > 0, "{st}");
        eprintln!(
            "fast path on director-a: {} flows cached, {fast_packets} frames forwarded by XDP",
            st["fast_flows"]
        );
        // A clean stop leaves the cluster first: requests keep succeeding
        // while scanner-c stops, and it is out of the balancing set at once.
        let reqs = Loop::start(
            &lab,
            Duration::from_millis(50),
            1.0,
            Duration::from_secs(20),
        );
        thread::sleep(Duration::from_secs(1));
        let stopped = unix_now();
        lab.sigterm("scanner-c");
        thread::sleep(Duration::from_secs(4));
        let results = reqs.finish();
        let failed: Vec<_> = results.iter().filter(|r| r.2.is_none()).collect();
        let late: Vec<_> = results
            .iter()
            .filter(|r| r.0 > stopped + 1.5 && r.2.as_deref() == Some("scanner-c"))
            .collect();
        eprintln!(
            "graceful leave of scanner-c: {} requests, {} failed, {} served by it after 1.5 s",
            results.len(),
            failed.len(),
            late.len()
        );
        assert!(
            failed.is_empty(),
            "requests failed while scanner-c left: {failed:?}"
        );
        assert!(
            late.is_empty(),
            "scanner-c still served after leaving: {late:?}"
        );
        // And it removed the redirect and the VIP it added.
        assert!(
            wait_until(Duration::from_secs(5), || {
                let t = lab.exec("scanner-c", &["nft", "list", "tables"]);
                let a = lab.exec("scanner-c", &["ip", "-4", "addr", "show", "dev", "lo"]);
                !String::from_utf8_lossy(&t.stdout).contains("proxyha_10")
                    && !String::from_utf8_lossy(&a.stdout).contains("198.18.0.250")
            })
            .is_some(),
            "nftables table or VIP left after SIGTERM"
        );
    }
    assert!(
        lab::namespaces("phe6").is_empty(),
        "{:?}",
        lab::namespaces("phe6")
    );
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let left: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains("proxyha-test-phe6"))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "processes left: {left:?}");
}
