//! Notifications, `proxyha events` and the metrics endpoint on the lab
//! cluster (scripts/lab.sh, prefix `pn1`): every node runs a `[notify]`
//! script for every event and serves `[metrics]` on 127.0.0.1:9800 in its
//! own namespace.
//!
//! Checked across an election, a failover (`kill -9` of the Active
//! Director), a preemption (the restarted director takes Master back) and
//! a fault (its proxy stops: tracked, it loses Master, then regains it):
//! the scripts run in event order with the documented arguments, numbered
//! without gaps; `proxyha events --follow --json` streams exactly the same
//! events; a graceful stop runs the `stop` command before the daemon exits.
//! Then `promtool check metrics` accepts the endpoint's output and its
//! values agree with `proxyha stats --json` and `proxyha status --json`.
//!
//! Needs root; run under `flock /tmp/proxyha-netns.lock`.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::lab::{self, Lab, Options};

/// One line of a node's notification log: the script's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    event: String,
    node: String,
    subject: String,
    from: String,
    to: String,
    reason: String,
    seq: u64,
    ip: String,
    priority: u8,
    env_event: String,
    env_seq: u64,
    /// ms from the event (PROXYHA_UNIX_MS) to the command's start.
    delay_ms: i64,
}

fn calls(dir: &Path, node: &str) -> Vec<Call> {
    std::fs::read_to_string(dir.join(format!("{node}.log")))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            assert_eq!(w.len(), 14, "{l}");
            assert_eq!(w[9], "|", "{l}");
            Call {
                event: w[0].into(),
                node: w[1].into(),
                subject: w[2].into(),
                from: w[3].into(),
                to: w[4].into(),
                reason: w[5].into(),
                seq: w[6].parse().unwrap(),
                ip: w[7].into(),
                priority: w[8].parse().unwrap(),
                env_event: w[10].into(),
                env_seq: w[11].parse().unwrap(),
                delay_ms: w[13].parse::<i64>().unwrap() - w[12].parse::<i64>().unwrap(),
            }
        })
        .collect()
}

/// The VRRP events (all but `node`) as (event, from, to, reason).
fn vrrp(c: &[Call]) -> Vec<(String, String, String, String)> {
    c.iter()
        .filter(|c| c.event != "node")
        .map(|c| {
            (
                c.event.clone(),
                c.from.clone(),
                c.to.clone(),
                c.reason.clone(),
            )
        })
        .collect()
}

fn t(e: &str, f: &str, to: &str, r: &str) -> (String, String, String, String) {
    (e.into(), f.into(), to.into(), r.into())
}

