//! ARP (RFC 826) for Ethernet and IPv4.
//!
//! RFC 826, "Packet format":
//! ```text
//! 16.bit: (ar$hrd) Hardware address space (e.g., Ethernet, Packet Radio Net.)
//! 16.bit: (ar$pro) Protocol address space.  For Ethernet hardware, this is
//!                  from the set of type fields ether_typ$<protocol>.
//!  8.bit: (ar$hln) byte length of each hardware address
//!  8.bit: (ar$pln) byte length of each protocol address
//! 16.bit: (ar$op)  opcode (ares_op$REQUEST | ares_op$REPLY)
//! nbytes: (ar$sha) Hardware address of sender of this packet, n from the ar$hln field.
//! mbytes: (ar$spa) Protocol address of sender of this packet, m from the ar$pln field.
//! nbytes: (ar$tha) Hardware address of target of this packet (if known).
//! mbytes: (ar$tpa) Protocol address of target.
//! ```
//! The view ([`Packet`]) handles any address lengths; [`Repr`] only the
//! Ethernet/IPv4 case (28 bytes), the only one proxyha speaks.

use core::fmt;
use std::net::Ipv4Addr;

use super::bytes::be16;
use super::ethernet::{self, Address, EtherType};
use super::{Error, Result, need};

/// The ARP opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// 1.
    Request,
    /// 2.
    Reply,
    /// Anything else (RARP and so on).
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Operation::Request,
            2 => Operation::Reply,
            v => Operation::Unknown(v),
        }
    }
}

impl From<Operation> for u16 {
    fn from(o: Operation) -> u16 {
        match o {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(v) => v,
        }
    }
}

/// ar$hrd for Ethernet (RFC 826: "ares_hrd$Ethernet = 1").
pub const HARDWARE_ETHERNET: u16 = 1;

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const FIXED: usize = 8;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const ETHERNET_IPV4_LEN: usize = 28;

const WHAT: &str = "arp";

/// A read/write view of an ARP packet.
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

    /// Checks that the buffer holds the fixed part and both address pairs.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        need(WHAT, b, field::FIXED)?;
        let n = field::FIXED
            + 2 * (usize::from(self.hardware_len()) + usize::from(self.protocol_len()));
        need("arp addresses", b, n)
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, r: core::ops::Range<usize>) -> u16 {
        be16(self.buffer.as_ref(), r)
    }

    /// ar$hrd.
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        self.u16_at(field::HTYPE)
    }

    /// ar$pro.
    #[inline]
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(self.u16_at(field::PTYPE))
    }

    /// ar$hln.
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// ar$pln.
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// ar$op.
    #[inline]
    pub fn operation(&self) -> Operation {
        Operation::from(self.u16_at(field::OPER))
    }

    fn slot(&self, index: usize) -> core::ops::Range<usize> {
        let (h, p) = (
            usize::from(self.hardware_len()),
            usize::from(self.protocol_len()),
        );
        let starts = [
            field::FIXED,
            field::FIXED + h,
            field::FIXED + h + p,
            field::FIXED + 2 * h + p,
        ];
        let lens = [h, p, h, p];
        starts[index]..starts[index] + lens[index]
    }

    /// ar$sha, `hardware_len` bytes.
    #[inline]
    pub fn source_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.slot(0)]
    }

    /// ar$spa, `protocol_len` bytes.
    #[inline]
    pub fn source_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.slot(1)]
    }

    /// ar$tha, `hardware_len` bytes.
    #[inline]
    pub fn target_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.slot(2)]
    }

    /// ar$tpa, `protocol_len` bytes.
    #[inline]
    pub fn target_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.slot(3)]
    }

    /// Whether this is the Ethernet/IPv4 form (hrd 1, pro 0x0800, hln 6, pln 4).
    #[inline]
    pub fn is_ethernet_ipv4(&self) -> bool {
        self.hardware_type() == HARDWARE_ETHERNET
            && self.protocol_type() == EtherType::Ipv4
            && self.hardware_len() == 6
            && self.protocol_len() == 4
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An Ethernet/IPv4 ARP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Request or reply.
    pub operation: Operation,
    /// ar$sha.
    pub sender_hw: Address,
    /// ar$spa.
    pub sender_ip: Ipv4Addr,
    /// ar$tha (zero in a request: RFC 5227 §2.1.1).
    pub target_hw: Address,
    /// ar$tpa.
    pub target_ip: Ipv4Addr,
}

