//! The metrics endpoint's request parser: arbitrary bytes as a request
//! head. Nothing may panic; every answer is one HTTP/1.1 response that
//! closes the connection, and only `GET`/`HEAD /metrics` gets a 200.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxyha::node::http::{Method, parse_request, respond};

fuzz_target!(|data: &[u8]| {
    let parsed = parse_request(data);
    let r = respond(data, || "proxyha_up 1\n".into());
    let text = String::from_utf8_lossy(&r);
    assert!(text.starts_with("HTTP/1.1 "));
    assert!(text.contains("\r\nConnection: close\r\n"));
    let ok = matches!(parsed, Ok((Method::Get | Method::Head, "/metrics")));
    assert_eq!(text.starts_with("HTTP/1.1 200 "), ok);
});
