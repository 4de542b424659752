//! Operations end-to-end (issue 13): a dead daemon is not a dead proxy
//! (STALE), supervision through a `kill -9` of the Active Director,
//! tracking of the director's own proxy, and reload.
//!
//! They need root; they run one at a time, and tear down what they start,
//! even on failure.

mod common;

use std::process::Command;
use std::thread;
use std::time::Duration;

use common::lab::{
    Lab, Options, downloads_served_by, entries, finish_downloads, start_downloads,
    start_downloads_via, wait_until,
};

fn scanning_state(lab: &Lab, on: &str, of: &str) -> String {
    lab.status(on)
        .map(|s| entries(&s))
        .unwrap_or_default()
        .into_iter()
        .find(|(d, _, t)| d == of && t == "scanning")
        .map(|(_, s, _)| s)
        .unwrap_or_default()
}

/// The example cluster, up, with director-a elected Master (or `None`
/// where namespace tests cannot run, see `Lab::start`).
fn up(test: &str, opts: Options) -> Option<(std::sync::MutexGuard<'static, ()>, Lab)> {
    let (g, lab) = Lab::start(test, opts)?;
    assert!(
        lab.wait_state("director-a", "Master", Duration::from_secs(10))
            .is_some(),
        "{}",
        lab.logs()
    );
    Some((g, lab))
}

