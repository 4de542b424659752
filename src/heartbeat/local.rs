//! Local health of this node: what its heartbeats report.
//!
//! * Proxy port reachable: a TCP connect to `127.0.0.1:port` (or `VIP:port`)
//!   with a short timeout ([`probe_port`]), as `mwg-mon -c` checks.
//! * Established connections to the proxy port: counted from
//!   `/proc/net/tcp` and `/proc/net/tcp6` ([`count_established`]).
//! * CPU load: the busy share of the deltas between two `/proc/stat`
//!   samples ([`CpuSample`]), per-mille.
//!
//! The parsers are pure functions over text and never panic; the thin I/O
//! wrappers ([`read_established`], [`read_cpu`]) only read the files.
//! Plain std only; no unsafe.

use std::fs;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use thiserror::Error;

/// Why a local probe could not run.
#[derive(Debug, Error)]
pub enum Error {
    /// A `/proc` file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: io::Error,
    },
    /// `/proc/stat` has no aggregate `cpu` line we understand.
    #[error("/proc/stat: no parsable aggregate cpu line")]
    NoCpuLine,
}

/// Default timeout of a proxy-port probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(200);

/// Whether a TCP connect to `addr` completes within `timeout`.
pub fn probe_port(addr: SocketAddr, timeout: Duration) -> bool {
    TcpStream::connect_timeout(&addr, timeout).is_ok()
}

/// The TCP state code of ESTABLISHED in `/proc/net/tcp` (`include/net/tcp_states.h`).
const TCP_ESTABLISHED: u8 = 0x01;

/// Result of counting one `/proc/net/tcp*` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpCount {
    /// Established sockets whose local port is the proxy port.
    pub established: u32,
    /// Lines that were not the header and did not parse (skipped).
    pub malformed_lines: u32,
}

/// Counts established sockets with local port `port` in the text of
/// `/proc/net/tcp` or `/proc/net/tcp6`.
///
/// Each line after the header reads
/// `sl local_address rem_address st ...`, where an address is
/// `HEXADDR:HEXPORT` (8 hex digits for IPv4, 32 for IPv6) and `st` is the
/// hex TCP state. Lines that do not have that shape are counted as
/// malformed and skipped.
pub fn count_established(text: &str, port: u16) -> TcpCount {
    let mut out = TcpCount::default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.starts_with("sl")) {
            continue;
        }
        match parse_line(line) {
            Some((local_port, state)) => {
                if local_port == port && state == TCP_ESTABLISHED {
                    out.established = out.established.saturating_add(1);
                }
            }
            None => out.malformed_lines = out.malformed_lines.saturating_add(1),
        }
    }
    out
}

/// `(local port, state)` of one socket line.
fn parse_line(line: &str) -> Option<(u16, u8)> {
    let mut it = line.split_ascii_whitespace();
    let slot = it.next()?;
    if !slot.ends_with(':') {
        return None;
    }
    let local = it.next()?;
    let remote = it.next()?;
    let state = it.next()?;
    let port = parse_endpoint(local)?;
    parse_endpoint(remote)?;
    if state.len() != 2 {
        return None;
    }
    let state = u8::from_str_radix(state, 16).ok()?;
    Some((port, state))
}

fn parse_endpoint(s: &str) -> Option<u16> {
    let (addr, port) = s.split_once(':')?;
    if !(addr.len() == 8 || addr.len() == 32) || !addr.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    if port.len() != 4 {
        return None;
    }
    u16::from_str_radix(port, 16).ok()
}

/// Reads `/proc/net/tcp` and `/proc/net/tcp6` (a missing tcp6, as on a
/// kernel without IPv6, counts as empty) and counts established sockets
/// on `port`.
pub fn read_established(port: u16) -> Result<u32, Error> {
    read_established_in(Path::new("/proc/net"), port)
}

/// [`read_established`] for another `/proc/net` directory (tests, or a
/// network namespace's `/proc/PID/net`).
pub fn read_established_in(dir: &Path, port: u16) -> Result<u32, Error> {
    let mut total = 0u32;
    for (name, required) in [("tcp", true), ("tcp6", false)] {
        let path = dir.join(name);
        match fs::read_to_string(&path) {
            Ok(text) => total = total.saturating_add(count_established(&text, port).established),
            Err(e) if !required && e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        }
    }
    Ok(total)
}

/// Aggregate CPU time from the `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuSample {
    /// idle + iowait.
    pub idle: u64,
    /// All fields summed (user nice system idle iowait irq softirq steal).
    pub total: u64,
}

impl CpuSample {
    /// Parses the aggregate `cpu ` line of `/proc/stat` text. `None` when
    /// there is none or it has fewer than four numeric fields.
    pub fn parse(text: &str) -> Option<CpuSample> {
        let line = text.lines().find(|l| {
            let mut w = l.split_ascii_whitespace();
            w.next() == Some("cpu")
        })?;
        let mut fields = Vec::with_capacity(10);
        for w in line.split_ascii_whitespace().skip(1) {
            fields.push(w.parse::<u64>().ok()?);
        }
        if fields.len() < 4 {
            return None;
        }
        // user nice system idle iowait irq softirq steal [guest guest_nice];
        // guest time is already counted in user/nice, so stop at steal.
        let idle = fields[3].saturating_add(fields.get(4).copied().unwrap_or(0));
        let total = fields
            .iter()
            .take(8)
            .fold(0u64, |acc, v| acc.saturating_add(*v));
        Some(CpuSample { idle, total })
    }

