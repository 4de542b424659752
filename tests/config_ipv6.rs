//! IPv6 in the config: `[[virtual_ip]]` with IPv6 addresses next to IPv4
//! ones, `node.management_ip6`, and every IPv6 rule with its exact error.

use std::net::Ipv6Addr;
use std::path::Path;

use proxyha::config;

/// A VRRPv3 director with one IPv4 and one IPv6 virtual IP.
const BASE: &str = r#"
[node]
name = "director-a"
management_ip = "198.18.0.1"
management_ip6 = "2001:2::1"
priority = 99
lbid = 10

[vrrp]
interface = "eth0"
vrid = 51
version = 3
advert_interval = "1s"

[[virtual_ip]]
address = "198.18.0.250/24"

[[virtual_ip]]
address = "2001:2::250/64"

[[port_redirect]]
protocol = "http"
original_ports = "9090"
proxy_port = 9090

[heartbeat]
insecure = true
"#;

fn parse(text: &str) -> Result<config::Config, String> {
    config::parse("cluster.toml", text, Path::new(".")).map_err(|e| e.to_string())
}

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn a_group_holds_both_families() {
    let c = parse(BASE).unwrap();
    assert_eq!(
        c.vip_addrs(),
        vec!["198.18.0.250".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(c.vip6_addrs(), vec![ip6("2001:2::250")]);
    assert_eq!(c.virtual_ips6[0].address.prefix_len(), 64);
    assert_eq!(c.virtual_ips6[0].interface, "eth0");
    assert_eq!(c.node.management_ip6, Some(ip6("2001:2::1")));
    // No link-local VIP configured: the EUI-64 address of 00:00:5e:00:02:33.
    assert_eq!(c.link_local_vip6(), ip6("fe80::200:5eff:fe00:233"));
    let r = c.render();
    assert!(
        r.contains(&format!("{:<30}2001:2::1\n", "node.management_ip6")),
        "{r}"
    );
    assert!(
        r.contains(&format!("{:<30}2001:2::250/64 on eth0\n", "virtual_ip6[0]")),
        "{r}"
    );
    assert!(
        r.contains("fe80::200:5eff:fe00:233 (first address of the IPv6 adverts)"),
        "{r}"
    );
}

#[test]
fn a_configured_link_local_vip_is_the_instances() {
    let text = format!("{BASE}\n[[virtual_ip]]\naddress = \"fe80::51/64\"\n");
    let c = parse(&text).unwrap();
    assert_eq!(c.link_local_vip6(), ip6("fe80::51"));
    assert_eq!(c.vip6_addrs(), vec![ip6("2001:2::250"), ip6("fe80::51")]);
}

#[test]
fn management_ip6_is_optional_and_reaches_the_heartbeat() {
    let text = BASE.replace("management_ip6 = \"2001:2::1\"\n", "");
    let c = parse(&text).unwrap();
    assert_eq!(c.node.management_ip6, None);
    let hb = proxyha::control::heartbeat_config(&c, [2, 0, 0, 0, 0, 1]);
    assert_eq!(hb.ipv6, Ipv6Addr::UNSPECIFIED);
    let c = parse(BASE).unwrap();
    let hb = proxyha::control::heartbeat_config(&c, [2, 0, 0, 0, 0, 1]);
    assert_eq!(hb.ipv6, ip6("2001:2::1"));
}

#[test]
fn an_ipv6_change_needs_a_restart() {
    let a = parse(BASE).unwrap();
    let b = parse(&BASE.replace("2001:2::250/64", "2001:2::251/64")).unwrap();
    assert_eq!(
        config::reload::restart_needed(&a, &b),
        vec!["virtual_ips6".to_string()]
    );
}

fn cases() -> Vec<(&'static str, String, &'static str)> {
    let b = BASE;
    let vip6 = |a: &str| b.replace("2001:2::250/64", a);
    vec![
        (
            "not an IPv6 address",
            vip6("2001:2::zz/64"),
            "cluster.toml: virtual_ip[1].address = \"2001:2::zz/64\": `2001:2::zz` is not an IPv6 address",
        ),
        (
            "no prefix",
            vip6("2001:2::250"),
            "cluster.toml: virtual_ip[1].address = \"2001:2::250\": must be IPv6 CIDR like 2001:2::250/64",
        ),
        (
            "prefix too long",
            vip6("2001:2::250/129"),
            "cluster.toml: virtual_ip[1].address = \"2001:2::250/129\": prefix `129` must be 0..128",
        ),
        (
            "multicast",
            vip6("ff02::12/64"),
            "cluster.toml: virtual_ip[1].address = \"ff02::12/64\": must be a unicast IPv6 address",
        ),
        (
            "unspecified",
            vip6("::/0"),
            "cluster.toml: virtual_ip[1].address = \"::/0\": must be a unicast IPv6 address",
        ),
        (
            "loopback",
            vip6("::1/128"),
            "cluster.toml: virtual_ip[1].address = \"::1/128\": must be a unicast IPv6 address",
        ),
        (
            "IPv4-mapped",
            vip6("::ffff:198.18.0.9/128"),
            "cluster.toml: virtual_ip[1].address = \"::ffff:198.18.0.9/128\": must be a unicast IPv6 address",
        ),
        (
            "duplicate",
            format!("{b}\n[[virtual_ip]]\naddress = \"2001:2:0::250/48\"\n"),
            "cluster.toml: virtual_ip[2].address = \"2001:2:0::250/48\": duplicate virtual IP",
        ),
        (
            "two link-local",
            format!(
                "{b}\n[[virtual_ip]]\naddress = \"fe80::1/64\"\n[[virtual_ip]]\naddress = \"fe80::2/64\"\n"
            ),
            "cluster.toml: virtual_ip[3].address = \"fe80::2/64\": a second link-local virtual IP \
             (the IPv6 instance has one, RFC 5798 §5.2.9)",
        ),
        (
            "other interface",
            b.replace(
                "address = \"2001:2::250/64\"",
                "address = \"2001:2::250/64\"\ninterface = \"eth1\"",
            ),
            "cluster.toml: virtual_ip[1].interface = \"eth1\": must be vrrp.interface = \"eth0\" \
             for an IPv6 address (its adverts and neighbour advertisements go out there)",
        ),
        (
            "same as management_ip6",
            b.replace(
                "management_ip6 = \"2001:2::1\"",
                "management_ip6 = \"2001:2::250\"",
            ),
            "cluster.toml: virtual_ip[1].address = \"2001:2::250/64\": must differ from node.management_ip6",
        ),
        (
            "IPv6 only",
            b.replace(
                "address = \"198.18.0.250/24\"",
                "address = \"2001:2::251/64\"",
            ),
            "cluster.toml: virtual_ip = 2 IPv6 entries and no IPv4: needs at least one IPv4 \
             address (the proxy probe and `proxyha check` use the first IPv4 VIP; IPv6 virtual \
             IPs come in addition, see docs/ipv6.md)",
        ),
        (
            "too many IPv6",
            format!(
                "{b}{}",
                (1..=89)
                    .map(|i| format!("\n[[virtual_ip]]\naddress = \"2001:2::1:{i:x}/64\"\n"))
                    .collect::<String>()
            ),
            "cluster.toml: virtual_ip = 90 IPv6 entries: must be at most 89 (an IPv6 advert \
             carries them and the link-local address in one 1500-byte frame)",
        ),
        (
            "VRRPv2",
            b.replace("version = 3", "version = 2"),
            "cluster.toml: vrrp.version = 2: must be 3 with IPv6 virtual IPs (VRRPv2, RFC 3768, \
             is IPv4 only)",
        ),
        (
            "peers",
            b.replace(
                "advert_interval = \"1s\"",
                "advert_interval = \"1s\"\npeers = [\"198.18.0.2\"]",
            ),
            "cluster.toml: vrrp.peers = 1 entries: must be empty with IPv6 virtual IPs (IPv6 \
             adverts come from link-local addresses, which the IPv4 peer list cannot name)",
        ),
        (
            "active-active",
            format!("{b}\n[cluster]\nmode = \"active-active\"\n"),
            "cluster.toml: cluster.mode = \"active-active\": does not support IPv6 virtual IPs yet \
             (their announcement and forwarding are IPv4 only; docs/ipv6.md)",
        ),
        (
            "nd_router_flag without IPv6",
            b.replace(
                "address = \"2001:2::250/64\"",
                "address = \"198.18.0.251/24\"",
            )
            .replace(
                "advert_interval = \"1s\"",
                "advert_interval = \"1s\"\nnd_router_flag = true",
            ),
            "cluster.toml: vrrp.nd_router_flag = true: needs an IPv6 virtual IP (it is a flag of \
             their neighbour advertisements)",
        ),
        (
            "management_ip6 not an address",
            b.replace(
                "management_ip6 = \"2001:2::1\"",
                "management_ip6 = \"198.18.0.1\"",
            ),
            "cluster.toml: node.management_ip6 = \"198.18.0.1\": must be an IPv6 address",
        ),
        (
            "management_ip6 link-local",
            b.replace(
                "management_ip6 = \"2001:2::1\"",
                "management_ip6 = \"fe80::1\"",
            ),
            "cluster.toml: node.management_ip6 = \"fe80::1\": must not be link-local (fe80::/10 \
             is on every link)",
        ),
        (
            "management_ip6 multicast",
            b.replace(
                "management_ip6 = \"2001:2::1\"",
                "management_ip6 = \"ff02::1\"",
            ),
            "cluster.toml: node.management_ip6 = \"ff02::1\": must be a unicast IPv6 address",
        ),
    ]
}

#[test]
fn every_ipv6_rule_has_an_exact_error() {
    let mut failures = Vec::new();
    for (what, text, want) in cases() {
        match parse(&text) {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(got) if got != want => {
                failures.push(format!("{what}:\n  want: {want}\n  got:  {got}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `status` shows each node's IPv6 management address on its `ip6:` line:
/// this node's from its config, a peer's from its heartbeats.
#[test]
fn status_shows_ip6_from_config_and_heartbeats() {
    use proxyha::control::Plane;
    use proxyha::dataplane::classify::Filter;
    use proxyha::dataplane::{ControlKind, Shared};
    use std::time::{Duration, Instant};

    let t0 = Instant::now();
    let plane = |text: &str, mac: [u8; 6]| {
        let shared = Shared::new(Filter::new(51, mac), 65537).unwrap();
        let mut p = Plane::new(parse(text).unwrap(), mac, shared, t0, 1_764_140_400_000).unwrap();
        p.start(t0);
        p
    };
    let mut a = plane(BASE, [2, 0, 0, 0, 0, 1]);
    let b_text = BASE
        .replace("director-a", "director-b")
        .replace("198.18.0.1\"", "198.18.0.2\"")
        .replace("management_ip6 = \"2001:2::1\"\n", "");
    let mut b = plane(&b_text, [2, 0, 0, 0, 0, 2]);
    let mut now = t0;
    for _ in 0..400 {
        now += Duration::from_millis(10);
        a.handle_timeout(now);
        b.handle_timeout(now);
        while let Some(f) = a.poll_transmit() {
            // IPv4 protocol 253: a heartbeat.
            if f[12..14] == [0x08, 0x00] && f[23] == 253 {
                b.handle_frame(now, ControlKind::Heartbeat, &f);
            }
        }
        while b.poll_transmit().is_some() {}
    }
    let render = |p: &Plane| proxyha::cli::status::render(&p.status(now));
    let (ra, rb) = (render(&a), render(&b));
    assert!(ra.contains("device: __SELF__\n"), "{ra}");
    assert!(ra.contains("  ip: 198.18.0.1\n  ip6: 2001:2::1\n"), "{ra}");
    // b has no IPv6 management address: `::`; it heard a's.
    assert!(rb.contains("  ip: 198.18.0.2\n  ip6: ::\n"), "{rb}");
    assert!(rb.contains("device: director-a\n"), "{rb}");
    assert!(rb.contains("  ip: 198.18.0.1\n  ip6: 2001:2::1\n"), "{rb}");
}
