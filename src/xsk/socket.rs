//! One AF_XDP socket with its own UMEM, as a [`Port`].
//!
//! Each socket owns its UMEM (no sharing between queues): a worker owns its
//! socket outright, frames never cross workers, and the fill and completion
//! rings need no locking.
//!
//! Frame accounting: every UMEM frame is in exactly one [`FrameState`] —
//! free (our free list), `KernelRx` (fill ring, or received and waiting in
//! the RX ring), `KernelTx` (TX ring or completion ring) or `User` (handed
//! to the caller by `recv`/`alloc`). Each transition is checked against the
//! frame's current state, so a double release or a send of a frame the
//! caller does not own is refused and counted instead of corrupting the
//! rings. [`Socket::accounting`] exposes the counts.

use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};
use std::ptr::NonNull;
use std::time::Duration;

use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig as XskSocketConfig,
    UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, TxQueue, Umem};

use super::{Error, sys};
use crate::dataplane::port::{Frame, Port};

/// How to bind the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// Zero-copy, falling back to copy mode.
    Auto,
    /// Zero-copy only (needs driver support: i40e, ice, mlx5; not veth).
    ZeroCopy,
    /// Copy mode only.
    Copy,
}

impl BindMode {
    fn as_str(self) -> &'static str {
        match self {
            BindMode::Auto => "auto",
            BindMode::ZeroCopy => "zero-copy",
            BindMode::Copy => "copy",
        }
    }
}

/// The mode a socket ended up bound in, as the kernel reports it
/// (`XDP_OPTIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Zero-copy.
    ZeroCopy,
    /// Copy.
    Copy,
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bound::ZeroCopy => "zero-copy",
            Bound::Copy => "copy",
        })
    }
}

/// Settings of one socket and its UMEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketConfig {
    /// UMEM frames (a power of two). The fill and completion rings get this
    /// many slots, so giving frames back never fails.
    pub frame_count: u32,
    /// Bytes per frame: 2048 or 4096.
    pub frame_size: u32,
    /// RX ring slots (a power of two).
    pub rx_size: u32,
    /// TX ring slots (a power of two).
    pub tx_size: u32,
    /// Frames kept on the free list for [`Port::alloc`] (control-plane
    /// frames); the rest feed the fill ring.
    pub alloc_reserve: u32,
    /// Bind mode.
    pub mode: BindMode,
    /// Ask for `XDP_USE_NEED_WAKEUP`: the kernel is kicked only when a ring's
    /// flag asks for it.
    pub need_wakeup: bool,
    /// Preferred busy polling (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`,
    /// `SO_BUSY_POLL_BUDGET`): the worker's own empty polls drive the NIC's
    /// NAPI instead of its interrupts. `None` leaves the socket as it is.
    pub busy_poll: Option<BusyPoll>,
}

/// Preferred busy-polling settings of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPoll {
    /// `SO_BUSY_POLL`: microseconds to busy-poll per call.
    pub usecs: u32,
    /// `SO_BUSY_POLL_BUDGET`: packets per NAPI poll.
    pub budget: u32,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            frame_count: 4096,
            frame_size: 2048,
            rx_size: 2048,
            tx_size: 2048,
            alloc_reserve: 128,
            mode: BindMode::Auto,
            need_wakeup: true,
            busy_poll: None,
        }
    }
}

impl SocketConfig {
    fn validate(&self) -> Result<(), Error> {
        let pow2 = |name: &str, v: u32| {
            if v.is_power_of_two() {
                Ok(())
            } else {
                Err(Error::Config(format!(
                    "{name} = {v}: must be a power of two"
                )))
            }
        };
        pow2("frame_count", self.frame_count)?;
        pow2("rx_size", self.rx_size)?;
        pow2("tx_size", self.tx_size)?;
        if self.frame_size != 2048 && self.frame_size != 4096 {
            return Err(Error::Config(format!(
                "frame_size = {}: must be 2048 or 4096",
                self.frame_size
            )));
        }
        if self.alloc_reserve >= self.frame_count {
            return Err(Error::Config(format!(
                "alloc_reserve = {}: must be below frame_count ({})",
                self.alloc_reserve, self.frame_count
            )));
        }
        Ok(())
    }
}

