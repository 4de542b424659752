//! IPv6 neighbour discovery (RFC 4861): the neighbour solicitation a Master
//! answers for an IPv6 virtual IP and the neighbour advertisement it answers
//! (and sends unsolicited on takeover) with the virtual MAC.
//!
//! ```text
//! NS (type 135) / NA (type 136), RFC 4861 §4.3, §4.4
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! NS: |                          Reserved                         |
//! NA: |R|S|O|                     Reserved                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Target Address (128 bits)               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Options ... (type, length in units of 8 bytes, value)
//! ```
//!
//! RFC 4861 §7.1.1, the validation of a received solicitation: "The IP Hop
//! Limit field has a value of 255 [...] ICMP Checksum is valid. ICMP Code
//! is 0. ICMP length (derived from the IP length) is 24 or more octets.
//! Target Address is not a multicast address. All included options have a
//! length that is greater than zero. If the IP source address is the
//! unspecified address, the IP destination address is a solicited-node
//! multicast address. If the IP source address is the unspecified address,
//! there is no source link-layer address option in the message."
//! [`Solicitation::parse`] checks all of it (the hop limit is the caller's
//! IPv6 header; it is passed in).
//!
//! The checksum is ICMPv6's (RFC 4443 §2.3): over the IPv6 pseudo-header
//! with next header 58 and the whole message.

use std::net::Ipv6Addr;

use super::{Error, Result, checksum, ethernet, ipv6, need};

/// IPv6 next header of ICMPv6.
pub const NEXT_HEADER: u8 = 58;
/// ICMPv6 type of a neighbour solicitation.
pub const TYPE_NS: u8 = 135;
/// ICMPv6 type of a neighbour advertisement.
pub const TYPE_NA: u8 = 136;
/// The hop limit ND messages are sent with and must arrive with.
pub const HOP_LIMIT: u8 = 255;
/// The all-nodes multicast group, ff02::1: the destination of unsolicited
/// advertisements and of answers to a solicitation from `::`.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Option type: source link-layer address.
pub const OPT_SOURCE_LLADDR: u8 = 1;
/// Option type: target link-layer address.
pub const OPT_TARGET_LLADDR: u8 = 2;
/// Length of an NS or NA without options.
pub const MESSAGE_LEN: usize = 24;
/// Length of an NA with its target link-layer address option.
pub const NA_LEN: usize = MESSAGE_LEN + 8;

const WHAT: &str = "ndp";

/// The ICMPv6 checksum `msg` (checksum field read as zero) should carry.
fn compute_checksum(msg: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
    // An ND message fits in an IPv6 payload: its length fits in u32.
    let mut sum = ipv6::pseudo_header(src, dst, NEXT_HEADER, msg.len() as u32);
    sum = checksum::accumulate(sum, &msg[..2]);
    sum = checksum::accumulate(sum, &msg[4..]);
    checksum::finish(sum)
}

/// A validated neighbour solicitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solicitation {
    /// The address whose link-layer address is asked for.
    pub target: Ipv6Addr,
    /// The solicitor's link-layer address option, if present.
    pub source_lladdr: Option<ethernet::Address>,
}

impl Solicitation {
    /// Validates the ICMPv6 message `msg` (the whole IPv6 payload) that
    /// arrived from `src` to `dst` with `hop_limit`, as RFC 4861 §7.1.1 says.
    pub fn parse(msg: &[u8], src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8) -> Result<Solicitation> {
        need(WHAT, msg, MESSAGE_LEN)?;
        let bad = |field: &'static str, value: u64| Error::BadField {
            what: WHAT,
            field,
            value,
        };
        if msg[0] != TYPE_NS {
            return Err(bad("type", u64::from(msg[0])));
        }
        if hop_limit != HOP_LIMIT {
            return Err(bad("hop limit", u64::from(hop_limit)));
        }
        if msg[1] != 0 {
            return Err(bad("code", u64::from(msg[1])));
        }
        if compute_checksum(msg, src, dst) != u16::from_be_bytes([msg[2], msg[3]]) {
            return Err(Error::BadChecksum { what: WHAT });
        }
        let mut t = [0u8; 16];
        t.copy_from_slice(&msg[8..24]);
        let target = Ipv6Addr::from(t);
        if target.is_multicast() {
            return Err(bad("target (multicast)", u64::from(t[0])));
        }
        let mut source_lladdr = None;
        let mut opts = &msg[MESSAGE_LEN..];
        while !opts.is_empty() {
            let (Some(&kind), Some(&units)) = (opts.first(), opts.get(1)) else {
                return Err(bad("option (cut short)", opts.len() as u64));
            };
            let len = usize::from(units) * 8;
            if len == 0 || len > opts.len() {
                return Err(bad("option length", u64::from(units)));
            }
            if kind == OPT_SOURCE_LLADDR && len == 8 {
                let mut m = [0u8; 6];
                m.copy_from_slice(&opts[2..8]);
                source_lladdr = Some(ethernet::Address(m));
            }
            opts = &opts[len..];
        }
        if src.is_unspecified() {
            if dst != ipv6::solicited_node(target) {
                return Err(bad("destination (not solicited-node)", 0));
            }
            if source_lladdr.is_some() {
                return Err(bad("source link-layer option from ::", 0));
            }
        }
        Ok(Solicitation {
            target,
            source_lladdr,
        })
    }
}

