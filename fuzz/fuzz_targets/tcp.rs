//! Arbitrary bytes through the TCP view and repr. The first 8 bytes are the
//! IPv4 source and destination for the pseudo-header; the rest is the
//! segment. No panic, and a parsed segment re-emits to the same bytes.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use proxyha::wire::tcp::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Some((ips, seg)) = data.split_at_checked(8) else {
        return;
    };
    let src = Ipv4Addr::new(ips[0], ips[1], ips[2], ips[3]);
    let dst = Ipv4Addr::new(ips[4], ips[5], ips[6], ips[7]);
    let Ok(p) = Packet::new_checked(seg) else {
        return;
    };
    let _ = (
        p.src_port(),
        p.dst_port(),
        p.seq_number(),
        p.ack_number(),
        p.header_len(),
    );
    let _ = (
        p.flags(),
        p.window(),
        p.checksum(),
        p.urgent(),
        p.options().len(),
        p.payload().len(),
    );
    let _ = p.verify_checksum(src, dst);
    let Ok(repr) = Repr::parse(&p, src, dst) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut buf[..]), src, dst);
    // Only the reserved bits of byte 12 may differ (emit writes them as
    // zero), and with them the checksum; ours must verify.
    let out = Packet::new_checked(&buf[..]).expect("emitted segment is well formed");
    assert!(out.verify_checksum(src, dst));
    let mut expect = seg.to_vec();
    expect[12] &= 0xf0;
    let (ours, theirs) = (out.checksum(), p.checksum());
    if seg[12] & 0x0f == 0 {
        // Same bytes, same checksum, up to one's-complement's two zeros.
        assert!(ours == theirs || (ours, theirs) == (0, 0xffff) || (ours, theirs) == (0xffff, 0));
    }
    expect[16..18].copy_from_slice(&buf[16..18]);
    assert_eq!(buf, expect);
});
