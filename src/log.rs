//! A minimal stderr logger: `2026-11-26T07:05:00.123Z director-a vrrp: message`.
//!
//! The daemon logs state changes with their reason, start-up errors, and
//! each drop reason once per peer; never per packet.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static NODE: OnceLock<String> = OnceLock::new();

/// Sets the node name shown on every line.
pub fn init(node: &str) {
    let _ = NODE.set(node.to_string());
}

/// The current UTC time as RFC 3339 with milliseconds.
pub fn timestamp() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = crate::cli::status::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Writes one line to stderr.
pub fn line(topic: &str, msg: std::fmt::Arguments<'_>) {
    let node = NODE.get().map_or("proxyha", String::as_str);
    eprintln!("{} {node} {topic}: {msg}", timestamp());
}

/// `log!("vrrp", "became Master: {}", reason)`
#[macro_export]
macro_rules! log {
    ($topic:expr, $($arg:tt)*) => {
        $crate::log::line($topic, format_args!($($arg)*))
    };
}

/// "Log this once per (reason, source)": a bounded set of keys already
/// seen, shared by the VRRP and heartbeat receive paths.
/// Remembers which keys (for example `(reason, source address)`) were
/// already logged, so that a flood of bad packets logs one line per key.
///
/// Memory is bounded: after `capacity` distinct keys, new keys are no
/// longer remembered and [`first`](Self::first) returns `false` for them
/// (they are counted in [`suppressed`](Self::suppressed) instead), so an
/// attacker spraying source addresses cannot grow it or the log.
#[derive(Debug, Clone)]
pub struct Once<K> {
    seen: HashSet<K>,
    capacity: usize,
    suppressed: u64,
}

impl<K: Eq + Hash> Once<K> {
    /// A set that remembers at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Once {
            seen: HashSet::new(),
            capacity,
            suppressed: 0,
        }
    }

    /// `true` the first time `key` is seen (log it), `false` afterwards
    /// and for every new key once the set is full.
    pub fn first(&mut self, key: K) -> bool {
        if self.seen.contains(&key) {
            return false;
        }
        if self.seen.len() >= self.capacity {
            self.suppressed += 1;
            return false;
        }
        self.seen.insert(key);
        true
    }

    /// New keys not logged because the set was full.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no key was remembered yet.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod once_tests {
    use super::*;

    #[test]
    fn first_time_per_key_and_bounded() {
        let mut l = Once::new(2);
        assert!(l.first(("bad hmac", 1)));
        assert!(!l.first(("bad hmac", 1)));
        assert!(l.first(("replay", 1)));
        assert!(!l.first(("bad hmac", 2))); // full
        assert_eq!(l.suppressed(), 1);
        assert_eq!(l.len(), 2);
    }
}
