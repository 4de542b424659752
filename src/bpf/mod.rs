//! The BPF layer: a small safe API over libbpf and libxdp (`libxdp-sys`) for
//! the embedded BPF objects, used by the XDP filter ([`crate::xsk`]) and the
//! perf lab (`perf/lab/`).
//!
//! * [`Object`]: an embedded ELF object ([`crate::embedded_object!`]),
//!   loaded; [`Object::program`] and [`Object::map`] find a program or map
//!   by name.
//! * [`Map`]: update, lookup and delete with [`bytemuck::Pod`] keys and
//!   values (or byte slices) whose sizes are checked against the map's, and
//!   per-CPU reads ([`Map::lookup_percpu`]).
//! * [`Program`]: a loaded program's `BPF_PROG_TEST_RUN`, once on a frame
//!   ([`Program::test_run`]) or with live frames ([`Program::test_run_live`],
//!   the perf lab's generator); plain XDP attach/detach by ifindex
//!   ([`xdp_attach`], [`xdp_detach`]).
//! * [`XdpProgram`]: a program attached through libxdp (its dispatcher when
//!   bpffs is mounted), and [`detach_named`] for what a crashed run left.
//! * [`enter_netns`]: the calling thread into a network namespace (ifindexes
//!   of attach and live-frame test runs resolve in the caller's namespace).
//!
//! Every failure is one [`Error`] naming the call, the object and the map,
//! program, interface or namespace it acted on.
//!
//! This is the BPF layer: all `unsafe` of BPF object and map handling lives
//! here. Every block carries a `// SAFETY:` comment. The C programs next to
//! this file (`*.bpf.c`) are compiled by `build.rs` into `OUT_DIR`.

#![allow(unsafe_code)]

mod object;
mod xdp;

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

pub use object::{Map, MappedWords, Object, Program};
pub use xdp::{XdpMode, XdpProgram, detach_named, xdp_attach, xdp_detach};

/// Everything that can go wrong in the BPF layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A libbpf, libxdp or system call failed.
    #[error("{call} on {object}{}: {source}", at(.name))]
    Call {
        /// The function that failed (`bpf_map_update_elem`, `setns`...).
        call: &'static str,
        /// The BPF object (`proxyha_filter`, `perf_gen`...), or `netns`.
        object: &'static str,
        /// The map, program, interface or namespace it acted on (may be
        /// empty).
        name: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// The object has no (loaded) program or map of that name.
    #[error("BPF object {object}: no {kind} named {name}")]
    Missing {
        /// The object.
        object: &'static str,
        /// `"program"`, `"map"` or `"loaded program"`.
        kind: &'static str,
        /// The name looked for.
        name: String,
    },
    /// A key or value handed to a map has the wrong size.
    #[error("BPF map {object}/{map}: {what} is {got} bytes, the map wants {want}")]
    Size {
        /// The object.
        object: &'static str,
        /// The map.
        map: String,
        /// `"key"` or `"value"`.
        what: &'static str,
        /// Bytes given.
        got: usize,
        /// Bytes the map expects.
        want: usize,
    },
}

fn at(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!("/{name}")
    }
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A failed call from its negative-errno return value (libbpf 1.0 and
    /// libxdp convention).
    pub(crate) fn call(call: &'static str, object: &'static str, name: &str, rc: i64) -> Error {
        Error::Call {
            call,
            object,
            name: name.to_owned(),
            source: neg_errno(rc),
        }
    }

    /// The errno of a [`Error::Call`], if that is what this is.
    pub fn os_error(&self) -> Option<i32> {
        match self {
            Error::Call { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// Turns a negative-errno return value into an `io::Error`.
pub(crate) fn neg_errno(rc: i64) -> io::Error {
    let code = i32::try_from(-rc).unwrap_or(libc::EINVAL);
    io::Error::from_raw_os_error(code)
}

/// 8-byte alignment for an embedded ELF object (libelf reads it in place).
#[repr(C, align(8))]
pub struct Aligned<T: ?Sized>(pub T);

/// An embedded BPF ELF object, 8-byte aligned.
pub type Elf = Aligned<[u8]>;

/// Embeds a BPF object that `build.rs` compiled into `OUT_DIR`, as a
/// `&'static` [`Elf`]: `embedded_object!("filter.bpf.o")`.
#[macro_export]
macro_rules! embedded_object {
    ($file:literal) => {{
        static OBJECT: &$crate::bpf::Elf =
            &$crate::bpf::Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/", $file)));
        OBJECT
    }};
}

/// The number of possible CPUs (the number of values in a per-CPU map
/// entry), from `/sys/devices/system/cpu/possible`; 1024 if unreadable, which
/// over-sizes per-CPU buffers rather than under-sizing them.
pub fn possible_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| parse_cpu_list(s.trim()))
        .unwrap_or(1024)
}

/// Parses a kernel CPU list such as `0-3,5,7-8` into the highest CPU + 1
/// (with [`crate::config::cpu_ranges`], the one parser of the format).
pub fn parse_cpu_list(s: &str) -> Option<usize> {
    crate::config::cpu_ranges(s)?
        .into_iter()
        .map(|(_, hi)| hi + 1)
        .max()
}

/// Moves the calling thread into the network namespace `/run/netns/{ns}`.
/// Only this thread changes namespace; use a dedicated thread.
pub fn enter_netns(ns: &str) -> Result<()> {
    let err = |call, source| Error::Call {
        call,
        object: "netns",
        name: ns.to_owned(),
        source,
    };
    let f = File::open(format!("/run/netns/{ns}")).map_err(|e| err("open", e))?;
    // SAFETY: `f` is an open namespace file for the duration of the call;
    // setns only changes the calling thread's network namespace and touches
    // no memory of ours.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(err("setns", io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0-3,5,7-8"), Some(9));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn cpu_lists_parse() {
        // The cases of the perf lab's former copy of the parser.
        for (list, cpus) in [
            ("0-1", Some(2)),
            ("0", Some(1)),
            ("0-3,5", Some(6)),
            ("x", None),
        ] {
            assert_eq!(parse_cpu_list(list), cpus, "{list}");
        }
        assert!(possible_cpus() >= 1);
    }

    #[test]
    fn errors_name_the_call_object_and_map() {
        let e = Error::call("bpf_map_update_elem", "proxyha_filter", "proxyha_vips", -7);
        let s = e.to_string();
        assert!(
            s.starts_with("bpf_map_update_elem on proxyha_filter/proxyha_vips: "),
            "{s}"
        );
        assert!(s.contains("Argument list too long"), "{s}");
        assert_eq!(e.os_error(), Some(libc::E2BIG));
        let e = Error::call("setns", "netns", "", -1);
        assert!(e.to_string().starts_with("setns on netns: "), "{e}");
    }

    #[test]
    fn no_netns_of_that_name() {
        let e = enter_netns("phx-no-such-netns").unwrap_err();
        assert!(
            e.to_string().contains("open on netns/phx-no-such-netns"),
            "{e}"
        );
    }
}
