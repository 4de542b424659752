//! Facts about a network interface, read from sysfs.

use std::path::PathBuf;

use thiserror::Error;

/// Why an interface could not be used.
#[derive(Debug, Error)]
pub enum Error {
    #[error("no such interface `{0}` (see `ip link`)")]
    NoSuchInterface(String),
    #[error("interface `{name}`: cannot read {what}: {detail}")]
    Unreadable {
        name: String,
        what: &'static str,
        detail: String,
    },
}

/// An interface's index, MAC and queue count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub mac: [u8; 6],
    /// Number of RX queues the kernel exposes.
    pub rx_queues: u32,
}

fn sys(name: &str, file: &str) -> PathBuf {
    PathBuf::from(format!("/sys/class/net/{name}/{file}"))
}

/// Parses `aa:bb:cc:dd:ee:ff` (as sysfs prints it, with a newline).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    s.trim()
        .parse::<crate::wire::ethernet::Address>()
        .ok()
        .map(|a| a.0)
}

impl Interface {
    /// Looks `name` up in /sys/class/net.
    pub fn lookup(name: &str) -> Result<Interface, Error> {
        if name.is_empty() || name.contains('/') || !sys(name, "").exists() {
            return Err(Error::NoSuchInterface(name.to_string()));
        }
        let read = |file: &'static str| {
            std::fs::read_to_string(sys(name, file)).map_err(|e| Error::Unreadable {
                name: name.to_string(),
                what: file,
                detail: e.to_string(),
            })
        };
        let index = read("ifindex")?
            .trim()
            .parse()
            .map_err(|_| Error::Unreadable {
                name: name.to_string(),
                what: "ifindex",
                detail: "not a number".into(),
            })?;
        let mac = parse_mac(&read("address")?).ok_or_else(|| Error::Unreadable {
            name: name.to_string(),
            what: "address",
            detail: "not a MAC address".into(),
        })?;
        let rx_queues = std::fs::read_dir(sys(name, "queues"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                    .count() as u32
            })
            .unwrap_or(1)
            .max(1);
        Ok(Interface {
            name: name.to_string(),
            index,
            mac,
            rx_queues,
        })
    }

    /// Whether the interface is up with a carrier (operstate `up`, or
    /// `unknown` for devices that do not report it, such as lo).
    pub fn is_up(&self) -> bool {
        link_up(&self.name)
    }
}

/// Whether interface `name` exists and is up (operstate `up`, or `unknown`
/// for links without carrier reporting such as `lo` and TAP devices).
pub fn link_up(name: &str) -> bool {
    std::fs::read_to_string(sys(name, "operstate"))
        .map(|s| matches!(s.trim(), "up" | "unknown"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("00:00:5e:00:01:33\n"),
            Some([0, 0, 0x5e, 0, 1, 0x33])
        );
        assert_eq!(parse_mac("00:00:5e:00:01"), None);
        assert_eq!(parse_mac("00:00:5e:00:01:33:44"), None);
        assert_eq!(parse_mac("zz:00:5e:00:01:33"), None);
    }

    #[test]
    fn loopback_exists_and_missing_is_clear() {
        let lo = Interface::lookup("lo").unwrap();
        assert_eq!(lo.mac, [0; 6]);
        assert!(lo.index >= 1);
        let e = Interface::lookup("nonexistent0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "no such interface `nonexistent0` (see `ip link`)"
        );
    }
}
