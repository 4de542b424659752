//! An in-memory [`Port`] with the same rings as AF_XDP (fill, RX, TX,
//! completion) and a frame pool, so the whole pipeline runs in ordinary tests
//! and benchmarks without root or a NIC.
//!
//! The test side plays the kernel: [`MemPort::inject`] takes a frame from the
//! fill ring, copies a packet into it and puts it on the RX ring (or drops it,
//! as a NIC would, when the fill ring is empty); [`MemPort::drain_tx`] "sends"
//! the TX ring and moves the frames to the completion ring.
//!
//! Every frame has exactly one owner at a time, tracked per frame. Any
//! misuse (sending or releasing a frame the caller does not own, a bad
//! address) is recorded as a violation, and [`MemPort::check`] verifies that
//! every frame is accounted for.

use std::io;
use std::time::Duration;

use thiserror::Error;

use super::port::{Frame, Port};

/// Who owns a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// In the free pool (available to [`Port::alloc`]).
    Free,
    /// On the fill ring (available to receive into).
    Fill,
    /// On the RX ring (received, not yet taken).
    Rx,
    /// Taken by the caller (worker).
    Caller,
    /// On the TX ring (sent, not yet transmitted).
    Tx,
    /// On the completion ring (transmitted, not yet reclaimed).
    Completion,
}

/// Sizes of an in-memory port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Number of frames.
    pub frames: usize,
    /// Bytes per frame (rounded up to a power of two, at least 64).
    pub frame_size: usize,
    /// Capacity of each ring (fill, RX, TX, completion).
    pub ring_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            frames: 4096,
            frame_size: 2048,
            ring_size: 2048,
        }
    }
}

/// How many frames each owner holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accounting {
    /// In the free pool.
    pub free: usize,
    /// On the fill ring.
    pub fill: usize,
    /// On the RX ring.
    pub rx: usize,
    /// Held by the caller.
    pub caller: usize,
    /// On the TX ring.
    pub tx: usize,
    /// On the completion ring.
    pub completion: usize,
}

impl Accounting {
    /// The sum over all owners.
    pub fn total(&self) -> usize {
        self.free + self.fill + self.rx + self.caller + self.tx + self.completion
    }
}

/// A frame-accounting failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The per-owner counts do not add up to the number of frames.
    #[error("frames lost: {accounted} accounted of {frames} ({accounting:?})")]
    Lost {
        /// Frames accounted for.
        accounted: usize,
        /// Frames in the port.
        frames: usize,
        /// The breakdown.
        accounting: Accounting,
    },
    /// The caller still holds frames.
    #[error("the caller still holds {0} frames")]
    Held(usize),
    /// The caller misused frames.
    #[error("{count} frame ownership violations, first: {first}")]
    Violations {
        /// How many.
        count: u64,
        /// The first one.
        first: String,
    },
}

/// A bounded FIFO of `Copy` items on a power-of-two array with free-running
/// head and tail counters: the shape of an AF_XDP ring (no wrap branch, no
/// reallocation), so the harness's own bookkeeping stays small beside the
/// worker it measures.
#[derive(Debug)]
struct Ring<T> {
    items: Box<[T]>,
    mask: u32,
    head: u32,
    tail: u32,
}

