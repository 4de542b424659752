//! VRRP director election: a sans-IO state machine after RFC 5798 §6 (and
//! RFC 3768 for VRRPv2), with no clock and no sockets inside.
//!
//! # Driving it
//!
//! The host (the control plane) owns the clock and the I/O. Time is a
//! [`std::time::Instant`] passed into every call, so tests run on a virtual
//! clock by adding `Duration`s to one fixed `Instant` (see
//! `tests/vrrp_timeline.rs`); nothing here reads the system clock.
//!
//! Inputs:
//! * [`Instance::handle_startup`] / [`Instance::handle_shutdown`]: the RFC's
//!   Startup and Shutdown events.
//! * [`Instance::handle_packet`]: a received IP payload; it runs
//!   [`check_advert`] (counting and rate-limiting the log of drops) and then
//!   [`Instance::handle_advert`]. `handle_advert` can also be called directly
//!   with an already-checked [`Advert`].
//! * [`Instance::handle_timeout`]: call it when [`Instance::poll_timeout`]'s
//!   deadline has passed (calling it early is harmless).
//! * [`Instance::set_priority`]: node health changes the local priority; 0
//!   resigns (see there).
//!
//! Outputs, after every input: drain [`Instance::poll_action`] until `None`,
//! then re-arm the host timer with [`Instance::poll_timeout`]. Within one input,
//! actions come in this order: a state change first (`BecomeMaster`,
//! `BecomeBackup`) so that the host installs or removes the VIP before it
//! announces anything, then `SendAdvert`, then `SendGratuitousArp`s; on
//! shutdown the priority-0 `SendAdvert` comes before `BecomeInitialize`.
//! [`Instance::advert_repr`] builds the wire message for a `SendAdvert`.
//!
//! # Timers and units
//!
//! All intervals are kept in centiseconds, the unit of RFC 5798, and the
//! RFC 5798 §6.1 formulas are used for both versions, with integer arithmetic:
//! `Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256` and
//! `Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_Time`. A v2
//! interval of N seconds is N*100 cs. (RFC 3768 defines the v2 Skew_Time as
//! `(256 - Priority) / 256` seconds, not scaled by the interval; at the usual
//! 1 s interval the two differ only by rounding, e.g. 610 ms against 613 ms for
//! priority 99.) Priority 99 at 1 s gives a Master_Down_Interval of 3610 ms,
//! priority 89 gives 3650 ms.
//!
//! # The original product's flow, mapped onto the RFC
//!
//! The original describes start-up as "Initialize → receive an advert →
//! compare priorities → Master or Backup". Under RFC 5798 a non-owner always
//! goes Initialize → Backup at start-up and arms the Master_Down_Timer. With
//! directors 99 and 89 started together, 99's timer fires first (3610 ms
//! against 3650 ms), it becomes Master and advertises; 89 hears a higher
//! priority, resets its timer and stays Backup. The outcome is the original's
//! (99 Active, 89 Passive); the "comparison" is the skew in the timers plus the
//! advert check. Equal priorities: a Backup accepts an equal-priority master's
//! adverts and never preempts it, so "the director that appeared on the network
//! first stays Active"; only two simultaneous Masters (start-up race, healed
//! partition) are resolved by the higher primary address.
//!
//! # Preempt delay
//!
//! Not in the RFC (keepalived's `preempt_delay`): for `preempt_delay` after
//! start-up, the instance behaves as if `Preempt_Mode` were False, i.e. it
//! accepts a lower-priority master's adverts. After that, it discards them as
//! the RFC says, and takes over when its Master_Down_Timer fires, at most one
//! Master_Down_Interval after the delay ends.
//!
//! # Gratuitous ARP
//!
//! On becoming Master the instance emits `garp_count` rounds of one
//! `SendGratuitousArp` per VIP, and, if `garp_refresh` is set, one more batch
//! that long afterwards (the original's "5, repeated once after 5 s").

mod check;
mod counters;
mod family;

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde::Serialize;
use thiserror::Error;

pub use self::check::{Drop, IpMeta, check_advert};
pub use self::counters::{Counters, DropLog};
pub use self::family::{Family, Parsed};
use crate::wire::vrrp as wire;
pub use crate::wire::vrrp::Version;

