//! Shared frame and node builders for the micro-benchmarks.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use proxyha::balance::health;
use proxyha::dataplane::classify::build::{self, ACK};
use proxyha::dataplane::classify::{Filter, virtual_mac};

pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);
pub const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x64];
pub const VRID: u8 = 51;
/// Bytes per benchmark frame: a 64-byte frame on the wire (60 + FCS) is 60
/// bytes in a ring; we use the literal 64 (padding) to match the goal text.
pub const FRAME: usize = 64;

pub fn filter() -> Filter {
    Filter::new(VRID, OUR_MAC).with_vip(VIP).with_ports([9090])
}

/// The `i`-th flow's client address and port: distinct for i < 2^32.
pub fn client(i: u32) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::from(0xc612_0000u32.wrapping_add(i >> 4)),
        1024 + (i & 15) as u16,
    )
}

/// `n` 64-byte TCP data frames, one per flow, back to back in one buffer.
pub fn flow_frames(n: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(n as usize * FRAME);
    for i in 0..n {
        let (ip, port) = client(i);
        let mut f = build::tcp(
            virtual_mac(VRID),
            CLIENT_MAC,
            None,
            ip,
            port,
            VIP,
            9090,
            ACK,
            &[],
        );
        f.resize(FRAME, 0);
        out.extend_from_slice(&f);
    }
    out
}

/// Fills `n` health slots with up nodes of equal weight.
pub fn nodes(h: &health::Table, n: usize) {
    for s in 0..n {
        h.set(
            s,
            health::NodeInfo {
                id: 1000 + s as u64,
                mac: [0x02, 0, 0, 0, 0x10, s as u8],
                ip: Ipv4Addr::new(198, 18, 1, s as u8),
                state: health::State::Up,
                weight: 100,
                connections: 0,
            },
        )
        .unwrap();
    }
}
