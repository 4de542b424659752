//! The event stream behind `proxyha events`: the last [`RECENT`] events,
//! and the subscribers of `events follow` on the admin socket.
//!
//! The run loop [`Hub::publish`]es each event once (as one JSON line);
//! that never waits: each subscriber has a bounded buffer
//! ([`SUBSCRIBER_BUFFER`] lines) and one whose buffer is full is dropped
//! (its connection ends; counted), so a slow reader costs nobody else
//! anything. [`Hub::subscribe`] takes the recent events and the live
//! subscription under one lock, so a follower sees no gap and no
//! duplicate between the two.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crossbeam::channel::{self, Receiver, Sender, TrySendError};

use crate::control::Event;

/// How many recent events `proxyha events` shows.
pub const RECENT: usize = 256;
/// Lines a subscriber may have unread before it is dropped.
pub const SUBSCRIBER_BUFFER: usize = 256;
/// Subscribers at once; more are refused.
pub const MAX_SUBSCRIBERS: usize = 8;

#[derive(Default)]
struct Inner {
    recent: VecDeque<String>,
    /// Each sender with a token its reader holds while it reads.
    subscribers: Vec<(Sender<String>, Weak<()>)>,
}

/// One follower's end: the lines, and the token that tells the hub the
/// reader still exists.
#[derive(Debug)]
pub struct Subscription {
    pub lines: Receiver<String>,
    _alive: Arc<()>,
}

/// The recent events and the live subscribers.
#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
    /// Subscribers dropped because their buffer was full.
    pub dropped_subscribers: AtomicU64,
}

/// Why a subscription was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl Hub {
    /// Records `e` and sends it to every subscriber.
    pub fn publish(&self, e: &Event) {
        let line = serde_json::to_string(e).unwrap_or_default();
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner.recent.len() >= RECENT {
            inner.recent.pop_front();
        }
        inner.recent.push_back(line.clone());
        let before = inner.subscribers.len();
        inner
            .subscribers
            .retain(|(s, _)| match s.try_send(line.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => false,
                Err(TrySendError::Disconnected(_)) => false,
            });
        let gone = before - inner.subscribers.len();
        drop(inner);
        if gone > 0 {
            // Disconnected ones are counted too: a reader that went away.
            self.dropped_subscribers
                .fetch_add(gone as u64, Ordering::Relaxed);
        }
    }

    /// The recent events, oldest first, as JSON lines.
    pub fn recent(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|i| i.recent.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The recent events and a subscription to every later one.
    pub fn subscribe(&self) -> Result<(Vec<String>, Subscription), Busy> {
        let mut inner = self.inner.lock().map_err(|_| Busy)?;
        // Readers that went away since the last publish free their place.
        inner
            .subscribers
            .retain(|(_, alive)| alive.strong_count() > 0);
        if inner.subscribers.len() >= MAX_SUBSCRIBERS {
            return Err(Busy);
        }
        let (tx, rx) = channel::bounded(SUBSCRIBER_BUFFER);
        let alive = Arc::new(());
        inner.subscribers.push((tx, Arc::downgrade(&alive)));
        let sub = Subscription {
            lines: rx,
            _alive: alive,
        };
        Ok((inner.recent.iter().cloned().collect(), sub))
    }

    /// Subscribers connected now.
    pub fn subscribers(&self) -> usize {
        self.inner.lock().map(|i| i.subscribers.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::event::Kind;

    fn ev(seq: u64) -> Event {
        Event {
            seq,
            unix_ms: 0,
            node: "n".into(),
            kind: Kind::Node,
            subject: "s".into(),
            ip: std::net::Ipv4Addr::new(198, 18, 0, 3),
            from: "OK".into(),
            to: "FAILED".into(),
            reason: "heartbeat".into(),
            priority: 0,
        }
    }

    fn seq(line: &str) -> u64 {
        serde_json::from_str::<Event>(line).unwrap().seq
    }

    #[test]
    fn recent_is_bounded_and_followers_see_no_gap() {
        let hub = Hub::default();
        for i in 1..=RECENT as u64 + 5 {
            hub.publish(&ev(i));
        }
        let r = hub.recent();
        assert_eq!(r.len(), RECENT);
        assert_eq!(seq(&r[0]), 6);
        let (first, rx) = hub.subscribe().unwrap();
        assert_eq!(seq(first.last().unwrap()), RECENT as u64 + 5);
        hub.publish(&ev(RECENT as u64 + 6));
        assert_eq!(seq(&rx.lines.try_recv().unwrap()), RECENT as u64 + 6);
    }

    #[test]
    fn a_slow_subscriber_is_dropped_and_the_others_keep_going() {
        let hub = Hub::default();
        let (_, slow) = hub.subscribe().unwrap();
        let (_, fast) = hub.subscribe().unwrap();
        for i in 1..=SUBSCRIBER_BUFFER as u64 + 10 {
            hub.publish(&ev(i));
            assert_eq!(seq(&fast.lines.try_recv().unwrap()), i);
        }
        assert_eq!(hub.dropped_subscribers.load(Ordering::Relaxed), 1);
        assert_eq!(hub.subscribers(), 1);
        // The slow one keeps what it had, then sees the end.
        let got: Vec<u64> = slow.lines.iter().map(|l| seq(&l)).collect();
        assert_eq!(got, (1..=SUBSCRIBER_BUFFER as u64).collect::<Vec<_>>());
    }

    #[test]
    fn subscribers_are_bounded() {
        let hub = Hub::default();
        let held: Vec<_> = (0..MAX_SUBSCRIBERS)
            .map(|_| hub.subscribe().unwrap())
            .collect();
        assert_eq!(hub.subscribe().unwrap_err(), Busy);
        drop(held);
        // Readers that went away free their places.
        assert!(hub.subscribe().is_ok());
    }
}
