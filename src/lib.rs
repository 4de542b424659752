//! proxyha keeps a cluster of web proxies reachable on one virtual IP.
//!
//! The picture, in words (see `../shared/design.md` §1):
//!
//! * Clients send to `VIP:port`, which resolves to the VRRP virtual MAC
//!   `00:00:5e:00:01:{VRID}` owned by the **Active Director** ([`vrrp`]).
//! * On the director, a small XDP program steers only our frames (VIP traffic,
//!   VRRP, protocol-253 heartbeats, ARP for the VIP) into AF_XDP rings
//!   ([`xsk`]); everything else goes to the kernel.
//! * Pinned workers ([`dataplane`]) busy-poll those rings, classify each frame,
//!   look the flow up in a per-worker flow table and otherwise ask Maglev
//!   ([`balance`]) which healthy scanning node should take it, then rewrite
//!   only the MAC addresses and transmit (direct server return).
//! * VRRP and heartbeat frames go through bounded lock-free queues to the
//!   control plane ([`control`]), which runs the sans-IO state machines in
//!   [`vrrp`] and [`heartbeat`], writes the node-health table and publishes a
//!   new Maglev table with a pointer swap.
//! * [`node`] is the per-node runtime around all of this (start-up, the run
//!   loop, workers, signals, node setup, the admin socket the CLI talks to).
//! * [`wire`] holds the byte formats only; [`config`] turns the TOML file into
//!   validated typed settings once; [`cli`] renders status, stats and checks.
//!
//! `docs/architecture.md` has the module map and the path of one frame and
//! of one control message.

pub mod balance;
pub mod bpf;
pub mod cli;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod heartbeat;
pub mod log;
pub mod node;
pub mod vrrp;
pub mod wire;
pub mod xsk;
