//! IPv6 VIPs end to end in the namespace lab (`lab.sh up --version 3
//! --ipv6`, prefix `p6a`): the IPv6 VRRP instance elects the same director
//! as the IPv4 one, the Active Director answers the client's neighbour
//! solicitation for the IPv6 VIP with the virtual MAC 00:00:5e:00:02:33,
//! and after a kill -9 the Passive Director takes over both families; the
//! switch learns the virtual MAC on the new director's port and a fresh
//! resolution is answered by it, within one advert interval (10 cs) of its
//! takeover. Prints the takeover figures of both families.

mod common;

use std::time::{Duration, Instant};

use common::lab::{Lab, Options, wait_until};

const VIP6: &str = "2001:2::250";
const VMAC6: &str = "00:00:5e:00:02:33";

fn state6(lab: &Lab, node: &str) -> String {
    lab.status(node)
        .and_then(|v| v["vrrp"]["ipv6"]["state"].as_str().map(str::to_string))
        .unwrap_or_else(|| "down".into())
}

/// How long after `t0` director-b became Master for IPv4 and for IPv6
/// (polled every 5 ms, for at most 5 s; panics without both).
fn takeover_times(lab: &Lab, t0: Instant) -> (Duration, Duration) {
    let (mut v4, mut v6) = (None, None);
    while t0.elapsed() < Duration::from_secs(5) && (v4.is_none() || v6.is_none()) {
        if v4.is_none() && lab.vrrp_state("director-b") == "Master" {
            v4 = Some(t0.elapsed());
        }
        if v6.is_none() && state6(lab, "director-b") == "Master" {
            v6 = Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (Some(v4), Some(v6)) = (v4, v6) else {
        panic!("no takeover: v4 {v4:?} v6 {v6:?}\n{}", lab.logs());
    };
    (v4, v6)
}

/// The switch port (the host's namespace suffix) the bridge learned `mac` on.
fn fdb_port(lab: &Lab, mac: &str) -> Option<String> {
    let out = lab.exec("sw", &["bridge", "fdb", "show", "br", "br0"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(mac) && !l.contains("permanent"))
        .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
}

/// The client's neighbour entry for the IPv6 VIP (`lladdr ... STATE`).
fn client_neigh(lab: &Lab) -> String {
    let out = lab.exec(
        "client",
        &["ip", "-6", "neigh", "show", VIP6, "dev", "eth0"],
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Makes the client resolve the VIP afresh: flush its entry, send one
/// packet (the kernel solicits), wait for the answer.
fn resolve(lab: &Lab) -> Option<Duration> {
    lab.exec("client", &["ip", "-6", "neigh", "flush", VIP6]);
    let _ = lab.exec("client", &["ping", "-6", "-c", "1", "-W", "1", VIP6]);
    wait_until(Duration::from_secs(3), || {
        let n = client_neigh(lab);
        n.contains(&format!("lladdr {VMAC6}")) && !n.contains("FAILED")
    })
}

#[test]
fn ipv6_election_neighbour_discovery_and_failover() {
    let Some((_g, lab)) = Lab::start(
        "e2e_ipv6::ipv6_election_neighbour_discovery_and_failover",
        Options {
            prefix: "p6a",
            vrrp_version: 3,
            ipv6: true,
            ..Options::default()
        },
    ) else {
        return;
    };
    let elected = wait_until(Duration::from_secs(15), || {
        state6(&lab, "director-a") == "Master" && lab.vrrp_state("director-a") == "Master"
    });
    assert!(elected.is_some(), "no IPv6 election\n{}", lab.logs());
    // Both directors start at once, so director-b may have claimed Master
    // for a moment before it heard director-a; it must step down within a
    // few advert intervals (10 cs) and the 100 ms status snapshot.
    let settled = wait_until(Duration::from_secs(1), || {
        state6(&lab, "director-b") == "Backup" && lab.vrrp_state("director-b") == "Backup"
    });
    assert_eq!(state6(&lab, "director-b"), "Backup", "{:?}", settled);
    assert_eq!(lab.vrrp_state("director-b"), "Backup");

    // status: every node's ip6 line carries its management_ip6 (group A).
    let ip6_of_a = || {
        lab.status("director-b").and_then(|st| {
            st["entries"]
                .as_array()?
                .iter()
                .find(|e| e["device"] == "director-a")
                .map(|e| e["ip6"].clone())
        })
    };
    let heard = wait_until(Duration::from_secs(5), || ip6_of_a().is_some());
    assert!(heard.is_some(), "director-b never listed director-a");
    assert_eq!(ip6_of_a().unwrap(), "2001:2::1");

    // The client resolves the IPv6 VIP to the IPv6 virtual MAC, answered
    // by the Active Director; the switch has the MAC on its port.
    assert!(
        resolve(&lab).is_some(),
        "no answer: {}\n{}",
        client_neigh(&lab),
        lab.logs()
    );
    assert_eq!(fdb_port(&lab, VMAC6).as_deref(), Some("dira"));
    let replies = |node: &str| {
        lab.status(node).unwrap()["vrrp"]["ipv6_nd"]["nd_replies"]
            .as_u64()
            .unwrap()
    };
    // The status snapshot is republished every 100 ms.
    assert!(wait_until(Duration::from_secs(1), || replies("director-a") >= 1).is_some());
    assert_eq!(replies("director-b"), 0, "a Backup never answers");

    // kill -9 the Active Director; both families move to director-b.
    let t0 = Instant::now();
    lab.kill9("director-a");
    let (v4, v6) = takeover_times(&lab, t0);
    // Within one advert interval (10 cs) of the IPv6 takeover, the switch
    // has the virtual MAC on director-b's port (its unsolicited
    // advertisements and adverts come from that MAC).
    let moved = wait_until(Duration::from_millis(100), || {
        fdb_port(&lab, VMAC6).as_deref() == Some("dirb")
    });
    let after_v6 = t0.elapsed() - v6;
    assert!(
        moved.is_some(),
        "fdb still {:?} {after_v6:?} after the IPv6 takeover",
        fdb_port(&lab, VMAC6)
    );
    assert!(client_neigh(&lab).contains(&format!("lladdr {VMAC6}")));
    let na = lab.status("director-b").unwrap()["vrrp"]["ipv6_nd"]["tx_unsolicited_na"]
        .as_u64()
        .unwrap();
    assert!(na >= 5, "unsolicited advertisements sent: {na}");
    // A fresh resolution is answered by director-b.
    assert!(
        resolve(&lab).is_some(),
        "director-b does not answer: {}",
        client_neigh(&lab)
    );
    assert!(wait_until(Duration::from_secs(1), || replies("director-b") >= 1).is_some());
    println!(
        "takeover after kill -9 (VRRPv3, 10 cs adverts, priority 89): IPv4 {} ms, IPv6 {} ms; \
         switch on the new port {} ms after the IPv6 takeover",
        v4.as_millis(),
        v6.as_millis(),
        moved.unwrap().as_millis()
    );

    // Preemption: director-a comes back and takes both families back.
    lab.restart("director-a");
    let back = wait_until(Duration::from_secs(10), || {
        state6(&lab, "director-a") == "Master" && lab.vrrp_state("director-a") == "Master"
    });
    assert!(back.is_some(), "no preemption\n{}", lab.logs());
    assert!(
        wait_until(Duration::from_secs(2), || state6(&lab, "director-b")
            == "Backup")
        .is_some()
    );
    assert_eq!(lab.vrrp_state("director-b"), "Backup");
}

/// IPv6 TCP to the IPv6 VIP is balanced over the same membership as IPv4
/// (every scanning node serves), and long-lived downloads over IPv6 and
/// IPv4 survive a kill -9 of the Active Director; prints both families'
/// takeover figures.
#[test]
fn ipv6_balancing_and_failover_with_downloads() {
    let Some((_g, lab)) = Lab::start(
        "e2e_ipv6::ipv6_balancing_and_failover_with_downloads",
        Options {
            prefix: "p6a",
            vrrp_version: 3,
            ipv6: true,
            ..Options::default()
        },
    ) else {
        return;
    };
    let proxy6 = format!("[{VIP6}]:9090");
    let ready = wait_until(Duration::from_secs(20), || {
        state6(&lab, "director-a") == "Master"
            && lab.vrrp_state("director-a") == "Master"
            && lab.request_via(&proxy6, "/index.html", 2.0).is_some()
    });
    assert!(ready.is_some(), "no IPv6 service\n{}", lab.logs());
    // Balancing: new connections spread over the three nodes.
    let mut served = std::collections::BTreeMap::<String, u32>::new();
    let mut failed = 0;
    for _ in 0..45 {
        match lab.request_via(&proxy6, "/index.html", 3.0) {
            Some(n) => *served.entry(n).or_default() += 1,
            None => failed += 1,
        }
    }
    println!("IPv6 requests served by: {served:?}, failed {failed}");
    assert_eq!(failed, 0, "{served:?}\n{}", lab.logs());
    for node in ["director-a", "director-b", "scanner-c"] {
        assert!(
            served.get(node).copied().unwrap_or(0) > 0,
            "{node} served none: {served:?}"
        );
    }
    // The flows went through director-a's workers as balanced frames.
    let st = lab.stats("director-a");
    assert!(st["xdp"]["to_xsk_vip"].as_u64().unwrap_or(0) >= 45, "{st}");
    assert_eq!(
        st["total"]["drops"]["drop_ipv6_extension_header"]
            .as_u64()
            .unwrap_or(0),
        0,
        "{st}"
    );
    // Their later packets were forwarded by the XDP fast path (all the
    // balanced traffic so far is IPv6): the program found the flows the
    // workers installed under their folded keys.
    let fast_packets: u64 = st["fast_per_node"]
        .as_object()
        .map(|m| m.values().filter_map(|c| c["packets"].as_u64()).sum())
        .unwrap_or(0);
    assert!(fast_packets > 0, "no IPv6 frame took the fast path: {st}");
    println!("IPv6 frames forwarded by the XDP fast path: {fast_packets}");

    // Long-lived downloads over both families, then kill -9 director-a.
    let dl6 = common::lab::start_downloads_via(&lab, 6, &proxy6, "v6dl");
    let dl4 = common::lab::start_downloads_via(&lab, 6, "198.18.0.250:9090", "v4dl");
    std::thread::sleep(Duration::from_secs(2));
    let t0 = Instant::now();
    lab.kill9("director-a");
    let (v4, v6) = takeover_times(&lab, t0);
    let r6 = common::lab::finish_downloads(&lab, dl6);
    let r4 = common::lab::finish_downloads(&lab, dl4);
    println!(
        "kill -9 of the Active Director (VRRPv3, 10 cs, priority 89): takeover IPv4 {} ms, \
         IPv6 {} ms; downloads intact IPv6 {}/{} {r6:?}, IPv4 {}/{} {r4:?}",
        v4.as_millis(),
        v6.as_millis(),
        r6.iter().filter(|d| d.1).count(),
        r6.len(),
        r4.iter().filter(|d| d.1).count(),
        r4.len()
    );
    for (node, intact) in r6.iter().chain(&r4) {
        assert!(
            *intact,
            "a download served by {node} broke across the failover"
        );
    }
    // New IPv6 connections are served after the takeover.
    assert!(lab.request_via(&proxy6, "/index.html", 3.0).is_some());
}
