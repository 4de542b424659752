//! `[heartbeat]`: node discovery and health. The interval and miss limits
//! are the heartbeat machine's own ([`crate::heartbeat`]).
//!
//! Heartbeats are authenticated by default: a file without
//! `heartbeat.key_file` is refused unless it says `heartbeat.insecure =
//! true`. A key file must be a regular file that only its owner can read or
//! write (no group or other permission bits), owned by root, or by the
//! user running proxyha when that is not root (a non-root `config check`
//! of the operator's own copy). See [`check_key_file`].

use std::net::Ipv4Addr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::Validator;
use crate::config::raw::RawHeartbeat;
use crate::config::values::fmt_duration;
use crate::config::{Error, Heartbeat, StaticNode};
use crate::heartbeat::{
    DEFAULT_INTERVAL, DEFAULT_MAX_CAPACITY, DEFAULT_MISSES, MAX_INTERVAL, MAX_MISSES, MAX_NODES,
    MIN_INTERVAL, is_unicast_mac,
};
use crate::wire::ethernet;

/// The shortest HMAC key the file may name.
const MIN_KEY_LEN: usize = 16;
/// The largest `heartbeat.max_capacity` (the largest `node.capacity`).
const MAX_MAX_CAPACITY: i64 = 1_000_000;

/// What to tell a user whose file has no key.
pub(crate) const MISSING_KEY_HELP: &str = "missing (required): heartbeats are authenticated by default; \
create a key with `proxyha key new /etc/proxyha/heartbeat.key`, copy it to every node of the group \
(mode 0600, owned by root) and set heartbeat.key_file to it, or set heartbeat.insecure = true to \
accept unauthenticated heartbeats (anyone on the segment can then add or steal nodes)";

/// The effective uid of this process: `/proc/self` belongs to it (this
/// avoids an `unsafe` `geteuid` call).
fn effective_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Why a key file may not be used, or `None` when it may: it must be a
/// regular file, with no group or other permission bits, owned by root
/// or by `euid` (the user running proxyha; when that is root, only root).
pub(crate) fn check_key_file(
    meta: &std::fs::Metadata,
    euid: Option<u32>,
    shown: &str,
) -> Option<String> {
    if !meta.is_file() {
        return Some("must be a regular file".into());
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Some(format!(
            "mode {mode:04o} lets group or others read or change the key: run `chmod 600 {shown}`"
        ));
    }
    let uid = meta.uid();
    if uid != 0 && Some(uid) != euid {
        return Some(match euid {
            Some(0) | None => format!(
                "owned by uid {uid}, not root: run `chown root: {shown}` (whoever owns the key \
                 can change it)"
            ),
            Some(me) => format!(
                "owned by uid {uid}: must be owned by root or by the user running proxyha (uid {me})"
            ),
        });
    }
    None
}