fn mac(b: &[u8]) -> Address {
    let mut a = [0; 6];
    a.copy_from_slice(b);
    Address(a)
}

fn ip(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

impl Repr {
    /// Parses an Ethernet/IPv4 ARP packet; other address spaces are errors
    /// naming the field.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        let bad = |field, value: u64| {
            Err(Error::BadField {
                what: WHAT,
                field,
                value,
            })
        };
        if packet.hardware_type() != HARDWARE_ETHERNET {
            return bad("hardware type", u64::from(packet.hardware_type()));
        }
        if packet.protocol_type() != EtherType::Ipv4 {
            return bad(
                "protocol type",
                u64::from(u16::from(packet.protocol_type())),
            );
        }
        if packet.hardware_len() != 6 {
            return bad("hardware address length", u64::from(packet.hardware_len()));
        }
        if packet.protocol_len() != 4 {
            return bad("protocol address length", u64::from(packet.protocol_len()));
        }
        Ok(Repr {
            operation: packet.operation(),
            sender_hw: mac(packet.source_hardware_addr()),
            sender_ip: ip(packet.source_protocol_addr()),
            target_hw: mac(packet.target_hardware_addr()),
            target_ip: ip(packet.target_protocol_addr()),
        })
    }

    /// 28 bytes.
    #[inline]
    pub const fn buffer_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }

    /// Writes the 28-byte message.
    ///
    /// # Panics
    /// If the buffer is shorter than 28 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let b = packet.buffer.as_mut();
        b[field::HTYPE].copy_from_slice(&HARDWARE_ETHERNET.to_be_bytes());
        b[field::PTYPE].copy_from_slice(&EtherType::Ipv4.to_u16().to_be_bytes());
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        b[field::OPER].copy_from_slice(&u16::from(self.operation).to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_hw.0);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_hw.0);
        b[24..28].copy_from_slice(&self.target_ip.octets());
    }

    /// A request asking who has `target_ip`.
    pub fn request(sender_hw: Address, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Repr {
        Repr {
            operation: Operation::Request,
            sender_hw,
            sender_ip,
            target_hw: Address::UNSPECIFIED,
            target_ip,
        }
    }

    /// A gratuitous ARP (an ARP Announcement, RFC 5227 §2.3): "an ARP Request
    /// packet ... having both the sender and target IP addresses set to the
    /// newly selected IPv4 address". VRRP (RFC 5798 §6.4.1) sends one per
    /// virtual address with the virtual router MAC as `hw`.
    pub fn gratuitous(hw: Address, ip: Ipv4Addr) -> Repr {
        Repr::request(hw, ip, ip)
    }

    /// Whether this announces the sender's own address (sender IP = target IP).
    #[inline]
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }

    /// The reply to `request` from the owner of `request.target_ip`, whose
    /// MAC is `hw` (RFC 826: "swap the hardware and protocol fields, putting
    /// the local hardware and protocol addresses in the sender fields").
    pub fn reply(request: &Repr, hw: Address) -> Repr {
        Repr {
            operation: Operation::Reply,
            sender_hw: hw,
            sender_ip: request.target_ip,
            target_hw: request.sender_hw,
            target_ip: request.sender_ip,
        }
    }

    /// The Ethernet header this message travels under: from `sender_hw`; to
    /// broadcast for a request, to `target_hw` for a reply.
    pub fn ethernet_repr(&self, vlan: Option<u16>) -> ethernet::Repr {
        ethernet::Repr {
            src: self.sender_hw,
            dst: match self.operation {
                Operation::Reply => self.target_hw,
                _ => Address::BROADCAST,
            },
            vlan,
            ethertype: EtherType::Arp,
        }
    }

    /// A complete Ethernet frame carrying this message (see
    /// [`Repr::ethernet_repr`]), zero-padded to the 60-byte Ethernet minimum.
    pub fn to_frame(&self, vlan: Option<u16>) -> Vec<u8> {
        let eth = self.ethernet_repr(vlan);
        let mut buf = vec![0u8; eth.buffer_len(ETHERNET_IPV4_LEN).max(60)];
        let mut frame = ethernet::Packet::new_unchecked(&mut buf[..]);
        eth.emit(&mut frame);
        self.emit(&mut Packet::new_unchecked(frame.payload_mut()));
        buf
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operation {
            Operation::Request => {
                write!(f, "ARP who-has {} tell {}", self.target_ip, self.sender_ip)
            }
            Operation::Reply => write!(f, "ARP {} is-at {}", self.sender_ip, self.sender_hw),
            Operation::Unknown(o) => {
                write!(f, "ARP op {o} from {} ({})", self.sender_ip, self.sender_hw)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::tests::arb_address;
    use crate::wire::ipv4::tests::arb_ipv4;
    use proptest::prelude::*;

    // Who has 198.18.0.250? Tell 198.18.0.10 (02:00:00:00:00:0a).
    static REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 198,
        18, 0, 10, 0, 0, 0, 0, 0, 0, 198, 18, 0, 250,
    ];
    // 198.18.0.250 is-at 00:00:5e:00:01:33.
    static REPLY: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x00, 0x00, 0x5e, 0x00, 0x01, 0x33, 198,
        18, 0, 250, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 198, 18, 0, 10,
    ];

    fn client() -> (Address, Ipv4Addr) {
        (
            Address([2, 0, 0, 0, 0, 0x0a]),
            Ipv4Addr::new(198, 18, 0, 10),
        )
    }
    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);

    #[test]
    fn kernel_captured_request_and_reply() {
        use crate::wire::pcap::captured;
        let req_frame = captured::hex(captured::ARP_REQUEST);
        let eth = ethernet::Packet::new_checked(&req_frame[..]).unwrap();
        assert_eq!(eth.ethertype(), EtherType::Arp);
        let req = Repr::parse(&Packet::new_checked(eth.payload()).unwrap()).unwrap();
        let asker: Address = "6e:6c:d7:c9:94:1e".parse().unwrap();
        assert_eq!(
            req,
            Repr::request(
                asker,
                Ipv4Addr::new(198, 18, 1, 1),
                Ipv4Addr::new(198, 18, 1, 2)
            )
        );
        // Our request frame is the kernel's, plus padding to 60 bytes.
        assert_eq!(req.to_frame(None)[..42], req_frame[..]);

        let rep_frame = captured::hex(captured::ARP_REPLY);
        let owner: Address = "f2:8c:7b:10:e2:01".parse().unwrap();
        let ours = Repr::reply(&req, owner);
        let eth = ethernet::Packet::new_checked(&rep_frame[..]).unwrap();
        assert_eq!(
            Repr::parse(&Packet::new_checked(eth.payload()).unwrap()).unwrap(),
            ours
        );
        assert_eq!(ours.to_frame(None)[..42], rep_frame[..]);
    }

    #[test]
    fn deconstruct_request() {
        let p = Packet::new_checked(&REQUEST[..]).unwrap();
        assert!(p.is_ethernet_ipv4());
        assert_eq!(p.operation(), Operation::Request);
        assert_eq!(p.source_hardware_addr(), &[2, 0, 0, 0, 0, 0x0a]);
        assert_eq!(p.target_protocol_addr(), &[198, 18, 0, 250]);
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r, Repr::request(client().0, client().1, VIP));
        assert!(!r.is_gratuitous());
    }

    #[test]
    fn construct_request_and_reply() {
        let req = Repr::request(client().0, client().1, VIP);
        let mut buf = [0xffu8; 28];
        req.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST);

        let rep = Repr::reply(&req, Address::vrrp_virtual(51));
        rep.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REPLY);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&REPLY[..]).unwrap()).unwrap(),
            rep
        );
    }

    #[test]
    fn gratuitous_frame() {
        let g = Repr::gratuitous(Address::vrrp_virtual(51), VIP);
        assert!(g.is_gratuitous());
        let frame = g.to_frame(None);
        assert_eq!(frame.len(), 60);
        let eth = ethernet::Packet::new_checked(&frame[..]).unwrap();
        assert_eq!(eth.dst_addr(), Address::BROADCAST);
        assert_eq!(eth.src_addr(), Address::vrrp_virtual(51));
        assert_eq!(eth.ethertype(), EtherType::Arp);
        let r = Repr::parse(&Packet::new_checked(eth.payload()).unwrap()).unwrap();
        assert_eq!(r, g);
        assert_eq!(&eth.payload()[28..], &[0u8; 18]);
        // A reply frame goes to the asker, tagged when asked.
        let rep = Repr::reply(
            &Repr::request(client().0, client().1, VIP),
            Address::vrrp_virtual(51),
        );
        let frame = rep.to_frame(Some(7));
        let eth = ethernet::Packet::new_checked(&frame[..]).unwrap();
        assert_eq!((eth.dst_addr(), eth.vlan_id()), (client().0, Some(7)));
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            Packet::new_checked(&REQUEST[..7]).unwrap_err(),
            Error::Truncated {
                what: "arp",
                need: 8,
                have: 7
            }
        );
        assert_eq!(
            Packet::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated {
                what: "arp addresses",
                need: 28,
                have: 27
            }
        );
        let mut b = REQUEST;
        b[1] = 6; // IEEE 802
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap_err(),
            Error::BadField {
                what: "arp",
                field: "hardware type",
                value: 6
            }
        );
        let mut b = REQUEST;
        b[2..4].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&b[..]).unwrap()).unwrap_err(),
            Error::BadField {
                what: "arp",
                field: "protocol type",
                value: 0x86dd
            }
        );
        let mut b = REQUEST.to_vec();
        b[5] = 16;
        b.resize(8 + 2 * (6 + 16), 0);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(!p.is_ethernet_ipv4());
        assert_eq!(p.target_protocol_addr().len(), 16);
        assert_eq!(
            Repr::parse(&p).unwrap_err(),
            Error::BadField {
                what: "arp",
                field: "protocol address length",
                value: 16
            }
        );
    }

    fn arb_repr() -> impl Strategy<Value = Repr> {
        (
            any::<u16>(),
            arb_address(),
            arb_ipv4(),
            arb_address(),
            arb_ipv4(),
        )
            .prop_map(|(op, sender_hw, sender_ip, target_hw, target_ip)| Repr {
                operation: Operation::from(op),
                sender_hw,
                sender_ip,
                target_hw,
                target_ip,
            })
    }

    proptest! {
        #[test]
        fn round_trip(repr in arb_repr()) {
            let mut buf = [0u8; 28];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
            prop_assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()).unwrap(), repr);
            let frame = repr.to_frame(None);
            let eth = ethernet::Packet::new_checked(&frame[..]).unwrap();
            prop_assert_eq!(Repr::parse(&Packet::new_checked(eth.payload()).unwrap()).unwrap(), repr);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..64), small in any::<bool>()) {
            if small && bytes.len() >= 6 {
                bytes[4] %= 8;
                bytes[5] %= 8;
            }
            if let Ok(p) = Packet::new_checked(&bytes[..]) {
                let _ = (p.hardware_type(), p.protocol_type(), p.hardware_len(), p.protocol_len(), p.operation());
                let _ = (p.source_hardware_addr(), p.source_protocol_addr(), p.target_hardware_addr(), p.target_protocol_addr());
                let _ = (p.is_ethernet_ipv4(), Repr::parse(&p));
            } else {
                prop_assert!(Repr::parse(&Packet::new_unchecked(&bytes[..])).is_err());
            }
        }
    }
}
