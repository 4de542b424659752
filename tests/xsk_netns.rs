//! The real kernel path of `proxyha::xsk`, in two network namespaces joined
//! by a veth pair. Needs root, `ip` and `python3`; without them it prints a
//! SKIP line, or fails under `CI` / `PROXYHA_REQUIRE_ROOT=1`
//! (`proxyha::node::prereq`).
//!
//! The parent test builds the namespaces (`phx-xsk<pid>a`, `phx-xsk<pid>b`,
//! removed by a guard even when an assertion fails) and runs the `child_*`
//! tests of this same binary inside namespace A with `ip netns exec`, which
//! is how the daemon runs in the lab (with its remounted /sys, so bpffs is
//! missing and `xsk` must mount it). Namespace B sends hand-built frames from
//! a python3 AF_PACKET socket and counts what comes back.
//!
//! The child tests are `#[ignore]`d and fail unless `PHX_XSK_CHILD` is set
//! (their parent sets it), so a child never reports green on its own.

mod common;

use common::cmd::run;
use std::io::Read;
use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use proxyha::dataplane::port::{Frame, Port};
use proxyha::node::prereq;
use proxyha::xsk;

const IF_A: &str = "phxa0";
const IF_B: &str = "phxb0";
const IP_A: &str = "198.18.99.1";
const IP_B: &str = "198.18.99.2";
const VIP: &str = "198.18.99.250";
const VRID: u8 = 51;
/// The heartbeat group the filter is configured for.
const LBID: u16 = 10;
const PORT: u16 = 9090;
/// Frames per kind that the sender sends.
const N: usize = 200;
/// How long the serving loop sleeps in `Port::wait` when a poll is empty.
const IDLE: Option<Duration> = Some(Duration::from_millis(5));

// ---------------------------------------------------------------- the sender

/// Runs in namespace B. `argv`: ifname mode vmac amac vip src_ip n.
/// mode `steer`: sends every frame kind, then counts echoes.
/// mode `local`: sends n frames for local delivery.
const SENDER: &str = r#"
import socket, struct, sys, time
ifname, mode = sys.argv[1], sys.argv[2]
vmac = bytes.fromhex(sys.argv[3].replace(':', ''))
amac = bytes.fromhex(sys.argv[4].replace(':', ''))
vip = socket.inet_aton(sys.argv[5]); src = socket.inet_aton(sys.argv[6]); n = int(sys.argv[7])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0))
me = s.getsockname()[4]
def csum(b):
    if len(b) % 2: b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return (~t) & 0xffff
def ip(proto, dst, payload, ttl=64):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 0, 0, ttl, proto, 0, src, dst)
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + payload
def udp(dport, payload):
    return struct.pack('!HHHH', 40000, dport, 8 + len(payload), 0) + payload
def eth(dst, etype, body, vlan=None):
    tag = struct.pack('!HH', 0x8100, vlan) if vlan is not None else b''
    return dst + me + tag + struct.pack('!H', etype) + body
def send(f):
    while True:
        try:
            s.send(f); return
        except BlockingIOError:
            time.sleep(0.001)
        except OSError as e:
            if e.errno != 105: raise
            time.sleep(0.001)
if mode == 'steer':
    for i in range(n):
        send(eth(vmac, 0x0800, ip(17, vip, udp(9090, b'PHXECHO%06d' % i))))
        send(eth(vmac, 0x0800, ip(17, vip, udp(9191, b'PHXPASS'))))
        send(eth(amac, 0x0800, ip(17, vip, udp(9090, b'PHXPASS'))))
        send(eth(vmac, 0x0800, ip(6, vip, udp(9191, b'PHXPASS'))))
        send(eth(vmac, 0x0800, ip(6, vip, udp(9090, b'PHXTCP'))))
        if i % 20 == 0: time.sleep(0.002)
    send(eth(vmac, 0x0800, ip(17, vip, udp(9090, b'PHXECHO%06d' % n)), vlan=5))
    vrrp = lambda vrid: bytes([0x21, vrid, 100, 1, 0, 1, 0, 0]) + vip
    send(eth(bytes.fromhex('01005e000012'), 0x0800, ip(112, socket.inet_aton('224.0.0.18'), vrrp(51), 255)))
    send(eth(bytes.fromhex('01005e000012'), 0x0800, ip(112, socket.inet_aton('224.0.0.18'), vrrp(52), 255)))
    send(eth(b'\xff' * 6, 0x0800, ip(253, socket.inet_aton('198.18.99.255'), b'PXHB\x01\x02\x00\x00\x00\x4c\x00\x0a' + bytes(64))))
    arp = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 1, me, src, b'\0' * 6, vip)
    send(eth(b'\xff' * 6, 0x0806, arp))
    seen = set(); s.settimeout(0.2); deadline = time.time() + 4
    while time.time() < deadline and len(seen) < n + 1:
        try:
            data, addr = s.recvfrom(4096)
        except socket.timeout:
            continue
        if addr[2] == 4: continue  # PACKET_OUTGOING
        if data[0:6] == me and data[6:12] == vmac and b'PHXECHO' in data:
            k = data.index(b'PHXECHO'); seen.add(data[k:k + 13])
    print('echoes=%d' % len(seen), flush=True)
