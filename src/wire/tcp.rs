//! TCP segments (RFC 9293) with the IPv4 pseudo-header checksum.
//!
//! RFC 9293 §3.1:
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Sequence Number                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Acknowledgment Number                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Data |       |C|E|U|A|P|R|S|F|                               |
//! | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//! |       |       |R|E|G|K|H|T|N|N|                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Checksum            |         Urgent Pointer        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           [Options]                           |
//! ```
//! "The checksum also covers a pseudo-header (Figure 2) conceptually
//! prefixed to the TCP header. The pseudo-header is 96 bits for IPv4 and
//! contains the Source Address, the Destination Address, the Protocol, and
//! TCP length."

use core::fmt;
use core::ops::{BitOr, BitOrAssign};
use std::net::Ipv4Addr;

use super::bytes::{be16, be32};
use super::checksum;
use super::ipv4::Protocol;
use super::{Error, Result, need};

/// The eight control bits of byte 13.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// No more data from sender.
    pub const FIN: Flags = Flags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: Flags = Flags(0x02);
    /// Reset the connection.
    pub const RST: Flags = Flags(0x04);
    /// Push function.
    pub const PSH: Flags = Flags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: Flags = Flags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: Flags = Flags(0x20);
    /// ECN-Echo (RFC 3168).
    pub const ECE: Flags = Flags(0x40);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: Flags = Flags(0x80);
    /// No flags.
    pub const NONE: Flags = Flags(0);

    /// Whether every bit of `other` is set.
    #[inline]
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// SYN set.
    #[inline]
    pub const fn syn(self) -> bool {
        self.contains(Flags::SYN)
    }

    /// ACK set.
    #[inline]
    pub const fn ack(self) -> bool {
        self.contains(Flags::ACK)
    }

    /// FIN set.
    #[inline]
    pub const fn fin(self) -> bool {
        self.contains(Flags::FIN)
    }

    /// RST set.
    #[inline]
    pub const fn rst(self) -> bool {
        self.contains(Flags::RST)
    }

    /// PSH set.
    #[inline]
    pub const fn psh(self) -> bool {
        self.contains(Flags::PSH)
    }

    /// URG set.
    #[inline]
    pub const fn urg(self) -> bool {
        self.contains(Flags::URG)
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Display for Flags {
    /// tcpdump's notation: `S`, `S.`, `F.`, `R`, `P.`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (flag, c) in [
            (Flags::FIN, 'F'),
            (Flags::SYN, 'S'),
            (Flags::RST, 'R'),
            (Flags::PSH, 'P'),
            (Flags::URG, 'U'),
            (Flags::ECE, 'E'),
            (Flags::CWR, 'W'),
            (Flags::ACK, '.'),
        ] {
            if self.contains(flag) {
                write!(f, "{c}")?;
            }
        }
        if self.0 == 0 {
            f.write_str("none")?;
        }
        Ok(())
    }
}

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Largest options field.
pub const MAX_OPTIONS_LEN: usize = 40;
/// IP protocol number.
pub const PROTOCOL: u8 = Protocol::Tcp.to_u8();

const WHAT: &str = "tcp";

