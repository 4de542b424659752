//! Maglev weights from a node's health report, with hysteresis and a bounded
//! rate of change so that weights do not flap.
//!
//! * [`target`]: what a node's weight should be, from its spare capacity
//!   (`capacity − connections`, floored at 10 % of capacity) scaled by its
//!   idle CPU (`1000 − load` per-mille, floored at 10 %) when [`Params::use_load`] is on.
//! * [`step`]: how far the current weight moves toward the target in one
//!   update (one request interval): not at all while the difference is
//!   within the hysteresis band (default ±10 % of the current weight), and
//!   at most `max(current × 25 %, min_step)` otherwise.
//!
//! A node that fails leaves the membership at once and a node that recovers
//! re-enters at its target weight; the rate limit only applies to nodes that
//! stay in.

/// Tuning for [`target`] and [`step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Capacity assumed for a node that reports 0 (default 1000).
    pub default_capacity: u32,
    /// Capacity values above this are clamped (default 1 000 000).
    pub max_capacity: u32,
    /// Dead band, per-mille of the current weight (default 100 = ±10 %).
    pub hysteresis_permille: u32,
    /// Largest move per update, per-mille of the current weight (default 250).
    pub max_step_permille: u32,
    /// Largest move per update is at least this (default 10).
    pub min_step: u32,
    /// Whether CPU load scales the weight (default false). Load is always
    /// reported in heartbeats and `proxyha status`; on hosts whose CPUs are
    /// shared (VMs, the 2-core lab) it swings faster than connections do and
    /// every swing past the hysteresis band reshuffles Maglev entries, which
    /// puts established flows at risk at the next director takeover.
    pub use_load: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            default_capacity: 1000,
            max_capacity: 1_000_000,
            hysteresis_permille: 100,
            max_step_permille: 250,
            min_step: 10,
            use_load: false,
        }
    }
}

/// The weight a healthy node should have. Always at least 1.
pub fn target(p: &Params, connections: u32, load_permille: u16, capacity: u32) -> u32 {
    let cap = if capacity == 0 {
        p.default_capacity
    } else {
        capacity
    }
    .min(p.max_capacity)
    .max(1);
    let spare = u64::from(cap.saturating_sub(connections).max(cap / 10));
    let load = if p.use_load { load_permille } else { 0 };
    let idle = 1000 - u64::from(load.min(900));
    let w = spare * idle / 1000;
    u32::try_from(w).unwrap_or(u32::MAX).max(1)
}

/// One rate-limited, hysteresis-filtered move of `current` toward `target`.
pub fn step(p: &Params, current: u32, target: u32) -> u32 {
    let diff = current.abs_diff(target);
    let band = (u64::from(current) * u64::from(p.hysteresis_permille) / 1000) as u32;
    if diff <= band {
        return current;
    }
    let max_step = ((u64::from(current) * u64::from(p.max_step_permille) / 1000) as u32)
        .max(p.min_step)
        .max(1);
    let delta = diff.min(max_step);
    if target > current {
        current.saturating_add(delta)
    } else {
        (current - delta).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn target_follows_spare_capacity_and_load() {
        let p = Params::default();
        assert_eq!(target(&p, 0, 0, 1000), 1000);
        assert_eq!(target(&p, 400, 0, 1000), 600);
        assert_eq!(target(&p, 5000, 0, 1000), 100); // floor at 10 % of capacity
        assert_eq!(target(&p, 0, 500, 1000), 1000); // load ignored by default
        let pl = Params {
            use_load: true,
            ..p
        };
        assert_eq!(target(&pl, 0, 500, 1000), 500);
        assert_eq!(target(&pl, 0, 1000, 1000), 100); // load floor at 10 %
        assert_eq!(target(&p, 0, 0, 0), 1000); // default capacity
        assert_eq!(target(&p, 0, 0, 4000), 4000); // a bigger node weighs more
    }

    #[test]
    fn step_has_a_dead_band_and_a_bounded_rate() {
        let p = Params::default();
        assert_eq!(step(&p, 600, 560), 600); // within 10 %
        assert_eq!(step(&p, 600, 640), 600);
        assert_eq!(step(&p, 1000, 100), 750); // at most 25 % per step
        assert_eq!(step(&p, 750, 100), 563);
        assert_eq!(step(&p, 100, 1000), 125);
        assert_eq!(step(&p, 1, 1000), 11); // min step
    }

    proptest! {
        #[test]
        fn step_never_overshoots_and_converges(cur in 1u32..2_000_000, tgt in 1u32..2_000_000) {
            let p = Params::default();
            let mut w = cur;
            for _ in 0..200 {
                let n = step(&p, w, tgt);
                // Never crosses the target, never leaves [1, max].
                prop_assert!(n >= 1);
                prop_assert!((w <= tgt && n <= tgt && n >= w) || (w >= tgt && n >= tgt && n <= w));
                w = n;
            }
            // Ends inside the dead band around the target.
            prop_assert!(w.abs_diff(tgt) <= w / 10 + 1);
        }

        #[test]
        fn target_never_panics(c: u32, l: u16, cap: u32) {
            let t = target(&Params::default(), c, l, cap);
            prop_assert!(t >= 1);
        }
    }
}
