//! What a reload may change without a restart, and what it may not.
//!
//! `proxyha reload` (and SIGHUP) re-read the file; [`restart_needed`] names
//! every changed key that only a restart can apply (the interface, the VRID,
//! the queues, the node's identity, ...). The rest is applied as a diff by
//! the running daemon: VIPs, port redirects, capacity, VRRP priority,
//! preempt and delay, gratuitous ARPs, peers and tracking, every
//! heartbeat setting including the keys, and the notification commands.
//! (`metrics.listen` needs a restart.)

use serde_json::Value;

use super::Config;

/// The keys a reload applies in place.
pub const HOT: &[&str] = &[
    "node.priority",
    "node.capacity",
    "vrrp.preempt",
    "vrrp.nd_router_flag",
    "vrrp.preempt_delay",
    "vrrp.garp_count",
    "vrrp.garp_refresh",
    "vrrp.peers",
    "vrrp.track_proxy_weight",
    "vrrp.track_interfaces",
    "vrrp.track_interface_weight",
    "virtual_ips",
    "port_redirects",
    "heartbeat",
    // The notification runner takes new commands for later events.
    "notify",
];

/// The changed keys of `new` against `old` that need a restart, sorted; empty when the whole change can be applied in place.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    // A director may change its priority, not become a scanning node (or
    // the reverse): that changes what runs.
    if old.node.is_director() != new.node.is_director() {
        out.push("node.priority (between 0 and a director priority)".to_string());
    }
    // Active-active directors announce their VIPs as routes (node::announce),
    // set up at start.
    if old.cluster.mode == super::ClusterMode::ActiveActive
        && new.cluster.mode == super::ClusterMode::ActiveActive
        && old.vip_addrs() != new.vip_addrs()
    {
        out.push("virtual_ips (active-active: the announced routes)".to_string());
    }
    // VRRPv2 simple-text authentication is not serialised: compare it here.
    if old.vrrp.auth_pass != new.vrrp.auth_pass {
        out.push("vrrp.auth_pass".to_string());
    }
    let (Ok(a), Ok(b)) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        out.push("(the configuration could not be compared)".to_string());
        return out;
    };
    collect("", &a, &b, &mut out, &hot);
    out
}

/// Every changed key of `new` against `old` (hot or not), sorted.
pub fn changed(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if let (Ok(a), Ok(b)) = (serde_json::to_value(old), serde_json::to_value(new)) {
        collect("", &a, &b, &mut out, &|_| false);
    }
    if old.vrrp.auth_pass != new.vrrp.auth_pass {
        out.push("vrrp.auth_pass".to_string());
    }
    if old.heartbeat.key != new.heartbeat.key {
        out.push("heartbeat.key (file contents)".to_string());
    }
    if old.heartbeat.key_next != new.heartbeat.key_next {
        out.push("heartbeat.key_next (file contents)".to_string());
    }
    out
}

fn hot(path: &str) -> bool {
    HOT.iter().any(|h| {
        path == *h || path.starts_with(&format!("{h}.")) || path.starts_with(&format!("{h}["))
    })
}

/// The paths where `a` and `b` differ, not descending into `skip`ped ones.
fn collect(path: &str, a: &Value, b: &Value, out: &mut Vec<String>, skip: &dyn Fn(&str) -> bool) {
    if skip(path) || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                collect(&p, va, y.get(k).unwrap_or(&Value::Null), out, skip);
            }
            for (k, vb) in y {
                if !x.contains_key(k) {
                    let p = format!("{path}.{k}");
                    collect(&p, &Value::Null, vb, out, skip);
                }
            }
        }
        _ => out.push(path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BASE: &str = r#"
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
interface = "eth0"
[[port_redirect]]
protocol = "http"
original_ports = "9090"
proxy_port = 9090
[heartbeat]
insecure = true
[dataplane]
interface = "eth0"
"#;

    fn cfg(text: &str) -> Config {
        crate::config::parse("c.toml", text, Path::new(".")).unwrap()
    }

    #[test]
    fn hot_changes_need_no_restart() {
        let old = cfg(BASE);
        let new = cfg(&BASE
            .replace("priority = 99", "priority = 98")
            .replace("[heartbeat]\n", "[heartbeat]\ninterval = \"500ms\"\nmisses = 4\n")
            .replace(
                "[heartbeat]",
                "[[port_redirect]]\nprotocol = \"http\"\noriginal_ports = \"80\"\nproxy_port = 9090\n[heartbeat]",
            )
            .replace("vrid = 51\n", "vrid = 51\npreempt_delay = \"2s\"\ntrack_proxy_weight = 20\n"));
        assert_ne!(old, new);
        assert_eq!(restart_needed(&old, &new), Vec::<String>::new());
    }

    #[test]
    fn restart_only_settings_are_named() {
        let old = cfg(BASE);
        let new = cfg(&BASE
            .replace("vrid = 51", "vrid = 52")
            .replace("interface = \"eth0\"\n\"\n", "")
            .replace(
                "[dataplane]\ninterface = \"eth0\"",
                "[dataplane]\ninterface = \"eth0\"\nqueues = 2",
            )
            .replace("name = \"director-a\"", "name = \"director-x\""));
        assert_eq!(
            restart_needed(&old, &new),
            // The control socket's default path follows the name.
            [
                "dataplane.queues",
                "node.control_socket",
                "node.name",
                "vrrp.vrid"
            ]
        );
        let scan = cfg(&BASE.replace("priority = 99", "priority = 0"));
        assert_eq!(
            restart_needed(&old, &scan),
            ["node.priority (between 0 and a director priority)"]
        );
    }

    #[test]
    fn notify_is_hot_the_metrics_address_is_not() {
        let old = cfg(BASE);
        let new = cfg(&format!(
            "{BASE}[notify]\nmaster = \"/bin/true\"\ntimeout = \"3s\"\n[metrics]\nlisten = \"127.0.0.1:9800\"\n"
        ));
        assert_eq!(restart_needed(&old, &new), ["metrics.listen"]);
    }
}
