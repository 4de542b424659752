//! VRRP timelines on a virtual clock: several `vrrp::Instance`s wired together
//! through a tiny in-test network that turns every `SendAdvert` into real
//! advert bytes (`wire::vrrp`) and delivers them, with zero latency, to every
//! other running instance on the same segment through `handle_packet` (so the
//! receive checks run too). Read each test as "at N ms ... expect ...".
//!
//! The last test snapshots the full state × event table against
//! `docs/vrrp-state-table.md`.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use proxyha::vrrp::{self, Action, Config, Drop, Instance, IpMeta, Reason, State, Version};
use proxyha::wire::vrrp as wire;

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);
const A_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

use State::{Backup, Initialize, Master};

struct Node {
    name: &'static str,
    cfg: Config,
    inst: Instance,
    up: bool,
    segment: u8,
}

/// What happened, for assertions and failure messages.
#[derive(Debug, Clone, PartialEq)]
struct Event {
    ms: u64,
    node: &'static str,
    action: Action,
}

struct Net {
    t0: Instant,
    now_ms: u64,
    nodes: Vec<Node>,
    events: Vec<Event>,
    /// Check "at most one Master" after every instant (off while partitioned).
    one_master: bool,
}

impl Net {
    fn new() -> Net {
        Net {
            t0: Instant::now(),
            now_ms: 0,
            nodes: vec![],
            events: vec![],
            one_master: true,
        }
    }

    fn cfg(priority: u8, ip: Ipv4Addr) -> Config {
        Config::new(51, priority, ip, vec![VIP])
    }

    fn add(&mut self, name: &'static str, cfg: Config) -> &mut Net {
        let inst = Instance::new(cfg.clone()).unwrap();
        self.nodes.push(Node {
            name,
            cfg,
            inst,
            up: false,
            segment: 0,
        });
        self
    }

    fn idx(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.name == name).unwrap()
    }

    fn now(&self) -> Instant {
        self.t0 + Duration::from_millis(self.now_ms)
    }

    fn ms(&self, t: Instant) -> u64 {
        t.duration_since(self.t0).as_millis() as u64
    }

    /// Advances the virtual clock to `ms`, firing every timer on the way.
    fn at(&mut self, ms: u64) -> &mut Net {
        assert!(ms >= self.now_ms, "time runs forward");
        loop {
            let next = self
                .nodes
                .iter()
                .filter(|n| n.up)
                .filter_map(|n| n.inst.poll_timeout())
                .min();
            match next {
                Some(t) if self.ms(t) <= ms => {
                    // Timers sit on whole milliseconds (centisecond arithmetic).
                    self.now_ms = self.ms(t).max(self.now_ms);
                    let now = self.now();
                    for i in 0..self.nodes.len() {
                        let due = self.nodes[i].up
                            && self.nodes[i].inst.poll_timeout().is_some_and(|d| d <= now);
                        if due {
                            self.nodes[i].inst.handle_timeout(now);
                            self.flush(i);
                        }
                    }
                }
                _ => break,
            }
        }
        self.now_ms = ms;
        self
    }

    /// Delivers node `from`'s actions (and the cascade they cause).
    fn flush(&mut self, from: usize) {
        let now = self.now();
        let mut queue = VecDeque::from([from]);
        while let Some(i) = queue.pop_front() {
            while let Some(action) = self.nodes[i].inst.poll_action() {
                self.events.push(Event {
                    ms: self.now_ms,
                    node: self.nodes[i].name,
                    action,
                });
                if let Action::SendAdvert { priority } = action {
                    let src = self.nodes[i].cfg.primary_ip;
                    let bytes = self.nodes[i]
                        .inst
                        .advert_repr(priority)
                        .to_bytes(src, wire::MULTICAST_ADDR)
                        .unwrap();
                    for j in 0..self.nodes.len() {
                        let reach = j != i
                            && self.nodes[j].up
                            && self.nodes[j].segment == self.nodes[i].segment;
                        if reach {
                            let r = self.nodes[j].inst.handle_packet(
                                now,
                                &IpMeta::advert_from(src),
                                &bytes,
                            );
                            assert!(r.is_ok(), "our own adverts pass the checks: {r:?}");
                            queue.push_back(j);
                        }
                    }
                }
            }
        }
        if self.one_master {
            let masters: Vec<_> = self
                .nodes
                .iter()
                .filter(|n| n.up && n.inst.state() == Master)
                .map(|n| n.name)
                .collect();
            assert!(
                masters.len() <= 1,
                "two masters {masters:?} at {} ms",
                self.now_ms
            );
        }
    }

    fn start(&mut self, name: &str) -> &mut Net {
        let i = self.idx(name);
        self.nodes[i].up = true;
        let now = self.now();
        self.nodes[i].inst.handle_startup(now);
        self.flush(i);
        self
    }

    /// Graceful stop: the Shutdown event (a Master sends priority 0).
    fn stop(&mut self, name: &str) -> &mut Net {
        let i = self.idx(name);
        let now = self.now();
        self.nodes[i].inst.handle_shutdown(now);
        self.flush(i);
        self.nodes[i].up = false;
        self
    }

    /// `kill -9`: silence, and a fresh instance on restart.
    fn crash(&mut self, name: &str) -> &mut Net {
        let i = self.idx(name);
        self.nodes[i].up = false;
        self.nodes[i].inst = Instance::new(self.nodes[i].cfg.clone()).unwrap();
        self
    }

    fn segment(&mut self, name: &str, segment: u8) -> &mut Net {
        let i = self.idx(name);
        self.nodes[i].segment = segment;
        self
    }

    fn inst(&self, name: &str) -> &Instance {
        &self.nodes[self.idx(name)].inst
    }

    fn expect(&mut self, name: &str, state: State) -> &mut Net {
        let got = self.inst(name).state();
        assert_eq!(
            got, state,
            "at {} ms expected {name} {state:?}, got {got:?}; events: {:#?}",
            self.now_ms, self.events
        );
        self
    }

    /// Every state change of `name`, with its time.
    fn changes(&self, name: &str) -> Vec<(u64, State)> {
        self.events
            .iter()
            .filter(|e| e.node == name)
            .filter_map(|e| match e.action {
                Action::BecomeMaster { .. } => Some((e.ms, Master)),
                Action::BecomeBackup { .. } => Some((e.ms, Backup)),
                Action::BecomeInitialize { .. } => Some((e.ms, Initialize)),
                _ => None,
            })
            .collect()
    }
}

