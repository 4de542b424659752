//! The protocol-253 heartbeat message: our own format, version 1.
//!
//! The byte layout is documented in `docs/heartbeat.md`; the offsets below
//! (`mod field`) are the same table. All integers are big-endian.
//!
//! A message is a 76-byte fixed header, the node name (0..=32 bytes of
//! UTF-8), an optional membership announcement (flag `ANNOUNCE`) and an
//! optional HMAC-SHA256 trailer (flag `AUTH`) over every byte before it.
//!
//! [`Packet::new_checked`] checks magic, version and every length, after
//! which no accessor panics. [`Repr::parse`] also checks every value
//! (message type, role, states, name UTF-8, load, port bitmap, reserved
//! bytes). The trailer is not part of [`Repr`]: it is written by
//! [`Repr::emit`] when given a key, and checked by [`Packet::verify`].

use std::net::{Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::bytes::{be16, be32, be64};
use super::ipv4::Protocol;
use super::{Error, Result, need};

const WHAT: &str = "heartbeat";

/// The IP protocol number heartbeats travel on (IANA: "use for
/// experimentation and testing", RFC 3692), as in the original Proxy HA.
pub const IP_PROTOCOL: u8 = Protocol::Heartbeat.to_u8();
/// The first four bytes of every heartbeat: ASCII `PXHB`.
pub const MAGIC: u32 = 0x5058_4842;
/// The format version this module speaks.
pub const VERSION: u8 = 1;
/// Length of the fixed header, before the name.
pub const HEADER_LEN: usize = 76;
/// Longest node name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 32;
/// Most proxy ports whose reachability one message can report.
pub const MAX_PORTS: u8 = 16;
/// Most entries one membership announcement can carry.
pub const MAX_MEMBERS: usize = 64;
/// Length of the announcement header (generation, count, reserved).
pub const ANNOUNCE_HEADER_LEN: usize = 12;
/// Length of one announcement entry.
pub const ENTRY_LEN: usize = 18;
/// Length of the HMAC-SHA256 trailer.
pub const HMAC_LEN: usize = 32;
/// Largest possible message: full name, full announcement, trailer (1304
/// bytes, which fits a 1500-byte MTU with the IPv4 header).
pub const MAX_LEN: usize =
    HEADER_LEN + MAX_NAME_LEN + ANNOUNCE_HEADER_LEN + MAX_MEMBERS * ENTRY_LEN + HMAC_LEN;
/// Largest load value: per-mille of CPU.
pub const MAX_LOAD: u16 = 1000;

/// Flag bit: an HMAC-SHA256 trailer ends the message.
pub const FLAG_AUTH: u16 = 0x0001;
/// Flag bit: a membership announcement follows the name.
pub const FLAG_ANNOUNCE: u16 = 0x0002;
const KNOWN_FLAGS: u16 = FLAG_AUTH | FLAG_ANNOUNCE;

mod field {
    pub type Field = core::ops::Range<usize>;

    pub const MAGIC: Field = 0..4;
    pub const VERSION: usize = 4;
    pub const TYPE: usize = 5;
    pub const FLAGS: Field = 6..8;
    pub const LENGTH: Field = 8..10;
    pub const LBID: Field = 10..12;
    pub const NODE_ID: Field = 12..16;
    pub const SEQUENCE: Field = 16..24;
    pub const TIMESTAMP: Field = 24..32;
    pub const IPV4: Field = 32..36;
    pub const IPV6: Field = 36..52;
    pub const MAC: Field = 52..58;
    pub const ROLE: usize = 58;
    pub const PRIORITY: usize = 59;
    pub const STATE: usize = 60;
    pub const DIRECTOR_STATE: usize = 61;
    pub const PORT_COUNT: usize = 62;
    pub const NAME_LEN: usize = 63;
    pub const PORTS_UP: Field = 64..66;
    pub const LOAD: Field = 66..68;
    pub const CONNECTIONS: Field = 68..72;
    pub const CAPACITY: Field = 72..76;
    pub const NAME: usize = 76;

    /// Field `f` of a part that starts at `base` (the announcement, an entry).
    pub const fn at(base: usize, f: Field) -> Field {
        base + f.start..base + f.end
    }

    // The announcement, relative to its start (just after the name).
    pub const GENERATION: Field = 0..8;
    pub const COUNT: Field = 8..10;
    pub const RESERVED: Field = 10..12;

    // One announcement entry, relative to its start.
    pub const ENTRY_ID: Field = 0..4;
    pub const ENTRY_IPV4: Field = 4..8;
    pub const ENTRY_MAC: Field = 8..14;
    pub const ENTRY_WEIGHT: Field = 14..18;
}

type HmacSha256 = Hmac<Sha256>;

fn mac_for(key: &[u8]) -> Result<HmacSha256> {
    // HMAC takes keys of any length, so this never fails; map it anyway.
    <HmacSha256 as Mac>::new_from_slice(key).map_err(|_| Error::BadAuth { what: WHAT })
}

/// A read/write view of a heartbeat message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it. Accessors may panic until
    /// [`check_len`](Self::check_len) has passed; prefer [`new_checked`](Self::new_checked).
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and checks magic, version and lengths, so that no
    /// accessor panics afterwards.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks magic, version, flags and that every length field agrees with
    /// the buffer. Bytes beyond the `length` field are ignored.
    pub fn check_len(&self) -> Result<()> {
        let buf = self.buffer.as_ref();
        need(WHAT, buf, HEADER_LEN)?;
        let magic = be32(buf, field::MAGIC);
        if magic != MAGIC {
            return Err(Error::BadMagic {
                what: WHAT,
                value: u64::from(magic),
            });
        }
        if buf[field::VERSION] != VERSION {
            return Err(Error::BadVersion {
                what: WHAT,
                value: buf[field::VERSION],
            });
        }
        let flags = be16(buf, field::FLAGS);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Error::BadField {
                what: WHAT,
                field: "flags",
                value: u64::from(flags),
            });
        }
        let len = usize::from(be16(buf, field::LENGTH));
        if len < HEADER_LEN {
            return Err(Error::BadLength {
                what: WHAT,
                value: len,
            });
        }
        need(WHAT, buf, len)?;
        let name_len = usize::from(buf[field::NAME_LEN]);
        if name_len > MAX_NAME_LEN {
            return Err(Error::BadField {
                what: WHAT,
                field: "name length",
                value: name_len as u64,
            });
        }
        let mut end = HEADER_LEN + name_len;
        if flags & FLAG_ANNOUNCE != 0 {
            if len < end + ANNOUNCE_HEADER_LEN {
                return Err(Error::BadLength {
                    what: WHAT,
                    value: len,
                });
            }
            let count = usize::from(be16(buf, field::at(end, field::COUNT)));
            if count > MAX_MEMBERS {
                return Err(Error::BadField {
                    what: WHAT,
                    field: "member count",
                    value: count as u64,
                });
            }
            end += ANNOUNCE_HEADER_LEN + count * ENTRY_LEN;
        }
        if flags & FLAG_AUTH != 0 {
            end += HMAC_LEN;
        }
        if end != len {
            return Err(Error::BadLength {
                what: WHAT,
                value: len,
            });
        }
        Ok(())
    }

    /// Consumes the view and returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// The magic number (always [`MAGIC`] after `check_len`).
    pub fn magic(&self) -> u32 {
        be32(self.b(), field::MAGIC)
    }
    /// The format version.
    pub fn version(&self) -> u8 {
        self.b()[field::VERSION]
    }
    /// The raw message type (1 request, 2 reply).
    pub fn msg_type(&self) -> u8 {
        self.b()[field::TYPE]
    }
    /// The flags word.
    pub fn flags(&self) -> u16 {
        be16(self.b(), field::FLAGS)
    }
    /// Whether an HMAC trailer is present.
    pub fn has_auth(&self) -> bool {
        self.flags() & FLAG_AUTH != 0
    }
    /// Whether a membership announcement is present.
    pub fn has_announcement(&self) -> bool {
        self.flags() & FLAG_ANNOUNCE != 0
    }
    /// Total message length, trailer included.
    pub fn length(&self) -> u16 {
        be16(self.b(), field::LENGTH)
    }
    /// The load-balancing group id.
    pub fn lbid(&self) -> u16 {
        be16(self.b(), field::LBID)
    }
    /// The sender's node id.
    pub fn node_id(&self) -> u32 {
        be32(self.b(), field::NODE_ID)
    }
    /// The sender's sequence number.
    pub fn sequence(&self) -> u64 {
        be64(self.b(), field::SEQUENCE)
    }
    /// The sender's clock, milliseconds since the Unix epoch.
    pub fn timestamp_ms(&self) -> u64 {
        be64(self.b(), field::TIMESTAMP)
    }
    /// Management IPv4 address.
    pub fn ipv4(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.b(), field::IPV4))
    }
    /// Management IPv6 address (`::` when none).
    pub fn ipv6(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.b()[field::IPV6]);
        Ipv6Addr::from(a)
    }
    /// Management MAC address.
    pub fn mac(&self) -> [u8; 6] {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.b()[field::MAC]);
        a
    }
    /// The raw role byte.
    pub fn role(&self) -> u8 {
        self.b()[field::ROLE]
    }
    /// The director priority (0 for a scanning node).
    pub fn priority(&self) -> u8 {
        self.b()[field::PRIORITY]
    }
    /// The raw scanning-side state byte.
    pub fn state(&self) -> u8 {
        self.b()[field::STATE]
    }
    /// The raw director-side state byte.
    pub fn director_state(&self) -> u8 {
        self.b()[field::DIRECTOR_STATE]
    }
    /// How many proxy ports the bitmap covers.
    pub fn port_count(&self) -> u8 {
        self.b()[field::PORT_COUNT]
    }
    /// Bit `i` set: the `i`-th configured proxy port answered.
    pub fn ports_up(&self) -> u16 {
        be16(self.b(), field::PORTS_UP)
    }
    /// CPU load, per-mille.
    pub fn load(&self) -> u16 {
        be16(self.b(), field::LOAD)
    }
    /// Established connections to the proxy port(s).
    pub fn connections(&self) -> u32 {
        be32(self.b(), field::CONNECTIONS)
    }
    /// Connections the node is sized for (from its config).
    pub fn capacity(&self) -> u32 {
        be32(self.b(), field::CAPACITY)
    }
    /// The name bytes (not yet checked as UTF-8).
    pub fn name(&self) -> &[u8] {
        let n = usize::from(self.b()[field::NAME_LEN]);
        &self.b()[field::NAME..field::NAME + n]
    }

    fn announce_start(&self) -> usize {
        field::NAME + usize::from(self.b()[field::NAME_LEN])
    }

    /// The announcement's generation (0 when there is no announcement).
    pub fn generation(&self) -> u64 {
        if !self.has_announcement() {
            return 0;
        }
        let s = self.announce_start();
        be64(self.b(), field::at(s, field::GENERATION))
    }
    /// Number of announcement entries (0 when there is no announcement).
    pub fn member_count(&self) -> usize {
        if !self.has_announcement() {
            return 0;
        }
        let s = self.announce_start();
        usize::from(be16(self.b(), field::at(s, field::COUNT)))
    }
    /// The announcement's reserved word (must be zero).
    pub fn announce_reserved(&self) -> u16 {
        if !self.has_announcement() {
            return 0;
        }
        let s = self.announce_start();
        be16(self.b(), field::at(s, field::RESERVED))
    }
    /// Announcement entry `i`, or `None` past the end.
    pub fn entry(&self, i: usize) -> Option<Entry> {
        if i >= self.member_count() {
            return None;
        }
        let s = self.announce_start() + ANNOUNCE_HEADER_LEN + i * ENTRY_LEN;
        let e = &self.b()[s..s + ENTRY_LEN];
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&e[field::ENTRY_MAC]);
        Some(Entry {
            id: be32(e, field::ENTRY_ID),
            ip: Ipv4Addr::from(be32(e, field::ENTRY_IPV4)),
            mac,
            weight: be32(e, field::ENTRY_WEIGHT),
        })
    }

    /// The bytes the HMAC covers: everything before the trailer.
    pub fn signed_bytes(&self) -> &[u8] {
        let len = usize::from(self.length());
        let end = if self.has_auth() { len - HMAC_LEN } else { len };
        &self.b()[..end]
    }
    /// The HMAC trailer, when present.
    pub fn hmac(&self) -> Option<&[u8]> {
        if !self.has_auth() {
            return None;
        }
        let len = usize::from(self.length());
        Some(&self.b()[len - HMAC_LEN..len])
    }

    /// Checks the HMAC-SHA256 trailer against `key` in constant time.
    /// Fails with [`Error::BadAuth`] when the trailer is missing or wrong.
    pub fn verify(&self, key: &[u8]) -> Result<()> {
        let tag = self.hmac().ok_or(Error::BadAuth { what: WHAT })?;
        let mut mac = mac_for(key)?;
        mac.update(self.signed_bytes());
        mac.verify_slice(tag)
            .map_err(|_| Error::BadAuth { what: WHAT })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    /// Computes the HMAC-SHA256 over everything before the trailer and
    /// writes it into the trailer. Does nothing when the `AUTH` flag is clear.
    pub fn fill_hmac(&mut self, key: &[u8]) -> Result<()> {
        if !self.has_auth() {
            return Ok(());
        }
        let mut mac = mac_for(key)?;
        mac.update(self.signed_bytes());
        let tag = mac.finalize().into_bytes();
        let len = usize::from(self.length());
        self.bm()[len - HMAC_LEN..len].copy_from_slice(&tag);
        Ok(())
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// Message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Sent by the active director every interval; carries the announcement.
    Request,
    /// Sent by every other node in answer to a request.
    Reply,
}

impl Kind {
    fn to_u8(self) -> u8 {
        match self {
            Kind::Request => 1,
            Kind::Reply => 2,
        }
    }
    fn from_u8(v: u8) -> Result<Self> {
        match v {
            1 => Ok(Kind::Request),
            2 => Ok(Kind::Reply),
            _ => Err(Error::BadField {
                what: WHAT,
                field: "type",
                value: u64::from(v),
            }),
        }
    }
}

/// What a node is configured as: priority 0 makes a scanning node only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Scans only.
    Scanning,
    /// May become the active director; scans too.
    Director,
}

