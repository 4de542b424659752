//! The XDP fast path (docs/dataplane.md, "The XDP fast path") on the real
//! kernel, in two network namespaces joined by a veth pair. Needs root, `ip`
//! and `python3`; without them it prints a SKIP line, or fails
//! under `CI` / `PROXYHA_REQUIRE_ROOT=1` (`proxyha::node::prereq`).
//!
//! The parent builds the namespaces (`px1-fp<pid>a`, `px1-fp<pid>b`, removed
//! by a guard) and runs the `child_*` tests of this binary inside namespace
//! A with `ip netns exec`:
//!
//! * `child_program`: the filter program itself through `BPF_PROG_TEST_RUN`
//!   (a hit is rewritten and sent with `XDP_TX`; a stale generation, a
//!   FAILED node, an older epoch, a SYN, a first fragment go to the
//!   workers; a DRAINING node keeps its flows; a backup forwards nothing;
//!   the own share goes to the stack with `XDP_PASS` only when asked;
//!   IPv6 flows are forwarded under the workers' folded keys, apart from
//!   IPv4 ones).
//! * `child_bypass`: a real worker on an AF_XDP socket with the fast path
//!   on, and a python3 sender in namespace B: a SYN flood and spoofed ACKs
//!   leave the flow map empty; an established flow's later packets bypass
//!   the worker (its counters stay, the fast path's grow) and arrive at B
//!   rewritten to the node's MAC; a FAILED node's flows go back to the
//!   worker and move.
//!
//! The child tests are `#[ignore]`d and fail unless `PX1_FP_CHILD` is set.

mod common;

use common::cmd::run;
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use proxyha::balance::{flow, health, maglev};
use proxyha::dataplane::classify::build::{self, ACK, FIN, SYN};
use proxyha::dataplane::classify::{Filter as Classifier, virtual_mac};
use proxyha::dataplane::offload::Settings;
use proxyha::dataplane::redirect::MemorySink;
use proxyha::dataplane::stats::Stats;
use proxyha::dataplane::worker::{self, Polling, Worker};
use proxyha::dataplane::{Queues, Shared};
use proxyha::node::prereq;
use proxyha::xsk::{self, Verdict};

const IF_A: &str = "px1a0";
const IF_B: &str = "px1b0";
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 98, 250);
const VRID: u8 = 51;
const PORT: u16 = 9090;
const M: u32 = 4099;
const ENV: &str = "PX1_FP_CHILD";

fn node_mac(slot: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x10, slot as u8]
}

// ------------------------------------------------------------------ parent

/// Namespaces A and B joined by a veth pair; deleted on drop.
struct Netns {
    a: String,
    b: String,
}

impl Netns {
    fn new() -> Netns {
        let pid = std::process::id();
        let ns = Netns {
            a: format!("px1-fp{pid}a"),
            b: format!("px1-fp{pid}b"),
        };
        ns.remove();
        let (a, b) = (ns.a.as_str(), ns.b.as_str());
        run(&["ip", "netns", "add", a]);
        run(&["ip", "netns", "add", b]);
        run(&[
            "ip", "-n", a, "link", "add", IF_A, "type", "veth", "peer", "name", IF_B, "netns", b,
        ]);
        for (n, dev) in [(a, IF_A), (b, IF_B), (a, "lo"), (b, "lo")] {
            run(&["ip", "-n", n, "link", "set", dev, "up"]);
        }
        // B sees the frames A forwards to (made-up) node MACs.
        run(&["ip", "-n", b, "link", "set", IF_B, "promisc", "on"]);
        ns
    }

    fn remove(&self) {
        for n in [&self.a, &self.b] {
            let _ = Command::new("ip")
                .args(["netns", "del", n])
                .stderr(Stdio::null())
                .status();
        }
    }

