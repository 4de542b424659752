//! Loading the XDP programs of `src/bpf/` and updating the filter's maps,
//! through the BPF layer ([`crate::bpf`]).
//!
//! Loading goes through libxdp ([`bpf::XdpProgram`]: `xdp_program__from_bpf_obj`
//! and `xdp_program__attach`): with bpffs mounted ([`super::ensure_bpffs`]) it
//! attaches through libxdp's multi-program dispatcher, so our filter
//! coexists with other libxdp-managed XDP programs on the interface; without
//! bpffs libxdp attaches the program alone. Native (driver) mode is tried
//! first and generic (SKB) mode second when [`AttachMode::Auto`] is asked for;
//! [`Filter::mode`] says which one took, and the caller logs it.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use crate::bpf::{self, Elf, Map, XdpMode, XdpProgram};
use crate::wire::ethernet::Address;

use super::fastpath::FastPath;
use super::socket::Socket;
use super::sys;
use super::{Error, ensure_bpffs};

static FILTER_OBJECT: &Elf = crate::embedded_object!("filter.bpf.o");
static PASS_OBJECT: &Elf = crate::embedded_object!("pass.bpf.o");

/// The filter program's name, by which a leftover copy is recognised.
pub const FILTER_PROGRAM: &str = "proxyha_filter";
/// The pass-everything program's name.
pub const PASS_PROGRAM: &str = "proxyha_pass";

/// Config flag: this node forwards (the Active Director; active-active:
/// every director). Steers VIP traffic sent to [`FilterConfig::vmac`] (the
/// virtual MAC, or an active-active director's own MAC) and ARP requests
/// for a VIP into the sockets. A backup
/// director or a scanning node clears it, so the kernel sees those frames.
pub const FLAG_ACTIVE: u8 = 0x01;
/// Config flag: steer VRRP (IP protocol 112) adverts for our VRID.
pub const FLAG_VRRP: u8 = 0x02;
/// Config flag: steer heartbeats (IP protocol 253) of [`FilterConfig::lbid`];
/// drop (and count) those of another LBID.
pub const FLAG_HEARTBEAT: u8 = 0x04;
/// Config flag (active-active directors): a VIP frame that [`FLAG_ACTIVE`]
/// steers but whose queue has no socket (the daemon died) is dropped, not
/// passed to a kernel that owns the VIP and would reset the flow.
pub const FLAG_DROP_ORPHANS: u8 = 0x08;
/// Config flag (active-active directors): VIP frames whose source MAC is in
/// the peer set ([`Filter::set_peers`]) are passed to the kernel: another
/// director's redirect of a flow this node serves.
pub const FLAG_PEERS: u8 = 0x10;
/// Config flag: the XDP fast path (docs/dataplane.md): installed flows are
/// forwarded in XDP. Acts only together with [`FLAG_ACTIVE`].
pub const FLAG_OFFLOAD: u8 = 0x20;
/// Config flag: with [`FLAG_OFFLOAD`], installed flows of this node's own
/// share go to the local stack with `XDP_PASS` (destination rewritten to
/// [`FilterConfig::our_mac`]) instead of through the workers and the TAP.
pub const FLAG_OFFLOAD_LOCAL: u8 = 0x40;

/// Words in one protocol's port bitmap (65536 bits).
const PORT_WORDS: usize = 1024;
/// Entries in the per-CPU stats array (`STAT_COUNT` in filter.bpf.c).
const STAT_COUNT: u32 = 12;

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
    fn attempts(self) -> &'static [(XdpMode, AttachMode)] {
        const NATIVE: (XdpMode, AttachMode) = (XdpMode::Native, AttachMode::Native);
        const GENERIC: (XdpMode, AttachMode) = (XdpMode::Generic, AttachMode::Generic);
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
    /// The destination MAC of the VIP traffic to steer: the VRRP virtual MAC
    /// `00:00:5e:00:01:{vrid}`, or an active-active director's own MAC.
    pub vmac: [u8; 6],
    /// Our VRID.
    pub vrid: u8,
    /// [`FLAG_ACTIVE`] | [`FLAG_VRRP`] | [`FLAG_HEARTBEAT`].
    pub flags: u8,
    /// This node's LBID: with [`FLAG_HEARTBEAT`], only heartbeats of this
    /// LBID reach the sockets; others are dropped in XDP and counted
    /// ([`FilterStats::drop_heartbeat`]).
    pub lbid: u16,
    /// This node's own health slot (the fast path's own share), if any.
    pub local_slot: Option<u16>,
    /// The interface's MAC: the fast path's source MAC, and the destination
    /// MAC of its own share.
    pub our_mac: [u8; 6],
    /// The fast-path epoch: flows installed under another epoch are misses.
    /// [`Filter::set_active`] moves it on at every takeover, so the fast
    /// path starts empty without a walk of its map.
    pub epoch: u32,
}

