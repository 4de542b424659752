//! The IPv6 fixed header (RFC 8200 §3), enough to classify and pass.
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Source Address (128 bits)             |
//! |                      Destination Address (128 bits)           |
//! ```
//! RFC 8200: "Payload Length: 16-bit unsigned integer. Length of the IPv6
//! payload, i.e., the rest of the packet following this IPv6 header, in
//! octets. (Note that any extension headers present are considered part of
//! the payload, i.e., included in the length count.)" Extension headers are
//! not walked: [`Packet::next_header`] names the first one.

use core::fmt;
use std::net::Ipv6Addr;

use super::bytes::{be16, be32};
use super::ipv4::Protocol;
use super::{Error, Result, need};

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;

const WHAT: &str = "ipv6";

/// A read/write view of an IPv6 packet's fixed header and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short one.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`]; no accessor panics afterwards.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the version and that the buffer holds the header and the
    /// payload length (longer buffers, e.g. Ethernet padding, are accepted).
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        need(WHAT, b, HEADER_LEN)?;
        if self.version() != 6 {
            return Err(Error::BadVersion {
                what: WHAT,
                value: self.version(),
            });
        }
        need(
            "ipv6 payload length",
            b,
            HEADER_LEN + usize::from(self.payload_len()),
        )
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn word0(&self) -> u32 {
        be32(self.buffer.as_ref(), field::VER_TC_FLOW)
    }

    /// Version (6).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.word0() >> 28) as u8
    }

    /// Traffic Class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (self.word0() >> 20) as u8
    }

    /// Flow Label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        self.word0() & 0x000f_ffff
    }

    /// Payload Length.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Next Header (IANA protocol numbers, shared with IPv4).
    #[inline]
    pub fn next_header(&self) -> Protocol {
        Protocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// Hop Limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        Ipv6Addr::from(a)
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        Ipv6Addr::from(a)
    }

    /// The payload (extension headers included), without link padding.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        self.buffer.as_ref().get(HEADER_LEN..end).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..end)
            .unwrap_or(&mut [])
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed IPv6 fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next Header.
    pub next_header: Protocol,
    /// Hop Limit.
    pub hop_limit: u8,
    /// Traffic Class.
    pub traffic_class: u8,
    /// Flow Label, 0..=0xfffff.
    pub flow_label: u32,
    /// Payload Length.
    pub payload_len: u16,
}

impl Repr {
    /// Parses a view.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            next_header: packet.next_header(),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
            payload_len: packet.payload_len(),
        })
    }

    /// Header plus payload.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len as usize
    }

    /// Writes the 40-byte header.
    ///
    /// # Panics
    /// If the buffer is shorter than 40 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let b = packet.buffer.as_mut();
        let w0 =
            (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0x000f_ffff);
        b[field::VER_TC_FLOW].copy_from_slice(&w0.to_be_bytes());
        b[field::LENGTH].copy_from_slice(&self.payload_len.to_be_bytes());
        b[field::NXT_HDR] = self.next_header.to_u8();
        b[field::HOP_LIMIT] = self.hop_limit;
        b[field::SRC_ADDR].copy_from_slice(&self.src.octets());
        b[field::DST_ADDR].copy_from_slice(&self.dst.octets());
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv6 {} > {} next {} hlim {} len {}",
            self.src, self.dst, self.next_header, self.hop_limit, self.payload_len
        )
    }
}

/// The all-VRRP-routers link-local multicast group, ff02::12 (RFC 5798 §5.1.2.2).
pub const VRRP_MULTICAST: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// Whether `a` is a link-local unicast address (fe80::/10, RFC 4291 §2.5.6).
#[inline]
pub const fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// The link-local address a MAC gives by modified EUI-64 (RFC 4291 App. A):
/// fe80::, then the MAC with ff:fe in the middle and the U/L bit flipped.
pub const fn link_local_from_mac(mac: [u8; 6]) -> Ipv6Addr {
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        (((mac[0] ^ 0x02) as u16) << 8) | mac[1] as u16,
        ((mac[2] as u16) << 8) | 0xff,
        0xfe00 | mac[3] as u16,
        ((mac[4] as u16) << 8) | mac[5] as u16,
    )
}

/// The solicited-node multicast group of `a`, ff02::1:ffXX:XXXX (RFC 4291 §2.7.1).
pub const fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        ((o[14] as u16) << 8) | o[15] as u16,
    )
}