    fn child(&self, name: &str) -> Output {
        let exe = std::env::current_exe().expect("test binary path");
        let out = Command::new("ip")
            .args(["netns", "exec", &self.a])
            .arg(exe)
            .args([name, "--exact", "--ignored", "--nocapture"])
            .env(ENV, "1")
            .env("PX1_FP_NS_B", &self.b)
            .output()
            .expect("run child");
        eprintln!(
            "---- child {name} ({})\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.remove();
    }
}

#[test]
fn fast_path_in_network_namespaces() {
    const NAME: &str = "fast_path_in_network_namespaces";
    if !prereq::require_root(NAME)
        || !prereq::require_tool(NAME, "ip")
        || !prereq::require_tool(NAME, "python3")
    {
        return;
    }
    let ns = Netns::new();
    assert!(ns.child("child_program").status.success(), "child_program");
    assert!(ns.child("child_bypass").status.success(), "child_bypass");
}

// ------------------------------------------------------------------- child

fn our_mac() -> [u8; 6] {
    let s = std::fs::read_to_string(format!("/sys/class/net/{IF_A}/address")).expect("MAC");
    let v: Vec<u8> = s
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).expect("hex"))
        .collect();
    v.try_into().expect("6 bytes")
}

fn client(i: u32) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::new(198, 18, 98, 10 + (i % 200) as u8),
        20_000 + i as u16,
    )
}

fn key(i: u32) -> flow::Key {
    let (ip, port) = client(i);
    flow::Key {
        src: u32::from(ip),
        dst: u32::from(VIP),
        sport: port,
        dport: PORT,
        proto: 6,
        v6: false,
    }
}

fn tcp(i: u32, flags: u8) -> Vec<u8> {
    let (ip, port) = client(i);
    let src = [0x02, 0, 0, 0, 0, 0x64];
    build::tcp(
        virtual_mac(VRID),
        src,
        None,
        ip,
        port,
        VIP,
        PORT,
        flags,
        b"data",
    )
}

fn set_node(h: &health::Table, slot: usize, state: health::State) {
    h.set(
        slot,
        health::NodeInfo {
            id: 7000 + slot as u64,
            mac: node_mac(slot),
            ip: Ipv4Addr::new(198, 18, 98, 100 + slot as u8),
            state,
            weight: 100,
            connections: 0,
        },
    )
    .unwrap();
}

/// The filter on IF_A, steering VIP:9090 to a socket on queue 0, active,
/// with the fast path on (own share through the workers), own slot 2.
fn filter_and_socket() -> (xsk::Filter, xsk::Socket, xsk::FilterConfig) {
    let filter = xsk::Filter::attach(IF_A, xsk::AttachMode::Native).expect("attach");
    let sock = xsk::Socket::open(IF_A, 0, &xsk::SocketConfig::default()).expect("socket");
    filter.add_socket(&sock).unwrap();
    filter.set_vips(&[VIP]).unwrap();
    filter.set_ports(xsk::L4::Tcp, &[PORT]).unwrap();
    let cfg =
        xsk::FilterConfig::director(VRID, false).with_offload(true, false, our_mac(), Some(2));
    filter.set_config(&cfg).unwrap();
    filter.set_active(true).unwrap();
    let active = filter.config();
    assert_eq!(active.epoch, 1, "activating starts an epoch");
    (filter, sock, active)
}

fn target(h: &health::Table, slot: usize) -> flow::Target {
    let n = h.get(slot).unwrap();
    flow::Target {
        slot: slot as u16,
        generation: n.generation as u16,
        mac: health::mac_to_u64(n.mac),
    }
}

