//! Loading the XDP programs of `src/bpf/` and updating the filter's maps.
//!
//! Loading goes through libxdp (`xdp_program__from_bpf_obj` +
//! `xdp_program__attach`): with bpffs mounted ([`super::ensure_bpffs`]) it
//! attaches through libxdp's multi-program dispatcher, so our filter
//! coexists with other libxdp-managed XDP programs on the interface; without
//! bpffs libxdp attaches the program alone. Native (driver) mode is tried
//! first and generic (SKB) mode second when [`AttachMode::Auto`] is asked for;
//! [`Filter::mode`] says which one took, and the caller logs it.

use std::collections::BTreeSet;
use std::ffi::{CStr, c_void};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::Mutex;

use libxdp_sys as xdp;

use super::socket::Socket;
use super::sys;
use super::{Error, ensure_bpffs};

/// 8-byte alignment for the embedded ELF objects (libelf reads them in place).
#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);

static FILTER_OBJECT: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/filter.bpf.o")));
static PASS_OBJECT: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/pass.bpf.o")));

/// The filter program's name, by which a leftover copy is recognised.
pub const FILTER_PROGRAM: &str = "proxyha_filter";
/// The pass-everything program's name.
pub const PASS_PROGRAM: &str = "proxyha_pass";

/// Config flag: this node is the Active Director. Steers VIP traffic sent to
/// the virtual MAC and ARP requests for a VIP into the sockets. A backup
/// director or a scanning node clears it, so the kernel sees those frames.
pub const FLAG_ACTIVE: u8 = 0x01;
/// Config flag: steer VRRP (IP protocol 112) adverts for our VRID.
pub const FLAG_VRRP: u8 = 0x02;
/// Config flag: steer heartbeats (IP protocol 253).
pub const FLAG_HEARTBEAT: u8 = 0x04;

const MAP_XSKS: &CStr = c"proxyha_xsks";
const MAP_CONFIG: &CStr = c"proxyha_config";
const MAP_VIPS: &CStr = c"proxyha_vips";
const MAP_PORTS: &CStr = c"proxyha_ports";
const MAP_STATS: &CStr = c"proxyha_stats";

/// Words in one protocol's port bitmap (65536 bits).
const PORT_WORDS: usize = 1024;
/// Entries in the per-CPU stats array (`STAT_COUNT` in filter.bpf.c).
const STAT_COUNT: u32 = 8;

/// Where to run the XDP program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to generic mode.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode only.
    Generic,
}

impl AttachMode {
    fn attempts(self) -> &'static [(xdp::xdp_attach_mode, AttachMode)] {
        const NATIVE: (xdp::xdp_attach_mode, AttachMode) =
            (xdp::xdp_attach_mode_XDP_MODE_NATIVE, AttachMode::Native);
        const GENERIC: (xdp::xdp_attach_mode, AttachMode) =
            (xdp::xdp_attach_mode_XDP_MODE_SKB, AttachMode::Generic);
        match self {
            AttachMode::Auto => &[NATIVE, GENERIC],
            AttachMode::Native => &[NATIVE],
            AttachMode::Generic => &[GENERIC],
        }
    }

    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AttachMode::Auto => "auto",
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
        }
    }
}

impl std::fmt::Display for AttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The filter's config entry (`struct filter_config` in filter.bpf.c).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterConfig {
    /// The VRRP virtual MAC, `00:00:5e:00:01:{vrid}`.
    pub vmac: [u8; 6],
    /// Our VRID.
    pub vrid: u8,
    /// [`FLAG_ACTIVE`] | [`FLAG_VRRP`] | [`FLAG_HEARTBEAT`].
    pub flags: u8,
}