impl Role {
    fn to_u8(self) -> u8 {
        match self {
            Role::Scanning => 0,
            Role::Director => 1,
        }
    }
    fn from_u8(v: u8) -> Result<Self> {
        match v {
            0 => Ok(Role::Scanning),
            1 => Ok(Role::Director),
            _ => Err(Error::BadField {
                what: WHAT,
                field: "role",
                value: u64::from(v),
            }),
        }
    }
}

/// A node state, in the original Proxy HA's vocabulary (`mfend-lb -s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum State {
    /// Not known yet (no heartbeat, or the node has not probed itself).
    #[serde(rename = "UNKNOWN")]
    Unknown,
    /// Scanning and healthy.
    #[serde(rename = "OK")]
    Ok,
    /// The active director's own director entry.
    #[serde(rename = "NETWORK")]
    Network,
    /// A passive director's director entry.
    #[serde(rename = "REDUNDANT")]
    Redundant,
    /// Missed N heartbeats, or its proxy port does not answer.
    #[serde(rename = "FAILED")]
    Failed,
    /// Takes no new flows, keeps the ones it has.
    #[serde(rename = "DRAINING")]
    Draining,
    /// Its heartbeats stopped but its proxy port still answers the active
    /// director's probe (a dead daemon, a live proxy): it keeps its
    /// established flows and gets no new ones. Only ever a node-table state
    /// on the active director: no node reports it about itself.
    #[serde(rename = "STALE")]
    Stale,
}

