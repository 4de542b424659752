//! The contract between the dataplane and the control plane: what the
//! control plane publishes for every worker to read ([`Shared`]), and the
//! bounded lock-free queues per worker ([`Queues`]) that carry received
//! control frames ([`ControlFrame`]) up and frames to transmit down.
//!
//! Workers only read [`Shared`] and never wait on the control plane: a full
//! queue is a counted drop on either side.
//!
//! **VRRP first.** Received VRRP adverts travel up in their own queue
//! ([`Queues::vrrp_to_control`]), which the control loop empties (at most
//! [`VRRP_QUEUE`] frames per turn) before it takes a bounded batch
//! ([`CONTROL_BUDGET`]) from the shared heartbeat/ARP queue
//! ([`Queues::to_control`]). A flood of heartbeats or
//! ARP fills only that shared queue (counted `control_queue_full`): it can
//! neither drop nor delay an advert, nor keep the loop from its timers.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use crossbeam::queue::ArrayQueue;

use super::classify::Filter;
use crate::balance::{health, maglev};

/// What kind of frame went to the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    /// VRRP for our VRID.
    Vrrp,
    /// A protocol-253 heartbeat.
    Heartbeat,
    /// ARP for a VIP.
    Arp,
}

/// A received frame copied for the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlFrame {
    /// What it is.
    pub kind: ControlKind,
    /// The whole Ethernet frame.
    pub data: Vec<u8>,
}

/// The state the control plane publishes and every worker reads.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Classifier settings (VIPs, ports, VRID, MACs, local slot).
    pub filter: Arc<ArcSwap<Filter>>,
    /// The node-health table.
    pub health: Arc<health::Table>,
    /// The published Maglev table.
    pub maglev: maglev::Shared,
    /// Set to stop every worker ([`super::worker::Worker::run`]).
    pub stop: Arc<AtomicBool>,
}

impl Shared {
    /// Shared state around `filter` with an empty health table and an empty
    /// Maglev table of `size` (prime).
    pub fn new(filter: Filter, size: u32) -> Result<Shared, maglev::Error> {
        Ok(Shared {
            filter: Arc::new(ArcSwap::from_pointee(filter)),
            health: Arc::new(health::Table::new()),
            maglev: maglev::Shared::new(maglev::Table::empty(size)?),
            stop: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// The most frames the control loop takes from one worker's
/// [`Queues::to_control`] per turn, so that a flood cannot keep it from its
/// timers (VRRP adverts, heartbeats) or from the VRRP queue.
pub const CONTROL_BUDGET: usize = 256;

/// The capacity of each worker's VRRP queue: adverts come at most a few per
/// second per director, so this only absorbs a stalled control loop.
pub const VRRP_QUEUE: usize = 64;

/// The bounded queues between a worker and the control plane.
#[derive(Debug, Clone)]
pub struct Queues {
    /// Worker → control plane: received VRRP adverts for our VRID only, in
    /// their own queue (strict priority over `to_control`).
    pub vrrp_to_control: Arc<ArrayQueue<ControlFrame>>,
    /// Worker → control plane: received heartbeat and ARP frames.
    pub to_control: Arc<ArrayQueue<ControlFrame>>,
    /// Control plane → worker: whole Ethernet frames to transmit.
    pub from_control: Arc<ArrayQueue<Vec<u8>>>,
}

impl Queues {
    /// The control queues of `capacity` each, and a VRRP queue of
    /// [`VRRP_QUEUE`].
    pub fn new(capacity: usize) -> Queues {
        Queues {
            vrrp_to_control: Arc::new(ArrayQueue::new(VRRP_QUEUE)),
            to_control: Arc::new(ArrayQueue::new(capacity.max(1))),
            from_control: Arc::new(ArrayQueue::new(capacity.max(1))),
        }
    }
}