impl FilterConfig {
    /// The config of a director for `vrid`, with the RFC 5798 virtual MAC.
    pub fn director(vrid: u8, active: bool) -> FilterConfig {
        FilterConfig {
            vmac: [0x00, 0x00, 0x5e, 0x00, 0x01, vrid],
            vrid,
            flags: FLAG_VRRP | FLAG_HEARTBEAT | if active { FLAG_ACTIVE } else { 0 },
        }
    }

    fn to_bytes(self) -> [u8; 8] {
        let m = self.vmac;
        [m[0], m[1], m[2], m[3], m[4], m[5], self.vrid, self.flags]
    }
}

/// A layer-4 protocol of a port redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// What the filter did with one frame ([`Filter::verdict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `XDP_PASS`: to the kernel.
    Pass,
    /// `XDP_REDIRECT` into the XSKMAP: to the AF_XDP socket.
    ToSocket,
    /// Any other action (a bug: the filter never drops or aborts).
    Other(u32),
}

/// The filter's counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FilterStats {
    /// Frames the program saw.
    pub rx_frames: u64,
    /// VIP traffic steered to a socket.
    pub to_xsk_vip: u64,
    /// ARP requests for a VIP steered to a socket.
    pub to_xsk_arp: u64,
    /// VRRP adverts steered to a socket.
    pub to_xsk_vrrp: u64,
    /// Heartbeats steered to a socket.
    pub to_xsk_heartbeat: u64,
    /// Frames passed to the kernel (including `no_socket` ones).
    pub passed: u64,
    /// Frames that qualified but found no socket on their queue.
    pub no_socket: u64,
}

/// A program from an embedded object, attached to one interface.
struct Attached {
    prog: NonNull<xdp::xdp_program>,
    obj: NonNull<xdp::bpf_object>,
    ifindex: i32,
    ifname: String,
    mode: AttachMode,
    attach_mode: xdp::xdp_attach_mode,
    attached: bool,
}

// SAFETY: the libxdp/libbpf objects behind the pointers are owned exclusively
// by this struct; they are only used in `open` and in `detach`/`drop`, which
// take `&mut self`, so moving the owner to another thread is sound.
unsafe impl Send for Attached {}
// SAFETY: the only `&self` use of the pointers is `xdp_program__test_run`
// on a loaded program, which reads the program (its fd, type and interface)
// and mutates nothing; map fds are read once in `open`.
unsafe impl Sync for Attached {}

impl Attached {
    fn open(
        object: &'static [u8],
        name: &'static str,
        ifname: &str,
        mode: AttachMode,
    ) -> Result<Attached, Error> {
        let ifindex = i32::try_from(sys::ifindex(ifname)?)
            .map_err(|_| Error::NoSuchInterface(ifname.to_owned()))?;
        // Without bpffs libxdp still attaches, just without the dispatcher.
        let _ = ensure_bpffs();
        detach_named(ifname, ifindex, name)?;

        // SAFETY: `object` is a valid, 'static, 8-byte-aligned ELF image;
        // libbpf copies what it needs and accepts null options.
        let obj = unsafe {
            xdp::bpf_object__open_mem(object.as_ptr().cast(), object.len(), std::ptr::null())
        };
        let obj = NonNull::new(obj).ok_or_else(|| Error::BpfOpen {
            object: name,
            source: io::Error::last_os_error(),
        })?;
        // SAFETY: `obj` is a live bpf_object; the section name is NUL-terminated.
        let prog = unsafe { xdp::xdp_program__from_bpf_obj(obj.as_ptr(), c"xdp".as_ptr()) };
        // SAFETY: libxdp_get_error accepts any pointer libxdp returned.
        let err = unsafe { xdp::libxdp_get_error(prog.cast_const().cast()) };
        let prog = match NonNull::new(prog) {
            Some(p) if err == 0 => p,
            _ => {
                // SAFETY: the object is ours and no program refers to it.
                unsafe { xdp::bpf_object__close(obj.as_ptr()) };
                return Err(Error::BpfOpen {
                    object: name,
                    source: sys::neg_errno(if err == 0 {
                        -i64::from(libc::ENOENT)
                    } else {
                        err
                    }),
                });
            }
        };
        let mut this = Attached {
            prog,
            obj,
            ifindex,
            ifname: ifname.to_owned(),
            mode,
            attach_mode: xdp::xdp_attach_mode_XDP_MODE_UNSPEC,
            attached: false,
        };
        let mut last = None;
        for &(attach_mode, m) in mode.attempts() {
            // SAFETY: `prog` is a live xdp_program created above.
            let rc =
                unsafe { xdp::xdp_program__attach(this.prog.as_ptr(), ifindex, attach_mode, 0) };
            if rc == 0 {
                this.mode = m;
                this.attach_mode = attach_mode;
                this.attached = true;
                return Ok(this);
            }
            last = Some((m, sys::neg_errno(i64::from(rc))));
        }
        let (m, source) = last.unwrap_or((mode, io::Error::from_raw_os_error(libc::EINVAL)));
        Err(Error::Attach {
            program: name,
            ifname: ifname.to_owned(),
            mode: m.as_str(),
            source,
        })
    }