impl State {
    /// The wire code.
    pub fn to_u8(self) -> u8 {
        match self {
            State::Unknown => 0,
            State::Ok => 1,
            State::Network => 2,
            State::Redundant => 3,
            State::Failed => 4,
            State::Draining => 5,
            State::Stale => 6,
        }
    }
    /// The state for a wire code, if it is one.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => State::Unknown,
            1 => State::Ok,
            2 => State::Network,
            3 => State::Redundant,
            4 => State::Failed,
            5 => State::Draining,
            6 => State::Stale,
            _ => return None,
        })
    }
    /// The name `mfend-lb -s` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Unknown => "UNKNOWN",
            State::Ok => "OK",
            State::Network => "NETWORK",
            State::Redundant => "REDUNDANT",
            State::Failed => "FAILED",
            State::Draining => "DRAINING",
            State::Stale => "STALE",
        }
    }
    /// Whether this state is allowed in the scanning-side `state` field.
    pub fn is_scanning_state(self) -> bool {
        matches!(
            self,
            State::Unknown | State::Ok | State::Failed | State::Draining
        )
    }
    /// Whether this state is allowed in the `director_state` field.
    pub fn is_director_state(self) -> bool {
        matches!(self, State::Unknown | State::Network | State::Redundant)
    }
}