#[test]
#[ignore = "runs inside a namespace, started by fast_path_in_network_namespaces"]
fn child_program() {
    prereq::require_parent("child_program", ENV);
    let (filter, _sock, cfg) = filter_and_socket();
    let fp = filter.fast_path();
    let h = health::Table::new();
    for s in 0..3 {
        set_node(&h, s, health::State::Up);
    }
    assert_eq!(fp.sync_nodes(&h).unwrap(), health::CAPACITY, "first sync");
    assert_eq!(fp.sync_nodes(&h).unwrap(), 0, "nothing changed");
    let stale = flow::Target {
        generation: target(&h, 0).generation.wrapping_sub(1),
        ..target(&h, 0)
    };
    let installed = fp
        .install(&[
            (key(1), target(&h, 0)),
            (key(2), target(&h, 1)),
            (key(3), target(&h, 2)),
            (key(4), stale),
        ])
        .unwrap();
    assert_eq!(installed, 4);
    let run = |i: u32, flags: u8| filter.run(&tcp(i, flags)).expect("test run");

    // A hit: both MACs rewritten, the IP packet untouched, XDP_TX.
    let frame = tcp(1, ACK);
    let (v, out) = run(1, ACK);
    assert_eq!(v, Verdict::Tx);
    assert_eq!(out[..6], node_mac(0));
    assert_eq!(out[6..12], our_mac());
    assert_eq!(out[12..], frame[12..]);
    assert_eq!(run(1, FIN | ACK).0, Verdict::Tx, "FIN follows the flow");
    // Not installed, or a stale generation: to the workers.
    assert_eq!(run(9, ACK).0, Verdict::ToSocket, "miss");
    let stale_before = filter.stats().unwrap().fast_stale;
    assert_eq!(run(4, ACK).0, Verdict::ToSocket, "stale generation");
    assert_eq!(filter.stats().unwrap().fast_stale, stale_before + 1);
    // A first fragment needs the workers' fragment cache.
    let frag = build::fragment(tcp(2, ACK), 7, true, 0);
    assert_eq!(
        filter.verdict(&frag).unwrap(),
        Verdict::ToSocket,
        "fragment"
    );
    // A SYN goes to the workers and forgets the tuple (a new connection).
    assert_eq!(run(1, SYN).0, Verdict::ToSocket, "SYN");
    assert_eq!(fp.lookup(&key(1)).unwrap(), None, "SYN deletes the entry");
    assert_eq!(run(1, ACK).0, Verdict::ToSocket, "after the SYN: a miss");
    fp.install(&[(key(1), target(&h, 0))]).unwrap();
    assert_eq!(run(1, ACK).0, Verdict::Tx);

    // The own share: to the workers, unless the fast path delivers it.
    assert_eq!(run(3, ACK).0, Verdict::ToSocket, "own share, TAP mode");
    filter
        .set_config(&cfg.with_offload(true, true, our_mac(), Some(2)))
        .unwrap();
    let (v, out) = run(3, ACK);
    assert_eq!(v, Verdict::Pass, "own share, XDP mode");
    assert_eq!(out[..6], our_mac(), "addressed to the interface");
    assert_eq!(filter.stats().unwrap().fast_local, 1);
    filter.set_config(&cfg).unwrap();

    // DRAINING keeps its flows; FAILED loses them at once, by generation,
    // and coming back up does not revive them.
    h.set_state(1, health::State::Draining).unwrap();
    fp.sync_nodes(&h).unwrap();
    assert_eq!(run(2, ACK).0, Verdict::Tx, "draining keeps flows");
    h.set_state(0, health::State::Failed).unwrap();
    assert_eq!(fp.sync_nodes(&h).unwrap(), 1, "one slot changed");
    assert_eq!(run(1, ACK).0, Verdict::ToSocket, "failed node");
    h.set_state(0, health::State::Up).unwrap();
    fp.sync_nodes(&h).unwrap();
    assert_eq!(run(1, ACK).0, Verdict::ToSocket, "old generation");

    // Per-node counters: the Tx verdicts to slot 1 so far, whole frames.
    let c = fp.node_counters(1).unwrap();
    assert_eq!(c.packets, 1);
    assert_eq!(c.bytes, frame.len() as u64);

    // A backup forwards nothing: VIP traffic goes to the kernel.
    filter.set_active(false).unwrap();
    assert_eq!(run(2, ACK).0, Verdict::Pass, "backup");
    // A takeover starts a new epoch: earlier flows are misses.
    filter.set_active(true).unwrap();
    assert_eq!(filter.config().epoch, 2);
    assert_eq!(run(2, ACK).0, Verdict::ToSocket, "new epoch");
    fp.install(&[(key(2), target(&h, 1))]).unwrap();
    assert_eq!(run(2, ACK).0, Verdict::Tx, "installed in the new epoch");
    // The fast path looks flows up before the VIP and port checks, so
    // removing a VIP or a port voids every installed flow (a new epoch);
    // adding one does not.
    filter.set_ports(xsk::L4::Tcp, &[PORT, PORT + 1]).unwrap();
    assert_eq!(run(2, ACK).0, Verdict::Tx, "a port added: flows stay");
    filter.set_vips(&[]).unwrap();
    assert_eq!(filter.config().epoch, 3, "a VIP removed: a new epoch");
    assert_eq!(run(2, ACK).0, Verdict::Pass, "not a VIP any more");
    filter.set_vips(&[VIP]).unwrap();
    assert_eq!(run(2, ACK).0, Verdict::ToSocket, "back, but not installed");
    fp.install(&[(key(2), target(&h, 1))]).unwrap();
    assert_eq!(run(2, ACK).0, Verdict::Tx);
    filter.set_ports(xsk::L4::Tcp, &[PORT + 1]).unwrap();
    assert_eq!(filter.config().epoch, 4, "a port removed: a new epoch");
    assert_ne!(run(2, ACK).0, Verdict::Tx, "not a redirected port any more");
    filter.set_ports(xsk::L4::Tcp, &[PORT]).unwrap();
    fp.install(&[(key(2), target(&h, 1))]).unwrap();
    assert_eq!(run(2, ACK).0, Verdict::Tx);
    // An entry older than the refresh age is a miss, so the workers see
    // every offloaded flow about once a minute; the kernel's coarse clock
    // and the daemon's agree.
    let now = xsk::stamp_now();
    let aged = |age: u8| {
        fp.install_stamped(&[(key(2), target(&h, 1))], now.wrapping_sub(age))
            .unwrap();
        run(2, ACK).0
    };
    assert_eq!(aged(xsk::FLOW_REFRESH - 2), Verdict::Tx, "young enough");
    assert_eq!(aged(xsk::FLOW_REFRESH + 2), Verdict::ToSocket, "too old");
    assert_eq!(aged(0), Verdict::Tx, "installed again");
    ipv6_flows(&filter, &h);
    // With the fast path off, everything goes to the workers.
    let c = filter.config();
    filter
        .set_config(&c.with_offload(false, false, our_mac(), Some(2)))
        .unwrap();
    assert_eq!(run(2, ACK).0, Verdict::ToSocket, "offload off");
    filter.detach().unwrap();
}

