//! The Wireshark dissector `packaging/wireshark/proxyha.lua`, run by tshark
//! on heartbeats: one captured from a running lab node (kernel-sent, with a
//! real HMAC), and frames built by proxyha's own encoder covering every field
//! and flag. Every field of docs/heartbeat.md §2 must be shown with its value,
//! a valid message must raise no error, a malformed one must.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use proxyha::control::frames::build_ipv4;
use proxyha::node::prereq::require_tool;
use proxyha::wire::ethernet::Address;
use proxyha::wire::heartbeat::{Announcement, Entry, Kind, Ports, Repr, Role, State};
use proxyha::wire::ipv4::Protocol;
use proxyha::wire::pcap;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn dissector() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/wireshark/proxyha.lua")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A request of the Active Director: every field non-zero where it can be,
/// two ports (one down), an announcement with a draining entry.
fn request() -> Repr {
    Repr {
        kind: Kind::Request,
        lbid: 10,
        node_id: 0xc612_0001,
        name: "director-a".into(),
        role: Role::Director,
        priority: 99,
        state: State::Ok,
        director_state: State::Network,
        ipv4: Ipv4Addr::new(198, 18, 0, 1),
        ipv6: Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1),
        mac: [0x02, 0, 0, 0, 0, 0x01],
        sequence: 1_764_140_400_000_123,
        timestamp_ms: 1_764_140_400_250,
        connections: 42,
        load_permille: 250,
        capacity: 1000,
        ports: Ports {
            count: 2,
            reachable: 0b01,
        },
        announcement: Some(Announcement {
            generation: 3,
            entries: vec![
                Entry {
                    id: 0xc612_0002,
                    ip: Ipv4Addr::new(198, 18, 0, 2),
                    mac: [0x02, 0, 0, 0, 0, 0x02],
                    weight: 900,
                },
                Entry {
                    id: 0xc612_0003,
                    ip: Ipv4Addr::new(198, 18, 0, 3),
                    mac: [0x02, 0, 0, 0, 0, 0x03],
                    weight: 0,
                },
                // A STALE node, held at weight 500.
                Entry {
                    id: 0xc612_0004,
                    ip: Ipv4Addr::new(198, 18, 0, 4),
                    mac: [0x02, 0, 0, 0, 0, 0x04],
                    weight: 500 | proxyha::wire::heartbeat::WEIGHT_HOLD,
                },
            ],
        }),
    }
}

/// A scanning node's reply: no announcement.
fn reply() -> Repr {
    Repr {
        kind: Kind::Reply,
        node_id: 0xc612_0003,
        name: "scanner-c".into(),
        role: Role::Scanning,
        priority: 0,
        state: State::Draining,
        director_state: State::Unknown,
        ipv4: Ipv4Addr::new(198, 18, 0, 3),
        ipv6: Ipv6Addr::UNSPECIFIED,
        mac: [0x02, 0, 0, 0, 0, 0x03],
        ports: Ports {
            count: 1,
            reachable: 1,
        },
        announcement: None,
        ..request()
    }
}

fn frame(repr: &Repr, payload: &[u8]) -> Vec<u8> {
    build_ipv4(
        Address(repr.mac),
        Address::BROADCAST,
        repr.ipv4,
        Ipv4Addr::BROADCAST,
        Protocol::Heartbeat,
        255,
        payload,
    )
}

/// Runs tshark with the dissector (and `prefs`) on `frames`; returns the
/// `-V` text of each frame.
fn tshark(frames: &[Vec<u8>], prefs: &[String]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heartbeats.pcap");
    let mut w = pcap::Writer::new(std::fs::File::create(&path).unwrap()).unwrap();
    for (i, f) in frames.iter().enumerate() {
        w.write_frame(Duration::from_millis(1_764_140_400_000 + i as u64), f)
            .unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let mut cmd = Command::new("tshark");
    cmd.arg("-X")
        .arg(format!("lua_script:{}", dissector().display()))
        .args(["-n", "-V", "-r"])
        .arg(&path);
    for p in prefs {
        cmd.args(["-o", p]);
    }
    let out = cmd.output().expect("running tshark");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    assert!(
        !stderr.to_lowercase().contains("lua"),
        "tshark reported a Lua problem: {stderr}"
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut frames: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("Frame ") {
            frames.push(String::new());
        }
        if let Some(f) = frames.last_mut() {
            f.push_str(line);
            f.push('\n');
        }
    }
    frames
}

/// The throwaway key of the lab run that captured `tests/fixtures/lab-heartbeats.pcap`
/// (`scripts/lab.sh up` makes a fresh one per run; this one guards nothing).
const LAB_KEY_HEX: &str = "d5df02d95dbecb89499f4b3a025f3b18068f4ea1149d2b39e87582fc1d9a9e9e";

fn lab_capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lab-heartbeats.pcap")
}

