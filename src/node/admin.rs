//! The admin socket (`node.control_socket` in the config): a Unix stream
//! socket per node over which the CLI asks the running daemon for its status
//! and counters, and drains it. Not to be confused with the control plane
//! ([`crate::control`]), which runs the protocols.
//!
//! The protocol is one request line ([`Request`]: `status`, `stats`,
//! `drain on|off`, `reload`, `events`) answered by one JSON document
//! (`events`: one JSON line per recent event), after which the daemon
//! closes the connection. `events follow` is the one long-lived request:
//! the recent events, then one line per new event until either side closes
//! ([`Answer::Stream`]); such a connection leaves the [`MAX_CONNECTIONS`]
//! count once it is streaming (the event hub bounds the followers). The
//! daemon's handler never blocks the packet path: it reads snapshots the
//! control plane publishes.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::{Gid, Group, Uid};
use thiserror::Error;

/// Why talking to a daemon failed.
#[derive(Debug, Error)]
pub enum Error {
    /// Nothing listens at the socket.
    #[error("no proxyha daemon at {path}: {source} (is `proxyha run` running for this node?)")]
    Connect { path: PathBuf, source: io::Error },
    /// The exchange broke off.
    #[error("control socket {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The socket path is taken by a live daemon.
    #[error("control socket {path} is in use by a running daemon")]
    InUse { path: PathBuf },
    /// `node.control_group` names no group on this machine.
    #[error("node.control_group = {0:?}: no such group")]
    NoGroup(String),
}

/// Who may use the socket. The socket file is mode 0600 (the daemon's user
/// only) unless a group is given: then 0660 and owned by that group, whose
/// members may read `status` and `stats`. Mutating requests (`drain`) are
/// always checked against the peer's credentials: only root or the daemon's
/// own user may send them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    /// The group that may read.
    pub group: Option<u32>,
}

impl Access {
    /// Resolves `node.control_group`.
    pub fn with_group(name: Option<&str>) -> Result<Access, Error> {
        let Some(name) = name else {
            return Ok(Access::default());
        };
        match Group::from_name(name) {
            Ok(Some(g)) => Ok(Access {
                group: Some(g.gid.as_raw()),
            }),
            _ => Err(Error::NoGroup(name.to_owned())),
        }
    }

    fn mode(self) -> u32 {
        if self.group.is_some() { 0o660 } else { 0o600 }
    }
}

/// The peer of one connection, from `SO_PEERCRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl Peer {
    /// Whether this peer may send mutating requests: root, or the user the
    /// daemon runs as.
    pub fn may_change(&self) -> bool {
        self.uid == 0 || self.uid == Uid::effective().as_raw()
    }
}

/// A request line, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `status`: the node list and the protocols' state.
    Status,
    /// `stats`: the dataplane counters.
    Stats,
    /// `drain on` / `drain off`.
    Drain(bool),
    /// `reload`: re-read the config file and apply what changed.
    Reload,
    /// `events`: the recent events; `events follow`: and every later one.
    Events { follow: bool },
}

impl Request {
    /// Parses one request line (already trimmed).
    pub fn parse(line: &str) -> Result<Request, String> {
        match line {
            "status" => Ok(Request::Status),
            "stats" => Ok(Request::Stats),
            "drain on" => Ok(Request::Drain(true)),
            "drain off" => Ok(Request::Drain(false)),
            "reload" => Ok(Request::Reload),
            "events" => Ok(Request::Events { follow: false }),
            "events follow" => Ok(Request::Events { follow: true }),
            other => Err(format!("unknown request {other:?}")),
        }
    }

    /// Whether the request changes the daemon's state (and so needs root or
    /// the daemon's user, [`Peer::may_change`]).
    pub fn changes_state(self) -> bool {
        matches!(self, Request::Drain(_) | Request::Reload)
    }

    /// The request line the client sends.
    pub fn line(self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Stats => "stats",
            Request::Drain(true) => "drain on",
            Request::Drain(false) => "drain off",
            Request::Reload => "reload",
            Request::Events { follow: false } => "events",
            Request::Events { follow: true } => "events follow",
        }
    }
}

/// What a handler answers: one document, or a stream of lines.
pub enum Answer {
    /// Written, then the connection closes.
    Once(String),
    /// `first` lines, then every line from `lines` until it ends or the
    /// client goes away; `_hold` lives as long as the connection (a
    /// subscription token).
    Stream {
        first: Vec<String>,
        lines: crossbeam::channel::Receiver<String>,
        hold: Box<dyn Send>,
    },
}

/// The JSON answer to a request the daemon does not know.
pub fn error_answer(msg: &str) -> String {
    serde_json::json!({ "error": msg }).to_string()
}