const VIP6: &str = "2001:2::fa";

/// An IPv6 TCP frame of client `i` to VIP6:PORT, to the IPv6 virtual MAC.
fn tcp6(i: u16, flags: u8) -> Vec<u8> {
    tcp6_from(client6(i), 30_000 + i, flags)
}

/// An IPv6 TCP frame from `src`:`sport` to VIP6:PORT.
fn tcp6_from(src: std::net::Ipv6Addr, sport: u16, flags: u8) -> Vec<u8> {
    use std::net::SocketAddrV6;
    common::frames::tcp6(
        [2, 0, 0, 0, 0, 0x64],
        VRID,
        SocketAddrV6::new(src, sport, 0, 0),
        SocketAddrV6::new(VIP6.parse().unwrap(), PORT, 0, 0),
        flags,
        b"data",
    )
}

fn client6(i: u16) -> std::net::Ipv6Addr {
    format!("2001:2::1:{i:x}").parse().unwrap()
}

/// The workers' key of `tcp6(i, _)`: addresses folded, the family marked.
fn key6(i: u16) -> flow::Key {
    proxyha::dataplane::classify::ipv6_flow::key(
        client6(i),
        VIP6.parse().unwrap(),
        30_000 + i,
        PORT,
        6,
    )
}

/// IPv6 flows through the program: an installed flow is forwarded with its
/// MACs rewritten (the program folds addresses as the workers do), a miss
/// and a SYN go to the workers (the SYN voids the entry), an IPv4 frame
/// carrying the same folded addresses does not match the IPv6 entry, and
/// the own share goes to the stack only when asked.
fn ipv6_flows(filter: &xsk::Filter, h: &health::Table) {
    let fp = filter.fast_path();
    filter.add_vips6(&[VIP6.parse().unwrap()]).unwrap();
    assert!(key6(1).v6);
    fp.install(&[(key6(1), target(h, 1)), (key6(2), target(h, 1))])
        .unwrap();
    let frame = tcp6(1, ACK);
    let (v, out) = filter.run(&frame).expect("test run");
    assert_eq!(v, Verdict::Tx, "an installed IPv6 flow");
    assert_eq!(out[..6], node_mac(1));
    assert_eq!(out[6..12], our_mac());
    assert_eq!(out[12..], frame[12..], "the IPv6 packet untouched");
    assert_eq!(filter.verdict(&tcp6(9, ACK)).unwrap(), Verdict::ToSocket);
    assert_eq!(filter.verdict(&tcp6(2, SYN)).unwrap(), Verdict::ToSocket);
    assert_eq!(fp.lookup(&key6(2)).unwrap(), None, "SYN voids the entry");
    // The same folded tuple as IPv4, to the IPv4 virtual MAC: the family
    // bit keeps it off the IPv6 entry (it is no VIP, so it passes).
    let k = key6(1);
    let v4 = build::tcp(
        virtual_mac(VRID),
        [2, 0, 0, 0, 0, 0x64],
        None,
        Ipv4Addr::from(k.src),
        k.sport,
        Ipv4Addr::from(k.dst),
        k.dport,
        ACK,
        b"data",
    );
    assert_eq!(filter.verdict(&v4).unwrap(), Verdict::Pass, "other family");
    fp.install(&[(flow::Key { v6: false, ..k }, target(h, 1))])
        .unwrap();
    assert_eq!(filter.verdict(&v4).unwrap(), Verdict::Tx, "as IPv4");
    assert_eq!(filter.verdict(&frame).unwrap(), Verdict::Tx, "both kept");
    // The own share (slot 2): to the workers, unless the fast path hands it
    // to the stack, addressed to the interface.
    fp.install(&[(key6(3), target(h, 2))]).unwrap();
    assert_eq!(
        filter.verdict(&tcp6(3, ACK)).unwrap(),
        Verdict::ToSocket,
        "IPv6 own share, TAP mode"
    );
    let c = filter.config();
    filter
        .set_config(&c.with_offload(true, true, our_mac(), Some(2)))
        .unwrap();
    let (v, out) = filter.run(&tcp6(3, ACK)).expect("test run");
    assert_eq!(v, Verdict::Pass, "IPv6 own share, XDP mode");
    assert_eq!(out[..6], our_mac(), "addressed to the interface");
    assert_eq!(out[12..], tcp6(3, ACK)[12..]);
    filter.set_config(&c).unwrap();
    // The program's fold equals the workers' on 300 addresses with both
    // halves varied (xorshift, fixed seed): every installed flow is found.
    let mut next = common::frames::xorshift(0x2545_f491_4f6c_dd1d);
    let flows: Vec<(std::net::Ipv6Addr, u16)> = (0..300)
        .map(|_| {
            let a = (u128::from(next()) << 64) | u128::from(next());
            (std::net::Ipv6Addr::from(a), 1024 + (next() % 60_000) as u16)
        })
        .collect();
    let keys: Vec<(flow::Key, flow::Target)> = flows
        .iter()
        .map(|&(src, sport)| {
            let k = proxyha::dataplane::classify::ipv6_flow::key(
                src,
                VIP6.parse().unwrap(),
                sport,
                PORT,
                6,
            );
            (k, target(h, 1))
        })
        .collect();
    assert_eq!(fp.install(&keys).unwrap(), keys.len());
    for &(src, sport) in &flows {
        let v = filter.verdict(&tcp6_from(src, sport, ACK)).unwrap();
        assert_eq!(v, Verdict::Tx, "{src} port {sport}: the folds differ");
    }
}

