//! The per-node runtime: everything `proxyha run` does around the sans-IO
//! state machines and the dataplane.

pub mod prereq;
