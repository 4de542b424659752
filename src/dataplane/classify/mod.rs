//! The classifier: one frame in, one [`Verdict`] out.
//!
//! It runs on every received frame, so it reads fixed byte offsets directly
//! (every read bounds-checked; no input panics) instead of building the
//! `wire` views. What it checks is exactly what steering needs; the full
//! protocol checks of VRRP and heartbeats happen in the control plane, and the
//! IP packet of a proxied flow is forwarded unchanged, so the receiving node's
//! kernel validates its checksums.
//!
//! Rules, in order:
//! 1. Ethernet II, with at most one 802.1Q tag. Shorter than a header: drop.
//! 2. ARP whose target protocol address is a VIP: [`Verdict::ArpForVip`]; other ARP: pass.
//! 3. IPv4 (header length and total length checked; malformed: drop):
//!    * protocol 112 with our VRID: [`Verdict::Vrrp`] (other VRIDs: pass);
//!    * protocol 253: [`Verdict::Heartbeat`];
//!    * TCP or UDP to a VIP on a redirected port, sent to the steering MAC
//!      (the virtual MAC; active-active: our own) and not from a member's
//!      MAC (active-active: another director's redirect, for us: pass):
//!      [`Verdict::ProxyFlow`]; a first fragment (offset 0, more-fragments
//!      set) of such a datagram: [`Verdict::FirstFragment`], steered by its
//!      ports; a later fragment of any TCP/UDP datagram to a VIP (it has no
//!      ports): [`Verdict::Fragment`], steered by the worker's fragment
//!      cache (`flow::Fragments`) to wherever its first fragment went;
//!    * an ICMP destination-unreachable (fragmentation needed included) or
//!      time-exceeded error to a VIP, sent to the virtual MAC, that quotes a
//!      TCP/UDP packet *from* a VIP on a redirected port (a scanning node's
//!      direct reply): [`Verdict::IcmpError`] with the flow key turned back
//!      to the client → VIP direction ([`icmp_quote`]); the worker sends it
//!      to the node owning that flow. A quote cut short: drop. Other ICMP:
//!      pass;
//!    * anything else: pass.
//! 4. IPv6: the rules of [`ipv6`] (VRRP for our VRID and neighbour
//!    solicitations for an IPv6 VIP to the control plane).
//! 5. Every other EtherType: pass.

mod ipv6;
pub mod ipv6_flow;

use std::net::Ipv4Addr;

use crate::balance::flow;
use crate::wire::bytes::{be16, get_be16, get_be32};
use crate::wire::ethernet::{self, EtherType};
use crate::wire::ipv4::Protocol;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = EtherType::Ipv4.to_u16();
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = EtherType::Ipv6.to_u16();
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = EtherType::Arp.to_u16();
/// EtherType of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = EtherType::Vlan.to_u16();
/// EtherType of an 802.1ad service tag, looked through like an 802.1Q tag
/// (as the XDP filter does).
pub const ETHERTYPE_QINQ: u16 = EtherType::ServiceVlan.to_u16();
/// IP protocol number of VRRP.
pub const PROTO_VRRP: u8 = Protocol::Vrrp.to_u8();
/// IP protocol number of our heartbeats.
pub const PROTO_HEARTBEAT: u8 = Protocol::Heartbeat.to_u8();
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = Protocol::Tcp.to_u8();
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = Protocol::Udp.to_u8();
/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// ICMP type: destination unreachable (code 4: fragmentation needed).
pub const ICMP_DEST_UNREACHABLE: u8 = 3;
/// ICMP type: time exceeded.
pub const ICMP_TIME_EXCEEDED: u8 = 11;

/// The VRRP virtual MAC of `vrid` as octets: [`ethernet::Address::vrrp_virtual`].
pub const fn virtual_mac(vrid: u8) -> [u8; 6] {
    ethernet::Address::vrrp_virtual(vrid).octets()
}

/// A set of ports (a 65536-bit bitmap).
#[derive(Clone, PartialEq, Eq)]
pub struct PortSet {
    bits: Box<[u64; 1024]>,
}

impl std::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Default for PortSet {
    fn default() -> Self {
        PortSet {
            bits: Box::new([0; 1024]),
        }
    }
}

