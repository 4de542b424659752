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
    assert_eq!(state6(&lab, "director-b"), "Backup");
    assert_eq!(lab.vrrp_state("director-b"), "Backup");

    // status: every node's ip6 line carries its management_ip6 (group A).
    let st = lab.status("director-b").unwrap();
    let a = st["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["device"] == "director-a")
        .expect("director-a in director-b's status");
    assert_eq!(a["ip6"], "2001:2::1", "{st}");

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
    assert!(replies("director-a") >= 1);
    assert_eq!(replies("director-b"), 0, "a Backup never answers");

    // kill -9 the Active Director; both families move to director-b.
    let t0 = Instant::now();
    lab.kill9("director-a");
    let (mut v4, mut v6) = (None, None);
    while t0.elapsed() < Duration::from_secs(5) && (v4.is_none() || v6.is_none()) {
        if v4.is_none() && lab.vrrp_state("director-b") == "Master" {
            v4 = Some(t0.elapsed());
        }
        if v6.is_none() && state6(&lab, "director-b") == "Master" {
            v6 = Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (Some(v4), Some(v6)) = (v4, v6) else {
        panic!("no takeover: v4 {v4:?} v6 {v6:?}\n{}", lab.logs());
    };
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
    assert!(replies("director-b") >= 1);
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
