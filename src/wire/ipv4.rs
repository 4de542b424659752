//! IPv4 packets (RFC 791), with options and the header checksum.
//!
//! RFC 791 §3.1:
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |Type of Service|          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |Flags|      Fragment Offset    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Source Address                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options                    |    Padding    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! The Type of Service octet is DSCP (6 bits) and ECN (2 bits) since RFC 2474
//! and RFC 3168.

use core::fmt;
use core::str::FromStr;
use std::net::Ipv4Addr;

use super::bytes::be16;
use super::checksum;
use super::{Error, Result, need};

/// The IP protocol number (IANA "Assigned Internet Protocol Numbers").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// 1.
    Icmp,
    /// 6.
    Tcp,
    /// 17.
    Udp,
    /// 112, VRRP (RFC 5798 §5.1.1.4).
    Vrrp,
    /// 253, "Use for experimentation and testing" (RFC 3692): the proxyha heartbeat.
    Heartbeat,
    /// Anything else.
    Unknown(u8),
}

impl Protocol {
    /// The number on the wire.
    #[inline]
    pub const fn to_u8(self) -> u8 {
        match self {
            Protocol::Icmp => 1,
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Vrrp => 112,
            Protocol::Heartbeat => 253,
            Protocol::Unknown(v) => v,
        }
    }

    /// The protocol for a number (canonical: never `Unknown` of a known value).
    #[inline]
    pub const fn from_u8(v: u8) -> Protocol {
        match v {
            1 => Protocol::Icmp,
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            112 => Protocol::Vrrp,
            253 => Protocol::Heartbeat,
            v => Protocol::Unknown(v),
        }
    }
}

impl From<u8> for Protocol {
    fn from(v: u8) -> Self {
        Protocol::from_u8(v)
    }
}

impl From<Protocol> for u8 {
    fn from(p: Protocol) -> u8 {
        p.to_u8()
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Icmp => f.write_str("ICMP"),
            Protocol::Tcp => f.write_str("TCP"),
            Protocol::Udp => f.write_str("UDP"),
            Protocol::Vrrp => f.write_str("VRRP"),
            Protocol::Heartbeat => f.write_str("heartbeat"),
            Protocol::Unknown(v) => write!(f, "proto {v}"),
        }
    }
}

/// Byte offsets.
mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Largest header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;
/// Largest options field.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

const WHAT: &str = "ipv4";