/// 99 vs 89 started together (v2, 1 s): both Backup; 99's Master_Down_Timer
/// (3 * 1000 + (157 * 100 / 256) * 10 = 3610 ms) fires before 89's (3650 ms);
/// 89 hears 99's advert and stays Backup for good.
#[test]
fn startup_99_vs_89() {
    let mut net = Net::new();
    net.add("A", Net::cfg(99, A_IP))
        .add("B", Net::cfg(89, B_IP));
    net.at(0).start("A").start("B");
    net.expect("A", Backup).expect("B", Backup);
    net.at(3609).expect("A", Backup).expect("B", Backup);
    net.at(3610).expect("A", Master).expect("B", Backup);
    net.at(60_000).expect("A", Master).expect("B", Backup);
    assert_eq!(net.changes("A"), vec![(0, Backup), (3610, Master)]);
    assert_eq!(net.changes("B"), vec![(0, Backup)]);
    // The master advertises every second; the Backup never does.
    let adverts = |n: &str| {
        net.events
            .iter()
            .filter(|e| e.node == n && matches!(e.action, Action::SendAdvert { .. }))
            .count()
    };
    assert_eq!(adverts("A"), 57, "3610, 4610, ..., 59610");
    assert_eq!(adverts("B"), 0);
    // On becoming Master: 5 gratuitous ARPs, and 5 more 5 s later.
    let garps: Vec<u64> = net
        .events
        .iter()
        .filter(|e| e.node == "A" && e.action == Action::SendGratuitousArp { vip: VIP })
        .map(|e| e.ms)
        .collect();
    assert_eq!(garps, [[3610; 5], [8610; 5]].concat());
    let b = net.inst("B").status(net.now());
    assert_eq!(b.master_ip, Some(A_IP));
    assert_eq!(b.master_priority, Some(99));
    assert_eq!(b.counters.rx_adverts, 57);
}

/// The same in v3 at 10 cs: 3 * 100 + (157 * 10 / 256) * 10 = 360 ms.
#[test]
fn startup_99_vs_89_v3_10cs() {
    let v3 = |p, ip| Config {
        version: Version::V3,
        adver_int: Duration::from_millis(100),
        ..Net::cfg(p, ip)
    };
    let mut net = Net::new();
    net.add("A", v3(99, A_IP)).add("B", v3(89, B_IP));
    net.at(0).start("A").start("B");
    net.at(359).expect("A", Backup).expect("B", Backup);
    net.at(360).expect("A", Master).expect("B", Backup);
    net.at(10_000).expect("A", Master).expect("B", Backup);
}

