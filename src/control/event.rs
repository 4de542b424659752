//! What the control plane tells the operator: the events that
//! notification commands ([`crate::node::notify`]) and `proxyha events`
//! receive, in the order they happened (docs/notifications.md).
//!
//! The [`Plane`](super::Plane) numbers them (`seq`, from 1 per daemon run)
//! and queues them; the run loop takes them with
//! [`Plane::poll_event`](super::Plane::poll_event), stamps the wall clock
//! and hands each one to both the notifier and the event stream. The queue
//! is bounded ([`MAX_QUEUED`]); an overflow is counted, never a wait.

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::Plane;
use crate::vrrp;

/// The most events the plane holds between two polls (the run loop polls
/// every iteration, so this only bounds a pathological burst).
pub const MAX_QUEUED: usize = 1024;

/// The kind of an event: also the `[notify]` key whose command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// This director became VRRP Master (Active Director).
    Master,
    /// This director became VRRP Backup (Passive Director), at start-up too.
    Backup,
    /// This director's dataplane failed (workers stopped or link down): it
    /// resigns with priority 0 (a `backup` event follows if it was Master).
    Fault,
    /// The daemon is stopping (SIGINT/SIGTERM).
    Stop,
    /// A node's heartbeat state changed (this node included).
    Node,
}

impl Kind {
    /// Every kind, in the order `docs/notifications.md` lists them.
    pub const ALL: [Kind; 5] = [
        Kind::Master,
        Kind::Backup,
        Kind::Fault,
        Kind::Stop,
        Kind::Node,
    ];

    /// The name used as `$1`, in JSON and as the `[notify]` key.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Master => "master",
            Kind::Backup => "backup",
            Kind::Fault => "fault",
            Kind::Stop => "stop",
            Kind::Node => "node",
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, 3, ... per daemon run, without gaps: a gap seen by a consumer
    /// means it lost events.
    pub seq: u64,
    /// Wall clock when the run loop took the event (ms since the Unix
    /// epoch; 0 until stamped).
    pub unix_ms: u64,
    /// The daemon's own node name.
    pub node: String,
    #[serde(rename = "event")]
    pub kind: Kind,
    /// Whose state changed: this node for master/backup/fault/stop, the
    /// node named in the heartbeat for `node`.
    pub subject: String,
    /// The subject's management IPv4.
    pub ip: Ipv4Addr,
    /// The state before: a VRRP state (`INITIALIZE`, `BACKUP`, `MASTER`)
    /// or, for `node`, a heartbeat state (`OK`, `FAILED`, ...).
    pub from: String,
    /// The state after (`MASTER`, `BACKUP`, `FAULT`, `STOP`, or a heartbeat state).
    pub to: String,
    /// Why, in a word: the VRRP reason (`MasterDown`, `HigherPriority`, ...),
    /// `dataplane`, `signal`, or `heartbeat`.
    pub reason: String,
    /// This node's current VRRP priority (0 on scanning nodes).
    pub priority: u8,
}

/// The plane's bounded queue of events, and their numbering.
#[derive(Debug, Default)]
pub struct Queue {
    next_seq: u64,
    queue: VecDeque<Event>,
    /// Events dropped because [`MAX_QUEUED`] were waiting.
    pub dropped: u64,
}

impl Queue {
    /// Numbers `e` and queues it (or counts it dropped when full).
    pub fn push(&mut self, mut e: Event) {
        self.next_seq += 1;
        e.seq = self.next_seq;
        if self.queue.len() >= MAX_QUEUED {
            self.dropped += 1;
            return;
        }
        self.queue.push_back(e);
    }

    /// The oldest queued event.
    pub fn pop(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }
}

/// The plane's side: numbering, queueing and naming its events.
impl Plane {
    /// The next operator event, oldest first (see the module docs).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop()
    }

    /// Queues an event about a node.
    pub(super) fn emit(
        &mut self,
        kind: Kind,
        subject: &str,
        ip: Ipv4Addr,
        (from, to): (&str, &str),
        reason: &str,
    ) {
        let priority = match &self.vrrp {
            Some(v) => v.priority(),
            None => 0,
        };
        self.events.push(Event {
            seq: 0,
            unix_ms: 0,
            node: self.cfg.node.name.clone(),
            kind,
            subject: subject.to_owned(),
            ip,
            from: from.to_owned(),
            to: to.to_owned(),
            reason: reason.to_owned(),
            priority,
        });
    }

    /// Queues an event about this node itself.
    pub(super) fn emit_own(&mut self, kind: Kind, from: &str, to: &str, reason: &str) {
        let name = self.cfg.node.name.clone();
        let ip = self.cfg.node.management_ip;
        self.emit(kind, &name, ip, (from, to), reason);
    }

    /// A `fault` event (directors only): a tracked object failed. Emitted
    /// after the priority changed and before the VRRP actions it causes are
    /// drained, so it carries the new priority and precedes any `backup`.
    pub(super) fn emit_fault(&mut self, what: &str) {
        if self.vrrp.is_some() {
            let from = self.vrrp_state;
            self.emit_own(Kind::Fault, from, "FAULT", what);
        }
    }

    /// A VRRP state change: the event, and the state events name.
    pub(super) fn vrrp_changed(
        &mut self,
        kind: Option<Kind>,
        to: &'static str,
        reason: vrrp::Reason,
    ) {
        let from = std::mem::replace(&mut self.vrrp_state, to);
        if let Some(kind) = kind
            && from != to
        {
            self.emit_own(kind, from, to, &reason_word(reason));
        }
    }
}

/// A VRRP reason in one word (`MasterResigned { from }` → `MasterResigned`).
fn reason_word(r: vrrp::Reason) -> String {
    let s = format!("{r:?}");
    s.split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: Kind) -> Event {
        Event {
            seq: 0,
            unix_ms: 0,
            node: "n".into(),
            kind,
            subject: "n".into(),
            ip: Ipv4Addr::new(198, 18, 0, 1),
            from: "BACKUP".into(),
            to: "MASTER".into(),
            reason: "MasterDown".into(),
            priority: 99,
        }
    }

    #[test]
    fn numbered_in_order_and_bounded() {
        let mut q = Queue::default();
        for _ in 0..MAX_QUEUED + 3 {
            q.push(ev(Kind::Master));
        }
        assert_eq!(q.dropped, 3);
        let seqs: Vec<u64> = std::iter::from_fn(|| q.pop()).map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=MAX_QUEUED as u64).collect::<Vec<_>>());
    }

    #[test]
    fn json_names_the_event() {
        let v = serde_json::to_value(ev(Kind::Backup)).unwrap();
        assert_eq!(v["event"], "backup");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back.kind, Kind::Backup);
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["master", "backup", "fault", "stop", "node"]);
    }
}
