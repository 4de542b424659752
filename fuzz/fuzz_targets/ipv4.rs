//! Arbitrary bytes through the IPv4 view and repr: no panic, and a parsed
//! header re-emits to the same header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxyha::wire::ipv4::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::new_checked(data) else {
        return;
    };
    let _ = (
        p.version(),
        p.header_len(),
        p.dscp(),
        p.ecn(),
        p.total_len(),
        p.ident(),
    );
    let _ = (
        p.dont_frag(),
        p.more_frags(),
        p.frag_offset(),
        p.is_fragment(),
        p.ttl(),
    );
    let _ = (
        p.protocol(),
        p.checksum(),
        p.src_addr(),
        p.dst_addr(),
        p.verify_checksum(),
    );
    let _ = (p.options().len(), p.payload().len());
    let Ok(repr) = Repr::parse(&p) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
    assert_eq!(
        Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(),
        repr
    );
});
