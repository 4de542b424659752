//! Secure-by-default checks on the example cluster in network namespaces
//! (scripts/lab.sh): one daemon per node, the control socket's permissions,
//! and hostile input from a host on the segment.
//!
//! They need root; under CI they fail when they cannot run. One lab serves
//! every check, torn down on drop even on failure.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::lab::{self, Lab, Options};

/// Runs `proxyha ARGS` as the unprivileged user `nobody` (setpriv).
fn as_nobody(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(lab::binary())
        .args(args)
        .output()
        .expect("setpriv")
}

#[test]
fn one_daemon_per_node_and_a_private_control_socket() {
    let Some((_g, lab)) = Lab::start(
        "one_daemon_per_node_and_a_private_control_socket",
        Options {
            prefix: "phs1",
            ..Options::default()
        },
    ) else {
        return;
    };
    assert!(
        lab.wait_state("director-a", "Master", Duration::from_secs(15))
            .is_some(),
        "no Master\n{}",
        lab.logs()
    );
    assert!(lab.request("/index.html", 3.0).is_some(), "{}", lab.logs());

    // A second daemon for the same node, with the same config, in the same
    // namespace: refused before it touches anything.
    let cfg = lab.path().join("director-a").join("node.toml");
    let second = Command::new("timeout")
        .arg("20")
        .args(["ip", "netns", "exec", &lab.ns("director-a")])
        .arg(lab::binary())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "second daemon started: {err}");
    assert!(
        err.contains("node \"director-a\" is already run by another proxyha daemon"),
        "{err}"
    );
    let pid = lab.pid("director-a", "proxyha").unwrap();
    assert!(err.contains(&format!("(PID {pid})")), "{err}");
    // The running daemon is unaffected: still Master, still forwarding, its
    // XDP program still attached, its VIP still on lo.
    assert_eq!(lab.vrrp_state("director-a"), "Master");
    for i in 0..5 {
        assert!(
            lab.request("/index.html", 3.0).is_some(),
            "request {i} after the second daemon failed\n{}",
            lab.logs()
        );
    }
    let link = lab.exec("director-a", &["ip", "link", "show", "eth0"]);
    assert!(
        String::from_utf8_lossy(&link.stdout).contains("xdp"),
        "XDP detached: {}",
        String::from_utf8_lossy(&link.stdout)
    );
    let lo = lab.exec("director-a", &["ip", "addr", "show", "lo"]);
    assert!(String::from_utf8_lossy(&lo.stdout).contains("198.18.0.250"));

    // The control socket is mode 0600: another user cannot even connect.
    let sock = lab.socket("director-a");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", sock.display());
    let s = sock.to_string_lossy().into_owned();
    let out = as_nobody(&["status", "--socket", &s]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_nobody(&["drain", "on", "--socket", &s]);
    assert!(!out.status.success());
    assert!(lab.status("director-a").is_some());
}

/// Forged frames from the lab's rogue host (198.18.0.66).
mod forge {
    use std::net::Ipv4Addr;

    use proxyha::control::frames::build_ipv4;
    use proxyha::wire::{ethernet, ipv4, vrrp};

