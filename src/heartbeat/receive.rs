//! The receive path: every check a heartbeat passes before it touches the
//! node table, then its effect.

use std::net::Ipv4Addr;
use std::time::Instant;

use super::{
    Event, MAX_NODES, Machine, Membership, Node, Reject, Role, State, is_unicast_mac, wire,
};

impl Machine {
    fn reject(&mut self, now: Instant, reason: Reject, source: Ipv4Addr) {
        *self.counters.drop_for(reason) += 1;
        if let Some(held_back) = self.log_limit.check((reason, source), now) {
            self.events.push_back(Event::Rejected {
                reason,
                source,
                held_back,
            });
        }
    }

    /// Handles one received protocol-253 IP payload from `src`.
    ///
    /// Checks, in order: it parses; same LBID; with a key: HMAC present and
    /// valid (with the key or the next key), timestamp within the replay
    /// window, sequence above the last accepted one of that node; the IPv4
    /// field equals `src`; the MACs are unicast and non-zero; the id is not
    /// ours; a static id comes from its configured addresses; a known id
    /// comes from the IPv4 and MAC it is bound to (unless that node has
    /// FAILED by misses); a new id is accepted (`accept_unlisted`) and there
    /// is room in the table (evicting the oldest FAILED node if need be).
    /// Only then does it touch the node table, answer a request, or adopt an
    /// announcement. Every drop is counted; at most one per
    /// [`REJECT_LOG_PERIOD`](super::REJECT_LOG_PERIOD) per (reason, source)
    /// is reported as [`Event::Rejected`].
    pub fn handle_heartbeat(&mut self, now: Instant, src: Ipv4Addr, payload: &[u8]) {
        self.receive(now, src, payload);
        self.flush_announcement(now);
    }

    fn receive(&mut self, now: Instant, src: Ipv4Addr, payload: &[u8]) {
        self.counters.rx_heartbeats += 1;
        let Ok(packet) = wire::Packet::new_checked(payload) else {
            return self.reject(now, Reject::Malformed, src);
        };
        let Ok(repr) = wire::Repr::parse(&packet) else {
            return self.reject(now, Reject::Malformed, src);
        };
        if repr.lbid != self.cfg.lbid {
            return self.reject(now, Reject::OtherLbid, src);
        }
        if let Some(key) = &self.cfg.key {
            if !packet.has_auth() {
                return self.reject(now, Reject::Unauthenticated, src);
            }
            if packet.verify(key).is_err() {
                match &self.cfg.key_next {
                    Some(next) if packet.verify(next).is_ok() => self.counters.rx_next_key += 1,
                    _ => return self.reject(now, Reject::BadHmac, src),
                }
            }
            let window = u64::try_from(self.cfg.replay_window.as_millis()).unwrap_or(u64::MAX);
            if repr.timestamp_ms.abs_diff(self.unix_ms(now)) > window {
                return self.reject(now, Reject::Stale, src);
            }
            if self
                .nodes
                .get(&repr.node_id)
                .and_then(|n| n.last_seq)
                .is_some_and(|last| repr.sequence <= last)
            {
                return self.reject(now, Reject::Replay, src);
            }
        }
        if repr.ipv4 != src {
            return self.reject(now, Reject::SourceMismatch, src);
        }
        if !is_unicast_mac(&repr.mac)
            || repr
                .announcement
                .as_ref()
                .is_some_and(|a| a.entries.iter().any(|e| !is_unicast_mac(&e.mac)))
        {
            return self.reject(now, Reject::BadMac, src);
        }
        if repr.node_id == self.cfg.node_id {
            if repr.ipv4 == self.cfg.ipv4 && repr.mac == self.cfg.mac {
                self.counters.rx_own += 1;
                return;
            }
            return self.reject(now, Reject::IdConflict, src);
        }
        let known = self
            .nodes
            .get(&repr.node_id)
            .map(|n| (n.is_static, n.ipv4, n.mac, n.timed_out));
        match known {
            Some((is_static, ip, mac, _)) if is_static && (ip != repr.ipv4 || mac != repr.mac) => {
                return self.reject(now, Reject::StaticMismatch, src);
            }
            // An id is bound to the IPv4 and MAC it was learned with until
            // that node stops answering: a heartbeat claiming it from
            // elsewhere must not redirect its flows.
            Some((_, ip, mac, timed_out)) if (ip != repr.ipv4 || mac != repr.mac) && !timed_out => {
                return self.reject(now, Reject::IdentityMismatch, src);
            }
            Some((_, ip, mac, _)) if ip != repr.ipv4 || mac != repr.mac => {
                self.counters.nodes_rebound += 1;
                self.events.push_back(Event::Rebound {
                    id: repr.node_id,
                    from: ip,
                    to: repr.ipv4,
                    mac: repr.mac,
                });
            }
            Some(_) => {}
            None if !self.cfg.accept_unlisted => {
                return self.reject(now, Reject::Unlisted, src);
            }
            None if self.nodes.len() >= MAX_NODES && !self.evict_one() => {
                return self.reject(now, Reject::TableFull, src);
            }
            None => {}
        }
        self.accept(now, repr);
    }

