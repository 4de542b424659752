//! Arbitrary ICMP message bodies through `classify::icmp_quote`, and the
//! same bytes as an ICMP packet to the VIP through the classifier: no panic;
//! a steered error always names a flow to the VIP on a redirected port, and
//! the classifier agrees with the parser.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use proxyha::dataplane::classify::{self, Filter, Quote, Verdict, build};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);

fuzz_target!(|data: &[u8]| {
    let filter = Filter::new(51, [2, 0, 0, 0, 0, 1])
        .with_vip(VIP)
        .with_ports([9090, 80]);
    let quote = classify::icmp_quote(&filter, data);
    if let Quote::Flow(k) = quote {
        assert_eq!(k.dst, u32::from(VIP));
        assert!(filter.ports.contains(k.dport));
        assert!(k.proto == 6 || k.proto == 17);
    }
    if data.len() <= 1400 {
        let frame = build::ipv4(
            classify::virtual_mac(51),
            [2, 0, 0, 0, 0, 0x64],
            None,
            Ipv4Addr::new(198, 18, 1, 254),
            VIP,
            classify::PROTO_ICMP,
            data,
        );
        let v = classify::classify(&filter, &frame);
        match quote {
            Quote::Flow(k) => assert_eq!(v, Verdict::IcmpError(k)),
            Quote::Other => assert_eq!(v, Verdict::Pass),
            Quote::Malformed => assert!(matches!(v, Verdict::Drop(_))),
        }
    }
});