/// No expert error or warning, no malformed-packet mark, no Lua error.
fn assert_clean(frame: &str) {
    for bad in [
        "Malformed",
        "Expert Info (Error",
        "Expert Info (Warning",
        "Lua Error",
    ] {
        assert!(!frame.contains(bad), "{bad:?} in:\n{frame}");
    }
}

fn assert_has(frame: &str, lines: &[String]) {
    for l in lines {
        assert!(
            frame.lines().any(|x| x.trim() == l),
            "no line {l:?} in:\n{frame}"
        );
    }
}

fn mac(m: [u8; 6]) -> String {
    m.map(|b| format!("{b:02x}")).join(":")
}

fn state(s: State) -> String {
    format!("{} ({})", s.as_str(), s.to_u8())
}

/// The lines tshark -V must show for `repr` sent as `wire` (every field of
/// docs/heartbeat.md §2.1, §2.2 and §2.3).
fn expected_lines(repr: &Repr, wire: &[u8], key_checked: bool) -> Vec<String> {
    let auth = wire.len() == repr.buffer_len(true);
    let flags = u16::from(auth) | (u16::from(repr.announcement.is_some()) << 1);
    let mut v = vec![
        "Magic: 0x50584842".to_string(),
        "Version: 1".into(),
        match repr.kind {
            Kind::Request => "Type: Request (1)".into(),
            Kind::Reply => "Type: Reply (2)".into(),
        },
        format!("Flags: 0x{flags:04x}"),
        format!(
            ".... .... .... ...{} = AUTH (HMAC trailer present): {}",
            u8::from(auth),
            if auth { "True" } else { "False" }
        ),
        format!(
            ".... .... .... ..{}. = ANNOUNCE (membership announcement present): {}",
            u8::from(repr.announcement.is_some()),
            if repr.announcement.is_some() {
                "True"
            } else {
                "False"
            }
        ),
        "0000 0000 0000 00.. = Reserved flag bits: 0x0000".into(),
        format!("Length: {}", wire.len()),
        format!("LBID: {}", repr.lbid),
        format!("Node ID: 0x{:08x}", repr.node_id),
        format!("Sequence: {}", repr.sequence),
        format!("Timestamp (ms since the Unix epoch): {}", repr.timestamp_ms),
        format!("Management IPv4: {}", repr.ipv4),
        format!("Management IPv6: {}", repr.ipv6),
        format!("Management MAC: {}", mac(repr.mac)),
        match repr.role {
            Role::Scanning => "Role: Scanning node (0)".into(),
            Role::Director => "Role: Director (1)".into(),
        },
        format!("Priority: {}", repr.priority),
        format!("Scanning state: {}", state(repr.state)),
        format!("Director state: {}", state(repr.director_state)),
        format!("Port count: {}", repr.ports.count),
        format!("Name length: {}", repr.name.len()),
        format!(
            "Ports up: 0x{:04x} ({} of {} up)",
            repr.ports.reachable,
            repr.ports.reachable.count_ones(),
            repr.ports.count
        ),
        format!("Load (per mille): {}", repr.load_permille),
        format!("Connections: {}", repr.connections),
        format!("Capacity: {}", repr.capacity),
        format!("Name: {}", repr.name),
    ];
    for i in 0..repr.ports.count {
        let up = if repr.ports.is_reachable(i) {
            "up"
        } else {
            "down"
        };
        v.push(format!(
            "Port {i} (port redirect {} in config order): {up}",
            i + 1
        ));
    }
    if let Some(a) = &repr.announcement {
        v.push(format!(
            "Membership announcement: generation {}, {} entries",
            a.generation,
            a.entries.len()
        ));
        v.push(format!("Generation: {}", a.generation));
        v.push(format!("Entry count: {}", a.entries.len()));
        v.push("Reserved: 0x0000".into());
        for (i, e) in a.entries.iter().enumerate() {
            let hold = e.weight & proxyha::wire::heartbeat::WEIGHT_HOLD != 0;
            let weight = e.weight & !proxyha::wire::heartbeat::WEIGHT_HOLD;
            let note = if hold {
                " (held: STALE)"
            } else if weight == 0 {
                " (draining)"
            } else {
                ""
            };
            v.push(format!(
                "Entry {i}: node {:08x}, {}, {}, weight {weight}{note}",
                e.id,
                e.ip,
                mac(e.mac),
            ));
            v.push(format!("Node ID: 0x{:08x}", e.id));
            v.push(format!("IPv4: {}", e.ip));
            v.push(format!("MAC: {}", mac(e.mac)));
        }
    }
    if auth {
        v.push(format!("HMAC-SHA256: {}", hex(&wire[wire.len() - 32..])));
        if key_checked {
            v.push("[HMAC check: correct]".into());
        }
    }
    v
}

