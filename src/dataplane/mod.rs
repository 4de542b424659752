//! The userspace packet pipeline: classification, per-worker poll loops and
//! the MAC-rewrite redirect. Generic over [`port::Port`], so the whole
//! rx → classify → balance → tx path runs on in-memory rings in tests.

pub mod port;
