//! Ethernet II frames with at most one IEEE 802.1Q tag.
//!
//! ```text
//!  0                   6                   12      14      16      18
//! +-------------------+-------------------+-------+---------------+
//! | destination MAC   | source MAC        | type  | payload ...   |   untagged
//! +-------------------+-------------------+-------+-------+-------+
//! | destination MAC   | source MAC        | 8100  |  TCI  | type  | payload ... (802.1Q)
//! +-------------------+-------------------+-------+-------+-------+
//! ```
//!
//! IEEE 802.1Q §9.6: the tag is the TPID 0x8100 followed by the Tag Control
//! Information: "PCP (3 bits), DEI (1 bit), VID (12 bits)". The dataplane
//! rewrites only the two MAC addresses ([`Packet::set_dst_addr`],
//! [`Packet::set_src_addr`]), in place.

use core::fmt;
use core::str::FromStr;
use std::net::Ipv4Addr;

use super::bytes::{be16, get_be16};
use super::{Error, Result, need};

/// A 48-bit Ethernet (MAC) address.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Address(pub [u8; 6]);

impl Address {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: Address = Address([0xff; 6]);
    /// 00:00:00:00:00:00.
    pub const UNSPECIFIED: Address = Address([0; 6]);

    /// The VRRP virtual router MAC for IPv4 (RFC 5798 §7.3, RFC 3768 §7.3):
    /// "The virtual router MAC address associated with a virtual router is an
    /// IEEE 802 MAC Address in the following format: IPv4 case:
    /// 00-00-5E-00-01-{VRID} (in hex, in Internet-standard bit-order)".
    pub const fn vrrp_virtual(vrid: u8) -> Address {
        Address([0x00, 0x00, 0x5e, 0x00, 0x01, vrid])
    }

    /// The VRRP virtual router MAC for IPv6 (RFC 5798 §7.3): 00-00-5E-00-02-{VRID}.
    pub const fn vrrp_virtual_ipv6(vrid: u8) -> Address {
        Address([0x00, 0x00, 0x5e, 0x00, 0x02, vrid])
    }