    /// Busy share between an earlier sample and this one, per-mille
    /// (0..=1000). 0 when no time passed or the counters went backwards.
    pub fn load_since(&self, earlier: &CpuSample) -> u16 {
        let total = self.total.saturating_sub(earlier.total);
        let idle = self.idle.saturating_sub(earlier.idle).min(total);
        if total == 0 {
            return 0;
        }
        let busy = total - idle;
        // busy <= total, so the quotient is <= 1000.
        (u128::from(busy) * 1000 / u128::from(total)) as u16
    }
}

/// Reads a [`CpuSample`] from `/proc/stat`.
pub fn read_cpu() -> Result<CpuSample, Error> {
    let text = fs::read_to_string("/proc/stat").map_err(|source| Error::Read {
        path: "/proc/stat".into(),
        source,
    })?;
    CpuSample::parse(&text).ok_or(Error::NoCpuLine)
}

/// The whole local probe of one node, run once per heartbeat interval by
/// the control plane (it blocks for up to `timeout` per unreachable port, so
/// keep it off the dataplane threads).
#[derive(Debug, Clone)]
pub struct Probe {
    /// Where to connect for each configured proxy port, in config order
    /// (`127.0.0.1:port` or `VIP:port`).
    pub targets: Vec<SocketAddr>,
    /// Connect timeout per port.
    pub timeout: Duration,
    /// The `/proc/net` directory to count connections in.
    pub proc_net: std::path::PathBuf,
    last_cpu: Option<CpuSample>,
}

impl Probe {
    /// A probe of `targets` with [`PROBE_TIMEOUT`] and `/proc/net`.
    pub fn new(targets: Vec<SocketAddr>) -> Self {
        Probe {
            targets,
            timeout: PROBE_TIMEOUT,
            proc_net: "/proc/net".into(),
            last_cpu: None,
        }
    }

