//! A minimal stderr logger: `2026-11-26T07:05:00.123Z director-a vrrp: message`.
//!
//! The daemon logs state changes with their reason, start-up errors, and
//! drops at most once per [`RATE_PERIOD`] per (reason, source)
//! ([`RateLimit`]); never per packet. Text that came from the wire (node
//! names in heartbeats) goes through [`escape`] before it is printed.
//!
//! Writing never panics: a closed or broken stderr (EPIPE, a closed
//! descriptor) loses the line, nothing else (`eprintln!` would panic).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    format_unix_ms(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds.
pub fn format_unix_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, day) = crate::cli::status::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Writes one line to stderr. An error writing it (stderr closed, a
/// broken pipe) is ignored: logging never stops the daemon.
pub fn line(topic: &str, msg: std::fmt::Arguments<'_>) {
    let node = NODE.get().map_or("proxyha", String::as_str);
    let _ = writeln!(std::io::stderr(), "{} {node} {topic}: {msg}", timestamp());
}

/// `text` made safe to print: ASCII graphic characters stay as they are;
/// a backslash becomes `\\`, every other character (spaces, control
/// characters such as ESC, anything non-ASCII) becomes `\xNN` or `\u{N}`. For
/// names that came from the wire, so that a forged name cannot move the
/// cursor, recolour a terminal or fake a log line.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() => out.push(c),
            c if c.is_ascii() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out
}

/// How often [`RateLimit`] lets one key log.
pub const RATE_PERIOD: Duration = Duration::from_secs(60);

/// "Log this at most once per period per key" (a key is, for example,
/// `(reason, source address)`), with a count of what was held back.
///
/// Memory is bounded: at most `capacity` keys are remembered. Keys whose
/// period has passed are pruned when the map is full (at most once per
/// period, so a flood does not make every call scan the map); a new key
/// that still finds the map full is not logged and is counted in
/// [`suppressed`](Self::suppressed). Callers count every drop elsewhere, so
/// nothing but log lines is lost.
#[derive(Debug, Clone)]
pub struct RateLimit<K> {
    keys: HashMap<K, Held>,
    capacity: usize,
    period: Duration,
    last_prune: Option<Instant>,
    suppressed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    logged_at: Instant,
    held_back: u64,
}

impl<K: Eq + Hash> RateLimit<K> {
    /// A limiter that remembers at most `capacity` keys and lets each log
    /// once per `period`.
    pub fn new(capacity: usize, period: Duration) -> Self {
        RateLimit {
            keys: HashMap::new(),
            capacity,
            period,
            last_prune: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when `key` may log now: `n` events of that key were held
    /// back since its last line. `None`: stay quiet (it is counted).
    pub fn check(&mut self, key: K, now: Instant) -> Option<u64> {
        if let Some(h) = self.keys.get_mut(&key) {
            if now.saturating_duration_since(h.logged_at) >= self.period {
                let n = h.held_back;
                *h = Held {
                    logged_at: now,
                    held_back: 0,
                };
                return Some(n);
            }
            h.held_back += 1;
            return None;
        }
        if self.keys.len() >= self.capacity {
            self.prune(now);
        }
        if self.keys.len() >= self.capacity {
            self.suppressed += 1;
            return None;
        }
        self.keys.insert(
            key,
            Held {
                logged_at: now,
                held_back: 0,
            },
        );
        Some(0)
    }

    fn prune(&mut self, now: Instant) {
        if self
            .last_prune
            .is_some_and(|t| now.saturating_duration_since(t) < self.period)
        {
            return;
        }
        self.last_prune = Some(now);
        let period = self.period;
        let mut lost = 0;
        self.keys.retain(|_, h| {
            let keep = now.saturating_duration_since(h.logged_at) < period;
            if !keep {
                lost += h.held_back;
            }
            keep
        });
        self.suppressed += lost;
    }

    /// Events never logged: new keys while the map was full, and keys
    /// pruned with events still held back.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// `log!("vrrp", "became Master: {}", reason)`
#[macro_export]
macro_rules! log {
    ($topic:expr, $($arg:tt)*) => {
        $crate::log::line($topic, format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: a closed or broken stderr loses the line
/// (`eprintln!` itself panics on EPIPE or a closed descriptor).
#[macro_export]
macro_rules! eprintln_safe {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
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

    #[test]
    fn rate_limit_per_key_counts_what_it_held_back() {
        let t0 = Instant::now();
        let p = Duration::from_secs(10);
        let mut l = RateLimit::new(2, p);
        assert_eq!(l.check(("bad hmac", 1), t0), Some(0));
        assert_eq!(l.check(("bad hmac", 1), t0), None);
        assert_eq!(l.check(("bad hmac", 1), t0 + Duration::from_secs(9)), None);
        assert_eq!(l.check(("replay", 1), t0), Some(0));
        // Full: a third key is counted, not logged.
        assert_eq!(l.check(("bad hmac", 2), t0 + Duration::from_secs(1)), None);
        assert_eq!(l.suppressed(), 1);
        // After the period the key logs again and says what it held back.
        assert_eq!(l.check(("bad hmac", 1), t0 + p), Some(2));
        assert_eq!(l.check(("bad hmac", 1), t0 + p), None);
        // Once the others' period passed, a new key finds room (pruned).
        assert_eq!(l.check(("bad hmac", 3), t0 + p + p), Some(0));
        assert!(l.len() <= 2);
    }

    #[test]
    fn escape_keeps_plain_names_and_neutralises_the_rest() {
        assert_eq!(escape("scanner-c.01@x"), "scanner-c.01@x");
        assert_eq!(escape("a b"), "a\\x20b");
        assert_eq!(escape("\u{1b}[31mred"), "\\x1b[31mred");
        assert_eq!(escape("x\ny"), "x\\x0ay");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
        assert_eq!(escape("\u{202e}evil"), "\\u{202e}evil");
    }

    proptest::proptest! {
        #[test]
        fn escaped_text_is_printable_ascii(s in ".{0,40}") {
            let e = escape(&s);
            proptest::prop_assert!(e.bytes().all(|b| b.is_ascii_graphic()));
        }

        #[test]
        fn rate_limit_stays_bounded(keys in proptest::collection::vec((0u16..500, 0u64..100_000), 0..400)) {
            let t0 = Instant::now();
            let mut l = RateLimit::new(16, Duration::from_secs(1));
            let mut sorted = keys.clone();
            sorted.sort_by_key(|k| k.1);
            for (k, ms) in sorted {
                let _ = l.check(k, t0 + Duration::from_millis(ms));
                proptest::prop_assert!(l.len() <= 16);
            }
        }
    }
}
