//! Arbitrary bytes through the Ethernet view and repr: no panic, and a
//! parsed header re-emits to the same header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxyha::wire::ethernet::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::new_checked(data) else {
        return;
    };
    let _ = (
        p.dst_addr(),
        p.src_addr(),
        p.outer_ethertype(),
        p.ethertype(),
    );
    let _ = (p.vlan_tci(), p.vlan_id(), p.header_len(), p.payload().len());
    let repr = Repr::parse(&p).expect("a checked frame parses");
    let mut buf = vec![0u8; repr.buffer_len(p.payload().len())];
    let mut out = Packet::new_unchecked(&mut buf[..]);
    repr.emit(&mut out);
    out.payload_mut().copy_from_slice(p.payload());
    assert_eq!(
        Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(),
        repr
    );
});