impl core::fmt::Display for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reachability of the node's configured proxy ports, in config order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ports {
    /// How many ports the node checks (0..=16).
    pub count: u8,
    /// Bit `i` set: port `i` answered. Bits at and above `count` are zero.
    pub reachable: u16,
}

impl Ports {
    /// Builds the bitmap from per-port results (at most 16 are kept).
    pub fn from_results(results: &[bool]) -> Self {
        let mut p = Ports::default();
        for (i, up) in results.iter().take(usize::from(MAX_PORTS)).enumerate() {
            p.count += 1;
            if *up {
                p.reachable |= 1 << i;
            }
        }
        p
    }
    /// Whether port `i` answered.
    pub fn is_reachable(&self, i: u8) -> bool {
        i < self.count && self.reachable & (1 << i) != 0
    }
    /// Whether every checked port answered (true when none is checked).
    pub fn all_reachable(&self) -> bool {
        (0..self.count).all(|i| self.is_reachable(i))
    }
    fn mask(count: u8) -> u16 {
        if count >= 16 {
            u16::MAX
        } else {
            (1u16 << count) - 1
        }
    }
}

/// One node the active director balances with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Node id.
    pub id: u32,
    /// The node's IPv4 address.
    pub ip: Ipv4Addr,
    /// The MAC the dataplane rewrites to.
    pub mac: [u8; 6],
    /// Maglev weight in the low 31 bits; 0 means draining (keeps its flows,
    /// takes no new ones). Bit 31 ([`WEIGHT_HOLD`]): the node keeps its
    /// Maglev share for its established flows but takes no new ones (a
    /// STALE node).
    pub weight: u32,
}