/// A read/write view of an IPv4 packet.
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

    /// Checks the version, that IHL ≥ 5, that the buffer holds the header,
    /// and that `header_len ≤ total_len ≤ buffer length`. A buffer longer
    /// than the total length (Ethernet padding) is accepted; [`Packet::payload`]
    /// stops at the total length.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        need(WHAT, b, HEADER_LEN)?;
        if self.version() != 4 {
            return Err(Error::BadVersion {
                what: WHAT,
                value: self.version(),
            });
        }
        // RFC 791: "the minimum value for a correct header is 5".
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::BadLength {
                what: "ipv4 header length",
                value: hl,
            });
        }
        need("ipv4 header", b, hl)?;
        let total = usize::from(self.total_len());
        if total < hl {
            return Err(Error::BadLength {
                what: "ipv4 total length",
                value: total,
            });
        }
        need("ipv4 total length", b, total)
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole buffer (may extend past the total length).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Version field (4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated Services Code Point (upper 6 bits of the TOS octet).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit Congestion Notification (lower 2 bits of the TOS octet).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total Length: header plus data, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }

    /// The DF (don't fragment) flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & 0x4000 != 0
    }

    /// The MF (more fragments) flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & 0x2000 != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (be16(self.buffer.as_ref(), field::FLG_OFF) & 0x1fff) << 3
    }

    /// Whether this is a fragment (MF set or a non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLG_OFF) & 0x3fff != 0
    }

    /// Time to Live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> Protocol {
        Protocol::from_u8(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The options (bytes 20 .. header length); empty when IHL is 5.
    #[inline]
    pub fn options(&self) -> &[u8] {
        let hl = self.header_len();
        self.buffer.as_ref().get(HEADER_LEN..hl).unwrap_or(&[])
    }

    /// RFC 791: "The checksum field is the 16 bit one's complement of the
    /// one's complement sum of all 16 bit words in the header." Verifying
    /// sums the header including the field and expects zero.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let hl = self.header_len();
        match self.buffer.as_ref().get(..hl) {
            Some(h) => checksum::checksum(h) == 0,
            None => false,
        }
    }

    /// The data (header length .. total length), without link-layer padding.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let (hl, total) = (self.header_len(), usize::from(self.total_len()));
        self.buffer.as_ref().get(hl..total).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets IHL from a header length in bytes (must be a multiple of 4, ≤ 60).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Sets DSCP (6 bits).
    #[inline]
    pub fn set_dscp(&mut self, dscp: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (dscp << 2);
    }

    /// Sets ECN (2 bits).
    #[inline]
    pub fn set_ecn(&mut self, ecn: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (ecn & 0x03);
    }

    /// Sets Total Length.
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets Identification.
    #[inline]
    pub fn set_ident(&mut self, id: u16) {
        self.buffer.as_mut()[field::IDENT].copy_from_slice(&id.to_be_bytes());
    }

    /// Sets flags and fragment offset at once (offset in bytes, multiple of 8).
    #[inline]
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let v =
            (u16::from(dont_frag) << 14) | (u16::from(more_frags) << 13) | ((offset >> 3) & 0x1fff);
        self.buffer.as_mut()[field::FLG_OFF].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets Time to Live.
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets Protocol.
    #[inline]
    pub fn set_protocol(&mut self, p: Protocol) {
        self.buffer.as_mut()[field::PROTOCOL] = p.to_u8();
    }

    /// Sets the Header Checksum field as is.
    #[inline]
    pub fn set_checksum(&mut self, c: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Computes and stores the header checksum: RFC 791, "For purposes of
    /// computing the checksum, the value of the checksum field is zero."
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = match self.buffer.as_ref().get(..hl) {
            Some(h) => checksum::checksum(h),
            None => return,
        };
        self.set_checksum(c);
    }

    /// The options, mutably.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..hl)
            .unwrap_or(&mut [])
    }

    /// The data, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, total) = (self.header_len(), usize::from(self.total_len()));
        self.buffer.as_mut().get_mut(hl..total).unwrap_or(&mut [])
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// Raw IPv4 options (up to 40 bytes, a multiple of 4), stored inline so that
/// [`Repr`] stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Options {
    len: u8,
    bytes: [u8; MAX_OPTIONS_LEN],
}

impl Options {
    /// No options.
    pub const NONE: Options = Options {
        len: 0,
        bytes: [0; MAX_OPTIONS_LEN],
    };

    /// Options from raw bytes: RFC 791 requires the header to end on a 32-bit
    /// boundary, so the length must be a multiple of 4 and at most 40.
    pub fn new(raw: &[u8]) -> Result<Options> {
        if raw.len() > MAX_OPTIONS_LEN || !raw.len().is_multiple_of(4) {
            return Err(Error::BadLength {
                what: "ipv4 options",
                value: raw.len(),
            });
        }
        let mut bytes = [0; MAX_OPTIONS_LEN];
        bytes[..raw.len()].copy_from_slice(raw);
        Ok(Options {
            len: raw.len() as u8,
            bytes,
        })
    }

    /// The raw option bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there are no options.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Options {
    fn default() -> Self {
        Options::NONE
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Options({:02x?})", self.as_bytes())
    }
}

/// A parsed, unfragmented IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Payload protocol.
    pub protocol: Protocol,
    /// Time to Live.
    pub ttl: u8,
    /// DSCP, 0..=63.
    pub dscp: u8,
    /// ECN, 0..=3.
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// The DF flag.
    pub dont_frag: bool,
    /// Length of the data after the header.
    pub payload_len: usize,
    /// Header options.
    pub options: Options,
}

