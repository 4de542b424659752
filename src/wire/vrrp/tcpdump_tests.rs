//! Checks our emitted adverts against tcpdump's decoder (skipped, with a
//! message, when tcpdump is not installed; failing then under CI, see
//! `node::prereq`).

use super::*;
use crate::wire::pcap;

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// An Ethernet + IPv4 frame around `vrrp`, built by hand so that this test
/// depends on nothing but this module and the checksum.
fn frame(vrrp: &[u8], vrid: u8) -> Vec<u8> {
    let mut f = vec![
        0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x00, 0x00, 0x5e, 0x00, 0x01, vrid,
    ];
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + vrrp.len()) as u16;
    let mut ip = vec![0x45, 0xc0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, TTL, PROTOCOL, 0, 0]);
    ip.extend_from_slice(&SRC.octets());
    ip.extend_from_slice(&MULTICAST_ADDR.octets());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(vrrp);
    f
}

/// What tcpdump prints for the advert `version`/`adver_int` for VRID 51 at
/// priority 99 announcing 198.18.0.250; `None` without tcpdump.
fn tcpdump_output(test: &str, version: Version, adver_int: u16) -> Option<String> {
    let repr = Repr {
        version,
        vrid: 51,
        priority: 99,
        adver_int,
        auth: Auth::None,
        addrs: vec![Ipv4Addr::new(198, 18, 0, 250)],
    };
    let bytes = repr.to_bytes(SRC, MULTICAST_ADDR).unwrap();
    pcap::tcpdump_decode(test, &[frame(&bytes, repr.vrid)])
}

#[test]
fn tcpdump_decodes_our_v2_advert_as_the_original() {
    if let Some(out) = tcpdump_output(
        "wire::vrrp::tcpdump_tests::tcpdump_decodes_our_v2_advert_as_the_original",
        Version::V2,
        1,
    ) {
        assert!(
            out.contains("198.18.0.1 > 224.0.0.18: VRRPv2, Advertisement, vrid 51, prio 99, authtype none, intvl 1s, length 20"),
            "tcpdump printed: {out}"
        );
    }
}

#[test]
fn tcpdump_decodes_our_v3_advert() {
    if let Some(out) = tcpdump_output(
        "wire::vrrp::tcpdump_tests::tcpdump_decodes_our_v3_advert",
        Version::V3,
        100,
    ) {
        assert!(
            out.contains("VRRPv3, Advertisement, vrid 51, prio 99, intvl 100cs, length 12"),
            "tcpdump printed: {out}"
        );
    }
}