impl PortSet {
    /// The empty set.
    pub fn new() -> PortSet {
        PortSet::default()
    }

    /// Adds `port`.
    pub fn insert(&mut self, port: u16) {
        self.bits[usize::from(port >> 6)] |= 1 << (port & 63);
    }

    /// Removes `port`.
    pub fn remove(&mut self, port: u16) {
        self.bits[usize::from(port >> 6)] &= !(1 << (port & 63));
    }

    /// Whether `port` is in the set.
    #[inline]
    pub fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port >> 6)] & (1 << (port & 63)) != 0
    }

    /// The ports in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..=u16::MAX).filter(|&p| self.contains(p))
    }
}

impl FromIterator<u16> for PortSet {
    fn from_iter<I: IntoIterator<Item = u16>>(iter: I) -> Self {
        let mut s = PortSet::new();
        for p in iter {
            s.insert(p);
        }
        s
    }
}

/// What the classifier (and the worker) needs to know, published by the
/// control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The virtual IPs.
    pub vips: Vec<Ipv4Addr>,
    /// The IPv6 virtual IPs (the link-local one included): neighbour
    /// solicitations for them go to the control plane.
    pub vips6: Vec<std::net::Ipv6Addr>,
    /// Redirected (original destination) ports.
    pub ports: PortSet,
    /// Our VRRP VRID.
    pub vrid: u8,
    /// The destination MAC of the frames to balance: the VRRP virtual MAC
    /// (active-passive) or this node's own MAC (active-active); see
    /// `control::forwarding`.
    pub steer_mac: [u8; 6],
    /// Active-active: the MACs of the cluster's members. A frame from one
    /// of them is another director's redirect to this node, for the local
    /// stack ([`Verdict::Pass`]), never balanced again. Empty otherwise.
    pub peer_macs: Vec<[u8; 6]>,
    /// This node's own MAC: the source MAC of redirected frames.
    pub our_mac: [u8; 6],
    /// This node's slot in the health table, if it scans too: flows Maglev
    /// gives to it are delivered to the local stack instead of redirected.
    pub local_slot: Option<u16>,
}

impl Filter {
    /// A filter for VRID `vrid` (virtual MAC derived from it) and our MAC,
    /// with no VIPs and no ports yet.
    pub fn new(vrid: u8, our_mac: [u8; 6]) -> Filter {
        Filter {
            vips: Vec::new(),
            vips6: Vec::new(),
            ports: PortSet::new(),
            vrid,
            steer_mac: virtual_mac(vrid),
            peer_macs: Vec::new(),
            our_mac,
            local_slot: None,
        }
    }

    /// Balances frames sent to `mac` instead of the virtual MAC.
    pub fn with_steer_mac(mut self, mac: [u8; 6]) -> Filter {
        self.steer_mac = mac;
        self
    }

    /// Hands frames from these MACs to the local stack (active-active).
    pub fn with_peer_macs(mut self, macs: impl IntoIterator<Item = [u8; 6]>) -> Filter {
        self.peer_macs = macs.into_iter().filter(|m| *m != self.our_mac).collect();
        self
    }

    /// Whether a frame to VIP `dst` is one to balance: sent to the steering
    /// MAC and not a member's redirect.
    #[inline]
    fn balances(&self, frame: &[u8], dst: u32) -> bool {
        // MACs compared as arrays: two inline loads each, not a slice
        // comparison call per frame.
        let mac = |r: std::ops::Range<usize>| -> Option<&[u8; 6]> {
            frame.get(r).and_then(|m| m.try_into().ok())
        };
        mac(0..6).is_some_and(|d| mac_eq(d, &self.steer_mac))
            && self.is_vip(dst)
            && (self.peer_macs.is_empty()
                || mac(6..12).is_some_and(|src| !self.peer_macs.iter().any(|m| mac_eq(m, src))))
    }

    /// Adds a VIP.
    pub fn with_vip(mut self, vip: Ipv4Addr) -> Filter {
        self.vips.push(vip);
        self
    }

    /// Adds an IPv6 VIP.
    pub fn with_vip6(mut self, vip: std::net::Ipv6Addr) -> Filter {
        self.vips6.push(vip);
        self
    }