/// A read/write view of a TCP segment (the whole IP payload).
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

    /// Checks that the buffer holds 20 bytes, that the data offset is at
    /// least 5 words, and that the options fit in the buffer.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        need(WHAT, b, HEADER_LEN)?;
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::BadLength {
                what: "tcp data offset",
                value: hl,
            });
        }
        need("tcp options", b, hl)
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

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    /// Acknowledgment number (meaningful when ACK is set).
    #[inline]
    pub fn ack_number(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// Header length in bytes (Data Offset × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// The control bits.
    #[inline]
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Window.
    #[inline]
    pub fn window(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WIN_SIZE)
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    #[inline]
    pub fn urgent(&self) -> u16 {
        be16(self.buffer.as_ref(), field::URGENT)
    }

    /// The options (20 .. header length).
    #[inline]
    pub fn options(&self) -> &[u8] {
        let hl = self.header_len();
        self.buffer.as_ref().get(HEADER_LEN..hl).unwrap_or(&[])
    }

    /// The data after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let hl = self.header_len();
        self.buffer.as_ref().get(hl..).unwrap_or(&[])
    }

    /// Verifies the checksum over the IPv4 pseudo-header and the whole buffer.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let b = self.buffer.as_ref();
        let Ok(len) = u16::try_from(b.len()) else {
            return false;
        };
        let sum = checksum::pseudo_header_v4(src, dst, PROTOCOL, len);
        checksum::finish(checksum::accumulate(sum, b)) == 0
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

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, v: u32) {
        self.buffer.as_mut()[field::SEQ_NUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, v: u32) {
        self.buffer.as_mut()[field::ACK_NUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the data offset from a header length in bytes (multiple of 4, ≤ 60).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = ((len / 4) as u8) << 4;
    }

    /// Sets the control bits.
    #[inline]
    pub fn set_flags(&mut self, f: Flags) {
        self.buffer.as_mut()[field::FLAGS] = f.0;
    }

    /// Sets the window.
    #[inline]
    pub fn set_window(&mut self, v: u16) {
        self.buffer.as_mut()[field::WIN_SIZE].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the checksum field as is.
    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the urgent pointer.
    #[inline]
    pub fn set_urgent(&mut self, v: u16) {
        self.buffer.as_mut()[field::URGENT].copy_from_slice(&v.to_be_bytes());
    }

    /// Computes and stores the checksum over the pseudo-header and the whole
    /// buffer (which must be exactly the segment).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let b = self.buffer.as_ref();
        let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
        let sum = checksum::pseudo_header_v4(src, dst, PROTOCOL, len);
        let c = checksum::finish(checksum::accumulate(sum, b));
        self.set_checksum(c);
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

/// A parsed TCP segment, borrowing options and payload from the packet.
/// The reserved bits of byte 12 are not kept: [`Repr::emit`] writes them as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq_number: u32,
    /// Acknowledgment number.
    pub ack_number: u32,
    /// Control bits.
    pub flags: Flags,
    /// Window.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Raw options. Emitted zero-padded (End of Option List) to a 4-byte
    /// boundary; at most 40 bytes.
    pub options: &'a [u8],
    /// Data.
    pub payload: &'a [u8],
}

impl<'a> Repr<'a> {
    /// Parses a segment that arrived from `src` to `dst`, verifying the checksum.
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
        let hl = packet.header_len();
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window: packet.window(),
            urgent: packet.urgent(),
            options: &b[HEADER_LEN..hl],
            payload: &b[hl..],
        })
    }

    /// Header length this repr emits.
    #[inline]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len().next_multiple_of(4)
    }

    /// Header plus payload.
    #[inline]
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes header, options and payload and fills the checksum for `src`
    /// to `dst`. `packet` must be exactly [`Repr::buffer_len`] bytes, since
    /// the checksum covers the whole buffer.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::buffer_len`] or the options are
    /// longer than 40 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) {
        assert!(
            self.options.len() <= MAX_OPTIONS_LEN,
            "TCP options longer than 40 bytes"
        );
        let hl = self.header_len();
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        packet.set_header_len(hl);
        packet.set_flags(self.flags);
        packet.set_window(self.window);
        packet.set_urgent(self.urgent);
        let b = packet.buffer.as_mut();
        let olen = self.options.len();
        b[HEADER_LEN..HEADER_LEN + olen].copy_from_slice(self.options);
        b[HEADER_LEN + olen..hl].fill(0);
        b[hl..hl + self.payload.len()].copy_from_slice(self.payload);
        packet.fill_checksum(src, dst);
    }
}