/// 89 alone becomes Master after its Master_Down_Interval: 3 × 1 s + 650 ms.
#[test]
fn alone_89_becomes_master_after_master_down_interval() {
    let mut net = Net::new();
    net.add("B", Net::cfg(89, B_IP));
    net.at(0).start("B");
    net.at(3649).expect("B", Backup);
    net.at(3650).expect("B", Master);
    assert_eq!(
        net.events[1].action,
        Action::BecomeMaster {
            reason: Reason::MasterDown
        }
    );
}

/// A setup shared by the failover tests: A (99) Master since 3610, B (89) Backup;
/// A is killed at 10 000 ms (its last advert went out at 9610), so B takes
/// over at 9610 + 3650 = 13 260 ms.
fn killed_master(a: Config) -> Net {
    let mut net = Net::new();
    net.add("A", a).add("B", Net::cfg(89, B_IP));
    net.at(0).start("A").start("B");
    net.at(3610).expect("A", Master);
    net.at(10_000).crash("A");
    net.at(13_259).expect("B", Backup);
    net.at(13_260).expect("B", Master);
    net
}

/// A recovered 99 starts as Backup, discards 89's lower adverts (Preempt_Mode
/// true), and takes over when its own timer fires, 3610 ms after restarting;
/// 89 hears the higher priority and steps down at that same instant.
#[test]
fn recovered_99_preempts() {
    let mut net = killed_master(Net::cfg(99, A_IP));
    net.at(20_000).start("A").expect("A", Backup);
    net.at(23_609).expect("A", Backup).expect("B", Master);
    net.at(23_610).expect("A", Master).expect("B", Backup);
    assert_eq!(
        net.changes("B"),
        vec![(0, Backup), (13_260, Master), (23_610, Backup)]
    );
    let b_down = net
        .events
        .iter()
        .find(|e| e.node == "B" && e.ms == 23_610)
        .unwrap();
    assert_eq!(
        b_down.action,
        Action::BecomeBackup {
            reason: Reason::HigherPriority {
                from: A_IP,
                priority: 99
            }
        }
    );
    assert!(net.inst("A").counters().rx_adverts_ignored >= 3);
}

/// With Preempt_Mode false the recovered 99 accepts 89 as master and stays Backup.
#[test]
fn nopreempt_does_not_preempt() {
    let a = Config {
        preempt: false,
        ..Net::cfg(99, A_IP)
    };
    let mut net = killed_master(a);
    net.at(20_000).start("A");
    net.at(60_000).expect("A", Backup).expect("B", Master);
    assert_eq!(net.inst("A").status(net.now()).master_ip, Some(B_IP));
}

/// With a 10 s preempt delay the recovered 99 accepts 89's adverts until
/// 30 000 ms (the last at 29 260), then discards them, and takes over one
/// Master_Down_Interval after the last one it accepted: 29 260 + 3610 = 32 870.
#[test]
fn preempt_delay_waits() {
    let a = Config {
        preempt_delay: Duration::from_secs(10),
        ..Net::cfg(99, A_IP)
    };
    let mut net = killed_master(a);
    net.at(20_000).start("A");
    net.at(29_999).expect("A", Backup).expect("B", Master);
    net.at(32_869).expect("A", Backup).expect("B", Master);
    net.at(32_870).expect("A", Master).expect("B", Backup);
}

/// Equal priority: the Master that appeared first stays, even against a
/// higher primary address (a Backup never preempts an equal-priority master).
#[test]
fn equal_priority_first_master_stays() {
    let mut net = Net::new();
    net.add("A", Net::cfg(100, A_IP))
        .add("B", Net::cfg(100, B_IP));
    net.at(0).start("A");
    // 3 * 1000 + (156 * 100 / 256) * 10 = 3600 ms.
    net.at(3600).expect("A", Master);
    net.at(5000).start("B");
    net.at(120_000).expect("A", Master).expect("B", Backup);
    assert_eq!(net.changes("B"), vec![(5000, Backup)]);
}

