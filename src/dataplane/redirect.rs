//! The redirect: direct server return by MAC rewrite, and the local sink that
//! takes the director's own share.
//!
//! As in LVS-DR and the original product, only the Ethernet addresses change:
//! the destination becomes the chosen node's MAC and the source our own. The
//! IP packet (addresses, ports, TTL, checksums) is untouched, so the node's
//! proxy, which carries the VIP on `lo`, answers the client directly.

use crate::balance::health::u64_to_mac;

/// Rewrites the MAC addresses of `frame` in place: destination `dst`
/// (packed, see `health::mac_to_u64`), source `src`. Returns `false` (and
/// leaves the frame alone) if it is shorter than the two addresses.
#[inline]
pub fn rewrite_macs(frame: &mut [u8], dst: u64, src: [u8; 6]) -> bool {
    let Some(head) = frame.get_mut(..12) else {
        return false;
    };
    head[..6].copy_from_slice(&u64_to_mac(dst));
    head[6..].copy_from_slice(&src);
    true
}

/// Where a worker delivers frames meant for this node's own stack: its own
/// share of balanced flows (unchanged, still addressed to the virtual MAC),
/// and frames that are not ours. Implemented by the TAP device (or veth) that
/// feeds the local stack, and by test sinks.
pub trait LocalSink {
    /// Takes a copy of `frame`. Returns `false` if it could not (the worker
    /// counts a drop). Must not block.
    fn deliver(&mut self, frame: &[u8]) -> bool;

    /// Called once per batch after the last delivery.
    fn flush(&mut self) {}
}

impl<T: LocalSink + ?Sized> LocalSink for Box<T> {
    fn deliver(&mut self, frame: &[u8]) -> bool {
        (**self).deliver(frame)
    }

    fn flush(&mut self) {
        (**self).flush()
    }
}

/// A sink that keeps delivered frames in memory, up to a bound (tests and
/// benchmarks; a real node uses the TAP sink).
#[derive(Debug, Default, Clone)]
pub struct MemorySink {
    /// The delivered frames, oldest first.
    pub frames: Vec<Vec<u8>>,
    /// The most frames kept; deliveries beyond it are refused.
    pub limit: usize,
    /// Deliveries seen (kept or counted only), for sinks with `limit` 0.
    pub delivered: u64,
}

impl MemorySink {
    /// A sink keeping up to `limit` frames. With `limit` 0 it keeps none but
    /// accepts and counts every delivery.
    pub fn new(limit: usize) -> MemorySink {
        MemorySink {
            frames: Vec::new(),
            limit,
            delivered: 0,
        }
    }
}

impl LocalSink for MemorySink {
    fn deliver(&mut self, frame: &[u8]) -> bool {
        if self.limit == 0 {
            self.delivered += 1;
            return true;
        }
        if self.frames.len() >= self.limit {
            return false;
        }
        self.delivered += 1;
        self.frames.push(frame.to_vec());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::health::mac_to_u64;

    #[test]
    fn rewrites_only_the_macs() {
        let mut f: Vec<u8> = (0..64).collect();
        let orig = f.clone();
        assert!(rewrite_macs(
            &mut f,
            mac_to_u64([1, 2, 3, 4, 5, 6]),
            [7, 8, 9, 10, 11, 12]
        ));
        assert_eq!(&f[..12], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(&f[12..], &orig[12..]);
        let mut short = [0u8; 11];
        assert!(!rewrite_macs(&mut short, 1, [1; 6]));
        assert_eq!(short, [0; 11]);
    }

    #[test]
    fn memory_sink_bounds() {
        let mut s = MemorySink::new(1);
        assert!(s.deliver(b"a"));
        assert!(!s.deliver(b"b"));
        assert_eq!(s.frames, vec![b"a".to_vec()]);
        let mut counting: Box<dyn LocalSink> = Box::new(MemorySink::new(0));
        assert!(counting.deliver(b"x"));
    }
}