/// Longest accepted request line.
const MAX_REQUEST: usize = 256;
/// How long one client has to send its request line and read the answer.
/// Each connection has its own thread, so a slow client delays only itself.
pub const DEADLINE: Duration = Duration::from_secs(1);
/// Connections served at once; more are closed at once and counted.
pub const MAX_CONNECTIONS: usize = 16;

/// A running admin-socket server; dropping it stops accepting and removes the socket.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    /// Connections closed at once because [`MAX_CONNECTIONS`] were busy.
    pub refused: Arc<AtomicU64>,
}

impl Server {
    /// Binds `path` (creating its directory) with the permissions `access`
    /// gives, and answers each request line with `handler(line, peer)`, one
    /// thread per connection. A stale socket file left by a crash is
    /// replaced; one that a live daemon answers on is an error.
    pub fn bind<F>(path: &Path, access: Access, handler: F) -> Result<Server, Error>
    where
        F: Fn(&str, &Peer) -> String + Send + Sync + 'static,
    {
        Server::bind_streaming(path, access, move |l, p| Answer::Once(handler(l, p)))
    }

    /// [`bind`](Self::bind) for a handler that may answer with a stream.
    pub fn bind_streaming<F>(path: &Path, access: Access, handler: F) -> Result<Server, Error>
    where
        F: Fn(&str, &Peer) -> Answer + Send + Sync + 'static,
    {
        let io_err = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(Error::InUse {
                    path: path.to_path_buf(),
                });
            }
            std::fs::remove_file(path).map_err(io_err)?;
        }
        let listener = UnixListener::bind(path).map_err(io_err)?;
        // The socket exists for a moment with the umask's mode; nothing is
        // answered before the mode and group are set below.
        if let Some(gid) = access.group {
            std::os::unix::fs::chown(path, None, Some(Gid::from_raw(gid).as_raw()))
                .map_err(io_err)?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(access.mode()))
            .map_err(io_err)?;
        listener.set_nonblocking(true).map_err(io_err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicU64::new(0));
        let (stop2, refused2) = (stop.clone(), refused.clone());
        let handler = Arc::new(handler);
        let busy = Arc::new(AtomicUsize::new(0));
        let thread = thread::Builder::new()
            .name("proxyha-admin".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                                busy.fetch_sub(1, Ordering::AcqRel);
                                refused2.fetch_add(1, Ordering::Relaxed);
                                continue; // dropping `s` closes it
                            }
                            let (handler, busy) = (handler.clone(), busy.clone());
                            let stop = stop2.clone();
                            let spawned = thread::Builder::new()
                                .name("proxyha-admin-conn".into())
                                .spawn(move || {
                                    let mut counted = true;
                                    let _ = answer(
                                        s,
                                        handler.as_ref(),
                                        &mut || {
                                            // Streaming: no longer one of the
                                            // short-lived connections.
                                            busy.fetch_sub(1, Ordering::AcqRel);
                                            counted = false;
                                        },
                                        &stop,
                                    );
                                    if counted {
                                        busy.fetch_sub(1, Ordering::AcqRel);
                                    }
                                });
                            if spawned.is_err() {
                                refused2.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(10));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
            .map_err(io_err)?;
        Ok(Server {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
            refused,
        })
    }
}

/// Reads one request line within [`DEADLINE`] (all of it, not per read, so
/// a client trickling bytes cannot hold the connection longer), then
/// answers it.
fn answer<F: Fn(&str, &Peer) -> Answer>(
    s: UnixStream,
    handler: &F,
    streaming: &mut dyn FnMut(),
    stop: &AtomicBool,
) -> io::Result<()> {
    s.set_nonblocking(false)?;
    let cred = getsockopt(&s, PeerCredentials).map_err(io::Error::from)?;
    let peer = Peer {
        pid: cred.pid(),
        uid: cred.uid(),
        gid: cred.gid(),
    };
    let buf = read_until(
        &s,
        |t| s.set_read_timeout(Some(t)),
        DEADLINE,
        MAX_REQUEST,
        |b| b.contains(&b'\n'),
    )?;
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = String::from_utf8_lossy(&buf[..line_end]);
    s.set_write_timeout(Some(DEADLINE))?;
    match handler(line.trim(), &peer) {
        Answer::Once(reply) => {
            (&s).write_all(reply.as_bytes())?;
            (&s).write_all(b"\n")
        }
        Answer::Stream { first, lines, hold } => {
            streaming();
            let _hold = hold;
            stream(&s, first, &lines, stop)
        }
    }
}

