//! BPF objects, their programs and maps.

use std::ffi::{CString, c_char, c_void};
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytemuck::Pod;
use libxdp_sys as sys;

use super::{Elf, Error, Result, possible_cpus};

/// The libbpf object behind an [`Object`], closed when the last handle
/// (object, program or map) goes.
#[derive(Debug)]
struct Inner {
    obj: NonNull<sys::bpf_object>,
    name: &'static str,
}

// SAFETY: the `bpf_object` is owned exclusively by `Inner` and closed once
// in `drop`. It is mutated only while it has a single handle: loaded by
// `Object::load` before that returns, or by the first attach of the
// `XdpProgram` that owns it (through `&mut XdpProgram`, before any `Map` of
// it can exist: maps are found only in a loaded object). Otherwise it is
// only read (names, fds, sizes). libbpf keeps no thread-local state for it
// and its fds are valid process-wide.
unsafe impl Send for Inner {}
// SAFETY: see `Send`: the shared-reference uses only read program/map fds
// and sizes out of a loaded object, which libbpf does not mutate after load.
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: `obj` came from `bpf_object__open_mem` and is closed once,
        // here, after every handle that used it (they hold this `Inner`).
        // A libxdp program created from it ([`super::XdpProgram`]) holds it
        // too and closes itself first (`from_bpf_obj` leaves the object).
        unsafe { sys::bpf_object__close(self.obj.as_ptr()) }
    }
}

/// A BPF object opened from an embedded ELF image. Cheap to clone (shared);
/// closed when the last clone, [`Program`] or [`Map`] of it is dropped.
#[derive(Debug, Clone)]
pub struct Object {
    inner: Arc<Inner>,
}

impl Object {
    /// Opens `elf` (see [`crate::embedded_object!`]) without loading it, for
    /// libxdp to load on attach ([`super::XdpProgram::attach`]). `name`
    /// names the object in errors and in the kernel.
    pub(super) fn open(name: &'static str, elf: &'static Elf) -> Result<Object> {
        let cname = CString::new(name).map_err(|_| Error::Missing {
            object: name,
            kind: "valid object name",
            name: name.to_owned(),
        })?;
        // SAFETY: an all-zero `bpf_object_open_opts` is its documented
        // default state apart from `sz`, which we set.
        let mut opts: sys::bpf_object_open_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<sys::bpf_object_open_opts>();
        opts.object_name = cname.as_ptr();
        // SAFETY: `elf` is a valid, 'static, 8-byte-aligned image of
        // `elf.0.len()` bytes (libbpf reads it in place until the object is
        // loaded or closed, and 'static outlives both); `opts` and `cname`
        // outlive the call, and libbpf copies the name.
        let raw = unsafe { sys::bpf_object__open_mem(elf.0.as_ptr().cast(), elf.0.len(), &opts) };
        let obj = NonNull::new(raw).ok_or_else(|| Error::Call {
            call: "bpf_object__open_mem",
            object: name,
            name: String::new(),
            source: std::io::Error::last_os_error(),
        })?;
        Ok(Object {
            inner: Arc::new(Inner { obj, name }),
        })
    }

    /// Opens and loads `elf` (see [`crate::embedded_object!`]; the verifier
    /// runs here). `name` names the object in errors and in the kernel.
    pub fn load(name: &'static str, elf: &'static Elf) -> Result<Object> {
        let this = Object::open(name, elf)?;
        // SAFETY: `obj` is a valid, opened, not yet loaded object, and no
        // other handle to it exists yet.
        let rc = unsafe { sys::bpf_object__load(this.inner.obj.as_ptr()) };
        if rc != 0 {
            return Err(Error::call("bpf_object__load", name, "", rc.into()));
        }
        Ok(this)
    }

    /// The object's name.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// The raw object, for libxdp ([`super::XdpProgram`]).
    pub(super) fn as_ptr(&self) -> *mut sys::bpf_object {
        self.inner.obj.as_ptr()
    }

    fn missing(&self, kind: &'static str, name: &str) -> Error {
        Error::Missing {
            object: self.inner.name,
            kind,
            name: name.to_owned(),
        }
    }

    /// Looks a program or map up by name with one of libbpf's
    /// `bpf_object__find_*_by_name` functions.
    fn find<T>(
        &self,
        kind: &'static str,
        name: &str,
        find: unsafe extern "C" fn(*const sys::bpf_object, *const c_char) -> *mut T,
    ) -> Result<NonNull<T>> {
        let c = CString::new(name).map_err(|_| self.missing(kind, name))?;
        // SAFETY: `find` is a libbpf by-name lookup, which only reads the
        // object (valid while `self` lives) and the NUL-terminated `c`, and
        // returns null or an element of the object.
        let p = unsafe { find(self.as_ptr(), c.as_ptr()) };
        NonNull::new(p).ok_or_else(|| self.missing(kind, name))
    }

