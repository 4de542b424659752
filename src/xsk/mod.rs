//! The kernel side of the dataplane: the XDP filter program, the AF_XDP
//! sockets the workers poll, and the TAP device that hands the director's own
//! share of the traffic to its local stack.
//!
//! This is the only module of the crate that may use `unsafe`; every block
//! carries a `// SAFETY:` comment and every unsafe function a `# Safety`
//! section.
//!
//! How the pieces fit (a director with one queue):
//!
//! ```text
//! let filter = xsk::Filter::attach("eth0", xsk::XdpMode::Auto)?;   // loads + attaches
//! filter.set_vips(&[vip])?;                                         // VIPs
//! filter.set_ports(xsk::L4::Tcp, &[9090])?;                         // redirected ports
//! filter.set_config(&xsk::FilterConfig { vrid: 51, vmac, flags })?; // VRID, MAC, role
//! let sock = xsk::Socket::open("eth0", 0, &xsk::SocketConfig::default())?;
//! filter.add_socket(&sock)?;                                        // XSKMAP[queue] = fd
//! // ... a worker polls `sock` through `dataplane::port::Port`
//! ```
//!
//! Dropping the [`Filter`] detaches the program; [`Filter::attach`] first
//! removes any `proxyha_filter` a crashed run left on the interface.

#![allow(unsafe_code)]

mod filter;
mod mac;
mod socket;
mod sys;
mod tap;

pub use filter::{
    FLAG_ACTIVE, FLAG_HEARTBEAT, FLAG_VRRP, Filter, FilterConfig, FilterStats, L4, PassProgram,
    Verdict, XdpMode, detach_stale,
};
pub use mac::UnicastMac;
pub use socket::{Accounting, BindMode, Bound, Socket, SocketConfig, SocketStats};
pub use sys::ensure_bpffs;
pub use tap::TapSink;

use std::io;

/// Everything that can go wrong in the kernel-facing layer. Each variant names
/// the object and the operation, so start-up errors read clearly in the log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The interface name is empty, too long or contains a NUL byte.
    #[error("interface name {0:?} is not valid")]
    BadInterfaceName(String),
    /// `if_nametoindex` found no such interface in this network namespace.
    #[error("no such interface: {0}")]
    NoSuchInterface(String),
    /// bpffs was missing at /sys/fs/bpf and could not be mounted.
    #[error("mounting bpffs at /sys/fs/bpf: {0}")]
    BpfFs(#[source] io::Error),
    /// libbpf could not parse the embedded BPF object.
    #[error("opening the embedded BPF object {object}: {source}")]
    BpfOpen {
        /// Which object.
        object: &'static str,
        /// The errno libbpf reported.
        #[source]
        source: io::Error,
    },
    /// Attaching (which includes loading and verifying) failed in every mode
    /// that was tried.
    #[error("attaching XDP program {program} to {ifname} ({mode}): {source}")]
    Attach {
        /// Program name.
        program: &'static str,
        /// Interface.
        ifname: String,
        /// The last mode tried.
        mode: &'static str,
        /// The errno of the last attempt (EPERM: not root / no CAP_BPF).
        #[source]
        source: io::Error,
    },
    /// A map the program must define is missing from the object.
    #[error("BPF map {0} is missing from the loaded object")]
    MapMissing(&'static str),
    /// A map update or lookup failed.
    #[error("BPF map {map}: {source}")]
    Map {
        /// Which map.
        map: &'static str,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// Detaching the program failed.
    #[error("detaching XDP program from {ifname}: {source}")]
    Detach {
        /// Interface.
        ifname: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// A socket setting is out of range (names the setting and the rule).
    #[error("AF_XDP socket config: {0}")]
    Config(String),
    /// The UMEM could not be created (mmap or registration failed).
    #[error("creating the UMEM for {ifname} queue {queue}: {reason}")]
    Umem {
        /// Interface.
        ifname: String,
        /// Queue.
        queue: u32,
        /// What xsk-rs reported, with its cause.
        reason: String,
    },
    /// The AF_XDP socket could not be created or bound.
    #[error("creating the AF_XDP socket on {ifname} queue {queue} ({mode}): {reason}")]
    Socket {
        /// Interface.
        ifname: String,
        /// Queue.
        queue: u32,
        /// The bind mode of the last attempt.
        mode: &'static str,
        /// What xsk-rs reported, with its cause.
        reason: String,
    },
    /// Adding the virtual MAC to the interface's unicast list failed.
    #[error("adding a unicast MAC to {ifname}: {source}")]
    Mac {
        /// Interface.
        ifname: String,
        /// The errno.
        #[source]
        source: io::Error,
    },
    /// Opening or configuring the TAP device failed.
    #[error("TAP device {name}: {op}: {source}")]
    Tap {
        /// Device name.
        name: String,
        /// The operation that failed.
        op: &'static str,
        /// The errno.
        #[source]
        source: io::Error,
    },
}

/// Formats an error and its chain of sources on one line.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn thread_bounds() {
        // A worker thread owns its socket; the control plane shares the filter.
        send::<Socket>();
        send::<TapSink>();
        send::<UnicastMac>();
        send_sync::<Filter>();
        send_sync::<PassProgram>();
    }

    #[test]
    fn error_chain_names_the_cause() {
        let e = Error::Map {
            map: "proxyha_vips",
            source: io::Error::from_raw_os_error(libc::E2BIG),
        };
        assert!(chain(&e).starts_with("BPF map proxyha_vips: "));
        assert!(chain(&e).contains("Argument list too long"));
    }
}