fn start_squid(lab: &Lab, node: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", &lab.ns(node), "squid", "-f"])
        .arg(lab.path().join(format!("{node}/squid.conf")))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// Issue 13 item 3: director-b's daemon is `kill -9`ed while its proxy
/// keeps serving. The Active Director holds it STALE: its long-lived
/// downloads complete intact, it gets no new connection, and it becomes
/// FAILED only when its proxy stops too.
#[test]
fn a_dead_daemon_with_a_live_proxy_is_stale_and_keeps_its_downloads() {
    let Some((_g, lab)) = up(
        "a_dead_daemon_with_a_live_proxy_is_stale_and_keeps_its_downloads",
        Options {
            prefix: "po1",
            ..Options::default()
        },
    ) else {
        return;
    };
    assert!(
        wait_until(Duration::from_secs(10), || scanning_state(
            &lab,
            "director-a",
            "director-b"
        ) == "OK")
        .is_some()
    );
    // Director-b is in the balancing set (Maglev rebuilds are coalesced):
    // new connections reach it.
    assert!(
        wait_until(Duration::from_secs(15), || lab
            .request("/index.html", 3.0)
            .as_deref()
            == Some("director-b"))
        .is_some(),
        "director-b never served a request\n{}",
        lab.logs()
    );
    // Downloads land by flow hash, so a batch of 8 misses director-b with a
    // chance of about (2/3)^8 = 4%: start more (up to 24 in all) until its
    // response headers show that director-b serves at least one.
    let mut dls = start_downloads(&lab, 8);
    for batch in 1..3 {
        let on_b = wait_until(Duration::from_secs(4), || {
            downloads_served_by(&dls)
                .iter()
                .any(|n| n.as_deref() == Some("director-b"))
        });
        if on_b.is_some() {
            break;
        }
        dls.extend(start_downloads_via(
            &lab,
            8,
            "198.18.0.250:9090",
            &format!("dl{batch}x"),
        ));
    }
    thread::sleep(Duration::from_secs(2));
    lab.kill9("director-b");
    let took = wait_until(Duration::from_secs(8), || {
        scanning_state(&lab, "director-a", "director-b") == "STALE"
    })
    .unwrap_or_else(|| {
        panic!(
            "director-b never STALE (is {:?})\n{}",
            scanning_state(&lab, "director-a", "director-b"),
            lab.logs()
        )
    });
    eprintln!("director-b STALE {:.2}s after kill -9", took.as_secs_f64());
    // New connections avoid it; all succeed.
    for i in 0..40 {
        let n = lab
            .request("/index.html", 3.0)
            .unwrap_or_else(|| panic!("request {i} failed\n{}", lab.logs()));
        assert_ne!(n, "director-b", "a STALE node took a new connection");
    }
    let dl = finish_downloads(&lab, dls);
    eprintln!("downloads while director-b's daemon was dead: {dl:?}");
    assert!(
        dl.iter().any(|(n, _)| n == "director-b"),
        "no download landed on director-b: {dl:?}"
    );
    for (node, intact) in &dl {
        assert!(*intact, "download on {node} broke: {dl:?}");
    }
    // The proxy stops too: FAILED at the next probe.
    lab.kill_squid("director-b");
    assert!(
        wait_until(Duration::from_secs(5), || scanning_state(
            &lab,
            "director-a",
            "director-b"
        ) == "FAILED")
        .is_some(),
        "director-b not FAILED after its proxy stopped\n{}",
        lab.logs()
    );
}

/// Issue 13 items 2 and 3: the Active Director's daemon is `kill -9`ed and
/// restarted by a supervisor within a second, through the takeover and the
/// preemption back; every long-lived download completes intact, on every
/// node.
#[test]
fn supervised_kill9_of_the_active_director_loses_no_download() {
    let Some((_g, lab)) = up(
        "supervised_kill9_of_the_active_director_loses_no_download",
        Options {
            prefix: "po2",
            supervise: true,
            ..Options::default()
        },
    ) else {
        return;
    };
    thread::sleep(Duration::from_secs(3));
    let dls = start_downloads(&lab, 8);
    thread::sleep(Duration::from_secs(2));
    let before = lab.pid("director-a", "proxyha").unwrap();
    lab.kill9("director-a");
    let restarted = wait_until(Duration::from_secs(3), || {
        lab.pid("director-a", "proxyha")
            .is_some_and(|p| p != before && std::path::Path::new(&format!("/proc/{p}")).exists())
    })
    .unwrap_or_else(|| panic!("the supervisor did not restart director-a\n{}", lab.logs()));
    eprintln!(
        "supervisor restarted director-a {:.2}s after kill -9",
        restarted.as_secs_f64()
    );
    assert!(restarted <= Duration::from_secs(1) + Duration::from_millis(500));
    // It becomes Active again (after director-b's takeover, or directly).
    let t = wait_until(Duration::from_secs(20), || {
        lab.vrrp_state("director-a") == "Master"
    })
    .unwrap_or_else(|| panic!("director-a not Master again\n{}", lab.logs()));
    eprintln!("director-a Master again {:.2}s later", t.as_secs_f64());
    let dl = finish_downloads(&lab, dls);
    eprintln!("downloads across kill -9 + supervised restart: {dl:?}");
    for (node, intact) in &dl {
        assert!(*intact, "download on {node} broke: {dl:?}");
    }
    assert!(lab.request("/index.html", 3.0).is_some());
}

/// Issue 13 item 4: the Active Director's own proxy stops; with
/// `vrrp.track_proxy_weight = 20` (pipelines/cluster-a) its priority falls
/// from 99 to 79, below director-b's 89, which takes over; when the proxy
/// is back, director-a preempts again.
#[test]
fn a_director_whose_proxy_is_down_loses_master_and_regains_it() {
    let Some((_g, lab)) = up(
        "a_director_whose_proxy_is_down_loses_master_and_regains_it",
        Options {
            prefix: "po3",
            ..Options::default()
        },
    ) else {
        return;
    };
    thread::sleep(Duration::from_secs(2));
    lab.kill_squid("director-a");
    let t = lab
        .wait_state("director-b", "Master", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("director-b did not take over\n{}", lab.logs()));
    assert!(
        lab.wait_state("director-a", "Backup", Duration::from_secs(3))
            .is_some(),
        "{}",
        lab.logs()
    );
    eprintln!(
        "director-b Master {:.2}s after director-a's proxy stopped",
        t.as_secs_f64()
    );
    let st = lab.status("director-a").unwrap();
    assert_eq!(st["vrrp"]["priority"], 79, "{st}");
    // Requests still succeed, served elsewhere.
    for i in 0..20 {
        let n = lab
            .request("/index.html", 3.0)
            .unwrap_or_else(|| panic!("request {i} failed\n{}", lab.logs()));
        assert_ne!(n, "director-a");
    }
    start_squid(&lab, "director-a");
    let t = lab
        .wait_state("director-a", "Master", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("director-a did not regain Master\n{}", lab.logs()));
    eprintln!(
        "director-a Master again {:.2}s after its proxy came back",
        t.as_secs_f64()
    );
    assert!(
        lab.wait_state("director-b", "Backup", Duration::from_secs(3))
            .is_some()
    );
}

/// Rewrites `node`'s lab config with `f`.
fn edit_config(lab: &Lab, node: &str, f: impl Fn(String) -> String) {
    let p = lab.path().join(format!("{node}/node.toml"));
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, f(text)).unwrap();
}

fn reload(lab: &Lab, node: &str) -> std::process::Output {
    Command::new(common::lab::binary())
        .args(["reload", "--socket"])
        .arg(lab.socket(node))
        .output()
        .unwrap()
}

fn vrrp_transitions(lab: &Lab, node: &str) -> (u64, u64) {
    let st = lab.status(node).unwrap();
    let c = &st["vrrp"]["counters"];
    (
        c["became_master"].as_u64().unwrap(),
        c["became_backup"].as_u64().unwrap(),
    )
}

