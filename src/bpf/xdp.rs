//! Attaching XDP programs: through libxdp ([`XdpProgram`]: its
//! multi-program dispatcher when bpffs is mounted) or directly by fd
//! ([`xdp_attach`], what the perf lab uses on its veths).

use std::ffi::CStr;
use std::ptr::NonNull;

use libxdp_sys as sys;

use super::object::frame_opts;
use super::{Elf, Error, Map, Object, Program, Result};

/// Where an XDP program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) mode.
    Native,
    /// Generic (SKB) mode.
    Generic,
}

impl XdpMode {
    fn libxdp(self) -> sys::xdp_attach_mode {
        match self {
            XdpMode::Native => sys::xdp_attach_mode_XDP_MODE_NATIVE,
            XdpMode::Generic => sys::xdp_attach_mode_XDP_MODE_SKB,
        }
    }

    /// The `XDP_FLAGS_*_MODE` flag of `bpf_xdp_attach` (`linux/if_link.h`).
    fn flags(self) -> u32 {
        const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
        const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
        match self {
            XdpMode::Native => XDP_FLAGS_DRV_MODE,
            XdpMode::Generic => XDP_FLAGS_SKB_MODE,
        }
    }
}

/// Attaches `prog` to the interface `ifindex` (in the calling thread's
/// network namespace) with `bpf_xdp_attach`, replacing whatever program was
/// there. Nothing detaches it but [`xdp_detach`] or the interface going.
pub fn xdp_attach(ifindex: u32, prog: &Program, mode: XdpMode) -> Result<()> {
    let idx = i32::try_from(ifindex).unwrap_or(i32::MAX);
    // SAFETY: plain syscall wrapper on fds and numbers; a null opts pointer
    // means defaults. `prog`'s fd is open while `prog` lives.
    let rc = unsafe { sys::bpf_xdp_attach(idx, prog.fd(), mode.flags(), std::ptr::null()) };
    if rc != 0 {
        return Err(Error::call(
            "bpf_xdp_attach",
            prog.object().name(),
            prog.name(),
            rc.into(),
        ));
    }
    Ok(())
}

/// Detaches the XDP program of `mode` from the interface `ifindex` (in the
/// calling thread's network namespace) with `bpf_xdp_detach`.
pub fn xdp_detach(ifindex: u32, mode: XdpMode) -> Result<()> {
    let idx = i32::try_from(ifindex).unwrap_or(i32::MAX);
    // SAFETY: plain syscall wrapper on numbers; a null opts pointer means
    // defaults.
    let rc = unsafe { sys::bpf_xdp_detach(idx, mode.flags(), std::ptr::null()) };
    if rc != 0 {
        return Err(Error::call("bpf_xdp_detach", "xdp", "", rc.into()));
    }
    Ok(())
}

/// A libxdp program made from an embedded object (section `xdp`), attached
/// to at most one interface at a time. Dropping it closes it; it does not
/// detach (call [`XdpProgram::detach`] first), so a crashed owner's program
/// stays attached until [`detach_named`] removes it.
#[derive(Debug)]
pub struct XdpProgram {
    prog: NonNull<sys::xdp_program>,
    object: Object,
    name: &'static str,
    attached: Option<(i32, sys::xdp_attach_mode)>,
}

// SAFETY: the libxdp program is owned exclusively by this struct; it is
// mutated only through `&mut self` (attach, detach) and in drop, so moving
// the owner to another thread is sound.
unsafe impl Send for XdpProgram {}
// SAFETY: the only `&self` use of the pointer is `xdp_program__test_run`,
// which on a loaded program reads it (fd, type) and mutates nothing (the
// dispatcher it may generate is its own and closed before it returns).
unsafe impl Sync for XdpProgram {}

impl XdpProgram {
    /// Opens `elf` and makes a libxdp program of its `xdp` section; `name`
    /// is the program's name. It is loaded on [`XdpProgram::attach`].
    pub fn open(name: &'static str, elf: &'static Elf) -> Result<XdpProgram> {
        let object = Object::open(name, elf)?;
        // SAFETY: `object` is a live, opened bpf_object that nothing else
        // uses yet; the section name is NUL-terminated.
        let prog = unsafe { sys::xdp_program__from_bpf_obj(object.as_ptr(), c"xdp".as_ptr()) };
        // SAFETY: libxdp_get_error accepts any pointer libxdp returned.
        let err = unsafe { sys::libxdp_get_error(prog.cast_const().cast()) };
        match NonNull::new(prog) {
            Some(prog) if err == 0 => Ok(XdpProgram {
                prog,
                object,
                name,
                attached: None,
            }),
            _ => Err(Error::call(
                "xdp_program__from_bpf_obj",
                name,
                name,
                if err == 0 {
                    -i64::from(libc::ENOENT)
                } else {
                    err
                },
            )),
        }
    }

    /// A map of the program's object (found once attached, which loads it).
    pub fn map(&self, name: &str) -> Result<Map> {
        self.object.map(name)
    }

