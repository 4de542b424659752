//! Hostile input against a running lab, one lab for several checks.
//!
//! **1. ICMP errors and fragments** (issue 11, item 8), from the client's
//! namespace with raw sockets: an ICMP "fragmentation needed" quoting a live
//! download's reply reaches the scanning node that serves that download (its
//! kernel counts it), and no other node; fragmented TCP SYNs to the VIP are
//! reassembled by the node Maglev picks for them (they spread over the
//! nodes, where they used to all reach the director's own stack); a later
//! fragment without its first is a counted drop at the director.
//!
//! **2. The control plane** under the heaviest forged heartbeat flood this
//! lab can make (issue 11, item 4): a rogue host on the lab bridge sends forged
//! protocol-253 frames from an AF_XDP socket (`xsk::Socket`, copy mode on
//! the veth) as fast as one thread can, bounded in count and time, three of
//! four with the group's own LBID (they pass the XDP filter and fill the
//! shared control queue) and one of four with another LBID (dropped in XDP).
//! The sender is this test binary itself, run again inside the rogue
//! namespace as the ignored test `child_flood`. Meanwhile a client downloads through
//! the VIP (one established flow for the whole flood) and sends requests.
//!
//! Checks: the Active Director stays Master and the Passive Director never
//! takes over; the established download arrives intact and every request
//! succeeds; the flood reached the directors (XDP drops counted, control
//! queue full counted) and no VRRP advert was dropped. The figures are
//! printed (run with `--nocapture`) for `perf/RESULTS.md`.

mod common;

use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::lab::{self, Lab, Options};
use proxyha::dataplane::classify::build;
use proxyha::dataplane::port::Port;
use proxyha::xsk;

const ROGUE_NS: &str = "pdf-rogue";
/// The flood's bounds.
const FLOOD_SECS: f64 = 10.0;
const FLOOD_MAX_FRAMES: u64 = 20_000_000;

/// The rogue host: a namespace with a veth into the lab's bridge. Removed on
/// drop (its veth peer goes with it).
struct Rogue;

impl Rogue {
    fn add(lab: &Lab) -> Rogue {
        let _ = Command::new("ip").args(["netns", "del", ROGUE_NS]).status();
        let sw = format!("{}-sw", lab.prefix);
        let steps: [&[&str]; 5] = [
            &["ip", "netns", "add", ROGUE_NS],
            &[
                "ip", "link", "add", "eth0", "netns", ROGUE_NS, "type", "veth", "peer", "name",
                "rogue", "netns", &sw,
            ],
            &[
                "ip", "-n", &sw, "link", "set", "rogue", "master", "br0", "up",
            ],
            &["ip", "-n", ROGUE_NS, "link", "set", "eth0", "up"],
            &["ip", "-n", ROGUE_NS, "link", "set", "lo", "up"],
        ];
        let r = Rogue;
        for s in steps {
            let ok = Command::new(s[0])
                .args(&s[1..])
                .status()
                .is_ok_and(|st| st.success());
            assert!(ok, "{s:?} failed");
        }
        r
    }
}

impl Drop for Rogue {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", ROGUE_NS]).status();
    }
}