/// The configuration of one virtual router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config<A: Family = Ipv4Addr> {
    /// Virtual Router ID, 1..=255.
    pub vrid: u8,
    /// Local priority, 1..=255; 255 means the address owner (not used by
    /// proxyha's directors, but handled as the RFC says).
    pub priority: u8,
    /// Protocol version.
    pub version: Version,
    /// Advertisement_Interval: v2 whole seconds 1..=255 s; v3 a multiple of
    /// 10 ms in 10 ms..=40.95 s.
    pub adver_int: Duration,
    /// Preempt_Mode (default true).
    pub preempt: bool,
    /// Time after start-up during which a lower-priority master is not preempted.
    pub preempt_delay: Duration,
    /// This router's primary IPv4 address: the source of its adverts and the
    /// equal-priority tie-break.
    pub primary_ip: A,
    /// The virtual addresses, 1..=255 of them (IPv6: the link-local one
    /// first, RFC 5798 §5.2.9).
    pub vips: Vec<A>,
    /// Gratuitous ARPs per VIP on becoming Master (default 5).
    pub garp_count: u32,
    /// When to repeat the gratuitous ARPs once after becoming Master (default 5 s).
    pub garp_refresh: Option<Duration>,
    /// v2 simple-text authentication (RFC 2338 type 1), `None` for type 0.
    pub auth: Option<[u8; 8]>,
    /// Accepted advert sources (`vrrp.peers`); empty accepts any source.
    pub peers: Vec<A>,
}

impl<A: Family> Config<A> {
    /// A configuration with the defaults: VRRPv2, 1 s, preempt on with no
    /// delay, 5 gratuitous ARPs repeated after 5 s, no authentication.
    pub fn new(vrid: u8, priority: u8, primary_ip: A, vips: Vec<A>) -> Config<A> {
        Config {
            vrid,
            priority,
            version: if A::SUPPORTS_V2 {
                Version::V2
            } else {
                Version::V3
            },
            adver_int: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            primary_ip,
            vips,
            garp_count: 5,
            garp_refresh: Some(Duration::from_secs(5)),
            auth: None,
            peers: Vec::new(),
        }
    }

    /// Checks every rule; [`Instance::new`] calls it.
    pub fn validate(&self) -> Result<(), Error> {
        if self.vrid == 0 {
            return Err(Error::BadVrid(self.vrid));
        }
        if self.priority == 0 {
            return Err(Error::BadPriority(self.priority));
        }
        interval_cs(self.version, self.adver_int)?;
        if self.vips.is_empty() || self.vips.len() > 255 {
            return Err(Error::BadVipCount(self.vips.len()));
        }
        if self.version == Version::V2 && !A::SUPPORTS_V2 {
            return Err(Error::V2IsIpv4Only);
        }
        if self.version == Version::V3 && self.auth.is_some() {
            return Err(Error::AuthNeedsV2);
        }
        if self.garp_refresh == Some(Duration::ZERO) {
            return Err(Error::ZeroGarpRefresh);
        }
        Ok(())
    }
}

/// The Advertisement_Interval in centiseconds, if valid for the version.
fn interval_cs(version: Version, d: Duration) -> Result<u16, Error> {
    let bad = Error::BadAdverInt {
        version,
        millis: d.as_millis(),
    };
    match version {
        Version::V2 => {
            if d.subsec_nanos() != 0 || !(1..=255).contains(&d.as_secs()) {
                return Err(bad);
            }
            Ok(d.as_secs() as u16 * 100)
        }
        Version::V3 => {
            let nanos = d.as_nanos();
            if !nanos.is_multiple_of(10_000_000) {
                return Err(bad);
            }
            let cs = nanos / 10_000_000;
            if !(1..=u128::from(wire::MAX_ADVER_INT_CS)).contains(&cs) {
                return Err(bad);
            }
            Ok(cs as u16)
        }
    }
}

