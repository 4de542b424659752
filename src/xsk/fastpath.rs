//! The XDP fast path's maps (docs/dataplane.md, "The XDP fast path"): the
//! flows the workers install, the node slots the control plane mirrors from
//! the health table, and the per-node per-CPU counters. The program side is
//! `fast_or_xsk` in `src/bpf/filter.bpf.c`; the layouts here mirror its
//! `struct flow_key`, `struct flow_target`, `struct node_slot` and
//! `struct fast_counter`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use bytemuck::{Pod, Zeroable};

use crate::balance::{flow, health};
use crate::bpf::Map;

use super::Error;

/// Entries of the fast-path flow map (`FLOW_ENTRIES` in filter.bpf.c). An
/// LRU hash: when full, the least recently used flow leaves it, and its next
/// packet goes to the workers, which install it again.
pub const FLOW_ENTRIES: usize = 262_144;

/// `struct flow_key`: the 5-tuple as on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct FlowKey {
    saddr: [u8; 4],
    daddr: [u8; 4],
    sport: [u8; 2],
    dport: [u8; 2],
    proto: u8,
    pad: [u8; 3],
}

impl From<&flow::Key> for FlowKey {
    fn from(k: &flow::Key) -> FlowKey {
        FlowKey {
            saddr: k.src.to_be_bytes(),
            daddr: k.dst.to_be_bytes(),
            sport: k.sport.to_be_bytes(),
            dport: k.dport.to_be_bytes(),
            proto: k.proto,
            pad: [0; 3],
        }
    }
}

/// `struct flow_target`: where an installed flow goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct FlowTarget {
    /// The node's health slot.
    pub slot: u16,
    /// The low 16 bits of the slot generation it was steered under.
    pub generation: u16,
    /// The fast-path epoch it was installed in.
    pub epoch: u32,
}

/// `struct node_slot`: one health slot as the program sees it.
fn node_slot(node: Option<&health::Node>) -> [u8; 12] {
    let mut b = [0u8; 12];
    if let Some(n) = node {
        b[..6].copy_from_slice(&n.mac);
        b[6..8].copy_from_slice(&(n.generation as u16).to_ne_bytes());
        b[8] = n.state as u8;
    }
    b
}

/// `struct fast_counter`, per CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
struct Counter {
    packets: u64,
    bytes: u64,
}

/// What the fast path forwarded for one node, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeCounters {
    /// Frames.
    pub packets: u64,
    /// Bytes (whole frames).
    pub bytes: u64,
}

/// The mirror of the health table last written, to write only changes.
struct Mirror {
    version: Option<u64>,
    slots: Vec<[u8; 12]>,
}

/// The fast path's maps, owned by the [`super::Filter`].
pub struct FastPath {
    flows: Map,
    nodes: Map,
    counters: Map,
    /// The config's epoch, read by every install.
    pub(super) epoch: AtomicU32,
    mirror: Mutex<Mirror>,
}

impl FastPath {
    pub(super) fn new(flows: Map, nodes: Map, counters: Map) -> FastPath {
        FastPath {
            flows,
            nodes,
            counters,
            epoch: AtomicU32::new(0),
            mirror: Mutex::new(Mirror {
                version: None,
                slots: vec![[0; 12]; health::CAPACITY],
            }),
        }
    }

    /// Installs `flows` (one worker batch) under the current epoch, with one
    /// batched map update where the kernel has them. Returns how many were
    /// written.
    pub fn install(&self, flows: &[(flow::Key, flow::Target)]) -> Result<usize, Error> {
        let epoch = self.epoch.load(Ordering::Relaxed);
        let keys: Vec<FlowKey> = flows.iter().map(|(k, _)| FlowKey::from(k)).collect();
        let values: Vec<FlowTarget> = flows
            .iter()
            .map(|(_, t)| FlowTarget {
                slot: t.slot,
                generation: t.generation,
                epoch,
            })
            .collect();
        Ok(self.flows.update_batch(&keys, &values)?)
    }

    /// The installed entry of a flow, if any (whatever its epoch).
    pub fn lookup(&self, key: &flow::Key) -> Result<Option<FlowTarget>, Error> {
        match self.flows.lookup(&FlowKey::from(key)) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The number of entries in the flow map (one syscall per entry: for
    /// tests and diagnostics).
    pub fn len(&self) -> Result<usize, Error> {
        Ok(self.flows.keys::<FlowKey>(FLOW_ENTRIES)?.len())
    }

    /// Whether the flow map is empty.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.flows.keys::<FlowKey>(1)?.is_empty())
    }

    /// Mirrors the health table into the program's node array: every slot
    /// whose state, generation or MAC changed since the last call. Costs one
    /// atomic load when nothing was written ([`health::Table::version`]).
    /// Returns the number of slots written.
    pub fn sync_nodes(&self, table: &health::Table) -> Result<usize, Error> {
        let mut m = self.mirror.lock().unwrap_or_else(|e| e.into_inner());
        let version = table.version();
        if m.version == Some(version) {
            return Ok(0);
        }
        let mut written = 0;
        for slot in 0..table.capacity().min(health::CAPACITY) {
            let now = node_slot(table.get(slot).as_ref());
            if m.slots[slot] != now || m.version.is_none() {
                self.nodes.update(&(slot as u32), &now)?;
                m.slots[slot] = now;
                written += 1;
            }
        }
        m.version = Some(version);
        Ok(written)
    }

    /// What the fast path forwarded for the node in `slot`, summed over
    /// CPUs.
    pub fn node_counters(&self, slot: u16) -> Result<NodeCounters, Error> {
        let per_cpu: Vec<Counter> = self.counters.lookup_percpu(&u32::from(slot))?;
        Ok(per_cpu
            .iter()
            .fold(NodeCounters::default(), |a, c| NodeCounters {
                packets: a.packets.wrapping_add(c.packets),
                bytes: a.bytes.wrapping_add(c.bytes),
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_c_structs() {
        assert_eq!(std::mem::size_of::<FlowKey>(), 16);
        assert_eq!(std::mem::size_of::<FlowTarget>(), 8);
        assert_eq!(std::mem::size_of::<Counter>(), 16);
        let k = FlowKey::from(&flow::Key {
            src: 0xc612_0001,
            dst: 0xc612_00fa,
            sport: 40000,
            dport: 9090,
            proto: 6,
        });
        assert_eq!(
            bytemuck::bytes_of(&k),
            &[
                198, 18, 0, 1, 198, 18, 0, 250, 0x9c, 0x40, 0x23, 0x82, 6, 0, 0, 0
            ]
        );
        let n = health::Node {
            info: health::NodeInfo {
                id: 1,
                mac: [2, 0, 0, 0, 0, 7],
                ip: std::net::Ipv4Addr::new(198, 18, 0, 7),
                state: health::State::Draining,
                weight: 1,
                connections: 0,
            },
            generation: 0x1_0005,
        };
        let b = node_slot(Some(&n));
        assert_eq!(b[..6], [2, 0, 0, 0, 0, 7]);
        assert_eq!(b[6..8], 5u16.to_ne_bytes(), "the low 16 bits");
        assert_eq!(b[8], 2);
        assert_eq!(node_slot(None), [0; 12]);
    }
}