    /// The Ethernet group address of an IPv4 multicast group (RFC 1112 §6.4):
    /// "placing the low-order 23-bits of the IP address into the low-order 23
    /// bits of the Ethernet multicast address 01-00-5E-00-00-00 (hex)".
    /// 224.0.0.18 maps to 01:00:5e:00:00:12.
    pub const fn ipv4_multicast(group: Ipv4Addr) -> Address {
        let o = group.octets();
        Address([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
    }

    /// The Ethernet group address of an IPv6 multicast group (RFC 2464 §7):
    /// 33:33 then the group's last four octets; ff02::12 maps to
    /// 33:33:00:00:00:12.
    pub const fn ipv6_multicast(group: std::net::Ipv6Addr) -> Address {
        let o = group.octets();
        Address([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }

    /// The six octets.
    #[inline]
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// The octets as a slice.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the I/G bit is set (group address; broadcast included).
    #[inline]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is ff:ff:ff:ff:ff:ff.
    #[inline]
    pub const fn is_broadcast(&self) -> bool {
        matches!(self.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    }

    /// Whether this is an individual (unicast) address.
    #[inline]
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Whether the U/L bit is set (locally administered).
    #[inline]
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl From<[u8; 6]> for Address {
    fn from(octets: [u8; 6]) -> Self {
        Address(octets)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for Address {
    type Err = Error;

    /// Parses `aa:bb:cc:dd:ee:ff` (or with `-` separators), hex in either case.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::BadText {
            what: "ethernet address",
            text: s.to_string(),
        };
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for o in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Address(out))
    }
}

impl TryFrom<String> for Address {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Address> for String {
    fn from(a: Address) -> String {
        a.to_string()
    }
}

/// The EtherType field (IEEE Registration Authority).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800.
    Ipv4,
    /// 0x0806.
    Arp,
    /// 0x86dd.
    Ipv6,
    /// 0x8100, an IEEE 802.1Q tag.
    Vlan,
    /// 0x88a8, an IEEE 802.1ad service tag (QinQ's outer tag); read like
    /// an 802.1Q tag.
    ServiceVlan,
    /// Anything else (including 802.3 length values below 0x0600).
    Unknown(u16),
}

impl EtherType {
    /// The 16-bit value on the wire.
    #[inline]
    pub const fn to_u16(self) -> u16 {
        match self {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::ServiceVlan => 0x88a8,
            EtherType::Unknown(v) => v,
        }
    }

    /// The type for a wire value (canonical: never `Unknown` of a known value).
    #[inline]
    pub const fn from_u16(v: u16) -> EtherType {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            0x8100 => EtherType::Vlan,
            0x88a8 => EtherType::ServiceVlan,
            v => EtherType::Unknown(v),
        }
    }
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        EtherType::from_u16(v)
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        t.to_u16()
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtherType::Ipv4 => f.write_str("IPv4"),
            EtherType::Arp => f.write_str("ARP"),
            EtherType::Ipv6 => f.write_str("IPv6"),
            EtherType::Vlan => f.write_str("802.1Q"),
            EtherType::ServiceVlan => f.write_str("802.1ad"),
            EtherType::Unknown(v) => write!(f, "0x{v:04x}"),
        }
    }
}

/// Byte offsets.
mod field {
    use core::ops::Range;
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// Present only when ETHERTYPE is 0x8100.
    pub const VLAN_TCI: Range<usize> = 14..16;
    pub const INNER_ETHERTYPE: Range<usize> = 16..18;
}

/// Length of an untagged header.
pub const HEADER_LEN: usize = 14;
/// Length of a header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = 18;

const WHAT: &str = "ethernet";

/// A read/write view of an Ethernet frame.
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

    /// Checks that the buffer holds the whole header, including the 802.1Q
    /// tag when the outer EtherType announces one.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        need(WHAT, b, HEADER_LEN)?;
        if self.has_vlan() {
            need("ethernet 802.1Q tag", b, VLAN_HEADER_LEN)?;
        }
        Ok(())
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole frame.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Destination MAC.
    #[inline]
    pub fn dst_addr(&self) -> Address {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        Address(a)
    }

    /// Source MAC.
    #[inline]
    pub fn src_addr(&self) -> Address {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        Address(a)
    }

    /// The EtherType at offset 12 ([`EtherType::Vlan`] for a tagged frame).
    #[inline]
    pub fn outer_ethertype(&self) -> EtherType {
        EtherType::from_u16(be16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// Whether the frame carries an 802.1Q (or 802.1ad) tag.
    #[inline]
    pub fn has_vlan(&self) -> bool {
        matches!(
            self.outer_ethertype(),
            EtherType::Vlan | EtherType::ServiceVlan
        )
    }

    /// The 802.1Q Tag Control Information (PCP, DEI, VID), if tagged.
    #[inline]
    pub fn vlan_tci(&self) -> Option<u16> {
        if !self.has_vlan() {
            return None;
        }
        get_be16(self.buffer.as_ref(), field::VLAN_TCI.start)
    }

    /// The 12-bit VLAN identifier, if tagged.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_tci().map(|t| t & 0x0fff)
    }

    /// The EtherType of the carried payload (after the tag, if any).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        if !self.has_vlan() {
            return self.outer_ethertype();
        }
        match get_be16(self.buffer.as_ref(), field::INNER_ETHERTYPE.start) {
            Some(t) => EtherType::from_u16(t),
            None => EtherType::Vlan,
        }
    }