/// Bit 31 of an entry's weight: hold the node's Maglev share for its
/// established flows, give it no new ones (docs/heartbeat.md §2.2).
pub const WEIGHT_HOLD: u32 = 1 << 31;

/// The active director's balancing set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Announcement {
    /// Bumped whenever the set or a weight changes.
    pub generation: u64,
    /// At most [`MAX_MEMBERS`] entries.
    pub entries: Vec<Entry>,
}

/// A parsed heartbeat, without its HMAC trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    /// Request or reply.
    pub kind: Kind,
    /// Load-balancing group id (`MFEND_LBID`).
    pub lbid: u16,
    /// Sender's node id.
    pub node_id: u32,
    /// Sender's name, at most 32 bytes of UTF-8.
    pub name: String,
    /// Director or scanning node.
    pub role: Role,
    /// Director priority (0 for a scanning node).
    pub priority: u8,
    /// Scanning-side state: Unknown, Ok, Failed or Draining.
    pub state: State,
    /// Director-side state: Unknown (scanning node), Network or Redundant.
    pub director_state: State,
    /// Management IPv4 address.
    pub ipv4: Ipv4Addr,
    /// Management IPv6 address (`::` when none).
    pub ipv6: Ipv6Addr,
    /// Management MAC address.
    pub mac: [u8; 6],
    /// Per-sender sequence number.
    pub sequence: u64,
    /// Sender's clock, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Established connections to the proxy port(s).
    pub connections: u32,
    /// CPU load, per-mille (0..=1000).
    pub load_permille: u16,
    /// Connections the node is sized for.
    pub capacity: u32,
    /// Proxy-port reachability.
    pub ports: Ports,
    /// The membership announcement (requests from the active director).
    pub announcement: Option<Announcement>,
}