/// Two Masters after a healed partition settle on the higher primary address
/// within one advert interval, whoever advertises first.
#[test]
fn healed_partition_settles_on_the_higher_address() {
    for b_start in [0, 250, 700] {
        let mut net = Net::new();
        net.one_master = false;
        net.add("A", Net::cfg(100, A_IP))
            .add("B", Net::cfg(100, B_IP));
        net.segment("A", 1).segment("B", 2);
        net.at(0).start("A");
        net.at(b_start).start("B");
        net.at(9_000).expect("A", Master).expect("B", Master);
        net.segment("A", 0).segment("B", 0);
        net.at(10_700).expect("A", Backup).expect("B", Master);
        net.one_master = true;
        net.at(60_000).expect("A", Backup).expect("B", Master);
        let a_down = net
            .events
            .iter()
            .rfind(|e| e.node == "A" && matches!(e.action, Action::BecomeBackup { .. }))
            .unwrap();
        assert!(
            a_down.ms <= 10_000,
            "settled within one interval of the heal at 9000 ms"
        );
        assert_eq!(
            a_down.action,
            Action::BecomeBackup {
                reason: Reason::EqualPriorityHigherAddress { from: B_IP }
            }
        );
    }
}

/// After a healed partition with different priorities the higher priority
/// wins, even from the lower address.
#[test]
fn healed_partition_higher_priority_wins() {
    let mut net = Net::new();
    net.one_master = false;
    net.add("A", Net::cfg(99, A_IP))
        .add("B", Net::cfg(89, B_IP));
    net.segment("A", 1).segment("B", 2);
    net.at(0).start("A").start("B");
    net.at(9_000).expect("A", Master).expect("B", Master);
    net.segment("B", 1);
    net.one_master = true;
    net.at(10_000).expect("A", Master).expect("B", Backup);
}

/// A graceful stop sends priority 0; the Backup sets its timer to Skew_Time
/// ((167 * 100 / 256) * 10 = 650 ms) instead of Master_Down_Interval.
#[test]
fn priority_zero_lets_the_backup_take_over_in_skew_time() {
    let mut net = Net::new();
    net.add("A", Net::cfg(99, A_IP))
        .add("B", Net::cfg(89, B_IP));
    net.at(0).start("A").start("B");
    net.at(10_000).stop("A").expect("A", Initialize);
    assert!(net.events.iter().any(|e| e.ms == 10_000
        && e.node == "A"
        && e.action == Action::SendAdvert { priority: 0 }));
    net.at(10_649).expect("B", Backup);
    net.at(10_650).expect("B", Master);
    assert_eq!(
        net.changes("B").last(),
        Some(&(10_650, Master)),
        "{:?}",
        net.events
    );
    let reason = net.inst("B").status(net.now()).last_reason;
    assert_eq!(reason, Some(Reason::MasterResigned { from: A_IP }));
}

/// Node health: a Master whose priority drops to 0 resigns at once and never
/// takes over again while at 0; the Backup takes over in Skew_Time.
#[test]
fn resigning_with_priority_zero() {
    let mut net = Net::new();
    net.add("A", Net::cfg(99, A_IP))
        .add("B", Net::cfg(89, B_IP));
    net.at(0).start("A").start("B");
    net.at(5_000);
    let now = net.now();
    let a = net.idx("A");
    net.nodes[a].inst.set_priority(now, 0);
    net.flush(a);
    net.expect("A", Backup);
    net.at(5_650).expect("B", Master);
    net.at(60_000).expect("A", Backup).expect("B", Master);
    // Healthy again: 99 preempts one Master_Down_Interval later (A learned
    // nothing new; its timer restarts at 3610 ms).
    let now = net.now();
    net.nodes[a].inst.set_priority(now, 99);
    net.flush(a);
    net.at(63_610).expect("A", Master).expect("B", Backup);
}

/// A Master hearing priority 0 from another router answers with an advert at once.
#[test]
fn master_answers_priority_zero_at_once() {
    let mut net = Net::new();
    net.add("A", Net::cfg(99, A_IP));
    net.at(0).start("A");
    net.at(5_000);
    let now = net.now();
    let a = net.idx("A");
    let bytes = net.nodes[a]
        .inst
        .advert_repr(0)
        .to_bytes(B_IP, wire::MULTICAST_ADDR)
        .unwrap();
    net.nodes[a]
        .inst
        .handle_packet(now, &IpMeta::advert_from(B_IP), &bytes)
        .unwrap();
    assert_eq!(
        net.nodes[a].inst.poll_action(),
        Some(Action::SendAdvert { priority: 99 })
    );
    assert_eq!(net.nodes[a].inst.status(now).adver_timer_ms, Some(1000));
}