    /// Adds redirected ports.
    pub fn with_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Filter {
        for p in ports {
            self.ports.insert(p);
        }
        self
    }

    /// Sets the local slot.
    pub fn with_local_slot(mut self, slot: Option<u16>) -> Filter {
        self.local_slot = slot;
        self
    }

    #[inline]
    fn is_vip(&self, ip: u32) -> bool {
        self.vips.iter().any(|v| u32::from(*v) == ip)
    }
}

/// Two MACs compared as one 4-byte and one 2-byte word: three loads and
/// two compares inline, where `==` on `[u8; 6]` was a call per frame.
#[inline(always)]
fn mac_eq(a: &[u8; 6], b: &[u8; 6]) -> bool {
    let w = |m: &[u8; 6]| {
        (
            u32::from_ne_bytes([m[0], m[1], m[2], m[3]]),
            u16::from_ne_bytes([m[4], m[5]]),
        )
    };
    w(a) == w(b)
}

/// Why a frame was dropped. Each reason has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than an Ethernet header.
    Runt = 0,
    /// A VLAN tag cut short.
    BadVlan,
    /// An ARP packet cut short.
    BadArp,
    /// IPv4 header: wrong version, header length < 20 or beyond the frame.
    BadIpv4Header,
    /// IPv4 total length shorter than its header or beyond the frame.
    BadIpv4Length,
    /// TCP header cut short or with a bad data offset.
    BadTcp,
    /// UDP header cut short.
    BadUdp,
    /// VRRP packet too short to carry a VRID.
    BadVrrp,
    /// Balanced flow but no node is up (set by the worker).
    NoBackend,
    /// An ICMP error to a VIP whose quoted packet is cut short or malformed.
    BadIcmp,
    /// A later IPv4 fragment to a VIP whose first fragment was not seen (or
    /// whose cache entry expired or was replaced; set by the worker).
    FragUnmatched,
    /// IPv6 fixed header cut short, wrong version, or payload length
    /// beyond the frame.
    BadIpv6Header,
    /// A neighbour solicitation cut before its target address.
    BadNeighbourSolicit,
    /// IPv6 to a VIP whose first next header is an extension header (a
    /// fragment included): never delivered.
    Ipv6ExtensionHeader,
}

impl DropReason {
    /// Number of reasons.
    pub const COUNT: usize = 14;
    /// Every reason, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Runt,
        DropReason::BadVlan,
        DropReason::BadArp,
        DropReason::BadIpv4Header,
        DropReason::BadIpv4Length,
        DropReason::BadTcp,
        DropReason::BadUdp,
        DropReason::BadVrrp,
        DropReason::NoBackend,
        DropReason::BadIcmp,
        DropReason::FragUnmatched,
        DropReason::BadIpv6Header,
        DropReason::BadNeighbourSolicit,
        DropReason::Ipv6ExtensionHeader,
    ];

    /// The counter name (`drop_runt`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Runt => "drop_runt",
            DropReason::BadVlan => "drop_bad_vlan",
            DropReason::BadArp => "drop_bad_arp",
            DropReason::BadIpv4Header => "drop_bad_ipv4_header",
            DropReason::BadIpv4Length => "drop_bad_ipv4_length",
            DropReason::BadTcp => "drop_bad_tcp",
            DropReason::BadUdp => "drop_bad_udp",
            DropReason::BadVrrp => "drop_bad_vrrp",
            DropReason::NoBackend => "drop_no_backend",
            DropReason::BadIcmp => "drop_bad_icmp",
            DropReason::FragUnmatched => "drop_frag_unmatched",
            DropReason::BadIpv6Header => "drop_bad_ipv6_header",
            DropReason::BadNeighbourSolicit => "drop_bad_neighbour_solicit",
            DropReason::Ipv6ExtensionHeader => "drop_ipv6_extension_header",
        }
    }
}