/// Sends TCP frames from namespace B and counts those that come back
/// addressed to a node MAC (02:00:00:00:10:xx). `argv`: ifname vmac
/// then `flags:first:count` groups, sent in order with a pause after each.
const SENDER: &str = r#"
import socket, struct, sys, time, threading
ifname = sys.argv[1]; vmac = bytes.fromhex(sys.argv[2].replace(':', ''))
vip = socket.inet_aton(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
s.bind((ifname, 0)); me = s.getsockname()[4]
got = [0]; stop = [False]
def rx():
    s.settimeout(0.1)
    while not stop[0]:
        try: data, addr = s.recvfrom(2048)
        except socket.timeout: continue
        if addr[2] != 4 and data[0:5] == bytes([2, 0, 0, 0, 0x10]) and b'data' in data: got[0] += 1
t = threading.Thread(target=rx); t.start()
def csum(b):
    if len(b) % 2: b += b'\0'
    x = sum(struct.unpack('!%dH' % (len(b) // 2), b)); x = (x >> 16) + (x & 0xffff); x += x >> 16
    return (~x) & 0xffff
def frame(i, flags):
    src = bytes([198, 18, 98, 10 + i % 200]); sport = 20000 + i
    tcp = struct.pack('!HHIIBBHHH', sport, 9090, 1, 0, 5 << 4, flags, 64240, 0, 0) + b'data'
    c = csum(src + vip + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack('!H', c) + tcp[18:]
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, src, vip)
    h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    return vmac + me + b'\x08\x00' + h + tcp
for g in sys.argv[4:]:
    flags, first, count = (int(x) for x in g.split(':'))
    for i in range(first, first + count):
        while True:
            try: s.send(frame(i, flags)); break
            except OSError: time.sleep(0.001)
        if i % 20 == 0: time.sleep(0.002)
    time.sleep(0.4)
stop[0] = True; t.join()
print('got=%d' % got[0], flush=True)
"#;

fn send(groups: &[(u8, u32, u32)]) -> u64 {
    let ns_b = std::env::var("PX1_FP_NS_B").expect("PX1_FP_NS_B");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns_b, "python3", "-c", SENDER, IF_B])
        .arg("00:00:5e:00:01:33")
        .arg(VIP.to_string());
    for (flags, first, count) in groups {
        cmd.arg(format!("{flags}:{first}:{count}"));
    }
    let out = cmd.output().expect("sender");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "sender: {text}");
    text.trim()
        .strip_prefix("got=")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("sender said {text:?}"))
}

