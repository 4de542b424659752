//! Arbitrary bytes through the UDP view and repr. The first 8 bytes are the
//! IPv4 source and destination for the pseudo-header; the rest is the
//! datagram. No panic, and a parsed datagram re-emits to a datagram that
//! parses to the same repr.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use proxyha::wire::udp::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Some((ips, dgram)) = data.split_at_checked(8) else {
        return;
    };
    let src = Ipv4Addr::new(ips[0], ips[1], ips[2], ips[3]);
    let dst = Ipv4Addr::new(ips[4], ips[5], ips[6], ips[7]);
    let Ok(p) = Packet::new_checked(dgram) else {
        return;
    };
    let _ = (
        p.src_port(),
        p.dst_port(),
        p.len(),
        p.is_empty(),
        p.checksum(),
        p.payload().len(),
    );
    let _ = p.verify_checksum(src, dst);
    let Ok(repr) = Repr::parse(&p, src, dst) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]), src, dst);
    assert_eq!(
        Repr::parse(&Packet::new_checked(&buf[..]).unwrap(), src, dst).unwrap(),
        repr
    );
});