/// Heartbeats captured on the lab's bridge from three running daemons
/// (signed with the lab's key): every one decodes cleanly, and with the
/// key its HMAC verifies; with another key it is flagged.
#[test]
fn captured_lab_heartbeats_decode_and_verify() {
    if !require_tool(
        "wireshark::captured_lab_heartbeats_decode_and_verify",
        "tshark",
    ) {
        return;
    }
    let bytes = std::fs::read(lab_capture()).unwrap();
    // pcap: 24-byte file header, then 16-byte record headers (incl_len at 8..12).
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        frames.push(bytes[at + 16..at + 16 + len].to_vec());
        at += 16 + len;
    }
    assert_eq!(frames.len(), 3, "request + two replies");
    let decoded = tshark(&frames, &[format!("proxyha.key:{LAB_KEY_HEX}")]);
    assert_eq!(decoded.len(), 3);
    let mut names = Vec::new();
    for (raw, text) in frames.iter().zip(&decoded) {
        assert_clean(text);
        // Our own parser agrees, field by field.
        let ip = proxyha::control::frames::parse_ipv4(raw).unwrap();
        let p = proxyha::wire::heartbeat::Packet::new_checked(ip.payload).unwrap();
        let key: Vec<u8> = (0..LAB_KEY_HEX.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&LAB_KEY_HEX[i..i + 2], 16).unwrap())
            .collect();
        p.verify(&key)
            .expect("the capture's HMAC verifies in Rust too");
        let repr = Repr::parse(&p).unwrap();
        let wire = &ip.payload[..usize::from(p.length())];
        assert_has(text, &expected_lines(&repr, wire, true));
        names.push(repr.name);
    }
    assert_eq!(names, ["director-a", "director-b", "scanner-c"]);

    let wrong = tshark(&frames[..1], &[format!("proxyha.key:{}", hex(KEY))]);
    assert!(wrong[0].contains("[HMAC check: incorrect]"), "{}", wrong[0]);
    assert!(
        wrong[0].contains("Expert Info (Error/Security)"),
        "{}",
        wrong[0]
    );
}

/// Frames from proxyha's encoder, one with every optional part: every
/// field shows its value; without a key the HMAC is shown, not checked.
#[test]
fn every_field_of_the_spec_is_shown() {
    if !require_tool("wireshark::every_field_of_the_spec_is_shown", "tshark") {
        return;
    }
    let req = request();
    let rep = reply();
    let signed = req.to_bytes(Some(KEY)).unwrap();
    let plain = rep.to_bytes(None).unwrap();
    let frames = [frame(&req, &signed), frame(&rep, &plain)];

    let checked = tshark(&frames, &[format!("proxyha.key:{}", hex(KEY))]);
    assert_clean(&checked[0]);
    assert_clean(&checked[1]);
    assert_has(&checked[0], &expected_lines(&req, &signed, true));
    assert_has(&checked[1], &expected_lines(&rep, &plain, true));
    assert!(checked[0].contains("[Timestamp: Nov 26, 2025 07:00:00.250000000 UTC]"));
    assert!(checked[0].contains("Weight: 0 (draining: keeps its flows, gets no new ones)"));
    assert!(
        checked[1].contains("Expert Info (Note/Security): Unauthenticated heartbeat"),
        "{}",
        checked[1]
    );

    let unchecked = tshark(&frames[..1], &[]);
    assert_has(&unchecked[0], &expected_lines(&req, &signed, false));
    assert!(
        unchecked[0].contains("[HMAC check: not checked (no key in the proxyha.key preference)]")
    );
}

