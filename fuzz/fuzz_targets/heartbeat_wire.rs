//! Arbitrary bytes through the heartbeat view and parser: nothing may panic,
//! and whatever parses must re-emit to an equal message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxyha::wire::heartbeat::{Packet, Repr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::new_checked(data) else {
        return;
    };
    let _ = (p.name(), p.generation(), p.hmac(), p.signed_bytes());
    for i in 0..=p.member_count() {
        let _ = p.entry(i);
    }
    let _ = p.verify(b"fuzz-key");
    if let Ok(r) = Repr::parse(&p) {
        for key in [None, Some(&b"fuzz-key"[..])] {
            let bytes = r.to_bytes(key).expect("a parsed message re-emits");
            let p2 = Packet::new_checked(&bytes[..]).expect("emitted message checks");
            assert_eq!(Repr::parse(&p2).expect("emitted message parses"), r);
            if let Some(k) = key {
                assert!(p2.verify(k).is_ok());
            }
        }
    }
});