/// Numbered 1, 2, 3, ... within each daemon run (a restart starts at 1
/// again), each call naming its node, arguments and environment agreeing.
fn assert_ordered(c: &[Call], node: &str) {
    let mut expect = 1;
    for x in c {
        if x.seq == 1 {
            expect = 1;
        }
        assert_eq!(x.seq, expect, "{node}: gap or reorder in {c:#?}");
        assert_eq!(x.node, node);
        assert_eq!((&x.env_event, x.env_seq), (&x.event, x.seq));
        expect += 1;
    }
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

fn setup_script(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let _ = std::fs::remove_file(e.path());
    }
    let script = dir.join("notify.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$* | $PROXYHA_EVENT $PROXYHA_SEQ $PROXYHA_UNIX_MS $(date +%s%3N)\" \
             >> {}/\"$2\".log\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn notifications_events_and_metrics_across_election_failover_preemption() {
    let dir = std::env::temp_dir().join("proxyha-test-pn1-notify");
    let script = setup_script(&dir);
    let s = script.display();
    let extra = format!(
        "[notify]\nmaster = \"{s}\"\nbackup = \"{s}\"\nfault = \"{s}\"\nstop = \"{s}\"\n\
         node = \"{s}\"\ntimeout = \"5s\"\n\n[metrics]\nlisten = \"127.0.0.1:9800\"\n"
    );
    let Some((_g, lab)) = Lab::start(
        "notifications_events_and_metrics_across_election_failover_preemption",
        Options {
            prefix: "pn1",
            extra_config: Some(extra),
            ..Options::default()
        },
    ) else {
        return;
    };
    // Election.
    assert!(
        lab.wait_state("director-a", "Master", Duration::from_secs(15))
            .is_some(),
        "{}",
        lab.logs()
    );
    assert!(wait_for(Duration::from_secs(5), || {
        vrrp(&calls(&dir, "director-a")).len() == 2
    }));
    // Follow director-b's events from here on.
    let mut follower = Command::new(lab::binary())
        .args(["events", "--follow", "--json", "--socket"])
        .arg(lab.socket("director-b"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .map(|l| serde_json::from_str::<serde_json::Value>(&l).unwrap())
            .collect::<Vec<_>>()
    });

    // Failover: kill -9 of the Active Director; director-b takes over and
    // then sees its heartbeats stop (STALE while its proxy still answers
    // the probe, docs/heartbeat.md; FAILED otherwise).
    lab.kill9("director-a");
    assert!(
        lab.wait_state("director-b", "Master", Duration::from_secs(10))
            .is_some()
    );
    assert!(
        wait_for(Duration::from_secs(10), || calls(&dir, "director-b")
            .iter()
            .any(
                |c| c.subject == "director-a" && (c.to == "STALE" || c.to == "FAILED")
            )),
        "{:#?}",
        calls(&dir, "director-b")
    );

    // Preemption: director-a comes back and takes Master again.
    lab.restart("director-a");
    assert!(
        wait_for(Duration::from_secs(15), || {
            lab.vrrp_state("director-a") == "Master" && lab.vrrp_state("director-b") == "Backup"
        }),
        "{}",
        lab.logs()
    );
    assert!(wait_for(Duration::from_secs(5), || {
        vrrp(&calls(&dir, "director-a")).len() == 4 && vrrp(&calls(&dir, "director-b")).len() == 3
    }));

    // A fault: director-a's proxy stops. It tracks it (weight 20: 99 - 20 =
    // 79 < 89), so director-b preempts it; the proxy back, director-a
    // preempts in turn.
    lab.kill_squid("director-a");
    assert!(
        wait_for(Duration::from_secs(15), || {
            lab.vrrp_state("director-b") == "Master" && lab.vrrp_state("director-a") == "Backup"
        }),
        "{}",
        lab.logs()
    );
    let conf = lab.path().join("director-a/squid.conf");
    let out = lab.exec("director-a", &["squid", "-f", conf.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        wait_for(Duration::from_secs(20), || {
            lab.vrrp_state("director-a") == "Master" && lab.vrrp_state("director-b") == "Backup"
        }),
        "{}",
        lab.logs()
    );
    assert!(wait_for(Duration::from_secs(5), || {
        vrrp(&calls(&dir, "director-a")).len() == 7 && vrrp(&calls(&dir, "director-b")).len() == 5
    }));

    let a = calls(&dir, "director-a");
    let b = calls(&dir, "director-b");
    eprintln!("director-a: {a:#?}\ndirector-b: {b:#?}");
    assert_ordered(&a, "director-a");
    assert_ordered(&b, "director-b");
    let mut delays: Vec<i64> = a.iter().chain(&b).map(|c| c.delay_ms).collect();
    delays.sort_unstable();
    eprintln!(
        "event -> command start: median {} ms, max {} ms over {} commands",
        delays[delays.len() / 2],
        delays[delays.len() - 1],
        delays.len()
    );
    // One command at a time, each a few ms: none waits long.
    assert!(delays[delays.len() - 1] < 2000, "{delays:?}");
    assert_eq!(
        vrrp(&a),
        vec![
            t("backup", "INITIALIZE", "BACKUP", "Startup"),
            t("master", "BACKUP", "MASTER", "MasterDown"),
            // kill -9: no stop event. The restarted daemon:
            t("backup", "INITIALIZE", "BACKUP", "Startup"),
            t("master", "BACKUP", "MASTER", "MasterDown"),
            // Its proxy stops: fault, then director-b preempts it.
            t("fault", "MASTER", "FAULT", "proxy"),
            t("backup", "MASTER", "BACKUP", "HigherPriority"),
            // The proxy is back: it preempts director-b.
            t("master", "BACKUP", "MASTER", "MasterDown"),
        ]
    );
    assert_eq!(
        vrrp(&b),
        vec![
            t("backup", "INITIALIZE", "BACKUP", "Startup"),
            t("master", "BACKUP", "MASTER", "MasterDown"),
            t("backup", "MASTER", "BACKUP", "HigherPriority"),
            t("master", "BACKUP", "MASTER", "MasterDown"),
            t("backup", "MASTER", "BACKUP", "HigherPriority"),
        ]
    );
    for c in a.iter().chain(&b).filter(|c| c.event != "node") {
        assert_eq!(c.subject, c.node);
        let ip = if c.node == "director-a" {
            "198.18.0.1"
        } else {
            "198.18.0.2"
        };
        assert_eq!(c.ip, ip, "{c:?}");
    }
    // The priority in use: director-a's drops to 79 while its proxy is down.
    let prio = |c: &[Call]| -> Vec<u8> {
        c.iter()
            .filter(|c| c.event != "node")
            .map(|c| c.priority)
            .collect()
    };
    assert_eq!(prio(&a), [99, 99, 99, 99, 79, 79, 99]);
    assert_eq!(prio(&b), [89; 5]);
    // Node events carry the node's own address; director-a came back OK.
    let back = b
        .iter()
        .position(|c| c.subject == "director-a" && c.from != "UNKNOWN" && c.to == "OK")
        .unwrap_or_else(|| panic!("director-a never back to OK on director-b: {b:#?}"));
    assert_eq!(b[back].ip, "198.18.0.1");
    // The scanning node only gets node events, in order too.
    let c = calls(&dir, "scanner-c");
    assert_ordered(&c, "scanner-c");
    assert!(
        c.iter().all(|x| x.event == "node" && x.priority == 0),
        "{c:#?}"
    );

    // `proxyha events` (without --follow) lists director-b's events; the
    // follower streamed the same ones, from before the failover on.
    let out = Command::new(lab::binary())
        .args(["events", "--json", "--socket"])
        .arg(lab.socket("director-b"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let key = |v: &serde_json::Value| {
        (
            v["seq"].as_u64().unwrap(),
            v["event"].as_str().unwrap().to_owned(),
            v["subject"].as_str().unwrap().to_owned(),
            v["to"].as_str().unwrap().to_owned(),
        )
    };
    let from_calls: Vec<_> = b
        .iter()
        .map(|c| (c.seq, c.event.clone(), c.subject.clone(), c.to.clone()))
        .collect();
    assert_eq!(listed.iter().map(key).collect::<Vec<_>>(), from_calls);

    metrics_match_stats(&lab);

    // A graceful stop runs the stop command before the daemon exits.
    lab.sigterm("director-b");
    assert!(wait_for(Duration::from_secs(10), || {
        lab.status("director-b").is_none()
    }));
    let b = calls(&dir, "director-b");
    let last = b.last().unwrap();
    assert_eq!(
        (
            last.event.as_str(),
            last.from.as_str(),
            last.to.as_str(),
            last.reason.as_str()
        ),
        ("stop", "BACKUP", "STOP", "signal")
    );
    // The follower saw every event up to the stop, and the end of the stream.
    let followed = reader.join().unwrap();
    let _ = follower.wait();
    let followed: Vec<_> = followed.iter().map(key).collect();
    let from_calls: Vec<_> = b
        .iter()
        .map(|c| (c.seq, c.event.clone(), c.subject.clone(), c.to.clone()))
        .collect();
    assert_eq!(followed, from_calls, "follower vs notify log");
}

/// The endpoint's output passes promtool, and its values equal the JSON
/// views (counters between a read before and one after).
fn metrics_match_stats(lab: &Lab) {
    let node = "director-a";
    let before = lab.stats(node);
    let out = lab.exec(
        node,
        &["curl", "-s", "-m", "5", "http://127.0.0.1:9800/metrics"],
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let after = lab.stats(node);
    let status = lab.status(node).unwrap();
    if proxyha::node::prereq::require_tool("metrics_match_stats", "promtool") {
        let mut p = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut p.stdin.take().unwrap(), text.as_bytes()).unwrap();
        let o = p.wait_with_output().unwrap();
        assert!(
            o.status.success() && o.stdout.is_empty() && o.stderr.is_empty(),
            "promtool: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let value = |key: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{key} not in\n{text}"))
            .parse()
            .unwrap()
    };
    let between = |key: &str, b: &serde_json::Value, a: &serde_json::Value| {
        let v = value(key);
        let (lo, hi) = (b.as_f64().unwrap(), a.as_f64().unwrap());
        assert!(lo <= v && v <= hi, "{key} = {v}, stats said {lo} then {hi}");
        eprintln!("{key} = {v} (stats --json: {lo} .. {hi})");
    };
    between(
        "proxyha_dataplane_rx_frames_total",
        &before["total"]["rx_frames"],
        &after["total"]["rx_frames"],
    );
    between(
        "proxyha_dataplane_rx_heartbeat_total",
        &before["total"]["rx_heartbeat"],
        &after["total"]["rx_heartbeat"],
    );
    between(
        "proxyha_queue_rx_frames_total{queue=\"0\"}",
        &before["per_worker"][0]["rx_frames"],
        &after["per_worker"][0]["rx_frames"],
    );
    between(
        "proxyha_batch_duration_seconds_count",
        &before["batch_time"]["batches"],
        &after["batch_time"]["batches"],
    );
    assert_eq!(value("proxyha_workers"), after["workers"].as_f64().unwrap());
    assert_eq!(value("proxyha_vrrp_state{state=\"Master\"}"), 1.0);
    assert_eq!(
        value("proxyha_membership_generation"),
        status["heartbeat"]["membership"]["generation"]
            .as_f64()
            .unwrap()
    );
    assert_eq!(
        value("proxyha_vrrp_became_master_total"),
        status["vrrp"]["counters"]["became_master"]
            .as_f64()
            .unwrap()
    );
    // Every node of the cluster is OK in director-a's scanning entries.
    for (n, ip) in [("director-b", "198.18.0.2"), ("scanner-c", "198.18.0.3")] {
        assert_eq!(
            value(&format!(
                "proxyha_node_state{{node=\"{n}\",ip=\"{ip}\",type=\"scanning\",state=\"OK\"}}"
            )),
            1.0
        );
    }
    // Only /metrics is served.
    let o = lab.exec(
        node,
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://127.0.0.1:9800/",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "404");
}