/// Reads from `r` until `complete` says the bytes so far are enough, the
/// peer closes, or `max` bytes came (cut there), all within [`DEADLINE`]
/// in total (not per read: a client trickling bytes cannot hold the
/// connection longer). `set_timeout` sets the socket's read timeout.
pub(super) fn read_until(
    mut r: impl Read,
    set_timeout: impl Fn(Duration) -> io::Result<()>,
    limit: Duration,
    max: usize,
    complete: impl Fn(&[u8]) -> bool,
) -> io::Result<Vec<u8>> {
    let deadline = Instant::now() + limit;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    while !complete(&buf) && buf.len() < max {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        set_timeout(left)?;
        let n = r.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.truncate(max);
    Ok(buf)
}

/// Writes `first`, then every line from `lines`, until it ends, the client
/// closes or a write takes longer than [`DEADLINE`] (a reader that stopped
/// reading), or the server stops.
fn stream(
    s: &UnixStream,
    first: Vec<String>,
    lines: &crossbeam::channel::Receiver<String>,
    stop: &AtomicBool,
) -> io::Result<()> {
    use crossbeam::channel::RecvTimeoutError;
    let mut out = s;
    for l in first {
        out.write_all(l.as_bytes())?;
        out.write_all(b"\n")?;
    }
    while !stop.load(Ordering::Relaxed) {
        match lines.recv_timeout(STREAM_CHECK) {
            Ok(l) => {
                out.write_all(l.as_bytes())?;
                out.write_all(b"\n")?;
            }
            Err(RecvTimeoutError::Timeout) => {
                // Has the client gone? (EOF or an error; it sends nothing else.)
                s.set_nonblocking(true)?;
                let mut b = [0u8; 64];
                let gone = match (&*s).read(&mut b) {
                    Ok(0) => true,
                    Ok(_) => false,
                    Err(e) => e.kind() != io::ErrorKind::WouldBlock,
                };
                s.set_nonblocking(false)?;
                if gone {
                    return Ok(());
                }
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
    Ok(())
}

/// How often an idle stream checks whether its client is still there.
const STREAM_CHECK: Duration = Duration::from_millis(500);

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends `req` to the daemon at `path` and returns its answer.
pub fn ask(path: &Path, req: Request) -> Result<String, Error> {
    request(path, req.line())
}

/// Connects to the daemon at `path` and sends one request line.
fn send(path: &Path, request: &str) -> Result<UnixStream, Error> {
    let s = UnixStream::connect(path).map_err(|source| Error::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    (&s).write_all(format!("{request}\n").as_bytes())
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(s)
}

/// Sends a raw request line to the daemon at `path` and returns its answer.
pub fn request(path: &Path, request: &str) -> Result<String, Error> {
    let s = send(path, request)?;
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io_err)?;
    let mut out = String::new();
    (&s).take(64 << 20)
        .read_to_string(&mut out)
        .map_err(io_err)?;
    Ok(out)
}

/// Sends `req` and hands each line of the answer to `on_line` as it
/// arrives, without a read timeout (`events follow`), until the daemon
/// closes the connection or `on_line` returns false.
pub fn follow(
    path: &Path,
    req: Request,
    mut on_line: impl FnMut(&str) -> bool,
) -> Result<(), Error> {
    use std::io::BufRead;
    let s = send(path, req.line())?;
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    // A line longer than this is not one of ours: stop there.
    let mut r = io::BufReader::new(&s).take(1 << 20);
    let mut line = String::new();
    loop {
        line.clear();
        r.set_limit(1 << 20);
        if r.read_line(&mut line).map_err(io_err)? == 0 {
            return Ok(());
        }
        if !on_line(line.trim_end()) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_print_back() {
        for r in [
            Request::Status,
            Request::Stats,
            Request::Drain(true),
            Request::Drain(false),
        ] {
            assert_eq!(Request::parse(r.line()), Ok(r));
        }
        assert!(
            Request::parse("drain")
                .unwrap_err()
                .contains("unknown request")
        );
        assert!(Request::parse("").is_err());
    }

    #[test]
    fn round_trip_and_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/node.sock");
        let server = Server::bind(&path, Access::default(), |req, _| {
            format!("{{\"echo\":\"{req}\"}}")
        })
        .unwrap();
        assert_eq!(request(&path, "status").unwrap(), "{\"echo\":\"status\"}\n");
        // A second daemon on the same socket is refused.
        assert!(matches!(
            Server::bind(&path, Access::default(), |_, _| String::new()),
            Err(Error::InUse { .. })
        ));
        drop(server);
        assert!(!path.exists());
        assert!(matches!(
            request(&path, "status"),
            Err(Error::Connect { .. })
        ));
    }

    #[test]
    fn a_stream_sends_its_first_lines_then_live_ones_and_frees_its_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        let (tx, rx) = crossbeam::channel::bounded::<String>(4);
        let _s = Server::bind_streaming(&path, Access::default(), move |req, _| {
            if req == "events follow" {
                Answer::Stream {
                    first: vec!["a".into()],
                    lines: rx.clone(),
                    hold: Box::new(()),
                }
            } else {
                Answer::Once("once".into())
            }
        })
        .unwrap();
        let feeder = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            tx.send("b".into()).unwrap();
            thread::sleep(DEADLINE + Duration::from_millis(200));
            tx.send("c".into()).unwrap();
            // Dropping the sender ends the stream.
        });
        let mut got = Vec::new();
        follow(&path, Request::Events { follow: true }, |l| {
            got.push(l.to_owned());
            true
        })
        .unwrap();
        feeder.join().unwrap();
        // Past the 1 s deadline of short requests, still streaming.
        assert_eq!(got, ["a", "b", "c"]);
        // Streams do not hold short-request slots.
        for _ in 0..MAX_CONNECTIONS + 2 {
            assert_eq!(request(&path, "status").unwrap(), "once\n");
        }
    }

    #[test]
    fn stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let _s = Server::bind(&path, Access::default(), |_, _| "ok".into()).unwrap();
        assert_eq!(request(&path, "x").unwrap(), "ok\n");
    }

    #[test]
    fn oversized_request_is_cut_not_hung() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        let _s = Server::bind(&path, Access::default(), |req, _| req.len().to_string()).unwrap();
        let long = "x".repeat(100_000);
        // The daemon reads at most MAX_REQUEST bytes and answers; the client
        // either reads that answer or sees the connection reset mid-write.
        match request(&path, &long) {
            Ok(a) => assert_eq!(a, "256\n"),
            Err(e) => assert!(matches!(e, Error::Io { .. }), "{e}"),
        }
        // And the daemon still serves the next request.
        assert_eq!(request(&path, "ok").unwrap(), "2\n");
    }

    #[test]
    fn socket_is_private_and_peers_are_identified() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        let _s = Server::bind(&path, Access::default(), |_, peer| {
            format!("{} {}", peer.uid, peer.may_change())
        })
        .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let me = Uid::effective().as_raw();
        assert_eq!(request(&path, "x").unwrap(), format!("{me} true\n"));
    }

    #[test]
    fn a_group_may_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        let gid = nix::unistd::Gid::effective().as_raw();
        let _s = Server::bind(&path, Access { group: Some(gid) }, |_, _| "ok".into()).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), gid);
        assert!(matches!(
            Access::with_group(Some("proxyha-no-such-group")),
            Err(Error::NoGroup(_))
        ));
    }

    #[test]
    fn other_users_may_not_change() {
        let root = Peer {
            pid: 1,
            uid: 0,
            gid: 0,
        };
        assert!(root.may_change());
        let stranger = Peer {
            pid: 1,
            uid: 54321,
            gid: 54321,
        };
        assert_eq!(
            stranger.may_change(),
            Uid::effective().as_raw() == 54321,
            "only root or the daemon's user"
        );
    }

    #[test]
    fn a_silent_client_delays_nobody_and_is_cut_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        let _s = Server::bind(&path, Access::default(), |_, _| "ok".into()).unwrap();
        // Several clients connect and say nothing.
        let silent: Vec<UnixStream> = (0..4)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        // Another client is answered while they are all still connected.
        assert_eq!(request(&path, "status").unwrap(), "ok\n");
        // The silent ones are closed by the daemon (EOF, no answer) once the
        // deadline passes; the read timeout here only bounds the test.
        for mut s in silent {
            s.set_read_timeout(Some(DEADLINE * 10)).unwrap();
            let mut out = Vec::new();
            let n = s.read_to_end(&mut out).unwrap();
            assert_eq!((n, out.len()), (0, 0));
        }
    }

    #[test]
    fn excess_connections_are_refused_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        let s = Server::bind(&path, Access::default(), |_, _| "ok".into()).unwrap();
        let hold: Vec<UnixStream> = (0..MAX_CONNECTIONS + 4)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        // Wait until the accept loop has seen them all (bounded).
        let until = Instant::now() + Duration::from_secs(5);
        while s.refused.load(Ordering::Relaxed) < 4 && Instant::now() < until {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(s.refused.load(Ordering::Relaxed) >= 4);
        drop(hold);
        // Once the held ones are gone (deadline), the daemon serves again.
        let until = Instant::now() + DEADLINE * 10;
        let ok = loop {
            if request(&path, "x").is_ok_and(|a| a == "ok\n") {
                break true;
            }
            if Instant::now() > until {
                break false;
            }
            thread::sleep(Duration::from_millis(50));
        };
        assert!(ok);
    }
}
