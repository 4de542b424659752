//! Making an interface accept frames sent to the VRRP virtual MAC.
//!
//! RFC 5798 §7.3: the master must accept packets addressed to the virtual
//! router MAC. A NIC with a unicast MAC filter drops such frames in hardware,
//! before XDP sees them, unless the MAC is in its filter list or the NIC is
//! promiscuous. [`UnicastMac`] adds the MAC to the interface's unicast
//! address list with a packet socket's `PACKET_MR_UNICAST` membership
//! (`dev_uc_add`): drivers with a unicast filter program the MAC into it;
//! drivers without one (veth among them) switch to promiscuous mode instead.
//! The entry is reference-counted by the kernel and disappears when the
//! socket closes, so a crash never leaves it behind.
//!
//! On veth the virtual MAC arrives without any of this (veth has no receive
//! MAC filter; XDP sees every frame), which is what the namespace tests show;
//! a real NIC needs it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{Error, sys};

/// `PACKET_MR_UNICAST` (linux/if_packet.h).
const PACKET_MR_UNICAST: u16 = 3;

/// A unicast MAC entry on an interface, held for as long as this value lives.
#[derive(Debug)]
pub struct UnicastMac {
    _sock: OwnedFd,
    ifname: String,
    mac: [u8; 6],
}

impl UnicastMac {
    /// Adds `mac` to the unicast address list of `ifname`.
    pub fn add(ifname: &str, mac: [u8; 6]) -> Result<UnicastMac, Error> {
        let ifindex = sys::ifindex(ifname)?;
        let err = |source: io::Error| Error::Mac {
            ifname: ifname.to_owned(),
            source,
        };
        // Protocol 0: the socket receives nothing; it only holds the entry.
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(err(io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        let sock = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut address = [0u8; 8];
        address[..6].copy_from_slice(&mac);
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as libc::c_int,
            mr_type: PACKET_MR_UNICAST,
            mr_alen: 6,
            mr_address: address,
        };
        // SAFETY: `mreq` is a valid packet_mreq and the length is its size;
        // the kernel only reads it.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                (&raw const mreq).cast(),
                std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(err(io::Error::last_os_error()));
        }
        Ok(UnicastMac {
            _sock: sock,
            ifname: ifname.to_owned(),
            mac,
        })
    }

    /// The interface.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The MAC.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }
}
