//! The director's local delivery: a TAP device into its own kernel stack.
//!
//! The director scans too, so Maglev gives it a share of the flows. Those
//! frames arrived on the AF_XDP socket, out of the kernel's sight; a worker
//! rewrites their destination MAC to [`TapSink::mac`] and writes them here.
//! The kernel then receives them as if they had come in on the TAP device.
//!
//! For the kernel to accept them (the integrator sets this up):
//! * the TAP device is up ([`TapSink::open`] does that) — it needs no
//!   address;
//! * the VIP is a local address, e.g. `ip addr add VIP/32 dev lo`, with
//!   `arp_ignore=1` and `arp_announce=2` on the segment interface so the
//!   kernel never answers ARP for it (the master's workers do, with the
//!   virtual MAC);
//! * reverse-path filtering lets a client address in on the TAP device:
//!   the effective value is `max(all, dev)`, so `net.ipv4.conf.all.rp_filter`
//!   and `net.ipv4.conf.TAP.rp_filter` must both be 0 or 2 (loose);
//!   [`TapSink::open`] sets the TAP's own to 0 and turns IPv6 off on it;
//! * replies leave through the normal routing table, straight to the client
//!   (direct server return); nothing comes back through the TAP.
//!
//! Whatever the kernel sends out of the TAP device (it should be nothing once
//! IPv6 is off) is never read and is dropped when the queue fills.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use super::{Error, sys};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// A TAP device that hands frames to the local kernel stack.
#[derive(Debug)]
pub struct TapSink {
    file: File,
    name: String,
    mac: [u8; 6],
    delivered: u64,
    dropped: u64,
}

impl TapSink {
    /// Creates (or attaches to) the TAP device `name` with `IFF_TAP |
    /// IFF_NO_PI`, non-blocking, brings it up, and sets its `rp_filter` to 0
    /// and `disable_ipv6` to 1. The device disappears when the sink is dropped
    /// (unless it was made persistent elsewhere).
    pub fn open(name: &str) -> Result<TapSink, Error> {
        let cname = sys::ifname_cstring(name)?;
        let err = |op: &'static str, source: io::Error| Error::Tap {
            name: name.to_owned(),
            op,
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| err("open /dev/net/tun", e))?;
        let mut ifr = ifreq(&cname);
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF reads (and may update) a valid, initialised ifreq.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut ifr) };
        if rc != 0 {
            return Err(err("TUNSETIFF", io::Error::last_os_error()));
        }

        let ctl = control_socket().map_err(|e| err("socket(AF_INET)", e))?;
        let mut ifr = ifreq(&cname);
        // SAFETY: SIOCGIFHWADDR fills the hwaddr member of a valid ifreq.
        if unsafe { libc::ioctl(ctl.as_raw_fd(), libc::SIOCGIFHWADDR, &mut ifr) } != 0 {
            return Err(err("SIOCGIFHWADDR", io::Error::last_os_error()));
        }
        // SAFETY: the kernel just wrote the hwaddr member.
        let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
            *m = *b as u8;
        }

        let mut ifr = ifreq(&cname);
        // SAFETY: SIOCGIFFLAGS fills the flags member of a valid ifreq.
        if unsafe { libc::ioctl(ctl.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } != 0 {
            return Err(err("SIOCGIFFLAGS", io::Error::last_os_error()));
        }
        // SAFETY: reading and updating the flags member the kernel just wrote.
        unsafe { ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        // SAFETY: SIOCSIFFLAGS reads a valid ifreq.
        if unsafe { libc::ioctl(ctl.as_raw_fd(), libc::SIOCSIFFLAGS, &mut ifr) } != 0 {
            return Err(err("SIOCSIFFLAGS (up)", io::Error::last_os_error()));
        }

        std::fs::write(format!("/proc/sys/net/ipv4/conf/{name}/rp_filter"), "0")
            .map_err(|e| err("rp_filter", e))?;
        // Best effort: IPv6 may be disabled in the kernel altogether.
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");

        Ok(TapSink {
            file,
            name: name.to_owned(),
            mac,
            delivered: 0,
            dropped: 0,
        })
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device's MAC: the destination MAC a delivered frame must carry.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Hands one Ethernet frame to the kernel. A full queue drops the frame
    /// (counted in [`TapSink::dropped`]) rather than blocking the worker.
    pub fn deliver(&mut self, frame: &[u8]) -> io::Result<()> {
        match self.file.write(frame) {
            Ok(n) if n == frame.len() => {
                self.delivered += 1;
                Ok(())
            }
            Ok(_) => {
                self.dropped += 1;
                Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "short write to TAP",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.dropped += 1;
                Ok(())
            }
            Err(e) => {
                self.dropped += 1;
                Err(e)
            }
        }
    }

    /// Frames handed to the kernel.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Frames dropped (queue full or write error).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

fn ifreq(name: &std::ffi::CStr) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in ifr.ifr_name.iter_mut().zip(name.to_bytes()) {
        *dst = src as libc::c_char;
    }
    ifr
}

fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
