//! Checks our emitted adverts against tcpdump's decoder (skipped, with a
//! message, when tcpdump is not installed).

use super::*;
use std::process::Command;

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// An Ethernet + IPv4 frame around `vrrp`, built by hand so that this test
/// depends on nothing but this module and the checksum.
fn frame(vrrp: &[u8], vrid: u8) -> Vec<u8> {
    let mut f = vec![
        0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x00, 0x00, 0x5e, 0x00, 0x01, vrid,
    ];
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + vrrp.len()) as u16;
    let mut ip = vec![0x45, 0xc0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, TTL, PROTOCOL, 0, 0]);
    ip.extend_from_slice(&SRC.octets());
    ip.extend_from_slice(&MULTICAST_ADDR.octets());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(vrrp);
    f
}

fn pcap(frame: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65535, 1] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    let len = frame.len() as u32;
    for v in [1_700_000_000u32, 0, len, len] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(frame);
    p
}

fn tcpdump_line(repr: &Repr) -> Option<String> {
    if Command::new("tcpdump").arg("--version").output().is_err() {
        eprintln!("tcpdump not installed: skipping the tcpdump decode check");
        return None;
    }
    let bytes = repr.to_bytes(SRC, MULTICAST_ADDR).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vrrp.pcap");
    std::fs::write(&path, pcap(&frame(&bytes, repr.vrid))).unwrap();
    let out = Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(&path)
        .output()
        .unwrap();
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn tcpdump_decodes_our_v2_advert_as_the_original() {
    let repr = Repr {
        version: Version::V2,
        vrid: 51,
        priority: 99,
        adver_int: 1,
        auth: Auth::None,
        addrs: vec![Ipv4Addr::new(198, 18, 0, 250)],
    };
    if let Some(line) = tcpdump_line(&repr) {
        assert!(
            line.contains(
                "198.18.0.1 > 224.0.0.18: VRRPv2, Advertisement, vrid 51, prio 99, authtype none, intvl 1s, length 20"
            ),
            "tcpdump printed: {line}"
        );
    }
}

#[test]
fn tcpdump_decodes_our_v3_advert() {
    let repr = Repr {
        version: Version::V3,
        vrid: 51,
        priority: 99,
        adver_int: 100,
        auth: Auth::None,
        addrs: vec![Ipv4Addr::new(198, 18, 0, 250)],
    };
    if let Some(line) = tcpdump_line(&repr) {
        assert!(
            line.contains("VRRPv3, Advertisement, vrid 51, prio 99, intvl 100cs, length 12"),
            "tcpdump printed: {line}"
        );
    }
}
