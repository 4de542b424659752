//! Reload: `SIGHUP` or `proxyha reload` re-read the config file and apply
//! it as a diff (see [`crate::config::reload`] for what may change). An
//! invalid file, or one that changes a restart-only setting, changes
//! nothing: the error is logged and returned to `proxyha reload`.

use std::path::Path;
use std::time::Instant;

use crate::config::{self, Config};
use crate::control::Plane;
use crate::log;

use super::peer_probe::Prober;
use super::probe;
use super::setup::Guard;
use super::xdp::Steering;

/// The parts of the running node a reload touches.
pub struct Parts<'a> {
    pub plane: &'a mut Plane,
    pub steering: &'a Steering,
    pub setup: &'a mut Guard,
    pub probe: &'a probe::Shared,
    pub prober: &'a mut Prober,
}

/// Re-reads `path` and applies it over `cfg`. Returns the keys that
/// changed, or why nothing did.
pub fn apply(
    path: &Path,
    cfg: &mut Config,
    parts: Parts<'_>,
    now: Instant,
) -> Result<Vec<String>, String> {
    let new = config::load(path).map_err(|e| e.to_string())?;
    let restart = config::reload::restart_needed(cfg, &new);
    if !restart.is_empty() {
        return Err(format!(
            "{}: these settings change only with a restart: {}",
            path.display(),
            restart.join(", ")
        ));
    }
    let changed = config::reload::changed(cfg, &new);
    if changed.is_empty() {
        return Ok(changed);
    }
    // The scanning side first (VIPs on lo, nftables): the only step that
    // can fail on the system; the rest cannot once the file validated.
    parts
        .setup
        .update(&new)
        .map_err(|e| format!("node setup: {e} (nothing changed)"))?;
    parts
        .plane
        .reconfigure(now, new.clone())
        .map_err(|e| format!("control plane: {e}"))?;
    if new.vip_addrs() != cfg.vip_addrs()
        && let Err(e) = parts.steering.filter.set_vips(&new.vip_addrs())
    {
        log!("reload", "cannot update the XDP VIP map: {e}");
    }
    let ports: Vec<u16> = new.redirected_ports().collect();
    if ports != cfg.redirected_ports().collect::<Vec<_>>()
        && let Err(e) = parts.steering.filter.set_ports(crate::xsk::L4::Tcp, &ports)
    {
        log!("reload", "cannot update the XDP port map: {e}");
    }
    if let Ok(mut s) = parts.probe.lock() {
        *s = probe::Settings::of(&new);
    }
    parts
        .prober
        .set_ports(new.port_redirects.iter().map(|r| r.proxy_port).collect());
    *cfg = new;
    Ok(changed)
}
