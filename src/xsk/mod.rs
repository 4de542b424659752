//! The kernel side of the dataplane: the XDP filter program, the AF_XDP
//! sockets the workers poll, the TAP device that hands the director's own
//! share of the traffic to its local stack, and the unicast-MAC entry that
//! lets a NIC accept the VRRP virtual MAC.
//!
//! With [`crate::bpf`] (which holds all BPF object, map and XDP attach
//! handling, used here by the filter), this is the only module of the crate
//! that may use `unsafe` (sockets, UMEM, TAP, unicast MAC, bpffs); every
//! block carries a `// SAFETY:` comment and every unsafe function a
//! `# Safety` section.
//!
//! # Bringing a director up (one worker per queue)
//!
//! ```text
//! let filter = xsk::Filter::attach("eth0", xsk::AttachMode::Auto)?; // native, else generic
//! log!("XDP filter on eth0 in {} mode", filter.mode());
//! filter.set_vips(&[vip])?;                                          // VIPs (replaces the set)
//! filter.set_ports(xsk::L4::Tcp, &[9090])?;                          // redirected ports, per protocol
//! filter.set_config(&xsk::FilterConfig::director(51, false))?;       // VRID 51, vmac, VRRP+heartbeat
//! for q in queues {
//!     let sock = xsk::Socket::open("eth0", q, &xsk::SocketConfig { mode, ..Default::default() })?;
//!     log!("queue {q}: AF_XDP {}", sock.bound());                    // copy or zero-copy
//!     filter.add_socket(&sock)?;                                     // XSKMAP[q] = fd
//!     // move `sock` into the worker thread; it implements dataplane::port::Port
//! }
//! let _uc = xsk::UnicastMac::add("eth0", vmac)?;                     // accept the virtual MAC
//! // on VRRP master: filter.set_active(true)?; on backup: filter.set_active(false)?
//! let tap = xsk::TapSink::open("phx-local0")?;                       // the director's own share
//! ```
//!
//! # What the filter steers
//!
//! See `src/bpf/filter.bpf.c`. With [`FLAG_ACTIVE`] set (the VRRP master
//! only): TCP/UDP to a VIP on a redirected port sent to the virtual MAC, and
//! ARP requests for a VIP. With [`FLAG_VRRP`]: VRRP for our VRID. With
//! [`FLAG_HEARTBEAT`]: IP protocol 253. Everything else, and everything on a
//! queue without a socket, goes to the kernel. A backup director keeps
//! `FLAG_VRRP | FLAG_HEARTBEAT`; a scanning node sets `FLAG_HEARTBEAT` only
//! (or runs no filter), so redirected frames carrying its own MAC reach its
//! kernel and proxy. Fresh maps steer nothing.
//!
//! # What the integrator must know
//!
//! * Root, or CAP_NET_ADMIN + CAP_BPF (+ CAP_SYS_ADMIN to mount bpffs).
//! * bpffs: [`Filter::attach`] mounts it at /sys/fs/bpf when missing (inside
//!   `ip netns exec` it always is; the mount lives in that command's private
//!   mount namespace). With it, libxdp attaches through its dispatcher so
//!   other libxdp programs can share the interface. On the lab machine the
//!   dispatcher's compatibility check fails (EPERM loading its freplace test
//!   program) and libxdp falls back to attaching our program alone; the
//!   libbpf/libxdp lines about it on stderr are expected.
//! * Crash recovery: [`Filter::attach`] first detaches any program named
//!   `proxyha_filter` on the interface ([`detach_stale`] does only that).
//!   Dropping the [`Filter`] detaches it. Sockets leave the XSKMAP when they
//!   close.
//! * The virtual MAC: veth has no receive MAC filter, so XDP sees frames to
//!   the virtual MAC anyway (the tests rely on no promiscuous mode). A real
//!   NIC drops them in hardware unless the MAC is in its unicast list:
//!   hold a [`UnicastMac`] while the node is a director (it uses a packet
//!   socket's `PACKET_MR_UNICAST` membership, which the kernel removes when
//!   the socket closes; NICs without a unicast filter go promiscuous).
//! * Sockets: one per queue, each with its own UMEM (no sharing). Veth gives
//!   copy mode only; `BindMode::Auto` tries zero-copy first. Frame
//!   ownership follows `dataplane::port`; call `reclaim` every loop (it also
//!   refills the fill ring) and `flush` after `send`.
//! * Adaptive polling: `Port::wait` is `poll(2)` on the socket. Measured in
//!   the namespace test (copy mode, veth, 2 vCPUs): single-frame round trip
//!   p50 126-188 µs spinning vs 187-199 µs asleep in `poll` (about +10 to
//!   +60 µs for the first frame after idle), while spinning pushed the
//!   round-trip p90 to 5-7.6 ms in some runs by starving the other side.
//! * Local delivery: see [`TapSink`] — VIP on `lo`, `rp_filter` 0 or 2 on
//!   `all` and on the TAP, destination MAC rewritten to [`TapSink::mac`].

#![allow(unsafe_code)]

mod channels;
mod fastpath;
mod filter;
mod mac;
mod socket;
mod sys;
mod tap;

pub use channels::{Channels, channels, set_channels};
pub use fastpath::{
    FLOW_ENTRIES, FLOW_REFRESH, FastPath, FlowKey, FlowTarget, NodeCounters, stamp_now,
};
pub use filter::{
    AttachMode, FLAG_ACTIVE, FLAG_DROP_ORPHANS, FLAG_HEARTBEAT, FLAG_OFFLOAD, FLAG_OFFLOAD_LOCAL,
    FLAG_PEERS, FLAG_VRRP, Filter, FilterConfig, FilterStats, L4, PassProgram, Verdict,
    detach_stale,
};
pub use mac::UnicastMac;
pub use socket::{Accounting, BindMode, Bound, BusyPoll, Socket, SocketConfig, SocketStats};
pub use sys::{ensure_bpffs, ifindex};
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
    /// Opening an embedded BPF object, or a map update or lookup, failed
    /// (the error names the call, the object and the map).
    #[error(transparent)]
    Bpf(#[from] crate::bpf::Error),
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
        /// The last attempt's failure (EPERM: not root / no CAP_BPF).
        #[source]
        source: Box<crate::bpf::Error>,
    },
    /// Detaching the program failed.
    #[error("detaching XDP program from {ifname}: {source}")]
    Detach {
        /// Interface.
        ifname: String,
        /// The failed call.
        #[source]
        source: Box<crate::bpf::Error>,
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
    /// Reading or setting the NIC's channels (ethtool) failed.
    #[error("{op} on {ifname}: {source}")]
    Channels {
        /// Interface.
        ifname: String,
        /// The ethtool command.
        op: &'static str,
        /// The errno (EOPNOTSUPP: the driver has no channels).
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
        let e = Error::Bpf(crate::bpf::Error::Call {
            call: "bpf_map_update_elem",
            object: "proxyha_filter",
            name: "proxyha_vips".into(),
            source: io::Error::from_raw_os_error(libc::E2BIG),
        });
        assert!(chain(&e).starts_with("bpf_map_update_elem on proxyha_filter/proxyha_vips: "));
        assert!(chain(&e).contains("Argument list too long"));
    }
}