impl fmt::Display for Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TCP {} > {} [{}] seq {} ack {} win {} len {}",
            self.src_port,
            self.dst_port,
            self.flags,
            self.seq_number,
            self.ack_number,
            self.window,
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

    /// A SYN from 198.18.0.10:40000 to 198.18.0.250:9090 with MSS 1460,
    /// window 64240. Checksum 0x4c62 computed independently (Python); tcpdump
    /// also reports it correct (see `pcap` tests).
    pub(crate) static SYN: [u8; 24] = [
        0x9c, 0x40, 0x23, 0x82, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02, 0xfa,
        0xf0, 0x4c, 0x62, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
    ];

    pub(crate) fn syn_repr() -> Repr<'static> {
        Repr {
            src_port: 40000,
            dst_port: 9090,
            seq_number: 1000,
            ack_number: 0,
            flags: Flags::SYN,
            window: 64240,
            urgent: 0,
            options: &[0x02, 0x04, 0x05, 0xb4],
            payload: &[],
        }
    }

    #[test]
    fn deconstruct_syn() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (40000, 9090));
        assert_eq!(p.seq_number(), 1000);
        assert_eq!(p.header_len(), 24);
        assert!(p.flags().syn() && !p.flags().ack());
        assert_eq!(p.window(), 64240);
        assert_eq!(p.checksum(), 0x4c62);
        assert_eq!(p.options(), &[0x02, 0x04, 0x05, 0xb4]);
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum(CLIENT, VIP));
        // A different pseudo-header (the DSR node's own IP) does not verify.
        assert!(!p.verify_checksum(CLIENT, Ipv4Addr::new(198, 18, 0, 11)));
        assert_eq!(Repr::parse(&p, CLIENT, VIP).unwrap(), syn_repr());
    }

    #[test]
    fn construct_syn() {
        let r = syn_repr();
        let mut buf = vec![0xaa; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]), CLIENT, VIP);
        assert_eq!(buf, SYN);
    }

    #[test]
    fn data_with_odd_length_and_padded_options() {
        let r = Repr {
            flags: Flags::PSH | Flags::ACK,
            options: &[1, 1, 8],
            payload: b"GET / HTTP/1.0\r\n\r\n!",
            ..syn_repr()
        };
        let mut buf = vec![0; r.buffer_len()];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]), CLIENT, VIP);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.options(), &[1, 1, 8, 0]);
        assert_eq!(p.flags().to_string(), "P.");
        let parsed = Repr::parse(&p, CLIENT, VIP).unwrap();
        assert_eq!(parsed.payload, r.payload);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Packet::new_checked(&SYN[..19]).unwrap_err(),
            Error::Truncated {
                what: "tcp",
                need: 20,
                have: 19
            }
        );
        assert_eq!(
            Packet::new_checked(&SYN[..23]).unwrap_err(),
            Error::Truncated {
                what: "tcp options",
                need: 24,
                have: 23
            }
        );
        let mut b = SYN;
        b[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::BadLength {
                what: "tcp data offset",
                value: 16
            }
        );
        let mut b = SYN;
        b[20] ^= 0xff;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            Repr::parse(&p, CLIENT, VIP).unwrap_err(),
            Error::BadChecksum { what: "tcp" }
        );
    }

    #[test]
    fn flags_display() {
        assert_eq!(Flags::SYN.to_string(), "S");
        assert_eq!((Flags::SYN | Flags::ACK).to_string(), "S.");
        assert_eq!((Flags::FIN | Flags::ACK).to_string(), "F.");
        assert_eq!(Flags::RST.to_string(), "R");
        assert_eq!(Flags::NONE.to_string(), "none");
        let mut f = Flags::URG;
        f |= Flags::FIN;
        assert!(f.urg() && f.fin() && !f.rst() && !f.psh());
    }

    proptest! {
        #[test]
        fn round_trip(
            src in arb_ipv4(), dst in arb_ipv4(),
            ports in any::<(u16, u16)>(), seq in any::<(u32, u32)>(), flags in any::<u8>(),
            window in any::<u16>(), urgent in any::<u16>(),
            options in (0usize..=10).prop_flat_map(|w| proptest::collection::vec(any::<u8>(), w * 4)),
            payload in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let r = Repr {
                src_port: ports.0, dst_port: ports.1, seq_number: seq.0, ack_number: seq.1,
                flags: Flags(flags), window, urgent, options: &options, payload: &payload,
            };
            let mut buf = vec![0u8; r.buffer_len()];
            r.emit(&mut Packet::new_unchecked(&mut buf[..]), src, dst);
            let p = Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Repr::parse(&p, src, dst).unwrap(), r);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100), src in arb_ipv4(), dst in arb_ipv4()) {
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.flags(), p.window());
                let _ = (p.checksum(), p.urgent(), p.verify_checksum(src, dst));
                prop_assert_eq!(HEADER_LEN + p.options().len() + p.payload().len(), bytes.len());
                let _ = Repr::parse(&p, src, dst);
            } else {
                let p = Packet::new_unchecked(&bytes[..]);
                prop_assert!(Repr::parse(&p, src, dst).is_err());
            }
            let mut copy = bytes.clone();
            if let Ok(mut p) = Packet::new_checked(&mut copy[..]) {
                p.fill_checksum(src, dst);
                prop_assert!(p.verify_checksum(src, dst));
                p.set_header_len(60);
                let _ = (p.options().len(), p.payload().len(), p.payload_mut().len());
            }
        }
    }
}
