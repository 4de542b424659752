//! Multi-queue end-to-end tests: the example cluster on links with 4 RX and
//! 4 TX queues (`lab.sh up --queues 4`), and the start-up check of
//! `dataplane.queues` against the NIC's queue count, with `set_channels`.
//!
//! They need root; they run one at a time, and tear down what they start,
//! even on failure.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::lab::{self, Lab, Options, Sampler};

/// Opens `n` connections from the client to the VIP, `conc` at a time, each
/// a fresh TCP connection (so a fresh source port), with one proxied GET;
/// prints a JSON summary. Bounded: 5 s per request.
const LOAD: &str = r#"
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
n, conc = int(sys.argv[1]), int(sys.argv[2])
def one(i):
    try:
        s = socket.create_connection(("198.18.0.250", 9090), timeout=5)
        port = s.getsockname()[1]
        s.sendall(b"GET http://198.18.0.200/index.html HTTP/1.0\r\nHost: 198.18.0.200\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        if not head.startswith("HTTP/1.") or " 200 " not in head.split("\r\n")[0]:
            return (i, port, None, head[:80])
        node = None
        for l in head.split("\r\n"):
            if l.lower().startswith("x-cache:"):
                node = l.split()[-1]
        return (i, port, node, None)
    except Exception as e:
        return (i, None, None, repr(e))
with ThreadPoolExecutor(conc) as ex:
    res = list(ex.map(one, range(n)))
served = {}
for r in res:
    if r[3] is None:
        served[r[2]] = served.get(r[2], 0) + 1
print(json.dumps({
    "ok": sum(1 for r in res if r[3] is None),
    "failed": [[r[0], r[3]] for r in res if r[3] is not None][:20],
    "ports": len({r[1] for r in res if r[1]}),
    "served": served,
}))
"#;

#[derive(Debug)]
struct Load {
    ok: u64,
    failed: serde_json::Value,
    ports: u64,
    served: BTreeMap<String, u64>,
}

fn load(lab: &Lab, n: usize, conc: usize) -> Load {
    let out = lab.exec(
        "client",
        &[
            "timeout",
            "120",
            "python3",
            "-c",
            LOAD,
            &n.to_string(),
            &conc.to_string(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "load script: {e}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Load {
        ok: v["ok"].as_u64().unwrap_or(0),
        failed: v["failed"].clone(),
        ports: v["ports"].as_u64().unwrap_or(0),
        served: serde_json::from_value(v["served"].clone()).unwrap_or_default(),
    }
}

/// Stops `sampler` and checks that two Masters were never seen in two
/// samples in a row (the directors are asked a few ms apart, so one sample
/// may straddle a hand-over, as on one queue: see e2e_cluster).
fn finish_checked(sampler: Sampler) {
    let samples = sampler.finish();
    let dual: Vec<bool> = samples
        .iter()
        .map(|(a, b)| a == "Master" && b == "Master")
        .collect();
    assert!(
        !dual.windows(2).any(|w| w[0] && w[1]),
        "two Masters in consecutive samples: {samples:?}"
    );
    eprintln!(
        "two-Master samples: {} of {} (none consecutive)",
        dual.iter().filter(|d| **d).count(),
        samples.len()
    );
}

fn assert_all_served(l: &Load, n: u64, what: &str, lab: &Lab) {
    assert_eq!(
        l.ok,
        n,
        "{what}: {} of {n} requests failed: {}\n{}",
        n - l.ok,
        l.failed,
        lab.logs()
    );
}

#[test]
fn four_queues_every_queue_served_failover_preemption() {
    let Some((_g, lab)) = Lab::start(
        "four_queues_every_queue_served_failover_preemption",
        Options {
            prefix: "phq",
            queues: 4,
            ..Options::default()
        },
    ) else {
        return;
    };
    let sampler = Sampler::start(&lab);
    lab.wait_state("director-a", "Master", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("director-a never became Master\n{}", lab.logs()));
    assert_eq!(lab.vrrp_state("director-b"), "Backup", "{}", lab.logs());

    // Every node serves all 4 queues, one pinned worker each.
    for node in ["director-a", "director-b", "scanner-c"] {
        let s = lab.stats(node);
        let q = s["queues"].as_array().expect("queues array");
        assert_eq!(q.len(), 4, "{node}: {s}");
        for (i, e) in q.iter().enumerate() {
            assert_eq!(e["queue"], i as u64, "{node}: {e}");
            assert_eq!(e["mode"], "copy", "{node}: veth gives copy mode: {e}");
            assert!(e["cpu"].is_u64(), "{node}: worker {i} not pinned: {e}");
            assert!(e["rx_frames"].is_u64(), "{node}: {e}");
        }
    }

    // 1000 requests from as many source ports: none lost, and RSS spreads
    // them over every queue of the Active Director.
    let l = load(&lab, 1000, 8);
    eprintln!(
        "1000 requests: {} ok from {} source ports, served by {:?}",
        l.ok, l.ports, l.served
    );
    assert_all_served(&l, 1000, "4 queues", &lab);
    assert!(l.ports >= 500, "only {} source ports", l.ports);
    assert!(l.served.len() >= 2, "served only by {:?}", l.served);
    let s = lab.stats("director-a");
    let rx: Vec<u64> = s["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["rx_frames"].as_u64().unwrap())
        .collect();
    eprintln!("director-a rx_frames per queue: {rx:?}");
    assert!(rx.iter().all(|&n| n > 0), "a queue got no frames: {rx:?}");
    assert_eq!(
        s["xdp"]["no_socket"], 0,
        "frames on a queue without a socket: {s}"
    );

    // kill -9 the Active Director: the Backup takes over (its adverts and
    // heartbeats arrive on any queue), and requests flow again.
    lab.kill9("director-a");
    let took = lab
        .wait_state("director-b", "Master", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("director-b did not take over\n{}", lab.logs()));
    eprintln!(
        "failover: director-b Master {:.2}s after kill -9",
        took.as_secs_f64()
    );
    // Master_Down_Interval for priority 89 at 1 s is 3.65 s, as on one queue.
    assert!(
        took <= Duration::from_secs_f64(3.65 * 1.1 + 0.3),
        "took {took:?}"
    );
    // The killed director's proxy still runs: once its heartbeats are
    // missed it is held STALE (keeps its flows, takes no new ones) rather
    // than FAILED. Measure after that point.
    let t = std::time::Instant::now();
    while !lab.status("director-b").is_some_and(|st| {
        st["entries"].as_array().is_some_and(|es| {
            es.iter().any(|e| {
                e["device"] == "director-a" && e["type"] == "scanning" && e["state"] == "STALE"
            })
        })
    }) {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "director-b never marked director-a STALE\n{}",
            lab.logs()
        );
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(500));
    let l = load(&lab, 200, 8);
    assert_all_served(&l, 200, "after failover", &lab);

    // Preemption: the restarted director-a becomes Active again.
    lab.restart("director-a");
    let pre = lab
        .wait_state("director-a", "Master", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("director-a did not preempt\n{}", lab.logs()));
    assert!(
        lab.wait_state("director-b", "Backup", Duration::from_secs(3))
            .is_some(),
        "{}",
        lab.logs()
    );
    eprintln!(
        "preemption: director-a Master {:.2}s after restart",
        pre.as_secs_f64()
    );
    thread::sleep(Duration::from_secs(1));
    let l = load(&lab, 200, 8);
    assert_all_served(&l, 200, "after preemption", &lab);
    let s = lab.stats("director-a");
    let rx: Vec<u64> = s["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["rx_frames"].as_u64().unwrap())
        .collect();
    assert!(
        rx.iter().all(|&n| n > 0),
        "after preemption, a queue got no frames: {rx:?}"
    );
    finish_checked(sampler);
}

/// Election, failover and preemption on a tagged segment: every host on
/// `eth0.100` (`lab.sh up --vlan 100`), so the adverts, heartbeats and
/// gratuitous ARPs go out tagged by the VLAN interface.
#[test]
#[ignore = "needs 802.1Q VLAN interfaces (CONFIG_VLAN_8021Q); the lab machine's kernel has none"]
fn vlan_election_failover_preemption() {
    let Some((_g, lab)) = Lab::start(
        "vlan_election_failover_preemption",
        Options {
            prefix: "phv",
            vlan: Some(100),
            ..Options::default()
        },
    ) else {
        return;
    };
    let sampler = Sampler::start(&lab);
    lab.wait_state("director-a", "Master", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("director-a never became Master\n{}", lab.logs()));
    assert_eq!(lab.vrrp_state("director-b"), "Backup", "{}", lab.logs());
    // On the segment, the adverts carry the tag.
    let td = lab.exec(
        "sw",
        &[
            "timeout",
            "5",
            "tcpdump",
            "-nep",
            "-c",
            "2",
            "-i",
            "br0",
            "vlan 100 and vrrp",
        ],
    );
    let td = String::from_utf8_lossy(&td.stdout);
    assert!(
        td.contains("vlan 100") && td.contains("VRRPv2, Advertisement, vrid 51, prio 99"),
        "{td}"
    );
    let l = load(&lab, 200, 8);
    assert_all_served(&l, 200, "vlan", &lab);
    lab.kill9("director-a");
    lab.wait_state("director-b", "Master", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("director-b did not take over\n{}", lab.logs()));
    thread::sleep(Duration::from_secs(1));
    let l = load(&lab, 100, 8);
    assert_all_served(&l, 100, "vlan, after failover", &lab);
    lab.restart("director-a");
    lab.wait_state("director-a", "Master", Duration::from_secs(15))
        .unwrap_or_else(|| panic!("director-a did not preempt\n{}", lab.logs()));
    assert!(
        lab.wait_state("director-b", "Backup", Duration::from_secs(3))
            .is_some()
    );
    thread::sleep(Duration::from_secs(1));
    let l = load(&lab, 100, 8);
    assert_all_served(&l, 100, "vlan, after preemption", &lab);
    finish_checked(sampler);
}

/// The node's interface: a dotted name, as VLAN interfaces have (`eth0.100`);
/// the sysctl paths under /proc/sys/net/ipv4/conf/ must keep the dot.
const IF: &str = "q0.100";

/// A namespace with one veth pair of 4 RX/4 TX queues ([`IF`], `q1`), and a
/// proxyha started on [`IF`]; removed (and the daemon killed) on drop.
struct QueueNs {
    ns: String,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl QueueNs {
    fn new(ns: &str) -> QueueNs {
        let dir = std::env::temp_dir().join(format!("proxyha-test-{ns}"));
        let _ = std::fs::create_dir_all(&dir);
        let mut this = QueueNs {
            ns: ns.to_string(),
            dir,
            child: None,
        };
        this.remove();
        for args in [
            vec!["netns", "add", ns],
            vec![
                "-n",
                ns,
                "link",
                "add",
                IF,
                "numtxqueues",
                "4",
                "numrxqueues",
                "4",
                "type",
                "veth",
                "peer",
                "name",
                "q1",
                "numtxqueues",
                "4",
                "numrxqueues",
                "4",
            ],
            vec!["-n", ns, "link", "set", IF, "up"],
            vec!["-n", ns, "link", "set", "q1", "up"],
            vec!["-n", ns, "addr", "add", "198.18.7.1/24", "dev", IF],
        ] {
            let o = Command::new("ip").args(&args).output().unwrap();
            assert!(
                o.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        this
    }

    /// A scanning node's config on `q0` with these `[dataplane]` lines.
    fn config(&self, dataplane: &str) -> std::path::PathBuf {
        // Heartbeats are authenticated by default: a key made as an
        // operator would (`proxyha key new`), once per namespace.
        let key = self.dir.join("heartbeat.key");
        if !key.exists() {
            common::cmd::output(Command::new(lab::binary()).args(["key", "new"]).arg(&key));
        }
        let text = format!(
            "[node]\nname = \"qtest\"\nmanagement_ip = \"198.18.7.1\"\npriority = 0\nlbid = 77\n\
             control_socket = \"{}\"\n\
             [vrrp]\ninterface = \"{IF}\"\nvrid = 57\n\
             [[virtual_ip]]\naddress = \"198.18.7.250/24\"\n\
             [[port_redirect]]\noriginal_ports = \"9090\"\nproxy_port = 9090\n\
             [heartbeat]\nkey_file = \"{}\"\n\
             [dataplane]\ninterface = \"{IF}\"\n{dataplane}\n",
            self.socket().display(),
            key.display()
        );
        let p = self.dir.join("node.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.join("qtest.sock")
    }

    fn rx_channels(&self) -> u32 {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.ns, "ethtool", "-l", IF])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        // The last "RX:" line is the current setting.
        text.lines()
            .rev()
            .find_map(|l| l.strip_prefix("RX:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("ethtool -l q0: {text}"))
    }

    fn run(&self, cfg: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns])
            .arg(lab::binary())
            .args(["run", "--config"])
            .arg(cfg)
            .stdin(Stdio::null());
        c
    }

    fn remove(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
        let listed = String::from_utf8_lossy(&list.stdout)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(self.ns.as_str()));
        if !listed {
            return;
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

impl Drop for QueueNs {
    fn drop(&mut self) {
        self.remove();
    }
}

#[test]
fn queue_count_refused_and_set_channels_honoured() {
    let test = "queue_count_refused_and_set_channels_honoured";
    if !lab::can_run(test) || !proxyha::node::prereq::require_tool(test, "ethtool") {
        return;
    }
    let _g = lab::serial();
    let ns = QueueNs::new("phqc");
    assert_eq!(ns.rx_channels(), 4);

    // queues = 2 on a 4-queue link: refused at start, naming the count and
    // the fix, before touching anything.
    let cfg = ns.config("queues = 2");
    let out = ns
        .run(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with queues = 2: {err}");
    assert!(
        err.contains(
            "proxyha: dataplane.queues = 2, but q0.100 has 4 RX queues: frames the NIC puts on \
             queues 2..3 would reach no worker; set dataplane.queues = \"all\" (or 4), or \
             dataplane.set_channels = true to make q0.100 use 2 (or run `ethtool -L q0.100 rx 2 tx 2` first)"
        ),
        "{err}"
    );

    // mode = "zerocopy" on veth (copy mode only): a clear error naming the
    // driver's refusal and the fix, and the node does not start.
    let cfg = ns.config("mode = \"zerocopy\"");
    let out = ns
        .run(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started in zero-copy mode on veth: {err}"
    );
    assert!(
        err.contains(&format!(
            "worker for queue 0 failed to start: dataplane.mode = \"zero-copy\", but the driver \
             of {IF} cannot bind queue 0 in zero-copy mode"
        )) && err.contains("set dataplane.mode = \"auto\""),
        "{err}"
    );

    // set_channels = true: veth takes `ethtool -L rx N tx N`, so the node
    // sets 2 queues, serves both, and restores 4 on exit.
    let cfg = ns.config("queues = 2\nset_channels = true\ncpus = \"0\"");
    let log = std::fs::File::create(ns.dir.join("run.log")).unwrap();
    let mut ns = ns;
    ns.child = Some(
        ns.run(&cfg)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let read_log =
        |ns: &QueueNs| std::fs::read_to_string(ns.dir.join("run.log")).unwrap_or_default();
    let t = Instant::now();
    let mut report = None;
    while t.elapsed() < Duration::from_secs(15) && report.is_none() {
        thread::sleep(Duration::from_millis(200));
        let o = Command::new(lab::binary())
            .args(["stats", "--json", "--socket"])
            .arg(ns.socket())
            .output()
            .unwrap();
        if o.status.success() {
            report = serde_json::from_slice::<serde_json::Value>(&o.stdout).ok();
        }
    }
    let report = report.unwrap_or_else(|| panic!("the node did not start:\n{}", read_log(&ns)));
    assert_eq!(ns.rx_channels(), 2, "{}", read_log(&ns));
    let q = report["queues"].as_array().unwrap();
    assert_eq!(q.len(), 2, "{report}");
    for e in q {
        assert_eq!(e["cpu"], 0, "dataplane.cpus = \"0\": {e}");
    }
    assert!(
        read_log(&ns).contains("set q0.100 from 4 to 2 RX queues (restored on exit)"),
        "{}",
        read_log(&ns)
    );
    // SIGTERM: a graceful stop restores the NIC's channels.
    let pid = ns.child.as_ref().unwrap().id();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let t = Instant::now();
    let mut stopped = false;
    while t.elapsed() < Duration::from_secs(15) {
        if let Some(Ok(Some(_))) = ns.child.as_mut().map(|c| c.try_wait()) {
            stopped = true;
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(stopped, "the node did not stop:\n{}", read_log(&ns));
    assert!(
        read_log(&ns).contains("restored q0.100 to 4 RX queues"),
        "{}",
        read_log(&ns)
    );
    assert_eq!(ns.rx_channels(), 4);
}
