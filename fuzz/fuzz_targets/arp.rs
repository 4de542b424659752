//! Arbitrary bytes through the ARP view and repr: no panic, and a parsed
//! message re-emits to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxyha::wire::arp::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::new_checked(data) else {
        return;
    };
    let _ = (
        p.hardware_type(),
        p.protocol_type(),
        p.hardware_len(),
        p.protocol_len(),
        p.operation(),
    );
    let _ = (p.source_hardware_addr(), p.source_protocol_addr());
    let _ = (
        p.target_hardware_addr(),
        p.target_protocol_addr(),
        p.is_ethernet_ipv4(),
    );
    let Ok(repr) = Repr::parse(&p) else {
        return;
    };
    let mut buf = [0u8; 28];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
    assert_eq!(buf[..], data[..28]);
    assert_eq!(
        Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(),
        repr
    );
});