impl Repr {
    /// Parses a view: checks lengths, verifies the header checksum and
    /// rejects fragments (a `Repr` describes a whole datagram).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum { what: WHAT });
        }
        if packet.more_frags() {
            return Err(Error::BadField {
                what: WHAT,
                field: "more-fragments flag",
                value: 1,
            });
        }
        if packet.frag_offset() != 0 {
            return Err(Error::BadField {
                what: WHAT,
                field: "fragment offset",
                value: u64::from(packet.frag_offset()),
            });
        }
        Ok(Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            protocol: packet.protocol(),
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            payload_len: packet.payload().len(),
            options: Options::new(packet.options())?,
        })
    }

    /// Header length this repr emits (20 plus options).
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// Header plus payload.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Writes the header (checksum filled) into the start of `packet`.
    /// The payload is left to the caller.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::header_len`], or if
    /// `header_len + payload_len` exceeds 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let total =
            u16::try_from(self.buffer_len()).expect("IPv4 datagram longer than 65535 bytes");
        let b = packet.buffer.as_mut();
        b[field::VER_IHL] = 0x40 | (self.header_len() / 4) as u8;
        b[field::DSCP_ECN] = (self.dscp << 2) | (self.ecn & 0x03);
        packet.set_total_len(total);
        packet.set_ident(self.ident);
        packet.set_frag(self.dont_frag, false, 0);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
        packet.buffer.as_mut()[HEADER_LEN..self.header_len()]
            .copy_from_slice(self.options.as_bytes());
        packet.fill_checksum();
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IPv4 {} > {} {} ttl {} len {}",
            self.src, self.dst, self.protocol, self.ttl, self.payload_len
        )
    }
}

/// An IPv4 address with a prefix length, e.g. `198.18.0.250/24`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    address: Ipv4Addr,
    prefix_len: u8,
}

impl Cidr {
    /// An address and prefix length 0..=32.
    pub fn new(address: Ipv4Addr, prefix_len: u8) -> Result<Cidr> {
        if prefix_len > 32 {
            return Err(Error::BadField {
                what: "ipv4 cidr",
                field: "prefix length",
                value: u64::from(prefix_len),
            });
        }
        Ok(Cidr {
            address,
            prefix_len,
        })
    }

    /// The address as written (host bits kept).
    #[inline]
    pub const fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The prefix length.
    #[inline]
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The netmask, e.g. 255.255.255.0 for /24.
    #[inline]
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask_bits())
    }

    fn mask_bits(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix_len))
            .unwrap_or(0)
    }

    /// The network address (host bits cleared).
    #[inline]
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) & self.mask_bits())
    }

    /// The directed broadcast address (host bits set).
    #[inline]
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) | !self.mask_bits())
    }

    /// Whether `addr` lies in this prefix.
    #[inline]
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        (u32::from(addr) ^ u32::from(self.address)) & self.mask_bits() == 0
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

impl FromStr for Cidr {
    type Err = Error;

    /// Parses `a.b.c.d/len`; the prefix length is required.
    fn from_str(s: &str) -> Result<Cidr> {
        let bad = || Error::BadText {
            what: "ipv4 cidr",
            text: s.to_string(),
        };
        let (a, l) = s.split_once('/').ok_or_else(bad)?;
        let address: Ipv4Addr = a.parse().map_err(|_| bad())?;
        if l.is_empty() || l.len() > 2 || !l.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix_len: u8 = l.parse().map_err(|_| bad())?;
        Cidr::new(address, prefix_len)
    }
}