    /// A loaded program of the object.
    pub fn program(&self, name: &str) -> Result<Program> {
        let p = self.find("program", name, sys::bpf_object__find_program_by_name)?;
        // SAFETY: `p` is a program of the live object.
        let fd = unsafe { sys::bpf_program__fd(p.as_ptr()) };
        if fd < 0 {
            return Err(self.missing("loaded program", name));
        }
        Ok(Program {
            object: self.clone(),
            fd,
            name: name.to_owned(),
        })
    }

    /// A map of the loaded object.
    pub fn map(&self, name: &str) -> Result<Map> {
        let m = self
            .find("map", name, sys::bpf_object__find_map_by_name)?
            .as_ptr();
        // SAFETY: `m` is a map of the live object; these only read it.
        let (fd, key_size, value_size, kind, max_entries, flags) = unsafe {
            (
                sys::bpf_map__fd(m),
                sys::bpf_map__key_size(m),
                sys::bpf_map__value_size(m),
                sys::bpf_map__type(m),
                sys::bpf_map__max_entries(m),
                sys::bpf_map__map_flags(m),
            )
        };
        if fd < 0 {
            return Err(self.missing("loaded map", name));
        }
        Ok(Map {
            object: self.clone(),
            fd,
            name: name.to_owned(),
            key_size: key_size as usize,
            value_size: value_size as usize,
            max_entries: max_entries as usize,
            mmapable: kind == sys::bpf_map_type_BPF_MAP_TYPE_ARRAY && flags & BPF_F_MMAPABLE != 0,
            percpu: matches!(
                kind,
                sys::bpf_map_type_BPF_MAP_TYPE_PERCPU_ARRAY
                    | sys::bpf_map_type_BPF_MAP_TYPE_PERCPU_HASH
                    | sys::bpf_map_type_BPF_MAP_TYPE_LRU_PERCPU_HASH
            ),
        })
    }
}

/// A loaded program of an [`Object`] (keeps the object, so its fd, alive).
#[derive(Debug, Clone)]
pub struct Program {
    object: Object,
    fd: RawFd,
    name: String,
}

impl Program {
    /// The program's fd (valid while this handle lives).
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The program's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The object it belongs to.
    pub fn object(&self) -> &Object {
        &self.object
    }

    /// Runs the program once on a copy of `frame` in ordinary
    /// `BPF_PROG_TEST_RUN` mode and returns its verdict and the frame as the
    /// program left it.
    pub fn test_run(&self, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
        let mut out = vec![0u8; frame.len() + 256];
        let mut opts = frame_opts(frame, self.object.name(), &self.name)?;
        opts.data_out = out.as_mut_ptr().cast();
        opts.data_size_out = u32::try_from(out.len()).unwrap_or(u32::MAX);
        // SAFETY: `opts` points at `frame` (read, its length given) and `out`
        // (written, at most its length given), both alive across the call;
        // `self.fd` is a loaded program kept open by `self.object`.
        let rc = unsafe { sys::bpf_prog_test_run_opts(self.fd, &mut opts) };
        if rc != 0 {
            return Err(self.run_error(rc));
        }
        out.truncate((opts.data_size_out as usize).min(out.len()));
        Ok((opts.retval, out))
    }

    /// `BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES` (kernel ≥ 5.18):
    /// runs the program `repeat` times on page-pool frames initialised from
    /// `frame` and really transmits what it returns `XDP_TX` for (out of
    /// `ingress_ifindex`, in the calling thread's network namespace) or
    /// redirects.
    pub fn test_run_live(&self, frame: &[u8], ingress_ifindex: u32, repeat: u32) -> Result<()> {
        // SAFETY: an all-zero `xdp_md` is a valid context; we set its fields.
        let mut ctx: sys::xdp_md = unsafe { std::mem::zeroed() };
        ctx.data_end = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        ctx.ingress_ifindex = ingress_ifindex;
        let mut opts = frame_opts(frame, self.object.name(), &self.name)?;
        opts.ctx_in = (&raw const ctx).cast();
        opts.ctx_size_in = std::mem::size_of::<sys::xdp_md>() as u32;
        opts.repeat = repeat.min(i32::MAX as u32) as i32;
        opts.flags = sys::BPF_F_TEST_XDP_LIVE_FRAMES;
        // SAFETY: `opts` points at `frame` and `ctx` (both read only, their
        // sizes given), alive across the call; no output buffers (live-frames
        // mode forbids them). `self.fd` is kept open by `self.object`.
        let rc = unsafe { sys::bpf_prog_test_run_opts(self.fd, &mut opts) };
        if rc != 0 {
            return Err(self.run_error(rc));
        }
        Ok(())
    }

