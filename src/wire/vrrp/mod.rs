//! VRRP advertisements: VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798) over IPv4;
//! VRRPv3 over IPv6 is [`v6`].
//!
//! ```text
//! VRRPv2 (RFC 3768 §5.1)                  VRRPv3 (RFC 5798 §5.1)
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! v2: |   Auth Type   |   Adver Int   |          Checksum         |
//! v3: |(rsvd) |     Max Adver Int     |          Checksum         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (1)                        |
//! |                              ...                              |
//! |                         IP Address (n)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! v2 only: |               Authentication Data (1)                |
//!          |               Authentication Data (2)                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! * v2: "The Advertisement interval indicates the time interval (in seconds)
//!   between ADVERTISEMENTS." The checksum is "the 16-bit one's complement of
//!   the one's complement sum of the entire VRRP message starting with the
//!   version field" (RFC 3768 §5.3.8), with no pseudo-header. Auth type 0 is
//!   "No Authentication"; type 1 is RFC 2338's "Simple Text Password", whose
//!   8 bytes of Authentication Data are still decoded by tcpdump.
//! * v3: "The Maximum Advertisement Interval is a 12-bit field that indicates
//!   the time interval (in centiseconds) between ADVERTISEMENTS." (RFC 5798
//!   §5.2.7). "The checksum is the 16-bit one's complement of the one's
//!   complement sum of the entire VRRP message starting with the version
//!   field and a 'pseudo-header' [...]. The next header field in the
//!   'pseudo-header' should be set to 112 (decimal) for VRRP. For computing the
//!   checksum, the checksum field is set to zero." (§5.2.8). "rsvd: This field
//!   MUST be set to zero on transmission and ignored on reception." (§5.2.6)
//!
//! [`Packet::new_checked`] validates the version and that the whole message
//! (fixed header, every address and, for v2, the authentication data) is in the
//! buffer; after it no accessor panics. [`Repr::parse`] further checks the type,
//! the address count and the checksum.

use std::net::Ipv4Addr;

use serde::Serialize;

use super::bytes::be16;
use super::ipv4::Protocol;
use super::{Error, Result, checksum, need};

/// IP protocol number of VRRP (RFC 5798 §5.1.1.4).
pub const PROTOCOL: u8 = Protocol::Vrrp.to_u8();
/// The IPv4 multicast group adverts are sent to (RFC 5798 §5.1.1.2).
pub const MULTICAST_ADDR: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The TTL an advert is sent with and must arrive with (RFC 5798 §5.1.1.3).
pub const TTL: u8 = 255;
/// Length of the fixed header (version .. checksum).
pub const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data trailer.
pub const AUTH_DATA_LEN: usize = 8;
/// The only message type: ADVERTISEMENT.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Largest value of the v3 12-bit Max Adver Int field, in centiseconds.
pub const MAX_ADVER_INT_CS: u16 = 0x0fff;

/// v2 Auth Type 0: no authentication.
pub const AUTH_TYPE_NONE: u8 = 0;
/// v2 Auth Type 1: simple text password (RFC 2338 §5.3.6.1).
pub const AUTH_TYPE_SIMPLE_TEXT: u8 = 1;

const WHAT: &str = "vrrp";

mod field {
    pub type Field = core::ops::Range<usize>;
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v2 only.
    pub const AUTH_TYPE: usize = 4;
    /// v2 only, seconds.
    pub const ADVER_INT: usize = 5;
    /// v3 only: 4 bits reserved, 12 bits Max Adver Int (centiseconds).
    pub const RSVD_MAX_ADVER_INT: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const ADDRS: usize = 8;
}

/// The VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Version {
    /// VRRPv2, RFC 3768: intervals in whole seconds, checksum over the message only.
    V2,
    /// VRRPv3, RFC 5798: intervals in centiseconds, checksum with the IPv4 pseudo-header.
    V3,
}

