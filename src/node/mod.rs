//! The per-node runtime: everything `proxyha run` does around the sans-IO
//! state machines ([`crate::vrrp`], [`crate::heartbeat`], driven by
//! [`crate::control`]) and the dataplane ([`crate::dataplane`] over
//! [`crate::xsk`]). One concept per file:
//!
//! * [`run`]: start-up order and the run loop;
//! * [`lock`]: one daemon per node and interface;
//! * [`queues`]: which RX queues get a worker (all of them), on which CPU;
//! * [`workers`]: one AF_XDP socket and one pinned worker per queue;
//! * [`shutdown`]: signals and the graceful stop;
//! * [`reload`]: SIGHUP and `proxyha reload`, applied as a diff;
//! * [`systemd`]: READY/WATCHDOG/RELOADING/STOPPING for the unit file;
//! * [`xdp`]: the filter program and the Master's unicast MAC;
//! * [`announce`]: active-active: the VIP route that bird2 exports;
//! * [`setup`]: the scanning side (VIP on `lo`, sysctls, nftables);
//! * [`iface`]: interface facts (index, MAC, queues, link state);
//! * [`probe`]: the local proxy-port and load probe;
//! * [`peer_probe`]: the Active Director's probe of silent nodes' proxies;
//! * [`admin`]: the admin socket the CLI talks to;
//! * [`report`]: the `proxyha stats` report;
//! * [`notify`]: the notification commands, run in event order;
//! * [`events`]: the recent events and the `proxyha events` subscribers;
//! * [`metrics`] and [`http`]: the Prometheus endpoint;
//! * [`prereq`]: root and tools, for the daemon and for tests.

pub mod admin;
pub mod announce;
pub mod events;
pub mod http;
pub mod iface;
pub mod lock;
pub mod metrics;
pub mod notify;
pub mod peer_probe;
pub mod prereq;
pub mod probe;
pub mod queues;
pub mod reload;
pub mod report;
pub mod run;
pub mod setup;
pub mod setup_ipv6;
pub mod shutdown;
pub mod systemd;
pub mod workers;
pub mod xdp;

pub use run::run;

use thiserror::Error;

/// Why the node could not start.
#[derive(Debug, Error)]
pub enum Error {
    #[error("{0}")]
    Lock(#[from] lock::Error),
    #[error("{0}")]
    Interface(#[from] iface::Error),
    #[error("node setup: {0}")]
    Setup(#[from] setup::Error),
    #[error("XDP/AF_XDP: {0}")]
    Xsk(#[from] crate::xsk::Error),
    #[error("control plane: {0}")]
    Control(#[from] crate::control::Error),
    #[error("control socket: {0}")]
    Admin(#[from] admin::Error),
    #[error("notification thread: {0}")]
    Notify(std::io::Error),
    #[error("metrics endpoint: {0}")]
    Metrics(std::io::Error),
    #[error("signals: {0}")]
    Signal(std::io::Error),
    #[error("{0}")]
    Queues(String),
    #[error("worker for queue {queue} failed to start: {detail}")]
    Worker { queue: u32, detail: String },
}
