//! Every validation rule of the config, with a bad file and the exact error text.

use std::path::Path;

use proxyha::config::{self, ClusterMode, PollMode, QueueCount, VrrpVersion, XdpMode};

const BASE: &str = r#"
[node]
name = "director-a"
management_ip = "198.18.0.1"
priority = 99
lbid = 10

[vrrp]
interface = "eth0"
vrid = 51
version = 2
advert_interval = "1s"

[[virtual_ip]]
address = "198.18.0.250/24"
interface = "eth0"

[[port_redirect]]
protocol = "http"
original_ports = "9090"
proxy_port = 9090

[heartbeat]
interval = "1s"
misses = 3
insecure = true

[dataplane]
interface = "eth0"
"#;

/// Replaces the line starting with `key =` in `text` (or removes it when `new` is empty).
fn with(text: &str, key: &str, new: &str) -> String {
    let mut found = false;
    let out: Vec<String> = text
        .lines()
        .filter_map(|l| {
            if !found && l.starts_with(&format!("{key} =")) {
                found = true;
                if new.is_empty() {
                    None
                } else {
                    Some(new.to_string())
                }
            } else {
                Some(l.to_string())
            }
        })
        .collect();
    assert!(found, "fixture has no line for {key}");
    out.join("\n")
}

/// BASE's dataplane section.
const DATAPLANE_ETH0: &str = "[dataplane]\ninterface = \"eth0\"";

/// `n` more `[[virtual_ip]]` tables, all distinct.
fn extra_vips(n: u32) -> String {
    (1..=n)
        .map(|i| {
            let a = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 19, 0, 1)) + i);
            format!("\n[[virtual_ip]]\naddress = \"{a}/16\"\n")
        })
        .collect()
}

/// Inserts `line` right after the `[section]` header.
fn add(text: &str, section: &str, line: &str) -> String {
    text.replacen(&format!("{section}\n"), &format!("{section}\n{line}\n"), 1)
}