    fn run_error(&self, rc: i32) -> Error {
        Error::call(
            "bpf_prog_test_run_opts",
            self.object.name(),
            &self.name,
            rc.into(),
        )
    }
}

/// `bpf_test_run_opts` for one run over `frame` (input only).
pub(super) fn frame_opts(
    frame: &[u8],
    object: &'static str,
    name: &str,
) -> Result<sys::bpf_test_run_opts> {
    // SAFETY: an all-zero `bpf_test_run_opts` is its default (null buffers);
    // we set sz.
    let mut opts: sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<sys::bpf_test_run_opts>();
    opts.data_in = frame.as_ptr().cast();
    opts.data_size_in = u32::try_from(frame.len()).map_err(|_| Error::Call {
        call: "bpf_prog_test_run_opts",
        object,
        name: name.to_owned(),
        source: std::io::Error::from_raw_os_error(libc::E2BIG),
    })?;
    opts.repeat = 1;
    Ok(opts)
}

/// A map of a loaded [`Object`] (keeps the object, so its fd, alive). Keys
/// and values are checked against the map's sizes before every call, so the
/// kernel never reads or writes past a buffer.
#[derive(Debug, Clone)]
pub struct Map {
    object: Object,
    fd: RawFd,
    name: String,
    key_size: usize,
    value_size: usize,
    max_entries: usize,
    /// An array map created with `BPF_F_MMAPABLE` ([`Map::mmap_words`]).
    mmapable: bool,
    percpu: bool,
}

/// `BPF_F_MMAPABLE` (uapi/linux/bpf.h): an array map whose values can be
/// mapped into a process.
const BPF_F_MMAPABLE: u32 = 1 << 10;

/// The values of an array map created with `BPF_F_MMAPABLE`, mapped into
/// this process as 64-bit words that the program reads and writes at the
/// same time (keeps the map, so its fd and memory, alive).
pub struct MappedWords {
    mapping: memmap2::MmapRaw,
    words: usize,
    _map: Map,
}

impl std::fmt::Debug for MappedWords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedWords")
            .field("map", &self._map.name)
            .field("words", &self.words)
            .finish()
    }
}

impl MappedWords {
    /// The map's values, value after value, as shared 64-bit words.
    #[inline]
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: `mapping` is a live shared mapping of at least `words * 8`
        // bytes (checked in `Map::mmap_words`), page-aligned and so aligned
        // for `AtomicU64`, and it lives as long as `self`. The memory is
        // shared with the BPF program and other threads, which is why it is
        // only ever accessed through atomics: no `&mut` or plain reference
        // to it exists, and every access is a whole-word atomic load or
        // store, which the program's own 8-byte loads and stores cannot
        // tear.
        unsafe { std::slice::from_raw_parts(self.mapping.as_ptr().cast::<AtomicU64>(), self.words) }
    }
}

impl Map {
    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes per key.
    pub fn key_size(&self) -> usize {
        self.key_size
    }

    /// Bytes per value (per CPU, for per-CPU maps).
    pub fn value_size(&self) -> usize {
        self.value_size
    }

    /// Whether each entry holds one value per possible CPU.
    pub fn is_percpu(&self) -> bool {
        self.percpu
    }

    /// The map's capacity.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Maps the values of this array map (created with `BPF_F_MMAPABLE`)
    /// into the process, shared with the program: see [`MappedWords`]. The
    /// map must have `entries` values of `value_size` bytes, a multiple of 8.
    pub fn mmap_words(&self, entries: usize, value_size: usize) -> Result<MappedWords> {
        self.check("entries", self.max_entries, entries)?;
        self.check("value", self.value_size, value_size)?;
        if !self.mmapable || self.percpu || !self.value_size.is_multiple_of(8) {
            return Err(Error::Size {
                object: self.object.name(),
                map: self.name.clone(),
                what: "mmapable array value (a multiple of 8 bytes)",
                got: self.value_size,
                want: self.value_size.div_ceil(8) * 8,
            });
        }
        let bytes = self.value_size * self.max_entries;
        let mapping = memmap2::MmapOptions::new()
            .len(bytes)
            .map_raw(self.fd)
            .map_err(|e| self.error("mmap", -e.raw_os_error().unwrap_or(libc::EINVAL)))?;
        if mapping.len() < bytes {
            return Err(self.error("mmap", -libc::EINVAL));
        }
        Ok(MappedWords {
            mapping,
            words: bytes / 8,
            _map: self.clone(),
        })
    }