/// XDP_TX into a veth is delivered only if the peer runs an XDP program:
/// a pass program on IF_B, attached (and detached) from a thread inside
/// namespace B, so that no ifindex is ever resolved in the wrong namespace.
fn pass_program_on_b() -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let ns_b = std::env::var("PX1_FP_NS_B").expect("PX1_FP_NS_B");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        proxyha::bpf::enter_netns(&ns_b).expect("enter namespace B");
        let p = xsk::PassProgram::attach(IF_B, xsk::AttachMode::Native).expect("pass on B");
        ready_tx.send(()).expect("ready");
        let _ = stop_rx.recv();
        drop(p);
    });
    ready_rx.recv().expect("pass program attached");
    (stop_tx, t)
}

#[test]
#[ignore = "runs inside a namespace, started by fast_path_in_network_namespaces"]
fn child_bypass() {
    prereq::require_parent("child_bypass", ENV);
    assert_eq!(VRID, 0x33);
    let pass = pass_program_on_b();
    let (filter, sock, _) = filter_and_socket();
    let filter = Arc::new(filter);
    let shared = Shared::new(
        Classifier::new(VRID, our_mac())
            .with_vip(VIP)
            .with_ports([PORT]),
        M,
    )
    .unwrap();
    for s in 0..2 {
        set_node(&shared.health, s, health::State::Up);
    }
    let b = maglev::backends_from_health(&shared.health);
    shared.maglev.rebuild_if_changed(&b, M).unwrap();
    let fp = filter.fast_path();
    fp.sync_nodes(&shared.health).unwrap();
    let stats = Arc::new(Stats::new());
    let cfg = worker::Config {
        flow_capacity: 1 << 12,
        polling: Polling::Busy,
        ..worker::Config::default()
    };
    let mut w = Worker::new(
        sock,
        MemorySink::new(0),
        cfg,
        &shared,
        Queues::new(64),
        stats.clone(),
    );
    struct ToMap(Arc<xsk::Filter>);
    impl proxyha::dataplane::offload::Offload for ToMap {
        fn install(&mut self, f: &[(flow::Key, flow::Target)]) -> Result<usize, String> {
            self.0.fast_path().install(f).map_err(|e| e.to_string())
        }
    }
    w.set_offload(Settings {
        to: Box::new(ToMap(filter.clone())),
        local: false,
    });
    let stop = shared.stop.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    let worker = std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            w.poll();
        }
    });
    let rx = || stats.counters.rx_frames.load(Ordering::Relaxed);
    let fast = |fp: &xsk::FastPath| (0..2).map(|s| fp.node_counters(s).unwrap().packets).sum();
    const F: u32 = 100;

    // A SYN flood and one spoofed ACK per tuple: forwarded by the worker,
    // never installed.
    let back = send(&[(SYN, 1000, 300), (ACK, 2000, 300)]);
    assert_eq!(rx(), 600, "the worker saw the flood");
    assert_eq!(back, 600, "and forwarded it");
    assert!(
        fp.is_empty().unwrap(),
        "SYN flood / spoofed ACKs installed flows"
    );

    // F connections: SYN, then the first ACK (worker, installs), then three
    // more ACKs each, which bypass the worker.
    let back = send(&[
        (SYN, 0, F),
        (ACK, 0, F),
        (ACK, 0, F),
        (ACK, 0, F),
        (ACK, 0, F),
    ]);
    assert_eq!(
        fp.len().unwrap(),
        F as usize,
        "one entry per established flow"
    );
    assert_eq!(
        stats.counters.offload_installs.load(Ordering::Relaxed),
        u64::from(F)
    );
    assert_eq!(
        rx(),
        600 + 2 * u64::from(F),
        "the worker saw SYN + first ACK"
    );
    let fast_before: u64 = fast(fp);
    assert_eq!(fast_before, 3 * u64::from(F), "the fast path took the rest");
    assert_eq!(back, 5 * u64::from(F), "every frame arrived at its node");

    // Node 0 fails: its flows come back to the worker, which moves them to
    // node 1 and installs them again; node 1's flows stay in XDP.
    set_node(&shared.health, 0, health::State::Failed);
    let b = maglev::backends_from_health(&shared.health);
    shared.maglev.rebuild_if_changed(&b, M).unwrap();
    fp.sync_nodes(&shared.health).unwrap();
    let on0 = (0..F)
        .filter(|&i| fp.lookup(&key(i)).unwrap().is_some_and(|t| t.slot == 0))
        .count() as u64;
    assert!(on0 > 10 && on0 < u64::from(F) - 10, "{on0} flows on node 0");
    let rx_before = rx();
    let to0 = fp.node_counters(0).unwrap().packets;
    let back = send(&[(ACK, 0, F), (ACK, 0, F)]);
    assert_eq!(rx() - rx_before, on0, "the failed node's flows, once each");
    assert_eq!(back, 2 * u64::from(F));
    assert_eq!(
        fp.node_counters(0).unwrap().packets,
        to0,
        "nothing more to the failed node"
    );
    assert_eq!(fast(fp), fast_before + 2 * u64::from(F) - on0);
    assert!((0..F).all(|i| fp.lookup(&key(i)).unwrap().unwrap().slot == 1));

    shared.stop.store(true, Ordering::Relaxed);
    worker.join().expect("worker");
    assert_eq!(stats.counters.offload_errors.load(Ordering::Relaxed), 0);
    let _ = pass.0.send(());
    pass.1.join().expect("pass thread");
}
