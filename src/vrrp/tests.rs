//! Unit tests: configuration, timer arithmetic, receive checks, and the
//! "a dropped packet changes nothing" invariant. The timelines and the full
//! state × event table are in `tests/vrrp_timeline.rs`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::wire::vrrp as wire;

const ME: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);

fn cfg(version: Version) -> Config {
    let mut c = Config::new(51, 89, ME, vec![VIP]);
    c.version = version;
    if version == Version::V3 {
        c.adver_int = Duration::from_millis(100);
    }
    c
}

/// A valid advert from `PEER` as the wire would carry it.
fn advert_bytes(version: Version, priority: u8) -> Vec<u8> {
    let repr = wire::Repr {
        version,
        vrid: 51,
        priority,
        adver_int: if version == Version::V2 { 1 } else { 10 },
        auth: wire::Auth::None,
        addrs: vec![VIP],
    };
    repr.to_bytes(PEER, wire::MULTICAST_ADDR).unwrap()
}

fn meta() -> IpMeta {
    IpMeta::advert_from(PEER)
}

#[test]
fn config_rules() {
    assert_eq!(
        Config {
            vrid: 0,
            ..cfg(Version::V2)
        }
        .validate(),
        Err(Error::BadVrid(0))
    );
    assert_eq!(
        Config {
            priority: 0,
            ..cfg(Version::V2)
        }
        .validate(),
        Err(Error::BadPriority(0))
    );
    // Advertisement_Interval: v2 whole seconds 1..=255, v3 10 ms steps up to 40.95 s.
    for (version, ms, valid) in [
        (Version::V2, 1000, true),
        (Version::V2, 255_000, true),
        (Version::V3, 10, true),
        (Version::V3, 40_950, true),
        (Version::V2, 1500, false),
        (Version::V2, 0, false),
        (Version::V2, 256_000, false),
        (Version::V3, 5, false),
        (Version::V3, 15, false),
        (Version::V3, 40_960, false),
    ] {
        let c = Config {
            version,
            adver_int: Duration::from_millis(ms),
            ..cfg(version)
        };
        let want = if valid {
            Ok(())
        } else {
            Err(Error::BadAdverInt {
                version,
                millis: u128::from(ms),
            })
        };
        assert_eq!(c.validate(), want, "{version:?} {ms} ms");
    }
    assert_eq!(
        Config {
            vips: vec![],
            ..cfg(Version::V2)
        }
        .validate(),
        Err(Error::BadVipCount(0))
    );
    assert_eq!(
        Config {
            auth: Some(*b"password"),
            ..cfg(Version::V3)
        }
        .validate(),
        Err(Error::AuthNeedsV2)
    );
    assert_eq!(
        Config {
            garp_refresh: Some(Duration::ZERO),
            ..cfg(Version::V2)
        }
        .validate(),
        Err(Error::ZeroGarpRefresh)
    );
    assert_eq!(
        Error::BadVrid(0).to_string(),
        "vrid 0: must be 1..=255",
        "errors name the field and the rule"
    );
}

#[test]
fn rfc_timer_arithmetic() {
    // v2, 1 s = 100 cs. Priority 99: skew (157*100)/256 = 61 cs; MDI 361 cs.
    let a = Instance::new(Config {
        priority: 99,
        ..cfg(Version::V2)
    })
    .unwrap();
    assert_eq!(a.skew_time(), Duration::from_millis(610));
    assert_eq!(a.master_down_interval(), Duration::from_millis(3610));
    // Priority 89: (167*100)/256 = 65 cs; MDI 365 cs.
    let b = Instance::new(cfg(Version::V2)).unwrap();
    assert_eq!(b.skew_time(), Duration::from_millis(650));
    assert_eq!(b.master_down_interval(), Duration::from_millis(3650));
    // v3 at 10 cs, priority 89: (167*10)/256 = 6 cs; MDI 36 cs.
    let c = Instance::new(Config {
        adver_int: Duration::from_millis(100),
        ..cfg(Version::V3)
    })
    .unwrap();
    assert_eq!(c.master_down_interval(), Duration::from_millis(360));
    // Priority 255: skew (1*100)/256 = 0.
    let d = Instance::new(Config {
        priority: 255,
        ..cfg(Version::V2)
    })
    .unwrap();
    assert_eq!(d.skew_time(), Duration::ZERO);
}

