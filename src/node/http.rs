//! The metrics endpoint's HTTP/1.1 server: `GET /metrics` (and `HEAD`)
//! answered with the Prometheus text format; 404 for any other path, 405
//! for any other method, 400 for a request that does not parse.
//!
//! Small on purpose (a scrape every few seconds needs no framework): a
//! `std` listener on its own thread, one short-lived thread per connection,
//! at most [`MAX_CONNECTIONS`] at once (more are closed at once and
//! counted), [`DEADLINE`] to send the request head (all of it, not per
//! read) and to take the answer, a head of at most [`MAX_HEAD`] bytes, and
//! one request per connection (`Connection: close`).

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use super::metrics::CONTENT_TYPE;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 4;
/// How long a client has to send its request head, and to read the answer.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// The longest request head read.
pub const MAX_HEAD: usize = 8192;

/// A request line's method, as far as this server cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other,
}

/// Why a request head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// No complete request line (`METHOD TARGET HTTP/1.x`).
    Malformed,
}

/// Parses the request line of `head` (the bytes up to the blank line, or
/// all that arrived): method and the path without its query.
pub fn parse_request(head: &[u8]) -> Result<(Method, &str), BadRequest> {
    let end = head
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(BadRequest::Malformed)?;
    let line = std::str::from_utf8(&head[..end]).map_err(|_| BadRequest::Malformed)?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadRequest::Malformed);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') || method.is_empty() {
        return Err(BadRequest::Malformed);
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    let path = target.split('?').next().unwrap_or(target);
    Ok((method, path))
}

/// The whole response to `head`; `body` renders the metrics.
pub fn respond(head: &[u8], body: impl FnOnce() -> String) -> Vec<u8> {
    let (status, ctype, text, with_body) = match parse_request(head) {
        Err(BadRequest::Malformed) => (
            "400 Bad Request",
            "text/plain",
            "bad request\n".to_owned(),
            true,
        ),
        Ok((Method::Other, _)) => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET and HEAD\n".to_owned(),
            true,
        ),
        Ok((m, "/metrics")) => ("200 OK", CONTENT_TYPE, body(), m == Method::Get),
        Ok((m, _)) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n".to_owned(),
            m == Method::Get,
        ),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        text.len(),
        if status.starts_with("405") { "Allow: GET, HEAD\r\n" } else { "" }
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(text.as_bytes());
    }
    out
}

/// A running endpoint; dropping it stops it.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    /// The address it listens on (the port chosen when 0 was asked, in tests).
    pub local: SocketAddr,
    /// Connections closed at once because [`MAX_CONNECTIONS`] were busy.
    pub refused: Arc<AtomicU64>,
}

