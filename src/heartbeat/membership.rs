//! The balancing set the active director announces, and how it computes it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::Serialize;

use super::{Event, Machine, State, weight, wire};

/// One node the active director balances with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Member {
    /// Node id.
    pub id: u32,
    /// The MAC the dataplane rewrites to.
    pub mac: [u8; 6],
    /// The node's IPv4 address.
    pub ip: Ipv4Addr,
    /// Maglev weight. 0 means DRAINING: keep its established flows, give it
    /// no new ones. A node absent from the set is FAILED: move its flows.
    pub weight: u32,
    /// STALE: the node keeps its Maglev share (`weight`), so every
    /// director still steers its established flows to it, but it takes no
    /// new flows.
    pub held: bool,
}

/// The balancing set: what Maglev is built from. `nodes` is sorted by id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Membership {
    /// Changes whenever `nodes` changes; rebuild Maglev when it does.
    pub generation: u64,
    /// Members, sorted by node id, at most 64.
    pub nodes: Vec<Member>,
}

impl Membership {
    pub(super) fn from_announcement(a: &wire::Announcement) -> Self {
        let mut nodes: Vec<Member> = a
            .entries
            .iter()
            .map(|e| Member {
                id: e.id,
                mac: e.mac,
                ip: e.ip,
                weight: e.weight & !wire::WEIGHT_HOLD,
                held: e.weight & wire::WEIGHT_HOLD != 0,
            })
            .collect();
        nodes.sort_by_key(|m| m.id);
        Membership {
            generation: a.generation,
            nodes,
        }
    }

    pub(super) fn to_announcement(&self) -> wire::Announcement {
        wire::Announcement {
            generation: self.generation,
            entries: self
                .nodes
                .iter()
                .map(|m| wire::Entry {
                    id: m.id,
                    ip: m.ip,
                    mac: m.mac,
                    weight: m.weight | if m.held { wire::WEIGHT_HOLD } else { 0 },
                })
                .collect(),
        }
    }
}
impl Machine {
    /// Rebuilds the balancing set from the table (active director only).
    /// With `step`, weights move one rate-limited step toward their targets;
    /// without, only the member set changes (newcomers enter at target).
    pub(super) fn recompute_membership(&mut self, step: bool) {
        let p = self.cfg.weights;
        let mut next: Vec<Member> = Vec::new();
        let mut weights = BTreeMap::new();
        let mut consider = |id: u32, ip: Ipv4Addr, mac: [u8; 6], state: State, tgt: u32| {
            let weight = match state {
                State::Ok => {
                    let w = match self.weights.get(&id) {
                        Some(&cur) if step => weight::step(&p, cur, tgt),
                        Some(&cur) => cur,
                        None => tgt,
                    };
                    weights.insert(id, w);
                    w
                }
                State::Draining => 0,
                // Held at the weight it had, so that its flows stay put.
                State::Stale => match self.weights.get(&id) {
                    Some(&w) => {
                        weights.insert(id, w);
                        w
                    }
                    None => 0,
                },
                _ => return,
            };
            next.push(Member {
                id,
                mac,
                ip,
                weight,
                held: state == State::Stale,
            });
        };
        if let Some(h) = self.local {
            consider(
                self.cfg.node_id,
                self.cfg.ipv4,
                self.cfg.mac,
                self.self_state,
                weight::target(&p, h.connections, h.load_permille, self.cfg.capacity),
            );
        }
        for (id, n) in &self.nodes {
            consider(
                *id,
                n.ipv4,
                n.mac,
                n.state,
                weight::target(&p, n.connections, n.load, n.capacity),
            );
        }
        next.sort_by_key(|m| m.id);
        next.truncate(wire::MAX_MEMBERS);
        weights.retain(|id, _| next.iter().any(|m| m.id == *id));
        self.weights = weights;
        if next != self.membership.nodes {
            let generation = self.membership.generation.wrapping_add(1);
            self.adopt(Membership {
                generation,
                nodes: next,
            });
            // Between two requests (a node failed or recovered): announce
            // it now; at a request it goes out with that request.
            if !step && self.active {
                self.announce_pending = true;
            }
        }
    }

    /// Makes `m` the balancing set, counts it and reports it.
    pub(super) fn adopt(&mut self, m: Membership) {
        self.membership = m;
        self.counters.membership_changes += 1;
        self.events.push_back(Event::MembershipChanged {
            generation: self.membership.generation,
        });
    }
}