/// Why a [`Config`] is not usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// VRID 0.
    #[error("vrid {0}: must be 1..=255")]
    BadVrid(u8),
    /// Priority 0 (reserved for a master that stops).
    #[error("priority {0}: must be 1..=255")]
    BadPriority(u8),
    /// An interval the version cannot carry.
    #[error(
        "adver_int {millis} ms: VRRP{version:?} needs whole seconds 1..=255 (v2) or a multiple of 10 ms in 10..=40950 ms (v3)"
    )]
    BadAdverInt {
        /// The configured version.
        version: Version,
        /// The configured interval.
        millis: u128,
    },
    /// No VIPs, or more than an advert can carry.
    #[error("{0} virtual addresses: must be 1..=255")]
    BadVipCount(usize),
    /// Simple-text authentication exists only in VRRPv2.
    #[error("auth: simple-text authentication exists only in VRRPv2")]
    AuthNeedsV2,
    /// VRRPv2 over IPv6: RFC 3768 is IPv4 only.
    #[error("version 2: VRRPv2 (RFC 3768) is IPv4 only")]
    V2IsIpv4Only,
    /// `garp_refresh = 0`; use `None` to disable the repeat.
    #[error("garp_refresh 0: must be positive (or unset to disable)")]
    ZeroGarpRefresh,
    /// A reload tried to change the VRID, version or interval.
    #[error("the VRID, version and advert interval change only with a restart")]
    NeedsRestart,
}

/// The RFC 5798 §6.4 states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum State {
    /// Waiting for a Startup event.
    Initialize,
    /// Monitoring the Master; the Passive Director.
    Backup,
    /// Owning the VIPs; the Active Director.
    Master,
}

/// Why a state change happened; carried by the `Become*` actions and the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Reason<A: Family = Ipv4Addr> {
    /// Start-up as a non-owner: Backup until a Master_Down_Interval passes.
    Startup,
    /// Start-up with priority 255 (the address owner): Master at once.
    AddressOwner,
    /// The Master_Down_Timer fired: no master advert for Master_Down_Interval.
    MasterDown,
    /// The Master_Down_Timer fired Skew_Time after the master (`from`) sent priority 0.
    MasterResigned {
        /// The master that sent priority 0.
        from: A,
    },
    /// As Master, heard a higher priority.
    HigherPriority {
        /// The new master.
        from: A,
        /// Its priority.
        priority: u8,
    },
    /// As Master, heard an equal priority from a higher primary address.
    EqualPriorityHigherAddress {
        /// The new master.
        from: A,
    },
    /// Priority set to 0 (node unhealthy): stop being Master, never take over.
    Resigned,
    /// The Shutdown event.
    Shutdown,
}

/// What the host must do, in the order [`Instance::poll_action`] returns them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Action<A: Family = Ipv4Addr> {
    /// Send an advert with this priority (0 on shutdown or resignation); build
    /// it with [`Instance::advert_repr`], from the primary address to 224.0.0.18, TTL 255.
    SendAdvert {
        /// The priority field.
        priority: u8,
    },
    /// Become the Active Director: take the VIPs and the virtual MAC, answer ARP.
    BecomeMaster {
        /// Why.
        reason: Reason<A>,
    },
    /// Be (or become) the Passive Director: own nothing, answer no ARP for the VIPs.
    BecomeBackup {
        /// Why.
        reason: Reason<A>,
    },
    /// Stop participating (shutdown): own nothing.
    BecomeInitialize {
        /// Why.
        reason: Reason<A>,
    },
    /// Broadcast one gratuitous ARP for `vip` with the virtual MAC.
    SendGratuitousArp {
        /// The virtual address.
        vip: A,
    },
}

/// An advert that passed [`check_advert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Advert<A: Family = Ipv4Addr> {
    /// The sender's primary address (the IPv4 source).
    pub src_ip: A,
    /// The sender's priority; 0 means the master stops.
    pub priority: u8,
    /// The interval the sender advertises at (v3: Max Adver Int; v2: Adver Int).
    pub max_adver_int: Duration,
}

/// Returned by [`Instance::handle_packet`] for a dropped packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected<A: Family = Ipv4Addr> {
    /// Which check failed.
    pub reason: Drop,
    /// The IPv4 source it came from.
    pub peer: A,
    /// True the first time this (reason, peer) pair is seen: log it then only.
    pub log: bool,
}

