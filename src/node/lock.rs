//! One daemon per node: before `proxyha run` touches anything (XDP, the VIP
//! on `lo`, nftables, the admin socket), it takes two exclusive locks, one
//! for its node name and one for its interface, both scoped to its network
//! namespace. A second `proxyha run` for the same node or the same
//! interface exits with an error naming the running daemon's PID, and the
//! running daemon is unaffected. The kernel releases the locks when the
//! process ends, however it ends, so a crash leaves nothing to clean up.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Where the lock files live.
pub const DIR: &str = "/run/proxyha/lock";

/// Why the locks could not be taken.
#[derive(Debug, Error)]
pub enum Error {
    /// Another daemon holds the lock.
    #[error("{what} is already run by another proxyha daemon{holder} (lock {path}); stop it first")]
    Held {
        what: String,
        holder: String,
        path: PathBuf,
    },
    /// The lock file could not be created or locked.
    #[error("lock {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// The held locks; dropping them releases them.
#[derive(Debug)]
pub struct NodeLock {
    _files: Vec<File>,
}

/// A file-name-safe rendering of `s`: `[A-Za-z0-9_.-]` kept, anything else
/// as `%XX`.
fn safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The network namespace this process runs in, as the inode of
/// `/proc/self/ns/net` (0 when unknown).
fn netns_id() -> u64 {
    std::fs::metadata("/proc/self/ns/net").map_or(0, |m| m.ino())
}

fn lock_one(dir: &Path, name: String, what: String) -> Result<File, Error> {
    let path = dir.join(name);
    let io_err = |source| Error::Io {
        path: path.clone(),
        source,
    };
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err)?;
    match f.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(Error::Held {
                what,
                holder: if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (PID {pid})")
                },
                path,
            });
        }
        Err(TryLockError::Error(e)) => return Err(io_err(e)),
    }
    f.set_len(0).map_err(io_err)?;
    f.rewind().map_err(io_err)?;
    writeln!(f, "{}", std::process::id()).map_err(io_err)?;
    Ok(f)
}

/// Takes the node's and the interface's lock in `dir` (see the module doc).
pub fn acquire_in(dir: &Path, node: &str, ifname: &str) -> Result<NodeLock, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let ns = netns_id();
    let node_lock = lock_one(
        dir,
        format!("net{ns}-node-{}.lock", safe(node)),
        format!("node {node:?}"),
    )?;
    let if_lock = lock_one(
        dir,
        format!("net{ns}-if-{}.lock", safe(ifname)),
        format!("interface {ifname:?}"),
    )?;
    Ok(NodeLock {
        _files: vec![node_lock, if_lock],
    })
}

/// [`acquire_in`] the default directory, [`DIR`].
pub fn acquire(node: &str, ifname: &str) -> Result<NodeLock, Error> {
    acquire_in(Path::new(DIR), node, ifname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_of_node_or_interface_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire_in(dir.path(), "director-a", "eth0").unwrap();
        let e = acquire_in(dir.path(), "director-a", "eth1").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("node \"director-a\" is already run"), "{msg}");
        assert!(
            msg.contains(&format!("(PID {})", std::process::id())),
            "{msg}"
        );
        let e = acquire_in(dir.path(), "director-b", "eth0").unwrap_err();
        assert!(e.to_string().contains("interface \"eth0\""), "{e}");
        // Other node, other interface: fine.
        let other = acquire_in(dir.path(), "director-b", "eth1").unwrap();
        drop(first);
        // Released on drop: the node can start again.
        let again = acquire_in(dir.path(), "director-a", "eth0").unwrap();
        drop((other, again));
    }

    #[test]
    fn names_are_file_safe() {
        assert_eq!(safe("eth0.100"), "eth0.100");
        assert_eq!(safe("../x y"), "..%2Fx%20y");
    }
}