    /// Loads the program (first time) and attaches it to `ifindex` in
    /// `mode`.
    pub fn attach(&mut self, ifindex: u32, mode: XdpMode) -> Result<()> {
        let idx = i32::try_from(ifindex).unwrap_or(i32::MAX);
        // SAFETY: `prog` is a live xdp_program; `&mut self` makes this the
        // only use of it (and of its object, which it may load) right now.
        let rc = unsafe { sys::xdp_program__attach(self.prog.as_ptr(), idx, mode.libxdp(), 0) };
        if rc != 0 {
            return Err(self.error("xdp_program__attach", rc));
        }
        self.attached = Some((idx, mode.libxdp()));
        Ok(())
    }

    /// Detaches the program if it is attached.
    pub fn detach(&mut self) -> Result<()> {
        let Some((idx, mode)) = self.attached.take() else {
            return Ok(());
        };
        // SAFETY: `prog` is live and was attached to `idx` in `mode`.
        let rc = unsafe { sys::xdp_program__detach(self.prog.as_ptr(), idx, mode, 0) };
        if rc != 0 {
            return Err(self.error("xdp_program__detach", rc));
        }
        Ok(())
    }

    fn error(&self, call: &'static str, rc: i32) -> Error {
        Error::call(call, self.name, self.name, rc.into())
    }

    /// Runs one frame through the loaded program (`BPF_PROG_TEST_RUN` as
    /// if received on queue 0, through a dispatcher when libxdp attached it
    /// as an extension) and returns its XDP verdict, without sending or
    /// receiving anything and without output. The kernel refuses frames
    /// shorter than 14 bytes (EINVAL).
    pub fn test_run(&self, frame: &[u8]) -> Result<u32> {
        let mut opts = frame_opts(frame, self.name, self.name)?;
        // SAFETY: `prog` is live; `opts` points at `frame`, which the kernel
        // only reads (no data_out), alive across the call.
        let rc = unsafe { sys::xdp_program__test_run(self.prog.as_ptr(), &mut opts, 0) };
        if rc != 0 {
            return Err(self.error("xdp_program__test_run", rc));
        }
        Ok(opts.retval)
    }

    /// Like [`XdpProgram::test_run`], and also returns the frame as the
    /// program left it (its MAC rewrites, for one).
    pub fn test_run_out(&self, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
        let mut out = vec![0u8; frame.len() + 256];
        let mut opts = frame_opts(frame, self.name, self.name)?;
        opts.data_out = out.as_mut_ptr().cast();
        opts.data_size_out = u32::try_from(out.len()).unwrap_or(u32::MAX);
        // SAFETY: `prog` is live; `opts` points at `frame` (read, its length
        // given) and `out` (written, at most its length given), both alive
        // across the call.
        let rc = unsafe { sys::xdp_program__test_run(self.prog.as_ptr(), &mut opts, 0) };
        if rc != 0 {
            return Err(self.error("xdp_program__test_run", rc));
        }
        out.truncate((opts.data_size_out as usize).min(out.len()));
        Ok((opts.retval, out))
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        // SAFETY: the program was created from our object with
        // `from_bpf_obj`, so closing it leaves the object, which `self.object`
        // closes afterwards (fields drop after this body); closed once.
        unsafe { sys::xdp_program__close(self.prog.as_ptr()) }
    }
}

/// Detaches every libxdp-visible program called `name` from the interface
/// `ifindex` (what a crashed run left behind) and returns how many it
/// removed. `ifname` only names the interface in errors.
pub fn detach_named(ifname: &str, ifindex: u32, name: &str) -> Result<usize> {
    let idx = i32::try_from(ifindex).unwrap_or(i32::MAX);
    // SAFETY: plain query; the result is checked with libxdp_get_error.
    let mp = unsafe { sys::xdp_multiprog__get_from_ifindex(idx) };
    // SAFETY: libxdp_get_error accepts any pointer libxdp returned.
    if mp.is_null() || unsafe { sys::libxdp_get_error(mp.cast_const().cast()) } != 0 {
        return Ok(0);
    }
    let mut ours = Vec::new();
    // SAFETY: `mp` is a valid multiprog until closed below.
    let mode = unsafe { sys::xdp_multiprog__attach_mode(mp) };
    // SAFETY: as above.
    if unsafe { sys::xdp_multiprog__is_legacy(mp) } {
        // SAFETY: as above.
        let p = unsafe { sys::xdp_multiprog__main_prog(mp) };
        if !p.is_null() && prog_name(p) == name {
            ours.push(p);
        }
    } else {
        let mut p = std::ptr::null_mut();
        loop {
            // SAFETY: `p` is null or a program of `mp`.
            p = unsafe { sys::xdp_multiprog__next_prog(p, mp) };
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
        let rc = unsafe { sys::xdp_program__detach(p, idx, mode, 0) };
        if rc != 0 {
            result = Err(Error::call("xdp_program__detach", "xdp", ifname, rc.into()));
        }
    }
    // SAFETY: closes the multiprog obtained above, once.
    unsafe { sys::xdp_multiprog__close(mp) };
    result
}

fn prog_name(p: *const sys::xdp_program) -> String {
    // SAFETY: `p` is a live program; the returned name is NUL-terminated and
    // owned by it.
    let s = unsafe { sys::xdp_program__name(p) };
    if s.is_null() {
        return String::new();
    }
    // SAFETY: non-null, NUL-terminated, valid while `p` is.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}
