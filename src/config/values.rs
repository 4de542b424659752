//! The value syntaxes of the file: durations, port lists and CIDRs, parsed
//! and formatted back.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::{Cidr, Cidr6};

/// Parses `198.18.0.250/24`, with messages that name the rule.
pub(super) fn parse_cidr(s: &str) -> Result<Cidr, String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| "must be IPv4 CIDR like 198.18.0.250/24".to_string())?;
    let addr: Ipv4Addr = a
        .parse()
        .map_err(|_| format!("`{a}` is not an IPv4 address"))?;
    let prefix: u8 = p
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("prefix `{p}` must be 0..32"))?;
    Cidr::new(addr, prefix).map_err(|e| e.to_string())
}

/// Parses `2001:2::250/64`, with messages that name the rule.
pub(super) fn parse_cidr6(s: &str) -> Result<Cidr6, String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| "must be IPv6 CIDR like 2001:2::250/64".to_string())?;
    let addr: Ipv6Addr = a
        .parse()
        .map_err(|_| format!("`{a}` is not an IPv6 address"))?;
    let prefix: u8 = p
        .parse()
        .ok()
        .filter(|p| *p <= 128)
        .ok_or_else(|| format!("prefix `{p}` must be 0..128"))?;
    Cidr6::new(addr, prefix).map_err(|e| e.to_string())
}

/// Parses `"1s"`, `"100ms"`, `"10cs"`, `"2m"` into a duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    if num.is_empty() || num.len() > 9 {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "cs" => Some(Duration::from_millis(n * 10)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        _ => None,
    }
}

/// Parses a port list like `"80,8080-8090"` into sorted, merged, inclusive ranges.
pub fn parse_ports(s: &str) -> Result<Vec<(u16, u16)>, String> {
    let port = |p: &str| -> Result<u16, String> {
        p.trim()
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("`{}` is not a port 1..65535", p.trim()))
    };
    let mut ranges = Vec::new();
    for part in s.split(',') {
        if part.trim().is_empty() {
            return Err("empty entry in port list".into());
        }
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(part)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(format!("range {lo}-{hi} is backwards"));
        }
        ranges.push((lo, hi));
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u16, u16)> = Vec::new();
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if u32::from(lo) <= u32::from(last.1) + 1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    Ok(merged)
}

/// Formats ranges back as `"80,8080-8090"`.
pub fn format_ports(ranges: &[(u16, u16)]) -> String {
    ranges
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Formats a duration as the file writes it: whole seconds as `"1s"`, else `"100ms"`.
pub(super) fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The ranges of a CPU list as the kernel writes it (`0-3,6,8-9`, spaces
/// allowed): `None` when a part is malformed or a range runs backwards. The
/// one parser for this format (`dataplane.cpus`, `/sys/.../cpu/possible`).
pub fn cpu_ranges(s: &str) -> Option<Vec<(usize, usize)>> {
    s.split(',')
        .map(|part| {
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
                None => {
                    let n = part.trim().parse().ok()?;
                    (n, n)
                }
            };
            (lo <= hi).then_some((lo, hi))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("10cs"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("1h"), None);
        assert_eq!(parse_duration("99999999999s"), None);
    }

    #[test]
    fn port_lists() {
        assert_eq!(parse_ports("9090"), Ok(vec![(9090, 9090)]));
        assert_eq!(
            parse_ports("80,8080-8090"),
            Ok(vec![(80, 80), (8080, 8090)])
        );
        assert_eq!(parse_ports("81,80,82-83"), Ok(vec![(80, 83)]));
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("90-80").is_err());
        assert!(parse_ports("80,,81").is_err());
        assert!(parse_ports("65536").is_err());
        assert_eq!(format_ports(&[(80, 80), (8080, 8090)]), "80,8080-8090");
    }

    proptest! {
        #[test]
        fn port_list_round_trip(ranges in proptest::collection::vec((1u16..=65535, 0u16..50), 1..8)) {
            let text = ranges.iter().map(|&(a, len)| {
                let b = a.saturating_add(len);
                if a == b { a.to_string() } else { format!("{a}-{b}") }
            }).collect::<Vec<_>>().join(",");
            let parsed = parse_ports(&text).unwrap();
            prop_assert_eq!(parse_ports(&format_ports(&parsed)).unwrap(), parsed.clone());
            for &(a, len) in &ranges {
                let b = a.saturating_add(len);
                prop_assert!(parsed.iter().any(|&(lo, hi)| lo <= a && b <= hi));
            }
        }

        #[test]
        fn port_parser_never_panics(s in ".{0,40}") {
            let _ = parse_ports(&s);
        }

        #[test]
        fn duration_parser_never_panics(s in ".{0,20}") {
            let _ = parse_duration(&s);
        }
    }
}
