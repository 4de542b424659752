//! `[node]`: identity and role.

use std::path::PathBuf;

use super::Validator;
use crate::config::raw::RawNode;
use crate::config::{Error, Node, default_socket};

/// The longest Unix socket path: `sun_path` holds 108 bytes with the NUL;
/// binding the control socket fails beyond it.
const MAX_SOCKET_PATH: usize = 107;

impl Validator<'_> {
    pub(super) fn node(&self, raw: Option<RawNode>) -> Result<Node, Error> {
        let Some(rn) = raw else {
            return self.missing("node");
        };
        let name = self.name("node.name", rn.name, None)?;
        let management_ip = match rn.management_ip {
            Some(s) => self.ipv4("node.management_ip", &s)?,
            None => return self.missing("node.management_ip"),
        };
        let management_ip6 = match rn.management_ip6 {
            Some(s) => Some(self.ipv6_unicast("node.management_ip6", &s)?),
            None => None,
        };
        let priority: u8 = self.int("node.priority", rn.priority, None, 0, 254)?;
        let lbid: u16 = self.int("node.lbid", rn.lbid, None, 1, 65535)?;
        let capacity: u32 = self.int("node.capacity", rn.capacity, Some(100), 1, 1_000_000)?;
        let control_socket = match rn.control_socket {
            Some(s) if s.is_empty() => {
                return self.fail("node.control_socket", "\"\"", "must not be empty");
            }
            Some(s) if s.len() > MAX_SOCKET_PATH => {
                return self.fail(
                    "node.control_socket",
                    format!("{s:?}"),
                    &format!("must be at most {MAX_SOCKET_PATH} bytes (a Unix socket path)"),
                );
            }
            Some(s) => PathBuf::from(s),
            None => default_socket(&name),
        };
        let control_group = match rn.control_group {
            None => None,
            Some(g) => match nix::unistd::Group::from_name(&g) {
                Ok(Some(_)) => Some(g),
                _ => {
                    return self.fail(
                        "node.control_group",
                        format!("{g:?}"),
                        "no such group on this machine",
                    );
                }
            },
        };
        Ok(Node {
            name,
            management_ip,
            management_ip6,
            priority,
            lbid,
            control_socket,
            control_group,
            capacity,
        })
    }
}