/// Builds one malformed copy of `good` (an advert from A_IP) per drop reason
/// that a packet from A_IP can trigger against B's configuration.
fn malformed(good: &[u8]) -> Vec<(Drop, IpMeta, Vec<u8>)> {
    let ok = IpMeta::advert_from(A_IP);
    let fix = |mut b: Vec<u8>| {
        let mut p = wire::Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum(A_IP, wire::MULTICAST_ADDR);
        b
    };
    let with = |at: usize, v: u8| {
        let mut b = good.to_vec();
        b[at] = v;
        b
    };
    vec![
        (
            Drop::BadProtocol,
            IpMeta { protocol: 6, ..ok },
            good.to_vec(),
        ),
        (Drop::BadTtl, IpMeta { ttl: 64, ..ok }, good.to_vec()),
        (Drop::LoopedBack, IpMeta::advert_from(B_IP), good.to_vec()),
        (Drop::Truncated, ok, good[..5].to_vec()),
        (Drop::WrongVersion, ok, fix(with(0, 0x31))),
        (Drop::Malformed, ok, fix(with(0, 0x23))),
        (Drop::BadAddressList, ok, with(3, 3)),
        (Drop::BadAddressList, ok, fix(with(11, 251))),
        (Drop::BadChecksum, ok, with(2, 200)),
        (Drop::OtherVrid, ok, fix(with(1, 52))),
        (Drop::AuthMismatch, ok, fix(with(4, 1))),
        (Drop::BadAdverInt, ok, fix(with(5, 2))),
    ]
}

/// Each malformed advert is dropped and counted under its own reason, changes
/// neither state nor timers, and, sent with a high priority from the dead
/// master's address, does not keep the Backup from taking over on time.
#[test]
fn malformed_adverts_are_dropped_and_counted() {
    // killed_master's story (B takes over at 13 260 ms), with garbage injected
    // into B between 10 s and 13 s.
    let mut net2 = Net::new();
    net2.add("A", Net::cfg(99, A_IP))
        .add("B", Net::cfg(89, B_IP));
    net2.at(0).start("A").start("B");
    net2.at(10_000).crash("A");
    let good = Instance::new(Net::cfg(99, A_IP))
        .unwrap()
        .advert_repr(150)
        .to_bytes(A_IP, wire::MULTICAST_ADDR)
        .unwrap();
    let cases = malformed(&good);
    let b = net2.idx("B");
    for (k, (reason, ip, bytes)) in cases.iter().enumerate() {
        net2.at(10_000 + 200 * k as u64);
        let now = net2.now();
        let before = (
            net2.nodes[b].inst.state(),
            net2.nodes[b].inst.poll_timeout(),
        );
        let mut counters = net2.nodes[b].inst.counters().clone();
        let r = net2.nodes[b]
            .inst
            .handle_packet(now, ip, bytes)
            .unwrap_err();
        assert_eq!(r.reason, *reason, "case {k}");
        assert_eq!(net2.nodes[b].inst.poll_action(), None);
        assert_eq!(
            (
                net2.nodes[b].inst.state(),
                net2.nodes[b].inst.poll_timeout()
            ),
            before
        );
        *counters.drop_counter(*reason) += 1;
        assert_eq!(
            net2.nodes[b].inst.counters(),
            &counters,
            "only {reason:?} moved"
        );
    }
    // Same takeover instant as without the garbage.
    net2.at(13_259).expect("B", Backup);
    net2.at(13_260).expect("B", Master);
    let c = net2.inst("B").counters().clone();
    assert_eq!(c.drops(), cases.len() as u64);
    assert_eq!(c.drop_bad_address_list, 2);
}