/// The flags of an advertisement (RFC 4861 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    /// R: the sender is a router.
    pub router: bool,
    /// S: sent in response to a solicitation.
    pub solicited: bool,
    /// O: override an existing cache entry.
    pub override_: bool,
}

impl Flags {
    fn byte(self) -> u8 {
        (u8::from(self.router) << 7)
            | (u8::from(self.solicited) << 6)
            | (u8::from(self.override_) << 5)
    }
}

/// A neighbour advertisement with a target link-layer address option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advertisement {
    pub flags: Flags,
    pub target: Ipv6Addr,
    pub target_lladdr: ethernet::Address,
}

impl Advertisement {
    /// The 32-byte ICMPv6 message from `src` to `dst`, checksum filled.
    pub fn to_bytes(&self, src: Ipv6Addr, dst: Ipv6Addr) -> [u8; NA_LEN] {
        let mut b = [0u8; NA_LEN];
        b[0] = TYPE_NA;
        b[4] = self.flags.byte();
        b[8..24].copy_from_slice(&self.target.octets());
        b[24] = OPT_TARGET_LLADDR;
        b[25] = 1;
        b[26..32].copy_from_slice(&self.target_lladdr.octets());
        let c = compute_checksum(&b, src, dst);
        b[2..4].copy_from_slice(&c.to_be_bytes());
        b
    }

    /// Parses an advertisement (for tests and tools): type, code, checksum
    /// and the target link-layer address option.
    pub fn parse(msg: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<Advertisement> {
        need(WHAT, msg, NA_LEN)?;
        if msg[0] != TYPE_NA || msg[1] != 0 || msg[24] != OPT_TARGET_LLADDR || msg[25] != 1 {
            return Err(Error::BadField {
                what: WHAT,
                field: "type, code or option",
                value: u64::from(msg[0]),
            });
        }
        if compute_checksum(msg, src, dst) != u16::from_be_bytes([msg[2], msg[3]]) {
            return Err(Error::BadChecksum { what: WHAT });
        }
        let mut t = [0u8; 16];
        t.copy_from_slice(&msg[8..24]);
        let mut m = [0u8; 6];
        m.copy_from_slice(&msg[26..32]);
        Ok(Advertisement {
            flags: Flags {
                router: msg[4] & 0x80 != 0,
                solicited: msg[4] & 0x40 != 0,
                override_: msg[4] & 0x20 != 0,
            },
            target: Ipv6Addr::from(t),
            target_lladdr: ethernet::Address(m),
        })
    }
}

/// Builds a neighbour solicitation for `target` from `src` (with its
/// source link-layer address option unless `src` is `::`) to the target's
/// solicited-node group: for tests and tools.
pub fn solicitation(src: Ipv6Addr, src_mac: ethernet::Address, target: Ipv6Addr) -> Vec<u8> {
    let dst = ipv6::solicited_node(target);
    let mut b = vec![0u8; MESSAGE_LEN];
    b[0] = TYPE_NS;
    b[8..24].copy_from_slice(&target.octets());
    if !src.is_unspecified() {
        b.extend_from_slice(&[OPT_SOURCE_LLADDR, 1]);
        b.extend_from_slice(&src_mac.octets());
    }
    let c = compute_checksum(&b, src, dst);
    b[2..4].copy_from_slice(&c.to_be_bytes());
    b
}

#[cfg(test)]
mod tests;