/// Where a frame is (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum FrameState {
    Free = 0,
    KernelRx = 1,
    KernelTx = 2,
    User = 3,
}

/// How the socket's frames are spread over the states. The four counts
/// always add up to `total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accounting {
    /// UMEM frames.
    pub total: u32,
    /// On the free list.
    pub free: u32,
    /// In the fill ring or received and waiting in the RX ring.
    pub kernel_rx: u32,
    /// In the TX ring or waiting in the completion ring.
    pub kernel_tx: u32,
    /// Held by the caller.
    pub user: u32,
}

/// The socket's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Frames received.
    pub rx_frames: u64,
    /// Frames queued for transmission.
    pub tx_frames: u64,
    /// Frames reaped from the completion ring.
    pub tx_completed: u64,
    /// TX kicks (`sendto`) made because the ring asked for one.
    pub tx_kicks: u64,
    /// Fill-ring kicks (`poll`) made because the ring asked for one.
    pub fill_kicks: u64,
    /// `send` stopped at a frame the caller did not own or that did not fit.
    pub send_refused: u64,
    /// `release` ignored a frame the caller did not own.
    pub release_refused: u64,
    /// The kernel returned a frame that was not in the expected state.
    pub ring_unexpected: u64,
}

/// An AF_XDP socket on one queue of one interface, with its own UMEM.
pub struct Socket {
    ifname: String,
    queue: u32,
    bound: Bound,
    need_wakeup: bool,
    /// Why zero-copy was refused when `BindMode::Auto` fell back to copy.
    zerocopy_refused: Option<String>,
    /// Preferred busy polling is on: empty polls call `recvfrom`.
    busy_poll: bool,
    /// Why the busy-poll options were refused, if they were.
    busy_poll_refused: Option<String>,
    // Field order is drop order: the rings hold the xsk socket, which must
    // go before the UMEM (`umem` also keeps the mapping behind `base` alive).
    rx: RxQueue,
    tx: TxQueue,
    fq: FillQueue,
    cq: CompQueue,
    umem: Umem,
    base: NonNull<u8>,
    area_len: usize,
    frame_size: usize,
    mtu: usize,
    tx_size: u32,
    reserve: usize,
    descs: Vec<FrameDesc>,
    state: Vec<FrameState>,
    counts: [u32; 4],
    free: Vec<u32>,
    scratch: Vec<FrameDesc>,
    stats: SocketStats,
}

// SAFETY: `base` points into the UMEM mapping owned by `umem`, which moves
// with the socket; every other field is Send. A `Socket` is used by one
// thread at a time (all ring operations take `&mut self`).
unsafe impl Send for Socket {}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("ifname", &self.ifname)
            .field("queue", &self.queue)
            .field("bound", &self.bound)
            .field("accounting", &self.accounting())
            .finish()
    }
}

