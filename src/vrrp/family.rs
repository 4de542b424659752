//! The address family of a VRRP instance: RFC 5798 runs one instance per
//! family ("VRRP for IPv4 and VRRP for IPv6 [...] are separate", §4.4),
//! sharing the VRID. [`Family`] is what differs between them: the address
//! size and checksum on the wire, the multicast group, the virtual MAC and
//! whether VRRPv2 exists (IPv4 only).

use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::{Config, Drop};
use crate::wire::ethernet;
use crate::wire::vrrp::{self as wire, Auth, Packet, Version, v6};

/// The fields of an advert, once the family's checks passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<A> {
    pub vrid: u8,
    pub priority: u8,
    /// v2 Adver Int (s) or v3 Max Adver Int (cs).
    pub adver_int: u16,
    pub auth: Auth,
    pub addrs: Vec<A>,
}

/// An IP address family VRRP runs over: [`Ipv4Addr`] or [`Ipv6Addr`].
pub trait Family:
    Copy + Ord + Hash + Debug + Display + Serialize + Into<IpAddr> + Send + Sync + 'static
{
    /// The adverts' destination: 224.0.0.18 or ff02::12.
    const MULTICAST: Self;
    /// Whether VRRPv2 (RFC 3768) exists for the family: IPv4 only.
    const SUPPORTS_V2: bool;
    /// The wire message an advert is built as.
    type Wire: Debug + Clone + PartialEq;

    /// Length of a message of `version` with `count` addresses.
    fn message_len(version: Version, count: usize) -> usize;

    /// Verifies the checksum (with the family's pseudo-header) of a message
    /// whose length, version and type were checked, and parses it.
    fn parse(payload: &[u8], src: Self, dst: Self) -> Result<Parsed<Self>, Drop>;

    /// The virtual router MAC: 00:00:5e:00:01:{VRID} for IPv4,
    /// 00:00:5e:00:02:{VRID} for IPv6 (RFC 5798 §7.3).
    fn virtual_mac(vrid: u8) -> ethernet::Address;

    /// The advert `cfg`'s instance sends at `priority`, interval `adver_cs`.
    fn advert(cfg: &Config<Self>, adver_cs: u16, priority: u8) -> Self::Wire;
}

impl Family for Ipv4Addr {
    const MULTICAST: Ipv4Addr = wire::MULTICAST_ADDR;
    const SUPPORTS_V2: bool = true;
    type Wire = wire::Repr;

    fn message_len(version: Version, count: usize) -> usize {
        wire::message_len(version, count)
    }

    fn parse(payload: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<Parsed<Ipv4Addr>, Drop> {
        let packet = Packet::new_checked(payload).map_err(|_| Drop::BadAddressList)?;
        if !packet.verify_checksum(src, dst) {
            return Err(Drop::BadChecksum);
        }
        let r = wire::Repr::parse(&packet, src, dst).map_err(|_| Drop::Malformed)?;
        Ok(Parsed {
            vrid: r.vrid,
            priority: r.priority,
            adver_int: r.adver_int,
            auth: r.auth,
            addrs: r.addrs,
        })
    }

    fn virtual_mac(vrid: u8) -> ethernet::Address {
        ethernet::Address::vrrp_virtual(vrid)
    }

    fn advert(cfg: &Config<Ipv4Addr>, adver_cs: u16, priority: u8) -> wire::Repr {
        let (adver_int, auth) = match cfg.version {
            Version::V2 => (
                adver_cs / 100,
                cfg.auth.map_or(Auth::None, Auth::SimpleText),
            ),
            Version::V3 => (adver_cs, Auth::None),
        };
        wire::Repr {
            version: cfg.version,
            vrid: cfg.vrid,
            priority,
            adver_int,
            auth,
            addrs: cfg.vips.clone(),
        }
    }
}

impl Family for Ipv6Addr {
    const MULTICAST: Ipv6Addr = v6::MULTICAST_ADDR;
    const SUPPORTS_V2: bool = false;
    type Wire = v6::Repr;

    fn message_len(_version: Version, count: usize) -> usize {
        v6::message_len(count)
    }

    /// Besides the checksum, RFC 5798 §5.2.9: the first address must be
    /// link-local (refused as [`Drop::BadAddressList`]).
    fn parse(payload: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<Parsed<Ipv6Addr>, Drop> {
        match v6::Repr::parse(payload, src, dst) {
            Ok(r) => Ok(Parsed {
                vrid: r.vrid,
                priority: r.priority,
                adver_int: r.max_adver_int,
                auth: Auth::None,
                addrs: r.addrs,
            }),
            Err(crate::wire::Error::BadChecksum { .. }) => Err(Drop::BadChecksum),
            Err(crate::wire::Error::BadField { field, .. }) if field != "type" => {
                Err(Drop::BadAddressList)
            }
            Err(_) => Err(Drop::Malformed),
        }
    }

    fn virtual_mac(vrid: u8) -> ethernet::Address {
        ethernet::Address::vrrp_virtual_ipv6(vrid)
    }

    /// The addresses as configured: the host puts the link-local one first.
    fn advert(cfg: &Config<Ipv6Addr>, adver_cs: u16, priority: u8) -> v6::Repr {
        v6::Repr {
            vrid: cfg.vrid,
            priority,
            max_adver_int: adver_cs,
            addrs: cfg.vips.clone(),
        }
    }
}