#[test]
fn advert_repr_matches_the_config() {
    let mut c = cfg(Version::V2);
    c.auth = Some(*b"secret\0\0");
    c.adver_int = Duration::from_secs(3);
    let i = Instance::new(c).unwrap();
    let r = i.advert_repr(89);
    assert_eq!(
        (r.version, r.vrid, r.priority, r.adver_int),
        (Version::V2, 51, 89, 3)
    );
    assert_eq!(r.auth, wire::Auth::SimpleText(*b"secret\0\0"));
    assert_eq!(r.addrs, vec![VIP]);
    let i = Instance::new(cfg(Version::V3)).unwrap();
    let r = i.advert_repr(0);
    assert_eq!(
        (r.version, r.priority, r.adver_int, r.auth),
        (Version::V3, 0, 10, wire::Auth::None)
    );
}

#[test]
fn virtual_mac_carries_the_vrid() {
    let i = Instance::new(cfg(Version::V2)).unwrap();
    assert_eq!(i.virtual_mac(), [0x00, 0x00, 0x5e, 0x00, 0x01, 51]);
}

#[test]
fn valid_adverts_pass() {
    for version in [Version::V2, Version::V3] {
        let a = check_advert(&meta(), &advert_bytes(version, 99), &cfg(version)).unwrap();
        let int = if version == Version::V2 { 1000 } else { 100 };
        assert_eq!(
            a,
            Advert {
                src_ip: PEER,
                priority: 99,
                max_adver_int: Duration::from_millis(int)
            }
        );
    }
}

/// One input per drop reason, each failing exactly that check.
#[allow(clippy::vec_init_then_push)] // one case per line reads best
fn bad_inputs(version: Version) -> Vec<(Drop, IpMeta, Vec<u8>, Config)> {
    let c = cfg(version);
    let good = advert_bytes(version, 99);
    let mut out = vec![];
    out.push((
        Drop::BadProtocol,
        IpMeta {
            protocol: 17,
            ..meta()
        },
        good.clone(),
        c.clone(),
    ));
    out.push((
        Drop::BadTtl,
        IpMeta { ttl: 254, ..meta() },
        good.clone(),
        c.clone(),
    ));
    out.push((
        Drop::LoopedBack,
        IpMeta::advert_from(ME),
        good.clone(),
        c.clone(),
    ));
    out.push((Drop::Truncated, meta(), good[..7].to_vec(), c.clone()));
    out.push((Drop::Truncated, meta(), vec![], c.clone()));
    let other = if version == Version::V2 {
        Version::V3
    } else {
        Version::V2
    };
    out.push((
        Drop::WrongVersion,
        meta(),
        advert_bytes(other, 99),
        c.clone(),
    ));
    let mut b = good.clone();
    b[0] = (b[0] & 0xf0) | 2;
    out.push((Drop::Malformed, meta(), b, c.clone()));
    let mut b = good.clone();
    b[3] = 2; // count says 2, one present
    out.push((Drop::BadAddressList, meta(), b, c.clone()));
    let mut b = good.clone();
    b.push(0); // trailing byte: length disagrees with the count
    out.push((Drop::BadAddressList, meta(), b, c.clone()));
    let mut b = good.clone();
    b[2] = 100; // priority changed without fixing the checksum
    out.push((Drop::BadChecksum, meta(), b, c.clone()));
    if version == Version::V3 {
        // The v3 checksum covers the pseudo-header: a different destination breaks it.
        out.push((
            Drop::BadChecksum,
            IpMeta {
                dst: Ipv4Addr::new(224, 0, 0, 19),
                ..meta()
            },
            good.clone(),
            c.clone(),
        ));
    }
    out.push((
        Drop::NotPeer,
        meta(),
        good.clone(),
        Config {
            peers: vec![Ipv4Addr::new(198, 18, 0, 9)],
            ..c.clone()
        },
    ));
    out.push((
        Drop::OtherVrid,
        meta(),
        good.clone(),
        Config {
            vrid: 52,
            ..c.clone()
        },
    ));
    out.push((
        Drop::LocalOwner,
        meta(),
        good.clone(),
        Config {
            priority: 255,
            ..c.clone()
        },
    ));
    let other_vips = wire::Repr {
        addrs: vec![Ipv4Addr::new(198, 18, 0, 251)],
        ..wire::Repr::parse(
            &wire::Packet::new_checked(&good[..]).unwrap(),
            PEER,
            wire::MULTICAST_ADDR,
        )
        .unwrap()
    };
    out.push((
        Drop::BadAddressList,
        meta(),
        other_vips.to_bytes(PEER, wire::MULTICAST_ADDR).unwrap(),
        c.clone(),
    ));
    if version == Version::V2 {
        out.push((
            Drop::AuthMismatch,
            meta(),
            good.clone(),
            Config {
                auth: Some(*b"password"),
                ..c.clone()
            },
        ));
        let with_auth = wire::Repr {
            auth: wire::Auth::SimpleText(*b"wrongpwd"),
            ..other_vips.clone()
        };
        let with_auth = wire::Repr {
            addrs: vec![VIP],
            ..with_auth
        };
        out.push((
            Drop::AuthMismatch,
            meta(),
            with_auth.to_bytes(PEER, wire::MULTICAST_ADDR).unwrap(),
            Config {
                auth: Some(*b"password"),
                ..c.clone()
            },
        ));
        out.push((
            Drop::BadAdverInt,
            meta(),
            good.clone(),
            Config {
                adver_int: Duration::from_secs(2),
                ..c.clone()
            },
        ));
    } else {
        let zero = wire::Repr {
            adver_int: 0,
            addrs: vec![VIP],
            ..other_vips.clone()
        };
        out.push((
            Drop::BadAdverInt,
            meta(),
            zero.to_bytes(PEER, wire::MULTICAST_ADDR).unwrap(),
            c.clone(),
        ));
    }
    out
}

