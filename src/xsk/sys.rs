//! Small system helpers: interface lookup, bpffs.

use std::ffi::CString;
use std::io;

use super::Error;

/// `BPF_FS_MAGIC` from `include/uapi/linux/magic.h`.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
const BPFFS_PATH: &std::ffi::CStr = c"/sys/fs/bpf";

/// Resolves an interface name in the calling thread's network namespace.
pub fn ifindex(ifname: &str) -> Result<u32, Error> {
    let name = ifname_cstring(ifname)?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call;
    // if_nametoindex only reads it.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if idx == 0 {
        return Err(Error::NoSuchInterface(ifname.to_owned()));
    }
    Ok(idx)
}

/// Checks an interface name (1..=15 bytes, no NUL) and returns it as a C string.
pub(crate) fn ifname_cstring(ifname: &str) -> Result<CString, Error> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return Err(Error::BadInterfaceName(ifname.to_owned()));
    }
    CString::new(ifname).map_err(|_| Error::BadInterfaceName(ifname.to_owned()))
}

/// Makes sure a BPF filesystem is mounted at `/sys/fs/bpf`, mounting one if
/// not, and returns whether it mounted it.
///
/// `ip netns exec` remounts `/sys` for the namespace, which hides the host's
/// bpffs; libxdp needs one to pin its dispatcher (without it, it falls back
/// to attaching a single program and other XDP programs cannot coexist).
/// Mounting inside `ip netns exec` affects only that command's private mount
/// namespace.
pub fn ensure_bpffs() -> Result<bool, Error> {
    if is_bpffs()? {
        return Ok(false);
    }
    // SAFETY: all pointers are valid NUL-terminated strings (or null for the
    // data argument, which bpffs accepts); mount(2) only reads them.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            BPFFS_PATH.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(Error::BpfFs(io::Error::last_os_error()));
    }
    Ok(true)
}

fn is_bpffs() -> Result<bool, Error> {
    // SAFETY: statfs is a plain-old-data struct for which all-zero bytes are
    // a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and `st` is a valid, writable statfs.
    let rc = unsafe { libc::statfs(BPFFS_PATH.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(Error::BpfFs(io::Error::last_os_error()));
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert!(matches!(
            ifname_cstring(""),
            Err(Error::BadInterfaceName(_))
        ));
        assert!(matches!(
            ifname_cstring("0123456789abcdef"),
            Err(Error::BadInterfaceName(_))
        ));
        assert!(matches!(
            ifname_cstring("a\0b"),
            Err(Error::BadInterfaceName(_))
        ));
        assert!(ifname_cstring("veth0").is_ok());
        assert!(matches!(
            ifindex("phx-nonexistent"),
            Err(Error::NoSuchInterface(_))
        ));
    }
}
