//! Arbitrary bytes through the VRRPv3-over-IPv6 parser (`wire::vrrp::v6`)
//! and the IPv6 instance's receive path: nothing may panic, and whatever
//! parses must re-emit to the same bytes.
#![no_main]

use std::net::Ipv6Addr;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use proxyha::vrrp::{Config, Instance, IpMeta};
use proxyha::wire::vrrp::v6::{MULTICAST_ADDR, Repr};

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let mut s = [0u8; 16];
    s.copy_from_slice(&data[..16]);
    let src = Ipv6Addr::from(s);
    let hop_limit = data[16];
    let bytes = &data[17..];
    if let Ok(repr) = Repr::parse(bytes, src, MULTICAST_ADDR) {
        let again = repr.to_bytes(src, MULTICAST_ADDR).expect("a parsed repr re-emits");
        assert_eq!(again, bytes);
    }
    let cfg = Config::new(
        51,
        99,
        "fe80::1".parse().unwrap(),
        vec!["fe80::200:5eff:fe00:233".parse().unwrap()],
    );
    let mut inst = Instance::new(cfg).unwrap();
    let now = Instant::now();
    inst.handle_startup(now);
    let meta = IpMeta {
        ttl: hop_limit,
        ..IpMeta::advert_from(src)
    };
    let _ = inst.handle_packet(now, &meta, bytes);
    while inst.poll_action().is_some() {}
});