/// v3: a Backup configured for 1 s learns the master's 10 cs interval from its
/// adverts (Master_Adver_Interval), so it declares the master down after
/// 3 * 100 ms + (167 * 10 / 256) * 10 ms = 360 ms, not 3650 ms.
#[test]
fn v3_backup_learns_master_adver_interval() {
    let v3 = |p, ip, ms| Config {
        version: Version::V3,
        adver_int: Duration::from_millis(ms),
        ..Net::cfg(p, ip)
    };
    let mut net = Net::new();
    net.add("A", v3(99, A_IP, 100)).add("B", v3(89, B_IP, 1000));
    net.at(0).start("A").start("B");
    let s = net.inst("B").status(net.now());
    assert_eq!(s.master_down_interval_ms, 3650);
    net.at(360).expect("A", Master);
    let s = net.inst("B").status(net.now());
    assert_eq!(s.master_adver_interval_ms, 100);
    assert_eq!(s.master_down_interval_ms, 360);
    assert_eq!(s.master_down_timer_ms, Some(360));
    // A's adverts: 360, 460, ..., 960; killed at 1000; B takes over at 960 + 360.
    net.at(1_000).crash("A");
    net.at(1_319).expect("B", Backup);
    net.at(1_320).expect("B", Master);
    // B advertises at its own configured interval (1 s), in centiseconds.
    assert_eq!(net.inst("B").advert_repr(89).adver_int, 100);
}

/// The status snapshot serializes for `proxyha status --json`.
#[test]
fn status_serializes() {
    let mut net = Net::new();
    net.add("A", Net::cfg(99, A_IP));
    net.at(0).start("A");
    net.at(4_000);
    let json = serde_json::to_value(net.inst("A").status(net.now())).unwrap();
    assert_eq!(json["state"], "Master");
    assert_eq!(json["master_ip"], "198.18.0.1");
    assert_eq!(json["adver_timer_ms"], 610);
    assert_eq!(json["counters"]["tx_adverts"], 1);
    assert_eq!(json["counters"]["became_master"], 1);
    assert_eq!(json["last_reason"], "MasterDown");
}

// ---------------------------------------------------------------------------
// The full state × event table.

const ME: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const LOW_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const HIGH_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);

#[derive(Clone, Copy)]
enum Ev {
    Startup,
    Shutdown,
    Timer,
    Advert(u8, Ipv4Addr),
    SetPriority(u8),
    BadTtl,
}

fn ev_name(e: Ev, nopreempt: bool) -> String {
    let s = match e {
        Ev::Startup => "startup".to_string(),
        Ev::Shutdown => "shutdown".to_string(),
        Ev::Timer => "timer fires".to_string(),
        Ev::Advert(p, ip) => format!("advert prio {p} from .{}", ip.octets()[3]),
        Ev::SetPriority(p) => format!("set_priority({p})"),
        Ev::BadTtl => "advert with TTL 64".to_string(),
    };
    if nopreempt {
        format!("{s}, nopreempt")
    } else {
        s
    }
}

fn show(a: &Action) -> String {
    match a {
        Action::SendAdvert { priority } => format!("SendAdvert({priority})"),
        Action::BecomeMaster { reason } => format!("BecomeMaster({reason:?})"),
        Action::BecomeBackup { reason } => format!("BecomeBackup({reason:?})"),
        Action::BecomeInitialize { reason } => format!("BecomeInitialize({reason:?})"),
        Action::SendGratuitousArp { vip } => format!("GARP({vip})"),
    }
}

/// Collapses runs of equal actions into `X ×n`.
fn show_all(actions: &[Action]) -> String {
    let mut out: Vec<String> = vec![];
    let mut i = 0;
    while i < actions.len() {
        let mut n = 1;
        while i + n < actions.len() && actions[i + n] == actions[i] {
            n += 1;
        }
        let s = show(&actions[i]);
        out.push(if n > 1 { format!("{s} ×{n}") } else { s });
        i += n;
    }
    if out.is_empty() {
        "—".into()
    } else {
        out.join(", ")
    }
}

