//! Arbitrary bytes through the VRRP wire view and parser: nothing may panic, and
//! whatever parses must re-emit to a message that parses the same.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use proxyha::wire::vrrp::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let src = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
    let dst = Ipv4Addr::new(data[4], data[5], data[6], data[7]);
    let bytes = &data[8..];
    let Ok(packet) = Packet::new_checked(bytes) else {
        return;
    };
    let _ = (
        packet.version(),
        packet.msg_type(),
        packet.vrid(),
        packet.priority(),
        packet.auth_type(),
        packet.adver_int(),
        packet.max_adver_int(),
        packet.checksum(),
        packet.auth_data(),
        packet.verify_checksum(src, dst),
    );
    assert_eq!(packet.addrs().count(), usize::from(packet.addr_count()));
    if let Ok(repr) = Repr::parse(&packet, src, dst) {
        let again = repr.to_bytes(src, dst).expect("a parsed repr re-emits");
        let reparsed = Repr::parse(&Packet::new_checked(&again[..]).unwrap(), src, dst).unwrap();
        assert_eq!(reparsed, repr);
    }
});