/// Issue 13 item 1: under a 50 ms request loop, a reload that lowers the
/// Active Director's priority from 99 to 98 and adds a port redirect causes
/// no failed request, no VRRP transition and no gratuitous ARP; a broken
/// file changes nothing and `proxyha reload` reports it; SIGHUP reloads too.
#[test]
fn reload_applies_a_diff_without_a_flap() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let Some((_g, lab)) = up(
        "reload_applies_a_diff_without_a_flap",
        Options {
            prefix: "po4",
            ..Options::default()
        },
    ) else {
        return;
    };
    let lab = Arc::new(lab);
    // Past the takeover's second gratuitous-ARP burst (garp_refresh 5 s).
    thread::sleep(Duration::from_secs(7));
    let before = (
        vrrp_transitions(&lab, "director-a"),
        vrrp_transitions(&lab, "director-b"),
    );
    // Gratuitous ARPs on the segment: broadcast, sent by the VIP itself.
    let capture = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("sw"),
            "timeout",
            "25",
            "tcpdump",
            "-enp",
            "-l",
            "-i",
            "br0",
            "arp",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let looper = {
        let (lab, stop, ok, failed) = (lab.clone(), stop.clone(), ok.clone(), failed.clone());
        thread::spawn(move || {
            // Bounded: at most 600 requests (30 s at 50 ms).
            for _ in 0..600 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match lab.request("/index.html", 3.0) {
                    Some(_) => ok.fetch_add(1, Ordering::Relaxed),
                    None => failed.fetch_add(1, Ordering::Relaxed),
                };
                thread::sleep(Duration::from_millis(50));
            }
        })
    };
    thread::sleep(Duration::from_secs(2));

    // Priority 99 -> 98 on the Active Director, and a redirect 80 -> 9090
    // on every node.
    let add80 = |t: String| {
        t + "\n[[port_redirect]]\nprotocol = \"http-alt\"\noriginal_ports = \"80\"\nproxy_port = 9090\n"
    };
    edit_config(&lab, "director-a", |t| {
        add80(t.replacen("priority = 99", "priority = 98", 1))
    });
    for n in ["director-b", "scanner-c"] {
        edit_config(&lab, n, add80);
    }
    for n in ["director-a", "director-b", "scanner-c"] {
        let out = reload(&lab, n);
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "reload {n}: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(said.contains("port_redirects"), "{n}: {said}");
        if n == "director-a" {
            assert!(said.contains("node.priority"), "{said}");
        }
    }
    let st = lab.status("director-a").unwrap();
    assert_eq!(st["vrrp"]["priority"], 98, "{st}");
    assert_eq!(st["vrrp_state"], "Master");
    thread::sleep(Duration::from_secs(2));
    // The new redirect works end to end, on every node.
    let mut via80 = std::collections::BTreeSet::new();
    for i in 0..30 {
        let n = lab
            .request_via("198.18.0.250:80", "/index.html", 3.0)
            .unwrap_or_else(|| panic!("request {i} to VIP:80 failed\n{}", lab.logs()));
        via80.insert(n);
    }
    assert!(via80.len() >= 2, "VIP:80 served only by {via80:?}");

    // A broken file: refused, reported, nothing changes.
    edit_config(&lab, "director-a", |t| {
        t.replacen("priority = 98", "priority = 300", 1)
    });
    let out = reload(&lab, "director-a");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node.priority = 300"), "{err}");
    // A restart-only setting: refused and named.
    edit_config(&lab, "director-a", |t| {
        t.replacen("priority = 300", "priority = 98", 1)
            .replacen("vrid = 51", "vrid = 52", 1)
    });
    let out = reload(&lab, "director-a");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only with a restart: vrrp.vrid"), "{err}");
    let st = lab.status("director-a").unwrap();
    assert_eq!(st["vrrp"]["priority"], 98);
    assert_eq!(st["vrid"], 51);

    // SIGHUP reloads the same way.
    edit_config(&lab, "director-a", |t| {
        t.replacen("vrid = 52", "vrid = 51", 1)
            .replacen("priority = 98", "priority = 97", 1)
    });
    let pid = lab.pid("director-a", "proxyha").unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        wait_until(Duration::from_secs(3), || lab
            .status("director-a")
            .is_some_and(|s| s["vrrp"]["priority"] == 97))
        .is_some(),
        "SIGHUP did not reload\n{}",
        lab.logs()
    );
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    looper.join().unwrap();
    let after = (
        vrrp_transitions(&lab, "director-a"),
        vrrp_transitions(&lab, "director-b"),
    );
    let _ = Command::new("kill")
        .args(["-INT", &capture.id().to_string()])
        .status();
    let out = capture.wait_with_output().unwrap();
    let arp = String::from_utf8_lossy(&out.stdout);
    let garps: Vec<&str> = arp
        .lines()
        .filter(|l| {
            l.contains("ff:ff:ff:ff:ff:ff")
                && (l.contains("tell 198.18.0.250") || l.contains("Reply 198.18.0.250"))
        })
        .collect();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "reload under load: {ok} requests ok, {failed} failed; VRRP counters {before:?} -> {after:?}; {} gratuitous ARPs",
        garps.len()
    );
    assert!(ok > 50, "the request loop barely ran: {ok}");
    assert_eq!(failed, 0, "requests failed across the reloads");
    assert_eq!(before, after, "a VRRP transition happened");
    assert!(garps.is_empty(), "gratuitous ARPs were sent: {garps:?}");
    assert!(lab.pid("director-a", "proxyha").is_some_and(|p| p == pid));
}