/// A serializable snapshot for `proxyha status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status<A: Family = Ipv4Addr> {
    /// Current state.
    pub state: State,
    /// VRID.
    pub vrid: u8,
    /// Version.
    pub version: Version,
    /// Current local priority (after `set_priority`).
    pub priority: u8,
    /// Configured priority.
    pub configured_priority: u8,
    /// Our primary address.
    pub primary_ip: A,
    /// The master as far as we know: ourselves as Master, the source of the
    /// last accepted advert as Backup, none in Initialize or before any advert.
    pub master_ip: Option<A>,
    /// That master's priority.
    pub master_priority: Option<u8>,
    /// Preempt_Mode.
    pub preempt: bool,
    /// Advertisement_Interval.
    pub advertisement_interval_ms: u64,
    /// Master_Adver_Interval.
    pub master_adver_interval_ms: u64,
    /// Skew_Time.
    pub skew_time_ms: u64,
    /// Master_Down_Interval.
    pub master_down_interval_ms: u64,
    /// Time left on the Master_Down_Timer (Backup).
    pub master_down_timer_ms: Option<u64>,
    /// Time left on the Adver_Timer (Master).
    pub adver_timer_ms: Option<u64>,
    /// The last state change's reason.
    pub last_reason: Option<Reason<A>>,
    /// Time since the last state change.
    pub since_change_ms: Option<u64>,
    /// Counters.
    pub counters: Counters,
}

/// One virtual router. See the module documentation for how to drive it.
#[derive(Debug, Clone)]
pub struct Instance<A: Family = Ipv4Addr> {
    cfg: Config<A>,
    /// Advertisement_Interval, cs.
    adver_cs: u16,
    /// Current local priority.
    priority: u8,
    state: State,
    /// Master_Adver_Interval, cs.
    master_adver_cs: u16,
    master_down_at: Option<Instant>,
    adver_at: Option<Instant>,
    garp_repeat_at: Option<Instant>,
    preempt_allowed_at: Option<Instant>,
    master: Option<(A, u8)>,
    /// Set when the Master_Down_Timer was set to Skew_Time by a priority-0 advert.
    resigned_master: Option<A>,
    last_change: Option<(Instant, Reason<A>)>,
    actions: VecDeque<Action<A>>,
    counters: Counters,
    drop_log: DropLog,
}

