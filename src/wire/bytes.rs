//! Big-endian (network order) integer reads, the one copy shared by the
//! wire views and the classifier.
//!
//! Two flavours, like slice indexing: [`be16`]/[`be32`]/[`be64`] take a
//! field's byte range and panic when the buffer is too short (the views call
//! them only after `new_checked`); [`get_be16`]/[`get_be32`] take an offset
//! and return `None` instead (the classifier reads unchecked frames).

use core::ops::Range;

/// `b[r]` as an array; panics if `r` is out of bounds or not `N` long.
#[inline(always)]
fn array<const N: usize>(b: &[u8], r: Range<usize>) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[r]);
    a
}

/// The big-endian `u16` in `b[r]` (`r` two bytes long). Panics if `b` is too short.
#[inline]
pub(crate) fn be16(b: &[u8], r: Range<usize>) -> u16 {
    u16::from_be_bytes(array(b, r))
}

/// The big-endian `u32` in `b[r]` (`r` four bytes long). Panics if `b` is too short.
#[inline]
pub(crate) fn be32(b: &[u8], r: Range<usize>) -> u32 {
    u32::from_be_bytes(array(b, r))
}

/// The big-endian `u64` in `b[r]` (`r` eight bytes long). Panics if `b` is too short.
#[inline]
pub(crate) fn be64(b: &[u8], r: Range<usize>) -> u64 {
    u64::from_be_bytes(array(b, r))
}

/// The big-endian `u16` at offset `at` of `b`, or `None` if `b` is too short.
#[inline]
pub(crate) fn get_be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// The big-endian `u32` at offset `at` of `b`, or `None` if `b` is too short.
#[inline]
pub(crate) fn get_be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_network_order() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(be16(&b, 1..3), 0x0203);
        assert_eq!(be32(&b, 0..4), 0x0102_0304);
        assert_eq!(be64(&b, 1..9), 0x0203_0405_0607_0809);
        assert_eq!(get_be16(&b, 7), Some(0x0809));
        assert_eq!(get_be16(&b, 8), None);
        assert_eq!(get_be32(&b, 5), Some(0x0607_0809));
        assert_eq!(get_be32(&b, 6), None);
        assert_eq!(get_be32(&b, usize::MAX), None);
    }

    #[test]
    #[should_panic]
    fn be16_panics_past_the_end() {
        be16(&[1], 0..2);
    }
}