/// A frame of a balanced flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyFlow {
    /// Its 5-tuple.
    pub key: flow::Key,
    /// What it means for the flow's lifetime (SYN, data, FIN/RST).
    pub segment: flow::Segment,
    /// Offset of the IPv4 header in the frame (14, or 18 with a VLAN tag).
    pub l3_offset: u8,
}

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Balance it.
    ProxyFlow(ProxyFlow),
    /// The first fragment of a TCP/UDP datagram to a VIP: balance it by its
    /// ports (`Some`: a redirected port) or give it to the local stack
    /// (`None`), and remember which for the later fragments.
    FirstFragment(Option<ProxyFlow>, flow::FragKey),
    /// A later fragment of a TCP/UDP datagram to a VIP: follow its first.
    Fragment(flow::FragKey),
    /// An ICMP error about a balanced flow: to the node that owns it. The
    /// key is in the client → VIP direction, as the flow table has it.
    IcmpError(flow::Key),
    /// VRRP for our VRID: to the control plane.
    Vrrp,
    /// A protocol-253 heartbeat: to the control plane.
    Heartbeat,
    /// ARP for one of our VIPs: to the control plane (the master answers).
    ArpForVip,
    /// Not ours: to the local stack.
    Pass,
    /// Malformed: dropped and counted.
    Drop(DropReason),
}

/// What a whole TCP (`proto` 6) or UDP header at the start of `l4` means
/// for its flow's lifetime, for IPv4 and IPv6 alike: a TCP header needs 20
/// bytes and a data offset within `l4`, a UDP header 8 bytes; otherwise the
/// drop reason.
#[inline(always)]
fn segment_of(proto: u8, l4: &[u8]) -> Result<flow::Segment, DropReason> {
    if proto != PROTO_TCP {
        return if l4.len() < 8 {
            Err(DropReason::BadUdp)
        } else {
            Ok(flow::Segment::Data)
        };
    }
    let (Some(&off), Some(&flags)) = (l4.get(12), l4.get(13)) else {
        return Err(DropReason::BadTcp);
    };
    let doff = usize::from(off >> 4) * 4;
    if l4.len() < 20 || doff < 20 || doff > l4.len() {
        return Err(DropReason::BadTcp);
    }
    Ok(if flags & 0x05 != 0 {
        flow::Segment::Close
    } else if flags & 0x12 == 0x02 {
        flow::Segment::Open
    } else {
        flow::Segment::Data
    })
}

/// Classifies one frame. Never panics.
#[inline(always)]
pub fn classify(filter: &Filter, frame: &[u8]) -> Verdict {
    let Some(mut ethertype) = get_be16(frame, 12) else {
        return Verdict::Drop(DropReason::Runt);
    };
    let mut l3 = 14;
    if ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
        let Some(inner) = get_be16(frame, 16) else {
            return Verdict::Drop(DropReason::BadVlan);
        };
        ethertype = inner;
        l3 = 18;
    }
    match ethertype {
        ETHERTYPE_IPV4 => classify_ipv4(filter, frame, l3),
        ETHERTYPE_IPV6 => ipv6::classify_ipv6(filter, frame, l3),
        ETHERTYPE_ARP => {
            // ARP for IPv4 over Ethernet: 28 bytes; target protocol address at 24.
            match get_be32(frame, l3 + 24) {
                Some(tpa) if filter.is_vip(tpa) => Verdict::ArpForVip,
                Some(_) => Verdict::Pass,
                None => Verdict::Drop(DropReason::BadArp),
            }
        }
        _ => Verdict::Pass,
    }
}