#[test]
fn each_bad_advert_is_dropped_for_its_reason() {
    for version in [Version::V2, Version::V3] {
        let cases = bad_inputs(version);
        for (want, ip, bytes, c) in &cases {
            assert_eq!(
                check_advert(ip, bytes, c),
                Err(*want),
                "{version:?} {want:?} {bytes:02x?}"
            );
        }
        // Every reason except the v2-only auth (for v3) is covered.
        for d in Drop::ALL {
            let covered = cases.iter().any(|c| c.0 == d);
            let v2_only = d == Drop::AuthMismatch;
            assert!(
                covered || (version == Version::V3 && v2_only),
                "{version:?}: no case for {d:?}"
            );
        }
    }
}

#[test]
fn v2_simple_text_auth_passes_when_it_matches() {
    let mut c = cfg(Version::V2);
    c.auth = Some(*b"password");
    let i = Instance::new(c.clone()).unwrap();
    let bytes = i
        .advert_repr(99)
        .to_bytes(PEER, wire::MULTICAST_ADDR)
        .unwrap();
    assert!(check_advert(&meta(), &bytes, &c).is_ok());
}

#[test]
fn priority_255_adverts_get_the_same_address_check() {
    // RFC 5798 §7.1 would let an address owner (priority 255) advertise
    // other addresses. proxyha's directors never run at 255, so on our
    // segment such an advert is a forgery or a misconfiguration: issue 11
    // asks for the same checks as any other advert.
    let c = cfg(Version::V2);
    let owner = |addrs: Vec<Ipv4Addr>| {
        wire::Repr {
            version: Version::V2,
            vrid: 51,
            priority: 255,
            adver_int: 1,
            auth: wire::Auth::None,
            addrs,
        }
        .to_bytes(PEER, wire::MULTICAST_ADDR)
        .unwrap()
    };
    let other = owner(vec![Ipv4Addr::new(198, 18, 0, 251)]);
    assert_eq!(
        check_advert(&meta(), &other, &c).map(|a| a.priority),
        Err(Drop::BadAddressList)
    );
    let ours = owner(c.vips.clone());
    assert_eq!(
        check_advert(&meta(), &ours, &c).map(|a| a.priority),
        Ok(255)
    );
}