elif mode == 'latency':
    # Round trips of single frames after an idle gap: the echo side is
    # asleep in poll() (adaptive) or spinning (busy) when each one arrives.
    s.settimeout(1.0); rtts = []
    for i in range(min(n, 50)):
        time.sleep(0.02)
        tag = b'PHXECHO%06d' % i
        t0 = time.perf_counter_ns()
        send(eth(vmac, 0x0800, ip(17, vip, udp(9090, tag))))
        while True:
            try:
                data, addr = s.recvfrom(4096)
            except socket.timeout:
                break
            if addr[2] != 4 and data[6:12] == vmac and tag in data:
                rtts.append((time.perf_counter_ns() - t0) // 1000); break
    rtts.sort()
    print('rtt_us n=%d p50=%d p90=%d max=%d' % (len(rtts), rtts[len(rtts) // 2], rtts[len(rtts) * 9 // 10], rtts[-1]), flush=True)
else:
    for i in range(n):
        send(eth(vmac, 0x0800, ip(17, vip, udp(9090, b'PHXLOCAL%06d' % i))))
        if i % 20 == 0: time.sleep(0.002)
    print('sent=%d' % n, flush=True)
"#;

// ------------------------------------------------------------ parent helpers

/// Two namespaces joined by a veth pair; deleted on drop.
struct Lab {
    a: String,
    b: String,
}

impl Lab {
    fn new() -> Lab {
        let pid = std::process::id();
        let lab = Lab {
            a: format!("phx-xsk{pid}a"),
            b: format!("phx-xsk{pid}b"),
        };
        lab.remove();
        for ns in [&lab.a, &lab.b] {
            run(&["ip", "netns", "add", ns]);
        }
        let (a, b) = (lab.a.as_str(), lab.b.as_str());
        run(&[
            "ip", "-n", a, "link", "add", IF_A, "type", "veth", "peer", "name", IF_B, "netns", b,
        ]);
        run(&[
            "ip",
            "-n",
            a,
            "addr",
            "add",
            &format!("{IP_A}/24"),
            "dev",
            IF_A,
        ]);
        run(&[
            "ip",
            "-n",
            b,
            "addr",
            "add",
            &format!("{IP_B}/24"),
            "dev",
            IF_B,
        ]);
        for (ns, dev) in [(a, IF_A), (b, IF_B), (a, "lo"), (b, "lo")] {
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        lab
    }

    fn remove(&self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Runs the child test `name` inside namespace A.
    fn child(&self, name: &str, extra_env: &[(&str, &str)]) -> Output {
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.a])
            .arg(exe)
            .args([
                name,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PHX_XSK_CHILD", "1")
            .env("PHX_XSK_NS_B", &self.b);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run child");
        eprintln!(
            "---- child {name} {extra_env:?} ({})\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn link_a(&self) -> String {
        String::from_utf8_lossy(&run(&["ip", "-n", &self.a, "link", "show", IF_A]).stdout)
            .into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.remove();
    }
}

#[test]
fn xsk_in_network_namespaces() {
    const NAME: &str = "xsk_in_network_namespaces";
    if !prereq::require_root(NAME)
        || !prereq::require_tool(NAME, "ip")
        || !prereq::require_tool(NAME, "python3")
    {
        return;
    }
    let lab = Lab::new();

    for mode in ["native", "generic"] {
        let out = lab.child("child_steer_echo_and_deliver", &[("PHX_XSK_MODE", mode)]);
        assert!(out.status.success(), "child in {mode} mode failed");
        assert!(
            !lab.link_a().contains("xdp"),
            "program left attached:\n{}",
            lab.link_a()
        );
    }

    let out = lab.child("child_verdicts", &[]);
    assert!(out.status.success(), "verdict child failed");

    // A run that dies without cleaning up leaves the program attached...
    let out = lab.child("child_crash", &[]);
    assert!(!out.status.success(), "the crashing child must die");
    assert!(
        lab.link_a().contains("xdp"),
        "the crashed run's program should still be there"
    );
    // ...and the next start removes it before attaching its own.
    let out = lab.child("child_recover", &[]);
    assert!(out.status.success(), "recovery child failed");
    assert!(
        !lab.link_a().contains("xdp"),
        "program left attached:\n{}",
        lab.link_a()
    );
}

// --------------------------------------------------------------- child side

/// Fails a child test started other than by its parent.
fn require_parent(name: &str) {
    prereq::require_parent(name, "PHX_XSK_CHILD");
}

fn sh(args: &[&str]) {
    run(args);
}

fn mac_of(ifname: &str) -> String {
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/address"))
        .expect("read MAC")
        .trim()
        .to_owned()
}

fn sender(mode: &str, vmac: &str, amac: &str) -> Child {
    let ns_b = std::env::var("PHX_XSK_NS_B").expect("PHX_XSK_NS_B");
    Command::new("ip")
        .args([
            "netns", "exec", &ns_b, "python3", "-c", SENDER, IF_B, mode, vmac, amac, VIP, IP_B,
        ])
        .arg(N.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sender")
}

#[derive(Debug, Default)]
struct Seen {
    echo: usize,
    tcp: usize,
    local: usize,
    vrrp: usize,
    heartbeat: usize,
    arp: usize,
    other: usize,
}

/// Polls `sock` until `sender` exits (plus a short drain): echoes `PHXECHO`
/// frames with swapped MACs, delivers `PHXLOCAL` frames to `tap`, releases
/// the rest, and counts them by kind.
/// `idle`: `None` spins (busy mode); `Some(t)` sleeps in `Port::wait` for up
/// to `t` whenever a poll comes back empty (adaptive mode, simplified).
fn serve(
    sock: &mut xsk::Socket,
    tap: Option<&mut xsk::TapSink>,
    mut sender: Child,
    idle: Option<Duration>,
) -> (Seen, String) {
    let mut seen = Seen::default();
    let mut tap = tap;
    let mut batch = [Frame::default(); 64];
    let mut echo = Vec::with_capacity(64);
    let mut drop = Vec::with_capacity(64);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut done_at: Option<Instant> = None;
    loop {
        let n = sock.recv(&mut batch);
        for &f in &batch[..n] {
            let data = sock.data(f);
            let mut l3 = 14;
            let mut etype = u16::from_be_bytes([data[12], data[13]]);
            if etype == 0x8100 {
                etype = u16::from_be_bytes([data[16], data[17]]);
                l3 = 18;
            }
            let has = |m: &[u8]| data.windows(m.len()).any(|w| w == m);
            if etype == 0x0806 {
                seen.arp += 1;
                drop.push(f);
            } else if etype == 0x0800 && data[l3 + 9] == 112 {
                seen.vrrp += 1;
                drop.push(f);
            } else if etype == 0x0800 && data[l3 + 9] == 253 {
                seen.heartbeat += 1;
                drop.push(f);
            } else if has(b"PHXTCP") {
                seen.tcp += 1;
                drop.push(f);
            } else if has(b"PHXECHO") {
                seen.echo += 1;
                let buf = sock.buffer_mut(f);
                let (dst, src) = buf.split_at_mut(6);
                dst.swap_with_slice(&mut src[..6]);
                echo.push(f);
            } else if has(b"PHXLOCAL") {
                seen.local += 1;
                if let Some(t) = tap.as_deref_mut() {
                    let mac = t.mac();
                    sock.buffer_mut(f)[..6].copy_from_slice(&mac);
                    t.deliver(sock.data(f)).expect("deliver to TAP");
                }
                drop.push(f);
            } else {
                seen.other += 1;
                drop.push(f);
            }
        }
        let sent = sock.send(&echo);
        sock.release(&echo[sent..]); // a full TX ring drops the rest
        echo.clear();
        sock.release(&drop);
        drop.clear();
        sock.flush().expect("flush");
        sock.reclaim();
        if let (0, Some(t)) = (n, idle) {
            sock.wait(t).expect("wait");
        }
        if done_at.is_none() && sender.try_wait().expect("try_wait").is_some() {
            done_at = Some(Instant::now());
        }
        if done_at.is_some_and(|t| t.elapsed() > Duration::from_millis(300))
            || Instant::now() > deadline
        {
            break;
        }
    }
    let _ = sender.kill();
    let _ = sender.wait();
    let mut out = String::new();
    if let Some(mut s) = sender.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    (seen, out)
}

fn assert_accounted(sock: &xsk::Socket, what: &str) {
    let a = sock.accounting();
    assert_eq!(
        a.free + a.kernel_rx + a.kernel_tx + a.user,
        a.total,
        "{what}: {a:?}"
    );
    assert_eq!(a.user, 0, "{what}: frames still held: {a:?}");
    assert_eq!(a.kernel_tx, 0, "{what}: transmissions not reclaimed: {a:?}");
}

#[test]
#[ignore = "runs inside a namespace, started by xsk_in_network_namespaces"]
fn child_steer_echo_and_deliver() {
    require_parent("child_steer_echo_and_deliver");
    let mode = match std::env::var("PHX_XSK_MODE").as_deref() {
        Ok("generic") => xsk::AttachMode::Generic,
        _ => xsk::AttachMode::Native,
    };
    let vip: Ipv4Addr = VIP.parse().unwrap();
    let filter = xsk::Filter::attach(IF_A, mode).expect("attach filter");
    println!("filter attached in {} mode", filter.mode());
    assert_eq!(filter.mode(), mode);
    assert!(std::fs::metadata("/sys/fs/bpf").is_ok());

    let cfg = xsk::SocketConfig {
        frame_count: 4096,
        rx_size: 2048,
        tx_size: 1024,
        alloc_reserve: 64,
        ..xsk::SocketConfig::default()
    };
    let mut sock = xsk::Socket::open(IF_A, 0, &cfg).expect("open AF_XDP socket");
    println!("socket bound in {} mode", sock.bound());
    assert_eq!(sock.bound(), xsk::Bound::Copy, "veth has no zero-copy");
    let a = sock.accounting();
    assert_eq!((a.total, a.free, a.kernel_rx), (4096, 64, 4032), "{a:?}");

    // Ownership checks: a frame given back twice is refused the second time.
    let f = sock.alloc().expect("alloc");
    assert_eq!(sock.accounting().user, 1);
    sock.release(&[f]);
    sock.release(&[f]);
    assert_eq!(sock.stats().release_refused, 1);
    assert_eq!(sock.send(&[f]), 0, "sending a frame we no longer own");
    assert!(
        sock.data(Frame { len: 60, ..f }).is_empty(),
        "no view of a frame we gave back"
    );
    assert!(sock.buffer_mut(f).is_empty());
    assert_accounted(&sock, "after alloc/release");

    filter.add_socket(&sock).expect("XSKMAP insert");
    filter.set_vips(&[vip]).expect("vips");
    filter.set_ports(xsk::L4::Udp, &[PORT]).expect("udp ports");
    filter.set_ports(xsk::L4::Tcp, &[PORT]).expect("tcp ports");
    filter
        .set_config(&xsk::FilterConfig::director(VRID, true).with_lbid(LBID))
        .expect("config");
    let vmac = format!("00:00:5e:00:01:{VRID:02x}");
    let amac = mac_of(IF_A);

    // The virtual MAC as a unicast filter entry: veth has no unicast filter,
    // so the kernel counts one promiscuity reference while the entry exists
    // (`ip -d link` shows the count; the PROMISC flag shows only user requests).
    let link =
        || String::from_utf8_lossy(&run(&["ip", "-d", "link", "show", IF_A]).stdout).into_owned();
    assert!(link().contains("promiscuity 0"), "{}", link());
    let uc = xsk::UnicastMac::add(IF_A, VMAC).expect("unicast MAC");
    let fdb =
        String::from_utf8_lossy(&run(&["bridge", "fdb", "show", "dev", IF_A]).stdout).into_owned();
    assert!(fdb.contains("00:00:5e:00:01:33 self permanent"), "{fdb}");
    assert!(link().contains("promiscuity 1"), "{}", link());
    drop(uc);
    assert!(link().contains("promiscuity 0"), "{}", link());

    // Everything else still reaches the kernel: B can ping A (ARP + ICMP).
    let ns_b = std::env::var("PHX_XSK_NS_B").unwrap();
    sh(&[
        "ip", "netns", "exec", &ns_b, "ping", "-c", "2", "-i", "0.2", "-W", "2", IP_A,
    ]);

    let (seen, out) = serve(&mut sock, None, sender("steer", &vmac, &amac), IDLE);
    println!("seen {seen:?}; sender: {}", out.trim());
    assert_eq!(
        seen.echo,
        N + 1,
        "VIP:9090 frames to the virtual MAC (one VLAN-tagged)"
    );
    // Frames to the virtual MAC for the VIP on other ports (UDP and TCP 9191,
    // two per round) also reach the socket while active: the worker hands
    // them to the local stack, which would otherwise drop them as
    // PACKET_OTHERHOST.
    assert_eq!(
        (seen.vrrp, seen.heartbeat, seen.arp, seen.other, seen.local),
        (1, 1, 1, 2 * N, 0)
    );
    assert_eq!(
        out.trim(),
        format!("echoes={}", N + 1),
        "every echo came back to B"
    );
    let st = filter.stats().expect("stats");
    println!("filter stats {st:?}");
    assert_eq!(st.to_xsk_vip, (4 * N + 1) as u64);
    assert_eq!(
        (st.to_xsk_vrrp, st.to_xsk_heartbeat, st.to_xsk_arp),
        (1, 1, 1)
    );
    assert!(
        st.passed > N as u64,
        "the PHXPASS frames to A's own MAC and VRID 52 were passed"
    );
    assert_eq!(st.no_socket, 0);
    assert_accounted(&sock, "after the echo run");
    println!("socket stats {:?}", sock.stats());

    // A backup (not active) steals nothing of the VIP traffic.
    filter.set_active(false).expect("inactive");
    let (seen, _) = serve(&mut sock, None, sender("local", &vmac, &amac), IDLE);
    assert_eq!(seen.local, 0, "inactive filter must pass VIP traffic");

    // Local delivery: the VIP on lo, frames through the TAP to a UDP socket.
    filter.set_active(true).expect("active");
    sh(&["ip", "addr", "replace", &format!("{VIP}/32"), "dev", "lo"]);
    std::fs::write("/proc/sys/net/ipv4/conf/all/rp_filter", "0").unwrap();
    let mut tap = xsk::TapSink::open("phxtap0").expect("tap");
    let udp = UdpSocket::bind((vip, PORT)).expect("bind VIP:9090");
    udp.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let (seen, out) = serve(
        &mut sock,
        Some(&mut tap),
        sender("local", &vmac, &amac),
        IDLE,
    );
    println!(
        "local: seen {seen:?}; sender {}; tap delivered {} dropped {}",
        out.trim(),
        tap.delivered(),
        tap.dropped()
    );
    assert_eq!(seen.local, N);
    let mut got = 0;
    let mut buf = [0u8; 2048];
    while let Ok(n) = udp.recv(&mut buf) {
        assert!(buf[..n].starts_with(b"PHXLOCAL"));
        got += 1;
    }
    assert_eq!(
        got, N,
        "every frame handed to the TAP reached the UDP socket"
    );
    assert_accounted(&sock, "after local delivery");

    // What adaptive polling costs the first frame after an idle period:
    // single-frame round trips from B, with this side spinning and then
    // sleeping in poll() between frames.
    let (_, busy) = serve(&mut sock, None, sender("latency", &vmac, &amac), None);
    let (_, adaptive) = serve(
        &mut sock,
        None,
        sender("latency", &vmac, &amac),
        Some(Duration::from_secs(1)),
    );
    println!("LATENCY busy: {}", busy.trim());
    println!("LATENCY adaptive (asleep in poll): {}", adaptive.trim());
    assert!(
        busy.starts_with("rtt_us n=50 "),
        "every probe echoed: {busy}"
    );
    assert!(
        adaptive.starts_with("rtt_us n=50 "),
        "every probe echoed: {adaptive}"
    );
    assert_accounted(&sock, "after the latency runs");

    drop(sock);
    filter.detach().expect("detach");
    let link = String::from_utf8_lossy(&run(&["ip", "link", "show", IF_A]).stdout).into_owned();
    assert!(!link.contains("xdp"), "{link}");
}

#[test]
#[ignore = "runs inside a namespace, started by xsk_in_network_namespaces"]
fn child_crash() {
    require_parent("child_crash");
    let filter = xsk::Filter::attach(IF_A, xsk::AttachMode::Native).expect("attach");
    filter
        .set_config(&xsk::FilterConfig::director(VRID, true).with_lbid(LBID))
        .unwrap();
    println!("attached; dying without cleanup");
    std::process::abort();
}

#[test]
#[ignore = "runs inside a namespace, started by xsk_in_network_namespaces"]
fn child_recover() {
    require_parent("child_recover");
    let filter =
        xsk::Filter::attach(IF_A, xsk::AttachMode::Native).expect("attach over a leftover");
    let link = String::from_utf8_lossy(&run(&["ip", "link", "show", IF_A]).stdout).into_owned();
    println!("{link}");
    assert!(link.contains("proxyha_filter"), "{link}");
    drop(filter);

    // The pass stub attaches and detaches the same way.
    let stub = xsk::PassProgram::attach(IF_A, xsk::AttachMode::Native).expect("attach pass stub");
    let link = String::from_utf8_lossy(&run(&["ip", "link", "show", IF_A]).stdout).into_owned();
    assert!(link.contains("proxyha_pass"), "{link}");
    drop(stub);
}

// ------------------------------------------------- verdicts, frame by frame

const VMAC: [u8; 6] = proxyha::wire::ethernet::Address::vrrp_virtual(VRID).octets();
const VIP_OCTETS: [u8; 4] = [198, 18, 99, 250];

fn eth(dst: [u8; 6], tags: &[u16], etype: u16, body: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
    for &tpid in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&5u16.to_be_bytes());
    }
    f.extend_from_slice(&etype.to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// An IPv4 packet; `ihl` in 32-bit words, `frag` the raw flags+offset field.
fn ipv4(proto: u8, dst: [u8; 4], ihl: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let hlen = usize::from(ihl) * 4;
    let mut p = vec![0u8; hlen.max(20)];
    p[0] = 0x40 | (ihl & 0x0f);
    let total = (p.len() + payload.len()) as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[6..8].copy_from_slice(&frag.to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&[198, 18, 99, 2]);
    p[16..20].copy_from_slice(&dst);
    p.extend_from_slice(payload);
    p
}

fn l4(dport: u16) -> Vec<u8> {
    let mut h = 40000u16.to_be_bytes().to_vec();
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&[0, 8, 0, 0]);
    h
}

fn arp(op: u16, tpa: [u8; 4]) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&[2, 0, 0, 0, 0, 1, 198, 18, 99, 2]);
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&tpa);
    a
}

fn vip_udp(port: u16) -> Vec<u8> {
    eth(VMAC, &[], 0x0800, &ipv4(17, VIP_OCTETS, 5, 0, &l4(port)))
}

#[test]
#[ignore = "runs inside a namespace, started by xsk_in_network_namespaces"]
fn child_verdicts() {
    use xsk::Verdict::{Drop, Pass, ToSocket};
    require_parent("child_verdicts");
    let filter = xsk::Filter::attach(IF_A, xsk::AttachMode::Native).expect("attach");
    let sock = xsk::Socket::open(IF_A, 0, &xsk::SocketConfig::default()).expect("socket");
    filter.add_socket(&sock).unwrap();
    filter.set_vips(&[Ipv4Addr::from(VIP_OCTETS)]).unwrap();
    filter.set_ports(xsk::L4::Udp, &[PORT, 53]).unwrap();
    filter
        .set_ports(xsk::L4::Tcp, &[PORT, 8080, 0, 65535])
        .unwrap();
    filter
        .set_config(&xsk::FilterConfig::director(VRID, true).with_lbid(LBID))
        .unwrap();
    let mut runs = 0u64;
    let mut check = |name: &str, frame: &[u8], want: xsk::Verdict| {
        runs += 1;
        assert_eq!(filter.verdict(frame).expect(name), want, "{name}");
    };
    let vrrp = |vrid: u8| {
        let mut v = vec![0x21, vrid, 100, 1, 0, 1, 0, 0];
        v.extend_from_slice(&VIP_OCTETS);
        eth(
            [1, 0, 0x5e, 0, 0, 0x12],
            &[],
            0x0800,
            &ipv4(112, [224, 0, 0, 18], 5, 0, &v),
        )
    };

    check("udp VIP:9090", &vip_udp(PORT), ToSocket);
    check("udp VIP:53", &vip_udp(53), ToSocket);
    // Not a redirected port, but sent to the virtual MAC for a VIP: to the
    // worker, which delivers it locally.
    check("udp VIP:9191", &vip_udp(9191), ToSocket);
    for port in [PORT, 8080, 0, 65535] {
        let f = eth(VMAC, &[], 0x0800, &ipv4(6, VIP_OCTETS, 5, 0, &l4(port)));
        check(&format!("tcp VIP:{port}"), &f, ToSocket);
    }
    check(
        "tcp VIP:53 (udp-only port)",
        &eth(VMAC, &[], 0x0800, &ipv4(6, VIP_OCTETS, 5, 0, &l4(53))),
        ToSocket,
    );
    check(
        "other dst MAC",
        &eth(
            [2, 0, 0, 0, 0, 9],
            &[],
            0x0800,
            &ipv4(17, VIP_OCTETS, 5, 0, &l4(PORT)),
        ),
        Pass,
    );
    check(
        "broadcast dst MAC",
        &eth(
            [0xff; 6],
            &[],
            0x0800,
            &ipv4(17, VIP_OCTETS, 5, 0, &l4(PORT)),
        ),
        Pass,
    );
    check(
        "not a VIP",
        &eth(
            VMAC,
            &[],
            0x0800,
            &ipv4(17, [198, 18, 99, 1], 5, 0, &l4(PORT)),
        ),
        Pass,
    );
    check(
        "IP options (ihl 6)",
        &eth(VMAC, &[], 0x0800, &ipv4(17, VIP_OCTETS, 6, 0, &l4(PORT))),
        ToSocket,
    );
    check(
        "IP options (ihl 15)",
        &eth(VMAC, &[], 0x0800, &ipv4(17, VIP_OCTETS, 15, 0, &l4(PORT))),
        ToSocket,
    );
    check(
        "ihl 4",
        &eth(VMAC, &[], 0x0800, &ipv4(17, VIP_OCTETS, 4, 0, &l4(PORT))),
        Pass,
    );
    check(
        "first fragment",
        &eth(
            VMAC,
            &[],
            0x0800,
            &ipv4(17, VIP_OCTETS, 5, 0x2000, &l4(PORT)),
        ),
        ToSocket,
    );
    check(
        "later fragment",
        &eth(
            VMAC,
            &[],
            0x0800,
            &ipv4(17, VIP_OCTETS, 5, 0x0001, &l4(PORT)),
        ),
        ToSocket,
    );
    check(
        "802.1Q",
        &eth(
            VMAC,
            &[0x8100],
            0x0800,
            &ipv4(17, VIP_OCTETS, 5, 0, &l4(PORT)),
        ),
        ToSocket,
    );
    check(
        "802.1ad",
        &eth(
            VMAC,
            &[0x88a8],
            0x0800,
            &ipv4(17, VIP_OCTETS, 5, 0, &l4(PORT)),
        ),
        ToSocket,
    );
    check(
        "two tags",
        &eth(
            VMAC,
            &[0x88a8, 0x8100],
            0x0800,
            &ipv4(17, VIP_OCTETS, 5, 0, &l4(PORT)),
        ),
        Pass,
    );
    check(
        "ports cut off",
        &eth(
            VMAC,
            &[],
            0x0800,
            &ipv4(17, VIP_OCTETS, 5, 0, &[0x9c, 0x40, 0x23]),
        ),
        ToSocket,
    );
    check(
        "IP header only",
        &eth(VMAC, &[], 0x0800, &ipv4(17, VIP_OCTETS, 5, 0, &[]))[..34],
        ToSocket,
    );
    check("IP header cut off", &vip_udp(PORT)[..30], Pass);
    check("ethernet header only", &vip_udp(PORT)[..14], Pass);
    check(
        "tag cut off",
        &eth(VMAC, &[0x8100], 0x0800, &[])[..16],
        Pass,
    );
    let mut v6 = vip_udp(PORT);
    v6[14] = 0x65; // version 6 in an IPv4 ethertype
    check("IPv4 ethertype, version 6", &v6, Pass);
    check("IPv6", &eth(VMAC, &[], 0x86dd, &[0x60; 60]), Pass);
    check(
        "ARP request for the VIP",
        &eth([0xff; 6], &[], 0x0806, &arp(1, VIP_OCTETS)),
        ToSocket,
    );
    check(
        "tagged ARP request",
        &eth([0xff; 6], &[0x8100], 0x0806, &arp(1, VIP_OCTETS)),
        ToSocket,
    );
    check(
        "ARP reply for the VIP",
        &eth([0xff; 6], &[], 0x0806, &arp(2, VIP_OCTETS)),
        Pass,
    );
    check(
        "ARP request, other IP",
        &eth([0xff; 6], &[], 0x0806, &arp(1, [198, 18, 99, 1])),
        Pass,
    );
    check(
        "ARP cut off",
        &eth([0xff; 6], &[], 0x0806, &arp(1, VIP_OCTETS)[..27]),
        Pass,
    );
    check("VRRP our VRID", &vrrp(VRID), ToSocket);
    check("VRRP other VRID", &vrrp(52), Pass);
    check(
        "VRRP cut off",
        &eth(
            [1, 0, 0x5e, 0, 0, 0x12],
            &[],
            0x0800,
            &ipv4(112, [224, 0, 0, 18], 5, 0, &[0x21]),
        ),
        Pass,
    );
    // A heartbeat message: the LBID at bytes 10..12 (docs/heartbeat.md).
    let hb_msg = |lbid: u16| {
        let mut m = b"PXHB\x01\x02\x00\x00\x00\x4c".to_vec();
        m.extend_from_slice(&lbid.to_be_bytes());
        m.resize(76, 0);
        m
    };
    let heartbeat = |lbid: u16, ihl: u8| {
        eth(
            [0xff; 6],
            &[],
            0x0800,
            &ipv4(253, [198, 18, 99, 255], ihl, 0, &hb_msg(lbid)),
        )
    };
    let hb = heartbeat(LBID, 5);
    check("heartbeat", &hb, ToSocket);
    check("heartbeat, IP options", &heartbeat(LBID, 7), ToSocket);
    check(
        "heartbeat, IP options (ihl 15)",
        &heartbeat(LBID, 15),
        ToSocket,
    );
    let dropped = filter.stats().unwrap().drop_heartbeat;
    check("heartbeat, other LBID", &heartbeat(LBID + 1, 5), Drop);
    check(
        "heartbeat, other LBID (swapped bytes)",
        &heartbeat(LBID.swap_bytes(), 5),
        Drop,
    );
    check(
        "heartbeat, other LBID, IP options",
        &heartbeat(LBID + 1, 9),
        Drop,
    );
    check(
        "heartbeat cut before the LBID",
        &eth(
            [0xff; 6],
            &[],
            0x0800,
            &ipv4(253, [198, 18, 99, 255], 5, 0, &hb_msg(LBID)[..11]),
        ),
        Drop,
    );
    assert_eq!(filter.stats().unwrap().drop_heartbeat, dropped + 4);

    // ICMP errors and fragments to the VIP reach the workers while active
    // (they steer them to the node that owns the flow).
    let icmp = eth(
        VMAC,
        &[],
        0x0800,
        &ipv4(1, VIP_OCTETS, 5, 0, &[3, 4, 0, 0, 0, 0, 5, 0]),
    );
    check("ICMP frag-needed to the VIP", &icmp, ToSocket);

    // A backup steers VRRP and heartbeats but no VIP traffic or ARP.
    filter.set_active(false).unwrap();
    check("backup: VIP", &vip_udp(PORT), Pass);
    check(
        "backup: ARP",
        &eth([0xff; 6], &[], 0x0806, &arp(1, VIP_OCTETS)),
        Pass,
    );
    check("backup: ICMP to the VIP", &icmp, Pass);
    check("backup: VRRP", &vrrp(VRID), ToSocket);
    check("backup: heartbeat", &hb, ToSocket);
    // A scanning node (flags: heartbeat only) leaves VRRP to the kernel.
    filter
        .set_config(&xsk::FilterConfig {
            vmac: VMAC,
            vrid: VRID,
            flags: xsk::FLAG_HEARTBEAT,
            lbid: LBID,
            ..xsk::FilterConfig::default()
        })
        .unwrap();
    check("scanning: VRRP", &vrrp(VRID), Pass);
    check("scanning: heartbeat", &hb, ToSocket);
    filter
        .set_config(&xsk::FilterConfig::director(VRID, true).with_lbid(LBID))
        .unwrap();
    filter.set_ports(xsk::L4::Udp, &[]).unwrap();
    // Still sent to the virtual MAC for a VIP: delivered locally by the worker.
    check("port removed", &vip_udp(PORT), ToSocket);
    filter.set_ports(xsk::L4::Udp, &[PORT]).unwrap();
    filter.set_vips(&[]).unwrap();
    check("VIP removed", &vip_udp(PORT), Pass);
    filter.set_vips(&[Ipv4Addr::from(VIP_OCTETS)]).unwrap();
    check("VIP back", &vip_udp(PORT), ToSocket);

    // Active-active (src/control/forwarding.rs): the director balances what
    // reaches its own MAC, not the virtual MAC; with its socket gone (the
    // daemon died, the program stays) VIP traffic is dropped, not handed
    // to a kernel that owns the VIP, while other frames still pass.
    let own = [2, 0, 0, 0, 0, 0xa1];
    filter
        .set_config(&xsk::FilterConfig {
            vmac: own,
            vrid: VRID,
            flags: xsk::FLAG_ACTIVE
                | xsk::FLAG_VRRP
                | xsk::FLAG_HEARTBEAT
                | xsk::FLAG_DROP_ORPHANS
                | xsk::FLAG_PEERS,
            lbid: LBID,
            ..xsk::FilterConfig::default()
        })
        .unwrap();
    let to_own = eth(own, &[], 0x0800, &ipv4(6, VIP_OCTETS, 5, 0, &l4(PORT)));
    let icmp_to_own = eth(
        own,
        &[],
        0x0800,
        &ipv4(1, VIP_OCTETS, 5, 0, &[3, 4, 0, 0, 0, 0, 5, 0]),
    );
    check("active-active: own MAC", &to_own, ToSocket);
    check("active-active: ICMP to own MAC", &icmp_to_own, ToSocket);
    check("active-active: virtual MAC", &vip_udp(PORT), Pass);
    // eth() sends from 02:00:00:00:00:01: as a member, its frames are its
    // redirects to us, for the kernel.
    filter
        .set_peers(&[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 7]])
        .unwrap();
    check("active-active: from a member", &to_own, Pass);
    check("active-active: ICMP from a member", &icmp_to_own, Pass);
    filter.set_peers(&[[2, 0, 0, 0, 0, 7]]).unwrap();
    check("active-active: member left", &to_own, ToSocket);
    filter.remove_socket(0).unwrap();
    let orphans = filter.stats().unwrap().drop_orphan;
    check("active-active, no socket: VIP", &to_own, Drop);
    assert_eq!(filter.stats().unwrap().drop_orphan, orphans + 1);
    check("active-active, no socket: heartbeat", &hb, Pass);
    check("active-active, no socket: VRRP", &vrrp(VRID), Pass);
    filter.set_peers(&[[2, 0, 0, 0, 0, 1]]).unwrap();
    check("active-active, no socket: from a member", &to_own, Pass);
    filter.set_peers(&[]).unwrap();
    filter.add_socket(&sock).unwrap();
    filter
        .set_config(&xsk::FilterConfig::director(VRID, true).with_lbid(LBID))
        .unwrap();
    check("active-passive again", &vip_udp(PORT), ToSocket);

    // Tagged frames (802.1Q and 802.1ad) are classified the same way by the
    // XDP program and by the workers' classifier: what XDP steers, the
    // worker recognises as the same kind of frame as its untagged twin.
    {
        use proxyha::dataplane::classify::{self, Verdict as V};
        let cls = classify::Filter::new(VRID, [2, 0, 0, 0, 0, 0xaa])
            .with_vip(Ipv4Addr::from(VIP_OCTETS))
            .with_ports([PORT]);
        let kind = |v: V| match v {
            V::ProxyFlow(_) => "flow",
            V::Vrrp => "vrrp",
            V::Heartbeat => "heartbeat",
            V::ArpForVip => "arp",
            V::Pass => "pass",
            V::Drop(_) => "drop",
            V::FirstFragment(..) | V::Fragment(_) => "fragment",
            V::IcmpError(_) => "icmp",
        };
        let mut advert = vec![0x21, VRID, 100, 1, 0, 1, 0, 0];
        advert.extend_from_slice(&VIP_OCTETS);
        // (name, destination MAC, EtherType, body, the classifier's verdict)
        type Case<'a> = (&'a str, [u8; 6], u16, Vec<u8>, &'a str);
        let bodies: [Case; 4] = [
            (
                "tcp VIP:9090",
                VMAC,
                0x0800,
                ipv4(6, VIP_OCTETS, 5, 0, &{
                    let mut t = l4(PORT);
                    t.resize(20, 0);
                    t[12] = 0x50;
                    t[13] = 0x02;
                    t
                }),
                "flow",
            ),
            (
                "vrrp",
                [1, 0, 0x5e, 0, 0, 0x12],
                0x0800,
                ipv4(112, [224, 0, 0, 18], 5, 0, &advert),
                "vrrp",
            ),
            (
                "heartbeat",
                [0xff; 6],
                0x0800,
                ipv4(253, [198, 18, 99, 255], 5, 0, &hb_msg(LBID)),
                "heartbeat",
            ),
            ("arp", [0xff; 6], 0x0806, arp(1, VIP_OCTETS), "arp"),
        ];
        for (name, dst, etype, body, want) in &bodies {
            for tags in [&[][..], &[0x8100], &[0x88a8]] {
                let f = eth(*dst, tags, *etype, body);
                let what = format!("{name} tags {tags:04x?}");
                check(&format!("XDP: {what}"), &f, ToSocket);
                assert_eq!(
                    kind(classify::classify(&cls, &f)),
                    *want,
                    "userspace: {what}"
                );
            }
            let two = eth(*dst, &[0x88a8, 0x8100], *etype, body);
            check(&format!("XDP: {name}, two tags"), &two, Pass);
            assert_eq!(
                kind(classify::classify(&cls, &two)),
                "pass",
                "userspace: {name}, two tags"
            );
        }
    }

    // No socket on the queue: qualifying frames go to the kernel, counted.
    let before = filter.stats().unwrap().no_socket;
    filter.remove_socket(0).unwrap();
    check("no socket", &vip_udp(PORT), Pass);
    assert_eq!(filter.stats().unwrap().no_socket, before + 1);
    filter.add_socket(&sock).unwrap();

    // Arbitrary bytes, plain and behind plausible headers: only PASS or
    // REDIRECT, ever.
    let mut rnd = common::frames::xorshift(0x9e37_79b9_7f4a_7c15);
    for i in 0..3000 {
        let len = 14 + (rnd() % 120) as usize;
        let mut f: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
        if i % 3 == 1 {
            f[..6].copy_from_slice(&VMAC);
            f[12..14].copy_from_slice(&[0x08, 0x00]);
        }
        if i % 3 == 2 && len > 34 {
            f[..6].copy_from_slice(&VMAC);
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f[14] = 0x40 | (f[14] & 0x0f);
            f[30..34].copy_from_slice(&VIP_OCTETS);
        }
        let v = filter.verdict(&f).expect("test run");
        runs += 1;
        // Drop only for protocol 253 (a heartbeat of another LBID).
        let hb_proto = f.get(12..14) == Some(&[0x08, 0x00][..]) && f.get(23) == Some(&253);
        assert!(
            matches!(v, Pass | ToSocket) || (v == Drop && hb_proto),
            "frame {f:02x?} got {v:?}"
        );
    }

    let st = filter.stats().unwrap();
    println!("{runs} frames, stats {st:?}");
    assert_eq!(st.rx_frames, runs);
    let to_socket = st.to_xsk_vip + st.to_xsk_arp + st.to_xsk_vrrp + st.to_xsk_heartbeat;
    assert_eq!(
        to_socket + st.passed + st.drop_heartbeat + st.drop_orphan,
        st.rx_frames,
        "every frame counted once"
    );
}