fn stats(lab: &Lab, node: &str) -> serde_json::Value {
    let out = Command::new(lab::binary())
        .args(["stats", "--json", "--socket"])
        .arg(lab.socket(node))
        .output()
        .expect("proxyha stats");
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn counter(v: &serde_json::Value, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

fn download(lab: &Lab) -> Child {
    Command::new("ip")
        .args(["netns", "exec", &lab.ns("client"), "curl", "-s", "-m", "60"])
        .args([
            "--limit-rate",
            "300k",
            "-x",
            "http://198.18.0.250:9090",
            "-o",
        ])
        .arg(lab.path().join("flood-dl.bin"))
        .arg("http://198.18.0.200/4m.bin")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("curl")
}

#[test]
fn hostile_input_against_a_running_lab() {
    let Some((_g, lab)) = Lab::start(
        "hostile_input_against_a_running_lab",
        Options {
            prefix: "pdf",
            ..Options::default()
        },
    ) else {
        return;
    };
    lab.wait_state("director-a", "Master", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no Master\n{}", lab.logs()));
    lab.wait_state("director-b", "Backup", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("director-b not Backup\n{}", lab.logs()));
    // Let discovery settle, and check the path works before the flood.
    thread::sleep(Duration::from_secs(4));
    for _ in 0..6 {
        lab.request("/index.html", 3.0)
            .unwrap_or_else(|| panic!("request before the flood failed\n{}", lab.logs()));
    }
    icmp_and_fragments_reach_the_owning_node(&lab);
    heartbeat_flood_cannot_starve_the_control_plane(&lab);
}

/// The scanning nodes' namespaces (both directors scan too).
const NODES: [&str; 3] = ["director-a", "director-b", "scanner-c"];

/// One counter of `/proc/net/snmp` or `/proc/net/netstat` (e.g. `Ip`
/// `ReasmOKs`, `TcpExt` `OutOfWindowIcmps`) in a node's namespace.
fn snmp(lab: &Lab, node: &str, group: &str, name: &str) -> u64 {
    let file = if group == "TcpExt" {
        "/proc/net/netstat"
    } else {
        "/proc/net/snmp"
    };
    let out = lab.exec(node, &["cat", file]);
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{group}:")))
        .map(|l| l.split_whitespace().collect())
        .collect();
    let [names, values] = &rows[..] else {
        panic!("no {group} rows in {file} of {node}")
    };
    names
        .iter()
        .position(|n| *n == name)
        .and_then(|i| values.get(i))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {group} {name} in {file} of {node}"))
}

/// Raw IPv4 packets from the client (`IPPROTO_RAW`: we write the IP header).
/// `icmp CPORT N`: N "fragmentation needed" errors to the VIP quoting the
/// reply VIP:9090 → client:CPORT. `frag PORT0 N`: N TCP SYNs to VIP:9090
/// from ports PORT0.., each in two fragments. `orphan`: a later fragment
/// alone.
const CRAFT: &str = r#"
import socket, struct, sys
CLIENT, VIP = socket.inet_aton('198.18.0.100'), socket.inet_aton('198.18.0.250')
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def ip(proto, src, dst, payload, ident=0, frag=0x4000, total=None):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, total or 20 + len(payload), ident, frag, 64, proto, 0, src, dst)
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + payload
def tcp(src, dst, sport, dport, flags, data=b''):
    h = struct.pack('!HHIIBBHHH', sport, dport, 1000, 0, 5 << 4, flags, 64240, 0, 0) + data
    c = csum(struct.pack('!4s4sBBH', src, dst, 0, 6, len(h)) + h)
    return h[:16] + struct.pack('!H', c) + h[18:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
def send(pkt): s.sendto(pkt, ('198.18.0.250', 0))
mode = sys.argv[1]
if mode == 'icmp':
    cport, n = int(sys.argv[2]), int(sys.argv[3])
    quoted = ip(6, VIP, CLIENT, tcp(VIP, CLIENT, 9090, cport, 0x10))[:28]
    msg = struct.pack('!BBHHH', 3, 4, 0, 0, 1280) + quoted
    msg = msg[:2] + struct.pack('!H', csum(msg)) + msg[4:]
    for _ in range(n): send(ip(1, CLIENT, VIP, msg))
elif mode == 'frag':
    port0, n = int(sys.argv[2]), int(sys.argv[3])
    for i in range(n):
        seg = tcp(CLIENT, VIP, port0 + i, 9090, 0x02, b'x' * 20)
        total = 20 + len(seg)
        send(ip(6, CLIENT, VIP, seg[:24], ident=0x5000 + i, frag=0x2000, total=44))
        send(ip(6, CLIENT, VIP, seg[24:], ident=0x5000 + i, frag=3, total=20 + len(seg) - 24))
elif mode == 'orphan':
    send(ip(6, CLIENT, VIP, b'y' * 16, ident=0x6001, frag=3))
"#;

fn craft(lab: &Lab, args: &[&str]) {
    let mut cmd = vec!["python3", "-c", CRAFT];
    cmd.extend_from_slice(args);
    let out = lab.exec("client", &cmd);
    assert!(
        out.status.success(),
        "craft {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn icmp_and_fragments_reach_the_owning_node(lab: &Lab) {
    // A live flow from a known client port: which node serves it?
    // Preferably on another node than the director itself, so that the
    // error really is redirected (a few client ports are tried).
    let serving = |cport: &str| -> (Child, &'static str) {
        let dl = Command::new("ip")
            .args(["netns", "exec", &lab.ns("client"), "curl", "-s", "-m", "30"])
            .args(["--local-port", cport, "--limit-rate", "400k"])
            .args(["-x", "http://198.18.0.250:9090", "-o", "/dev/null"])
            .arg("http://198.18.0.200/4m.bin")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl");
        let owner = (0..50)
            .find_map(|_| {
                thread::sleep(Duration::from_millis(100));
                NODES.iter().copied().find(|n| {
                    let out = lab.exec(n, &["ss", "-tnH", "state", "established"]);
                    // squid listens on [::], so addresses may show IPv4-mapped.
                    String::from_utf8_lossy(&out.stdout).lines().any(|l| {
                        l.contains("198.18.0.100")
                            && l.split_whitespace()
                                .any(|a| a.ends_with(&format!(":{cport}")))
                    })
                })
            })
            .unwrap_or_else(|| panic!("no node serves the download\n{}", lab.logs()));
        (dl, owner)
    };
    let mut tries = 0;
    let (mut dl, owner, cport) = loop {
        let cport = (45123 + tries).to_string();
        let (mut dl, owner) = serving(&cport);
        tries += 1;
        if owner != "director-a" || tries == 6 {
            break (dl, owner, cport);
        }
        let _ = dl.kill();
        let _ = dl.wait();
    };
    // The owner's TCP finds the flow's socket and, the quoted sequence
    // number being out of its window, counts the error there; a node
    // without the socket cannot (background ICMP makes the plain ICMP
    // counters useless here).
    let unreach = |n: &str| snmp(lab, n, "TcpExt", "OutOfWindowIcmps");
    let before: Vec<u64> = NODES.iter().map(|n| unreach(n)).collect();
    let st0 = stats(lab, "director-a");
    craft(lab, &["icmp", &cport, "5"]);
    thread::sleep(Duration::from_millis(500));
    let got: Vec<u64> = NODES
        .iter()
        .zip(&before)
        .map(|(n, b)| unreach(n) - b)
        .collect();
    let st1 = stats(lab, "director-a");
    let steered =
        counter(&st1, &["total", "icmp_steered"]) - counter(&st0, &["total", "icmp_steered"]);
    println!(
        "ICMP frag-needed x5 about a flow served by {owner}: matched to a TCP socket per node {NODES:?} = {got:?}, director-a icmp_steered {steered}"
    );
    for (n, g) in NODES.iter().zip(&got) {
        let want = if *n == owner { 5 } else { 0 };
        assert_eq!(
            *g, want,
            "ICMP errors received by {n} (the flow is on {owner})"
        );
    }
    assert_eq!(steered, 5);
    let _ = dl.kill();
    let _ = dl.wait();

    // Fragmented SYNs: reassembled where Maglev puts them, spread over the
    // nodes (each node's kernel counts one reassembly per datagram).
    const SYNS: u64 = 12;
    let reasm = |n: &str| snmp(lab, n, "Ip", "ReasmOKs");
    let before: Vec<u64> = NODES.iter().map(|n| reasm(n)).collect();
    craft(lab, &["frag", "47000", &SYNS.to_string()]);
    thread::sleep(Duration::from_millis(500));
    let got: Vec<u64> = NODES
        .iter()
        .zip(&before)
        .map(|(n, b)| reasm(n) - b)
        .collect();
    let st2 = stats(lab, "director-a");
    let frag =
        counter(&st2, &["total", "frag_steered"]) - counter(&st1, &["total", "frag_steered"]);
    println!(
        "{SYNS} fragmented SYNs: reassembled per node {NODES:?} = {got:?}, director-a frag_steered {frag}"
    );
    assert_eq!(
        got.iter().sum::<u64>(),
        SYNS,
        "every datagram reassembled once"
    );
    assert!(
        got.iter().filter(|&&g| g > 0).count() >= 2,
        "all on one node: {got:?}"
    );
    assert_eq!(frag, 2 * SYNS);

    // A later fragment alone: dropped at the director, counted.
    craft(lab, &["orphan"]);
    thread::sleep(Duration::from_millis(300));
    let st3 = stats(lab, "director-a");
    let dropped = counter(&st3, &["total", "drops", "drop_frag_unmatched"])
        - counter(&st2, &["total", "drops", "drop_frag_unmatched"]);
    assert_eq!(dropped, 1, "the orphan fragment was not counted");
}

fn heartbeat_flood_cannot_starve_the_control_plane(lab: &Lab) {
    let rogue = Rogue::add(lab);
    let before = stats(lab, "director-a");
    let before_b = stats(lab, "director-b");

    // One established flow for the whole flood: ~14 s at 300 KB/s.
    let mut dl = download(lab);
    thread::sleep(Duration::from_millis(500));
    let flood = Command::new("ip")
        .args(["netns", "exec", ROGUE_NS])
        .arg(std::env::current_exe().expect("test binary"))
        .args(["child_flood", "--exact", "--ignored", "--nocapture"])
        .env("PD_FLOOD_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flood sender");
    let t0 = Instant::now();
    let mut states = Vec::new();
    let (mut ok, mut failed) = (0u32, 0u32);
    while t0.elapsed() < Duration::from_secs_f64(FLOOD_SECS) {
        states.push((
            t0.elapsed().as_secs_f64(),
            lab.vrrp_state("director-a"),
            lab.vrrp_state("director-b"),
        ));
        match lab.request("/index.html", 3.0) {
            Some(_) => ok += 1,
            None => failed += 1,
        }
        thread::sleep(Duration::from_millis(200));
    }
    let out = flood.wait_with_output().expect("flood sender");
    let report = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "flood sender failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = stats(lab, "director-a");
    let after_b = stats(lab, "director-b");
    // Node states right after the flood (printed: a flood that fills the
    // shared queue also drops real heartbeats, see docs/security.md).
    let nodes: Vec<String> = lab
        .status("director-a")
        .and_then(|v| v["entries"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["device"].as_str().unwrap_or("?"),
                e["state"].as_str().unwrap_or("?")
            )
        })
        .collect();
    let dl_ok = dl.wait().is_ok_and(|s| s.success());
    let want = std::fs::read(lab.path().join("origin/www/4m.bin")).unwrap();
    let intact = dl_ok && std::fs::read(lab.path().join("flood-dl.bin")).is_ok_and(|b| b == want);
    drop(rogue);

    let sent: u64 = report
        .split_whitespace()
        .find_map(|w| w.strip_prefix("sent="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let secs: f64 = report
        .split_whitespace()
        .find_map(|w| w.strip_prefix("secs="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1.0);
    let d = |path: &[&str]| counter(&after, path).saturating_sub(counter(&before, path));
    let xdp_drop = d(&["xdp", "drop_heartbeat"]);
    let xdp_hb = d(&["xdp", "to_xsk_heartbeat"]);
    let rx_hb = d(&["total", "rx_heartbeat"]);
    let queue_full = d(&["total", "control_queue_full"]);
    // The Backup is the one that receives adverts (from the Master).
    let d_b = |path: &[&str]| counter(&after_b, path).saturating_sub(counter(&before_b, path));
    let vrrp_full = d(&["total", "vrrp_queue_full"]) + d_b(&["total", "vrrp_queue_full"]);
    let rx_vrrp = d_b(&["total", "rx_vrrp"]);
    let queue_full_b = d_b(&["total", "control_queue_full"]);
    println!(
        "flood: {report} ({:.0} frames/s); director-a: xdp drop_heartbeat {xdp_drop}, \
         to_xsk_heartbeat {xdp_hb}, rx_heartbeat {rx_hb}, control_queue_full {queue_full}, \
         director-b: control_queue_full {queue_full_b}, rx_vrrp {rx_vrrp}; both: \
         vrrp_queue_full {vrrp_full}; requests ok {ok} failed {failed}; \
         download intact {intact}; nodes after: {nodes:?}",
        sent as f64 / secs
    );
    let not_master: Vec<_> = states.iter().filter(|s| s.1 != "Master").collect();
    let b_master: Vec<_> = states.iter().filter(|s| s.2 == "Master").collect();
    assert!(
        not_master.is_empty(),
        "director-a left Master: {not_master:?}\n{}",
        lab.logs()
    );
    assert!(
        b_master.is_empty(),
        "director-b took over: {b_master:?}\n{}",
        lab.logs()
    );
    assert_eq!(lab.vrrp_state("director-a"), "Master");
    assert!(intact, "the established download broke\n{}", lab.logs());
    assert_eq!(failed, 0, "{failed} requests failed during the flood");
    assert!(ok > 10, "only {ok} requests during the flood");
    assert!(sent > 100_000, "the flood was too small: {report}");
    assert!(xdp_drop > 0, "no other-LBID heartbeat dropped in XDP");
    assert!(xdp_hb > 0, "no flood frame reached the sockets");
    assert_eq!(vrrp_full, 0, "a VRRP advert was dropped");
    assert!(rx_vrrp > 0, "adverts kept arriving at the Backup");
}

/// Forged heartbeat frames: a reply header (docs/heartbeat.md §2.1) whose
/// length field lies, so the control plane's parser rejects it after the
/// XDP filter passed it (LBID 10); every fourth has LBID 99.
fn forged(i: u32) -> Vec<u8> {
    let lbid: u16 = if i % 4 == 3 { 99 } else { 10 };
    let mut m = b"PXHB\x01\x02\x00\x00".to_vec();
    m.extend_from_slice(&900u16.to_be_bytes());
    m.extend_from_slice(&lbid.to_be_bytes());
    m.extend_from_slice(&(0xc612_0042u32 + i).to_be_bytes());
    m.resize(76, 0);
    build::ipv4(
        [0xff; 6],
        [0x02, 0, 0, 0, 0, 0x66],
        None,
        "198.18.0.66".parse().unwrap(),
        "198.18.0.255".parse().unwrap(),
        253,
        &m,
    )
}

/// The flood sender, inside the rogue namespace (started by the test
/// above; does nothing when run on its own). Bounded by
/// `FLOOD_MAX_FRAMES` and `FLOOD_SECS`. Prints `sent=N secs=S`.
#[test]
#[ignore = "the flood sender, run inside the rogue namespace by hostile_input_against_a_running_lab"]
fn child_flood() {
    proxyha::node::prereq::require_parent("child_flood", "PD_FLOOD_CHILD");
    let frames: Vec<Vec<u8>> = (0..256).map(forged).collect();
    let cfg = xsk::SocketConfig {
        frame_count: 4096,
        alloc_reserve: 4032,
        ..xsk::SocketConfig::default()
    };
    let mut sock = xsk::Socket::open("eth0", 0, &cfg).expect("AF_XDP socket on eth0");
    let mut batch: Vec<proxyha::dataplane::port::Frame> = Vec::with_capacity(64);
    let (mut sent, mut i) = (0u64, 0usize);
    let t0 = Instant::now();
    let limit = Duration::from_secs_f64(FLOOD_SECS);
    while sent < FLOOD_MAX_FRAMES && t0.elapsed() < limit {
        sock.reclaim();
        while batch.len() < 64 {
            let Some(mut fr) = sock.alloc() else { break };
            let f = &frames[i % frames.len()];
            i += 1;
            sock.buffer_mut(fr)[..f.len()].copy_from_slice(f);
            fr.len = f.len() as u32;
            batch.push(fr);
        }
        let n = sock.send(&batch);
        batch.drain(..n);
        sent += n as u64;
        let _ = sock.flush();
    }
    // Let the ring drain, then give back what is left.
    let _ = sock.flush();
    std::thread::sleep(Duration::from_millis(50));
    sock.reclaim();
    sock.release(&batch);
    // `sent` counts what the kernel completed (really went out of eth0).
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "sent={} secs={secs:.3} queued={sent}",
        sock.stats().tx_completed
    );
}