    pub const ROGUE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 66);
    pub const DIRECTOR_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);

    /// A VRRPv2 advert for VRID `vrid` at `priority` from `src`, as an
    /// Ethernet frame from `mac` to 224.0.0.18 with IP TTL `ttl`.
    pub fn advert(
        mac: [u8; 6],
        src: Ipv4Addr,
        vrid: u8,
        priority: u8,
        addrs: Vec<Ipv4Addr>,
        ttl: u8,
    ) -> Vec<u8> {
        let payload = vrrp::Repr {
            version: vrrp::Version::V2,
            vrid,
            priority,
            adver_int: 1,
            auth: vrrp::Auth::None,
            addrs,
        }
        .to_bytes(src, vrrp::MULTICAST_ADDR)
        .unwrap();
        build_ipv4(
            ethernet::Address(mac),
            ethernet::Address::ipv4_multicast(vrrp::MULTICAST_ADDR),
            src,
            vrrp::MULTICAST_ADDR,
            ipv4::Protocol::Vrrp,
            ttl,
            &payload,
        )
    }

    /// A heartbeat reply as the rogue would forge it: from `(mac, src)` to
    /// director-a, claiming `node_id`, signed with `key` when given.
    pub fn reply(
        mac: [u8; 6],
        src: Ipv4Addr,
        to_mac: [u8; 6],
        lbid: u16,
        node_id: u32,
        claimed_mac: [u8; 6],
        key: Option<&[u8]>,
    ) -> Vec<u8> {
        use proxyha::wire::heartbeat as hb;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let payload = hb::Repr {
            kind: hb::Kind::Reply,
            lbid,
            node_id,
            name: "rogue".into(),
            role: hb::Role::Scanning,
            priority: 0,
            state: hb::State::Ok,
            director_state: hb::State::Unknown,
            ipv4: src,
            ipv6: std::net::Ipv6Addr::UNSPECIFIED,
            mac: claimed_mac,
            // Ahead of every real sequence (senders count from unix µs), so
            // the replay check does not hide the check under test.
            sequence: now_ms * 1000 + 1_000_000_000,
            timestamp_ms: now_ms,
            connections: 0,
            load_permille: 0,
            capacity: 1_000_000,
            ports: hb::Ports::from_results(&[true]),
            announcement: None,
        }
        .to_bytes(key)
        .unwrap();
        build_ipv4(
            ethernet::Address(mac),
            ethernet::Address(to_mac),
            src,
            Ipv4Addr::new(198, 18, 0, 1),
            ipv4::Protocol::Heartbeat,
            255,
            &payload,
        )
    }

    /// A heartbeat request carrying a membership announcement that names only
    /// the rogue, as a forged Active Director would send it (broadcast).
    pub fn announcement(mac: [u8; 6], src: Ipv4Addr, key: Option<&[u8]>) -> Vec<u8> {
        use proxyha::wire::heartbeat as hb;
        let frame = reply(mac, src, [0xff; 6], 10, u32::from(src), mac, None);
        // Reuse the reply's fields; turn it into a director's request.
        let ip = proxyha::control::frames::parse_ipv4(&frame).unwrap();
        let p = hb::Packet::new_checked(ip.payload).unwrap();
        let mut r = hb::Repr::parse(&p).unwrap();
        r.kind = hb::Kind::Request;
        r.role = hb::Role::Director;
        r.priority = 254;
        r.state = hb::State::Ok;
        r.director_state = hb::State::Network;
        r.announcement = Some(hb::Announcement {
            generation: u64::MAX / 2,
            entries: vec![hb::Entry {
                id: u32::from(src),
                ip: src,
                mac,
                weight: 1000,
            }],
        });
        build_ipv4(
            ethernet::Address(mac),
            ethernet::Address::BROADCAST,
            src,
            Ipv4Addr::BROADCAST,
            ipv4::Protocol::Heartbeat,
            255,
            &r.to_bytes(key).unwrap(),
        )
    }

    /// `frame` with its last byte of the VRRP checksum flipped.
    pub fn bad_checksum(mut frame: Vec<u8>) -> Vec<u8> {
        // Ethernet 14 + IPv4 20 + VRRP checksum at offset 6.
        frame[14 + 20 + 7] ^= 0xff;
        frame
    }
}

