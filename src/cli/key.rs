//! `proxyha key new FILE`: a new heartbeat key.
//!
//! The key is 32 random bytes from `/dev/urandom` (the kernel's CSPRNG),
//! written to a file that did not exist before, with mode 0600, so that
//! `heartbeat.key_file` accepts it as it is (see `docs/heartbeat.md` §3.7).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Bytes in a key `proxyha key new` writes.
pub const KEY_LEN: usize = 32;

/// 32 random bytes whose first and last are not ASCII whitespace: the
/// config loader trims surrounding whitespace (for hand-written keys), so
/// such a byte would silently shorten the key. Redrawing them keeps every
/// other value equally likely.
fn random_key() -> std::io::Result<[u8; KEY_LEN]> {
    let mut rng = File::open("/dev/urandom")?;
    let mut key = [0u8; KEY_LEN];
    rng.read_exact(&mut key)?;
    for i in [0, KEY_LEN - 1] {
        // Each draw is whitespace with probability 6/256: bounded in practice;
        // give up (an error, not a weak key) if the source looks broken.
        let mut tries = 0;
        while key[i].is_ascii_whitespace() {
            tries += 1;
            if tries > 64 {
                return Err(std::io::Error::other(
                    "/dev/urandom keeps returning whitespace",
                ));
            }
            let mut b = [0u8; 1];
            rng.read_exact(&mut b)?;
            key[i] = b[0];
        }
    }
    Ok(key)
}

/// Writes a new key to `path`, which must not exist yet.
pub fn new_key(path: &Path) -> Result<(), String> {
    let key = random_key().map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    // create_new: O_CREAT|O_EXCL, which also refuses a symlink at `path`.
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "{}: already exists; refusing to overwrite a key (remove it first, or pick another name)",
                path.display()
            ),
            _ => format!("{}: cannot create: {e}", path.display()),
        })?;
    let written = (|| {
        // The umask may have taken bits away; make it exactly 0600.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(&key)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(format!("{}: cannot write: {e}", path.display()));
    }
    Ok(())
}

/// `proxyha key new FILE`.
pub fn command_new(path: &Path) -> i32 {
    match new_key(path) {
        Ok(()) => {
            let mut out = std::io::stdout();
            let _ = writeln!(
                out,
                "wrote a new {KEY_LEN}-byte heartbeat key to {} (mode 0600)\n\
                 copy it to every node of the group (keep mode 0600, owned by root) and set \
                 heartbeat.key_file = {:?}",
                path.display(),
                path.display().to_string()
            );
            0
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "proxyha: key new: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn writes_32_bytes_0600_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hb.key");
        new_key(&p).unwrap();
        let k = std::fs::read(&p).unwrap();
        assert_eq!(k.len(), KEY_LEN);
        assert!(!k[0].is_ascii_whitespace() && !k[KEY_LEN - 1].is_ascii_whitespace());
        assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o600);
        let e = new_key(&p).unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), k);
        let q = dir.path().join("other.key");
        new_key(&q).unwrap();
        assert_ne!(std::fs::read(&q).unwrap(), k, "two keys must differ");
    }
}