    fn map_fd(&self, name: &'static CStr) -> Result<RawFd, Error> {
        // SAFETY: `obj` is live for the lifetime of self; the name is
        // NUL-terminated.
        let fd = unsafe { xdp::bpf_object__find_map_fd_by_name(self.obj.as_ptr(), name.as_ptr()) };
        if fd < 0 {
            return Err(Error::MapMissing(name.to_str().unwrap_or("?")));
        }
        Ok(fd)
    }

    fn detach(&mut self) -> Result<(), Error> {
        if !self.attached {
            return Ok(());
        }
        self.attached = false;
        // SAFETY: `prog` is live and was attached to `ifindex` in `attach_mode`.
        let rc = unsafe {
            xdp::xdp_program__detach(self.prog.as_ptr(), self.ifindex, self.attach_mode, 0)
        };
        if rc != 0 {
            return Err(Error::Detach {
                ifname: self.ifname.clone(),
                source: sys::neg_errno(i64::from(rc)),
            });
        }
        Ok(())
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Err(e) = self.detach() {
            eprintln!("proxyha: xsk: {}", super::chain(&e));
        }
        // SAFETY: the program was created from our object with
        // `from_bpf_obj`, so closing it leaves the object to us; both are
        // closed exactly once, program first.
        unsafe {
            xdp::xdp_program__close(self.prog.as_ptr());
            xdp::bpf_object__close(self.obj.as_ptr());
        }
    }
}

/// Detaches every program called `name` from the interface (what a crashed
/// run left behind) and returns how many it removed.
fn detach_named(ifname: &str, ifindex: i32, name: &str) -> Result<usize, Error> {
    // SAFETY: plain query; the result is checked with libxdp_get_error.
    let mp = unsafe { xdp::xdp_multiprog__get_from_ifindex(ifindex) };
    // SAFETY: libxdp_get_error accepts any pointer libxdp returned.
    if mp.is_null() || unsafe { xdp::libxdp_get_error(mp.cast_const().cast()) } != 0 {
        return Ok(0);
    }
    let mut ours = Vec::new();
    // SAFETY: `mp` is a valid multiprog until closed below.
    let mode = unsafe { xdp::xdp_multiprog__attach_mode(mp) };
    // SAFETY: as above.
    if unsafe { xdp::xdp_multiprog__is_legacy(mp) } {
        // SAFETY: as above.
        let p = unsafe { xdp::xdp_multiprog__main_prog(mp) };
        if !p.is_null() && prog_name(p) == name {
            ours.push(p);
        }
    } else {
        let mut p = std::ptr::null_mut();
        loop {
            // SAFETY: `p` is null or a program of `mp`.
            p = unsafe { xdp::xdp_multiprog__next_prog(p, mp) };
            if p.is_null() {
                break;
            }
            if prog_name(p) == name {
                ours.push(p);
            }
        }
    }
    let mut result = Ok(ours.len());
    for p in ours {
        // SAFETY: `p` belongs to `mp`, which is still open; detach looks the
        // interface up afresh and matches the program by id.
        let rc = unsafe { xdp::xdp_program__detach(p, ifindex, mode, 0) };
        if rc != 0 {
            result = Err(Error::Detach {
                ifname: ifname.to_owned(),
                source: sys::neg_errno(i64::from(rc)),
            });
        }
    }
    // SAFETY: closes the multiprog obtained above, once.
    unsafe { xdp::xdp_multiprog__close(mp) };
    result
}

