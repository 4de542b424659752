//! The systemd notification protocol (`sd_notify(3)`), for
//! `packaging/systemd/proxyha@.service` (`Type=notify`, `WatchdogSec=`):
//! `READY=1` once the node runs, `WATCHDOG=1` from the run loop at half the
//! watchdog interval while it is healthy, `RELOADING=1` / `READY=1` around a
//! reload and `STOPPING=1` when it leaves the cluster. Without
//! `$NOTIFY_SOCKET` (not under systemd) every call does nothing.
//!
//! The protocol is one datagram per message to the Unix socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace), so it
//! is written here rather than pulled in as a crate.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use crate::log;

/// Talks to the service manager.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
    last_pet: Option<Instant>,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
    pub fn from_env() -> Notifier {
        let socket = std::env::var("NOTIFY_SOCKET").ok();
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0)
            .filter(|_| {
                std::env::var("WATCHDOG_PID")
                    .ok()
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_none_or(|p| p == std::process::id())
            })
            .map(Duration::from_micros);
        Notifier::new(socket.as_deref(), watchdog)
    }

    /// Notifies `socket` (a path or `@abstract`); pets a watchdog of
    /// `watchdog` if given.
    pub fn new(socket: Option<&str>, watchdog: Option<Duration>) -> Notifier {
        let target = socket.and_then(|s| {
            let addr = match s.strip_prefix('@') {
                Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
                None => SocketAddr::from_pathname(s),
            };
            match (addr, UnixDatagram::unbound()) {
                (Ok(a), Ok(d)) => Some((d, a)),
                (Err(e), _) | (_, Err(e)) => {
                    log!("systemd", "NOTIFY_SOCKET={s:?} unusable: {e}");
                    None
                }
            }
        });
        Notifier {
            watchdog: watchdog.filter(|_| target.is_some()),
            target,
            last_pet: None,
        }
    }

    /// Whether a service manager listens.
    pub fn active(&self) -> bool {
        self.target.is_some()
    }

    fn send(&self, msg: &str) {
        if let Some((d, a)) = &self.target
            && let Err(e) = d.send_to_addr(msg.as_bytes(), a)
        {
            log!("systemd", "notify {:?} failed: {e}", msg.lines().next());
        }
    }

    /// The node is up: the service manager may start what depends on it.
    pub fn ready(&self, status: &str) {
        self.send(&format!(
            "READY=1\nMAINPID={}\nSTATUS={status}",
            std::process::id()
        ));
    }

    /// A status line for `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    /// A reload begins (`READY=1` ends it).
    pub fn reloading(&self) {
        let usec = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
            .unwrap_or(0);
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
    }

    /// The node is leaving the cluster.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// Pets the watchdog if half its interval passed since the last time.
    /// Call it from the run loop while the node is healthy: a hung loop or
    /// dead workers let it expire, and the service manager restarts us.
    pub fn pet(&mut self, now: Instant) {
        let Some(w) = self.watchdog else { return };
        if self.last_pet.is_none_or(|t| now.duration_since(t) >= w / 2) {
            self.last_pet = Some(now);
            self.send("WATCHDOG=1");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(d: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = d.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn messages_reach_a_path_socket_and_the_watchdog_is_paced() {
        let dir = std::env::temp_dir().join(format!("proxyha-sdnotify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut n = Notifier::new(path.to_str(), Some(Duration::from_secs(4)));
        assert!(n.active());
        n.ready("serving");
        let m = recv(&server);
        assert!(m.starts_with("READY=1\nMAINPID="), "{m}");
        assert!(m.ends_with("STATUS=serving"), "{m}");
        let t = Instant::now();
        n.pet(t);
        assert_eq!(recv(&server), "WATCHDOG=1");
        // Not again before half the interval...
        n.pet(t + Duration::from_secs(1));
        n.stopping();
        assert_eq!(recv(&server), "STOPPING=1");
        // ...then again.
        n.pet(t + Duration::from_secs(2));
        assert_eq!(recv(&server), "WATCHDOG=1");
        n.reloading();
        assert!(recv(&server).starts_with("RELOADING=1\nMONOTONIC_USEC="));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn abstract_sockets_work_and_no_socket_is_a_no_op() {
        let name = format!("proxyha-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let n = Notifier::new(Some(&format!("@{name}")), None);
        n.status("hello");
        assert_eq!(recv(&server), "STATUS=hello");
        let mut off = Notifier::new(None, Some(Duration::from_secs(1)));
        assert!(!off.active());
        off.pet(Instant::now());
        off.ready("x");
    }
}