impl Socket {
    /// Creates a socket on `(ifname, queue)` with its own UMEM, binding it
    /// as `config.mode` asks. It does not load any XDP program
    /// (`XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD`): put it into the filter's
    /// XSKMAP with [`super::Filter::add_socket`].
    pub fn open(ifname: &str, queue: u32, config: &SocketConfig) -> Result<Socket, Error> {
        config.validate()?;
        sys::ifindex(ifname)?;
        let modes: &[BindMode] = match config.mode {
            BindMode::Auto => &[BindMode::ZeroCopy, BindMode::Copy],
            BindMode::ZeroCopy => &[BindMode::ZeroCopy],
            BindMode::Copy => &[BindMode::Copy],
        };
        let mut last: Option<Error> = None;
        for &mode in modes {
            match Socket::open_mode(ifname, queue, config, mode) {
                Ok(mut s) => {
                    if config.mode == BindMode::Auto {
                        s.zerocopy_refused = last.as_ref().map(|e| super::chain(e));
                    }
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Config("no bind mode to try".into())))
    }

    fn open_mode(
        ifname: &str,
        queue: u32,
        config: &SocketConfig,
        mode: BindMode,
    ) -> Result<Socket, Error> {
        let umem_err = |reason: String| Error::Umem {
            ifname: ifname.to_owned(),
            queue,
            reason,
        };
        let sock_err = |reason: String| Error::Socket {
            ifname: ifname.to_owned(),
            queue,
            mode: mode.as_str(),
            reason,
        };
        let qs = |v: u32| QueueSize::new(v).map_err(|e| Error::Config(e.to_string()));
        let frame_count = NonZeroU32::new(config.frame_count)
            .ok_or_else(|| Error::Config("frame_count = 0: must be positive".into()))?;
        let umem_config = UmemConfig::builder()
            .frame_size(
                FrameSize::new(config.frame_size).map_err(|e| Error::Config(e.to_string()))?,
            )
            .fill_queue_size(qs(config.frame_count)?)
            .comp_queue_size(qs(config.frame_count)?)
            .frame_headroom(0)
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        let (umem, descs) =
            Umem::new(umem_config, frame_count, false).map_err(|e| umem_err(super::chain(&e)))?;

        let mut bind = match mode {
            BindMode::ZeroCopy => BindFlags::XDP_ZEROCOPY,
            _ => BindFlags::XDP_COPY,
        };
        if config.need_wakeup {
            bind |= BindFlags::XDP_USE_NEED_WAKEUP;
        }
        let sock_config = XskSocketConfig::builder()
            .rx_queue_size(qs(config.rx_size)?)
            .tx_queue_size(qs(config.tx_size)?)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(bind)
            .build();
        let iface: Interface = ifname
            .parse()
            .map_err(|_| Error::BadInterfaceName(ifname.to_owned()))?;
        // SAFETY: the UMEM is fresh and used by this socket only, and the
        // inhibit flag is set, which is all `Socket::new` requires.
        let (tx, rx, rings) = unsafe { xsk_rs::Socket::new(sock_config, &umem, &iface, queue) }
            .map_err(|e| sock_err(super::chain(&e)))?;
        let (fq, cq) = rings.ok_or_else(|| {
            sock_err("the UMEM's fill and completion rings were already taken".into())
        })?;

        let frame_size = config.frame_size as usize;
        let area_len = frame_size * config.frame_count as usize;
        // xsk-rs does not expose the UMEM base address. The data view of a
        // default descriptor (address 0) starts at the base of the mapping.
        let mut zero = FrameDesc::default();
        // SAFETY: the descriptor is not in any ring and nothing else
        // accesses frame 0 yet; we only take the start address of the view.
        let mut view = unsafe { umem.data_mut(&mut zero) };
        view.cursor().set_pos(frame_size);
        let base = NonNull::new(view.contents_mut().as_mut_ptr())
            .ok_or_else(|| umem_err("the UMEM mapping is null".into()))?;

        let bound = match query_zerocopy(rx.fd().as_raw_fd()) {
            Ok(true) => Bound::ZeroCopy,
            Ok(false) => Bound::Copy,
            Err(e) => return Err(sock_err(format!("getsockopt(XDP_OPTIONS): {e}"))),
        };
        let busy_poll_refused = config
            .busy_poll
            .and_then(|b| set_busy_poll(rx.fd().as_raw_fd(), b).err())
            .map(|e| e.to_string());
        let n = config.frame_count as usize;
        let mut this = Socket {
            ifname: ifname.to_owned(),
            queue,
            bound,
            need_wakeup: config.need_wakeup,
            zerocopy_refused: None,
            busy_poll: config.busy_poll.is_some() && busy_poll_refused.is_none(),
            busy_poll_refused,
            rx,
            tx,
            fq,
            cq,
            umem,
            base,
            area_len,
            frame_size,
            mtu: umem_config.mtu() as usize,
            tx_size: config.tx_size,
            reserve: config.alloc_reserve as usize,
            descs,
            state: vec![FrameState::Free; n],
            counts: [config.frame_count, 0, 0, 0],
            free: (0..config.frame_count).rev().collect(),
            scratch: vec![FrameDesc::default(); n],
            stats: SocketStats::default(),
        };
        this.refill();
        Ok(this)
    }

    /// The interface.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The queue index.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The mode the kernel bound the socket in.
    pub fn bound(&self) -> Bound {
        self.bound
    }

    /// Whether the socket was bound with `XDP_USE_NEED_WAKEUP`.
    pub fn need_wakeup(&self) -> bool {
        self.need_wakeup
    }

    /// Why zero-copy was refused, when `BindMode::Auto` fell back to copy.
    pub fn zerocopy_refused(&self) -> Option<&str> {
        self.zerocopy_refused.as_deref()
    }

    /// Whether preferred busy polling is on, or why the kernel refused it.
    pub fn busy_poll(&self) -> Result<bool, &str> {
        match &self.busy_poll_refused {
            Some(e) => Err(e),
            None => Ok(self.busy_poll),
        }
    }

    /// The socket's file descriptor (for the XSKMAP and for `poll`).
    pub fn raw_fd(&self) -> RawFd {
        self.rx.fd().as_raw_fd()
    }

    /// Where every frame is.
    pub fn accounting(&self) -> Accounting {
        Accounting {
            total: self.state.len() as u32,
            free: self.counts[FrameState::Free as usize],
            kernel_rx: self.counts[FrameState::KernelRx as usize],
            kernel_tx: self.counts[FrameState::KernelTx as usize],
            user: self.counts[FrameState::User as usize],
        }
    }

    /// The socket's counters.
    pub fn stats(&self) -> SocketStats {
        self.stats
    }

    /// The kernel's counters for this socket (`XDP_STATISTICS`):
    /// `(rx_dropped, rx_ring_full, rx_fill_ring_empty, tx_ring_empty)`.
    pub fn kernel_stats(&self) -> io::Result<(u64, u64, u64, u64)> {
        let s = self.rx.fd().xdp_statistics()?;
        Ok((
            s.rx_dropped(),
            s.rx_ring_full(),
            s.rx_fill_ring_empty_descs(),
            s.tx_ring_empty_descs(),
        ))
    }

    fn index(&self, addr: u64) -> Option<usize> {
        let addr = usize::try_from(addr).ok()?;
        if addr >= self.area_len {
            return None;
        }
        Some(addr / self.frame_size)
    }

    /// The frame index of a caller-owned frame the port handed out.
    fn owned(&self, frame: Frame) -> Option<usize> {
        let idx = self.index(frame.addr)?;
        let ok = self.state[idx] == FrameState::User && self.descs[idx].addr() as u64 == frame.addr;
        ok.then_some(idx)
    }

    fn set_state(&mut self, idx: usize, to: FrameState) {
        let from = self.state[idx];
        self.counts[from as usize] -= 1;
        self.counts[to as usize] += 1;
        self.state[idx] = to;
    }

    /// Moves free frames beyond the alloc reserve into the fill ring.
    fn refill(&mut self) {
        let spare = self.free.len().saturating_sub(self.reserve);
        if spare == 0 {
            return;
        }
        let start = self.free.len() - spare;
        for (slot, &idx) in self.scratch.iter_mut().zip(&self.free[start..]) {
            *slot = self.descs[idx as usize];
        }
        // SAFETY: the descriptors are free frames of this socket's UMEM,
        // in no ring and not held by the caller.
        let n = unsafe { self.fq.produce(&self.scratch[..spare]) };
        if n == 0 {
            return; // the ring is full; they stay free
        }
        for i in start..start + n {
            let idx = self.free[i] as usize;
            self.set_state(idx, FrameState::KernelRx);
        }
        self.free.truncate(start);
    }

    /// The byte range of a caller-owned frame's data, at most `len` bytes
    /// and never past the end of its UMEM chunk; `None` for a frame the
    /// caller does not own.
    fn range(&self, frame: Frame, len: usize) -> Option<(usize, usize)> {
        let idx = self.owned(frame)?;
        let start = usize::try_from(frame.addr).ok()?;
        let end = (idx + 1) * self.frame_size;
        Some((start, len.min(end - start)))
    }
}

/// `SO_PREFER_BUSY_POLL` and `SO_BUSY_POLL_BUDGET` (asm-generic/socket.h,
/// Linux 5.11); libc may not name them yet.
const SO_PREFER_BUSY_POLL: libc::c_int = 69;
const SO_BUSY_POLL_BUDGET: libc::c_int = 70;

/// Turns on preferred busy polling (the kernel's AF_XDP busy-poll recipe).
fn set_busy_poll(fd: RawFd, b: BusyPoll) -> io::Result<()> {
    let set = |opt: libc::c_int, name: &str, v: u32| -> io::Result<()> {
        let v = v as libc::c_int;
        // SAFETY: `v` is a valid int for the duration of the call, and its
        // size is passed; the kernel only reads it.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&raw const v).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("setsockopt({name}): {e}")));
        }
        Ok(())
    };
    set(SO_PREFER_BUSY_POLL, "SO_PREFER_BUSY_POLL", 1)?;
    set(libc::SO_BUSY_POLL, "SO_BUSY_POLL", b.usecs)?;
    set(SO_BUSY_POLL_BUDGET, "SO_BUSY_POLL_BUDGET", b.budget)
}