/// Local: VRID 51, priority 100, 198.18.0.2, v2 1 s (Master_Down_Interval 3600 ms,
/// Skew_Time 600 ms). Backup is entered by startup at t0, Master by the timer
/// at t0 + 3600 ms; every event then happens 100 ms later ("timer fires" at
/// the pending deadline, or 1 s later if none).
fn table_row(state: State, ev: Ev, nopreempt: bool, priority: u8) -> String {
    let t0 = Instant::now();
    let cfg = Config {
        preempt: !nopreempt,
        ..Config::new(51, priority, ME, vec![VIP])
    };
    let mut i = Instance::new(cfg).unwrap();
    let mut now = t0;
    if state != Initialize {
        i.handle_startup(now);
    }
    if state == Master {
        now = i.poll_timeout().unwrap();
        i.handle_timeout(now);
    }
    while i.poll_action().is_some() {}
    assert_eq!(i.state(), state);
    let at = match ev {
        Ev::Timer => i.poll_timeout().unwrap_or(now + Duration::from_secs(1)),
        _ => now + Duration::from_millis(100),
    };
    match ev {
        Ev::Startup => i.handle_startup(at),
        Ev::Shutdown => i.handle_shutdown(at),
        Ev::Timer => i.handle_timeout(at),
        Ev::Advert(p, ip) => {
            let bytes = i.advert_repr(p).to_bytes(ip, wire::MULTICAST_ADDR).unwrap();
            i.handle_packet(at, &IpMeta::advert_from(ip), &bytes)
                .unwrap();
        }
        Ev::SetPriority(p) => i.set_priority(at, p),
        Ev::BadTtl => {
            let bytes = i
                .advert_repr(150)
                .to_bytes(HIGH_IP, wire::MULTICAST_ADDR)
                .unwrap();
            let ip = IpMeta {
                ttl: 64,
                ..IpMeta::advert_from(HIGH_IP)
            };
            i.handle_packet(at, &ip, &bytes).unwrap_err();
        }
    }
    let mut actions = vec![];
    while let Some(a) = i.poll_action() {
        actions.push(a);
    }
    let s = i.status(at);
    let timers = match (s.master_down_timer_ms, s.adver_timer_ms) {
        (Some(d), None) => format!("down +{d}"),
        (None, Some(a)) => format!("adver +{a}"),
        (None, None) => "none".into(),
        (Some(d), Some(a)) => format!("down +{d}, adver +{a}"),
    };
    let from = if priority == 255 {
        format!("{state:?} (priority 255)")
    } else {
        format!("{state:?}")
    };
    format!(
        "| {from} | {} | {:?} | {} | {timers} |",
        ev_name(ev, nopreempt),
        i.state(),
        show_all(&actions)
    )
}

fn render_table() -> String {
    let events = [
        (Ev::Startup, false),
        (Ev::Shutdown, false),
        (Ev::Timer, false),
        (Ev::Advert(0, LOW_IP), false),
        (Ev::Advert(150, LOW_IP), false),
        (Ev::Advert(100, HIGH_IP), false),
        (Ev::Advert(100, LOW_IP), false),
        (Ev::Advert(50, HIGH_IP), false),
        (Ev::Advert(50, HIGH_IP), true),
        (Ev::SetPriority(0), false),
        (Ev::SetPriority(150), false),
        (Ev::SetPriority(50), false),
        (Ev::BadTtl, false),
    ];
    let mut rows = vec![
        "| from | event | to | actions, in order | timers after |".to_string(),
        "|---|---|---|---|---|".to_string(),
    ];
    for state in [Initialize, Backup, Master] {
        for (ev, nopreempt) in events {
            rows.push(table_row(state, ev, nopreempt, 100));
        }
    }
    rows.push(table_row(Initialize, Ev::Startup, false, 255));
    rows.join("\n") + "\n"
}

/// Compares the table the code produces with the reviewed one in
/// `docs/vrrp-state-table.md` (between the BEGIN/END markers). To regenerate
/// after an intended change: `VRRP_TABLE_WRITE=1 cargo test --test vrrp_timeline`
/// and review the diff row by row against RFC 5798 §6.4.
#[test]
fn state_event_table_snapshot() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/vrrp-state-table.md");
    let doc = std::fs::read_to_string(path).expect("docs/vrrp-state-table.md exists");
    let (begin, end) = ("<!-- BEGIN TABLE -->\n", "<!-- END TABLE -->");
    let b = doc.find(begin).expect("BEGIN marker") + begin.len();
    let e = doc.find(end).expect("END marker");
    let table = render_table();
    if std::env::var_os("VRRP_TABLE_WRITE").is_some() {
        let new = format!("{}{}{}", &doc[..b], table, &doc[e..]);
        std::fs::write(path, new).unwrap();
        return;
    }
    assert_eq!(
        doc[b..e],
        table,
        "the state × event table changed; review and regenerate (see the doc comment)"
    );
}

#[test]
fn vrrp_module_path_is_qualified() {
    // `vrrp::Drop` is the receive-check reason, not std's trait.
    let d: vrrp::Drop = vrrp::Drop::BadTtl;
    assert_eq!(d.to_string(), "TTL is not 255");
}