impl Repr {
    /// Parses a checked packet and checks every value. The HMAC trailer,
    /// if any, is skipped here; check it with [`Packet::verify`].
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        let bad = |field: &'static str, value: u64| Error::BadField {
            what: WHAT,
            field,
            value,
        };
        let kind = Kind::from_u8(p.msg_type())?;
        let role = Role::from_u8(p.role())?;
        let state = State::from_u8(p.state())
            .filter(|s| s.is_scanning_state())
            .ok_or(bad("state", u64::from(p.state())))?;
        let director_state = State::from_u8(p.director_state())
            .filter(|s| s.is_director_state())
            .ok_or(bad("director state", u64::from(p.director_state())))?;
        if p.port_count() > MAX_PORTS {
            return Err(bad("port count", u64::from(p.port_count())));
        }
        if p.ports_up() & !Ports::mask(p.port_count()) != 0 {
            return Err(bad("port bitmap", u64::from(p.ports_up())));
        }
        if p.load() > MAX_LOAD {
            return Err(bad("load", u64::from(p.load())));
        }
        let name = match core::str::from_utf8(p.name()) {
            Ok(s) => s.to_owned(),
            Err(e) => return Err(bad("name (UTF-8 at byte)", e.valid_up_to() as u64)),
        };
        let announcement = if p.has_announcement() {
            if p.announce_reserved() != 0 {
                return Err(bad(
                    "announcement reserved",
                    u64::from(p.announce_reserved()),
                ));
            }
            let entries = (0..p.member_count()).filter_map(|i| p.entry(i)).collect();
            Some(Announcement {
                generation: p.generation(),
                entries,
            })
        } else {
            None
        };
        Ok(Repr {
            kind,
            lbid: p.lbid(),
            node_id: p.node_id(),
            name,
            role,
            priority: p.priority(),
            state,
            director_state,
            ipv4: p.ipv4(),
            ipv6: p.ipv6(),
            mac: p.mac(),
            sequence: p.sequence(),
            timestamp_ms: p.timestamp_ms(),
            connections: p.connections(),
            load_permille: p.load(),
            capacity: p.capacity(),
            ports: Ports {
                count: p.port_count(),
                reachable: p.ports_up(),
            },
            announcement,
        })
    }

    /// Bytes [`emit`](Self::emit) writes; `auth` adds the 32-byte trailer.
    pub fn buffer_len(&self, auth: bool) -> usize {
        let mut n = HEADER_LEN + self.name.len();
        if let Some(a) = &self.announcement {
            n += ANNOUNCE_HEADER_LEN + a.entries.len() * ENTRY_LEN;
        }
        if auth {
            n += HMAC_LEN;
        }
        n
    }

    /// Checks the values a caller could have set out of range.
    fn check(&self) -> Result<()> {
        let bad = |field: &'static str, value: u64| Error::BadField {
            what: WHAT,
            field,
            value,
        };
        if self.name.len() > MAX_NAME_LEN {
            return Err(bad("name length", self.name.len() as u64));
        }
        if let Some(a) = &self.announcement
            && a.entries.len() > MAX_MEMBERS
        {
            return Err(bad("member count", a.entries.len() as u64));
        }
        if !self.state.is_scanning_state() {
            return Err(bad("state", u64::from(self.state.to_u8())));
        }
        if !self.director_state.is_director_state() {
            return Err(bad(
                "director state",
                u64::from(self.director_state.to_u8()),
            ));
        }
        if self.ports.count > MAX_PORTS
            || self.ports.reachable & !Ports::mask(self.ports.count) != 0
        {
            return Err(bad("port bitmap", u64::from(self.ports.reachable)));
        }
        if self.load_permille > MAX_LOAD {
            return Err(bad("load", u64::from(self.load_permille)));
        }
        Ok(())
    }

    /// Writes the message into the start of `buf` and returns its length.
    /// With a key, sets the `AUTH` flag and appends the HMAC-SHA256
    /// trailer. Fails (without panicking) when `buf` is too short or a
    /// value is out of range.
    pub fn emit(&self, buf: &mut [u8], key: Option<&[u8]>) -> Result<usize> {
        self.check()?;
        let len = self.buffer_len(key.is_some());
        need(WHAT, buf, len)?;
        let b = &mut buf[..len];
        b.fill(0);
        b[field::MAGIC].copy_from_slice(&MAGIC.to_be_bytes());
        b[field::VERSION] = VERSION;
        b[field::TYPE] = self.kind.to_u8();
        let mut flags = 0u16;
        if key.is_some() {
            flags |= FLAG_AUTH;
        }
        if self.announcement.is_some() {
            flags |= FLAG_ANNOUNCE;
        }
        b[field::FLAGS].copy_from_slice(&flags.to_be_bytes());
        // `len` <= MAX_LEN (1304) after `check`, so it fits 16 bits.
        b[field::LENGTH].copy_from_slice(&(len as u16).to_be_bytes());
        b[field::LBID].copy_from_slice(&self.lbid.to_be_bytes());
        b[field::NODE_ID].copy_from_slice(&self.node_id.to_be_bytes());
        b[field::SEQUENCE].copy_from_slice(&self.sequence.to_be_bytes());
        b[field::TIMESTAMP].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        b[field::IPV4].copy_from_slice(&self.ipv4.octets());
        b[field::IPV6].copy_from_slice(&self.ipv6.octets());
        b[field::MAC].copy_from_slice(&self.mac);
        b[field::ROLE] = self.role.to_u8();
        b[field::PRIORITY] = self.priority;
        b[field::STATE] = self.state.to_u8();
        b[field::DIRECTOR_STATE] = self.director_state.to_u8();
        b[field::PORT_COUNT] = self.ports.count;
        b[field::NAME_LEN] = self.name.len() as u8;
        b[field::PORTS_UP].copy_from_slice(&self.ports.reachable.to_be_bytes());
        b[field::LOAD].copy_from_slice(&self.load_permille.to_be_bytes());
        b[field::CONNECTIONS].copy_from_slice(&self.connections.to_be_bytes());
        b[field::CAPACITY].copy_from_slice(&self.capacity.to_be_bytes());
        let mut off = field::NAME;
        b[off..off + self.name.len()].copy_from_slice(self.name.as_bytes());
        off += self.name.len();
        if let Some(a) = &self.announcement {
            b[field::at(off, field::GENERATION)].copy_from_slice(&a.generation.to_be_bytes());
            b[field::at(off, field::COUNT)]
                .copy_from_slice(&(a.entries.len() as u16).to_be_bytes());
            off += ANNOUNCE_HEADER_LEN;
            for e in &a.entries {
                let s = &mut b[off..off + ENTRY_LEN];
                s[field::ENTRY_ID].copy_from_slice(&e.id.to_be_bytes());
                s[field::ENTRY_IPV4].copy_from_slice(&e.ip.octets());
                s[field::ENTRY_MAC].copy_from_slice(&e.mac);
                s[field::ENTRY_WEIGHT].copy_from_slice(&e.weight.to_be_bytes());
                off += ENTRY_LEN;
            }
        }
        if let Some(key) = key {
            Packet::new_unchecked(&mut *b).fill_hmac(key)?;
        }
        Ok(len)
    }

    /// Emits into a fresh vector (see [`emit`](Self::emit)).
    pub fn to_bytes(&self, key: Option<&[u8]>) -> Result<Vec<u8>> {
        let mut v = vec![0u8; self.buffer_len(key.is_some())];
        let n = self.emit(&mut v, key)?;
        v.truncate(n);
        Ok(v)
    }
}

#[cfg(test)]
mod tests;