/// Sends `frames` (each `repeat` times, `gap_us` apart) from the rogue host.
fn inject(lab: &Lab, frames: &[(Vec<u8>, u32, u32)]) -> u64 {
    let file = lab.path().join("inject.txt");
    let mut text = String::new();
    for (f, repeat, gap_us) in frames {
        let hex: String = f.iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!("{repeat} {gap_us} {hex}\n"));
    }
    std::fs::write(&file, text).unwrap();
    let out = lab.exec(
        "rogue",
        &[
            "python3",
            &lab::root().join("scripts/inject.py").to_string_lossy(),
            "eth0",
            &file.to_string_lossy(),
        ],
    );
    assert!(
        out.status.success(),
        "inject.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn mac_of(lab: &Lab, node: &str) -> [u8; 6] {
    let out = lab.exec(node, &["cat", "/sys/class/net/eth0/address"]);
    proxyha::node::iface::parse_mac(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
}

/// The membership as `status` shows it, without the moving counters.
fn membership(status: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = status["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    format!(
                        "{} {} {} {} {}",
                        e["device"], e["ip"], e["mac"], e["state"], e["type"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Waits (bounded) until director-a lists all five entries.
fn wait_discovered(lab: &Lab) -> serde_json::Value {
    let until = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let s = lab.status("director-a").unwrap();
        if membership(&s).len() == 5 {
            return s;
        }
        assert!(
            std::time::Instant::now() < until,
            "discovery incomplete: {:?}\n{}",
            membership(&s),
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn hb_counter(status: &serde_json::Value, name: &str) -> u64 {
    status["heartbeat"]["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no heartbeat counter {name} in {}", status["heartbeat"]))
}

/// The first protocol-253 frame seen on the lab's bridge (a real heartbeat,
/// to replay), read from a pcap file that tcpdump writes.
fn capture_heartbeat(lab: &Lab) -> Vec<u8> {
    let file = lab.path().join("hb.pcap");
    common::cmd::output(
        Command::new("ip")
            .args(["netns", "exec", &lab.ns("sw")])
            .args(["timeout", "10", "tcpdump", "-c", "1", "-i", "br0", "-w"])
            .arg(&file)
            .arg("ip proto 253 and ip src 198.18.0.3"),
    );
    let pcap = std::fs::read(&file).unwrap();
    // pcap: 24-byte file header, 16-byte record header (incl_len at 8..12).
    let len = u32::from_le_bytes(pcap[32..36].try_into().unwrap()) as usize;
    pcap[40..40 + len].to_vec()
}

fn vrrp_counter(status: &serde_json::Value, name: &str) -> u64 {
    status["vrrp"]["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no vrrp counter {name} in {}", status["vrrp"]["counters"]))
}

#[test]
fn a_hostile_host_on_the_segment_changes_nothing() {
    let Some((_g, lab)) = Lab::start(
        "a_hostile_host_on_the_segment_changes_nothing",
        Options {
            prefix: "phs2",
            rogue: true,
            ..Options::default()
        },
    ) else {
        return;
    };
    assert!(
        lab.wait_state("director-a", "Master", Duration::from_secs(15))
            .is_some(),
        "no Master\n{}",
        lab.logs()
    );
    assert_eq!(lab.vrrp_state("director-b"), "Backup");
    let rogue_mac = mac_of(&lab, "rogue");
    let before = wait_discovered(&lab);
    let xdp_passed = || lab.stats("director-a")["xdp"]["passed"].as_u64().unwrap();
    let passed_before = xdp_passed();

    // VRRP forgeries, each with a priority that would win (254) if accepted.
    use forge::*;
    let vips = vec![VIP];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // From the rogue's own address: not in vrrp.peers.
        (
            "drop_not_peer",
            advert(rogue_mac, ROGUE, 51, 254, vips.clone(), 255),
        ),
        // Claiming director-b's address, but routed (TTL 64).
        (
            "drop_bad_ttl",
            advert(rogue_mac, DIRECTOR_B, 51, 254, vips.clone(), 64),
        ),
        // Claiming director-b's address with a broken checksum.
        (
            "drop_bad_checksum",
            bad_checksum(advert(rogue_mac, DIRECTOR_B, 51, 254, vips.clone(), 255)),
        ),
        // Priority 255 ("address owner") with other addresses.
        (
            "drop_bad_address_list",
            advert(
                rogue_mac,
                DIRECTOR_B,
                51,
                255,
                vec![std::net::Ipv4Addr::new(198, 18, 0, 99)],
                255,
            ),
        ),
    ];
    let mut frames: Vec<(Vec<u8>, u32, u32)> =
        cases.iter().map(|(_, f)| (f.clone(), 20, 10_000)).collect();
    // Another VRID is not ours: the XDP filter passes it to the kernel (which
    // runs no VRRP), and the control plane never sees it.
    frames.push((
        advert(rogue_mac, DIRECTOR_B, 77, 254, vips.clone(), 255),
        20,
        10_000,
    ));
    let sent = inject(&lab, &frames);
    assert_eq!(sent, 20 * frames.len() as u64);
    // Real requests through the VIP meanwhile and after: all served by the
    // cluster, none by the rogue (it runs no proxy, so a flow sent to its
    // MAC would fail).
    for i in 0..20 {
        assert!(
            lab.request("/index.html", 3.0).is_some(),
            "request {i} failed after the forgeries\n{}",
            lab.logs()
        );
    }
    let after = lab.status("director-a").unwrap();
    for (counter, _) in &cases {
        let (b, a) = (
            vrrp_counter(&before, counter),
            vrrp_counter(&after, counter),
        );
        assert!(a >= b + 20, "{counter}: {b} -> {a}");
    }
    assert!(xdp_passed() >= passed_before + 20);

    // Heartbeat forgeries. Every node of group A signs with the lab's key.
    let key = std::fs::read(lab.path().join("group-a.key")).unwrap();
    let key = key.trim_ascii();
    let dir_a = mac_of(&lab, "director-a");
    let scanner_c = std::net::Ipv4Addr::new(198, 18, 0, 3);
    let scanner_c_id = u32::from(scanner_c);
    let hb_before = lab.status("director-a").unwrap();
    let replayed = capture_heartbeat(&lab);
    let mut hb_frames: Vec<(Vec<u8>, u32, u32)> = vec![
        // An outsider without the key: unsigned, and signed with a wrong key.
        (
            reply(rogue_mac, ROGUE, dir_a, 10, 0x0101_0101, rogue_mac, None),
            20,
            5_000,
        ),
        (
            reply(
                rogue_mac,
                ROGUE,
                dir_a,
                10,
                0x0101_0102,
                rogue_mac,
                Some(&[7u8; 32]),
            ),
            20,
            5_000,
        ),
        // A real heartbeat of scanner-c, sent again.
        (replayed, 20, 5_000),
        // An insider with the key: scanner-c's id from the rogue's address,
        // and a node with a multicast MAC.
        (
            reply(
                rogue_mac,
                ROGUE,
                dir_a,
                10,
                scanner_c_id,
                rogue_mac,
                Some(key),
            ),
            20,
            5_000,
        ),
        (
            reply(
                rogue_mac,
                ROGUE,
                dir_a,
                10,
                0x0101_0103,
                [0x01, 0, 0x5e, 0, 0, 1],
                Some(key),
            ),
            20,
            5_000,
        ),
    ];
    // 300 distinct forged ids without the key.
    for i in 0..300u32 {
        hb_frames.push((
            reply(
                rogue_mac,
                ROGUE,
                dir_a,
                10,
                0x0200_0000 + i,
                rogue_mac,
                None,
            ),
            1,
            0,
        ));
    }
    // A forged Active Director's membership announcement, without the key.
    hb_frames.push((announcement(rogue_mac, ROGUE, None), 20, 5_000));
    // Another group's LBID: dropped by the XDP filter before the control
    // plane sees it.
    hb_frames.push((
        reply(rogue_mac, ROGUE, dir_a, 20, 0x0101_0104, rogue_mac, None),
        20,
        5_000,
    ));
    let xdp_drop_heartbeat = || {
        lab.stats("director-a")["xdp"]["drop_heartbeat"]
            .as_u64()
            .unwrap()
    };
    let other_lbid_before = xdp_drop_heartbeat();
    let b_before = lab.status("director-b").unwrap();
    let sent = inject(&lab, &hb_frames);
    assert_eq!(sent, 20 * 7 + 300);
    for i in 0..20 {
        assert!(
            lab.request("/index.html", 3.0).is_some(),
            "request {i} failed after the heartbeat forgeries\n{}",
            lab.logs()
        );
    }
    let hb_after = lab.status("director-a").unwrap();
    for (counter, at_least) in [
        ("drop_unauthenticated", 320),
        ("drop_bad_hmac", 20),
        ("drop_replay", 20),
        ("drop_identity_mismatch", 20),
        ("drop_bad_mac", 20),
    ] {
        let (b, a) = (
            hb_counter(&hb_before, counter),
            hb_counter(&hb_after, counter),
        );
        assert!(
            a >= b + at_least,
            "{counter}: {b} -> {a}\n{}",
            hb_after["heartbeat"]
        );
    }
    assert_eq!(
        membership(&hb_after),
        membership(&before),
        "membership changed"
    );
    assert!(!hb_after.to_string().contains("198.18.0.66"));
    assert!(!hb_after.to_string().contains("rogue"));
    assert!(xdp_drop_heartbeat() >= other_lbid_before + 20);
    let b = lab.status("director-b").unwrap();
    assert!(!b.to_string().contains("198.18.0.66"));
    assert_eq!(
        membership(&b),
        membership(&b_before),
        "director-b adopted a forgery"
    );
    assert!(
        hb_counter(&b, "drop_unauthenticated")
            >= hb_counter(&b_before, "drop_unauthenticated") + 20,
        "{}",
        b["heartbeat"]
    );
    // No flow was ever sent to the rogue's MAC: no slot names it.
    assert!(!lab.stats("director-a").to_string().contains("198.18.0.66"));
    assert_eq!(lab.vrrp_state("director-a"), "Master");
    assert_eq!(lab.vrrp_state("director-b"), "Backup");
    assert_eq!(
        vrrp_counter(&after, "became_master"),
        vrrp_counter(&before, "became_master")
    );
    assert_eq!(
        membership(&after),
        membership(&before),
        "membership changed"
    );
    assert!(!after.to_string().contains("198.18.0.66"));
}
