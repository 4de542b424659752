//! IPv6 flows to an IPv6 VIP (issue 16): what the classifier does with an
//! IPv6 packet sent to the IPv6 virtual MAC 00:00:5e:00:02:{VRID} for an
//! IPv6 VIP, beside IPv4's rules and with the same verdicts:
//!
//! * TCP or UDP on a redirected port: [`Verdict::ProxyFlow`], with the flow
//!   key of [`key`]; the same flow table, Maglev table and MAC rewrite as
//!   IPv4. Another port: pass (the worker hands it to the local stack).
//! * An ICMPv6 error (destination unreachable, packet too big, time
//!   exceeded, parameter problem; RFC 4443 §3) quoting a TCP/UDP packet
//!   *from* a VIP on a redirected port, a scanning node's direct reply:
//!   [`Verdict::IcmpError`] with the flow's key, so the worker sends it to
//!   the node holding the flow (packet too big matters most: it carries the
//!   path MTU). A quote cut short: [`DropReason::BadIcmp`]. Other ICMPv6:
//!   pass.
//! * An extension header (hop-by-hop, routing, fragment, destination
//!   options, AH, ESP, mobility, HIP, shim6, experimental) as first next
//!   header: [`DropReason::Ipv6ExtensionHeader`], counted and never
//!   delivered anywhere. The transport header behind one is not looked for:
//!   a fragment (RFC 8200 §4.5) may not carry the ports at all, and a chain
//!   can be made long enough to hide them; TCP to a VIP sends none.
//!
//! **The flow key.** `flow::Key` holds IPv4-sized addresses; an IPv6 flow's
//! addresses are folded into 32 bits each by [`fold`] (a fixed function with
//! a fixed seed, so every director computes the same key, hash and Maglev
//! entry for a flow, as for IPv4). Two IPv6 flows whose folded keys
//! collide share one flow-table entry and so one node; docs/ipv6.md and
//! docs/security.md discuss it.

use std::net::Ipv6Addr;

use super::{DropReason, Filter, PROTO_TCP, PROTO_UDP, ProxyFlow, Verdict};
use crate::balance::flow;

/// Next header of ICMPv6.
pub(super) const ICMPV6: u8 = 58;
/// Length of the IPv6 fixed header.
const HEADER_LEN: usize = 40;
/// ICMPv6 error types (RFC 4443 §3): destination unreachable, packet too
/// big, time exceeded, parameter problem.
const ICMPV6_ERRORS: [u8; 4] = [1, 2, 3, 4];

/// Whether `next` names an IPv6 extension header (IANA "IPv6 Extension
/// Header Types", and the experimental 253 and 254).
pub const fn is_extension_header(next: u8) -> bool {
    matches!(
        next,
        0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254
    )
}

/// Folds an IPv6 address into the 32 bits of a `flow::Key` address: a
/// fixed 64-bit mix of both halves (never per-process: every director must
/// fold the same way).
pub fn fold(a: Ipv6Addr) -> u32 {
    const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
    let v = u128::from(a);
    let mut x = (v as u64) ^ ((v >> 64) as u64).rotate_left(29) ^ SEED;
    // The 64-bit finaliser of MurmurHash3.
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x as u32 ^ (x >> 32) as u32
}

/// The flow key of an IPv6 packet from `src`:`sport` to `dst`:`dport`.
pub fn key(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, proto: u8) -> flow::Key {
    flow::Key {
        src: fold(src),
        dst: fold(dst),
        sport,
        dport,
        proto,
        v6: true,
    }
}

fn addr(b: &[u8]) -> Option<Ipv6Addr> {
    let o: [u8; 16] = b.try_into().ok()?;
    Some(Ipv6Addr::from(o))
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Classifies an IPv6 packet (`next` header, `body` = its payload) from
/// `src` to the VIP `dst`, sent to the IPv6 virtual MAC; `l3` is the
/// header's offset in the frame. Never panics.
pub(super) fn classify_flow(
    filter: &Filter,
    next: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    body: &[u8],
    l3: usize,
) -> Verdict {
    match next {
        PROTO_TCP | PROTO_UDP => {
            let segment = match super::segment_of(next, body) {
                Ok(s) => s,
                Err(r) => return Verdict::Drop(r),
            };
            let (Some(sport), Some(dport)) = (be16(body, 0), be16(body, 2)) else {
                return Verdict::Drop(DropReason::BadTcp);
            };
            if !filter.ports.contains(dport) {
                return Verdict::Pass;
            }
            Verdict::ProxyFlow(ProxyFlow {
                key: key(src, dst, sport, dport, next),
                segment,
                l3_offset: l3 as u8,
            })
        }
        ICMPV6 => match body.first() {
            Some(t) if ICMPV6_ERRORS.contains(t) => match quote(filter, body) {
                Quote6::Flow(k) => Verdict::IcmpError(k),
                Quote6::Other => Verdict::Pass,
                Quote6::Malformed => Verdict::Drop(DropReason::BadIcmp),
            },
            _ => Verdict::Pass,
        },
        n if is_extension_header(n) => Verdict::Drop(DropReason::Ipv6ExtensionHeader),
        _ => Verdict::Pass,
    }
}

enum Quote6 {
    Flow(flow::Key),
    Other,
    Malformed,
}

/// The flow an ICMPv6 error (`icmp`: type to the end) is about: after the
/// 8-byte ICMPv6 header, "as much of invoking packet as possible" (RFC 4443
/// §3.1), which for a balanced flow is a node's reply, VIP:port → client.
fn quote(filter: &Filter, icmp: &[u8]) -> Quote6 {
    let q = 8;
    let Some(inner) = icmp.get(q..q + HEADER_LEN) else {
        return Quote6::Malformed;
    };
    if inner[0] >> 4 != 6 {
        return Quote6::Malformed;
    }
    let next = inner[6];
    if next != PROTO_TCP && next != PROTO_UDP {
        return Quote6::Other;
    }
    let (Some(vip), Some(client)) = (addr(&inner[8..24]), addr(&inner[24..40])) else {
        return Quote6::Malformed;
    };
    let l4 = q + HEADER_LEN;
    let (Some(sport), Some(dport)) = (be16(icmp, l4), be16(icmp, l4 + 2)) else {
        return Quote6::Malformed;
    };
    if !filter.vips6.contains(&vip) || !filter.ports.contains(sport) {
        return Quote6::Other;
    }
    Quote6::Flow(key(client, vip, dport, sport, next))
}

#[cfg(test)]
mod tests;