/// Asks the kernel whether the socket is bound in zero-copy mode.
fn query_zerocopy(fd: RawFd) -> io::Result<bool> {
    let mut flags: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `flags` is a valid u32 (struct xdp_options) and `len` its size;
    // the kernel writes at most `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libxdp_sys::XDP_OPTIONS as i32,
            (&raw mut flags).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags & libxdp_sys::XDP_OPTIONS_ZEROCOPY != 0)
}

impl Port for Socket {
    fn recv(&mut self, out: &mut [Frame]) -> usize {
        let want = out.len().min(self.scratch.len());
        // SAFETY: the scratch descriptors are plain output slots; the RX
        // ring only holds frames of this socket's UMEM.
        let got = unsafe { self.rx.consume(&mut self.scratch[..want]) };
        let mut k = 0;
        for i in 0..got {
            let d = self.scratch[i];
            let Some(idx) = self.index(d.addr() as u64) else {
                self.stats.ring_unexpected += 1;
                continue;
            };
            if self.state[idx] != FrameState::KernelRx {
                self.stats.ring_unexpected += 1;
            }
            self.set_state(idx, FrameState::User);
            self.descs[idx] = d;
            out[k] = Frame {
                addr: d.addr() as u64,
                len: d.lengths().data() as u32,
            };
            k += 1;
        }
        self.stats.rx_frames += k as u64;
        if got == 0 && self.busy_poll {
            // With preferred busy polling the application's syscalls drive
            // the NAPI: an empty recvfrom runs it (xsk_recvmsg busy-loops).
            self.stats.fill_kicks += 1;
            // SAFETY: a zero-length, non-blocking recvfrom with no buffer
            // and no address; the kernel writes nothing.
            let _ = unsafe {
                libc::recvfrom(
                    self.raw_fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
        } else if got == 0 && self.need_wakeup && self.fq.needs_wakeup() {
            // The driver sleeps until told the fill ring has frames.
            self.stats.fill_kicks += 1;
            let _ = self.fq.wakeup(self.rx.fd_mut(), 0);
        }
        k
    }

    fn data(&self, frame: Frame) -> &[u8] {
        let Some((start, len)) = self.range(frame, frame.len as usize) else {
            return &[];
        };
        // SAFETY: `start + len` lies inside one frame of the UMEM mapping,
        // which lives as long as `self` (`umem`). `range` checked that the
        // caller owns the frame, so it is in no ring and the kernel does not
        // write it; `&self` rules out a `buffer_mut` view at the same time.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(start), len) }
    }

    fn buffer_mut(&mut self, frame: Frame) -> &mut [u8] {
        let Some((start, len)) = self.range(frame, usize::MAX) else {
            return &mut [];
        };
        // SAFETY: as in `data`; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr().add(start), len) }
    }

    fn send(&mut self, frames: &[Frame]) -> usize {
        let room = self.tx.nb_free(frames.len() as u32) as usize;
        let want = frames.len().min(room);
        let mut k = 0;
        for f in &frames[..want] {
            let Some(idx) = self.owned(*f) else {
                self.stats.send_refused += 1;
                break;
            };
            let mut d = self.descs[idx];
            {
                // SAFETY: the caller owns this frame, so it is in no ring;
                // we only set the descriptor's length.
                let mut view = unsafe { self.umem.data_mut(&mut d) };
                let mut cur = view.cursor();
                cur.set_pos(f.len as usize);
                if cur.pos() != f.len as usize {
                    self.stats.send_refused += 1;
                    break;
                }
            }
            self.scratch[k] = d;
            k += 1;
        }
        if k == 0 {
            return 0;
        }
        // SAFETY: the descriptors are caller-owned frames of this UMEM, in
        // no other ring; the ring has room for all `k` (checked above).
        let n = unsafe { self.tx.produce(&self.scratch[..k]) };
        for i in 0..n {
            let d = self.scratch[i];
            let idx = d.addr() / self.frame_size;
            self.descs[idx] = d;
            self.set_state(idx, FrameState::KernelTx);
        }
        self.stats.tx_frames += n as u64;
        n
    }

    fn release(&mut self, frames: &[Frame]) {
        // libxdp reserves ring slots all-or-nothing, and the fill ring has a
        // slot per UMEM frame, so the produce below takes all `k` frames.
        let mut k = 0;
        for f in frames {
            let Some(idx) = self.owned(*f) else {
                self.stats.release_refused += 1;
                continue;
            };
            self.scratch[k] = self.descs[idx];
            // Mark now so a frame listed twice is refused the second time.
            self.set_state(idx, FrameState::KernelRx);
            k += 1;
        }
        // SAFETY: the descriptors were caller-owned frames of this UMEM.
        let n = unsafe { self.fq.produce(&self.scratch[..k]) };
        if n < k {
            // Cannot happen (the fill ring has a slot per frame); keep them.
            for i in 0..k {
                let idx = self.scratch[i].addr() / self.frame_size;
                self.set_state(idx, FrameState::Free);
                self.free.push(idx as u32);
            }
        }
    }

    fn reclaim(&mut self) -> usize {
        // SAFETY: plain output slots; the completion ring holds frames of
        // this UMEM that we sent.
        let got = unsafe { self.cq.consume(&mut self.scratch[..]) };
        for i in 0..got {
            let addr = self.scratch[i].addr() as u64;
            let Some(idx) = self.index(addr) else {
                self.stats.ring_unexpected += 1;
                continue;
            };
            if self.state[idx] != FrameState::KernelTx {
                self.stats.ring_unexpected += 1;
                continue;
            }
            self.set_state(idx, FrameState::Free);
            self.free.push(idx as u32);
        }
        self.stats.tx_completed += got as u64;
        self.refill();
        got
    }

    fn alloc(&mut self) -> Option<Frame> {
        if self.free.is_empty() {
            self.reclaim();
        }
        let idx = self.free.pop()? as usize;
        self.set_state(idx, FrameState::User);
        Some(Frame {
            addr: self.descs[idx].addr() as u64,
            len: 0,
        })
    }

    fn frame_capacity(&self) -> usize {
        self.mtu
    }

    fn flush(&mut self) -> io::Result<()> {
        // In copy mode one kick transmits a bounded batch (32 frames on
        // current kernels), so kick until the ring drains or stops moving.
        let mut pending = self.tx_size - self.tx.nb_free_exact();
        while pending > 0 && (!self.need_wakeup || self.tx.needs_wakeup()) {
            self.stats.tx_kicks += 1;
            self.tx.wakeup()?;
            let now = self.tx_size - self.tx.nb_free_exact();
            if now >= pending {
                break;
            }
            pending = now;
        }
        Ok(())
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<bool> {
        if self.rx.nb_avail(1) > 0 {
            return Ok(true);
        }
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
        self.rx.poll(ms)
    }
}