#[inline(always)]
fn classify_ipv4(filter: &Filter, frame: &[u8], l3: usize) -> Verdict {
    let Some(&vihl) = frame.get(l3) else {
        return Verdict::Drop(DropReason::BadIpv4Header);
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 || frame.len() < l3 + ihl {
        return Verdict::Drop(DropReason::BadIpv4Header);
    }
    let total = usize::from(get_be16(frame, l3 + 2).unwrap_or(0));
    if total < ihl || l3 + total > frame.len() {
        return Verdict::Drop(DropReason::BadIpv4Length);
    }
    let end = l3 + total;
    let proto = frame[l3 + 9];
    let l4 = l3 + ihl;
    match proto {
        PROTO_VRRP => {
            // VRRP: version/type, then the VRID.
            if end < l4 + 2 {
                return Verdict::Drop(DropReason::BadVrrp);
            }
            if frame[l4 + 1] == filter.vrid {
                Verdict::Vrrp
            } else {
                Verdict::Pass
            }
        }
        PROTO_HEARTBEAT => Verdict::Heartbeat,
        PROTO_ICMP => {
            let dst = get_be32(frame, l3 + 16).unwrap_or(0);
            let frag = get_be16(frame, l3 + 6).unwrap_or(0);
            if !filter.balances(frame, dst) || frag & 0x3fff != 0 {
                return Verdict::Pass;
            }
            match icmp_quote(filter, &frame[l4..end]) {
                Quote::Flow(key) => Verdict::IcmpError(key),
                Quote::Other => Verdict::Pass,
                Quote::Malformed => Verdict::Drop(DropReason::BadIcmp),
            }
        }
        PROTO_TCP | PROTO_UDP => {
            let dst = get_be32(frame, l3 + 16).unwrap_or(0);
            if !filter.balances(frame, dst) {
                return Verdict::Pass;
            }
            let src = get_be32(frame, l3 + 12).unwrap_or(0);
            // A fragment: a later one has no ports and follows its first one
            // (the worker's fragment cache); a first one is steered by its
            // ports, like the flow it belongs to.
            let frag = get_be16(frame, l3 + 6).unwrap_or(0);
            let fragment = (frag & 0x3fff != 0).then(|| flow::FragKey {
                src,
                dst,
                id: get_be16(frame, l3 + 4).unwrap_or(0),
                proto,
            });
            if let Some(fk) = fragment
                && frag & 0x1fff != 0
            {
                return Verdict::Fragment(fk);
            }
            let segment = if fragment.is_some() {
                // The first fragment carries the ports; its transport header
                // may be cut by the fragmentation, so flags are not read.
                if end < l4 + 4 {
                    return Verdict::Drop(if proto == PROTO_TCP {
                        DropReason::BadTcp
                    } else {
                        DropReason::BadUdp
                    });
                }
                flow::Segment::Data
            } else {
                match segment_of(proto, frame.get(l4..end).unwrap_or(&[])) {
                    Ok(s) => s,
                    Err(r) => return Verdict::Drop(r),
                }
            };
            // TCP and UDP both start with the source and destination ports.
            let sport = be16(frame, l4..l4 + 2);
            let dport = be16(frame, l4 + 2..l4 + 4);
            if !filter.ports.contains(dport) {
                // Not balanced; a first fragment still tells the worker
                // where the later ones go (the local stack).
                return match fragment {
                    Some(fk) => Verdict::FirstFragment(None, fk),
                    None => Verdict::Pass,
                };
            }
            let pf = ProxyFlow {
                key: flow::Key {
                    src,
                    dst,
                    sport,
                    dport,
                    proto,
                    v6: false,
                },
                segment,
                l3_offset: l3 as u8,
            };
            match fragment {
                Some(fk) => Verdict::FirstFragment(Some(pf), fk),
                None => Verdict::ProxyFlow(pf),
            }
        }
        _ => Verdict::Pass,
    }
}

/// What an ICMP message to a VIP is about ([`icmp_quote`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// An error about this balanced flow (client → VIP direction).
    Flow(flow::Key),
    /// Not an error about a balanced flow.
    Other,
    /// An error whose quoted packet is cut short or not IPv4.
    Malformed,
}

