//! The admin socket (`node.control_socket` in the config): a Unix stream
//! socket per node over which the CLI asks the running daemon for its status
//! and counters, and drains it. Not to be confused with the control plane
//! ([`crate::control`]), which runs the protocols.
//!
//! The protocol is one request line ([`Request`]: `status`, `stats`,
//! `drain on|off`) answered by one JSON document, after which the daemon
//! closes the connection. The daemon's handler never blocks the packet
//! path: it reads snapshots the control plane publishes.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

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
}

impl Request {
    /// Parses one request line (already trimmed).
    pub fn parse(line: &str) -> Result<Request, String> {
        match line {
            "status" => Ok(Request::Status),
            "stats" => Ok(Request::Stats),
            "drain on" => Ok(Request::Drain(true)),
            "drain off" => Ok(Request::Drain(false)),
            other => Err(format!("unknown request {other:?}")),
        }
    }

    /// The request line the client sends.
    pub fn line(self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::Stats => "stats",
            Request::Drain(true) => "drain on",
            Request::Drain(false) => "drain off",
        }
    }
}

/// The JSON answer to a request the daemon does not know.
pub fn error_answer(msg: &str) -> String {
    serde_json::json!({ "error": msg }).to_string()
}

/// Longest accepted request line.
const MAX_REQUEST: u64 = 256;

/// A running control-socket server; dropping it stops accepting and removes the socket.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `path` (creating its directory) and answers each request line
    /// with `handler(line)`. A stale socket file left by a crash is replaced;
    /// one that a live daemon answers on is an error.
    pub fn bind<F>(path: &Path, handler: F) -> Result<Server, Error>
    where
        F: Fn(&str) -> String + Send + 'static,
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
        listener.set_nonblocking(true).map_err(io_err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = thread::Builder::new()
            .name("proxyha-ctl".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => {
                            let _ = answer(s, &handler);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(20));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
            .map_err(io_err)?;
        Ok(Server {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }
}

fn answer<F: Fn(&str) -> String>(s: UnixStream, handler: &F) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new((&s).take(MAX_REQUEST)).read_line(&mut line)?;
    let reply = handler(line.trim());
    (&s).write_all(reply.as_bytes())?;
    (&s).write_all(b"\n")
}

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

/// Sends a raw request line to the daemon at `path` and returns its answer.
pub fn request(path: &Path, request: &str) -> Result<String, Error> {
    let s = UnixStream::connect(path).map_err(|source| Error::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io_err)?;
    (&s).write_all(format!("{request}\n").as_bytes())
        .map_err(io_err)?;
    let mut out = String::new();
    (&s).take(64 << 20)
        .read_to_string(&mut out)
        .map_err(io_err)?;
    Ok(out)
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
        let server = Server::bind(&path, |req| format!("{{\"echo\":\"{req}\"}}")).unwrap();
        assert_eq!(request(&path, "status").unwrap(), "{\"echo\":\"status\"}\n");
        // A second daemon on the same socket is refused.
        assert!(matches!(
            Server::bind(&path, |_| String::new()),
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
    fn stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let _s = Server::bind(&path, |_| "ok".into()).unwrap();
        assert_eq!(request(&path, "x").unwrap(), "ok\n");
    }

    #[test]
    fn oversized_request_is_cut_not_hung() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.sock");
        let _s = Server::bind(&path, |req| req.len().to_string()).unwrap();
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
}