impl Server {
    /// Listens on `addr`; `render` makes the body of each `GET /metrics`.
    pub fn bind<F>(addr: SocketAddr, render: F) -> io::Result<Server>
    where
        F: Fn() -> String + Send + Sync + 'static,
    {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicU64::new(0));
        let (stop2, refused2) = (stop.clone(), refused.clone());
        let render = Arc::new(render);
        let busy = Arc::new(AtomicUsize::new(0));
        let thread = thread::Builder::new()
            .name("proxyha-metrics".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    let Ok((s, _)) = listener.accept() else {
                        thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                        busy.fetch_sub(1, Ordering::AcqRel);
                        refused2.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let (render, busy2) = (render.clone(), busy.clone());
                    let spawned = thread::Builder::new()
                        .name("proxyha-metrics-conn".into())
                        .spawn(move || {
                            let _ = serve(s, render.as_ref());
                            busy2.fetch_sub(1, Ordering::AcqRel);
                        });
                    if spawned.is_err() {
                        busy.fetch_sub(1, Ordering::AcqRel);
                        refused2.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })?;
        Ok(Server {
            stop,
            thread: Some(thread),
            local,
            refused,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request head within [`DEADLINE`] and answers it.
fn serve<F: Fn() -> String>(s: TcpStream, render: &F) -> io::Result<()> {
    s.set_nonblocking(false)?;
    let head = super::admin::read_until(
        &s,
        |t| s.set_read_timeout(Some(t)),
        DEADLINE,
        MAX_HEAD,
        |b| b.windows(4).any(|w| w == b"\r\n\r\n") || b.windows(2).any(|w| w == b"\n\n"),
    )?;
    let reply = respond(&head, render);
    s.set_write_timeout(Some(DEADLINE))?;
    (&s).write_all(&reply)?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Read;
    use std::time::Instant;

    fn get(addr: SocketAddr, req: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            parse_request(b"GET /metrics HTTP/1.1\r\n\r\n"),
            Ok((Method::Get, "/metrics"))
        );
        assert_eq!(
            parse_request(b"HEAD /metrics?x=1 HTTP/1.0\n\n"),
            Ok((Method::Head, "/metrics"))
        );
        assert_eq!(
            parse_request(b"POST / HTTP/1.1\r\n"),
            Ok((Method::Other, "/"))
        );
        for bad in [
            &b""[..],
            b"GET /metrics",
            b"GET  /metrics HTTP/1.1\n",
            b"GET metrics HTTP/1.1\n",
            b"GET / SPDY/3\n",
            b"\xff / HTTP/1.1\n",
        ] {
            assert_eq!(parse_request(bad), Err(BadRequest::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn serves_metrics_404_405_400_and_bounds_connections() {
        let s = Server::bind("127.0.0.1:0".parse().unwrap(), || "proxyha_up 1\n".into()).unwrap();
        let a = get(s.local, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
        assert!(a.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(
            a.contains("Content-Length: 13\r\n") && a.ends_with("\r\n\r\nproxyha_up 1\n"),
            "{a}"
        );
        let h = get(s.local, "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            h.starts_with("HTTP/1.1 200 OK") && h.ends_with("\r\n\r\n"),
            "{h}"
        );
        assert!(get(s.local, "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        let p = get(s.local, "POST /metrics HTTP/1.1\r\n\r\n");
        assert!(
            p.starts_with("HTTP/1.1 405") && p.contains("Allow: GET, HEAD"),
            "{p}"
        );
        assert!(get(s.local, "hello\r\n\r\n").starts_with("HTTP/1.1 400"));
        // Silent clients hold at most MAX_CONNECTIONS; the rest are refused
        // at once, and the server answers again after the deadline.
        let silent: Vec<TcpStream> = (0..MAX_CONNECTIONS + 2)
            .map(|_| TcpStream::connect(s.local).unwrap())
            .collect();
        let until = Instant::now() + Duration::from_secs(5);
        while s.refused.load(Ordering::Relaxed) < 2 && Instant::now() < until {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(s.refused.load(Ordering::Relaxed) >= 2);
        drop(silent);
        let until = Instant::now() + DEADLINE * 5;
        let ok = loop {
            let mut c = TcpStream::connect(s.local).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
            let mut out = String::new();
            if c.read_to_string(&mut out).is_ok() && out.starts_with("HTTP/1.1 200") {
                break true;
            }
            if Instant::now() > until {
                break false;
            }
            thread::sleep(Duration::from_millis(50));
        };
        assert!(ok);
    }

    proptest! {
        #[test]
        fn any_head_gets_one_well_formed_answer(head in proptest::collection::vec(any::<u8>(), 0..300)) {
            let r = respond(&head, || "x\n".into());
            let text = String::from_utf8_lossy(&r);
            prop_assert!(text.starts_with("HTTP/1.1 "));
            prop_assert!(text.contains("Connection: close\r\n"));
        }

        #[test]
        fn metrics_path_with_any_query_is_served(q in "[a-z0-9=&]{0,20}") {
            let req = format!("GET /metrics?{q} HTTP/1.1\r\n\r\n");
            prop_assert_eq!(parse_request(req.as_bytes()), Ok((Method::Get, "/metrics")));
        }
    }
}