/// Parses the body of an ICMP message sent to a VIP (`icmp`: from the ICMP
/// type to the end of the IP payload) and, if it is an error about a
/// balanced flow, returns that flow's key in the client → VIP direction.
///
/// RFC 792 / RFC 1812 §4.3.2.3: destination unreachable (type 3, code 4 is
/// "fragmentation needed") and time exceeded (type 11) carry, after the
/// 8-byte ICMP header, the IP header of the packet that caused them plus at
/// least its first 8 data bytes (the ports). For a balanced flow that packet
/// is a scanning node's direct reply, VIP:port → client, so the flow key is
/// the quote turned around.
///
/// [`Quote::Other`]: not an error type we steer, or a quote about something
/// else (not TCP/UDP, not from a VIP on a redirected port, a non-first
/// fragment): the local stack may have it. [`Quote::Malformed`]: an error
/// message whose quote is cut short or is not IPv4. Never panics.
pub fn icmp_quote(filter: &Filter, icmp: &[u8]) -> Quote {
    let Some(&kind) = icmp.first() else {
        return Quote::Malformed;
    };
    if kind != ICMP_DEST_UNREACHABLE && kind != ICMP_TIME_EXCEEDED {
        return Quote::Other;
    }
    let q = 8;
    let Some(&vihl) = icmp.get(q) else {
        return Quote::Malformed;
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 || icmp.len() < q + ihl + 4 {
        return Quote::Malformed;
    }
    let proto = icmp[q + 9];
    if proto != PROTO_TCP && proto != PROTO_UDP {
        return Quote::Other;
    }
    if get_be16(icmp, q + 6).unwrap_or(0) & 0x1fff != 0 {
        return Quote::Other;
    }
    let (Some(inner_src), Some(inner_dst)) = (get_be32(icmp, q + 12), get_be32(icmp, q + 16))
    else {
        return Quote::Malformed;
    };
    let l4 = q + ihl;
    let (Some(inner_sport), Some(inner_dport)) = (get_be16(icmp, l4), get_be16(icmp, l4 + 2))
    else {
        return Quote::Malformed;
    };
    if !filter.is_vip(inner_src) || !filter.ports.contains(inner_sport) {
        return Quote::Other;
    }
    Quote::Flow(flow::Key {
        src: inner_dst,
        dst: inner_src,
        sport: inner_dport,
        dport: inner_sport,
        proto,
        v6: false,
    })
}

/// Builders for test and benchmark frames (plain Ethernet/IPv4; checksums
/// filled in). Public so that integration tests and benches share them.
pub mod build {
    use super::*;
    use crate::wire::{checksum, vrrp};

    /// The shortest Ethernet frame, without the FCS.
    const MIN_FRAME: usize = 60;

    /// TCP flag bits.
    pub const FIN: u8 = 0x01;
    /// TCP SYN.
    pub const SYN: u8 = 0x02;
    /// TCP RST.
    pub const RST: u8 = 0x04;
    /// TCP ACK.
    pub const ACK: u8 = 0x10;

    fn ethernet(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>, ethertype: u16) -> Vec<u8> {
        let mut f = Vec::with_capacity(64);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        if let Some(tci) = vlan {
            f.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    /// `f` padded with zeros to [`MIN_FRAME`].
    fn padded(mut f: Vec<u8>) -> Vec<u8> {
        if f.len() < MIN_FRAME {
            f.resize(MIN_FRAME, 0);
        }
        f
    }

    fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: usize, ttl: u8) -> [u8; 20] {
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
        h[6] = 0x40; // DF
        h[8] = ttl;
        h[9] = proto;
        h[12..16].copy_from_slice(&src.octets());
        h[16..20].copy_from_slice(&dst.octets());
        let c = checksum::checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    /// An Ethernet/IPv4 frame carrying `payload` with protocol `proto`.
    pub fn ipv4(
        dst_mac: [u8; 6],
        src_mac: [u8; 6],
        vlan: Option<u16>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut f = ethernet(dst_mac, src_mac, vlan, ETHERTYPE_IPV4);
        let ttl = if proto == PROTO_VRRP { vrrp::TTL } else { 64 };
        f.extend_from_slice(&ipv4_header(src, dst, proto, payload.len(), ttl));
        f.extend_from_slice(payload);
        f
    }

    /// An ICMP error (`kind`, `code`; for "fragmentation needed" the
    /// next-hop MTU goes in `mtu`) from `from` to `to`, quoting `quoted` (an
    /// IP packet: the builder keeps its IP header plus 8 bytes, RFC 792),
    /// checksummed, in a frame.
    #[allow(clippy::too_many_arguments)]
    pub fn icmp_error(
        dst_mac: [u8; 6],
        src_mac: [u8; 6],
        from: Ipv4Addr,
        to: Ipv4Addr,
        kind: u8,
        code: u8,
        mtu: u16,
        quoted: &[u8],
    ) -> Vec<u8> {
        let ihl = quoted.first().map_or(20, |b| usize::from(b & 0x0f) * 4);
        let keep = quoted.len().min(ihl + 8);
        let mut m = vec![kind, code, 0, 0, 0, 0];
        m.extend_from_slice(&mtu.to_be_bytes());
        m.extend_from_slice(&quoted[..keep]);
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        padded(ipv4(dst_mac, src_mac, None, from, to, PROTO_ICMP, &m))
    }

    /// `frame` (untagged Ethernet/IPv4) made a fragment: IP id `id`, the
    /// more-fragments flag and the offset (in 8-byte units) set, header
    /// checksum recomputed. The payload is left as it is (a test frame).
    pub fn fragment(mut frame: Vec<u8>, id: u16, more: bool, offset: u16) -> Vec<u8> {
        let ip = 14;
        frame[ip + 4..ip + 6].copy_from_slice(&id.to_be_bytes());
        let flags = (if more { 0x2000 } else { 0 }) | (offset & 0x1fff);
        frame[ip + 6..ip + 8].copy_from_slice(&flags.to_be_bytes());
        frame[ip + 10..ip + 12].fill(0);
        let ihl = usize::from(frame[ip] & 0x0f) * 4;
        let c = checksum::checksum(&frame[ip..ip + ihl]);
        frame[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
        frame
    }

    /// A TCP segment (20-byte header, `payload`), checksummed, in a frame,
    /// padded to the 60-byte Ethernet minimum.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        dst_mac: [u8; 6],
        src_mac: [u8; 6],
        vlan: Option<u16>,
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        flags: u8,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut seg = vec![0u8; 20];
        seg[0..2].copy_from_slice(&sport.to_be_bytes());
        seg[2..4].copy_from_slice(&dport.to_be_bytes());
        seg[4..8].copy_from_slice(&1u32.to_be_bytes());
        seg[12] = 5 << 4;
        seg[13] = flags;
        seg[14..16].copy_from_slice(&64240u16.to_be_bytes());
        seg.extend_from_slice(payload);
        let pseudo = checksum::pseudo_header_v4(src, dst, PROTO_TCP, seg.len() as u16);
        let c = checksum::finish(checksum::accumulate(pseudo, &seg));
        seg[16..18].copy_from_slice(&c.to_be_bytes());
        padded(ipv4(dst_mac, src_mac, vlan, src, dst, PROTO_TCP, &seg))
    }

    /// A UDP datagram in a frame (checksum 0: none), padded to 60 bytes.
    #[allow(clippy::too_many_arguments)]
    pub fn udp(
        dst_mac: [u8; 6],
        src_mac: [u8; 6],
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut d = Vec::with_capacity(8 + payload.len());
        d.extend_from_slice(&sport.to_be_bytes());
        d.extend_from_slice(&dport.to_be_bytes());
        d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(payload);
        padded(ipv4(dst_mac, src_mac, None, src, dst, PROTO_UDP, &d))
    }

    /// An ARP request (who-has `target` tell `sender`), broadcast.
    pub fn arp_request(src_mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
        let mut f = ethernet([0xff; 6], src_mac, None, ETHERTYPE_ARP);
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&src_mac);
        f.extend_from_slice(&sender.octets());
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&target.octets());
        padded(f)
    }

    /// A VRRPv2 advertisement for `vrid` at `priority` announcing `vip`, to 224.0.0.18.
    pub fn vrrp_advert(
        src_mac: [u8; 6],
        src: Ipv4Addr,
        vrid: u8,
        priority: u8,
        vip: Ipv4Addr,
    ) -> Vec<u8> {
        let mut v = vec![0x21, vrid, priority, 1, 0, 1, 0, 0];
        v.extend_from_slice(&vip.octets());
        v.extend_from_slice(&[0; 8]);
        let c = checksum::checksum(&v);
        v[6..8].copy_from_slice(&c.to_be_bytes());
        ipv4(
            ethernet::Address::ipv4_multicast(vrrp::MULTICAST_ADDR).octets(),
            src_mac,
            None,
            src,
            vrrp::MULTICAST_ADDR,
            PROTO_VRRP,
            &v,
        )
    }
}

#[cfg(test)]
mod tests;
