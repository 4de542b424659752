//! Building and taking apart the whole frames the control plane sends and
//! receives: Ethernet + IPv4 or IPv6 + a payload (VRRP adverts, heartbeats,
//! neighbour discovery).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::{self, ethernet, ipv4, ipv6};

/// What the control plane needs to know about a received IPv4 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpFrame<'a> {
    pub src_mac: ethernet::Address,
    pub dst_mac: ethernet::Address,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub protocol: ipv4::Protocol,
    pub payload: &'a [u8],
}

/// The Ethernet header of `frame` (one optional VLAN tag), if it carries
/// `ethertype`.
fn ethernet_of(
    frame: &[u8],
    ethertype: ethernet::EtherType,
) -> wire::Result<ethernet::Packet<&[u8]>> {
    let eth = ethernet::Packet::new_checked(frame)?;
    if eth.ethertype() != ethertype {
        return Err(wire::Error::BadField {
            what: "ethernet",
            field: "ethertype",
            value: u64::from(eth.ethertype().to_u16()),
        });
    }
    Ok(eth)
}

/// Parses an Ethernet/IPv4 frame (one optional VLAN tag). The IPv4 header
/// checksum is verified and fragments are refused.
pub fn parse_ipv4(frame: &[u8]) -> wire::Result<IpFrame<'_>> {
    let eth = ethernet_of(frame, ethernet::EtherType::Ipv4)?;
    let hdr = eth.header_len();
    let ip = ipv4::Packet::new_checked(&frame[hdr..])?;
    let repr = ipv4::Repr::parse(&ip)?;
    let start = hdr + ip.header_len();
    let end = hdr + usize::from(ip.total_len());
    Ok(IpFrame {
        src_mac: eth.src_addr(),
        dst_mac: eth.dst_addr(),
        src: repr.src,
        dst: repr.dst,
        ttl: repr.ttl,
        protocol: repr.protocol,
        payload: &frame[start..end],
    })
}

/// Builds an Ethernet/IPv4 frame around `payload`.
pub fn build_ipv4(
    src_mac: ethernet::Address,
    dst_mac: ethernet::Address,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: ipv4::Protocol,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let eth = ethernet::Repr {
        src: src_mac,
        dst: dst_mac,
        vlan: None,
        ethertype: ethernet::EtherType::Ipv4,
    };
    let ip = ipv4::Repr {
        src,
        dst,
        protocol,
        ttl,
        dscp: 0x30, // CS6, network control (RFC 4594), as routers send VRRP
        ecn: 0,
        ident: 0,
        dont_frag: false,
        payload_len: payload.len(),
        options: ipv4::Options::NONE,
    };
    let total = eth.header_len() + ip.buffer_len();
    // Zero-padded to the 60-byte Ethernet minimum.
    let mut buf = vec![0u8; total.max(60)];
    {
        let mut e = ethernet::Packet::new_unchecked(&mut buf[..]);
        eth.emit(&mut e);
    }
    let h = eth.header_len();
    {
        let mut p = ipv4::Packet::new_unchecked(&mut buf[h..]);
        ip.emit(&mut p);
    }
    let ph = h + ip.header_len();
    buf[ph..ph + payload.len()].copy_from_slice(payload);
    buf
}

/// What the control plane needs to know about a received IPv6 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ip6Frame<'a> {
    pub src_mac: ethernet::Address,
    pub dst_mac: ethernet::Address,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    /// The Next Header of the fixed header: extension headers are not
    /// walked, so a VRRP or ICMPv6 message behind one is not recognised.
    pub next_header: u8,
    pub payload: &'a [u8],
}

/// Parses an Ethernet/IPv6 frame (one optional VLAN tag); the payload is cut
/// to the Payload Length (bytes beyond it, Ethernet padding, are ignored).
pub fn parse_ipv6(frame: &[u8]) -> wire::Result<Ip6Frame<'_>> {
    let eth = ethernet_of(frame, ethernet::EtherType::Ipv6)?;
    let ip = ipv6::Packet::new_checked(&frame[eth.header_len()..])?;
    let repr = ipv6::Repr::parse(&ip)?;
    let start = eth.header_len() + ipv6::HEADER_LEN;
    Ok(Ip6Frame {
        src_mac: eth.src_addr(),
        dst_mac: eth.dst_addr(),
        src: repr.src,
        dst: repr.dst,
        hop_limit: repr.hop_limit,
        next_header: repr.next_header.to_u8(),
        payload: &frame[start..start + usize::from(repr.payload_len)],
    })
}

