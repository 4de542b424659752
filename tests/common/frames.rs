//! Frames the tests send that the library's builders do not make.

#![allow(dead_code)]

use std::net::SocketAddrV6;

use proxyha::control::frames::build_ipv6;
use proxyha::wire::ethernet::Address;
use proxyha::wire::ipv4::Protocol;

/// An IPv6 TCP segment `from` → `to` (20-byte header with `flags`, then
/// `payload`) in a frame from `src_mac` to the IPv6 virtual MAC of `vrid`.
/// The TCP checksum is left 0: neither the classifier nor the XDP program
/// reads it.
pub fn tcp6(
    src_mac: [u8; 6],
    vrid: u8,
    from: SocketAddrV6,
    to: SocketAddrV6,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&from.port().to_be_bytes());
    t[2..4].copy_from_slice(&to.port().to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    t.extend_from_slice(payload);
    build_ipv6(
        Address(src_mac),
        Address::vrrp_virtual_ipv6(vrid),
        *from.ip(),
        *to.ip(),
        Protocol::Tcp,
        64,
        &t,
    )
}

/// A fixed-seed xorshift64 sequence: repeatable pseudo-random test input.
pub fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}