fn cs(n: u32) -> Duration {
    Duration::from_millis(10 * u64::from(n))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<A: Family> Instance<A> {
    /// A new instance in Initialize, after validating `cfg`.
    pub fn new(cfg: Config<A>) -> Result<Instance<A>, Error> {
        cfg.validate()?;
        let adver_cs = interval_cs(cfg.version, cfg.adver_int)?;
        Ok(Instance {
            priority: cfg.priority,
            cfg,
            adver_cs,
            state: State::Initialize,
            master_adver_cs: adver_cs,
            master_down_at: None,
            adver_at: None,
            garp_repeat_at: None,
            preempt_allowed_at: None,
            master: None,
            resigned_master: None,
            last_change: None,
            actions: VecDeque::new(),
            counters: Counters::default(),
            drop_log: DropLog::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config<A> {
        &self.cfg
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The current local priority.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Master_Adver_Interval (learned from the master in v3).
    pub fn master_adver_interval(&self) -> Duration {
        cs(u32::from(self.master_adver_cs))
    }

    /// RFC 5798 §6.1: "Skew_Time: Time to skew Master_Down_Interval in
    /// centiseconds. Calculated as: (((256 - priority) * Master_Adver_Interval) / 256)"
    fn skew_cs(&self) -> u32 {
        ((256 - u32::from(self.priority)) * u32::from(self.master_adver_cs)) / 256
    }

    /// RFC 5798 §6.1: "Master_Down_Interval: Time interval for Backup to declare
    /// Master down (centiseconds). Calculated as: (3 * Master_Adver_Interval) + Skew_time"
    fn master_down_cs(&self) -> u32 {
        3 * u32::from(self.master_adver_cs) + self.skew_cs()
    }

    /// Skew_Time.
    pub fn skew_time(&self) -> Duration {
        cs(self.skew_cs())
    }

    /// Master_Down_Interval.
    pub fn master_down_interval(&self) -> Duration {
        cs(self.master_down_cs())
    }

    /// The virtual router MAC, 00:00:5e:00:01:{VRID} for IPv4 and
    /// 00:00:5e:00:02:{VRID} for IPv6 (RFC 5798 §7.3), that the
    /// Master answers ARP with and sends gratuitous ARPs and adverts from.
    pub fn virtual_mac(&self) -> [u8; 6] {
        A::virtual_mac(self.cfg.vrid).octets()
    }

    /// The wire message for a [`Action::SendAdvert`] with `priority`.
    pub fn advert_repr(&self, priority: u8) -> A::Wire {
        A::advert(&self.cfg, self.adver_cs, priority)
    }

    /// The next action for the host, if any.
    pub fn poll_action(&mut self) -> Option<Action<A>> {
        self.actions.pop_front()
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout)
    /// has work, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.master_down_at, self.adver_at, self.garp_repeat_at]
            .into_iter()
            .flatten()
            .min()
    }

    fn push(&mut self, a: Action<A>) {
        match a {
            Action::SendAdvert { priority } => {
                self.counters.tx_adverts += 1;
                if priority == 0 {
                    self.counters.tx_priority_zero += 1;
                }
            }
            Action::SendGratuitousArp { .. } => self.counters.tx_garps += 1,
            Action::BecomeMaster { .. } => self.counters.became_master += 1,
            Action::BecomeBackup { .. } => self.counters.became_backup += 1,
            Action::BecomeInitialize { .. } => self.counters.became_initialize += 1,
        }
        self.actions.push_back(a);
    }

    /// A reload: takes the new preempt, preempt delay, gratuitous-ARP,
    /// peer and address settings without leaving the current state. The
    /// VRID, version and interval must not change (only a restart changes
    /// them); priority goes through [`Instance::set_priority`]. A Master
    /// announces only the addresses that are new, with gratuitous ARPs;
    /// nothing else is re-sent.
    pub fn reconfigure(&mut self, cfg: Config<A>) -> Result<(), Error> {
        cfg.validate()?;
        if cfg.vrid != self.cfg.vrid
            || cfg.version != self.cfg.version
            || cfg.adver_int != self.cfg.adver_int
        {
            return Err(Error::NeedsRestart);
        }
        let added: Vec<A> = cfg
            .vips
            .iter()
            .filter(|v| !self.cfg.vips.contains(v))
            .copied()
            .collect();
        let priority = self.priority;
        self.cfg = Config { priority, ..cfg };
        if self.state == State::Master {
            for _ in 0..self.cfg.garp_count {
                for vip in &added {
                    self.push(Action::SendGratuitousArp { vip: *vip });
                }
            }
        }
        Ok(())
    }

    fn garp_batch(&mut self) {
        for _ in 0..self.cfg.garp_count {
            for i in 0..self.cfg.vips.len() {
                let vip = self.cfg.vips[i];
                self.push(Action::SendGratuitousArp { vip });
            }
        }
    }

    /// RFC 5798 §6.4.1 (the owner branch) and §6.4.2 (370)-(410): send an
    /// ADVERTISEMENT, broadcast a gratuitous ARP for each address, set the
    /// Adver_Timer to Advertisement_Interval, transition to {Master}.
    fn become_master(&mut self, now: Instant, reason: Reason<A>) {
        self.state = State::Master;
        self.master_down_at = None;
        self.resigned_master = None;
        self.adver_at = Some(now + cs(u32::from(self.adver_cs)));
        self.garp_repeat_at = self.cfg.garp_refresh.map(|d| now + d);
        self.master = Some((self.cfg.primary_ip, self.priority));
        self.last_change = Some((now, reason));
        self.push(Action::BecomeMaster { reason });
        self.push(Action::SendAdvert {
            priority: self.priority,
        });
        self.garp_batch();
    }

    /// Arms the Master_Down_Timer unless we have resigned (priority 0 never takes over).
    fn arm_master_down(&mut self, now: Instant, after_cs: u32) {
        self.master_down_at = (self.priority != 0).then(|| now + cs(after_cs));
    }

    fn preempt_now(&self, now: Instant) -> bool {
        self.cfg.preempt && self.preempt_allowed_at.is_none_or(|t| now >= t)
    }

    /// The Startup event (ignored unless in Initialize).
    ///
    /// RFC 5798 §6.4.1:
    /// > If a Startup event is received, then:
    /// > - If the Priority = 255 (i.e., the router owns the IPvX address
    /// >   associated with the virtual router), then:
    /// >   + Send an ADVERTISEMENT
    /// >   + If the protected IPvX address is an IPv4 address, then:
    /// >     * Broadcast a gratuitous ARP request containing the virtual router
    /// >       MAC address for each IP address associated with the virtual router.
    /// >   + Set the Adver_Timer to Advertisement_Interval
    /// >   + Transition to the {Master} state
    /// > - else // rtr does not own virt addr
    /// >   + Set Master_Adver_Interval to Advertisement_Interval
    /// >   + Set the Master_Down_Timer to Master_Down_Interval
    /// >   + Transition to the {Backup} state
    pub fn handle_startup(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        self.preempt_allowed_at = Some(now + self.cfg.preempt_delay);
        self.master = None;
        self.resigned_master = None;
        self.master_adver_cs = self.adver_cs;
        if self.priority == 255 {
            self.become_master(now, Reason::AddressOwner);
        } else {
            self.state = State::Backup;
            self.arm_master_down(now, self.master_down_cs());
            self.last_change = Some((now, Reason::Startup));
            self.push(Action::BecomeBackup {
                reason: Reason::Startup,
            });
        }
    }

    /// The Shutdown event (ignored in Initialize).
    ///
    /// RFC 5798 §6.4.2 Backup:
    /// > If a Shutdown event is received, then:
    /// > (350) + Cancel the Master_Down_Timer
    /// > (355) + Transition to the {Initialize} state
    ///
    /// §6.4.3 Master:
    /// > If a Shutdown event is received, then:
    /// > (660) + Cancel the Adver_Timer
    /// > (665) + Send an ADVERTISEMENT with Priority = 0
    /// > (670) + Transition to the {Initialize} state
    pub fn handle_shutdown(&mut self, now: Instant) {
        match self.state {
            State::Initialize => return,
            State::Backup => {}
            State::Master => self.push(Action::SendAdvert { priority: 0 }),
        }
        self.state = State::Initialize;
        self.master_down_at = None;
        self.adver_at = None;
        self.garp_repeat_at = None;
        self.master = None;
        self.resigned_master = None;
        self.last_change = Some((now, Reason::Shutdown));
        self.push(Action::BecomeInitialize {
            reason: Reason::Shutdown,
        });
    }

    /// Fires every timer whose deadline is at or before `now`.
    ///
    /// RFC 5798 §6.4.2 Backup:
    /// > If the Master_Down_Timer fires, then:
    /// > (370) + Send an ADVERTISEMENT
    /// > (375) + If the protected IPvX address is an IPv4 address, then:
    /// > (380) * Broadcast a gratuitous ARP request on that interface
    /// > containing the virtual router MAC address for each IPv4 address
    /// > associated with the virtual router.
    /// > (405) + Set the Adver_Timer to Advertisement_Interval
    /// > (410) + Transition to the {Master} state
    ///
    /// §6.4.3 Master:
    /// > If the Adver_Timer fires, then:
    /// > (685) + Send an ADVERTISEMENT
    /// > (690) + Reset the Adver_Timer to Advertisement_Interval
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Initialize => {}
            State::Backup => {
                if self.master_down_at.is_some_and(|t| t <= now) {
                    let reason = match self.resigned_master {
                        Some(from) => Reason::MasterResigned { from },
                        None => Reason::MasterDown,
                    };
                    self.become_master(now, reason);
                }
            }
            State::Master => {
                if self.adver_at.is_some_and(|t| t <= now) {
                    self.push(Action::SendAdvert {
                        priority: self.priority,
                    });
                    self.adver_at = Some(now + cs(u32::from(self.adver_cs)));
                }
                if self.garp_repeat_at.is_some_and(|t| t <= now) {
                    self.garp_repeat_at = None;
                    self.garp_batch();
                }
            }
        }
    }

    /// Runs [`check_advert`] on a received IP payload and, if it passes,
    /// [`handle_advert`](Self::handle_advert). A dropped packet is counted per
    /// reason and changes nothing else; `Rejected::log` says whether this is
    /// the first time for its (reason, peer) pair.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        ip: &IpMeta<A>,
        payload: &[u8],
    ) -> Result<Advert<A>, Rejected<A>> {
        match check::check_advert_at_priority(ip, payload, &self.cfg, self.priority) {
            Ok(advert) => {
                self.handle_advert(now, &advert);
                Ok(advert)
            }
            Err(reason) => {
                self.counters.count_drop(reason);
                let log = self.drop_log.should_log(reason, ip.src);
                Err(Rejected {
                    reason,
                    peer: ip.src,
                    log,
                })
            }
        }
    }

    /// An advert that passed the receive checks.
    ///
    /// RFC 5798 §6.4.2 Backup:
    /// > If an ADVERTISEMENT is received, then:
    /// > + If the Priority in the ADVERTISEMENT is zero, then:
    /// > (430) * Set the Master_Down_Timer to Skew_Time
    /// > + else // priority non-zero
    /// >   * If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT
    /// >     is greater than or equal to the local Priority, then:
    /// > (450) @ Set Master_Adver_Interval to Adver Interval contained in the ADVERTISEMENT
    /// > (455) @ Recompute the Master_Down_Interval
    /// > (460) @ Reset the Master_Down_Timer to Master_Down_Interval
    /// >   * else // preempt was true or priority was less
    /// > (470) @ Discard the ADVERTISEMENT
    ///
    /// §6.4.3 Master:
    /// > (700) - If an ADVERTISEMENT is received, then:
    /// > (705) -+ If the Priority in the ADVERTISEMENT is zero, then:
    /// > (710) -* Send an ADVERTISEMENT
    /// > (715) -* Reset the Adver_Timer to Advertisement_Interval
    /// > (720) -+ else // priority was non-zero
    /// > (725) -* If the Priority in the ADVERTISEMENT is greater than the local Priority,
    /// > (730) -* or
    /// > (735) -* If the Priority in the ADVERTISEMENT is equal to the local
    /// > Priority and the primary IPvX Address of the sender is greater than
    /// > the local primary IPvX Address, then:
    /// > (740) -@ Cancel Adver_Timer
    /// > (745) -@ Set Master_Adver_Interval to Adver Interval contained in the ADVERTISEMENT
    /// > (750) -@ Recompute the Skew_Time
    /// > (755) @ Recompute the Master_Down_Interval
    /// > (760) @ Set Master_Down_Timer to Master_Down_Interval
    /// > (765) @ Transition to the {Backup} state
    /// > (770) * else // new Master logic
    /// > (775) @ Discard ADVERTISEMENT
    ///
    /// "Note that in the Master state, the Preempt_Mode Flag is not considered."
    /// In Initialize an advert is ignored.
    pub fn handle_advert(&mut self, now: Instant, advert: &Advert<A>) {
        self.counters.rx_adverts += 1;
        if advert.priority == 0 {
            self.counters.rx_priority_zero += 1;
        }
        // Learned intervals are clamped to what the wire can carry, >= 1 cs.
        let learned_cs = u16::try_from(advert.max_adver_int.as_millis() / 10)
            .unwrap_or(u16::MAX)
            .max(1);
        match self.state {
            State::Initialize => self.counters.rx_adverts_ignored += 1,
            State::Backup => {
                if advert.priority == 0 {
                    self.arm_master_down(now, self.skew_cs());
                    self.resigned_master = Some(advert.src_ip);
                } else if !self.preempt_now(now) || advert.priority >= self.priority {
                    self.master_adver_cs = learned_cs;
                    self.arm_master_down(now, self.master_down_cs());
                    self.master = Some((advert.src_ip, advert.priority));
                    self.resigned_master = None;
                } else {
                    // About to preempt it; remember who it is, in case our
                    // priority drops below its (set_priority).
                    self.master = Some((advert.src_ip, advert.priority));
                    self.counters.rx_adverts_ignored += 1;
                }
            }
            State::Master => {
                if advert.priority == 0 {
                    self.push(Action::SendAdvert {
                        priority: self.priority,
                    });
                    self.adver_at = Some(now + cs(u32::from(self.adver_cs)));
                    return;
                }
                let reason = if advert.priority > self.priority {
                    Reason::HigherPriority {
                        from: advert.src_ip,
                        priority: advert.priority,
                    }
                } else if advert.priority == self.priority && advert.src_ip > self.cfg.primary_ip {
                    Reason::EqualPriorityHigherAddress {
                        from: advert.src_ip,
                    }
                } else {
                    self.counters.rx_adverts_ignored += 1;
                    return;
                };
                self.adver_at = None;
                self.garp_repeat_at = None;
                self.master_adver_cs = learned_cs;
                self.arm_master_down(now, self.master_down_cs());
                self.master = Some((advert.src_ip, advert.priority));
                self.state = State::Backup;
                self.last_change = Some((now, reason));
                self.push(Action::BecomeBackup { reason });
            }
        }
    }

    /// Changes the local priority (node health drives it). Not in the RFC:
    ///
    /// * 1..=255 as Master: the new priority is advertised at once (and the
    ///   Adver_Timer reset) so that a Backup with a now-higher priority can
    ///   preempt; as Backup it takes effect for the next timer computation.
    /// * 0 resigns: a Master sends a priority-0 advert (so the Backup takes over
    ///   after Skew_Time) and becomes Backup; an instance at priority 0 never
    ///   arms its Master_Down_Timer, so it never becomes Master. Raising the
    ///   priority from 0 in Backup arms the timer with Master_Down_Interval.
    pub fn set_priority(&mut self, now: Instant, priority: u8) {
        let old = self.priority;
        self.priority = priority;
        if old == priority {
            return;
        }
        match self.state {
            State::Initialize => {}
            State::Backup => {
                if priority == 0 {
                    self.master_down_at = None;
                } else if old == 0 {
                    self.arm_master_down(now, self.master_down_cs());
                } else if priority < old && self.master.is_some_and(|(_, p)| p >= priority) {
                    // We were discarding the Master's adverts as lower than
                    // ours (preempt); now they no longer are, so its last
                    // advert counts as heard: never claim Master at a
                    // priority the Master's beats.
                    self.arm_master_down(now, self.master_down_cs());
                }
            }
            State::Master => {
                self.push(Action::SendAdvert { priority });
                if priority == 0 {
                    self.adver_at = None;
                    self.garp_repeat_at = None;
                    self.master = None;
                    self.master_down_at = None;
                    self.state = State::Backup;
                    self.last_change = Some((now, Reason::Resigned));
                    self.push(Action::BecomeBackup {
                        reason: Reason::Resigned,
                    });
                } else {
                    self.master = Some((self.cfg.primary_ip, priority));
                    self.adver_at = Some(now + cs(u32::from(self.adver_cs)));
                }
            }
        }
    }

    /// A snapshot of state, timers and counters; timers are reported as the
    /// time left after `now`.
    pub fn status(&self, now: Instant) -> Status<A> {
        let left = |t: Option<Instant>| t.map(|t| millis(t.saturating_duration_since(now)));
        Status {
            state: self.state,
            vrid: self.cfg.vrid,
            version: self.cfg.version,
            priority: self.priority,
            configured_priority: self.cfg.priority,
            primary_ip: self.cfg.primary_ip,
            master_ip: self.master.map(|m| m.0),
            master_priority: self.master.map(|m| m.1),
            preempt: self.cfg.preempt,
            advertisement_interval_ms: 10 * u64::from(self.adver_cs),
            master_adver_interval_ms: millis(self.master_adver_interval()),
            skew_time_ms: millis(self.skew_time()),
            master_down_interval_ms: millis(self.master_down_interval()),
            master_down_timer_ms: left(self.master_down_at),
            adver_timer_ms: left(self.adver_at),
            last_reason: self.last_change.map(|c| c.1),
            since_change_ms: self
                .last_change
                .map(|c| millis(now.saturating_duration_since(c.0))),
            counters: self.counters.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