impl TryFrom<String> for Cidr {
    type Error = Error;
    fn try_from(s: String) -> Result<Cidr> {
        s.parse()
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The worked example of Wikipedia's "IPv4 header checksum" article: a
    /// UDP datagram 192.168.0.1 -> 192.168.0.199 (total length 115, DF,
    /// TTL 64) with checksum 0xb861. Kernel captures are in `pcap::captured`.
    /// The 95 payload bytes are not part of the fixture; tests pad zeros.
    static CAPTURED_HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    fn captured_packet() -> Vec<u8> {
        let mut v = CAPTURED_HEADER.to_vec();
        v.resize(0x73, 0);
        v
    }

    /// An IGMPv2 report from 198.18.0.7 to 224.0.0.22 with the Router Alert
    /// option (RFC 2113: 0x94 0x04 0x00 0x00), IHL 6, TOS 0xc0, TTL 1.
    /// Checksum 0x3de8 computed independently (Python).
    static WITH_OPTIONS: [u8; 32] = [
        0x46, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02, 0x3d, 0xe8, 198, 18, 0, 7, 224,
        0, 0, 22, 0x94, 0x04, 0x00, 0x00, 0x16, 0x00, 0xfa, 0x04, 0xe0, 0x00, 0x00, 0x16,
    ];

    use crate::wire::pcap::captured;

    /// The IPv4 packet inside a captured Ethernet frame.
    fn ip_of(frame_hex: &str) -> Vec<u8> {
        captured::hex(frame_hex)[14..].to_vec()
    }

    #[test]
    fn kernel_captured_echo_request() {
        let buf = ip_of(captured::ECHO_REQUEST);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            (p.header_len(), p.total_len(), p.ident(), p.ttl()),
            (20, 84, 8, 64)
        );
        assert!(p.dont_frag() && !p.is_fragment());
        assert_eq!(p.protocol(), Protocol::Icmp);
        assert_eq!(p.checksum(), 0xac79);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(198, 18, 1, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(198, 18, 1, 2));
        assert_eq!(p.payload().len(), 64);
        let repr = Repr::parse(&p).unwrap();
        // Our emit reproduces the kernel's header byte for byte, checksum included.
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out[..20], buf[..20]);