impl FilterConfig {
    /// The config of a director for `vrid`, with the RFC 5798 virtual MAC,
    /// LBID 0 (set [`FilterConfig::lbid`] for another group).
    pub fn director(vrid: u8, active: bool) -> FilterConfig {
        FilterConfig {
            vmac: Address::vrrp_virtual(vrid).octets(),
            vrid,
            flags: FLAG_VRRP | FLAG_HEARTBEAT | if active { FLAG_ACTIVE } else { 0 },
            lbid: 0,
            local_slot: None,
            our_mac: [0; 6],
            epoch: 0,
        }
    }

    /// The same config for heartbeat group `lbid`.
    pub fn with_lbid(self, lbid: u16) -> FilterConfig {
        FilterConfig { lbid, ..self }
    }

    /// With the fast path on ([`FLAG_OFFLOAD`], and [`FLAG_OFFLOAD_LOCAL`]
    /// for the own share), forwarding from `our_mac`, this node in
    /// `local_slot`.
    pub fn with_offload(
        self,
        offload: bool,
        local: bool,
        our_mac: [u8; 6],
        local_slot: Option<u16>,
    ) -> FilterConfig {
        let mut flags = self.flags & !(FLAG_OFFLOAD | FLAG_OFFLOAD_LOCAL);
        if offload {
            flags |= FLAG_OFFLOAD | if local { FLAG_OFFLOAD_LOCAL } else { 0 };
        }
        FilterConfig {
            flags,
            our_mac,
            local_slot,
            ..self
        }
    }

    /// `struct filter_config` of filter.bpf.c, with the flow cache's seed.
    fn to_bytes(self, seed: u64) -> [u8; 32] {
        let m = self.vmac;
        let l = self.lbid.to_be_bytes();
        let s = self.local_slot.unwrap_or(u16::MAX).to_be_bytes();
        let o = self.our_mac;
        let e = self.epoch.to_ne_bytes();
        let d = seed.to_ne_bytes();
        [
            m[0], m[1], m[2], m[3], m[4], m[5], self.vrid, self.flags, l[0], l[1], s[0], s[1],
            o[0], o[1], o[2], o[3], o[4], o[5], 0, 0, e[0], e[1], e[2], e[3], d[0], d[1], d[2],
            d[3], d[4], d[5], d[6], d[7],
        ]
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
    /// `XDP_DROP`: a heartbeat of another LBID, or (active-active) VIP
    /// traffic with no socket (counted).
    Drop,
    /// `XDP_TX`: forwarded by the fast path.
    Tx,
    /// Any other action (a bug: the filter never aborts).
    Other(u32),
}

impl Verdict {
    fn of(action: u32) -> Verdict {
        match action {
            1 => Verdict::Drop,
            2 => Verdict::Pass,
            3 => Verdict::Tx,
            4 => Verdict::ToSocket,
            other => Verdict::Other(other),
        }
    }
}

/// The filter's counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
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
    /// Heartbeats dropped in XDP: another LBID, or too short to carry one.
    pub drop_heartbeat: u64,
    /// Active-active: VIP traffic dropped because its queue had no socket
    /// ([`FLAG_DROP_ORPHANS`]; also counted in `no_socket`).
    pub drop_orphan: u64,
    /// Frames the fast path forwarded (`XDP_TX`).
    pub fast_tx: u64,
    /// Frames of the own share the fast path handed to the stack.
    pub fast_local: u64,
    /// Installed flows found stale (node failed or slot reused, by
    /// generation): to the workers.
    pub fast_stale: u64,
}

/// A program from an embedded object, attached to one interface; detached
/// (errors logged) on drop.
struct Attached {
    prog: XdpProgram,
    ifname: String,
    mode: AttachMode,
}