fn err(text: &str) -> String {
    match config::parse("cluster.toml", text, Path::new(".")) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn dataplane_queue_cpu_and_ring_settings() {
    let text = add(
        BASE,
        "[dataplane]",
        "queues = 4\nset_channels = true\ncpus = \"1-2,5\"\nmode = \"zerocopy\"\n\
         rx_ring = 4096\ntx_ring = 1024\numem_frames = 8192\nframe_size = 4096",
    );
    let c = config::parse("cluster.toml", &text, Path::new(".")).unwrap();
    assert_eq!(c.dataplane.queues, QueueCount::Count(4));
    assert!(c.dataplane.set_channels);
    assert_eq!(c.dataplane.cpus, vec![1, 2, 5]);
    assert_eq!(c.dataplane.mode, XdpMode::ZeroCopy);
    assert_eq!(
        (
            c.dataplane.rx_ring,
            c.dataplane.tx_ring,
            c.dataplane.umem_frames,
            c.dataplane.frame_size
        ),
        (4096, 1024, 8192, 4096)
    );
    let all = add(BASE, "[dataplane]", "queues = \"all\"\ncpus = [3, 1]");
    let c = config::parse("cluster.toml", &all, Path::new(".")).unwrap();
    assert_eq!(c.dataplane.queues, QueueCount::All);
    assert_eq!(c.dataplane.cpus, vec![3, 1]);
}

#[test]
fn base_is_valid_and_defaults_resolve() {
    let c = config::parse("cluster.toml", BASE, Path::new(".")).unwrap();
    assert_eq!(c.node.priority, 99);
    assert!(c.node.is_director());
    assert_eq!(
        c.node.control_socket,
        Path::new("/run/proxyha/director-a.sock")
    );
    assert_eq!(c.vrrp.vrid, 51);
    assert_eq!(c.vrrp.version, VrrpVersion::V2);
    assert_eq!(c.vrrp.virtual_mac(), [0, 0, 0x5e, 0, 1, 51]);
    assert!(c.vrrp.preempt);
    assert_eq!(c.vrrp.garp_count, 5);
    assert_eq!(c.vrrp.garp_refresh, Some(std::time::Duration::from_secs(5)));
    assert_eq!(c.port_redirects[0].original_ports, vec![(9090, 9090)]);
    assert!(c.port_redirects[0].matches(9090));
    assert!(!c.port_redirects[0].matches(9091));
    assert_eq!(c.heartbeat.misses, 3);
    assert_eq!(c.dataplane.queues, QueueCount::All);
    assert!(!c.dataplane.set_channels);
    assert!(c.dataplane.cpus.is_empty());
    assert_eq!(
        (
            c.dataplane.rx_ring,
            c.dataplane.tx_ring,
            c.dataplane.umem_frames,
            c.dataplane.frame_size
        ),
        (2048, 2048, 4096, 2048)
    );
    assert_eq!(c.dataplane.mode, XdpMode::Auto);
    assert_eq!(c.dataplane.poll, PollMode::Adaptive);
    assert_eq!(c.dataplane.offload, proxyha::config::Offload::Auto);
    assert_eq!(
        c.dataplane.offload_local,
        proxyha::config::OffloadLocal::Tap
    );
    assert_eq!(c.dataplane.batch_size, 64);
    assert_eq!(c.dataplane.flow_capacity, 1 << 20);
    assert_eq!(c.dataplane.maglev_table_size, 65537);
}

#[test]
fn cluster_mode_defaults_to_active_passive_and_parses_active_active() {
    let c = config::parse("cluster.toml", BASE, Path::new(".")).unwrap();
    assert_eq!(c.cluster.mode, ClusterMode::ActivePassive);
    assert!(
        c.render()
            .contains("cluster.mode                  active-passive\n")
    );
    let aa = format!("{BASE}\n[cluster]\nmode = \"active-active\"\n");
    let c = config::parse("cluster.toml", &aa, Path::new(".")).unwrap();
    assert_eq!(c.cluster.mode, ClusterMode::ActiveActive);
    assert_eq!(c.cluster.announce_table, config::DEFAULT_ANNOUNCE_TABLE);
    let t = format!("{aa}announce_table = 4242\n");
    let c = config::parse("cluster.toml", &t, Path::new(".")).unwrap();
    assert_eq!(c.cluster.announce_table, 4242);
    assert!(c.render().contains("cluster.announce_table        4242\n"));
}

#[test]
fn priority_zero_is_a_scanning_node() {
    let c = config::parse(
        "c.toml",
        &with(BASE, "priority", "priority = 0"),
        Path::new("."),
    )
    .unwrap();
    assert!(!c.node.is_director());
}

#[test]
fn vrrp_peers_parse() {
    let c = config::parse(
        "cluster.toml",
        &add(BASE, "[vrrp]", r#"peers = ["198.18.0.2", "198.18.0.3"]"#),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(
        c.vrrp.peers,
        vec![
            "198.18.0.2".parse::<std::net::Ipv4Addr>().unwrap(),
            "198.18.0.3".parse().unwrap()
        ]
    );
    let c = config::parse("cluster.toml", BASE, Path::new(".")).unwrap();
    assert!(c.vrrp.peers.is_empty());
}

#[test]
fn tracking_parses_and_lowers_the_priority() {
    let c = config::parse("cluster.toml", BASE, Path::new(".")).unwrap();
    assert_eq!(c.vrrp.track_proxy_weight, 0, "proxy tracking is opt-in");
    assert!(c.vrrp.track_interfaces.is_empty());
    assert_eq!(c.vrrp.tracked_priority(99, true, false), 99);
    let c = config::parse(
        "cluster.toml",
        &add(
            BASE,
            "[vrrp]",
            "track_proxy_weight = 20\ntrack_interfaces = [\"eth1\", \"bond0\"]",
        ),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(c.vrrp.track_proxy_weight, 20);
    assert_eq!(c.vrrp.track_interfaces, ["eth1", "bond0"]);
    assert_eq!(c.vrrp.track_interface_weight, config::TRACK_RESIGN);
    assert_eq!(c.vrrp.tracked_priority(99, false, false), 99);
    assert_eq!(c.vrrp.tracked_priority(99, true, false), 79);
    assert_eq!(c.vrrp.tracked_priority(10, true, false), 0);
    assert_eq!(
        c.vrrp.tracked_priority(99, false, true),
        0,
        "a down link gives up Master"
    );
    let c = config::parse(
        "cluster.toml",
        &add(BASE, "[vrrp]", "track_proxy_weight = 255"),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(c.vrrp.tracked_priority(254, true, false), 0);
}

#[test]
fn ranges_and_lists_parse() {
    let t = with(BASE, "original_ports", r#"original_ports = "80,8080-8090""#);
    let c = config::parse("c.toml", &t, Path::new(".")).unwrap();
    assert_eq!(
        c.port_redirects[0].original_ports,
        vec![(80, 80), (8080, 8090)]
    );
    let t = with(BASE, "original_ports", "original_ports = 3128");
    let c = config::parse("c.toml", &t, Path::new(".")).unwrap();
    assert_eq!(c.port_redirects[0].original_ports, vec![(3128, 3128)]);
}

#[test]
fn v3_accepts_centiseconds() {
    let t = with(BASE, "version", "version = 3");
    let t = with(&t, "advert_interval", r#"advert_interval = "10cs""#);
    let c = config::parse("c.toml", &t, Path::new(".")).unwrap();
    assert_eq!(
        c.vrrp.advert_interval,
        std::time::Duration::from_millis(100)
    );
}

/// (description, mutated file, exact error)
fn cases() -> Vec<(&'static str, String, &'static str)> {
    let b = BASE;
    vec![
        (
            "vrid too big",
            with(b, "vrid", "vrid = 300"),
            "cluster.toml: vrrp.vrid = 300: must be 1..255",
        ),
        (
            "track weight too big",
            add(b, "[vrrp]", "track_proxy_weight = 256"),
            "cluster.toml: vrrp.track_proxy_weight = 256: must be 0..255",
        ),
        (
            "track interface weight zero",
            add(b, "[vrrp]", "track_interface_weight = 0"),
            "cluster.toml: vrrp.track_interface_weight = 0: must be 1..255",
        ),
        (
            "track interface listed twice",
            add(b, "[vrrp]", "track_interfaces = [\"eth1\", \"eth1\"]"),
            "cluster.toml: vrrp.track_interfaces[1] = \"eth1\": is listed twice",
        ),
        (
            "vrid zero",
            with(b, "vrid", "vrid = 0"),
            "cluster.toml: vrrp.vrid = 0: must be 1..255",
        ),
        (
            "vrid missing",
            with(b, "vrid", ""),
            "cluster.toml: vrrp.vrid: missing (required)",
        ),
        (
            "priority 255",
            with(b, "priority", "priority = 255"),
            "cluster.toml: node.priority = 255: must be 0..254",
        ),
        (
            "negative priority",
            with(b, "priority", "priority = -1"),
            "cluster.toml: node.priority = -1: must be 0..254",
        ),
        (
            "lbid zero",
            with(b, "lbid", "lbid = 0"),
            "cluster.toml: node.lbid = 0: must be 1..65535",
        ),
        (
            "lbid missing",
            with(b, "lbid", ""),
            "cluster.toml: node.lbid: missing (required)",
        ),
        (
            "bad name",
            with(b, "name", r#"name = "a b""#),
            r#"cluster.toml: node.name = "a b": must be 1..32 characters of A-Z a-z 0-9 . _ - @"#,
        ),
        (
            "bad mgmt ip",
            with(b, "management_ip", r#"management_ip = "198.18.0""#),
            r#"cluster.toml: node.management_ip = "198.18.0": must be an IPv4 address"#,
        ),
        (
            "multicast mgmt ip",
            with(b, "management_ip", r#"management_ip = "224.0.0.18""#),
            r#"cluster.toml: node.management_ip = "224.0.0.18": must be a unicast IPv4 address"#,
        ),
        (
            "capacity zero",
            add(b, "[node]", "capacity = 0"),
            "cluster.toml: node.capacity = 0: must be 1..1000000",
        ),
        (
            "empty socket",
            add(b, "[node]", r#"control_socket = """#),
            r#"cluster.toml: node.control_socket = "": must not be empty"#,
        ),
        (
            "version 4",
            with(b, "version", "version = 4"),
            "cluster.toml: vrrp.version = 4: must be 2 or 3",
        ),
        (
            "v2 sub-second",
            with(b, "advert_interval", r#"advert_interval = "500ms""#),
            r#"cluster.toml: vrrp.advert_interval = "500ms": must be whole seconds 1s..255s in VRRPv2"#,
        ),
        (
            "v2 too long",
            with(b, "advert_interval", r#"advert_interval = "256s""#),
            r#"cluster.toml: vrrp.advert_interval = "256s": must be whole seconds 1s..255s in VRRPv2"#,
        ),
        (
            "v3 5ms",
            with(
                &with(b, "version", "version = 3"),
                "advert_interval",
                r#"advert_interval = "5ms""#,
            ),
            r#"cluster.toml: vrrp.advert_interval = "5ms": must be a multiple of 10ms, 10ms..40950ms in VRRPv3"#,
        ),
        (
            "v3 15ms",
            with(
                &with(b, "version", "version = 3"),
                "advert_interval",
                r#"advert_interval = "15ms""#,
            ),
            r#"cluster.toml: vrrp.advert_interval = "15ms": must be a multiple of 10ms, 10ms..40950ms in VRRPv3"#,
        ),
        (
            "bad duration",
            with(b, "advert_interval", r#"advert_interval = "fast""#),
            r#"cluster.toml: vrrp.advert_interval = "fast": must be a duration like "1s", "100ms" or "10cs""#,
        ),
        (
            "preempt delay",
            add(b, "[vrrp]", r#"preempt_delay = "2h""#),
            r#"cluster.toml: vrrp.preempt_delay = "2h": must be a duration like "1s", "100ms" or "10cs""#,
        ),
        (
            "preempt delay long",
            add(b, "[vrrp]", r#"preempt_delay = "61m""#),
            r#"cluster.toml: vrrp.preempt_delay = "61m": must be at most 3600s"#,
        ),
        (
            "garp count",
            add(b, "[vrrp]", "garp_count = 101"),
            "cluster.toml: vrrp.garp_count = 101: must be 0..100",
        ),
        (
            "garp refresh",
            add(b, "[vrrp]", r#"garp_refresh = "0s""#),
            r#"cluster.toml: vrrp.garp_refresh = "0s": must be "off" or 1ms..3600s"#,
        ),
        (
            "auth v3",
            add(
                &with(&with(b, "version", "version = 3"), "advert_interval", ""),
                "[vrrp]",
                r#"auth_pass = "secret""#,
            ),
            "cluster.toml: vrrp.auth_pass = (hidden): only VRRPv2 has authentication",
        ),
        (
            "auth long",
            add(b, "[vrrp]", r#"auth_pass = "123456789""#),
            "cluster.toml: vrrp.auth_pass = (hidden): must be 1..8 ASCII characters",
        ),
        (
            "bad cidr",
            with(b, "address", r#"address = "198.18.0.250""#),
            r#"cluster.toml: virtual_ip[0].address = "198.18.0.250": must be IPv4 CIDR like 198.18.0.250/24"#,
        ),
        (
            "bad prefix",
            with(b, "address", r#"address = "198.18.0.250/33""#),
            r#"cluster.toml: virtual_ip[0].address = "198.18.0.250/33": prefix `33` must be 0..32"#,
        ),
        (
            "vip is mgmt",
            with(b, "address", r#"address = "198.18.0.1/24""#),
            r#"cluster.toml: virtual_ip[0].address = "198.18.0.1/24": must differ from node.management_ip"#,
        ),
        (
            "dup vip",
            format!("{b}\n[[virtual_ip]]\naddress = \"198.18.0.250/24\"\n"),
            r#"cluster.toml: virtual_ip[1].address = "198.18.0.250/24": duplicate virtual IP"#,
        ),
        (
            "no vip",
            b.replace(
                "[[virtual_ip]]\naddress = \"198.18.0.250/24\"\ninterface = \"eth0\"\n",
                "",
            ),
            "cluster.toml: virtual_ip: missing (required)",
        ),
        (
            "port zero",
            with(b, "original_ports", r#"original_ports = "0""#),
            r#"cluster.toml: port_redirect[0].original_ports = "0": `0` is not a port 1..65535"#,
        ),
        (
            "backwards range",
            with(b, "original_ports", r#"original_ports = "90-80""#),
            r#"cluster.toml: port_redirect[0].original_ports = "90-80": range 90-80 is backwards"#,
        ),
        (
            "bad ports type",
            with(b, "original_ports", "original_ports = true"),
            "cluster.toml: port_redirect[0].original_ports = true: must be a port list like \"80,8080-8090\"",
        ),
        (
            "overlap",
            format!("{b}\n[[port_redirect]]\noriginal_ports = \"9000-9100\"\nproxy_port = 3128\n"),
            r#"cluster.toml: port_redirect[1].original_ports = 9000-9100: overlaps another port_redirect"#,
        ),
        (
            "proxy port",
            with(b, "proxy_port", "proxy_port = 70000"),
            "cluster.toml: port_redirect[0].proxy_port = 70000: must be 1..65535",
        ),
        (
            "hb too fast",
            with(b, "interval", r#"interval = "50ms""#),
            r#"cluster.toml: heartbeat.interval = "50ms": must be 100ms..60s"#,
        ),
        (
            "hb misses",
            with(b, "misses", "misses = 0"),
            "cluster.toml: heartbeat.misses = 0: must be 1..100",
        ),
        (
            "hb key missing",
            with(b, "insecure", r#"key_file = "/nonexistent/proxyha.key""#),
            r#"cluster.toml: heartbeat.key_file = "/nonexistent/proxyha.key": cannot read: No such file or directory (os error 2)"#,
        ),
        (
            "hb no key and not insecure",
            with(b, "insecure", ""),
            "cluster.toml: heartbeat.key_file: missing (required): heartbeats are authenticated by default; create a key with `proxyha key new /etc/proxyha/heartbeat.key`, copy it to every node of the group (mode 0600, owned by root) and set heartbeat.key_file to it, or set heartbeat.insecure = true to accept unauthenticated heartbeats (anyone on the segment can then add or steal nodes)",
        ),
        (
            "hb insecure = false is no key either",
            with(b, "insecure", "insecure = false"),
            "cluster.toml: heartbeat.key_file: missing (required): heartbeats are authenticated by default; create a key with `proxyha key new /etc/proxyha/heartbeat.key`, copy it to every node of the group (mode 0600, owned by root) and set heartbeat.key_file to it, or set heartbeat.insecure = true to accept unauthenticated heartbeats (anyone on the segment can then add or steal nodes)",
        ),
        (
            "hb insecure and a key",
            add(b, "[heartbeat]", r#"key_file = "/etc/proxyha/x.key""#),
            r#"cluster.toml: heartbeat.insecure = true: contradicts heartbeat.key_file = "/etc/proxyha/x.key": remove one of them"#,
        ),
        (
            "hb next key alone",
            add(b, "[heartbeat]", r#"key_file_next = "next.key""#),
            r#"cluster.toml: heartbeat.key_file_next = "next.key": needs heartbeat.key_file (the key heartbeats are sent with)"#,
        ),
        (
            "hb max capacity",
            add(b, "[heartbeat]", "max_capacity = 0"),
            "cluster.toml: heartbeat.max_capacity = 0: must be 1..1000000",
        ),
        (
            "capacity above the cap",
            add(
                &add(b, "[heartbeat]", "max_capacity = 500"),
                "[node]",
                "capacity = 501",
            ),
            "cluster.toml: node.capacity = 501: must be at most heartbeat.max_capacity = 500 (the cap every node applies to the others' claims)",
        ),
        (
            "hb static as a string",
            add(b, "[heartbeat]", r#"static_nodes = ["198.18.0.3"]"#),
            r#"cluster.toml: heartbeat.static_nodes[0] = "198.18.0.3": must be a table like { ip = "198.18.0.3", mac = "02:00:00:00:00:03", name = "scanner-c" }"#,
        ),
        (
            "hb static ip",
            add(
                b,
                "[heartbeat]",
                r#"static_nodes = [{ ip = "x", mac = "02:00:00:00:00:03" }]"#,
            ),
            r#"cluster.toml: heartbeat.static_nodes[0].ip = "x": must be an IPv4 address"#,
        ),
        (
            "hb static no mac",
            add(
                b,
                "[heartbeat]",
                r#"static_nodes = [{ ip = "198.18.0.3" }]"#,
            ),
            "cluster.toml: heartbeat.static_nodes[0].mac: missing (required)",
        ),
        (
            "hb static multicast mac",
            add(
                b,
                "[heartbeat]",
                r#"static_nodes = [{ ip = "198.18.0.3", mac = "01:00:5e:00:00:01" }]"#,
            ),
            r#"cluster.toml: heartbeat.static_nodes[0].mac = "01:00:5e:00:00:01": must be a unicast, non-zero MAC"#,
        ),
        (
            "hb static bad mac",
            add(
                b,
                "[heartbeat]",
                r#"static_nodes = [{ ip = "198.18.0.3", mac = "02:00" }]"#,
            ),
            r#"cluster.toml: heartbeat.static_nodes[0].mac = "02:00": must be a MAC like "02:00:00:00:00:03""#,
        ),
        (
            "hb static unknown key",
            add(
                b,
                "[heartbeat]",
                r#"static_nodes = [{ ip = "198.18.0.3", mac = "02:00:00:00:00:03", id = 3 }]"#,
            ),
            "cluster.toml: heartbeat.static_nodes[0].id: unknown key",
        ),
        (
            "hb static twice",
            add(
                b,
                "[heartbeat]",
                r#"static_nodes = [{ ip = "198.18.0.3", mac = "02:00:00:00:00:03" }, { ip = "198.18.0.3", mac = "02:00:00:00:00:04" }]"#,
            ),
            r#"cluster.toml: heartbeat.static_nodes[1].ip = "198.18.0.3": listed twice"#,
        ),
        (
            "hb static is this node",
            add(
                b,
                "[heartbeat]",
                r#"static_nodes = [{ ip = "198.18.0.1", mac = "02:00:00:00:00:01" }]"#,
            ),
            r#"cluster.toml: heartbeat.static_nodes[0].ip = "198.18.0.1": is this node's node.management_ip (list only the other nodes)"#,
        ),
        (
            "hb no discovery and no static nodes",
            add(b, "[heartbeat]", "accept_unlisted = false"),
            "cluster.toml: heartbeat.accept_unlisted = false: needs heartbeat.static_nodes (otherwise no other node is ever accepted)",
        ),
        (
            "queues",
            add(b, "[dataplane]", "queues = 0"),
            "cluster.toml: dataplane.queues = 0: must be 1..64",
        ),
        (
            "queues word",
            add(b, "[dataplane]", r#"queues = "some""#),
            r#"cluster.toml: dataplane.queues = "some": must be "all" or a number of queues 1..64"#,
        ),
        (
            "set_channels needs a count",
            add(b, "[dataplane]", "set_channels = true"),
            "cluster.toml: dataplane.set_channels = true: needs dataplane.queues = N (the channel count to set)",
        ),
        (
            "cpus list",
            add(b, "[dataplane]", r#"cpus = "3-1""#),
            r#"cluster.toml: dataplane.cpus = "3-1": must be a CPU list like "1-3,5" (CPUs 0..4095)"#,
        ),
        (
            "cpus array",
            add(b, "[dataplane]", "cpus = [0, -1]"),
            "cluster.toml: dataplane.cpus[1] = -1: must be 0..4095",
        ),
        (
            "rx ring",
            add(b, "[dataplane]", "rx_ring = 1000"),
            "cluster.toml: dataplane.rx_ring = 1000: must be a power of two",
        ),
        (
            "umem below ring",
            add(b, "[dataplane]", "umem_frames = 1024"),
            "cluster.toml: dataplane.umem_frames = 1024: must be at least dataplane.rx_ring (2048), to keep the RX ring fed",
        ),
        (
            "frame size",
            add(b, "[dataplane]", "frame_size = 3000"),
            "cluster.toml: dataplane.frame_size = 3000: must be 2048 or 4096",
        ),
        (
            "mode",
            add(b, "[dataplane]", r#"mode = "fast""#),
            r#"cluster.toml: dataplane.mode = "fast": must be "auto", "copy" or "zero-copy""#,
        ),
        (
            "poll",
            add(b, "[dataplane]", r#"poll = "spin""#),
            r#"cluster.toml: dataplane.poll = "spin": must be "adaptive" or "busy""#,
        ),
        (
            "offload",
            add(b, "[dataplane]", r#"offload = "on""#),
            r#"cluster.toml: dataplane.offload = "on": must be "xdp", "off" or "auto""#,
        ),
        (
            "offload local",
            add(b, "[dataplane]", r#"offload_local = "stack""#),
            r#"cluster.toml: dataplane.offload_local = "stack": must be "tap" or "xdp""#,
        ),
        (
            "offload local without offload",
            add(
                b,
                "[dataplane]",
                "offload = \"off\"\noffload_local = \"xdp\"",
            ),
            r#"cluster.toml: dataplane.offload_local = "xdp": needs dataplane.offload = "xdp" or "auto""#,
        ),
        (
            "batch",
            add(b, "[dataplane]", "batch_size = 0"),
            "cluster.toml: dataplane.batch_size = 0: must be 1..1024",
        ),
        (
            "flows",
            add(b, "[dataplane]", "flow_capacity = 10"),
            "cluster.toml: dataplane.flow_capacity = 10: must be 1024..16777216",
        ),
        (
            "maglev prime",
            add(b, "[dataplane]", "maglev_table_size = 65536"),
            "cluster.toml: dataplane.maglev_table_size = 65536: must be prime",
        ),
        (
            "control group unknown",
            add(b, "[node]", r#"control_group = "proxyha-no-such-group""#),
            r#"cluster.toml: node.control_group = "proxyha-no-such-group": no such group on this machine"#,
        ),
        (
            "vrrp peer not an address",
            add(b, "[vrrp]", r#"peers = ["198.18.0.2", "director-b"]"#),
            r#"cluster.toml: vrrp.peers[1] = "director-b": must be an IPv4 address"#,
        ),
        (
            "vrrp peer multicast",
            add(b, "[vrrp]", r#"peers = ["224.0.0.18"]"#),
            r#"cluster.toml: vrrp.peers[0] = "224.0.0.18": must be a unicast IPv4 address"#,
        ),
        (
            "dataplane on another interface",
            b.replace(DATAPLANE_ETH0, "[dataplane]\ninterface = \"eth1\""),
            r#"cluster.toml: dataplane.interface = "eth1": must be the same interface as vrrp.interface = "eth0""#,
        ),
        (
            "vrrp interface too long for Linux",
            with(b, "interface", r#"interface = "eth0-with-a-long-name""#),
            r#"cluster.toml: vrrp.interface = "eth0-with-a-long-name": must be at most 15 characters (a Linux interface name)"#,
        ),
        (
            "dataplane interface too long for Linux",
            b.replace(
                DATAPLANE_ETH0,
                "[dataplane]\ninterface = \"eth0-with-a-long-name\"",
            ),
            r#"cluster.toml: dataplane.interface = "eth0-with-a-long-name": must be at most 15 characters (a Linux interface name)"#,
        ),
        (
            "control socket path too long",
            add(
                b,
                "[node]",
                &format!("control_socket = \"/run/{}.sock\"", "s".repeat(100)),
            ),
            "cluster.toml: node.control_socket = \"/run/ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss.sock\": must be at most 107 bytes (a Unix socket path)",
        ),
        (
            "too many virtual IPs",
            format!("{b}{}", extra_vips(255)),
            "cluster.toml: virtual_ip = 256 entries: must be at most 255 (a VRRP advertisement carries at most 255 addresses)",
        ),
        (
            "unknown key",
            add(b, "[vrrp]", "vird = 51"),
            "cluster.toml: vrrp.vird: unknown key",
        ),
        (
            "unknown table",
            format!("{b}\n[extra]\nx = 1\n"),
            "cluster.toml: extra: unknown key",
        ),
        (
            "unknown in array",
            add(b, "[[port_redirect]]", "port = 1"),
            "cluster.toml: port_redirect[0].port: unknown key",
        ),
        (
            "wrong type",
            with(b, "vrid", r#"vrid = "51""#),
            "cluster.toml: vrrp.vrid: invalid type: string \"51\", expected i64 (line 10)",
        ),
        (
            "no node",
            b.replacen("[node]", "[nodes]", 1),
            "cluster.toml: nodes: unknown key",
        ),
        (
            "cluster mode unknown",
            format!("{b}\n[cluster]\nmode = \"active\"\n"),
            "cluster.toml: cluster.mode = \"active\": must be \"active-passive\" or \"active-active\"",
        ),
        (
            "announce table without active-active",
            format!("{b}\n[cluster]\nannounce_table = 100\n"),
            "cluster.toml: cluster.announce_table = 100: only applies with cluster.mode = \"active-active\"",
        ),
        (
            "announce table main",
            format!("{b}\n[cluster]\nmode = \"active-active\"\nannounce_table = 254\n"),
            "cluster.toml: cluster.announce_table = 254: must not be 0, 253 (default), 254 (main) or 255 (local)",
        ),
        (
            "announce table too big",
            format!("{b}\n[cluster]\nmode = \"active-active\"\nannounce_table = 4294967296\n"),
            "cluster.toml: cluster.announce_table = 4294967296: must be 1..4294967295",
        ),
        (
            "cluster unknown key",
            format!("{b}\n[cluster]\nrouter = \"x\"\n"),
            "cluster.toml: cluster.router: unknown key",
        ),
        (
            "syntax",
            format!("{b}\n[vrrp\n"),
            "cluster.toml: line 31: invalid table header\nexpected `.`, `]`",
        ),
    ]
}

#[test]
fn every_rule_has_an_exact_error() {
    let mut failures = Vec::new();
    for (what, text, want) in cases() {
        let got = err(&text);
        if got != want {
            failures.push(format!("{what}:\n  want: {want}\n  got:  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The rules `proxyha run` used to check on its own hold in `config check`
/// too, and the largest files they allow pass.
#[test]
fn run_time_limits_are_config_rules() {
    let ok = |t: &str| config::parse("cluster.toml", t, Path::new(".")).unwrap();
    let c = ok(&format!("{BASE}{}", extra_vips(254)));
    assert_eq!(c.virtual_ips.len(), 255);
    let t = with(BASE, "interface", r#"interface = "eth0.100-abcde""#);
    let t = t.replace(DATAPLANE_ETH0, "[dataplane]");
    let c = ok(&t);
    assert_eq!(c.dataplane.interface, "eth0.100-abcde");
    let sock = format!("/run/{}.sock", "s".repeat(97));
    assert_eq!(sock.len(), 107);
    let c = ok(&add(BASE, "[node]", &format!("control_socket = {sock:?}")));
    assert_eq!(c.node.control_socket, Path::new(&sock));
    let e = err(&BASE.replace(DATAPLANE_ETH0, "[dataplane]\ninterface = \"eth1\""));
    assert!(
        e.contains("dataplane.interface") && e.contains("vrrp.interface"),
        "{e}"
    );
}

/// Writes `bytes` to `path` with `mode`.
fn write_key(path: &Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `text` with its `insecure = true` replaced by `key_file = "{key}"`.
fn keyed(text: &str, key: &str) -> String {
    with(text, "insecure", &format!("key_file = {key:?}"))
}

#[test]
fn key_file_is_read_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    write_key(&dir.path().join("hb.key"), b"0123456789abcdef0123\n", 0o600);
    let text = keyed(BASE, "hb.key");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, &text).unwrap();
    let c = config::load(&path).unwrap();
    assert_eq!(
        c.heartbeat.key.as_deref(),
        Some(&b"0123456789abcdef0123"[..])
    );
    write_key(&dir.path().join("hb.key"), b"short", 0o600);
    let e = config::load(&path).unwrap_err().to_string();
    assert!(
        e.ends_with(r#"heartbeat.key_file = "hb.key": key must be at least 16 bytes (`proxyha key new FILE` writes 32 random bytes)"#),
        "{e}"
    );
}

#[test]
fn a_config_without_a_key_is_refused_unless_insecure() {
    let c = config::parse("cluster.toml", BASE, Path::new(".")).unwrap();
    assert!(c.heartbeat.insecure);
    assert_eq!(c.heartbeat.key, None);
    assert!(
        c.render()
            .contains("heartbeat.insecure = true (heartbeats are unauthenticated)")
    );
    // No [heartbeat] section at all is no key too.
    let start = BASE.find("[heartbeat]").unwrap();
    let end = BASE.find("[dataplane]").unwrap();
    let text = format!("{}{}", &BASE[..start], &BASE[end..]);
    let e = err(&text);
    assert!(
        e.starts_with("cluster.toml: heartbeat.key_file: missing (required)"),
        "{e}"
    );
    assert!(e.contains("proxyha key new"), "{e}");
    assert!(e.contains("heartbeat.insecure = true"), "{e}");
}

#[test]
fn key_files_with_loose_permissions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("hb.key");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, keyed(BASE, "hb.key")).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o660] {
        write_key(&key, b"0123456789abcdef0123", mode);
        let e = config::load(&path).unwrap_err().to_string();
        let want = format!(
            "heartbeat.key_file = \"hb.key\": mode {mode:04o} lets group or others read or change the key: run `chmod 600 {}`",
            key.display()
        );
        assert!(e.ends_with(&want), "{mode:o}: {e}");
    }
    for mode in [0o600, 0o400] {
        write_key(&key, b"0123456789abcdef0123", mode);
        assert!(config::load(&path).is_ok(), "{mode:o}");
    }
    // A directory is not a key.
    std::fs::remove_file(&key).unwrap();
    std::fs::create_dir(&key).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let e = config::load(&path).unwrap_err().to_string();
    assert!(e.ends_with("must be a regular file"), "{e}");
}

/// Run as root (the daemon's case), a key owned by another user is refused.
#[test]
fn key_files_not_owned_by_root_are_refused() {
    if !proxyha::node::prereq::require_root("key_files_not_owned_by_root_are_refused") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("hb.key");
    write_key(&key, b"0123456789abcdef0123", 0o600);
    std::os::unix::fs::chown(&key, Some(65534), Some(65534)).unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, keyed(BASE, "hb.key")).unwrap();
    let e = config::load(&path).unwrap_err().to_string();
    assert!(
        e.ends_with(&format!(
            "heartbeat.key_file = \"hb.key\": owned by uid 65534, not root: run `chown root: {}` (whoever owns the key can change it)",
            key.display()
        )),
        "{e}"
    );
    std::os::unix::fs::chown(&key, Some(0), Some(0)).unwrap();
    assert!(config::load(&path).is_ok());
}

#[test]
fn key_file_next_is_read_and_rendered() {
    let dir = tempfile::tempdir().unwrap();
    write_key(&dir.path().join("a.key"), b"0123456789abcdef-a", 0o600);
    write_key(&dir.path().join("b.key"), b"0123456789abcdef-b", 0o600);
    let text = add(
        &keyed(BASE, "a.key"),
        "[heartbeat]",
        r#"key_file_next = "b.key""#,
    );
    let path = dir.path().join("node.toml");
    std::fs::write(&path, &text).unwrap();
    let c = config::load(&path).unwrap();
    assert_eq!(c.heartbeat.key.as_deref(), Some(&b"0123456789abcdef-a"[..]));
    assert_eq!(
        c.heartbeat.key_next.as_deref(),
        Some(&b"0123456789abcdef-b"[..])
    );
    assert!(c.render().contains("also accepting"), "{}", c.render());
    let hb = proxyha::control::heartbeat_config(&c, [2, 0, 0, 0, 0, 1]);
    assert_eq!(hb.key_next.as_deref(), Some(&b"0123456789abcdef-b"[..]));
    // The next key gets the same checks.
    write_key(&dir.path().join("b.key"), b"0123456789abcdef-b", 0o644);
    let e = config::load(&path).unwrap_err().to_string();
    assert!(
        e.contains(r#"heartbeat.key_file_next = "b.key": mode 0644"#),
        "{e}"
    );
}

#[test]
fn static_nodes_and_discovery_reach_the_heartbeat_machine() {
    let text = add(
        BASE,
        "[heartbeat]",
        "static_nodes = [{ ip = \"198.18.0.3\", mac = \"02:00:00:00:00:03\", name = \"scanner-c\" }, { ip = \"198.18.0.2\", mac = \"02-00-00-00-00-02\" }]\naccept_unlisted = false\nmax_capacity = 5000",
    );
    let c = config::parse("cluster.toml", &text, Path::new(".")).unwrap();
    assert_eq!(c.heartbeat.static_nodes.len(), 2);
    assert_eq!(c.heartbeat.static_nodes[1].name, "198.18.0.2");
    let hb = proxyha::control::heartbeat_config(&c, [2, 0, 0, 0, 0, 1]);
    assert!(!hb.accept_unlisted);
    assert_eq!(hb.max_capacity, 5000);
    assert_eq!(
        hb.static_nodes[0],
        proxyha::heartbeat::StaticNode {
            id: proxyha::heartbeat::node_id_from_ipv4("198.18.0.3".parse().unwrap()),
            name: "scanner-c".into(),
            ip: "198.18.0.3".parse().unwrap(),
            mac: [2, 0, 0, 0, 0, 3],
        }
    );
    let m = proxyha::heartbeat::Machine::new(hb, std::time::Instant::now(), 0).unwrap();
    assert_eq!(m.node_ids().len(), 2);
    let r = c.render();
    assert!(r.contains("scanner-c 198.18.0.3 02:00:00:00:00:03"), "{r}");
    assert!(r.contains("heartbeat.accept_unlisted"), "{r}");
    // The defaults.
    let d = config::parse("cluster.toml", BASE, Path::new(".")).unwrap();
    assert!(d.heartbeat.accept_unlisted);
    assert_eq!(
        d.heartbeat.max_capacity,
        proxyha::heartbeat::DEFAULT_MAX_CAPACITY
    );
}

#[test]
fn key_new_cli_writes_a_private_key_and_never_overwrites() {
    use std::os::unix::fs::MetadataExt;
    let bin = env!("CARGO_BIN_EXE_proxyha");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("hb.key");
    let out = std::process::Command::new(bin)
        .args(["key", "new"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&key).unwrap();
    assert_eq!(bytes.len(), 32);
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600);
    // The config accepts it as written, all 32 bytes.
    let path = dir.path().join("node.toml");
    std::fs::write(&path, keyed(BASE, "hb.key")).unwrap();
    assert_eq!(
        config::load(&path).unwrap().heartbeat.key,
        Some(bytes.clone())
    );
    // A second run refuses to overwrite it.
    let again = std::process::Command::new(bin)
        .args(["key", "new"])
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already exists; refusing to overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read(&key).unwrap(), bytes);
    // Nor does it follow a symlink planted at the path.
    let link = dir.path().join("link.key");
    std::os::unix::fs::symlink(dir.path().join("target"), &link).unwrap();
    let out = std::process::Command::new(bin)
        .args(["key", "new"])
        .arg(&link)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.path().join("target").exists());
}

#[test]
fn missing_file_is_a_clear_error() {
    let e = config::load(Path::new("/nonexistent/cluster.toml")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/nonexistent/cluster.toml: cannot read: No such file or directory (os error 2)"
    );
}

/// Loads a shipped pipeline file with its `key_file` pointed at `key`
/// (the shipped path, under /etc/proxyha, is the operator's to create);
/// every shipped file must name a key and must not opt out.
fn load_pipeline(p: &Path, key: &Path) -> config::Config {
    let text = std::fs::read_to_string(p).unwrap();
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("insecure")),
        "{}: shipped configs must not opt out of authentication",
        p.display()
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("key_file = "))
        .unwrap_or_else(|| panic!("{}: no heartbeat.key_file", p.display()));
    assert!(line.contains("/etc/proxyha/"), "{}: {line}", p.display());
    let text = text.replacen(
        line,
        &format!("key_file = {:?}", key.display().to_string()),
        1,
    );
    config::parse(&p.display().to_string(), &text, p.parent().unwrap())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_pipeline_file_validates() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("group.key");
    write_key(&key, b"0123456789abcdef0123456789abcdef", 0o600);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut n = 0;
    let mut stack = vec![dir];
    let mut groups = std::collections::BTreeMap::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "toml") {
                let c = load_pipeline(&p, &key);
                for a in [c.node.management_ip]
                    .into_iter()
                    .chain(c.virtual_ips.iter().map(|v| v.address.address()))
                {
                    let o = a.octets();
                    assert!(
                        o[0] == 198 && (o[1] == 18 || o[1] == 19),
                        "{}: {a} outside 198.18.0.0/15",
                        p.display()
                    );
                }
                groups
                    .entry(c.node.lbid)
                    .or_insert_with(Vec::new)
                    .push((c.vrrp.vrid, c.node.priority));
                n += 1;
            }
        }
    }
    assert!(n >= 6, "expected the two example clusters, found {n} files");
    // Group A: VRID 51 with priorities 99, 89, 0; group B: its own LBID and VRID.
    let mut a = groups[&10].clone();
    a.sort();
    assert_eq!(a, vec![(51, 0), (51, 89), (51, 99)]);
    assert!(groups[&20].iter().all(|(v, _)| *v == 52));
}

#[test]
fn config_check_cli() {
    let bin = env!("CARGO_BIN_EXE_proxyha");
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("group.key");
    write_key(&key, b"0123456789abcdef0123456789abcdef", 0o600);
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/cluster-a/director-a.toml");
    let text = std::fs::read_to_string(&shipped)
        .unwrap()
        .replace("/etc/proxyha/cluster-a.key", &key.display().to_string());
    let copy = tmp.path().join("director-a.toml");
    std::fs::write(&copy, text).unwrap();
    let ok = std::process::Command::new(bin)
        .args(["config", "check"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(ok.status.success());
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        out.contains("vrrp.virtual_mac              00:00:5e:00:01:33"),
        "{out}"
    );
    assert!(
        out.contains("port_redirect[0]              http 9090 -> 9090"),
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("cluster.toml");
    std::fs::write(&bad, with(BASE, "vrid", "vrid = 300")).unwrap();
    let out = std::process::Command::new(bin)
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cluster.toml: vrrp.vrid = 300: must be 1..255"),
        "{err}"
    );

    let out = std::process::Command::new(bin)
        .args(["frobnicate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A closed stderr (the reading end of its pipe gone: EPIPE) must not
/// make proxyha panic (exit 101); it reports through the exit code.
#[test]
fn a_closed_stderr_never_panics() {
    let bin = env!("CARGO_BIN_EXE_proxyha");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.toml");
    std::fs::write(&path, with(BASE, "insecure", "")).unwrap();
    for args in [vec!["run", "--config"], vec!["config", "check"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let st = std::process::Command::new(bin)
            .args(&args)
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(writer)
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(1), "{args:?}: {st}");
    }
}

/// `[notify]` and `[metrics]`: off by default, commands as strings or
/// arrays, and every rule with its exact error.
#[test]
fn notify_and_metrics_settings() {
    let ok = |t: &str| config::parse("cluster.toml", t, Path::new(".")).unwrap();
    let c = ok(BASE);
    assert_eq!(
        c.notify,
        config::Notify {
            timeout: std::time::Duration::from_secs(10),
            ..config::Notify::default()
        }
    );
    assert_eq!(c.metrics.listen, None);
    let c = ok(&format!(
        "{BASE}\n[notify]\nmaster = \"/bin/sh -c true\"\nnode = [\"/bin/echo\", \"a b\"]\n\
         timeout = \"2s\"\n[metrics]\nlisten = \"[::1]:9800\"\n"
    ));
    assert_eq!(
        c.notify.master,
        Some(vec!["/bin/sh".into(), "-c".into(), "true".into()])
    );
    assert_eq!(c.notify.node, Some(vec!["/bin/echo".into(), "a b".into()]));
    assert_eq!(c.notify.backup, None);
    assert_eq!(c.notify.timeout, std::time::Duration::from_secs(2));
    assert_eq!(c.metrics.listen, Some("[::1]:9800".parse().unwrap()));
    let r = c.render();
    assert!(
        r.contains("notify.master") && r.contains("http://[::1]:9800/metrics"),
        "{r}"
    );
    for (section, want) in [
        (
            "[notify]\nmaster = \"sh -c true\"",
            "cluster.toml: notify.master = \"sh -c true\": the program must be an absolute path (it is run without a shell or PATH)",
        ),
        (
            "[notify]\nstop = \"  \"",
            "cluster.toml: notify.stop = \"  \": must name a program (an absolute path)",
        ),
        (
            "[notify]\nfault = \"/nonexistent/proxyha-hook\"",
            "cluster.toml: notify.fault = \"/nonexistent/proxyha-hook\": /nonexistent/proxyha-hook: No such file or directory (os error 2)",
        ),
        (
            "[notify]\nbackup = \"/etc\"",
            "cluster.toml: notify.backup = \"/etc\": /etc is not an executable file",
        ),
        (
            "[notify]\ntimeout = \"50ms\"",
            "cluster.toml: notify.timeout = \"50ms\": must be 100ms..600s",
        ),
        (
            "[notify]\nmastr = \"/bin/true\"",
            "cluster.toml: notify.mastr: unknown key",
        ),
        (
            "[metrics]\nlisten = \"9800\"",
            "cluster.toml: metrics.listen = \"9800\": must be IP:PORT (e.g. \"127.0.0.1:9800\" or \"[::1]:9800\") with a unicast or unspecified address and a port 1..65535",
        ),
        (
            "[metrics]\nlisten = \"127.0.0.1:0\"",
            "cluster.toml: metrics.listen = \"127.0.0.1:0\": must be IP:PORT (e.g. \"127.0.0.1:9800\" or \"[::1]:9800\") with a unicast or unspecified address and a port 1..65535",
        ),
        (
            "[metrics]\nlisten = \"224.0.0.1:9800\"",
            "cluster.toml: metrics.listen = \"224.0.0.1:9800\": must be IP:PORT (e.g. \"127.0.0.1:9800\" or \"[::1]:9800\") with a unicast or unspecified address and a port 1..65535",
        ),
    ] {
        assert_eq!(err(&format!("{BASE}\n{section}\n")), want);
    }
    let long = format!(
        "[notify]\nnode = [{}]",
        vec!["\"/bin/true\""; 33].join(", ")
    );
    assert!(err(&format!("{BASE}\n{long}\n")).contains("at most 32 words"));
}