#[test]
fn peers_list_drops_other_sources() {
    let mut c = cfg(Version::V2);
    let bytes = advert_bytes(Version::V2, 100);
    assert!(check_advert(&meta(), &bytes, &c).is_ok());
    c.peers = vec![Ipv4Addr::new(198, 18, 0, 9)];
    assert_eq!(check_advert(&meta(), &bytes, &c), Err(Drop::NotPeer));
    c.peers.push(PEER);
    assert!(check_advert(&meta(), &bytes, &c).is_ok());
}

#[test]
fn address_order_does_not_matter() {
    let mut c = cfg(Version::V2);
    let other = Ipv4Addr::new(198, 18, 0, 251);
    c.vips = vec![VIP, other];
    let repr = wire::Repr {
        version: Version::V2,
        vrid: 51,
        priority: 99,
        adver_int: 1,
        auth: wire::Auth::None,
        addrs: vec![other, VIP],
    };
    let bytes = repr.to_bytes(PEER, wire::MULTICAST_ADDR).unwrap();
    assert!(check_advert(&meta(), &bytes, &c).is_ok());
}

#[test]
fn handle_packet_counts_drops_and_logs_once_per_reason_and_peer() {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(Version::V2)).unwrap();
    i.handle_startup(t0);
    while i.poll_action().is_some() {}
    let bad = IpMeta { ttl: 1, ..meta() };
    let bytes = advert_bytes(Version::V2, 99);
    let r1 = i.handle_packet(t0, &bad, &bytes).unwrap_err();
    let r2 = i.handle_packet(t0, &bad, &bytes).unwrap_err();
    assert_eq!((r1.reason, r1.peer, r1.log), (Drop::BadTtl, PEER, true));
    assert!(!r2.log);
    let other_peer = IpMeta {
        src: Ipv4Addr::new(198, 18, 0, 7),
        ..bad
    };
    assert!(i.handle_packet(t0, &other_peer, &bytes).unwrap_err().log);
    assert_eq!(i.counters().drop_bad_ttl, 3);
    assert_eq!(i.counters().drops(), 3);
    assert_eq!(i.counters().rx_adverts, 0);
    assert!(i.handle_packet(t0, &meta(), &bytes).is_ok());
    assert_eq!(i.counters().rx_adverts, 1);
}

/// Drives a fresh instance into `state` at t0 (Master via its own timer).
fn instance_in(state: State, version: Version) -> (Instance, Instant) {
    let t0 = Instant::now();
    let mut i = Instance::new(cfg(version)).unwrap();
    if state != State::Initialize {
        i.handle_startup(t0);
    }
    if state == State::Master {
        let t = i.poll_timeout().unwrap();
        i.handle_timeout(t);
        assert_eq!(i.state(), State::Master);
    }
    while i.poll_action().is_some() {}
    (i, t0)
}

/// Valid adverts, each corrupted by one byte, plus raw random bytes and metadata.
fn arb_packet(version: Version) -> impl Strategy<Value = (IpMeta, Vec<u8>)> {
    let good = advert_bytes(version, 99);
    let mutated = (0..good.len(), any::<u8>()).prop_map(move |(at, x)| {
        let mut b = good.clone();
        b[at] ^= x.max(1);
        (meta(), b)
    });
    let raw = (
        any::<u32>(),
        any::<u32>(),
        prop_oneof![Just(255u8), any::<u8>()],
        prop_oneof![Just(112u8), any::<u8>()],
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(src, dst, ttl, protocol, b)| {
            (
                IpMeta {
                    src: Ipv4Addr::from(src),
                    dst: Ipv4Addr::from(dst),
                    ttl,
                    protocol,
                },
                b,
            )
        });
    prop_oneof![mutated, raw]
}

fn snapshot(i: &Instance, now: Instant) -> (State, Option<Instant>, Status) {
    let mut s = i.status(now);
    s.counters = Counters::default();
    (i.state(), i.poll_timeout(), s)
}

