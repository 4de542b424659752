//! The classifier's IPv6 rules (issue 16), apart from the IPv4 ones so that
//! the two evolve separately:
//!
//! * next header 112 (VRRP) whose VRID is ours: [`Verdict::Vrrp`], to the
//!   control plane's IPv6 instance (another VRID: pass);
//! * next header 58, an ICMPv6 neighbour solicitation (type 135) whose
//!   target is an IPv6 VIP: [`Verdict::ArpForVip`], to the control plane,
//!   where the IPv6 Master answers it (other ICMPv6: pass);
//! * anything else sent to the IPv6 virtual MAC for an IPv6 VIP: the flow
//!   rules of [`super::ipv6_flow`] (TCP/UDP balanced, ICMPv6 errors to
//!   their flow's node, extension headers dropped and counted);
//! * everything else: pass.
//!
//! Only the 40-byte fixed header is read: a VRRP message or solicitation
//! behind an extension header is passed to the kernel, as RFC 5798's
//! adverts and RFC 4861's messages carry none.

use std::net::Ipv6Addr;

use super::ipv6_flow::{ICMPV6, classify_flow};
use super::{DropReason, Filter, PROTO_VRRP, Verdict};
use crate::wire::ethernet;

/// Length of the IPv6 fixed header.
const HEADER_LEN: usize = 40;
/// ICMPv6 type of a neighbour solicitation.
const TYPE_NS: u8 = 135;

/// Classifies an IPv6 packet starting at `l3`. Never panics.
#[inline]
pub(super) fn classify_ipv6(filter: &Filter, frame: &[u8], l3: usize) -> Verdict {
    let Some(hdr) = frame.get(l3..l3 + HEADER_LEN) else {
        return Verdict::Drop(DropReason::BadIpv6Header);
    };
    if hdr[0] >> 4 != 6 {
        return Verdict::Drop(DropReason::BadIpv6Header);
    }
    let payload_len = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
    if l3 + HEADER_LEN + payload_len > frame.len() {
        return Verdict::Drop(DropReason::BadIpv6Header);
    }
    let l4 = l3 + HEADER_LEN;
    let body = &frame[l4..l4 + payload_len];
    let mut o = [0u8; 16];
    o.copy_from_slice(&hdr[24..40]);
    let dst = Ipv6Addr::from(o);
    match hdr[6] {
        PROTO_VRRP => {
            if payload_len < 2 {
                return Verdict::Drop(DropReason::BadVrrp);
            }
            if frame[l4 + 1] == filter.vrid {
                Verdict::Vrrp
            } else {
                Verdict::Pass
            }
        }
        ICMPV6 if body.first() == Some(&TYPE_NS) => {
            // Type(1) code(1) checksum(2) reserved(4) target(16).
            let Some(t) = body.get(8..24) else {
                return Verdict::Drop(DropReason::BadNeighbourSolicit);
            };
            let mut o = [0u8; 16];
            o.copy_from_slice(t);
            if filter.vips6.contains(&Ipv6Addr::from(o)) {
                Verdict::ArpForVip
            } else {
                Verdict::Pass
            }
        }
        next if frame.get(0..6)
            == Some(&ethernet::Address::vrrp_virtual_ipv6(filter.vrid).octets()[..])
            && filter.vips6.contains(&dst) =>
        {
            o.copy_from_slice(&hdr[8..24]);
            classify_flow(filter, next, Ipv6Addr::from(o), dst, body, l3)
        }
        _ => Verdict::Pass,
    }
}

#[cfg(test)]
mod tests {
    use super::super::classify;
    use super::*;
    use crate::control::frames::build_ipv6;
    use crate::wire::ethernet::Address;
    use crate::wire::ipv4::Protocol;
    use crate::wire::ipv6::VRRP_MULTICAST;
    use proptest::prelude::*;

    fn filter() -> Filter {
        Filter::new(51, [2, 0, 0, 0, 0, 1])
    }

    fn vrrp6(vrid: u8) -> Vec<u8> {
        build_ipv6(
            Address::vrrp_virtual_ipv6(vrid),
            Address::ipv6_multicast(VRRP_MULTICAST),
            "fe80::1".parse().unwrap(),
            VRRP_MULTICAST,
            Protocol::Vrrp,
            255,
            &[0x31, vrid, 100, 1, 0, 100, 0, 0],
        )
    }

    #[test]
    fn ipv6_vrrp_of_our_vrid_goes_to_the_control_plane() {
        assert_eq!(classify(&filter(), &vrrp6(51)), Verdict::Vrrp);
        assert_eq!(classify(&filter(), &vrrp6(52)), Verdict::Pass);
    }

    #[test]
    fn malformed_ipv6_is_dropped_and_other_ipv6_passes() {
        let f = vrrp6(51);
        assert_eq!(
            classify(&filter(), &f[..14 + 39]),
            Verdict::Drop(DropReason::BadIpv6Header)
        );
        let mut v4 = f.clone();
        v4[14] = 0x4c;
        assert_eq!(
            classify(&filter(), &v4),
            Verdict::Drop(DropReason::BadIpv6Header)
        );
        let mut long = f.clone();
        long[18..20].copy_from_slice(&200u16.to_be_bytes());
        assert_eq!(
            classify(&filter(), &long),
            Verdict::Drop(DropReason::BadIpv6Header)
        );
        let mut short = f.clone();
        short[18..20].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(
            classify(&filter(), &short),
            Verdict::Drop(DropReason::BadVrrp)
        );
        let mut tcp = f;
        tcp[20] = 6;
        assert_eq!(classify(&filter(), &tcp), Verdict::Pass);
    }

    fn ns(target: &str) -> Vec<u8> {
        let target: Ipv6Addr = target.parse().unwrap();
        let src = "fe80::9".parse().unwrap();
        let dst = crate::wire::ipv6::solicited_node(target);
        build_ipv6(
            Address([2, 0, 0, 0, 0, 9]),
            Address::ipv6_multicast(dst),
            src,
            dst,
            Protocol::Unknown(58),
            255,
            &crate::wire::ndp::solicitation(src, Address([2, 0, 0, 0, 0, 9]), target),
        )
    }

    #[test]
    fn solicitations_for_an_ipv6_vip_go_to_the_control_plane() {
        let f = filter().with_vip6("2001:2::250".parse().unwrap());
        assert_eq!(classify(&f, &ns("2001:2::250")), Verdict::ArpForVip);
        assert_eq!(classify(&f, &ns("2001:2::1")), Verdict::Pass);
        // Other ICMPv6 (an echo request): pass.
        let mut echo = ns("2001:2::250");
        echo[54] = 128;
        assert_eq!(classify(&f, &echo), Verdict::Pass);
        // An NS cut before its target.
        let mut short = ns("2001:2::250");
        short[18..20].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(
            classify(&f, &short),
            Verdict::Drop(DropReason::BadNeighbourSolicit)
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let mut f = vec![0u8; 12];
            f.extend_from_slice(&[0x86, 0xdd]);
            f.extend_from_slice(&bytes);
            let _ = classify(&filter(), &f);
        }
    }
}