impl Attached {
    fn open(
        object: &'static Elf,
        name: &'static str,
        ifname: &str,
        mode: AttachMode,
    ) -> Result<Attached, Error> {
        let ifindex = sys::ifindex(ifname)?;
        // Without bpffs libxdp still attaches, just without the dispatcher.
        let _ = ensure_bpffs();
        detach_named(ifname, ifindex, name)?;
        let mut prog = XdpProgram::open(name, object)?;
        let mut last = None;
        for &(xdp_mode, m) in mode.attempts() {
            match prog.attach(ifindex, xdp_mode) {
                Ok(()) => {
                    return Ok(Attached {
                        prog,
                        ifname: ifname.to_owned(),
                        mode: m,
                    });
                }
                Err(e) => last = Some((m, e)),
            }
        }
        let (m, source) = last.expect("every AttachMode has at least one attempt");
        Err(Error::Attach {
            program: name,
            ifname: ifname.to_owned(),
            mode: m.as_str(),
            source: Box::new(source),
        })
    }

    /// Debug output of the program's owner (`Filter`, `PassProgram`).
    fn fmt_as(&self, f: &mut std::fmt::Formatter<'_>, owner: &str) -> std::fmt::Result {
        f.debug_struct(owner)
            .field("ifname", &self.ifname)
            .field("mode", &self.mode)
            .finish()
    }

    fn map(&self, name: &str) -> Result<Map, Error> {
        Ok(self.prog.map(name)?)
    }

    fn detach(&mut self) -> Result<(), Error> {
        self.prog.detach().map_err(|source| Error::Detach {
            ifname: self.ifname.clone(),
            source: Box::new(source),
        })
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Err(e) = self.detach() {
            crate::eprintln_safe!("proxyha: xsk: {}", super::chain(&e));
        }
    }
}

/// [`bpf::detach_named`] with this module's error.
fn detach_named(ifname: &str, ifindex: u32, name: &str) -> Result<usize, Error> {
    bpf::detach_named(ifname, ifindex, name).map_err(|source| Error::Detach {
        ifname: ifname.to_owned(),
        source: Box::new(source),
    })
}

/// Removes a `proxyha_filter` program that a crashed run left attached to
/// `ifname`, returning how many were removed. [`Filter::attach`] calls this
/// itself.
pub fn detach_stale(ifname: &str) -> Result<usize, Error> {
    let ifindex = sys::ifindex(ifname)?;
    let _ = ensure_bpffs();
    detach_named(ifname, ifindex, FILTER_PROGRAM)
}

/// Shadow copies of what the control plane wrote, to apply deltas.
struct Shadow {
    config: FilterConfig,
    vips: BTreeSet<Ipv4Addr>,
    ports: Box<[u64; 2 * PORT_WORDS]>,
    peers: BTreeSet<[u8; 6]>,
}

/// The filter program, attached to one interface, with its maps.
///
/// All setters take `&self` and may be called from the control plane while
/// workers run; each is one or a few `bpf(2)` map updates.
pub struct Filter {
    attached: Attached,
    xsks: Map,
    config: Map,
    vips: Map,
    /// IPv6 VIPs (issue 16): neighbour solicitations for them are steered.
    vips6: Map,
    ports: Map,
    peers: Map,
    stats: Map,
    fast: FastPath,
    shadow: Mutex<Shadow>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.attached.fmt_as(f, "Filter")
    }
}

