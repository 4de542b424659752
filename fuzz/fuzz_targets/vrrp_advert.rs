//! The advert receive path (`check_advert` + `handle_advert`, through
//! `Instance::handle_packet`) fed arbitrary packets in every state: nothing
//! panics, and a packet that fails the checks changes neither the state nor
//! the timers, and emits nothing.
//!
//! Input layout: byte 0 picks the version (bit 0) and the starting state
//! (bits 1-2); then records of [ttl, protocol, src last octet, len, len bytes of
//! payload, time step in 10 ms], until the input runs out.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use proxyha::vrrp::{Config, Instance, IpMeta, State, Version};

fuzz_target!(|data: &[u8]| {
    let Some((&head, mut rest)) = data.split_first() else {
        return;
    };
    let version = if head & 1 == 0 {
        Version::V2
    } else {
        Version::V3
    };
    let mut cfg = Config::new(
        51,
        89,
        Ipv4Addr::new(198, 18, 0, 2),
        vec![Ipv4Addr::new(198, 18, 0, 250)],
    );
    cfg.version = version;
    if version == Version::V3 {
        cfg.adver_int = Duration::from_millis(100);
    }
    let mut inst = Instance::new(cfg).expect("valid config");
    let t0 = Instant::now();
    let mut now = t0;
    match (head >> 1) & 3 {
        0 => {}
        1 => inst.handle_startup(now),
        _ => {
            inst.handle_startup(now);
            if let Some(t) = inst.poll_timeout() {
                now = t;
                inst.handle_timeout(now);
            }
        }
    }
    while inst.poll_action().is_some() {}
    while rest.len() >= 4 {
        let (ttl, protocol, last, len) = (rest[0], rest[1], rest[2], usize::from(rest[3]));
        rest = &rest[4..];
        let len = len.min(rest.len());
        let (payload, tail) = rest.split_at(len);
        rest = tail;
        let ip = IpMeta {
            src: Ipv4Addr::new(198, 18, 0, last),
            dst: Ipv4Addr::new(224, 0, 0, 18),
            ttl,
            protocol,
        };
        let before = (
            inst.state(),
            inst.poll_timeout(),
            inst.status(now).master_ip,
        );
        if inst.handle_packet(now, &ip, payload).is_err() {
            assert_eq!(
                (
                    inst.state(),
                    inst.poll_timeout(),
                    inst.status(now).master_ip
                ),
                before
            );
            assert!(inst.poll_action().is_none());
        }
        while inst.poll_action().is_some() {}
        if let Some((&step, tail)) = rest.split_first() {
            rest = tail;
            now += Duration::from_millis(10 * u64::from(step));
            inst.handle_timeout(now);
            while inst.poll_action().is_some() {}
        }
        let _ = inst.status(now);
        let _ = matches!(inst.state(), State::Master);
    }
});
