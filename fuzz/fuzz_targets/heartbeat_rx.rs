//! The heartbeat receive path: arbitrary packets into a director's
//! `heartbeat::Machine`. Nothing may panic. With a key configured, no input
//! can add, change or remove a node, change the membership, or make the
//! machine send anything (the fuzzer cannot produce a valid HMAC).
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use proxyha::heartbeat::{Config, LocalHealth, Machine, Ports};

const UNIX0: u64 = 1_764_140_400_000;

fn machine(key: Option<&[u8]>, now: Instant) -> Machine {
    let mut c = Config::new(10, 1, "dir-a", 99, Ipv4Addr::new(198, 18, 0, 1), [2, 0, 0, 0, 0, 1]);
    c.key = key.map(<[u8]>::to_vec);
    let mut m = Machine::new(c, now, UNIX0).expect("valid config");
    m.set_local_health(
        now,
        LocalHealth {
            ports: Ports::from_results(&[true]),
            ..Default::default()
        },
    );
    m.set_active(now, true).expect("a director");
    while m.poll_transmit().is_some() {}
    m
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    // The first 4 bytes choose the source address; the rest is the payload,
    // split into up to 4 packets on 0xfe separators.
    let (src, rest) = data.split_at(data.len().min(4));
    let mut a = [0u8; 4];
    a[..src.len()].copy_from_slice(src);
    let src = Ipv4Addr::from(a);
    let packets: Vec<&[u8]> = rest.split(|b| *b == 0xfe).take(4).collect();

    let mut open = machine(None, now);
    for p in &packets {
        open.handle_heartbeat(now, src, p);
    }
    open.handle_timeout(now + Duration::from_secs(5));
    let _ = open.status();

    let mut keyed = machine(Some(b"fuzz-key"), now);
    let before = (keyed.nodes(), keyed.membership().clone());
    for p in &packets {
        keyed.handle_heartbeat(now, src, p);
    }
    assert_eq!((keyed.nodes(), keyed.membership().clone()), before);
    assert!(keyed.poll_transmit().is_none());
});
