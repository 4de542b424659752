//! "Log this once per (reason, source)": a bounded set of keys already seen.

use std::collections::HashSet;
use std::hash::Hash;

/// Remembers which keys (for example `(reason, source address)`) were
/// already logged, so that a flood of bad packets logs one line per key.
///
/// Memory is bounded: after `capacity` distinct keys, new keys are no
/// longer remembered and [`first`](Self::first) returns `false` for them
/// (they are counted in [`suppressed`](Self::suppressed) instead), so an
/// attacker spraying source addresses cannot grow it or the log.
#[derive(Debug, Clone)]
pub struct LogOnce<K> {
    seen: HashSet<K>,
    capacity: usize,
    suppressed: u64,
}

impl<K: Eq + Hash> LogOnce<K> {
    /// A set that remembers at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        LogOnce {
            seen: HashSet::new(),
            capacity,
            suppressed: 0,
        }
    }

    /// `true` the first time `key` is seen (log it), `false` afterwards
    /// and for every new key once the set is full.
    pub fn first(&mut self, key: K) -> bool {
        if self.seen.contains(&key) {
            return false;
        }
        if self.seen.len() >= self.capacity {
            self.suppressed += 1;
            return false;
        }
        self.seen.insert(key);
        true
    }

    /// New keys not logged because the set was full.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no key was remembered yet.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_time_per_key_and_bounded() {
        let mut l = LogOnce::new(2);
        assert!(l.first(("bad hmac", 1)));
        assert!(!l.first(("bad hmac", 1)));
        assert!(l.first(("replay", 1)));
        assert!(!l.first(("bad hmac", 2))); // full
        assert_eq!(l.suppressed(), 1);
        assert_eq!(l.len(), 2);
    }
}