/// The running sum of the IPv6 pseudo-header (RFC 8200 §8.1): source,
/// destination, upper-layer length (32 bits), three zero bytes, next header.
#[inline]
pub fn pseudo_header(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> u32 {
    let mut sum = super::checksum::accumulate(0, &src.octets());
    sum = super::checksum::accumulate(sum, &dst.octets());
    sum = super::checksum::accumulate(sum, &length.to_be_bytes());
    sum.wrapping_add(u32::from(next_header))
}

/// An IPv6 address with a prefix length, e.g. `2001:2::250/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(into = "String")]
pub struct Cidr {
    address: Ipv6Addr,
    prefix_len: u8,
}

impl Cidr {
    /// An address and prefix length 0..=128.
    pub fn new(address: Ipv6Addr, prefix_len: u8) -> Result<Cidr> {
        if prefix_len > 128 {
            return Err(Error::BadField {
                what: "ipv6 cidr",
                field: "prefix length",
                value: u64::from(prefix_len),
            });
        }
        Ok(Cidr {
            address,
            prefix_len,
        })
    }

    /// The address as written.
    #[inline]
    pub const fn address(&self) -> Ipv6Addr {
        self.address
    }

    /// The prefix length.
    #[inline]
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A VRRPv3 advert over IPv6 as on the wire: fe80::1 -> ff02::12, next
    // header 112, hop limit 255, 8 bytes of payload (truncated advert body).
    static FIXTURE: [u8; 48] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x08, 112, 255, //
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, //
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, //
        0x31, 0x33, 0x64, 0x01, 0x00, 0x64, 0x00, 0x00,
    ];

    fn fixture_repr() -> Repr {
        Repr {
            src: "fe80::1".parse().unwrap(),
            dst: "ff02::12".parse().unwrap(),
            next_header: Protocol::Vrrp,
            hop_limit: 255,
            traffic_class: 0,
            flow_label: 0,
            payload_len: 8,
        }
    }

    #[test]
    fn kernel_captured_mld_report() {
        use crate::wire::ethernet;
        use crate::wire::pcap::captured;
        let frame = captured::hex(captured::MLD_REPORT);
        let eth = ethernet::Packet::new_checked(&frame[..]).unwrap();
        assert_eq!(eth.ethertype(), ethernet::EtherType::Ipv6);
        assert!(eth.dst_addr().is_multicast());
        let p = Packet::new_checked(eth.payload()).unwrap();
        assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 0, 0));
        assert_eq!(p.payload_len(), 36);
        assert_eq!(p.next_header(), Protocol::Unknown(0)); // Hop-by-Hop options
        assert_eq!(p.hop_limit(), 1);
        assert_eq!(p.src_addr(), Ipv6Addr::UNSPECIFIED);
        assert_eq!(p.dst_addr(), "ff02::16".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload()[..2], [58, 0]); // HBH: next header ICMPv6, length 0
        let repr = Repr::parse(&p).unwrap();
        let mut out = [0u8; 40];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out[..], eth.payload()[..40]);
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&FIXTURE[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), Protocol::Vrrp);
        assert_eq!(p.hop_limit(), 255);
        assert_eq!(p.payload(), &FIXTURE[40..]);
        assert_eq!(Repr::parse(&p).unwrap(), fixture_repr());
    }

    #[test]
    fn construct() {
        let mut buf = [0xffu8; 48];
        buf[40..].copy_from_slice(&FIXTURE[40..]);
        fixture_repr().emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, FIXTURE);
    }

    #[test]
    fn traffic_class_and_flow_label() {
        let mut b = FIXTURE;
        b[0..4].copy_from_slice(&[0x6b, 0x81, 0x23, 0x45]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Packet::new_checked(&FIXTURE[..39]).unwrap_err(),
            Error::Truncated {
                what: "ipv6",
                need: 40,
                have: 39
            }
        );
        assert_eq!(
            Packet::new_checked(&FIXTURE[..47]).unwrap_err(),
            Error::Truncated {
                what: "ipv6 payload length",
                need: 48,
                have: 47
            }
        );
        let mut b = FIXTURE;
        b[0] = 0x45;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadVersion {
                what: "ipv6",
                value: 4
            }
        );
    }

    fn arb_repr() -> impl Strategy<Value = Repr> {
        (
            any::<u128>(),
            any::<u128>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            0u32..0x10_0000,
            0u16..300,
        )
            .prop_map(
                |(s, d, nh, hop_limit, traffic_class, flow_label, payload_len)| Repr {
                    src: Ipv6Addr::from(s),
                    dst: Ipv6Addr::from(d),
                    next_header: Protocol::from(nh),
                    hop_limit,
                    traffic_class,
                    flow_label,
                    payload_len,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr()) {
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), repr);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..96), fix in any::<bool>()) {
            if fix && bytes.len() >= 6 {
                bytes[0] = 0x60 | (bytes[0] & 0x0f);
                bytes[4] = 0;
                bytes[5] %= 64;
            }
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.version(), p.traffic_class(), p.flow_label(), p.next_header(), p.hop_limit());
                let _ = (p.src_addr(), p.dst_addr());
                prop_assert_eq!(p.payload().len(), usize::from(p.payload_len()));
                prop_assert!(Repr::parse(&p).is_ok());
            } else {
                prop_assert!(Repr::parse(&Packet::new_unchecked(&bytes[..])).is_err());
            }
        }
    }

    #[test]
    fn link_local_of_the_vrrp_ipv6_virtual_mac() {
        // 00:00:5e:00:02:33 (VRID 51) -> fe80::200:5eff:fe00:233.
        let mac = [0x00, 0x00, 0x5e, 0x00, 0x02, 0x33];
        let ll = link_local_from_mac(mac);
        assert_eq!(ll, "fe80::200:5eff:fe00:233".parse::<Ipv6Addr>().unwrap());
        assert!(is_link_local(ll));
        assert!(!is_link_local("2001:2::1".parse().unwrap()));
        assert!(is_link_local("febf::1".parse().unwrap()));
        assert!(!is_link_local("fec0::1".parse().unwrap()));
    }

    #[test]
    fn solicited_node_group() {
        // RFC 4291 §2.7.1: the low 24 bits appended to ff02::1:ff00:0/104.
        let a: Ipv6Addr = "2001:2::abcd:1234:5678".parse().unwrap();
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff34:5678".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn cidr_display_and_bounds() {
        let c = Cidr::new("2001:2::250".parse().unwrap(), 64).unwrap();
        assert_eq!(c.to_string(), "2001:2::250/64");
        assert!(Cidr::new(Ipv6Addr::LOCALHOST, 129).is_err());
    }
}