        let reply = ip_of(captured::ECHO_REPLY);
        let p = Packet::new_checked(&reply[..]).unwrap();
        assert_eq!(
            (p.checksum(), p.ident(), p.dont_frag()),
            (0x8828, 25689, false)
        );
        let repr = Repr::parse(&p).unwrap();
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out[..20], reply[..20]);
    }

    #[test]
    fn kernel_captured_record_route_options() {
        let buf = ip_of(captured::ECHO_REQUEST_RR);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.header_len(), 60);
        assert_eq!(p.total_len(), 124);
        assert_eq!(p.checksum(), 0xb32d);
        assert!(p.verify_checksum());
        // NOP, then RR: type 7, length 39, pointer 8, first slot 198.18.1.1.
        assert_eq!(p.options()[..8], [0x01, 0x07, 0x27, 0x08, 198, 18, 1, 1]);
        assert_eq!(p.options().len(), 40);
        assert_eq!(p.payload().len(), 64);
        assert_eq!(p.payload()[0], 8); // ICMP echo request
        let repr = Repr::parse(&p).unwrap();
        assert_eq!(repr.options.len(), 40);
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out[..60], buf[..60]);
        // One flipped bit anywhere in the header breaks the checksum.
        for i in 0..60 {
            let mut b = buf.clone();
            b[i] ^= 0x10;
            if let Ok(p) = Packet::new_checked(&b[..]) {
                assert!(!p.verify_checksum(), "bit flip at {i} not detected");
            }
        }
    }

    #[test]
    fn deconstruct_captured_header() {
        let buf = captured_packet();
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 115);
        assert_eq!(p.ident(), 0);
        assert!(p.dont_frag());
        assert!(!p.more_frags());
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), Protocol::Udp);
        assert_eq!(p.checksum(), 0xb861);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
        assert_eq!(p.options(), &[] as &[u8]);
        assert_eq!(p.payload().len(), 95);
    }

    #[test]
    fn construct_captured_header() {
        let repr = Repr {
            src: Ipv4Addr::new(192, 168, 0, 1),
            dst: Ipv4Addr::new(192, 168, 0, 199),
            protocol: Protocol::Udp,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: true,
            payload_len: 95,
            options: Options::NONE,
        };
        let mut buf = vec![0xaa; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf[..20], CAPTURED_HEADER);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&captured_packet()[..]).unwrap()).unwrap(),
            repr
        );
    }

    #[test]
    fn options_deconstruct_and_construct() {
        let p = Packet::new_checked(&WITH_OPTIONS[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.dscp(), 48);
        assert_eq!(p.ecn(), 0);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &WITH_OPTIONS[24..]);
        assert_eq!(p.protocol(), Protocol::Unknown(2));
        assert!(p.verify_checksum());
        let repr = Repr::parse(&p).unwrap();
        assert_eq!(repr.options.as_bytes(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(repr.payload_len, 8);

        let mut buf = [0u8; 32];
        buf[24..].copy_from_slice(&WITH_OPTIONS[24..]);
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, WITH_OPTIONS);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut buf = WITH_OPTIONS.to_vec();
        buf.extend_from_slice(&[0; 14]);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload(), &WITH_OPTIONS[24..]);
    }

    #[test]
    fn bad_headers_name_what_was_wrong() {
        let good = captured_packet();
        assert_eq!(
            Packet::new_checked(&good[..19]).unwrap_err(),
            Error::Truncated {
                what: "ipv4",
                need: 20,
                have: 19
            }
        );
        let mut b = good.clone();
        b[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadVersion {
                what: "ipv4",
                value: 6
            }
        );
        b[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadLength {
                what: "ipv4 header length",
                value: 16
            }
        );
        b[0] = 0x4f;
        assert_eq!(
            Packet::new_checked(&b[..40]).unwrap_err(),
            Error::Truncated {
                what: "ipv4 header",
                need: 60,
                have: 40
            }
        );
        let mut b = good.clone();
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadLength {
                what: "ipv4 total length",
                value: 19
            }
        );
        assert_eq!(
            Packet::new_checked(&good[..100]).unwrap_err(),
            Error::Truncated {
                what: "ipv4 total length",
                need: 115,
                have: 100
            }
        );
        let mut b = good.clone();
        b[10] ^= 1;
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap_err(),
            Error::BadChecksum { what: "ipv4" }
        );
    }

    #[test]
    fn fragments_are_seen_but_not_parsed() {
        let mut b = captured_packet();
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_frag(false, true, 0);
        p.fill_checksum();
        assert!(p.is_fragment() && p.more_frags());
        assert_eq!(
            Repr::parse(&p).unwrap_err(),
            Error::BadField {
                what: "ipv4",
                field: "more-fragments flag",
                value: 1
            }
        );
        p.set_frag(false, false, 1480);
        p.fill_checksum();
        assert_eq!(p.frag_offset(), 1480);
        assert_eq!(
            Repr::parse(&p).unwrap_err(),
            Error::BadField {
                what: "ipv4",
                field: "fragment offset",
                value: 1480
            }
        );
    }

    #[test]
    fn options_must_be_whole_words() {
        assert!(Options::new(&[1, 1, 1, 0]).is_ok());
        assert_eq!(
            Options::new(&[1, 1, 1]).unwrap_err(),
            Error::BadLength {
                what: "ipv4 options",
                value: 3
            }
        );
        assert_eq!(
            Options::new(&[0; 44]).unwrap_err(),
            Error::BadLength {
                what: "ipv4 options",
                value: 44
            }
        );
    }

    #[test]
    fn cidr() {
        let c: Cidr = "198.18.0.250/24".parse().unwrap();
        assert_eq!(c.address(), Ipv4Addr::new(198, 18, 0, 250));
        assert_eq!(c.prefix_len(), 24);
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(c.network(), Ipv4Addr::new(198, 18, 0, 0));
        assert_eq!(c.broadcast(), Ipv4Addr::new(198, 18, 0, 255));
        assert!(c.contains(Ipv4Addr::new(198, 18, 0, 1)));
        assert!(!c.contains(Ipv4Addr::new(198, 18, 1, 1)));
        assert_eq!(c.to_string(), "198.18.0.250/24");
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(all.netmask(), Ipv4Addr::UNSPECIFIED);
        let host: Cidr = "198.18.0.250/32".parse().unwrap();
        assert!(host.contains(Ipv4Addr::new(198, 18, 0, 250)));
        assert!(!host.contains(Ipv4Addr::new(198, 18, 0, 251)));
        assert_eq!(
            "198.18.0.250/33".parse::<Cidr>().unwrap_err(),
            Error::BadField {
                what: "ipv4 cidr",
                field: "prefix length",
                value: 33
            }
        );
        for bad in [
            "198.18.0.250",
            "198.18.0.250/",
            "198.18.0/24",
            "198.18.0.250/+4",
            "198.18.0.250/024",
            "x/24",
        ] {
            assert_eq!(
                bad.parse::<Cidr>().unwrap_err(),
                Error::BadText {
                    what: "ipv4 cidr",
                    text: bad.to_string()
                },
                "{bad:?}"
            );
        }
    }

    #[test]
    fn protocol_numbers() {
        for (p, v) in [
            (Protocol::Icmp, 1),
            (Protocol::Tcp, 6),
            (Protocol::Udp, 17),
            (Protocol::Vrrp, 112),
            (Protocol::Heartbeat, 253),
            (Protocol::Unknown(89), 89),
        ] {
            assert_eq!(u8::from(p), v);
            assert_eq!(Protocol::from(v), p);
        }
    }

    pub(crate) fn arb_ipv4() -> impl Strategy<Value = Ipv4Addr> {
        any::<u32>().prop_map(Ipv4Addr::from)
    }

    fn arb_repr() -> impl Strategy<Value = Repr> {
        (
            (
                arb_ipv4(),
                arb_ipv4(),
                any::<u8>().prop_map(Protocol::from),
                any::<u8>(),
            ),
            (0u8..64, 0u8..4, any::<u16>(), any::<bool>()),
            0usize..200,
            (0usize..=10).prop_flat_map(|words| proptest::collection::vec(any::<u8>(), words * 4)),
        )
            .prop_map(
                |((src, dst, protocol, ttl), (dscp, ecn, ident, dont_frag), payload_len, opts)| {
                    Repr {
                        src,
                        dst,
                        protocol,
                        ttl,
                        dscp,
                        ecn,
                        ident,
                        dont_frag,
                        payload_len,
                        options: Options::new(&opts).unwrap(),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr()) {
            let mut buf = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.verify_checksum());
            prop_assert_eq!(Repr::parse(&p).unwrap(), repr);
        }

        #[test]
        fn cidr_text_round_trip(a in arb_ipv4(), len in 0u8..=32) {
            let c = Cidr::new(a, len).unwrap();
            prop_assert_eq!(c.to_string().parse::<Cidr>().unwrap(), c);
            prop_assert!(c.contains(a));
            prop_assert!(c.contains(c.network()) && c.contains(c.broadcast()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..80), fix_version in any::<bool>()) {
            if fix_version && !bytes.is_empty() {
                // Most random first bytes are not version 4; steer half the cases in.
                bytes[0] = 0x40 | (bytes[0] & 0x0f);
                if bytes.len() >= 4 {
                    let l = bytes.len() as u16;
                    let t = u16::from_be_bytes([bytes[2], bytes[3]]) % (l + 1);
                    bytes[2..4].copy_from_slice(&t.to_be_bytes());
                }
            }
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.version(), p.header_len(), p.dscp(), p.ecn(), p.total_len(), p.ident());
                let _ = (p.dont_frag(), p.more_frags(), p.frag_offset(), p.is_fragment(), p.ttl());
                let _ = (p.protocol(), p.checksum(), p.src_addr(), p.dst_addr(), p.verify_checksum());
                prop_assert_eq!(p.header_len() + p.payload().len(), usize::from(p.total_len()));
                prop_assert_eq!(p.options().len(), p.header_len() - 20);
                let _ = Repr::parse(&p);
            } else {
                prop_assert!(Repr::parse(&Packet::new_unchecked(&bytes[..])).is_err());
            }
            let mut copy = bytes.clone();
            if let Ok(mut p) = Packet::new_checked(&mut copy[..]) {
                p.fill_checksum();
                prop_assert!(p.verify_checksum());
                let _ = (p.options_mut().len(), p.payload_mut().len());
                // Setters that break the layout must not make accessors panic.
                p.set_header_len(60);
                p.set_total_len(u16::MAX);
                let _ = (p.options().len(), p.payload().len(), p.verify_checksum());
                p.fill_checksum();
            }
        }
    }
}
