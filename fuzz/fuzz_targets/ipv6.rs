//! Arbitrary bytes through the IPv6 view and repr: no panic, and a parsed
//! header re-emits to the same header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxyha::wire::ipv6::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::new_checked(data) else {
        return;
    };
    let _ = (
        p.version(),
        p.traffic_class(),
        p.flow_label(),
        p.payload_len(),
    );
    let _ = (
        p.next_header(),
        p.hop_limit(),
        p.src_addr(),
        p.dst_addr(),
        p.payload().len(),
    );
    let repr = Repr::parse(&p).expect("a checked packet parses");
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
    assert_eq!(buf[..40], data[..40]);
});