impl Validator<'_> {
    /// The heartbeat settings; the key files resolve against `base`.
    pub(super) fn heartbeat(&self, rh: RawHeartbeat, base: &Path) -> Result<Heartbeat, Error> {
        let interval = self.duration_where(
            "heartbeat.interval",
            rh.interval,
            DEFAULT_INTERVAL,
            |d| (MIN_INTERVAL..=MAX_INTERVAL).contains(&d),
            &format!(
                "must be {}..{}",
                fmt_duration(MIN_INTERVAL),
                fmt_duration(MAX_INTERVAL)
            ),
        )?;
        let misses: u32 = self.int(
            "heartbeat.misses",
            rh.misses,
            Some(DEFAULT_MISSES),
            1,
            i64::from(MAX_MISSES),
        )?;
        let insecure = rh.insecure.unwrap_or(false);
        let (key_file, key) = match (rh.key_file, insecure) {
            (None, false) => {
                return Err(Error {
                    file: self.file.to_string(),
                    message: format!("heartbeat.key_file: {MISSING_KEY_HELP}"),
                });
            }
            (None, true) => (None, None),
            (Some(f), true) => {
                return self.fail(
                    "heartbeat.insecure",
                    "true",
                    &format!("contradicts heartbeat.key_file = {f:?}: remove one of them"),
                );
            }
            (Some(f), false) => {
                let (p, k) = self.key_file("heartbeat.key_file", &f, base)?;
                (Some(p), Some(k))
            }
        };
        let (key_file_next, key_next) = match rh.key_file_next {
            None => (None, None),
            Some(f) if key.is_none() => {
                return self.fail(
                    "heartbeat.key_file_next",
                    format!("{f:?}"),
                    "needs heartbeat.key_file (the key heartbeats are sent with)",
                );
            }
            Some(f) => {
                let (p, k) = self.key_file("heartbeat.key_file_next", &f, base)?;
                (Some(p), Some(k))
            }
        };
        let max_capacity: u32 = self.int(
            "heartbeat.max_capacity",
            rh.max_capacity,
            Some(DEFAULT_MAX_CAPACITY),
            1,
            MAX_MAX_CAPACITY,
        )?;
        let accept_unlisted = rh.accept_unlisted.unwrap_or(true);
        if rh.static_nodes.len() > MAX_NODES {
            return self.fail(
                "heartbeat.static_nodes",
                format!("[{} entries]", rh.static_nodes.len()),
                &format!("at most {MAX_NODES}"),
            );
        }
        let mut static_nodes: Vec<StaticNode> = Vec::new();
        for (i, v) in rh.static_nodes.iter().enumerate() {
            let s = self.static_node(&format!("heartbeat.static_nodes[{i}]"), v)?;
            if static_nodes.iter().any(|o| o.ip == s.ip) {
                return self.fail(
                    &format!("heartbeat.static_nodes[{i}].ip"),
                    format!("{:?}", s.ip.to_string()),
                    "listed twice",
                );
            }
            static_nodes.push(s);
        }
        if !accept_unlisted && static_nodes.is_empty() {
            return self.fail(
                "heartbeat.accept_unlisted",
                "false",
                "needs heartbeat.static_nodes (otherwise no other node is ever accepted)",
            );
        }
        Ok(Heartbeat {
            interval,
            misses,
            key_file,
            key,
            key_file_next,
            key_next,
            insecure,
            max_capacity,
            accept_unlisted,
            hold_stale: rh.hold_stale.unwrap_or(true),
            static_nodes,
        })
    }

    /// Reads a key file after checking its type, mode and owner.
    fn key_file(&self, key: &str, f: &str, base: &Path) -> Result<(PathBuf, Vec<u8>), Error> {
        let p = base.join(f);
        let shown = format!("{f:?}");
        let meta = match std::fs::metadata(&p) {
            Ok(m) => m,
            Err(e) => return self.fail(key, shown, &format!("cannot read: {e}")),
        };
        if let Some(why) = check_key_file(&meta, effective_uid(), &p.display().to_string()) {
            return self.fail(key, shown, &why);
        }
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) => return self.fail(key, shown, &format!("cannot read: {e}")),
        };
        // Surrounding whitespace is dropped, so that a hand-written key with
        // a newline works (`proxyha key new` never writes such bytes).
        let trimmed: Vec<u8> = bytes.trim_ascii().to_vec();
        if trimmed.len() < MIN_KEY_LEN {
            return self.fail(
                key,
                shown,
                &format!(
                    "key must be at least {MIN_KEY_LEN} bytes (`proxyha key new FILE` writes 32 random bytes)"
                ),
            );
        }
        Ok((p, trimmed))
    }

    /// One `{ ip = "...", mac = "...", name = "..." }` entry.
    fn static_node(&self, key: &str, v: &toml::Value) -> Result<StaticNode, Error> {
        const SHAPE: &str = "must be a table like { ip = \"198.18.0.3\", mac = \"02:00:00:00:00:03\", name = \"scanner-c\" }";
        let Some(t) = v.as_table() else {
            return self.fail(key, v.to_string(), SHAPE);
        };
        if let Some(k) = t
            .keys()
            .find(|k| !["ip", "mac", "name"].contains(&k.as_str()))
        {
            return Err(Error {
                file: self.file.to_string(),
                message: format!("{key}.{k}: unknown key"),
            });
        }
        let text = |field: &str| -> Result<Option<String>, Error> {
            match t.get(field) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => self.fail(&format!("{key}.{field}"), other, "must be a string"),
            }
        };
        let ip: Ipv4Addr = match text("ip")? {
            Some(s) => self.ipv4(&format!("{key}.ip"), &s)?,
            None => return self.missing(&format!("{key}.ip")),
        };
        let mac = match text("mac")? {
            Some(s) => match s.parse::<ethernet::Address>() {
                Ok(a) if is_unicast_mac(&a.0) => a.0,
                Ok(_) => {
                    return self.fail(
                        &format!("{key}.mac"),
                        format!("{s:?}"),
                        "must be a unicast, non-zero MAC",
                    );
                }
                Err(_) => {
                    return self.fail(
                        &format!("{key}.mac"),
                        format!("{s:?}"),
                        "must be a MAC like \"02:00:00:00:00:03\"",
                    );
                }
            },
            None => return self.missing(&format!("{key}.mac")),
        };
        let name = self.name(&format!("{key}.name"), text("name")?, Some(&ip.to_string()))?;
        Ok(StaticNode { name, ip, mac })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The owner rule for both cases: as root only root-owned keys; as
    /// another user, root's or that user's own (files are chowned, so
    /// this needs root to set up).
    #[test]
    fn key_owner_rule_as_root_and_as_another_user() {
        if !crate::node::prereq::require_root("key_owner_rule_as_root_and_as_another_user") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, b"0123456789abcdef").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let meta = || std::fs::metadata(&p).unwrap();
        // Root-owned: fine for root and for any user.
        assert_eq!(check_key_file(&meta(), Some(0), "k"), None);
        assert_eq!(check_key_file(&meta(), Some(1000), "k"), None);
        // Owned by uid 65534.
        std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
        assert!(
            check_key_file(&meta(), Some(0), "k")
                .unwrap()
                .starts_with("owned by uid 65534, not root")
        );
        assert_eq!(
            check_key_file(&meta(), Some(1000), "k").unwrap(),
            "owned by uid 65534: must be owned by root or by the user running proxyha (uid 1000)"
        );
        assert_eq!(check_key_file(&meta(), Some(65534), "k"), None);
        // Mode comes first, whoever owns it.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(
            check_key_file(&meta(), Some(65534), "k")
                .unwrap()
                .starts_with("mode 0640")
        );
    }
}
