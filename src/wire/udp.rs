//! UDP datagrams (RFC 768) with the IPv4 pseudo-header checksum.
//!
//! RFC 768:
//! ```text
//!  0      7 8     15 16    23 24    31
//! +--------+--------+--------+--------+
//! |     Source      |   Destination   |
//! |      Port       |      Port       |
//! +--------+--------+--------+--------+
//! |                 |                 |
//! |     Length      |    Checksum     |
//! +--------+--------+--------+--------+
//! ```
//! "Length is the length in octets of this user datagram including this
//! header and the data. (This means the minimum value of the length is
//! eight.)" "If the computed checksum is zero, it is transmitted as all ones
//! (the equivalent in one's complement arithmetic). An all zero transmitted
//! checksum value means that the transmitter generated no checksum."

use core::fmt;
use std::net::Ipv4Addr;

use super::bytes::be16;
use super::checksum;
use super::ipv4::Protocol;
use super::{Error, Result, need};

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Header length.
pub const HEADER_LEN: usize = 8;
/// IP protocol number.
pub const PROTOCOL: u8 = Protocol::Udp.to_u8();

const WHAT: &str = "udp";

/// A read/write view of a UDP datagram.
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

    /// Checks that the buffer holds the header and `8 ≤ length ≤ buffer length`.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        need(WHAT, b, HEADER_LEN)?;
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(Error::BadLength {
                what: "udp length",
                value: len,
            });
        }
        need("udp length", b, len)
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field (header plus data).
    #[inline]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Whether the datagram carries no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Checksum field (0 means none was computed).
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The data (8 .. length).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let len = usize::from(self.len());
        self.buffer.as_ref().get(HEADER_LEN..len).unwrap_or(&[])
    }

    /// Verifies the checksum over the pseudo-header and the datagram; a zero
    /// checksum field means "no checksum" and verifies.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let len = self.len();
        let Some(d) = self.buffer.as_ref().get(..usize::from(len)) else {
            return false;
        };
        let sum = checksum::pseudo_header_v4(src, dst, PROTOCOL, len);
        checksum::finish(checksum::accumulate(sum, d)) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the checksum field as is.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Computes and stores the checksum (a computed zero is sent as 0xffff).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let len = self.len();
        let Some(d) = self.buffer.as_ref().get(..usize::from(len)) else {
            return;
        };
        let sum = checksum::pseudo_header_v4(src, dst, PROTOCOL, len);
        let c = match checksum::finish(checksum::accumulate(sum, d)) {
            0 => 0xffff,
            c => c,
        };
        self.set_checksum(c);
    }

    /// The data, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.len());
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..len)
            .unwrap_or(&mut [])
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed UDP datagram, borrowing the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Data.
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses a datagram from `src` to `dst`, verifying a non-zero checksum.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &'a Packet<&'a T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum { what: WHAT });
        }
        let b: &'a [u8] = packet.buffer.as_ref();
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload: &b[HEADER_LEN..usize::from(packet.len())],
        })
    }

    /// Header plus payload.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload.len()
    }

    /// Writes the datagram and fills the checksum for `src` to `dst`.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::buffer_len`] or that exceeds 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) {
        let len = u16::try_from(self.buffer_len()).expect("UDP datagram longer than 65535 bytes");
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        packet.buffer.as_mut()[HEADER_LEN..usize::from(len)].copy_from_slice(self.payload);
        packet.fill_checksum(src, dst);
    }
}

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UDP {} > {} len {}",
            self.src_port,
            self.dst_port,
            self.payload.len()
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::ipv4::tests::arb_ipv4;
    use proptest::prelude::*;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);

    /// 198.18.0.10:5353 -> 198.18.0.250:53, "hello". Checksum 0x19bb computed
    /// independently (Python).
    pub(crate) static HELLO: [u8; 13] = [
        0x14, 0xe9, 0x00, 0x35, 0x00, 0x0d, 0x19, 0xbb, b'h', b'e', b'l', b'l', b'o',
    ];

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&HELLO[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (5353, 53, 13));
        assert_eq!(p.checksum(), 0x19bb);
        assert_eq!(p.payload(), b"hello");
        assert!(p.verify_checksum(CLIENT, VIP));
        let r = Repr::parse(&p, CLIENT, VIP).unwrap();
        assert_eq!(
            r,
            Repr {
                src_port: 5353,
                dst_port: 53,
                payload: b"hello"
            }
        );
    }

    #[test]
    fn construct() {
        let r = Repr {
            src_port: 5353,
            dst_port: 53,
            payload: b"hello",
        };
        let mut buf = [0xaa; 13];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]), CLIENT, VIP);
        assert_eq!(buf, HELLO);
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut b = HELLO;
        b[6] = 0;
        b[7] = 0;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(CLIENT, Ipv4Addr::new(1, 2, 3, 4)));
        assert!(Repr::parse(&p, CLIENT, VIP).is_ok());
        let mut b = HELLO;
        b[8] = b'j';
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Repr::parse(&p, CLIENT, VIP).unwrap_err(),
            Error::BadChecksum { what: "udp" }
        );
    }

    #[test]
    fn computed_zero_is_sent_as_all_ones() {
        // Pick the last two payload bytes so that the sum before complement
        // is 0xffff: then the computed checksum is 0 and must go out as 0xffff.
        let mut buf = [0u8; 10];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_len(10);
        let partial = checksum::accumulate(
            checksum::pseudo_header_v4(CLIENT, VIP, PROTOCOL, 10),
            &p.as_ref()[..8],
        );
        let mut s = partial;
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        let filler = 0xffff - s as u16;
        p.payload_mut().copy_from_slice(&filler.to_be_bytes());
        p.fill_checksum(CLIENT, VIP);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(CLIENT, VIP));
    }

    #[test]
    fn errors() {
        assert_eq!(
            Packet::new_checked(&HELLO[..7]).unwrap_err(),
            Error::Truncated {
                what: "udp",
                need: 8,
                have: 7
            }
        );
        assert_eq!(
            Packet::new_checked(&HELLO[..12]).unwrap_err(),
            Error::Truncated {
                what: "udp length",
                need: 13,
                have: 12
            }
        );
        let mut b = HELLO;
        b[5] = 7;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadLength {
                what: "udp length",
                value: 7
            }
        );
        // Trailing bytes past the length field are not payload.
        let mut b = HELLO.to_vec();
        b.extend_from_slice(&[0; 5]);
        assert_eq!(Packet::new_checked(&b[..]).unwrap().payload(), b"hello");
    }

    proptest! {
        #[test]
        fn round_trip(src in arb_ipv4(), dst in arb_ipv4(), ports in any::<(u16, u16)>(),
                      payload in proptest::collection::vec(any::<u8>(), 0..100)) {
            let r = Repr { src_port: ports.0, dst_port: ports.1, payload: &payload };
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]), src, dst);
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert!(p.checksum() != 0);
            prop_assert_eq!(Repr::parse(&p, src, dst).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..64), fix in any::<bool>(),
                                       src in arb_ipv4(), dst in arb_ipv4()) {
            if fix && bytes.len() >= 8 {
                let l = bytes.len() as u16;
                let v = u16::from_be_bytes([bytes[4], bytes[5]]) % (l + 1);
                bytes[4..6].copy_from_slice(&v.to_be_bytes());
            }
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.src_port(), p.dst_port(), p.is_empty(), p.checksum(), p.verify_checksum(src, dst));
                prop_assert_eq!(p.payload().len() + HEADER_LEN, usize::from(p.len()));
                let _ = Repr::parse(&p, src, dst);
            } else {
                let p = Packet::new_unchecked(&bytes[..]);
                prop_assert!(Repr::parse(&p, src, dst).is_err());
            }
            let mut copy = bytes.clone();
            if let Ok(mut p) = Packet::new_checked(&mut copy[..]) {
                p.fill_checksum(src, dst);
                prop_assert!(p.verify_checksum(src, dst));
                p.set_len(u16::MAX);
                let _ = (p.payload().len(), p.payload_mut().len(), p.verify_checksum(src, dst));
                p.fill_checksum(src, dst);
            }
        }
    }
}
