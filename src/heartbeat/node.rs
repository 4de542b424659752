//! A remote node in the table: what it last reported and what that makes it.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use super::{Ports, Role, State};

/// A remote node in the table.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) name: String,
    pub(super) ipv4: Ipv4Addr,
    pub(super) ipv6: Ipv6Addr,
    pub(super) mac: [u8; 6],
    pub(super) role: Role,
    pub(super) is_static: bool,
    /// Last reported values.
    pub(super) reported: State,
    pub(super) reported_director: State,
    pub(super) ports: Ports,
    pub(super) connections: u32,
    pub(super) load: u16,
    pub(super) capacity: u32,
    /// Bookkeeping.
    pub(super) last_heard: Option<Instant>,
    pub(super) last_seq: Option<u64>,
    pub(super) received: u64,
    pub(super) missed: u32,
    pub(super) total_missed: u64,
    pub(super) good_streak: u32,
    pub(super) timed_out: bool,
    /// The active director's probe of its proxy ports since it was last
    /// heard: `Some(true)` while they answer (STALE instead of FAILED).
    pub(super) proxy_alive: Option<bool>,
    /// Effective states and when they last changed.
    pub(super) state: State,
    pub(super) state_changed: Option<Instant>,
    pub(super) director_state: State,
    pub(super) director_changed: Option<Instant>,
}

impl Node {
    pub(super) fn new(name: String, ipv4: Ipv4Addr, mac: [u8; 6], is_static: bool) -> Self {
        Node {
            name,
            ipv4,
            ipv6: Ipv6Addr::UNSPECIFIED,
            mac,
            role: Role::Scanning,
            is_static,
            reported: State::Unknown,
            reported_director: State::Unknown,
            ports: Ports::default(),
            connections: 0,
            load: 0,
            capacity: 0,
            last_heard: None,
            last_seq: None,
            received: 0,
            missed: 0,
            total_missed: 0,
            good_streak: 0,
            timed_out: false,
            proxy_alive: None,
            state: State::Unknown,
            state_changed: None,
            director_state: State::Unknown,
            director_changed: None,
        }
    }

    pub(super) fn reported_good(&self) -> bool {
        self.reported == State::Ok && self.ports.all_reachable()
    }

    /// The scanning-side state these facts give.
    pub(super) fn effective(&self, rise: u32) -> State {
        let failed =
            self.timed_out || self.reported == State::Failed || !self.ports.all_reachable();
        // Silent, but its proxy still answers the active director's probe:
        // a dead daemon, not a dead proxy. Only a node that was serving
        // (OK, DRAINING) is held; it keeps its flows, takes no new ones.
        if self.timed_out
            && self.proxy_alive == Some(true)
            && self.reported != State::Failed
            && self.ports.all_reachable()
            && matches!(self.state, State::Ok | State::Draining | State::Stale)
        {
            return State::Stale;
        }
        let candidate = if failed {
            State::Failed
        } else {
            match self.reported {
                State::Draining => State::Draining,
                State::Ok => State::Ok,
                _ => State::Unknown,
            }
        };
        if self.state == State::Failed && candidate == State::Ok && self.good_streak < rise {
            State::Failed
        } else {
            candidate
        }
    }

    pub(super) fn effective_director(&self) -> State {
        if self.role != Role::Director {
            State::Unknown
        } else if self.timed_out {
            State::Failed
        } else {
            self.reported_director
        }
    }
}