    /// Probes every port, counts established connections to them (each
    /// distinct port once), and measures CPU load since the previous call
    /// (0 on the first). A `/proc` file that cannot be read counts as 0
    /// connections or 0 load and is returned as the second value, so the
    /// caller can log it; the port checks still decide the state.
    pub fn sample(&mut self, draining: bool) -> (super::LocalHealth, Option<Error>) {
        let results: Vec<bool> = self
            .targets
            .iter()
            .map(|a| probe_port(*a, self.timeout))
            .collect();
        let mut err = None;
        let mut ports: Vec<u16> = self.targets.iter().map(SocketAddr::port).collect();
        ports.sort_unstable();
        ports.dedup();
        let mut connections = 0u32;
        for port in ports {
            match read_established_in(&self.proc_net, port) {
                Ok(n) => connections = connections.saturating_add(n),
                Err(e) => err = Some(e),
            }
        }
        let load_permille = match read_cpu() {
            Ok(now) => {
                let load = self.last_cpu.map_or(0, |prev| now.load_since(&prev));
                self.last_cpu = Some(now);
                load
            }
            Err(e) => {
                err = Some(e);
                0
            }
        };
        (
            super::LocalHealth {
                ports: super::Ports::from_results(&results),
                connections,
                load_permille,
                draining,
            },
            err,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, TcpListener};

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21393 1 0000000000000000 100 0 0 10 0
   1: 0100007F:2382 0100007F:D4A2 01 00000000:00000000 00:00000000 00000000    13        0 51234 1 0000000000000000 20 4 30 10 -1
   2: FA0012C6:2382 640012C6:C350 01 00000000:00000000 00:00000000 00000000    13        0 51235 1 0000000000000000 20 4 30 10 -1
   3: FA0012C6:2382 640012C6:C351 06 00000000:00000000 03:00000A3B 00000000     0        0 0 3 0000000000000000
   4: 0100007F:D4A2 0100007F:2382 01 00000000:00000000 00:00000000 00000000     0        0 51233 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:2382 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21395 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:2382 0000000000000000FFFF00000100007F:E1C4 01 00000000:00000000 00:00000000 00000000    13        0 61234 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn counts_established_on_the_proxy_port_only() {
        // 0x2382 = 9090. Line 0 listens, line 3 is TIME_WAIT, line 4 is the
        // client side (local port 0xd4a2): none of them count.
        assert_eq!(
            count_established(TCP, 9090),
            TcpCount {
                established: 2,
                malformed_lines: 0
            }
        );
        assert_eq!(count_established(TCP6, 9090).established, 1);
        assert_eq!(count_established(TCP, 8080).established, 0);
        assert_eq!(count_established(TCP, 0xd4a2).established, 1);
    }

    #[test]
    fn malformed_lines_are_counted_and_skipped() {
        let text = format!(
            "{TCP}garbage\n  9: 0100007F:XYZW 0100007F:0001 01\n  9: 0100007F:2382 0100007F:0001 1\n"
        );
        assert_eq!(
            count_established(&text, 9090),
            TcpCount {
                established: 2,
                malformed_lines: 3
            }
        );
    }

    #[test]
    fn reads_a_proc_net_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("tcp"), TCP).unwrap();
        assert_eq!(read_established_in(dir.path(), 9090).unwrap(), 2);
        fs::write(dir.path().join("tcp6"), TCP6).unwrap();
        assert_eq!(read_established_in(dir.path(), 9090).unwrap(), 3);
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_established_in(empty.path(), 9090),
            Err(Error::Read { .. })
        ));
    }

    #[test]
    fn cpu_load_from_stat_deltas() {
        let a = CpuSample::parse("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n").unwrap();
        assert_eq!(
            a,
            CpuSample {
                idle: 800,
                total: 1000
            }
        );
        let b = CpuSample::parse("cpu  400 0 200 900 100 0 0 0 0 0\n").unwrap();
        // 600 ticks passed, 200 idle: 400/600 busy.
        assert_eq!(b.load_since(&a), 666);
        assert_eq!(a.load_since(&a), 0);
        assert_eq!(a.load_since(&b), 0); // backwards: 0, not a panic
        assert_eq!(CpuSample::parse("cpu0 1 2 3 4\n"), None);
        assert_eq!(CpuSample::parse("cpu 1 2 x 4\n"), None);
        assert_eq!(CpuSample::parse("cpu 1 2 3\n"), None);
    }

    #[test]
    fn reads_this_machines_proc() {
        // /proc exists on every machine this runs on (Linux).
        let s = read_cpu().unwrap();
        assert!(s.total >= s.idle);
        read_established(9).unwrap();
    }

    #[test]
    fn probe_sees_a_listener_and_not_a_closed_port() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = l.local_addr().unwrap();
        assert!(probe_port(addr, PROBE_TIMEOUT));
        drop(l);
        assert!(!probe_port(addr, PROBE_TIMEOUT));
    }

    #[test]
    fn probe_sees_a_live_proxy_and_its_connections() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let live = l.local_addr().unwrap();
        let dead = {
            let d = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
            d.local_addr().unwrap()
        };
        let _client = TcpStream::connect(live).unwrap();
        let _server = l.accept().unwrap();
        let mut p = Probe::new(vec![live, dead]);
        let (h, err) = p.sample(false);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(
            h.ports,
            crate::heartbeat::Ports {
                count: 2,
                reachable: 0b01
            }
        );
        // Our accepted socket, plus the probe's own connection if the
        // kernel still lists it as established.
        assert!(h.connections >= 1, "{h:?}");
        assert!(!h.draining);
        let (h2, _) = p.sample(true);
        assert!(h2.draining);
        assert!(h2.load_permille <= 1000);
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC*", port: u16) {
            let c = count_established(&text, port);
            prop_assert!(c.established as usize <= text.lines().count());
            let _ = CpuSample::parse(&text);
        }

        #[test]
        fn line_shaped_text_never_panics(
            lines in proptest::collection::vec(
                ("[0-9 ]{0,4}:?", "[0-9A-Fa-f:]{0,40}", "[0-9A-Fa-f:]{0,40}", "[0-9A-F]{0,3}"), 0..20),
            port: u16,
        ) {
            let text: String = lines.iter().map(|(a, b, c, d)| format!("{a} {b} {c} {d} rest\n")).collect();
            let _ = count_established(&text, port);
        }

        #[test]
        fn generated_sockets_are_counted_exactly(
            socks in proptest::collection::vec((any::<u32>(), any::<u16>(), any::<u32>(), any::<u16>(), 1u8..12), 0..50),
            port: u16,
        ) {
            let mut text = String::from("  sl  local_address rem_address   st tx_queue\n");
            let mut want = 0;
            for (i, (la, lp, ra, rp, st)) in socks.iter().enumerate() {
                text.push_str(&format!("{i:4}: {la:08X}:{lp:04X} {ra:08X}:{rp:04X} {st:02X} 00000000:00000000\n"));
                if *lp == port && *st == TCP_ESTABLISHED { want += 1; }
            }
            prop_assert_eq!(count_established(&text, port), TcpCount { established: want, malformed_lines: 0 });
        }

        #[test]
        fn load_is_per_mille(a in proptest::collection::vec(any::<u32>(), 4..10), b in proptest::collection::vec(any::<u32>(), 4..10)) {
            let fmt = |v: &Vec<u32>| format!("cpu {}\n", v.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
            let (Some(x), Some(y)) = (CpuSample::parse(&fmt(&a)), CpuSample::parse(&fmt(&b))) else {
                return Err(TestCaseError::fail("well-formed line did not parse"));
            };
            prop_assert!(y.load_since(&x) <= 1000);
        }
    }
}
