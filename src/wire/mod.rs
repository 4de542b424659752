//! Byte formats only: zero-copy views (`Packet<T: AsRef<[u8]>>`) whose
//! `new_checked` guarantees that no accessor panics afterwards, and `Repr`
//! types that `parse` and `emit` (smoltcp style).

pub mod arp;
pub(crate) mod bytes;
pub mod checksum;
pub mod ethernet;
pub mod heartbeat;
pub mod ipv4;
pub mod ipv6;
pub mod ndp;
pub mod pcap;
pub mod tcp;
pub mod udp;
pub mod vrrp;

use thiserror::Error;

/// Why a frame or message could not be parsed. Every variant names what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// The buffer is shorter than the format needs.
    #[error("{what}: truncated: need {need} bytes, have {have}")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    /// A length or header-length field is inconsistent with the buffer.
    #[error("{what}: bad length field {value}")]
    BadLength { what: &'static str, value: usize },
    /// A version field holds a value we do not speak.
    #[error("{what}: unsupported version {value}")]
    BadVersion { what: &'static str, value: u8 },
    /// A checksum does not verify.
    #[error("{what}: bad checksum")]
    BadChecksum { what: &'static str },
    /// A field holds a value outside its allowed set.
    #[error("{what}: bad {field} {value}")]
    BadField {
        what: &'static str,
        field: &'static str,
        value: u64,
    },
    /// A magic number is wrong.
    #[error("{what}: bad magic {value:#x}")]
    BadMagic { what: &'static str, value: u64 },
    /// An authentication trailer does not verify.
    #[error("{what}: authentication failed")]
    BadAuth { what: &'static str },
    /// A textual form (an address, a CIDR) does not parse.
    #[error("{what}: cannot parse {text:?}")]
    BadText { what: &'static str, text: String },
}

/// Result alias for wire parsing.
pub type Result<T> = core::result::Result<T, Error>;

/// Checks that `buf` holds at least `need` bytes.
#[inline]
#[allow(dead_code)] // used by the format modules
pub(crate) fn need(what: &'static str, buf: &[u8], need: usize) -> Result<()> {
    if buf.len() < need {
        Err(Error::Truncated {
            what,
            need,
            have: buf.len(),
        })
    } else {
        Ok(())
    }
}