impl<T: Copy + Default> Ring<T> {
    /// A ring holding at least `cap` items.
    fn new(cap: usize) -> Ring<T> {
        let n = cap.max(1).next_power_of_two().min(1 << 31);
        Ring {
            items: vec![T::default(); n].into_boxed_slice(),
            mask: (n - 1) as u32,
            head: 0,
            tail: 0,
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.tail.wrapping_sub(self.head) as usize
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// Appends `v`; `false` (and nothing stored) when the array is full.
    /// The port checks its rings' bounds first, so a `false` is a bug in
    /// the port, recorded as a violation ([`MemPort::overflow`]).
    #[inline]
    #[must_use]
    fn push(&mut self, v: T) -> bool {
        if self.len() >= self.items.len() {
            return false;
        }
        if let Some(slot) = self.items.get_mut((self.tail & self.mask) as usize) {
            *slot = v;
        }
        self.tail = self.tail.wrapping_add(1);
        true
    }

    #[inline]
    fn pop(&mut self) -> Option<T> {
        if self.is_empty() {
            return None;
        }
        let v = self.items.get((self.head & self.mask) as usize).copied();
        self.head = self.head.wrapping_add(1);
        v
    }
}

/// The in-memory port.
#[derive(Debug)]
pub struct MemPort {
    mem: Vec<u8>,
    frame_size: usize,
    frame_shift: u32,
    ring_size: usize,
    owner: Vec<Owner>,
    free: Vec<u64>,
    fill: Ring<u64>,
    rx: Ring<Frame>,
    tx: Ring<Frame>,
    completion: Ring<u64>,
    violations: u64,
    first_violation: Option<String>,
    /// Packets [`MemPort::inject`] dropped because no fill frame was free or
    /// the RX ring was full (what a NIC counts as rx_missed).
    pub rx_dropped: u64,
    /// Calls to [`Port::wait`].
    pub waits: u64,
}

impl MemPort {
    /// A port with `cfg` sizes: the first `ring_size` frames on the fill ring,
    /// the rest in the free pool.
    pub fn new(cfg: Config) -> MemPort {
        let frames = cfg.frames.max(1);
        let frame_size = cfg.frame_size.max(64).next_power_of_two();
        let ring_size = cfg.ring_size.max(1);
        let mut p = MemPort {
            mem: vec![0; frames * frame_size],
            frame_size,
            frame_shift: frame_size.trailing_zeros(),
            ring_size,
            owner: vec![Owner::Free; frames],
            free: Vec::with_capacity(frames),
            fill: Ring::new(ring_size),
            rx: Ring::new(ring_size),
            tx: Ring::new(ring_size),
            completion: Ring::new(frames),
            violations: 0,
            first_violation: None,
            rx_dropped: 0,
            waits: 0,
        };
        for i in (0..frames).rev() {
            p.free.push((i * frame_size) as u64);
        }
        p.top_up_fill();
        p
    }

    fn violation(&mut self, what: String) {
        self.violations += 1;
        if self.first_violation.is_none() {
            self.first_violation = Some(what);
        }
    }

    #[inline]
    fn index(&self, addr: u64) -> Option<usize> {
        let a = usize::try_from(addr).ok()?;
        let i = a >> self.frame_shift;
        (a & (self.frame_size - 1) == 0 && i < self.owner.len()).then_some(i)
    }

    /// Moves `frame` from `from` to `to` if the caller-visible state allows.
    #[inline]
    fn transfer(&mut self, addr: u64, from: Owner, to: Owner, op: &str) -> bool {
        match self.index(addr) {
            Some(i) if self.owner[i] == from => {
                self.owner[i] = to;
                true
            }
            found => {
                self.misuse(addr, found, op);
                false
            }
        }
    }

    /// Records a ring that refused a frame its bound said it had room for:
    /// a bug in this port, reported by [`MemPort::check`] like a misuse.
    #[cold]
    #[inline(never)]
    fn overflow(&mut self, ring: &str) {
        self.violation(format!("{ring} ring overflow"));
    }

    /// Records a misuse of frame `addr` ([`MemPort::transfer`]'s cold path).
    #[cold]
    #[inline(never)]
    fn misuse(&mut self, addr: u64, index: Option<usize>, op: &str) {
        match index {
            Some(i) => {
                let o = self.owner[i];
                self.violation(format!("{op} of frame {addr:#x} owned by {o:?}"));
            }
            None => self.violation(format!("{op} of bad address {addr:#x}")),
        }
    }

    /// Gives frame `addr`, owned by `from`, back for receiving: to the fill
    /// ring while it has room, else to the free pool.
    #[inline]
    fn recycle(&mut self, addr: u64, from: Owner, op: &str) {
        if self.fill.len() < self.ring_size {
            if self.transfer(addr, from, Owner::Fill, op) && !self.fill.push(addr) {
                self.overflow("fill");
            }
        } else if self.transfer(addr, from, Owner::Free, op) {
            self.free.push(addr);
        }
    }

    fn top_up_fill(&mut self) {
        while self.fill.len() < self.ring_size {
            let Some(a) = self.free.pop() else { break };
            if let Some(i) = self.index(a) {
                self.owner[i] = Owner::Fill;
            }
            if !self.fill.push(a) {
                self.overflow("fill");
            }
        }
    }

    /// Test hook, the "kernel" receiving a packet: copies `packet` into a
    /// frame from the fill ring and queues it on the RX ring. Returns `false`
    /// (counting `rx_dropped`) when no fill frame is available or the RX ring
    /// is full. Packets longer than a frame are truncated to it.
    pub fn inject(&mut self, packet: &[u8]) -> bool {
        if self.rx.len() >= self.ring_size {
            self.rx_dropped += 1;
            return false;
        }
        let Some(addr) = self.fill.pop() else {
            self.rx_dropped += 1;
            return false;
        };
        let len = packet.len().min(self.frame_size);
        let start = addr as usize;
        self.mem[start..start + len].copy_from_slice(&packet[..len]);
        if let Some(i) = self.index(addr) {
            self.owner[i] = Owner::Rx;
        }
        if !self.rx.push(Frame {
            addr,
            len: len as u32,
        }) {
            self.overflow("rx");
        }
        true
    }

    /// Test hook, the "kernel" transmitting: hands each queued TX packet to
    /// `f`, then moves its frame to the completion ring. Returns how many.
    pub fn drain_tx(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let n = self.tx.len();
        while let Some(fr) = self.tx.pop() {
            let start = fr.addr as usize;
            f(&self.mem[start..start + fr.len as usize]);
            if let Some(i) = self.index(fr.addr) {
                self.owner[i] = Owner::Completion;
            }
            if !self.completion.push(fr.addr) {
                self.overflow("completion");
            }
        }
        n
    }

    /// [`MemPort::drain_tx`] into owned copies.
    pub fn take_tx(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(self.tx.len());
        self.drain_tx(|p| out.push(p.to_vec()));
        out
    }

    /// Frames waiting on the RX ring.
    pub fn rx_pending(&self) -> usize {
        self.rx.len()
    }

    /// Frames waiting on the TX ring.
    pub fn tx_pending(&self) -> usize {
        self.tx.len()
    }

    /// Counts frames by owner.
    pub fn accounting(&self) -> Accounting {
        let mut a = Accounting::default();
        for o in &self.owner {
            match o {
                Owner::Free => a.free += 1,
                Owner::Fill => a.fill += 1,
                Owner::Rx => a.rx += 1,
                Owner::Caller => a.caller += 1,
                Owner::Tx => a.tx += 1,
                Owner::Completion => a.completion += 1,
            }
        }
        a
    }

    /// Checks that every frame is accounted for: the per-frame owners agree
    /// with the ring contents, the caller holds none, and no misuse happened.
    pub fn check(&self) -> Result<(), Error> {
        let a = self.accounting();
        let rings = Accounting {
            free: self.free.len(),
            fill: self.fill.len(),
            rx: self.rx.len(),
            caller: a.caller,
            tx: self.tx.len(),
            completion: self.completion.len(),
        };
        if rings != a || a.total() != self.owner.len() || rings.total() != self.owner.len() {
            return Err(Error::Lost {
                accounted: rings.total(),
                frames: self.owner.len(),
                accounting: rings,
            });
        }
        if self.violations > 0 {
            return Err(Error::Violations {
                count: self.violations,
                first: self.first_violation.clone().unwrap_or_default(),
            });
        }
        if a.caller > 0 {
            return Err(Error::Held(a.caller));
        }
        Ok(())
    }

    #[inline]
    fn range(&self, frame: Frame, full: bool) -> std::ops::Range<usize> {
        match self.index(frame.addr) {
            Some(i) => {
                let start = i << self.frame_shift;
                let len = if full {
                    self.frame_size
                } else {
                    (frame.len as usize).min(self.frame_size)
                };
                start..start + len
            }
            None => 0..0,
        }
    }
}

impl Port for MemPort {
    #[inline]
    fn recv(&mut self, out: &mut [Frame]) -> usize {
        let n = out.len().min(self.rx.len());
        for slot in out.iter_mut().take(n) {
            if let Some(fr) = self.rx.pop() {
                if let Some(i) = self.index(fr.addr) {
                    self.owner[i] = Owner::Caller;
                }
                *slot = fr;
            }
        }
        n
    }

    #[inline]
    fn data(&self, frame: Frame) -> &[u8] {
        &self.mem[self.range(frame, false)]
    }

    #[inline]
    fn buffer_mut(&mut self, frame: Frame) -> &mut [u8] {
        let r = self.range(frame, true);
        &mut self.mem[r]
    }

    fn send(&mut self, frames: &[Frame]) -> usize {
        let room = self.ring_size.saturating_sub(self.tx.len());
        let mut taken = 0;
        for fr in frames.iter().take(room) {
            if !self.transfer(fr.addr, Owner::Caller, Owner::Tx, "send") {
                break;
            }
            let len = (fr.len as usize).min(self.frame_size) as u32;
            if !self.tx.push(Frame { addr: fr.addr, len }) {
                self.overflow("tx");
            }
            taken += 1;
        }
        taken
    }

    fn release(&mut self, frames: &[Frame]) {
        for fr in frames {
            self.recycle(fr.addr, Owner::Caller, "release");
        }
    }

    fn reclaim(&mut self) -> usize {
        let n = self.completion.len();
        // Straight back to the fill ring while it has room (as an AF_XDP
        // user recycles completions), the rest to the free pool.
        while let Some(a) = self.completion.pop() {
            self.recycle(a, Owner::Completion, "reclaim");
        }
        if !self.free.is_empty() {
            self.top_up_fill();
        }
        n
    }

    fn alloc(&mut self) -> Option<Frame> {
        let a = self.free.pop()?;
        if let Some(i) = self.index(a) {
            self.owner[i] = Owner::Caller;
        }
        Some(Frame { addr: a, len: 0 })
    }

    fn frame_capacity(&self) -> usize {
        self.frame_size
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Nothing can arrive while a single-threaded test waits, so this does
    /// not sleep: it counts the call and reports whether RX holds frames.
    fn wait(&mut self, _timeout: Duration) -> io::Result<bool> {
        self.waits += 1;
        Ok(!self.rx.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> MemPort {
        MemPort::new(Config {
            frames: 8,
            frame_size: 128,
            ring_size: 4,
        })
    }

    #[test]
    fn rings_move_frames_and_account() {
        let mut p = small();
        assert_eq!(
            p.accounting(),
            Accounting {
                free: 4,
                fill: 4,
                ..Accounting::default()
            }
        );
        assert!(p.check().is_ok());
        for i in 0..5u8 {
            let ok = p.inject(&[i; 60]);
            assert_eq!(ok, i < 4, "fill ring has 4 frames");
        }
        assert_eq!(p.rx_dropped, 1);
        let mut got = [Frame::default(); 8];
        let n = p.recv(&mut got);
        assert_eq!(n, 4);
        assert_eq!(p.data(got[2]), &[2u8; 60][..]);
        assert_eq!(p.check(), Err(Error::Held(4)));
        p.buffer_mut(got[0])[0] = 0xaa;
        assert_eq!(p.send(&got[..2]), 2);
        p.release(&got[2..4]);
        let sent = p.take_tx();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0][0], 0xaa);
        assert_eq!(p.reclaim(), 2);
        assert!(p.check().is_ok());
        let f = p.alloc().unwrap();
        assert_eq!(p.buffer_mut(f).len(), 128);
        p.release(&[f]);
        assert!(p.check().is_ok());
    }

    #[test]
    fn misuse_is_recorded() {
        let mut p = small();
        p.release(&[Frame { addr: 0, len: 0 }]);
        assert!(matches!(p.check(), Err(Error::Violations { count: 1, .. })));
        let mut q = small();
        assert_eq!(q.send(&[Frame { addr: 3, len: 1 }]), 0);
        assert!(matches!(q.check(), Err(Error::Violations { .. })));
        assert!(
            q.data(Frame {
                addr: 1 << 40,
                len: 5
            })
            .is_empty()
        );
    }

    proptest::proptest! {
        /// Whatever a correct caller does, in any order, every frame stays
        /// accounted for and the rings never lose or duplicate one.
        #[test]
        fn any_correct_use_keeps_every_frame(
            ops in proptest::collection::vec((0u8..7, 0usize..6), 1..300),
        ) {
            let mut p = MemPort::new(Config { frames: 12, frame_size: 128, ring_size: 4 });
            let mut held: Vec<Frame> = Vec::new();
            let mut sent = 0usize;
            let mut drained = 0usize;
            let mut queued = std::collections::VecDeque::new();
            for (op, k) in ops {
                match op {
                    0 => {
                        if p.inject(&vec![k as u8; 20 + k]) {
                            queued.push_back(k);
                        }
                    }
                    1 => {
                        let mut got = [Frame::default(); 6];
                        let n = p.recv(&mut got[..k]);
                        for f in &got[..n] {
                            // First in, first out, with the bytes injected.
                            let want = queued.pop_front().map(|k| vec![k as u8; 20 + k]);
                            proptest::prop_assert_eq!(Some(p.data(*f).to_vec()), want);
                        }
                        held.extend_from_slice(&got[..n]);
                    }
                    2 => {
                        let k = k.min(held.len());
                        let n = p.send(&held[..k]);
                        sent += n;
                        held.drain(..n);
                    }
                    3 => {
                        let k = k.min(held.len());
                        p.release(&held[..k]);
                        held.drain(..k);
                    }
                    4 => drained += p.drain_tx(|_| {}),
                    5 => {
                        let _ = p.reclaim();
                    }
                    _ => held.extend(p.alloc()),
                }
                let a = p.accounting();
                proptest::prop_assert_eq!(a.total(), 12);
                proptest::prop_assert_eq!(a.caller, held.len());
                proptest::prop_assert!(drained <= sent);
            }
            p.release(&held);
            p.drain_tx(|_| {});
            p.reclaim();
            proptest::prop_assert_eq!(p.check(), Ok(()));
        }
    }

    #[test]
    fn tx_ring_bound() {
        let mut p = small();
        let frames: Vec<Frame> = (0..4).filter_map(|_| p.alloc()).collect();
        assert_eq!(frames.len(), 4);
        assert!(p.alloc().is_none());
        assert_eq!(p.send(&frames[..3]), 3);
        assert_eq!(p.send(&frames[3..]), 1);
        assert_eq!(p.tx_pending(), 4);
        p.drain_tx(|_| {});
        p.reclaim();
        assert!(p.check().is_ok());
    }
}