proptest! {
    /// Any input that fails check_advert leaves state, timers and the master
    /// unchanged and emits nothing; only its drop counter moves.
    #[test]
    fn rejected_input_changes_nothing(
        state in prop_oneof![Just(State::Initialize), Just(State::Backup), Just(State::Master)],
        v3 in any::<bool>(),
        (ip, bytes) in prop_oneof![arb_packet(Version::V2), arb_packet(Version::V3)],
        later_ms in 0u64..5000,
    ) {
        let version = if v3 { Version::V3 } else { Version::V2 };
        let (mut i, t0) = instance_in(state, version);
        let now = t0 + Duration::from_millis(later_ms);
        let before = snapshot(&i, now);
        let drops_before = i.counters().drops();
        match i.handle_packet(now, &ip, &bytes) {
            Err(r) => {
                prop_assert_eq!(snapshot(&i, now), before);
                prop_assert_eq!(i.poll_action(), None);
                prop_assert_eq!(i.counters().drops(), drops_before + 1);
                let mut c = i.counters().clone();
                prop_assert_eq!(*c.drop_counter(r.reason), 1);
            }
            Ok(_) => {
                // Only a valid advert gets here: it passes the checks on its own.
                prop_assert!(check_advert(&ip, &bytes, i.config()).is_ok());
                prop_assert_eq!(i.counters().drops(), drops_before);
            }
        }
    }

    /// No sequence of events panics or leaves a Master without an Adver_Timer
    /// or a non-resigned Backup without a Master_Down_Timer.
    #[test]
    fn random_event_sequences_keep_the_timer_invariants(
        events in proptest::collection::vec((0u8..6, 0u64..3000, any::<u8>(), any::<bool>()), 0..60),
    ) {
        let t0 = Instant::now();
        let mut now = t0;
        let mut i = Instance::new(cfg(Version::V2)).unwrap();
        for (kind, dt, prio, high_ip) in events {
            now += Duration::from_millis(dt);
            match kind {
                0 => i.handle_startup(now),
                1 => i.handle_shutdown(now),
                2 => i.handle_timeout(now),
                3 => i.set_priority(now, prio),
                _ => {
                    let src = if high_ip { Ipv4Addr::new(198, 18, 0, 3) } else { PEER };
                    i.handle_advert(now, &Advert { src_ip: src, priority: prio, max_adver_int: Duration::from_secs(1) });
                }
            }
            while i.poll_action().is_some() {}
            match i.state() {
                State::Initialize => prop_assert_eq!(i.poll_timeout(), None),
                State::Master => prop_assert!(i.status(now).adver_timer_ms.is_some()),
                State::Backup => prop_assert_eq!(
                    i.status(now).master_down_timer_ms.is_some(),
                    i.priority() != 0
                ),
            }
        }
    }
}

/// Tracking lowers a preempting Backup's priority below the Master's: it
/// must not claim Master on the timer it armed while discarding the
/// Master's (then lower) adverts.
#[test]
fn a_backup_whose_priority_drops_below_the_master_never_claims() {
    let t0 = Instant::now();
    // We are ME at 99 (preempt); PEER is Master at 89.
    let mut c = cfg(Version::V2);
    c.priority = 99;
    let mut v = Instance::new(c).unwrap();
    v.handle_startup(t0);
    while v.poll_action().is_some() {}
    let advert = advert_bytes(Version::V2, 89);
    let mut now = t0;
    for _ in 0..3 {
        now += Duration::from_secs(1);
        v.handle_packet(now, &meta(), &advert).unwrap();
    }
    // At 3.5 s, just before the Master_Down_Timer armed at start-up (3.61 s)
    // runs out, our proxy goes down: tracking takes 20 off, 79 < 89.
    now += Duration::from_millis(500);
    v.set_priority(now, 79);
    // The Master keeps advertising every second; we stay Backup throughout.
    for step in 1..=60 {
        now += Duration::from_millis(100);
        if let Some(t) = v.poll_timeout()
            && t <= now
        {
            v.handle_timeout(now);
        }
        if step % 10 == 5 {
            v.handle_packet(now, &meta(), &advert).unwrap();
        }
        while let Some(a) = v.poll_action() {
            assert!(
                !matches!(a, Action::BecomeMaster { .. }),
                "claimed Master at 79 against an 89 Master"
            );
        }
    }
    assert_eq!(v.status(now).state, State::Backup);
}
