//! VRRPv3 advertisements over IPv6 (RFC 5798).
//!
//! The fixed header is the v3 one of [`super`]; the addresses are 16 bytes
//! each, and the checksum covers the IPv6 pseudo-header:
//!
//! * "The checksum is the 16-bit one's complement of the one's complement
//!   sum of the entire VRRP message starting with the version field and a
//!   'pseudo-header' as defined in Section 8.1 of [RFC2460]. The next header
//!   field in the 'pseudo-header' should be set to 112 (decimal) for VRRP."
//!   (§5.2.8)
//! * "This refers to one or more IPvX addresses associated with the virtual
//!   router. [...] For IPv6, the first address must be the IPv6 link-local
//!   address associated with the virtual router." (§5.2.9) [`Repr::parse`]
//!   refuses an advert whose first address is not link-local.
//! * "The IPv6 source address is the link-local address of the interface
//!   the packet is being sent from", the destination "the link-local scope
//!   multicast address assigned to VRRP: FF02:0:0:0:0:0:0:12", and "the hop
//!   limit MUST be set to 255" (§5.1.2.1–3).
//!
//! VRRPv2 is IPv4 only: a version-2 message over IPv6 is refused.

use std::net::Ipv6Addr;

use super::super::bytes::be16;
use super::super::{Error, Result, checksum, ipv6, need};
use super::{HEADER_LEN, MAX_ADVER_INT_CS, PROTOCOL, TYPE_ADVERTISEMENT, Version};

/// The destination of every IPv6 advert, ff02::12 (RFC 5798 §5.1.2.2).
pub const MULTICAST_ADDR: Ipv6Addr = ipv6::VRRP_MULTICAST;
/// The hop limit an advert is sent with and must arrive with (§5.1.2.3).
pub const HOP_LIMIT: u8 = 255;
/// Bytes per address.
pub const ADDR_LEN: usize = 16;

const WHAT: &str = "vrrp6";

/// Length of a VRRPv3-over-IPv6 message with `count` addresses.
pub const fn message_len(count: usize) -> usize {
    HEADER_LEN + ADDR_LEN * count
}

/// A parsed, validated VRRPv3 advertisement carried over IPv6.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Virtual Router ID.
    pub vrid: u8,
    /// Sender priority; 0 means the master stops participating.
    pub priority: u8,
    /// Max Adver Int in centiseconds (0..=4095).
    pub max_adver_int: u16,
    /// The virtual addresses, 1..=255 of them, the link-local one first.
    pub addrs: Vec<Ipv6Addr>,
}

/// The checksum `msg` (checksum field read as zero) should carry between
/// `src` and `dst`.
fn compute_checksum(msg: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
    // A message is at most 8 + 16 * 255 bytes: its length fits in u32.
    let mut sum = ipv6::pseudo_header(src, dst, PROTOCOL, msg.len() as u32);
    sum = checksum::accumulate(sum, &msg[..6]);
    sum = checksum::accumulate(sum, &msg[8..]);
    checksum::finish(sum)
}