/// One corruption per rule of docs/heartbeat.md §2.4: proxyha's parser
/// rejects it, and the dissector flags it as an error.
#[test]
fn every_rejected_message_is_flagged() {
    if !require_tool("wireshark::every_rejected_message_is_flagged", "tshark") {
        return;
    }
    let req = request();
    let good = req.to_bytes(None).unwrap();
    let name_end = 76 + req.name.len();
    let set = |at: usize, bytes: &[u8]| {
        let mut m = good.clone();
        m[at..at + bytes.len()].copy_from_slice(bytes);
        m
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("version", set(4, &[2])),
        ("type", set(5, &[3])),
        ("unknown flag bit", set(6, &[0x00, 0x06])),
        ("length too long", set(8, &[0x00, 0xff])),
        ("length disagrees", set(8, &[0x00, (good.len() - 1) as u8])),
        ("length below header", set(8, &[0x00, 75])),
        ("name length > 32", set(63, &[33])),
        ("role", set(58, &[2])),
        ("scanning state in director field", set(61, &[1])),
        ("director state in scanning field", set(60, &[2])),
        ("port count > 16", set(62, &[17])),
        ("port bit above count", set(64, &[0x00, 0x04])),
        ("load > 1000", set(66, &[0x03, 0xe9])),
        ("name not UTF-8", set(76, &[0xc3, 0x28])),
        ("reserved word", set(name_end + 10, &[0, 1])),
        ("more than 64 entries", set(name_end + 8, &[0, 65])),
        ("truncated header", good[..60].to_vec()),
    ];
    let frames: Vec<Vec<u8>> = cases.iter().map(|(_, m)| frame(&req, m)).collect();
    let decoded = tshark(&frames, &[]);
    assert_eq!(decoded.len(), cases.len());
    for ((what, m), text) in cases.iter().zip(&decoded) {
        let rust =
            proxyha::wire::heartbeat::Packet::new_checked(&m[..]).and_then(|p| Repr::parse(&p));
        assert!(rust.is_err(), "{what}: proxyha's parser accepts it");
        assert!(
            text.contains("Expert Info (Error/"),
            "{what}: not flagged:\n{text}"
        );
        assert!(!text.contains("Lua Error"), "{what}:\n{text}");
    }

    // Another protocol on 253 (no magic) is left to the data dissector.
    let other = tshark(&[frame(&req, b"not a heartbeat at all")], &[]);
    assert!(!other[0].contains("proxyha heartbeat"), "{}", other[0]);
    assert!(other[0].contains("Data ("), "{}", other[0]);
}

/// xorshift64*: a fixed-seed generator, so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Differential check against proxyha's own parser on 400 mutated
/// heartbeats (bytes changed, cut short, or followed by extra bytes): the
/// dissector never fails, a message proxyha accepts decodes without any
/// error, and one it rejects is flagged (or, without the magic, not claimed).
#[test]
fn dissector_agrees_with_the_parser_on_mutated_messages() {
    if !require_tool(
        "wireshark::dissector_agrees_with_the_parser_on_mutated_messages",
        "tshark",
    ) {
        return;
    }
    let req = request();
    let rep = reply();
    let bases = [
        (req.clone(), req.to_bytes(Some(KEY)).unwrap()),
        (req.clone(), req.to_bytes(None).unwrap()),
        (rep.clone(), rep.to_bytes(Some(KEY)).unwrap()),
    ];
    let mut rng = Rng(0x5058_4842_0000_0001);
    let mut cases = Vec::new();
    for i in 0..400 {
        let (repr, base) = &bases[i % bases.len()];
        let mut m = base.clone();
        match rng.below(4) {
            0 => m.truncate(rng.below(m.len())),
            1 => m.extend((0..1 + rng.below(8)).map(|_| rng.next() as u8)),
            _ => {
                // Header fields are where the rules are: aim there mostly.
                for _ in 0..1 + rng.below(2) {
                    let at = if rng.below(3) == 0 {
                        rng.below(m.len())
                    } else {
                        rng.below(80.min(m.len()))
                    };
                    m[at] = rng.next() as u8;
                }
            }
        }
        cases.push((repr, m));
    }
    let frames: Vec<Vec<u8>> = cases.iter().map(|(r, m)| frame(r, m)).collect();
    let decoded = tshark(&frames, &[]);
    assert_eq!(decoded.len(), cases.len());
    let (mut accepted, mut rejected, mut unclaimed) = (0, 0, 0);
    for (i, ((_, m), text)) in cases.iter().zip(&decoded).enumerate() {
        assert!(!text.contains("Lua Error"), "case {i} {}:\n{text}", hex(m));
        let ours =
            proxyha::wire::heartbeat::Packet::new_checked(&m[..]).and_then(|p| Repr::parse(&p));
        if ours.is_ok() {
            accepted += 1;
            assert!(
                !text.contains("Expert Info (Error") && !text.contains("Malformed"),
                "case {i}: proxyha accepts {}, the dissector flags it:\n{text}",
                hex(m)
            );
        } else if m.len() < 4 || m[..4] != *b"PXHB" {
            unclaimed += 1;
            assert!(!text.contains("proxyha heartbeat"), "case {i}:\n{text}");
        } else {
            rejected += 1;
            assert!(
                text.contains("Expert Info (Error") || text.contains("Malformed"),
                "case {i}: proxyha rejects {} ({ours:?}), the dissector does not flag it:\n{text}",
                hex(m)
            );
        }
    }
    // The mutations reach all three outcomes.
    assert!(
        accepted > 50 && rejected > 50 && unclaimed > 5,
        "{accepted} {rejected} {unclaimed}"
    );
}
