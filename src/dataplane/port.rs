//! The I/O boundary of a worker. Two implementations exist: the AF_XDP socket
//! in `crate::xsk` and the in-memory rings used by tests and benchmarks.
//!
//! Ownership rules (they mirror the AF_XDP rings, so that frame accounting
//! can be tested without a NIC): every frame is owned either by the port
//! (fill ring, kernel RX, TX in flight, free list) or by the caller. A frame
//! returned by [`Port::recv`] or [`Port::alloc`] belongs to the caller until
//! it is handed back with [`Port::send`] or [`Port::release`]. Frames the
//! port did not accept in `send` still belong to the caller.

use std::io;
use std::time::Duration;

/// A frame handle: an address in the port's frame memory (an offset into the
/// UMEM for AF_XDP) and the length of the packet in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Frame {
    /// Start of the frame in the port's memory.
    pub addr: u64,
    /// Bytes of packet data.
    pub len: u32,
}

/// A batch-oriented packet port.
pub trait Port {
    /// Moves up to `out.len()` received frames into `out` and returns how many.
    /// Never blocks.
    fn recv(&mut self, out: &mut [Frame]) -> usize;

    /// The packet bytes of a caller-owned frame (`frame.len` bytes).
    fn data(&self, frame: Frame) -> &[u8];

    /// The whole buffer of a caller-owned frame (its full capacity), to rewrite
    /// or build a packet in place; set `frame.len` afterwards.
    fn buffer_mut(&mut self, frame: Frame) -> &mut [u8];

    /// Queues frames for transmission and returns how many (a prefix of
    /// `frames`) were taken. The rest still belong to the caller.
    fn send(&mut self, frames: &[Frame]) -> usize;

    /// Gives frames back to the receive side (the fill ring).
    fn release(&mut self, frames: &[Frame]);

    /// Reaps finished transmissions so that their frames can be reused, and
    /// returns how many were reaped.
    fn reclaim(&mut self) -> usize;

    /// Takes a free frame to build a locally originated packet in
    /// (control-plane adverts, GARPs, heartbeats). `None` when none is free.
    fn alloc(&mut self) -> Option<Frame>;

    /// The capacity of one frame buffer in bytes.
    fn frame_capacity(&self) -> usize;

    /// Makes queued transmissions go out. For AF_XDP this kicks the kernel
    /// only when the TX ring's need_wakeup flag asks for it.
    fn flush(&mut self) -> io::Result<()>;

    /// Waits up to `timeout` for a frame to become receivable (the `adaptive`
    /// polling mode sleeps here). Returns whether the port became readable.
    fn wait(&mut self, timeout: Duration) -> io::Result<bool>;
}