fn prog_name(p: *const xdp::xdp_program) -> String {
    // SAFETY: `p` is a live program; the returned name is NUL-terminated and
    // owned by it.
    let s = unsafe { xdp::xdp_program__name(p) };
    if s.is_null() {
        return String::new();
    }
    // SAFETY: non-null, NUL-terminated, valid while `p` is.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

/// Removes a `proxyha_filter` program that a crashed run left attached to
/// `ifname`, returning how many were removed. [`Filter::attach`] calls this
/// itself.
pub fn detach_stale(ifname: &str) -> Result<usize, Error> {
    let ifindex = i32::try_from(sys::ifindex(ifname)?)
        .map_err(|_| Error::NoSuchInterface(ifname.to_owned()))?;
    let _ = ensure_bpffs();
    detach_named(ifname, ifindex, FILTER_PROGRAM)
}

/// Shadow copies of what the control plane wrote, to apply deltas.
struct Shadow {
    config: FilterConfig,
    vips: BTreeSet<Ipv4Addr>,
    ports: Box<[u64; 2 * PORT_WORDS]>,
}

/// The filter program, attached to one interface, with its maps.
///
/// All setters take `&self` and may be called from the control plane while
/// workers run; each is one or a few `bpf(2)` map updates.
pub struct Filter {
    attached: Attached,
    xsks: RawFd,
    config: RawFd,
    vips: RawFd,
    ports: RawFd,
    stats: RawFd,
    shadow: Mutex<Shadow>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("ifname", &self.attached.ifname)
            .field("mode", &self.attached.mode)
            .finish()
    }
}

impl Filter {
    /// Loads the filter and attaches it to `ifname` (after removing one a
    /// crashed run left there). All maps start empty, so nothing is steered
    /// until [`Filter::set_config`] sets flags.
    pub fn attach(ifname: &str, mode: AttachMode) -> Result<Filter, Error> {
        let attached = Attached::open(&FILTER_OBJECT.0, FILTER_PROGRAM, ifname, mode)?;
        Ok(Filter {
            xsks: attached.map_fd(MAP_XSKS)?,
            config: attached.map_fd(MAP_CONFIG)?,
            vips: attached.map_fd(MAP_VIPS)?,
            ports: attached.map_fd(MAP_PORTS)?,
            stats: attached.map_fd(MAP_STATS)?,
            attached,
            shadow: Mutex::new(Shadow {
                config: FilterConfig::default(),
                vips: BTreeSet::new(),
                ports: Box::new([0; 2 * PORT_WORDS]),
            }),
        })
    }

    /// The mode the program runs in (native or generic).
    pub fn mode(&self) -> AttachMode {
        self.attached.mode
    }

    /// The interface.
    pub fn ifname(&self) -> &str {
        &self.attached.ifname
    }

    /// Puts a socket into the XSKMAP at its queue, so frames the filter
    /// steers on that queue reach it. A socket leaves the map by itself when
    /// it is closed.
    pub fn add_socket(&self, socket: &Socket) -> Result<(), Error> {
        let fd = socket.raw_fd();
        update(self.xsks, "proxyha_xsks", &socket.queue(), &fd)
    }

