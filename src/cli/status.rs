//! Rendering `proxyha status` in the original's `mfend-lb -s` format.

use std::fmt::Write;

use crate::control::status::{Entry, Status};

/// `proxyha status`.
pub fn command(target: &super::Target, json: bool) -> i32 {
    let path = match target.path() {
        Ok(p) => p,
        Err(e) => {
            crate::eprintln_safe!("proxyha: {e}");
            return 1;
        }
    };
    let answer = match crate::node::admin::ask(&path, crate::node::admin::Request::Status) {
        Ok(a) => a,
        Err(e) => {
            crate::eprintln_safe!("proxyha: {e}");
            return 1;
        }
    };
    let st: Status = match serde_json::from_str(&answer) {
        Ok(s) => s,
        Err(e) => {
            crate::eprintln_safe!("proxyha: unexpected answer from {}: {e}", path.display());
            return 1;
        }
    };
    if json {
        match serde_json::to_string_pretty(&st) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                crate::eprintln_safe!("proxyha: {e}");
                return 1;
            }
        }
    } else {
        print!("{}", render(&st));
    }
    0
}

/// The line `proxyha status` ends with when heartbeats are not authenticated
/// (the config says `heartbeat.insecure = true`).
pub const UNAUTHENTICATED_WARNING: &str = "warning: heartbeats are unauthenticated \
(heartbeat.insecure = true): anyone on the segment can add or impersonate nodes; \
create a key with `proxyha key new FILE` and set heartbeat.key_file";

/// Renders one node entry exactly as the original lays it out.
pub fn render_entry(e: &Entry, out: &mut String) {
    let mac: String = e.mac.iter().map(|b| format!("{b:02x}")).collect();
    // Names come from the wire: escape them (no terminal control, no fake lines).
    let _ = writeln!(out, "device: {}", crate::log::escape(&e.device));
    if e.statechange == 0 {
        let _ = writeln!(out, "statechange:");
    } else {
        let _ = writeln!(
            out,
            "statechange: {} ({})",
            e.statechange,
            ctime(e.statechange)
        );
    }
    let _ = writeln!(out, "  ip: {}", e.ip);
    let _ = writeln!(out, "  ip6: {}", e.ip6);
    let _ = writeln!(out, "protocols: {:08x}", e.protocols);
    let _ = writeln!(out, "  mac: {mac}");
    let _ = writeln!(out, "  state: {}", e.state);
    let s = e.stats;
    let _ = writeln!(out, "  stats: {} {} {} {} {}", s[0], s[1], s[2], s[3], s[4]);
    let _ = writeln!(out, "statusvalid: {}", e.statusvalid);
    let _ = writeln!(out, "  type: {}", e.kind);
}

/// Renders the whole status: every entry, then this node's VRRP summary.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    for e in &s.entries {
        render_entry(e, &mut out);
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "node: {}", s.node);
    let _ = writeln!(out, "vrrp state: {}", s.vrrp_state);
    let _ = writeln!(out, "vrid: {}", s.vrid);
    let _ = writeln!(out, "priority: {}", s.priority);
    let _ = writeln!(
        out,
        "master ip: {}",
        s.master_ip.map_or("unknown".to_string(), |a| a.to_string())
    );
    let _ = writeln!(out, "lbid: {}", s.lbid);
    let _ = writeln!(out, "mode: {}", s.mode);
    let _ = writeln!(
        out,
        "forwarding: {}",
        if s.forwarding { "yes" } else { "no" }
    );
    if let Some(a) = &s.announcement {
        let _ = write!(
            out,
            "announcement: {} (VIP/32 in table {}, dev {}",
            a.state, a.table, a.device
        );
        if a.since_ms > 0 {
            let _ = write!(out, ", since {}", ctime(a.since_ms / 1000));
        }
        let _ = writeln!(out, ")");
        if let Some(e) = &a.error {
            let _ = writeln!(out, "announcement error: {}", crate::log::escape(e));
        }
    }
    if let Some(v) = s.vrrp.as_object() {
        let ms = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
        let mut timers = Vec::new();
        for (label, key) in [
            ("advert interval", "advertisement_interval_ms"),
            ("master advert interval", "master_adver_interval_ms"),
            ("skew", "skew_time_ms"),
            ("master down interval", "master_down_interval_ms"),
            ("master down timer", "master_down_timer_ms"),
            ("advert timer", "adver_timer_ms"),
        ] {
            if let Some(n) = ms(key) {
                timers.push(format!("{label} {n} ms"));
            }
        }
        if !timers.is_empty() {
            let _ = writeln!(out, "vrrp timers: {}", timers.join(", "));
        }
        if let Some(c) = v.get("counters").and_then(serde_json::Value::as_object) {
            let nz: Vec<String> = c
                .iter()
                .filter_map(|(k, n)| n.as_u64().filter(|n| *n > 0).map(|n| format!("{k} {n}")))
                .collect();
            if !nz.is_empty() {
                let _ = writeln!(out, "vrrp counters: {}", nz.join(", "));
            }
        }
    }
    if !s.authenticated {
        let _ = writeln!(out, "{UNAUTHENTICATED_WARNING}");
    }
    out
}

