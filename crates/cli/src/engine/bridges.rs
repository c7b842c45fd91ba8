//! Bridge mode's host state, reconciled by `init`: every bridge that holds
//! a ready sandbox exists, is set up, keeps its fixed MAC, and pins exactly
//! its sandboxes' addresses to their MACs.

use super::reconcile::RepairReport;
use super::{Engine, EngineError};
use palisade_core::bridge_shard::BridgeShard;
use palisade_core::model::Sandbox;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

impl Engine {
    /// For the ready sandboxes whose interface exists (`placed`): their
    /// bridges set up again (idempotent) and the pins made to match. A pin
    /// is lost when a bridge's address changes (the kernel flushes every
    /// entry then), and hosts from before the pins had none.
    pub(super) fn reconcile_bridges(
        &mut self,
        placed: &[&Sandbox],
        report: &mut RepairReport,
    ) -> Result<(), EngineError> {
        let mut by_bridge: BTreeMap<u32, (BridgeShard, Vec<&Sandbox>)> = BTreeMap::new();
        for &sb in placed {
            let Some(att) = &sb.attachment else {
                continue;
            };
            let Some(shard) = self.config.network.bridge_shard(att.ipv4) else {
                continue;
            };
            by_bridge
                .entry(shard.index)
                .or_insert_with(|| (shard, Vec::new()))
                .1
                .push(sb);
        }
        for (shard, sandboxes) in by_bridge.values() {
            let bridge = self.ensure_bridge_shard(sandboxes[0], shard)?;
            if shard.index > 0 {
                self.set_up_bridge_again(sandboxes[0], bridge, shard)?;
            }
            self.repin(sandboxes, bridge, shard, report)?;
        }
        Ok(())
    }

    /// Makes the host's permanent entries on `bridge` exactly the
    /// sandboxes' addresses and MACs.
    fn repin(
        &mut self,
        sandboxes: &[&Sandbox],
        bridge: u32,
        shard: &BridgeShard,
        report: &mut RepairReport,
    ) -> Result<(), EngineError> {
        let host_err = |step: String| {
            move |source| EngineError::Host {
                step,
                source: Box::new(source),
            }
        };
        let present: HashMap<IpAddr, [u8; 6]> = self
            .rtnl()
            .permanent_neighbours(bridge)
            .map_err(host_err(format!("list the pins on bridge {}", shard.iface)))?
            .into_iter()
            .collect();
        let mut wanted = HashMap::new();
        for sb in sandboxes {
            let mac = sb.attachment.as_ref().map(|a| a.mac.0).unwrap_or_default();
            let mut repinned = false;
            for ip in super::plumbing::bridge_neighbours(sb) {
                wanted.insert(ip, mac);
                if present.get(&ip) != Some(&mac) {
                    self.rtnl()
                        .add_permanent_neighbour(bridge, ip, mac)
                        .map_err(host_err(format!("pin {ip} on bridge {}", shard.iface)))?;
                    repinned = true;
                }
            }
            if repinned {
                report.pins_restored.push(sb.name.to_string());
            }
        }
        for ip in present.keys().filter(|ip| !wanted.contains_key(ip)) {
            self.rtnl()
                .del_neighbour(bridge, *ip)
                .map_err(host_err(format!("unpin {ip} from bridge {}", shard.iface)))?;
        }
        Ok(())
    }
}
