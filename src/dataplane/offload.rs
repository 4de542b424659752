//! The workers' side of the XDP fast path (docs/dataplane.md, "The XDP fast
//! path"): where a worker installs the flows it has seen established, once
//! per batch.
//!
//! The workers stay the only decision makers: they classify, apply the SYN
//! guard, pick the node and deliver every flow's first packets. A flow is
//! installed only when a packet leaves its flow-table entry established
//! ([`crate::balance::flow::Steer::established`]): a SYN alone, a lone
//! spoofed ACK (on probation), a closing flow, a fragment or an ICMP error
//! never install anything.

use std::sync::{Arc, Mutex};

use crate::balance::flow;

/// Where a worker installs established flows: the XDP fast path's flow map
/// in a node, a recorder in tests.
pub trait Offload: Send {
    /// Installs one batch of flows (at most one per received frame of the
    /// batch). Returns how many were installed, or an error, which the
    /// worker counts (`offload_errors`) and otherwise ignores: the flows'
    /// packets keep coming to it and it tries again.
    fn install(&mut self, flows: &[(flow::Key, flow::Target)]) -> Result<usize, String>;
}

/// An [`Offload`] that records what it was given (tests, benchmarks).
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// Every flow installed, in order.
    pub flows: Arc<Mutex<Vec<(flow::Key, flow::Target)>>>,
    /// Calls made (batches).
    pub batches: Arc<Mutex<usize>>,
}

impl Recorder {
    /// The flows installed so far.
    pub fn installed(&self) -> Vec<(flow::Key, flow::Target)> {
        self.flows.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

impl Offload for Recorder {
    fn install(&mut self, flows: &[(flow::Key, flow::Target)]) -> Result<usize, String> {
        if let Ok(mut b) = self.batches.lock() {
            *b += 1;
        }
        let mut f = self.flows.lock().map_err(|e| e.to_string())?;
        f.extend_from_slice(flows);
        Ok(flows.len())
    }
}

/// A worker's offload settings: where to install and whether flows of this
/// node's own share are installed too (only where the fast path hands them
/// to the stack itself; otherwise their packets come to the worker anyway
/// and installing them would only repeat).
pub struct Settings {
    /// The map.
    pub to: Box<dyn Offload>,
    /// Install the own share's flows.
    pub local: bool,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("offload::Settings")
            .field("local", &self.local)
            .finish()
    }
}
