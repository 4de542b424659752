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
    /// Replaces the bits of `mask` in byte `at` with those of `bits`.
    #[inline]
    fn set_bits(&mut self, at: usize, mask: u8, bits: u8) {
        let b = &mut self.buffer.as_mut()[at];
        *b = (*b & !mask) | (bits & mask);
    }

    /// Sets the version.
    #[inline]
    pub fn set_version(&mut self, v: u8) {
        self.set_bits(field::VER_IHL, 0xf0, v << 4);
    }

    /// Sets IHL from a header length in bytes (must be a multiple of 4, ≤ 60).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        self.set_bits(field::VER_IHL, 0x0f, (len / 4) as u8);
    }

    /// Sets DSCP (6 bits).
    #[inline]
    pub fn set_dscp(&mut self, dscp: u8) {
        self.set_bits(field::DSCP_ECN, 0xfc, dscp << 2);
    }

    /// Sets ECN (2 bits).
    #[inline]
    pub fn set_ecn(&mut self, ecn: u8) {
        self.set_bits(field::DSCP_ECN, 0x03, ecn);
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
pub(crate) mod tests;