/// Formats Unix seconds as UTC in the style of ctime(3) without padding the
/// day: `Tue Mar 1 05:45:38 2011`.
pub fn ctime(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{} {} {} {:02}:{:02}:{:02} {}",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        y
    )
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn ctime_matches_the_original_example() {
        // The original's passive-director example.
        assert_eq!(ctime(1_298_958_338), "Tue Mar 1 05:45:38 2011");
        assert_eq!(ctime(0), "Thu Jan 1 00:00:00 1970");
        assert_eq!(ctime(951_782_400), "Tue Feb 29 00:00:00 2000");
        assert_eq!(ctime(1_795_651_200), "Thu Nov 26 00:00:00 2026");
    }

    #[test]
    fn summary_shows_vrrp_timers_and_counters() {
        let st = Status {
            node: "director-a".into(),
            lbid: 10,
            vrid: 51,
            priority: 99,
            vrrp_state: "Master".into(),
            master_ip: Some(Ipv4Addr::new(198, 18, 0, 1)),
            authenticated: true,
            entries: Vec::new(),
            vrrp: serde_json::json!({
                "advertisement_interval_ms": 1000, "skew_time_ms": 613,
                "master_down_interval_ms": 3613, "adver_timer_ms": 420,
                "counters": {"tx_adverts": 12, "rx_adverts": 0, "drop_bad_ttl": 1}
            }),
            heartbeat: serde_json::Value::Null,
            mode: "active-passive".into(),
            forwarding: true,
            announcement: None,
            maglev: Some(crate::control::status::Maglev {
                fingerprint: "00000000000000ff".into(),
                nodes: 3,
                published_ms: 1,
            }),
        };
        let out = render(&st);
        assert!(
            out.contains(
                "vrrp state: Master\nvrid: 51\npriority: 99\nmaster ip: 198.18.0.1\nlbid: 10\n"
            ),
            "{out}"
        );
        assert!(out.contains("vrrp timers: advert interval 1000 ms, skew 613 ms, master down interval 3613 ms, advert timer 420 ms\n"), "{out}");
        assert!(
            out.contains("vrrp counters: drop_bad_ttl 1, tx_adverts 12\n"),
            "{out}"
        );
        assert!(!out.contains("warning"), "{out}");
        assert!(
            out.contains("mode: active-passive\nforwarding: yes\n"),
            "{out}"
        );
        assert!(!out.contains("announcement"), "{out}");
    }

    #[test]
    fn active_active_shows_the_announcement() {
        let json = r#"{"node":"director-b","lbid":10,"vrid":51,"priority":89,
            "vrrp_state":"Backup","master_ip":null,"authenticated":true,"entries":[],
            "vrrp":null,"heartbeat":null,"mode":"active-active","forwarding":true,
            "announcement":{"state":"announced","table":100,"device":"proxyha0",
            "since_ms":1298958338000,"error":null}}"#;
        let st: Status = serde_json::from_str(json).unwrap();
        let out = render(&st);
        assert!(
            out.contains(
                "mode: active-active\nforwarding: yes\nannouncement: announced (VIP/32 in table 100, dev proxyha0, since Tue Mar 1 05:45:38 2011)\n"
            ),
            "{out}"
        );
        // An older daemon's answer (no mode, no announcement) still parses.
        let old = r#"{"node":"n","lbid":1,"vrid":1,"priority":0,"vrrp_state":"scanning",
            "master_ip":null,"authenticated":true,"entries":[],"vrrp":null,"heartbeat":null}"#;
        let st: Status = serde_json::from_str(old).unwrap();
        assert_eq!((st.mode.as_str(), st.forwarding), ("active-passive", false));
    }

    /// The original document's first entry (its own addresses).
    fn sample_entry() -> Entry {
        Entry {
            device: "mwgappl01".into(),
            statechange: 0,
            ip: Ipv4Addr::new(10, 1, 1, 1),
            ip6: Ipv6Addr::UNSPECIFIED,
            protocols: 1,
            mac: [0xb8, 0xac, 0x6f, 0x12, 0x98, 0xff],
            state: "NETWORK".into(),
            stats: [0; 5],
            statusvalid: 1,
            kind: "director".into(),
        }
    }

    #[test]
    fn entry_layout_matches_mfend_lb() {
        let e = sample_entry();
        let mut out = String::new();
        render_entry(&e, &mut out);
        assert_eq!(
            out,
            "device: mwgappl01\nstatechange:\n  ip: 10.1.1.1\n  ip6: ::\nprotocols: 00000001\n  mac: b8ac6f1298ff\n  state: NETWORK\n  stats: 0 0 0 0 0\nstatusvalid: 1\n  type: director\n"
        );
        let e = Entry {
            statechange: 1_298_958_338,
            ..e
        };
        let mut out = String::new();
        render_entry(&e, &mut out);
        assert!(out.contains("statechange: 1298958338 (Tue Mar 1 05:45:38 2011)\n"));
    }

    #[test]
    fn wire_names_are_escaped_and_insecure_warns() {
        let e = Entry {
            device: "evil\u{1b}[2J\nstate: OK".into(),
            ip: Ipv4Addr::new(198, 18, 0, 66),
            mac: [2, 0, 0, 0, 0, 0x66],
            state: "FAILED".into(),
            kind: "scanning".into(),
            ..sample_entry()
        };
        let mut out = String::new();
        render_entry(&e, &mut out);
        assert!(
            out.starts_with("device: evil\\x1b[2J\\x0astate:\\x20OK\n"),
            "{out}"
        );
        assert!(!out.contains('\u{1b}'));
        let st = Status {
            node: "director-a".into(),
            lbid: 10,
            vrid: 51,
            priority: 99,
            vrrp_state: "Master".into(),
            master_ip: None,
            authenticated: false,
            entries: vec![e],
            vrrp: serde_json::Value::Null,
            heartbeat: serde_json::Value::Null,
            mode: "active-passive".into(),
            forwarding: false,
            announcement: None,
            maglev: None,
        };
        assert!(render(&st).ends_with(&format!("{UNAUTHENTICATED_WARNING}\n")));
    }
}