impl Repr {
    /// Parses the VRRP message `buf` (the IPv6 payload, exactly the message:
    /// trailing bytes are refused as a wrong address count) from `src` to
    /// `dst`: version 3, type ADVERTISEMENT, 1..=255 addresses, the checksum
    /// with the IPv6 pseudo-header, the first address link-local.
    pub fn parse(buf: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<Repr> {
        need(WHAT, buf, HEADER_LEN)?;
        let version = buf[0] >> 4;
        if Version::from_number(version) != Some(Version::V3) {
            return Err(Error::BadVersion {
                what: WHAT,
                value: version,
            });
        }
        if buf[0] & 0x0f != TYPE_ADVERTISEMENT {
            return Err(Error::BadField {
                what: WHAT,
                field: "type",
                value: u64::from(buf[0] & 0x0f),
            });
        }
        let count = usize::from(buf[3]);
        if count == 0 || buf.len() != message_len(count) {
            return Err(Error::BadField {
                what: WHAT,
                field: "count",
                value: count as u64,
            });
        }
        if compute_checksum(buf, src, dst) != be16(buf, 6..8) {
            return Err(Error::BadChecksum { what: WHAT });
        }
        let addrs: Vec<Ipv6Addr> = buf[HEADER_LEN..]
            .chunks_exact(ADDR_LEN)
            .map(|c| {
                let mut o = [0u8; ADDR_LEN];
                o.copy_from_slice(c);
                Ipv6Addr::from(o)
            })
            .collect();
        if !ipv6::is_link_local(addrs[0]) {
            return Err(Error::BadField {
                what: WHAT,
                field: "first address (not link-local)",
                value: u64::from(addrs[0].segments()[0]),
            });
        }
        Ok(Repr {
            vrid: buf[1],
            priority: buf[2],
            max_adver_int: be16(buf, 4..6) & MAX_ADVER_INT_CS,
            addrs,
        })
    }

    /// Bytes that [`to_bytes`](Self::to_bytes) writes.
    pub fn buffer_len(&self) -> usize {
        message_len(self.addrs.len())
    }

    /// The message from `src` to `dst`, checksum filled, reserved bits zero.
    /// Refuses 0 or more than 255 addresses, a first address that is not
    /// link-local, and an interval above 4095 cs.
    pub fn to_bytes(&self, src: Ipv6Addr, dst: Ipv6Addr) -> Result<Vec<u8>> {
        let count = u8::try_from(self.addrs.len())
            .ok()
            .filter(|c| *c > 0)
            .ok_or(Error::BadField {
                what: WHAT,
                field: "count",
                value: self.addrs.len() as u64,
            })?;
        if !ipv6::is_link_local(self.addrs[0]) {
            return Err(Error::BadField {
                what: WHAT,
                field: "first address (not link-local)",
                value: u64::from(self.addrs[0].segments()[0]),
            });
        }
        if self.max_adver_int > MAX_ADVER_INT_CS {
            return Err(Error::BadField {
                what: WHAT,
                field: "adver_int",
                value: u64::from(self.max_adver_int),
            });
        }
        let mut buf = Vec::with_capacity(self.buffer_len());
        buf.push((Version::V3.number() << 4) | TYPE_ADVERTISEMENT);
        buf.extend_from_slice(&[self.vrid, self.priority, count]);
        buf.extend_from_slice(&self.max_adver_int.to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        for a in &self.addrs {
            buf.extend_from_slice(&a.octets());
        }
        let c = compute_checksum(&buf, src, dst);
        buf[6..8].copy_from_slice(&c.to_be_bytes());
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x0200, 0x5eff, 0xfe00, 0x0233);
    const VIP: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x250);

    /// VRID 51, priority 99, 100 cs, fe80::200:5eff:fe00:233 and
    /// 2001:2::250, from fe80::1 to ff02::12. Checksum by hand: the
    /// pseudo-header fe80+0001 + ff02+0012 + 0028 + 0070 = 0x1fe2d; the
    /// message 3133+6302+0064 + fe80+0200+5eff+fe00+0233 + 2001+0002+0250 =
    /// 0x3169e; total 0x514cb -> 14d0 -> !14d0 = eb2f.
    static BYTES: [u8; 40] = [
        0x31, 0x33, 0x63, 0x02, 0x00, 0x64, 0xeb, 0x2f, //
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x5e, 0xff, 0xfe, 0x00, 0x02, 0x33, //
        0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x50,
    ];

    fn repr() -> Repr {
        Repr {
            vrid: 51,
            priority: 99,
            max_adver_int: 100,
            addrs: vec![LL, VIP],
        }
    }

    #[test]
    fn construct_matches_the_fixture() {
        assert_eq!(repr().to_bytes(SRC, MULTICAST_ADDR).unwrap(), BYTES);
        assert_eq!(repr().buffer_len(), 40);
    }

    #[test]
    fn deconstruct_the_fixture() {
        assert_eq!(Repr::parse(&BYTES, SRC, MULTICAST_ADDR).unwrap(), repr());
    }

    #[test]
    fn the_pseudo_header_is_checked() {
        // Another source: the checksum no longer verifies.
        let other = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
        assert_eq!(
            Repr::parse(&BYTES, other, MULTICAST_ADDR),
            Err(Error::BadChecksum { what: WHAT })
        );
    }

    #[test]
    fn bad_messages_are_refused() {
        let mut v2 = BYTES;
        v2[0] = 0x21;
        assert!(matches!(
            Repr::parse(&v2, SRC, MULTICAST_ADDR),
            Err(Error::BadVersion { .. })
        ));
        let mut bad_type = BYTES;
        bad_type[0] = 0x32;
        assert!(Repr::parse(&bad_type, SRC, MULTICAST_ADDR).is_err());
        // Count says 3, 2 present; and trailing bytes.
        let mut count = BYTES;
        count[3] = 3;
        assert!(Repr::parse(&count, SRC, MULTICAST_ADDR).is_err());
        let mut long = BYTES.to_vec();
        long.extend_from_slice(&[0; 4]);
        assert!(Repr::parse(&long, SRC, MULTICAST_ADDR).is_err());
        assert!(Repr::parse(&BYTES[..7], SRC, MULTICAST_ADDR).is_err());
        // A global address first (the sum, so the checksum, is unchanged by
        // swapping: only the order fails).
        let swapped = Repr {
            addrs: vec![VIP, LL],
            ..repr()
        };
        assert!(swapped.to_bytes(SRC, MULTICAST_ADDR).is_err());
        let mut raw = BYTES;
        raw[8..24].copy_from_slice(&VIP.octets());
        raw[24..40].copy_from_slice(&LL.octets());
        assert!(matches!(
            Repr::parse(&raw, SRC, MULTICAST_ADDR),
            Err(Error::BadField {
                field: "first address (not link-local)",
                ..
            })
        ));
        assert!(
            Repr {
                addrs: vec![],
                ..repr()
            }
            .to_bytes(SRC, MULTICAST_ADDR)
            .is_err()
        );
        assert!(
            Repr {
                max_adver_int: 4096,
                ..repr()
            }
            .to_bytes(SRC, MULTICAST_ADDR)
            .is_err()
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = Repr::parse(&bytes, SRC, MULTICAST_ADDR);
        }

        #[test]
        fn emit_then_parse(vrid in 1u8.., priority: u8, int in 0u16..=4095,
                           extra in proptest::collection::vec(any::<u128>(), 0..8)) {
            let mut addrs = vec![LL];
            addrs.extend(extra.into_iter().map(Ipv6Addr::from));
            let r = Repr { vrid, priority, max_adver_int: int, addrs };
            let b = r.to_bytes(SRC, MULTICAST_ADDR).unwrap();
            prop_assert_eq!(Repr::parse(&b, SRC, MULTICAST_ADDR).unwrap(), r);
        }
    }
}
