//! A tiny classic-pcap writer (LINKTYPE_ETHERNET), so that tests can hand
//! our emitted frames to `tcpdump -r` as an independent decoder.
//!
//! The format (pcap-savefile(5), draft-ietf-opsawg-pcap): a 24-byte file
//! header — magic 0xa1b2c3d4 (microsecond timestamps), version 2.4,
//! thiszone 0, sigfigs 0, snaplen, link type — then per packet a 16-byte
//! record header (seconds, microseconds, captured length, original length)
//! followed by the bytes. Everything is written little-endian; readers
//! detect the byte order from the magic.

use std::io::{self, Write};
use std::time::Duration;

/// LINKTYPE_ETHERNET (IEEE 802.3 Ethernet, with 802.1Q tags if present).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Magic for microsecond-resolution files.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// The snapshot length we announce.
pub const SNAPLEN: u32 = 65535;

/// Writes a pcap stream of Ethernet frames to `W`.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    /// Writes the file header and returns the writer.
    pub fn new(mut out: W) -> io::Result<Writer<W>> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone (8..12) and sigfigs (12..16) stay 0.
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(Writer { out })
    }

    /// Appends one frame with timestamp `ts` (since the Unix epoch, or any
    /// virtual clock). Frames longer than the snap length are cut, with the
    /// original length recorded.
    pub fn write_frame(&mut self, ts: Duration, frame: &[u8]) -> io::Result<()> {
        let orig = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let incl = orig.min(SNAPLEN);
        let secs = u32::try_from(ts.as_secs()).unwrap_or(u32::MAX);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&ts.subsec_micros().to_le_bytes());
        h[8..12].copy_from_slice(&incl.to_le_bytes());
        h[12..16].copy_from_slice(&orig.to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&frame[..incl as usize])
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Gives the underlying writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// If `tcpdump` is installed, runs `tcpdump -r FILE -nn -e -vv` on the
/// frames and returns its text output. Without tcpdump it returns `None`
/// after [`require_tool`](crate::node::prereq::require_tool) for `test`:
/// a visible SKIP, or a failure under CI / `PROXYHA_REQUIRE_ROOT=1`.
/// Used by the wire tests (and other modules' tests) as an independent decoder.
#[cfg(test)]
pub(crate) fn tcpdump_decode(test: &str, frames: &[Vec<u8>]) -> Option<String> {
    use std::process::Command;
    if !crate::node::prereq::require_tool(test, "tcpdump") {
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("frames.pcap");
    let mut w =
        Writer::new(std::fs::File::create(&path).expect("create pcap")).expect("pcap header");
    for (i, f) in frames.iter().enumerate() {
        w.write_frame(Duration::from_millis(1_700_000_000_000 + i as u64), f)
            .expect("write frame");
    }
    w.flush().expect("flush");
    drop(w);
    let out = Command::new("tcpdump")
        .arg("-r")
        .arg(&path)
        .args(["-nn", "-e", "-vv"])
        .output()
        .unwrap_or_else(|e| panic!("running tcpdump: {e}"));
    assert!(
        out.status.success(),
        "tcpdump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Frames captured from the Linux kernel (6.x) with `tcpdump -w` on a veth
/// pair between two network namespaces (198.18.1.1 pings 198.18.1.2, once
/// plainly and once with `ping -R`, the Record Route option). All checksums
/// in them were computed by the kernel, not by us.
#[cfg(test)]
pub(crate) mod captured {
    /// Decodes a hex string (no separators).
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex fixture"))
            .collect()
    }

    /// IPv6 MLDv2 report from :: to ff02::16 (hop limit 1, next header 0 =
    /// Hop-by-Hop with Router Alert), sent by the kernel when the veth came up.
    pub(crate) const MLD_REPORT: &str = "3333000000169a53388b717586dd600000000024000100000000000000000000000000000000ff0200000000000000000000000000163a000502000001008f00fd890000000104000000ff0200000000000000000001ff8b7175";
    /// ARP who-has 198.18.1.2 tell 198.18.1.1, from 6e:6c:d7:c9:94:1e (42 bytes, unpadded on veth).
    pub(crate) const ARP_REQUEST: &str =
        "ffffffffffff6e6cd7c9941e080600010800060400016e6cd7c9941ec6120101000000000000c6120102";
    /// ARP reply 198.18.1.2 is-at f2:8c:7b:10:e2:01.
    pub(crate) const ARP_REPLY: &str =
        "6e6cd7c9941ef28c7b10e20108060001080006040002f28c7b10e201c61201026e6cd7c9941ec6120101";
    /// ICMP echo request 198.18.1.1 > 198.18.1.2: id 8, DF, TTL 64, IPv4 header checksum 0xac79.
    pub(crate) const ECHO_REQUEST: &str = "f28c7b10e2016e6cd7c9941e080045000054000840004001ac79c6120101c61201020800322835cf0001b6db076b0000000004ee0e0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
    /// The echo reply: id 25689, no DF, IPv4 header checksum 0x8828.
    pub(crate) const ECHO_REPLY: &str = "6e6cd7c9941ef28c7b10e2010800450000546459000040018828c6120102c612010100003a2835cf0001b6db076b0000000004ee0e0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
    /// Echo request with IHL 15: NOP then Record Route (len 39, ptr 8, one
    /// address recorded), header checksum 0xb32d.
    pub(crate) const ECHO_REQUEST_RR: &str = "f28c7b10e2016e6cd7c9941e08004f00007c000940004001b32dc6120101c612010201072708c612010100000000000000000000000000000000000000000000000000000000000000000800021935d00001b6db076b0000000034fc0e0000000000101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{self, Address, EtherType};
    use crate::wire::{arp, ipv4, tcp, udp};
    use std::net::Ipv4Addr;

    #[test]
    fn file_and_record_headers() {
        let mut w = Writer::new(Vec::new()).unwrap();
        w.write_frame(Duration::new(0x1234_5678, 250_000_000), &[0xde, 0xad])
            .unwrap();
        let v = w.into_inner();
        assert_eq!(
            v,
            [
                0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0,
                0, 0, //
                0x78, 0x56, 0x34, 0x12, 0x90, 0xd0, 0x03, 0x00, 2, 0, 0, 0, 2, 0, 0, 0, 0xde, 0xad,
            ]
        );
    }

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 250);
    const CLIENT_MAC: Address = Address([0x02, 0, 0, 0, 0, 0x0a]);

    /// Ethernet + IPv4 around an L4 payload written by `l4`.
    fn ipv4_frame(
        vlan: Option<u16>,
        protocol: ipv4::Protocol,
        l4_len: usize,
        l4: impl FnOnce(&mut [u8]),
    ) -> Vec<u8> {
        let eth = ethernet::Repr {
            src: CLIENT_MAC,
            dst: Address::vrrp_virtual(51),
            vlan,
            ethertype: EtherType::Ipv4,
        };
        let ip = ipv4::Repr {
            src: CLIENT,
            dst: VIP,
            protocol,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0x1234,
            dont_frag: true,
            payload_len: l4_len,
            options: ipv4::Options::NONE,
        };
        let mut buf = vec![0u8; eth.buffer_len(ip.buffer_len())];
        let mut f = ethernet::Packet::new_unchecked(&mut buf[..]);
        eth.emit(&mut f);
        let mut p = ipv4::Packet::new_unchecked(f.payload_mut());
        ip.emit(&mut p);
        l4(p.payload_mut());
        buf
    }

    /// Our emitted frames, decoded by tcpdump: it must agree on every field
    /// and call every checksum correct.
    #[test]
    fn tcpdump_decodes_our_frames() {
        let garp = arp::Repr::gratuitous(Address::vrrp_virtual(51), VIP).to_frame(None);
        let request = arp::Repr::request(CLIENT_MAC, CLIENT, VIP);
        let reply = arp::Repr::reply(&request, Address::vrrp_virtual(51)).to_frame(Some(100));
        let syn = tcp::tests::syn_repr();
        let syn_frame = ipv4_frame(None, ipv4::Protocol::Tcp, syn.buffer_len(), |b| {
            syn.emit(&mut tcp::Packet::new_unchecked(b), CLIENT, VIP)
        });
        let data = tcp::Repr {
            flags: tcp::Flags::PSH | tcp::Flags::ACK,
            ack_number: 77,
            options: &[],
            payload: b"GET / HTTP/1.0\r\n\r\n",
            ..syn
        };
        let data_frame = ipv4_frame(Some(100), ipv4::Protocol::Tcp, data.buffer_len(), |b| {
            data.emit(&mut tcp::Packet::new_unchecked(b), CLIENT, VIP)
        });
        let dgram = udp::Repr {
            src_port: 40001,
            dst_port: 9999,
            payload: b"hello",
        };
        let udp_frame = ipv4_frame(None, ipv4::Protocol::Udp, dgram.buffer_len(), |b| {
            dgram.emit(&mut udp::Packet::new_unchecked(b), CLIENT, VIP)
        });

        let Some(text) = tcpdump_decode(
            "wire::pcap::tests::tcpdump_decodes_our_frames",
            &[garp, reply, syn_frame, data_frame, udp_frame],
        ) else {
            return;
        };
        let lines: Vec<&str> = text.lines().collect();
        let find = |needle: &str| {
            assert!(
                text.contains(needle),
                "tcpdump output lacks {needle:?}:\n{text}"
            );
        };
        assert!(
            !text.contains("bad cksum") && !text.contains("incorrect"),
            "{text}"
        );
        find("00:00:5e:00:01:33 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 60");
        find("Request who-has 198.18.0.250 tell 198.18.0.250, length 46");
        find("vlan 100, p 0, ethertype ARP (0x0806)");
        find("Reply 198.18.0.250 is-at 00:00:5e:00:01:33, length");
        find("ttl 64, id 4660, offset 0, flags [DF], proto TCP (6), length 44");
        find(
            "198.18.0.10.40000 > 198.18.0.250.9090: Flags [S], cksum 0x4c62 (correct), seq 1000, win 64240, options [mss 1460], length 0",
        );
        find("vlan 100, p 0, ethertype IPv4 (0x0800)");
        find("Flags [P.], cksum");
        find("(correct), seq 1000:1018, ack 77, win 64240, length 18");
        find("198.18.0.10.40001 > 198.18.0.250.9999: [udp sum ok] UDP, length 5");
        assert!(lines.len() >= 5, "{text}");
    }
}
