//! `proxyha events`: the daemon's recent events, or (`--follow`) those and
//! every later one as they happen (docs/notifications.md).

use std::io::Write;

use crate::control::Event;
use crate::control::event::Kind;
use crate::log::{escape, format_unix_ms};
use crate::node::admin::{self, Request};

/// `proxyha events`.
pub fn command(target: &super::Target, follow: bool, json: bool) -> i32 {
    let path = match target.path() {
        Ok(p) => p,
        Err(e) => {
            crate::eprintln_safe!("proxyha: {e}");
            return 1;
        }
    };
    let mut status = 0;
    let mut out = std::io::stdout().lock();
    let result = admin::follow(&path, Request::Events { follow }, |line| {
        if line.is_empty() {
            return true;
        }
        let e: Event = match serde_json::from_str(line) {
            Ok(e) => e,
            Err(_) => {
                let msg = serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| format!("unexpected answer: {}", escape(line)));
                crate::eprintln_safe!("proxyha: {msg}");
                status = 1;
                return false;
            }
        };
        let text = if json {
            serde_json::to_string(&e).unwrap_or_default()
        } else {
            render(&e)
        };
        // A closed stdout (`| head`) ends the command quietly.
        writeln!(out, "{text}").and_then(|()| out.flush()).is_ok()
    });
    match result {
        Ok(()) if follow && status == 0 => {
            crate::eprintln_safe!("proxyha: the daemon closed the event stream");
            1
        }
        Ok(()) => status,
        Err(e) => {
            crate::eprintln_safe!("proxyha: {e}");
            1
        }
    }
}

/// One event as a line of text; names from the wire are escaped.
pub fn render(e: &Event) -> String {
    let head = format!(
        "{} #{} {}: {}",
        format_unix_ms(e.unix_ms),
        e.seq,
        escape(&e.node),
        e.kind.as_str()
    );
    match e.kind {
        Kind::Node => format!(
            "{head} {} ({}) {} -> {}",
            escape(&e.subject),
            e.ip,
            escape(&e.from),
            escape(&e.to)
        ),
        _ => format!(
            "{head} {} -> {} ({}, priority {})",
            escape(&e.from),
            escape(&e.to),
            escape(&e.reason),
            e.priority
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_change_and_escape_wire_names() {
        let mut e = Event {
            seq: 7,
            unix_ms: 1_764_400_000_123,
            node: "director-b".into(),
            kind: Kind::Master,
            subject: "director-b".into(),
            ip: std::net::Ipv4Addr::new(198, 18, 0, 2),
            from: "BACKUP".into(),
            to: "MASTER".into(),
            reason: "MasterDown".into(),
            priority: 89,
        };
        assert_eq!(
            render(&e),
            "2025-11-29T07:06:40.123Z #7 director-b: master BACKUP -> MASTER (MasterDown, priority 89)"
        );
        e.kind = Kind::Node;
        e.subject = "evil\u{1b}[2J".into();
        e.from = "OK".into();
        e.to = "FAILED".into();
        let l = render(&e);
        assert!(
            l.ends_with("node evil\\x1b[2J (198.18.0.2) OK -> FAILED"),
            "{l}"
        );
    }
}