    /// Header length: 14, or 18 with a tag.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.has_vlan() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// The payload (everything after the header, padding included).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let hl = self.header_len();
        self.buffer.as_ref().get(hl..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Overwrites the destination MAC in place (one 6-byte copy).
    #[inline]
    pub fn set_dst_addr(&mut self, addr: Address) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Overwrites the source MAC in place (one 6-byte copy).
    #[inline]
    pub fn set_src_addr(&mut self, addr: Address) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the EtherType of the payload: after the tag when the frame is
    /// tagged, else at offset 12. Does not add or remove a tag.
    #[inline]
    pub fn set_ethertype(&mut self, t: EtherType) {
        let r = if self.has_vlan() {
            field::INNER_ETHERTYPE
        } else {
            field::ETHERTYPE
        };
        if let Some(b) = self.buffer.as_mut().get_mut(r) {
            b.copy_from_slice(&t.to_u16().to_be_bytes());
        }
    }

    /// Sets the Tag Control Information of a tagged frame; does nothing on
    /// an untagged one.
    #[inline]
    pub fn set_vlan_tci(&mut self, tci: u16) {
        if self.has_vlan()
            && let Some(b) = self.buffer.as_mut().get_mut(field::VLAN_TCI)
        {
            b.copy_from_slice(&tci.to_be_bytes());
        }
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.buffer.as_mut().get_mut(hl..).unwrap_or(&mut [])
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source MAC.
    pub src: Address,
    /// Destination MAC.
    pub dst: Address,
    /// The VLAN identifier (0..=4095) of the 802.1Q tag, if any. Emitted with
    /// PCP 0 and DEI 0.
    pub vlan: Option<u16>,
    /// The EtherType of the payload (after the tag).
    pub ethertype: EtherType,
}

impl Repr {
    /// Parses a checked view.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            vlan: packet.vlan_id(),
            ethertype: packet.ethertype(),
        })
    }

    /// Header length this repr emits: 14, or 18 with a tag.
    #[inline]
    pub const fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Total frame length for a payload of `payload_len` bytes.
    #[inline]
    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        self.header_len() + payload_len
    }

    /// Writes the header into the start of `packet`.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::header_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let b = packet.buffer.as_mut();
        b[field::DESTINATION].copy_from_slice(&self.dst.0);
        b[field::SOURCE].copy_from_slice(&self.src.0);
        match self.vlan {
            Some(vid) => {
                b[field::ETHERTYPE].copy_from_slice(&EtherType::Vlan.to_u16().to_be_bytes());
                b[field::VLAN_TCI].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
                b[field::INNER_ETHERTYPE].copy_from_slice(&self.ethertype.to_u16().to_be_bytes());
            }
            None => {
                b[field::ETHERTYPE].copy_from_slice(&self.ethertype.to_u16().to_be_bytes());
            }
        }
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ethernet {} > {}", self.src, self.dst)?;
        if let Some(v) = self.vlan {
            write!(f, " vlan {v}")?;
        }
        write!(f, " type {}", self.ethertype)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    // An ARP request broadcast from 52:54:00:12:34:56, untagged, then the
    // same with a VLAN 100 tag (TCI 0x2064: PCP 1, VID 100).
    static UNTAGGED: [u8; 18] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06, 0xde,
        0xad, 0xbe, 0xef,
    ];
    static TAGGED: [u8; 20] = [
        0x00, 0x00, 0x5e, 0x00, 0x01, 0x33, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x81, 0x00, 0x20,
        0x64, 0x08, 0x00, 0x45, 0x00,
    ];

    #[test]
    fn kernel_captured_frames() {
        use crate::wire::pcap::captured;
        let f = captured::hex(captured::ECHO_REQUEST);
        let p = Packet::new_checked(&f[..]).unwrap();
        assert_eq!(p.dst_addr().to_string(), "f2:8c:7b:10:e2:01");
        assert_eq!(p.src_addr().to_string(), "6e:6c:d7:c9:94:1e");
        assert_eq!(
            (p.ethertype(), p.vlan_id(), p.payload().len()),
            (EtherType::Ipv4, None, 84)
        );
        let r = Repr::parse(&p).unwrap();
        let mut out = [0u8; 14];
        r.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out[..], f[..14]);
    }

    #[test]
    fn deconstruct_untagged() {
        let p = Packet::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(p.dst_addr(), Address::BROADCAST);
        assert_eq!(p.src_addr(), Address([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]));
        assert_eq!(p.ethertype(), EtherType::Arp);
        assert_eq!(p.vlan_id(), None);
        assert_eq!(p.header_len(), 14);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn deconstruct_tagged() {
        let p = Packet::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(p.dst_addr(), Address::vrrp_virtual(51));
        assert_eq!(p.outer_ethertype(), EtherType::Vlan);
        assert_eq!(p.vlan_tci(), Some(0x2064));
        assert_eq!(p.vlan_id(), Some(100));
        assert_eq!(p.ethertype(), EtherType::Ipv4);
        assert_eq!(p.header_len(), 18);
        assert_eq!(p.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn construct_untagged_and_tagged() {
        let repr = Repr {
            src: Address([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            dst: Address::BROADCAST,
            vlan: None,
            ethertype: EtherType::Arp,
        };
        let mut buf = [0u8; 18];
        buf[14..].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, UNTAGGED);

        let repr = Repr {
            src: Address([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            dst: Address::vrrp_virtual(0x33),
            vlan: Some(100),
            ethertype: EtherType::Ipv4,
        };
        let mut buf = [0u8; 20];
        buf[18..].copy_from_slice(&[0x45, 0x00]);
        let mut p = Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut p);
        // We emit PCP 0; the fixture has PCP 1.
        p.set_vlan_tci(0x2064);
        assert_eq!(buf, TAGGED);
    }

    #[test]
    fn truncated_frames_are_rejected() {
        assert_eq!(
            Packet::new_checked(&UNTAGGED[..13]).unwrap_err(),
            Error::Truncated {
                what: "ethernet",
                need: 14,
                have: 13
            }
        );
        assert_eq!(
            Packet::new_checked(&TAGGED[..17]).unwrap_err(),
            Error::Truncated {
                what: "ethernet 802.1Q tag",
                need: 18,
                have: 17
            }
        );
        // A bare header is fine: empty payload.
        assert_eq!(
            Packet::new_checked(&UNTAGGED[..14]).unwrap().payload(),
            &[] as &[u8]
        );
    }

    #[test]
    fn rewrite_macs_in_place_leaves_the_rest() {
        let mut buf = TAGGED;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        let node = Address([0x02, 0, 0, 0, 0, 7]);
        let me = Address([0x02, 0, 0, 0, 0, 1]);
        p.set_dst_addr(node);
        p.set_src_addr(me);
        assert_eq!(p.dst_addr(), node);
        assert_eq!(p.src_addr(), me);
        assert_eq!(buf[12..], TAGGED[12..]);
    }

    #[test]
    fn addresses() {
        assert_eq!(Address::vrrp_virtual(51).to_string(), "00:00:5e:00:01:33");
        assert_eq!(
            Address::vrrp_virtual_ipv6(1).to_string(),
            "00:00:5e:00:02:01"
        );
        assert_eq!(
            Address::ipv4_multicast(Ipv4Addr::new(224, 0, 0, 18)).to_string(),
            "01:00:5e:00:00:12"
        );
        // The high bit of the second octet is dropped (23 bits kept).
        assert_eq!(
            Address::ipv4_multicast(Ipv4Addr::new(239, 255, 1, 2)).to_string(),
            "01:00:5e:7f:01:02"
        );
        assert!(Address::BROADCAST.is_broadcast());
        assert!(Address::BROADCAST.is_multicast());
        assert!(Address::ipv4_multicast(Ipv4Addr::new(224, 0, 0, 18)).is_multicast());
        assert!(!Address::vrrp_virtual(51).is_multicast());
        assert!(Address::vrrp_virtual(51).is_unicast());
        assert!(Address([0x02, 0, 0, 0, 0, 1]).is_local());
        assert_eq!(
            "00:00:5E:00:01:33".parse::<Address>().unwrap(),
            Address::vrrp_virtual(51)
        );
        assert_eq!(
            "00-00-5e-00-01-33".parse::<Address>().unwrap(),
            Address::vrrp_virtual(51)
        );
        for bad in [
            "",
            "00:00:5e:00:01",
            "00:00:5e:00:01:33:00",
            "0:00:5e:00:01:33",
            "zz:00:5e:00:01:33",
            "+1:00:5e:00:01:33",
        ] {
            assert_eq!(
                bad.parse::<Address>().unwrap_err(),
                Error::BadText {
                    what: "ethernet address",
                    text: bad.to_string()
                },
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ethertype_values() {
        for (t, v) in [
            (EtherType::Ipv4, 0x0800),
            (EtherType::Arp, 0x0806),
            (EtherType::Ipv6, 0x86dd),
            (EtherType::Vlan, 0x8100),
            (EtherType::ServiceVlan, 0x88a8),
            (EtherType::Unknown(0x88cc), 0x88cc),
        ] {
            assert_eq!(u16::from(t), v);
            assert_eq!(EtherType::from(v), t);
        }
    }

    pub(crate) fn arb_address() -> impl Strategy<Value = Address> {
        any::<[u8; 6]>().prop_map(Address)
    }

    fn arb_repr() -> impl Strategy<Value = Repr> {
        (
            arb_address(),
            arb_address(),
            proptest::option::of(0u16..4096),
            any::<u16>().prop_map(EtherType::from),
        )
            .prop_filter(
                "an untagged frame cannot carry a tag's EtherType as payload type",
                |(_, _, v, t)| {
                    v.is_some() || !matches!(*t, EtherType::Vlan | EtherType::ServiceVlan)
                },
            )
            .prop_map(|(src, dst, vlan, ethertype)| Repr {
                src,
                dst,
                vlan,
                ethertype,
            })
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = vec![0u8; repr.buffer_len(payload.len())];
            let mut p = Packet::new_unchecked(&mut buf[..]);
            repr.emit(&mut p);
            p.payload_mut().copy_from_slice(&payload);
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p).unwrap(), repr);
            prop_assert_eq!(p.payload(), &payload[..]);
        }

        #[test]
        fn address_text_round_trip(a in arb_address()) {
            prop_assert_eq!(a.to_string().parse::<Address>().unwrap(), a);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.dst_addr(), p.src_addr(), p.outer_ethertype(), p.ethertype());
                let _ = (p.vlan_tci(), p.vlan_id(), p.header_len(), p.payload().len());
                let r = Repr::parse(&p).unwrap();
                prop_assert_eq!(r.header_len() + p.payload().len(), bytes.len());
            } else {
                prop_assert!(Repr::parse(&Packet::new_unchecked(&bytes[..])).is_err());
            }
            let mut copy = bytes.clone();
            if let Ok(mut p) = Packet::new_checked(&mut copy[..]) {
                p.set_dst_addr(Address::BROADCAST);
                p.set_src_addr(Address::UNSPECIFIED);
                p.set_ethertype(EtherType::Vlan);
                p.set_vlan_tci(1);
                let _ = p.payload_mut().len();
                let _ = (p.ethertype(), p.vlan_id(), p.payload().len());
            }
            let _ = String::from_utf8_lossy(&bytes).parse::<Address>();
        }
    }
}