    fn accept(&mut self, now: Instant, repr: wire::Repr) {
        let id = repr.node_id;
        let is_request = repr.kind == wire::Kind::Request;
        if is_request {
            self.counters.rx_requests += 1;
        } else {
            self.counters.rx_replies += 1;
        }
        let n = self
            .nodes
            .entry(id)
            .or_insert_with(|| Node::new(repr.name.clone(), repr.ipv4, repr.mac, false));
        let discovered = n.received == 0 && !n.is_static;
        n.name = repr.name.clone();
        n.ipv4 = repr.ipv4;
        n.ipv6 = repr.ipv6;
        n.mac = repr.mac;
        n.role = repr.role;
        n.reported = repr.state;
        n.reported_director = if is_request && repr.role == Role::Director {
            State::Network
        } else {
            repr.director_state
        };
        n.ports = repr.ports;
        n.connections = repr.connections;
        n.load = repr.load_permille;
        // Capacity 0 means "unsized" (weight::target counts it as 1000):
        // cap that too, so nobody's claim exceeds max_capacity.
        let claimed = if repr.capacity == 0 {
            1000
        } else {
            repr.capacity
        };
        n.capacity = claimed.min(self.cfg.max_capacity);
        let capped = claimed > self.cfg.max_capacity;
        n.last_heard = Some(now);
        n.last_seq = Some(repr.sequence);
        n.received += 1;
        n.missed = 0;
        n.timed_out = false;
        n.proxy_alive = None;
        n.good_streak = if n.reported_good() {
            n.good_streak.saturating_add(1)
        } else {
            0
        };
        if capped {
            self.counters.capacity_capped += 1;
        }
        if discovered {
            self.events.push_back(Event::Discovered {
                id,
                name: repr.name.clone(),
                ip: repr.ipv4,
            });
        }
        self.refresh(now, id);
        if is_request {
            if !self.active {
                // An extra announcement right after a request starts no
                // second miss check (see `flush_announcement`).
                if self
                    .last_request_heard
                    .is_none_or(|t| now.saturating_duration_since(t) >= self.cfg.interval / 2)
                {
                    self.last_request_heard = Some(now);
                    self.checks.push_back((now + self.cfg.reply_timeout(), now));
                }
                // Only a director can be the active director: a scanning
                // node's announcement (a misconfiguration) is ignored.
                if let Some(a) = &repr.announcement
                    && repr.role == Role::Director
                {
                    let m = Membership::from_announcement(a);
                    if m != self.membership {
                        self.adopt(m);
                    }
                }
            }
            self.queue(now, wire::Kind::Reply);
        }
    }
}
