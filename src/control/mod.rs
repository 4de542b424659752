//! The control plane: glues the sans-IO VRRP and heartbeat machines to the
//! dataplane's queues and to timers, writes the node-health table and
//! publishes Maglev tables.

pub mod frames;
