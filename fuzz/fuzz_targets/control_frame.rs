//! The control plane's receive path: arbitrary frames of every control kind
//! into an Active Director's `control::Plane` (ARP for the VIP, VRRP,
//! heartbeats, parsed from Ethernet up). Nothing may panic, and whatever it
//! transmits must be a well-formed Ethernet frame.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use proxyha::control::Plane;
use proxyha::dataplane::classify::Filter;
use proxyha::dataplane::{ControlKind, Shared};

const CONFIG: &str = r#"
[node]
name = "director-a"
management_ip = "198.18.0.1"
priority = 99
lbid = 10
[vrrp]
interface = "eth0"
vrid = 51
[[virtual_ip]]
address = "198.18.0.250/24"
[[port_redirect]]
original_ports = "9090"
proxy_port = 9090
[heartbeat]
insecure = true
"#;

fuzz_target!(|data: &[u8]| {
    let cfg = proxyha::config::parse("fuzz.toml", CONFIG, std::path::Path::new(".")).unwrap();
    let mac = [2, 0, 0, 0, 0, 1];
    let shared = Shared::new(Filter::new(51, mac), 65537).unwrap();
    let t0 = Instant::now();
    let mut p = Plane::new(cfg, mac, shared, t0, 1_764_140_400_000).unwrap();
    p.start(t0);
    // Become Master first, so that ARP replies are possible.
    let t = t0 + Duration::from_secs(4);
    p.handle_timeout(t);
    // Frames separated by 0xfe 0xfe; the first byte of each picks the kind.
    for (i, chunk) in data.split(|b| *b == 0xfe).take(8).enumerate() {
        let Some((&k, frame)) = chunk.split_first() else { continue };
        let kind = match k % 3 {
            0 => ControlKind::Arp,
            1 => ControlKind::Vrrp,
            _ => ControlKind::Heartbeat,
        };
        p.handle_frame(t + Duration::from_millis(i as u64), kind, frame);
    }
    while let Some(f) = p.poll_transmit() {
        assert!(f.len() >= 42, "runt frame out: {f:?}");
    }
    let _ = p.status(t);
});