impl Filter {
    /// Loads the filter and attaches it to `ifname` (after removing one a
    /// crashed run left there). All maps start empty, so nothing is steered
    /// until [`Filter::set_config`] sets flags.
    pub fn attach(ifname: &str, mode: AttachMode) -> Result<Filter, Error> {
        let attached = Attached::open(FILTER_OBJECT, FILTER_PROGRAM, ifname, mode)?;
        Ok(Filter {
            xsks: attached.map("proxyha_xsks")?,
            config: attached.map("proxyha_config")?,
            vips: attached.map("proxyha_vips")?,
            vips6: attached.map("proxyha_vips6")?,
            ports: attached.map("proxyha_ports")?,
            peers: attached.map("proxyha_peers")?,
            stats: attached.map("proxyha_stats")?,
            fast: FastPath::new(
                attached.map("proxyha_flows")?,
                attached.map("proxyha_nodes")?,
                attached.map("proxyha_fast")?,
                crate::balance::flow::random_seed(),
            )?,
            attached,
            shadow: Mutex::new(Shadow {
                config: FilterConfig::default(),
                vips: BTreeSet::new(),
                ports: Box::new([0; 2 * PORT_WORDS]),
                peers: BTreeSet::new(),
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
        Ok(self.xsks.update(&socket.queue(), &fd)?)
    }

    /// Removes the socket of `queue` from the XSKMAP.
    pub fn remove_socket(&self, queue: u32) -> Result<(), Error> {
        self.xsks.delete(&queue)?;
        Ok(())
    }

    /// Writes the config entry (VRID, virtual MAC, flags, fast path).
    pub fn set_config(&self, config: &FilterConfig) -> Result<(), Error> {
        let mut shadow = self.lock();
        // Installs from now on carry the new epoch; one racing with this
        // write carries the old one and is a miss, which re-installs it.
        self.fast.epoch.store(config.epoch, Ordering::Relaxed);
        self.config
            .update(&0u32, &config.to_bytes(self.fast.seed()))?;
        let new_epoch = shadow.config.epoch != config.epoch;
        shadow.config = *config;
        if new_epoch {
            self.fast.clear();
        }
        Ok(())
    }

    /// The fast path's maps ([`FastPath`]).
    pub fn fast_path(&self) -> &FastPath {
        &self.fast
    }

    /// The config entry last written.
    pub fn config(&self) -> FilterConfig {
        self.lock().config
    }

    /// Sets or clears [`FLAG_ACTIVE`] (becoming or leaving VRRP master).
    /// Clearing it stops the fast path with the same map write; setting it
    /// (a takeover) also moves the fast-path epoch on, so that the fast path
    /// starts empty: flows installed in an earlier term are misses.
    pub fn set_active(&self, active: bool) -> Result<(), Error> {
        let mut config = self.config();
        if active {
            if config.flags & FLAG_ACTIVE == 0 {
                config.epoch = config.epoch.wrapping_add(1);
            }
            config.flags |= FLAG_ACTIVE;
        } else {
            config.flags &= !FLAG_ACTIVE;
        }
        self.set_config(&config)
    }

    /// Adds IPv6 VIPs (the IPv6 VIPs change only with a restart, so they
    /// are written once, at start).
    pub fn add_vips6(&self, vips: &[std::net::Ipv6Addr]) -> Result<(), Error> {
        for v in vips {
            self.vips6.update(&v.octets(), &1u8)?;
        }
        Ok(())
    }

    /// Replaces the set of VIPs.
    pub fn set_vips(&self, vips: &[Ipv4Addr]) -> Result<(), Error> {
        let mut shadow = self.lock();
        let want: BTreeSet<Ipv4Addr> = vips.iter().copied().collect();
        let removed = shadow.vips.difference(&want).count() > 0;
        for gone in shadow.vips.difference(&want) {
            self.vips.delete(&gone.octets())?;
        }
        for new in want.difference(&shadow.vips) {
            self.vips.update(&new.octets(), &1u8)?;
        }
        shadow.vips = want;
        if removed {
            self.new_epoch(&mut shadow)?;
        }
        Ok(())
    }

    /// Replaces the set of peer MACs ([`FLAG_PEERS`]); at most 256.
    pub fn set_peers(&self, macs: &[[u8; 6]]) -> Result<(), Error> {
        let key = |m: &[u8; 6]| {
            let mut k = [0u8; 8];
            k[..6].copy_from_slice(m);
            k
        };
        let mut shadow = self.lock();
        let want: BTreeSet<[u8; 6]> = macs.iter().copied().collect();
        for gone in shadow.peers.difference(&want) {
            self.peers.delete(&key(gone))?;
        }
        for new in want.difference(&shadow.peers) {
            self.peers.update(&key(new), &1u8)?;
        }
        shadow.peers = want;
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
        let removed = bitmap
            .iter()
            .zip(shadow.ports.iter())
            .any(|(n, o)| o & !n != 0);
        self.ports
            .update_bytes(&0u32.to_ne_bytes(), bytemuck::cast_slice(&bitmap[..]))?;
        shadow.ports = bitmap;
        if removed {
            self.new_epoch(&mut shadow)?;
        }
        Ok(())
    }

    /// Reads the program's counters.
    pub fn stats(&self) -> Result<FilterStats, Error> {
        let mut sum = [0u64; STAT_COUNT as usize];
        for (key, slot) in (0..STAT_COUNT).zip(sum.iter_mut()) {
            let values: Vec<u64> = self.stats.lookup_percpu(&key)?;
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
            drop_heartbeat: sum[7],
            drop_orphan: sum[8],
            fast_tx: sum[9],
            fast_local: sum[10],
            fast_stale: sum[11],
        })
    }

    /// Runs one frame through the loaded program (`BPF_PROG_TEST_RUN`, as if
    /// received on queue 0) and returns its verdict, without sending or
    /// receiving anything. Counts in [`Filter::stats`] like a real frame. For
    /// tests and diagnostics; frames shorter than 14 bytes are refused by the
    /// kernel (EINVAL).
    pub fn verdict(&self, frame: &[u8]) -> Result<Verdict, Error> {
        Ok(Verdict::of(self.attached.prog.test_run(frame)?))
    }

    /// Like [`Filter::verdict`], and also returns the frame as the program
    /// left it (the fast path's MAC rewrites).
    pub fn run(&self, frame: &[u8]) -> Result<(Verdict, Vec<u8>), Error> {
        let (rc, out) = self.attached.prog.test_run_out(frame)?;
        Ok((Verdict::of(rc), out))
    }

    /// Detaches the program now (dropping the filter does the same).
    pub fn detach(mut self) -> Result<(), Error> {
        self.attached.detach()
    }

    /// Moves the fast-path epoch on: every installed flow becomes a miss.
    /// The fast path looks flows up before the VIP and port checks, so this
    /// follows every removal of a VIP or a redirected port: no installed
    /// flow outlives what it was installed for.
    fn new_epoch(&self, shadow: &mut Shadow) -> Result<(), Error> {
        let config = FilterConfig {
            epoch: shadow.config.epoch.wrapping_add(1),
            ..shadow.config
        };
        self.fast.epoch.store(config.epoch, Ordering::Relaxed);
        self.config
            .update(&0u32, &config.to_bytes(self.fast.seed()))?;
        shadow.config = config;
        self.fast.clear();
        Ok(())
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
        self.attached.fmt_as(f, "PassProgram")
    }
}

impl PassProgram {
    /// Loads and attaches the pass program.
    pub fn attach(ifname: &str, mode: AttachMode) -> Result<PassProgram, Error> {
        Ok(PassProgram {
            attached: Attached::open(PASS_OBJECT, PASS_PROGRAM, ifname, mode)?,
        })
    }

    /// The mode it runs in.
    pub fn mode(&self) -> AttachMode {
        self.attached.mode
    }
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
        let c = FilterConfig::director(51, true).with_lbid(0x0a0b);
        let b = c.to_bytes(0);
        assert_eq!(
            b[..12],
            [
                0,
                0,
                0x5e,
                0,
                1,
                51,
                51,
                FLAG_ACTIVE | FLAG_VRRP | FLAG_HEARTBEAT,
                0x0a,
                0x0b,
                0xff,
                0xff
            ]
        );
        assert_eq!(b[12..], [0; 20]);
        let o = c.with_offload(true, false, [2, 0, 0, 0, 0, 9], Some(0x0102));
        let o = FilterConfig { epoch: 7, ..o };
        let b = o.to_bytes(0x0102_0304_0506_0708);
        assert_eq!(b[7] & (FLAG_OFFLOAD | FLAG_OFFLOAD_LOCAL), FLAG_OFFLOAD);
        assert_eq!(b[10..18], [1, 2, 2, 0, 0, 0, 0, 9]);
        assert_eq!(b[20..24], 7u32.to_ne_bytes());
        assert_eq!(
            b[24..],
            0x0102_0304_0506_0708u64.to_ne_bytes(),
            "the flow seed"
        );
        let off = o.with_offload(false, true, [0; 6], None);
        assert_eq!(off.flags & (FLAG_OFFLOAD | FLAG_OFFLOAD_LOCAL), 0);
        assert_eq!(FilterConfig::director(7, false).flags & FLAG_ACTIVE, 0);
    }
}