/// Builds an Ethernet/IPv6 frame around `payload` (traffic class CS6, as
/// for IPv4), zero-padded to the Ethernet minimum.
pub fn build_ipv6(
    src_mac: ethernet::Address,
    dst_mac: ethernet::Address,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: ipv4::Protocol,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let eth = ethernet::Repr {
        src: src_mac,
        dst: dst_mac,
        vlan: None,
        ethertype: ethernet::EtherType::Ipv6,
    };
    let ip = ipv6::Repr {
        src,
        dst,
        next_header,
        hop_limit,
        traffic_class: 0xc0,
        flow_label: 0,
        // Control payloads are at most a few KiB (a VRRP advert of 90
        // addresses is 1448 bytes).
        payload_len: u16::try_from(payload.len()).unwrap_or(u16::MAX),
    };
    let h = eth.header_len();
    let total = h + ipv6::HEADER_LEN + payload.len();
    let mut buf = vec![0u8; total.max(60)];
    eth.emit(&mut ethernet::Packet::new_unchecked(&mut buf[..]));
    ip.emit(&mut ipv6::Packet::new_unchecked(&mut buf[h..]));
    buf[h + ipv6::HEADER_LEN..total].copy_from_slice(payload);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn build_then_parse() {
        let f = build_ipv4(
            ethernet::Address([0, 0, 0x5e, 0, 1, 51]),
            ethernet::Address([1, 0, 0x5e, 0, 0, 0x12]),
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(224, 0, 0, 18),
            ipv4::Protocol::Vrrp,
            255,
            &[1, 2, 3, 4],
        );
        assert_eq!(f.len(), 60, "padded to the Ethernet minimum");
        let p = parse_ipv4(&f).unwrap();
        assert_eq!(p.payload, &[1, 2, 3, 4]);
        assert_eq!(p.ttl, 255);
        assert_eq!(p.protocol, ipv4::Protocol::Vrrp);
        assert_eq!(p.dst, Ipv4Addr::new(224, 0, 0, 18));
    }

    #[test]
    fn build_then_parse_ipv6() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let f = build_ipv6(
            ethernet::Address([0, 0, 0x5e, 0, 2, 51]),
            ethernet::Address::ipv6_multicast(ipv6::VRRP_MULTICAST),
            src,
            ipv6::VRRP_MULTICAST,
            ipv4::Protocol::Vrrp,
            255,
            &[1, 2, 3, 4],
        );
        assert_eq!(f.len(), 60, "14 + 40 + 4, padded to the Ethernet minimum");
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 0x12]);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!(f[14], 0x6c, "version 6, traffic class 0xc0");
        let p = parse_ipv6(&f).unwrap();
        assert_eq!(p.payload, &[1, 2, 3, 4]);
        assert_eq!((p.hop_limit, p.next_header), (255, 112));
        assert_eq!((p.src, p.dst), (src, ipv6::VRRP_MULTICAST));
        // Not IPv6; payload length beyond the frame.
        assert!(
            parse_ipv6(&build_ipv4(
                ethernet::Address([0; 6]),
                ethernet::Address([0; 6]),
                Ipv4Addr::LOCALHOST,
                Ipv4Addr::LOCALHOST,
                ipv4::Protocol::Vrrp,
                255,
                &[]
            ))
            .is_err()
        );
        let mut long = f.clone();
        long[18..20].copy_from_slice(&100u16.to_be_bytes());
        assert!(parse_ipv6(&long).is_err());
    }

    proptest! {
        #[test]
        fn parse_ipv6_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_ipv6(&bytes);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_ipv4(&bytes);
        }
    }
}
