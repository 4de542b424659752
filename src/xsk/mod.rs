//! The kernel side of the dataplane (BPF programs, AF_XDP). The only module
//! of the crate that may use `unsafe`; every block has a `// SAFETY:` comment.
//! (Placeholder on the perf branch until the xsk branch lands.)

#![allow(unsafe_code)]

pub mod perfgen;
pub mod sinkcount;
