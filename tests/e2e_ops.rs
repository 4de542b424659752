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

use common::lab::{Lab, Options, entries, finish_downloads, start_downloads, wait_until};

fn scanning_state(lab: &Lab, on: &str, of: &str) -> String {
    lab.status(on)
        .map(|s| entries(&s))
        .unwrap_or_default()
        .into_iter()
        .find(|(d, _, t)| d == of && t == "scanning")
        .map(|(_, s, _)| s)
        .unwrap_or_default()
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
    let Some((_g, lab)) = Lab::start(
        "a_dead_daemon_with_a_live_proxy_is_stale_and_keeps_its_downloads",
        Options {
            prefix: "po1",
            ..Options::default()
        },
    ) else {
        return;
    };
    assert!(
        lab.wait_state("director-a", "Master", Duration::from_secs(10))
            .is_some(),
        "{}",
        lab.logs()
    );
    assert!(
        wait_until(Duration::from_secs(10), || scanning_state(
            &lab,
            "director-a",
            "director-b"
        ) == "OK")
        .is_some()
    );
    let dls = start_downloads(&lab, 8);
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
    let Some((_g, lab)) = Lab::start(
        "supervised_kill9_of_the_active_director_loses_no_download",
        Options {
            prefix: "po2",
            supervise: true,
            ..Options::default()
        },
    ) else {
        return;
    };
    assert!(
        lab.wait_state("director-a", "Master", Duration::from_secs(10))
            .is_some(),
        "{}",
        lab.logs()
    );
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
    let Some((_g, lab)) = Lab::start(
        "a_director_whose_proxy_is_down_loses_master_and_regains_it",
        Options {
            prefix: "po3",
            ..Options::default()
        },
    ) else {
        return;
    };
    assert!(
        lab.wait_state("director-a", "Master", Duration::from_secs(10))
            .is_some(),
        "{}",
        lab.logs()
    );
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