impl Version {
    /// The value of the 4-bit version field.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// The version for a version-field value, if we speak it.
    pub const fn from_number(n: u8) -> Option<Version> {
        match n {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }
}

/// VRRPv2 authentication (RFC 3768 §5.3.6; type 1 from RFC 2338).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Type 0. The authentication data is zero on transmission and ignored on reception.
    None,
    /// Type 1: an 8-byte simple text password, zero padded.
    SimpleText([u8; AUTH_DATA_LEN]),
    /// Any other type (2 was IP AH in RFC 2338); the data is not kept.
    Unknown(u8),
}

impl Auth {
    /// The Auth Type field value.
    pub const fn auth_type(&self) -> u8 {
        match self {
            Auth::None => AUTH_TYPE_NONE,
            Auth::SimpleText(_) => AUTH_TYPE_SIMPLE_TEXT,
            Auth::Unknown(t) => *t,
        }
    }
}

/// Length of the whole VRRP message for `version` and `count` addresses.
pub const fn message_len(version: Version, count: usize) -> usize {
    let base = HEADER_LEN + 4 * count;
    match version {
        Version::V2 => base + AUTH_DATA_LEN,
        Version::V3 => base,
    }
}

/// A zero-copy view of a VRRP advertisement.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len); no accessor panics afterwards.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the fixed header, a version we speak, and the
    /// whole message that the version and address count announce.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        need(WHAT, buf, HEADER_LEN)?;
        let v = buf[field::VER_TYPE] >> 4;
        let version = Version::from_number(v).ok_or(Error::BadVersion {
            what: WHAT,
            value: v,
        })?;
        need(
            WHAT,
            buf,
            message_len(version, usize::from(buf[field::COUNT])),
        )
    }

    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (2 or 3 after `new_checked`).
    pub fn version_number(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    /// The version; `V3` is only returned for version 3, everything else reads as `V2`
    /// (impossible after `new_checked`).
    pub fn version(&self) -> Version {
        if self.version_number() == 3 {
            Version::V3
        } else {
            Version::V2
        }
    }

    /// The type field (1 = ADVERTISEMENT).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    /// The Virtual Router ID.
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    /// The sender's priority (0 = the master stops participating).
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// Count IP Addrs.
    pub fn addr_count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// v2 Auth Type (byte 4; in v3 this byte holds rsvd and the top of Max Adver Int).
    pub fn auth_type(&self) -> u8 {
        self.buffer.as_ref()[field::AUTH_TYPE]
    }

    /// v2 Adver Int in seconds (byte 5).
    pub fn adver_int(&self) -> u8 {
        self.buffer.as_ref()[field::ADVER_INT]
    }

    /// v3 rsvd (top 4 bits of bytes 4..6).
    pub fn reserved(&self) -> u8 {
        self.buffer.as_ref()[field::RSVD_MAX_ADVER_INT.start] >> 4
    }

    /// v3 Max Adver Int in centiseconds (low 12 bits of bytes 4..6).
    pub fn max_adver_int(&self) -> u16 {
        be16(self.buffer.as_ref(), field::RSVD_MAX_ADVER_INT) & MAX_ADVER_INT_CS
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Length of the message as announced by the version and address count.
    pub fn message_len(&self) -> usize {
        message_len(self.version(), usize::from(self.addr_count()))
    }

    /// The `i`th address, or `None` past the count.
    pub fn addr(&self, i: usize) -> Option<Ipv4Addr> {
        if i >= usize::from(self.addr_count()) {
            return None;
        }
        let at = field::ADDRS + 4 * i;
        let b = self.buffer.as_ref().get(at..at + 4)?;
        Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }

    /// All announced addresses, in order.
    pub fn addrs(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        (0..usize::from(self.addr_count())).filter_map(|i| self.addr(i))
    }

    /// The v2 Authentication Data (`None` for v3).
    pub fn auth_data(&self) -> Option<[u8; AUTH_DATA_LEN]> {
        if self.version() != Version::V2 {
            return None;
        }
        let at = field::ADDRS + 4 * usize::from(self.addr_count());
        let b = self.buffer.as_ref().get(at..at + AUTH_DATA_LEN)?;
        let mut out = [0u8; AUTH_DATA_LEN];
        out.copy_from_slice(b);
        Some(out)
    }

    /// Computes the checksum the message should carry. `src`/`dst` are the IPv4
    /// addresses of the carrying packet; only v3 uses them (pseudo-header).
    fn compute_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let buf = self.buffer.as_ref();
        let len = self.message_len().min(buf.len());
        let msg = &buf[..len];
        let mut sum = match self.version() {
            Version::V2 => 0,
            // len <= 8 + 4*255 + 8, always fits in u16.
            Version::V3 => checksum::pseudo_header_v4(src, dst, PROTOCOL, len as u16),
        };
        // Sum with the checksum field read as zero.
        sum = checksum::accumulate(sum, &msg[..field::CHECKSUM.start.min(len)]);
        if len > field::CHECKSUM.end {
            sum = checksum::accumulate(sum, &msg[field::CHECKSUM.end..]);
        }
        checksum::finish(sum)
    }

    /// Whether the checksum verifies (v2: message only; v3: with the pseudo-header).
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.compute_checksum(src, dst) == self.checksum()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version and type.
    pub fn set_version_type(&mut self, version: Version, msg_type: u8) {
        self.buffer.as_mut()[field::VER_TYPE] = (version.number() << 4) | (msg_type & 0x0f);
    }

    /// Sets the Virtual Router ID.
    pub fn set_vrid(&mut self, vrid: u8) {
        self.buffer.as_mut()[field::VRID] = vrid;
    }

    /// Sets the priority.
    pub fn set_priority(&mut self, priority: u8) {
        self.buffer.as_mut()[field::PRIORITY] = priority;
    }

    /// Sets Count IP Addrs.
    pub fn set_addr_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::COUNT] = count;
    }

    /// Sets the v2 Auth Type.
    pub fn set_auth_type(&mut self, auth_type: u8) {
        self.buffer.as_mut()[field::AUTH_TYPE] = auth_type;
    }

    /// Sets the v2 Adver Int (seconds).
    pub fn set_adver_int(&mut self, secs: u8) {
        self.buffer.as_mut()[field::ADVER_INT] = secs;
    }

    /// Sets the v3 rsvd (zero) and Max Adver Int (centiseconds, masked to 12 bits).
    pub fn set_max_adver_int(&mut self, centis: u16) {
        let v = (centis & MAX_ADVER_INT_CS).to_be_bytes();
        self.buffer.as_mut()[field::RSVD_MAX_ADVER_INT].copy_from_slice(&v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the `i`th address (ignored past the buffer).
    pub fn set_addr(&mut self, i: usize, addr: Ipv4Addr) {
        let at = field::ADDRS + 4 * i;
        if let Some(b) = self.buffer.as_mut().get_mut(at..at + 4) {
            b.copy_from_slice(&addr.octets());
        }
    }

    /// Sets the v2 Authentication Data (after the addresses; ignored for v3).
    pub fn set_auth_data(&mut self, data: [u8; AUTH_DATA_LEN]) {
        if self.version() != Version::V2 {
            return;
        }
        let at = field::ADDRS + 4 * usize::from(self.addr_count());
        if let Some(b) = self.buffer.as_mut().get_mut(at..at + AUTH_DATA_LEN) {
            b.copy_from_slice(&data);
        }
    }

    /// Computes and stores the checksum.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let c = self.compute_checksum(src, dst);
        self.set_checksum(c);
    }
}

