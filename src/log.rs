//! A minimal stderr logger: `2026-11-26T07:05:00.123Z director-a vrrp: message`.
//!
//! The daemon logs state changes with their reason, start-up errors, and
//! each drop reason once per peer; never per packet.

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
