//! Load balancing: the lock-free node-health table ([`health`]), Maglev
//! consistent hashing ([`maglev`]) and per-worker flow tables ([`flow`]).
//!
//! Every director must choose the same node for the same flow, so the hashes
//! here are our own, fixed functions with fixed seeds (never `std`'s
//! `DefaultHasher`, whose output may change between Rust releases).

pub mod flow;
pub mod health;
pub mod maglev;

/// The finaliser of MurmurHash3 (`fmix64`): a fixed, well-mixing bijection on `u64`.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// A seeded 64-bit hash of a `u64`, identical on every machine and release.
#[inline]
pub fn hash_u64(x: u64, seed: u64) -> u64 {
    mix64(x ^ mix64(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed vectors: if these change, directors of different versions would
    /// pick different nodes.
    #[test]
    fn hashes_are_fixed() {
        assert_eq!(mix64(0), 0);
        assert_eq!(mix64(1), 0xb456_bcfc_34c2_cb2c);
        assert_ne!(hash_u64(1, 1), hash_u64(1, 2));
    }
}