    /// Removes the socket of `queue` from the XSKMAP.
    pub fn remove_socket(&self, queue: u32) -> Result<(), Error> {
        delete(self.xsks, "proxyha_xsks", &queue)
    }

    /// Writes the config entry (VRID, virtual MAC, flags).
    pub fn set_config(&self, config: &FilterConfig) -> Result<(), Error> {
        let mut shadow = self.lock();
        update(self.config, "proxyha_config", &0u32, &config.to_bytes())?;
        shadow.config = *config;
        Ok(())
    }

    /// The config entry last written.
    pub fn config(&self) -> FilterConfig {
        self.lock().config
    }

    /// Sets or clears [`FLAG_ACTIVE`] (becoming or leaving VRRP master).
    pub fn set_active(&self, active: bool) -> Result<(), Error> {
        let mut config = self.config();
        if active {
            config.flags |= FLAG_ACTIVE;
        } else {
            config.flags &= !FLAG_ACTIVE;
        }
        self.set_config(&config)
    }

    /// Replaces the set of VIPs.
    pub fn set_vips(&self, vips: &[Ipv4Addr]) -> Result<(), Error> {
        let mut shadow = self.lock();
        let want: BTreeSet<Ipv4Addr> = vips.iter().copied().collect();
        for gone in shadow.vips.difference(&want) {
            delete(self.vips, "proxyha_vips", &gone.octets())?;
        }
        for new in want.difference(&shadow.vips) {
            update(self.vips, "proxyha_vips", &new.octets(), &1u8)?;
        }
        shadow.vips = want;
        Ok(())
    }

    /// Replaces the set of redirected destination ports of one protocol.
    pub fn set_ports(&self, l4: L4, ports: &[u16]) -> Result<(), Error> {
        let mut shadow = self.lock();
        let base = match l4 {
            L4::Tcp => 0,
            L4::Udp => PORT_WORDS,
        };
        let mut bitmap = shadow.ports.clone();
        bitmap[base..base + PORT_WORDS].fill(0);
        for &p in ports {
            bitmap[base + usize::from(p >> 6)] |= 1 << (p & 63);
        }
        update(self.ports, "proxyha_ports", &0u32, &*bitmap)?;
        shadow.ports = bitmap;
        Ok(())
    }

    /// Reads the program's counters.
    pub fn stats(&self) -> Result<FilterStats, Error> {
        let mut sum = [0u64; STAT_COUNT as usize];
        let mut values = vec![0u64; sys::possible_cpus()];
        for (key, slot) in (0..STAT_COUNT).zip(sum.iter_mut()) {
            // SAFETY: `values` has one u64 per possible CPU, which is exactly
            // what the kernel writes for a per-CPU array of u64.
            let rc = unsafe {
                xdp::bpf_map_lookup_elem(
                    self.stats,
                    (&raw const key).cast(),
                    values.as_mut_ptr().cast(),
                )
            };
            if rc != 0 {
                return Err(Error::Map {
                    map: "proxyha_stats",
                    source: sys::neg_errno(i64::from(rc)),
                });
            }
            *slot = values.iter().copied().fold(0u64, u64::wrapping_add);
        }
        Ok(FilterStats {
            rx_frames: sum[0],
            to_xsk_vip: sum[1],
            to_xsk_arp: sum[2],
            to_xsk_vrrp: sum[3],
            to_xsk_heartbeat: sum[4],
            passed: sum[5],
            no_socket: sum[6],
        })
    }