    /// Bytes between per-CPU values (the value size rounded up to 8).
    fn stride(&self) -> usize {
        self.value_size.div_ceil(8) * 8
    }

    /// The bytes a whole entry's value takes in `bpf(2)` calls.
    fn entry_size(&self) -> usize {
        if self.percpu {
            self.stride() * possible_cpus()
        } else {
            self.value_size
        }
    }

    fn check(&self, what: &'static str, got: usize, want: usize) -> Result<()> {
        if got == want {
            return Ok(());
        }
        Err(Error::Size {
            object: self.object.name(),
            map: self.name.clone(),
            what,
            got,
            want,
        })
    }

    fn error(&self, call: &'static str, rc: i32) -> Error {
        Error::call(call, self.object.name(), &self.name, rc.into())
    }

    /// Writes `value` at `key`. For a per-CPU map `value` holds every CPU's
    /// value, each padded to 8 bytes.
    pub fn update_bytes(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check("key", key.len(), self.key_size)?;
        self.check("value", value.len(), self.entry_size())?;
        // SAFETY: `key` and `value` are live and exactly the sizes the
        // kernel reads for this map (checked above); it only reads them.
        // `self.fd` is kept open by `self.object`.
        let rc = unsafe {
            sys::bpf_map_update_elem(
                self.fd,
                key.as_ptr().cast::<c_void>(),
                value.as_ptr().cast::<c_void>(),
                0,
            )
        };
        if rc != 0 {
            return Err(self.error("bpf_map_update_elem", rc));
        }
        Ok(())
    }

    /// Writes a typed value at a typed key.
    pub fn update<K: Pod, V: Pod>(&self, key: &K, value: &V) -> Result<()> {
        self.update_bytes(bytemuck::bytes_of(key), bytemuck::bytes_of(value))
    }

    /// Reads the whole entry at `key` (every CPU's value, 8-byte strided,
    /// for a per-CPU map).
    pub fn lookup_bytes(&self, key: &[u8]) -> Result<Vec<u8>> {
        self.check("key", key.len(), self.key_size)?;
        let mut out = vec![0u8; self.entry_size()];
        // SAFETY: `key` is exactly the map's key size (checked above) and
        // only read; `out` is writable for the whole entry the kernel copies
        // (the value size, or the stride times the possible CPUs for a
        // per-CPU map). `self.fd` is kept open by `self.object`.
        let rc = unsafe {
            sys::bpf_map_lookup_elem(
                self.fd,
                key.as_ptr().cast::<c_void>(),
                out.as_mut_ptr().cast::<c_void>(),
            )
        };
        if rc != 0 {
            return Err(self.error("bpf_map_lookup_elem", rc));
        }
        Ok(out)
    }

    /// Reads a typed value (not per-CPU) at a typed key.
    pub fn lookup<K: Pod, V: Pod>(&self, key: &K) -> Result<V> {
        self.check("value", std::mem::size_of::<V>(), self.value_size)?;
        let b = self.lookup_bytes(bytemuck::bytes_of(key))?;
        Ok(bytemuck::pod_read_unaligned(&b[..self.value_size]))
    }

    /// Removes the entry at `key`; false when there was none.
    pub fn delete<K: Pod>(&self, key: &K) -> Result<bool> {
        let key = bytemuck::bytes_of(key);
        self.check("key", key.len(), self.key_size)?;
        // SAFETY: `key` is exactly the map's key size (checked above) and
        // only read. `self.fd` is kept open by `self.object`.
        let rc = unsafe { sys::bpf_map_delete_elem(self.fd, key.as_ptr().cast::<c_void>()) };
        match rc {
            0 => Ok(true),
            rc if rc == -libc::ENOENT => Ok(false),
            rc => Err(self.error("bpf_map_delete_elem", rc)),
        }
    }

    /// Reads a per-CPU entry: one value per possible CPU.
    pub fn lookup_percpu<K: Pod, V: Pod>(&self, key: &K) -> Result<Vec<V>> {
        self.check("value", std::mem::size_of::<V>(), self.value_size)?;
        let b = self.lookup_bytes(bytemuck::bytes_of(key))?;
        let step = if self.percpu { self.stride() } else { b.len() };
        Ok(b.chunks(step)
            .map(|c| bytemuck::pod_read_unaligned(&c[..self.value_size]))
            .collect())
    }

    /// Zeroes an entry (every CPU's value, for a per-CPU map).
    pub fn zero<K: Pod>(&self, key: &K) -> Result<()> {
        self.update_bytes(bytemuck::bytes_of(key), &vec![0u8; self.entry_size()])
    }
}
