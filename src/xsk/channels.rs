//! A NIC's channels (its RX/TX queues), read and set with ethtool's
//! `ETHTOOL_GCHANNELS` / `ETHTOOL_SCHANNELS` ioctl, as `ethtool -l` / `-L` do.
//!
//! Most NICs (i40e, ice, mlx5) count "combined" channels, each an RX and a
//! TX queue; some (veth) count RX and TX channels separately. The RX queues
//! a socket can bind to are `combined + rx` either way.

use std::io;

use super::Error;
use super::sys::ifname_cstring;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;
const ETHTOOL_SCHANNELS: u32 = 0x3d;

/// `struct ethtool_channels` (include/uapi/linux/ethtool.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// `struct ifreq` with the `ifr_data` member of its union (40 bytes on
/// 64-bit targets, as the kernel's).
#[repr(C)]
struct IfreqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// An interface's channel counts and their maxima.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Channels {
    pub max_rx: u32,
    pub max_tx: u32,
    pub max_other: u32,
    pub max_combined: u32,
    pub rx: u32,
    pub tx: u32,
    pub other: u32,
    pub combined: u32,
}

impl Channels {
    /// The RX queues in use: combined channels plus RX-only channels.
    pub fn rx_queues(&self) -> u32 {
        self.combined + self.rx
    }

    /// The settings that give exactly `n` RX queues: `n` combined channels
    /// on a NIC that has them, else `n` RX and `n` TX channels (veth).
    /// `None` when the NIC's maxima do not allow `n`.
    pub fn with_rx_queues(&self, n: u32) -> Option<Channels> {
        if n == 0 {
            return None;
        }
        let mut c = *self;
        if self.max_combined > 0 {
            if n > self.max_combined {
                return None;
            }
            c.combined = n;
            c.rx = 0;
            if self.max_tx == 0 {
                c.tx = 0;
            }
            return Some(c);
        }
        if n > self.max_rx {
            return None;
        }
        c.rx = n;
        c.tx = n.min(self.max_tx.max(1));
        Some(c)
    }

    fn to_raw(self, cmd: u32) -> EthtoolChannels {
        EthtoolChannels {
            cmd,
            max_rx: self.max_rx,
            max_tx: self.max_tx,
            max_other: self.max_other,
            max_combined: self.max_combined,
            rx_count: self.rx,
            tx_count: self.tx,
            other_count: self.other,
            combined_count: self.combined,
        }
    }

    fn from_raw(r: &EthtoolChannels) -> Channels {
        Channels {
            max_rx: r.max_rx,
            max_tx: r.max_tx,
            max_other: r.max_other,
            max_combined: r.max_combined,
            rx: r.rx_count,
            tx: r.tx_count,
            other: r.other_count,
            combined: r.combined_count,
        }
    }
}

fn ethtool(ifname: &str, op: &'static str, ch: &mut EthtoolChannels) -> Result<(), Error> {
    let name = ifname_cstring(ifname)?;
    let err = |source: io::Error| Error::Channels {
        ifname: ifname.to_owned(),
        op,
        source,
    };
    let mut req = IfreqData {
        name: [0; libc::IFNAMSIZ],
        data: (ch as *mut EthtoolChannels).cast(),
        _pad: [0; 16],
    };
    for (d, s) in req.name.iter_mut().zip(name.as_bytes()) {
        *d = *s as libc::c_char;
    }
    // SAFETY: plain socket(2) call; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    // SAFETY: `req` is a valid ifreq whose data pointer points at `ch`, a
    // live `struct ethtool_channels` the kernel reads and (for GCHANNELS)
    // writes; both outlive the call.
    let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL as _, &mut req) };
    let e = io::Error::last_os_error();
    // SAFETY: `fd` is the socket opened above and not used afterwards.
    unsafe { libc::close(fd) };
    if rc != 0 {
        return Err(err(e));
    }
    Ok(())
}

/// Reads an interface's channels (`ethtool -l`).
pub fn channels(ifname: &str) -> Result<Channels, Error> {
    let mut raw = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..EthtoolChannels::default()
    };
    ethtool(ifname, "ETHTOOL_GCHANNELS", &mut raw)?;
    Ok(Channels::from_raw(&raw))
}

/// Sets an interface's channel counts (`ethtool -L`).
pub fn set_channels(ifname: &str, ch: &Channels) -> Result<(), Error> {
    let mut raw = ch.to_raw(ETHTOOL_SCHANNELS);
    ethtool(ifname, "ETHTOOL_SCHANNELS", &mut raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<EthtoolChannels>(), 36);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<IfreqData>(), 40);
    }

    #[test]
    fn rx_queue_settings() {
        let nic = Channels {
            max_combined: 8,
            max_other: 1,
            other: 1,
            combined: 8,
            ..Channels::default()
        };
        assert_eq!(nic.rx_queues(), 8);
        let two = nic.with_rx_queues(2).unwrap();
        assert_eq!((two.combined, two.rx, two.other), (2, 0, 1));
        assert_eq!(nic.with_rx_queues(9), None);
        assert_eq!(nic.with_rx_queues(0), None);

        let veth = Channels {
            max_rx: 4,
            max_tx: 4,
            rx: 4,
            tx: 4,
            ..Channels::default()
        };
        assert_eq!(veth.rx_queues(), 4);
        let one = veth.with_rx_queues(1).unwrap();
        assert_eq!((one.rx, one.tx, one.combined), (1, 1, 0));
        assert_eq!(veth.with_rx_queues(5), None);
    }

    #[test]
    fn unsupported_or_missing_interfaces_are_named() {
        let e = channels("phx-nonexistent").unwrap_err();
        assert!(e.to_string().contains("phx-nonexistent"), "{e}");
    }
}