/// A parsed, validated advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Protocol version.
    pub version: Version,
    /// Virtual Router ID.
    pub vrid: u8,
    /// Sender priority; 0 means the master stops participating.
    pub priority: u8,
    /// The advertisement interval in the version's unit: whole seconds for v2
    /// (0..=255), centiseconds for v3 (0..=4095).
    pub adver_int: u16,
    /// v2 authentication. Always [`Auth::None`] for v3.
    pub auth: Auth,
    /// The virtual addresses, 1..=255 of them.
    pub addrs: Vec<Ipv4Addr>,
}

impl Repr {
    /// Parses a checked packet: type must be ADVERTISEMENT, at least one address,
    /// and the checksum must verify. `src`/`dst` are the carrying IPv4 packet's
    /// addresses (used by the v3 pseudo-header only).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>, src: Ipv4Addr, dst: Ipv4Addr) -> Result<Repr> {
        packet.check_len()?;
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(Error::BadField {
                what: WHAT,
                field: "type",
                value: u64::from(packet.msg_type()),
            });
        }
        if packet.addr_count() == 0 {
            return Err(Error::BadField {
                what: WHAT,
                field: "count",
                value: 0,
            });
        }
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum { what: WHAT });
        }
        let version = packet.version();
        let (adver_int, auth) = match version {
            Version::V2 => {
                let auth = match packet.auth_type() {
                    AUTH_TYPE_NONE => Auth::None,
                    AUTH_TYPE_SIMPLE_TEXT => {
                        Auth::SimpleText(packet.auth_data().unwrap_or_default())
                    }
                    t => Auth::Unknown(t),
                };
                (u16::from(packet.adver_int()), auth)
            }
            Version::V3 => (packet.max_adver_int(), Auth::None),
        };
        Ok(Repr {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            adver_int,
            auth,
            addrs: packet.addrs().collect(),
        })
    }

    /// Bytes that [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        message_len(self.version, self.addrs.len())
    }

    /// Checks that the fields fit the wire format.
    fn check(&self) -> Result<()> {
        if self.addrs.is_empty() || self.addrs.len() > 255 {
            return Err(Error::BadField {
                what: WHAT,
                field: "count",
                value: self.addrs.len() as u64,
            });
        }
        let max = match self.version {
            Version::V2 => u16::from(u8::MAX),
            Version::V3 => MAX_ADVER_INT_CS,
        };
        if self.adver_int > max {
            return Err(Error::BadField {
                what: WHAT,
                field: "adver_int",
                value: u64::from(self.adver_int),
            });
        }
        if self.version == Version::V3 && self.auth != Auth::None {
            return Err(Error::BadField {
                what: WHAT,
                field: "auth_type",
                value: u64::from(self.auth.auth_type()),
            });
        }
        Ok(())
    }

    /// Writes the message into `packet` (which must hold at least
    /// [`buffer_len`](Self::buffer_len) bytes) and fills the checksum.
    /// Reserved fields and v2 auth data for auth type 0 are written as zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<()> {
        self.check()?;
        need(WHAT, packet.buffer.as_ref(), self.buffer_len())?;
        packet.set_version_type(self.version, TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        // check() bounds the count to 1..=255.
        packet.set_addr_count(self.addrs.len() as u8);
        match self.version {
            Version::V2 => {
                packet.set_auth_type(self.auth.auth_type());
                packet.set_adver_int(self.adver_int as u8);
            }
            Version::V3 => packet.set_max_adver_int(self.adver_int),
        }
        packet.set_checksum(0);
        for (i, a) in self.addrs.iter().enumerate() {
            packet.set_addr(i, *a);
        }
        let data = match self.auth {
            Auth::SimpleText(d) => d,
            Auth::None | Auth::Unknown(_) => [0; AUTH_DATA_LEN],
        };
        packet.set_auth_data(data);
        packet.fill_checksum(src, dst);
        Ok(())
    }

    /// Emits into a new buffer of exactly [`buffer_len`](Self::buffer_len) bytes.
    pub fn to_bytes(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Result<Vec<u8>> {
        self.check()?;
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut buf[..]), src, dst)?;
        Ok(buf)
    }
}

pub mod v6;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tcpdump_tests;
