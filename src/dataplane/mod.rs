//! The userspace packet pipeline: classification, per-worker poll loops and
//! the MAC-rewrite redirect. Generic over [`port::Port`], so the whole
//! rx → classify → balance → tx path runs on in-memory rings in tests.

pub mod classify;
pub mod mem;
pub mod offload;
pub mod port;
pub mod redirect;
pub mod shared;
pub mod stats;
pub mod worker;

pub use classify::{Filter, Verdict};
pub use shared::{ControlFrame, ControlKind, Queues, Shared};
