//! Arbitrary bytes through the neighbour-discovery parsers (`wire::ndp`):
//! nothing may panic; an advertisement that parses re-emits to the same
//! bytes.
#![no_main]

use std::net::Ipv6Addr;

use libfuzzer_sys::fuzz_target;
use proxyha::wire::ndp::{Advertisement, Solicitation};

fuzz_target!(|data: &[u8]| {
    if data.len() < 33 {
        return;
    }
    let mut s = [0u8; 16];
    s.copy_from_slice(&data[..16]);
    let mut d = [0u8; 16];
    d.copy_from_slice(&data[16..32]);
    let (src, dst) = (Ipv6Addr::from(s), Ipv6Addr::from(d));
    let msg = &data[33..];
    let _ = Solicitation::parse(msg, src, dst, data[32]);
    if let Ok(na) = Advertisement::parse(msg, src, dst) {
        // Reserved bits and options beyond the first are not kept: compare
        // what is.
        let again = na.to_bytes(src, dst);
        assert_eq!(Advertisement::parse(&again, src, dst).unwrap(), na);
    }
});