    /// Runs one frame through the loaded program (`BPF_PROG_TEST_RUN`, as if
    /// received on queue 0) and returns its verdict, without sending or
    /// receiving anything. Counts in [`Filter::stats`] like a real frame. For
    /// tests and diagnostics; frames shorter than 14 bytes are refused by the
    /// kernel (EINVAL).
    pub fn verdict(&self, frame: &[u8]) -> Result<Verdict, Error> {
        // SAFETY: bpf_test_run_opts is plain old data (pointers may be null).
        let mut opts: xdp::bpf_test_run_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<xdp::bpf_test_run_opts>();
        opts.data_in = frame.as_ptr().cast();
        opts.data_size_in = u32::try_from(frame.len()).map_err(|_| Error::Map {
            map: "test_run",
            source: io::Error::from_raw_os_error(libc::E2BIG),
        })?;
        opts.repeat = 1;
        // SAFETY: the program is loaded and attached; `opts` is valid and
        // points at `frame`, which the kernel only reads (no data_out).
        let rc = unsafe { xdp::xdp_program__test_run(self.attached.prog.as_ptr(), &mut opts, 0) };
        if rc != 0 {
            return Err(Error::Map {
                map: "test_run",
                source: sys::neg_errno(i64::from(rc)),
            });
        }
        Ok(match opts.retval {
            2 => Verdict::Pass,
            4 => Verdict::ToSocket,
            other => Verdict::Other(other),
        })
    }

    /// Detaches the program now (dropping the filter does the same).
    pub fn detach(mut self) -> Result<(), Error> {
        self.attached.detach()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shadow> {
        self.shadow
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A pass-everything XDP program attached to an interface: put it on the
/// peer of a veth that must receive XDP_TX or redirected frames.
pub struct PassProgram {
    attached: Attached,
}

impl std::fmt::Debug for PassProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassProgram")
            .field("ifname", &self.attached.ifname)
            .field("mode", &self.attached.mode)
            .finish()
    }
}

impl PassProgram {
    /// Loads and attaches the pass program.
    pub fn attach(ifname: &str, mode: AttachMode) -> Result<PassProgram, Error> {
        Ok(PassProgram {
            attached: Attached::open(&PASS_OBJECT.0, PASS_PROGRAM, ifname, mode)?,
        })
    }

    /// The mode it runs in.
    pub fn mode(&self) -> AttachMode {
        self.attached.mode
    }
}

fn update<K: ?Sized, V: ?Sized>(
    fd: RawFd,
    map: &'static str,
    key: &K,
    value: &V,
) -> Result<(), Error> {
    // SAFETY: key and value point to live values whose sizes are the map's
    // key and value sizes (checked by the callers' types, mirroring
    // filter.bpf.c); the kernel only reads them.
    let rc = unsafe {
        xdp::bpf_map_update_elem(
            fd,
            (key as *const K).cast::<c_void>(),
            (value as *const V).cast::<c_void>(),
            0,
        )
    };
    if rc != 0 {
        return Err(Error::Map {
            map,
            source: sys::neg_errno(i64::from(rc)),
        });
    }
    Ok(())
}

fn delete<K: ?Sized>(fd: RawFd, map: &'static str, key: &K) -> Result<(), Error> {
    // SAFETY: key points to a live value of the map's key size; read only.
    let rc = unsafe { xdp::bpf_map_delete_elem(fd, (key as *const K).cast::<c_void>()) };
    if rc != 0 && rc != -libc::ENOENT {
        return Err(Error::Map {
            map,
            source: sys::neg_errno(i64::from(rc)),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_objects_are_bpf_elf() {
        for obj in [&FILTER_OBJECT.0, &PASS_OBJECT.0] {
            assert_eq!(&obj[..4], b"\x7fELF");
            // e_machine at offset 18, little-endian: EM_BPF = 247.
            assert_eq!(u16::from_le_bytes([obj[18], obj[19]]), 247);
        }
    }

    #[test]
    fn config_layout_matches_the_c_struct() {
        let c = FilterConfig::director(51, true);
        assert_eq!(
            c.to_bytes(),
            [
                0,
                0,
                0x5e,
                0,
                1,
                51,
                51,
                FLAG_ACTIVE | FLAG_VRRP | FLAG_HEARTBEAT
            ]
        );
        assert_eq!(FilterConfig::director(7, false).flags & FLAG_ACTIVE, 0);
    }
}
