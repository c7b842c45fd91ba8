//! Bridge mode's host state. Every command checks that the sandboxes are
//! placed with the configured layout (O(1) while it is the recorded one);
//! `init` also makes every bridge that holds a ready sandbox exist, be set
//! up with its fixed MAC, pin exactly its sandboxes' addresses to their
//! MACs, and hold each sandbox's port isolated with its static forwarding
//! entry.

use super::reconcile::RepairReport;
use super::{Engine, EngineError};
use palisade_core::bridge_shard::{is_bridge_iface, BridgeShard};
use palisade_core::config::Mode;
use palisade_core::model::{Sandbox, SandboxKind};
use palisade_core::names::BRIDGE_IFACE;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// A sandbox, its port's index, and the entry its bridge has for its MAC
/// instead of the static one to that port (if any).
type LackingEntry<'sb> = (&'sb Sandbox, u32, Option<palisade_link::BridgeEntry>);

impl Engine {
    /// Bridge mode: the sandboxes here must be placed as
    /// `network.sandboxes_per_bridge` says. O(1) when it is the layout the
    /// store recorded; otherwise:
    /// - no sandbox is placed: the bridges of another layout are deleted
    ///   (their slice routes would take this layout's addresses) and this
    ///   one is recorded;
    /// - sandboxes are placed with another layout: refused, before anything
    ///   is changed (their slices, and so their bridges, would move);
    /// - sandboxes placed by a palisade from before the layout was recorded
    ///   (every one on `palisade0`): `init` moves each to its bridge; any
    ///   other command is refused until then.
    pub(super) fn check_bridge_layout(&mut self, init: bool) -> Result<(), EngineError> {
        if self.config.network.mode != Mode::Bridge {
            return Ok(());
        }
        let wanted = self.config.network.sandboxes_per_bridge;
        let recorded = self.store.bridge_layout()?;
        if recorded == Some(wanted) {
            return Ok(());
        }
        let placed: Vec<Sandbox> = self
            .ready_sandboxes()?
            .into_iter()
            .map(|(_, sandbox)| sandbox)
            .filter(|sandbox| sandbox.attachment.is_some())
            .collect();
        match recorded {
            _ if placed.is_empty() => self.delete_bridges_but_the_first()?,
            Some(recorded) => {
                return Err(EngineError::BridgeLayout {
                    wanted,
                    recorded,
                    sandboxes: placed.len(),
                })
            }
            None if !init => {
                return Err(EngineError::BridgeLayoutUnrecorded {
                    sandboxes: placed.len(),
                })
            }
            None => self.move_to_their_bridges(&placed)?,
        }
        self.store.set_bridge_layout(wanted)?;
        Ok(())
    }

    fn delete_bridges_but_the_first(&mut self) -> Result<(), EngineError> {
        self.delete_bridges(|name| name != BRIDGE_IFACE, "of another layout")
    }

    /// Deletes palisade's bridges whose name `which` accepts; `why` ends
    /// the step named in an error.
    pub(super) fn delete_bridges(
        &mut self,
        which: impl Fn(&str) -> bool,
        why: &str,
    ) -> Result<(), EngineError> {
        let names =
            palisade_link::interface_names().map_err(|e| EngineError::Rtnetlink(Box::new(e)))?;
        for name in names.iter().filter(|n| is_bridge_iface(n) && which(n)) {
            self.rtnl()
                .delete_link(name)
                .map_err(|source| EngineError::Host {
                    step: format!("delete bridge {name} {why}"),
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }

    /// Each sandbox whose slice is not `palisade0`'s onto its own bridge
    /// (a port already there stays).
    fn move_to_their_bridges(&mut self, placed: &[Sandbox]) -> Result<(), EngineError> {
        for sb in placed {
            let Some(att) = &sb.attachment else {
                continue;
            };
            let Some(shard) = self.config.network.bridge_shard(att.ipv4) else {
                continue;
            };
            if shard.index == 0 {
                continue;
            }
            let err = |step: String| super::plumbing::link_err(sb, step);
            let Some(port) = self
                .rtnl()
                .link_index(&att.host_iface)
                .map_err(err(format!("look up {}", att.host_iface)))?
            else {
                // Missing: init puts it back, on its bridge.
                continue;
            };
            let bridge = self.ensure_bridge_shard(sb, &shard)?;
            self.rtnl()
                .set_master(port, bridge)
                .map_err(err(format!("move to bridge {}", shard.iface)))?;
        }
        Ok(())
    }

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
        let mut pins: HashMap<u32, HashMap<IpAddr, [u8; 6]>> = HashMap::new();
        if !by_bridge.is_empty() {
            let all = self
                .rtnl()
                .permanent_neighbours()
                .map_err(|source| EngineError::Host {
                    step: "list the host's pinned neighbours".into(),
                    source: Box::new(source),
                })?;
            for (index, ip, mac) in all {
                pins.entry(index).or_default().insert(ip, mac);
            }
        }
        let mut bridges = HashMap::new();
        for (shard, sandboxes) in by_bridge.values() {
            let bridge = self.ensure_bridge_shard(sandboxes[0], shard)?;
            if shard.index > 0 {
                self.set_up_bridge_again(sandboxes[0], bridge, shard)?;
            }
            let present = pins.remove(&bridge).unwrap_or_default();
            self.repin(sandboxes, bridge, shard, &present, report)?;
            bridges.insert(shard.index, bridge);
        }
        if !by_bridge.is_empty() {
            self.isolate_ports(placed, &bridges, report)?;
        }
        if self.config.network.big_tcp {
            // A bridge made again here starts at 64 KiB with its ports back.
            for (shard, sandboxes) in by_bridge.values() {
                if sandboxes.iter().any(|sb| sb.kind == SandboxKind::Netns) {
                    self.let_bridge_pass_big_packets(bridges[&shard.index], shard)?;
                }
            }
        }
        Ok(())
    }

    /// Every bridge port by name, with those of `sandboxes` read twice if
    /// the first dump lacks one: the kernel resumes the dump by counting
    /// links, so a link deleted meanwhile (a namespace freed in the
    /// background takes its veth with it) can make it skip a port.
    fn bridge_ports(
        &mut self,
        sandboxes: &[&Sandbox],
    ) -> Result<HashMap<String, palisade_link::BridgePort>, EngineError> {
        let mut ports = HashMap::new();
        for _ in 0..2 {
            let dump = self
                .rtnl()
                .bridge_ports()
                .map_err(|source| EngineError::Host {
                    step: "list the bridges' ports".into(),
                    source: Box::new(source),
                })?;
            for port in dump {
                ports.entry(port.name.clone()).or_insert(port);
            }
            let complete = sandboxes.iter().all(|sb| {
                sb.attachment
                    .as_ref()
                    .is_none_or(|a| ports.contains_key(&a.host_iface))
            });
            if complete {
                break;
            }
        }
        Ok(ports)
    }

    /// `verify` in bridge mode: each of `sandboxes` whose interface exists
    /// (`links`) must be a port of its bridge with the settings
    /// [`Engine::join_bridge`] makes, and the host must pin its addresses
    /// to its MAC on that bridge, and the bridge must send the sandbox's MAC
    /// to that port with a static entry. One dump of the ports' settings,
    /// one of the host's permanent neighbours, one lookup per bridge, and
    /// the entries' lookups, many to a datagram.
    pub(super) fn check_bridge_ports(
        &mut self,
        sandboxes: &[Sandbox],
        links: &std::collections::BTreeSet<String>,
        differences: &mut Vec<super::verify::Difference>,
    ) -> Result<(), EngineError> {
        if self.config.network.mode != Mode::Bridge {
            return Ok(());
        }
        let host_err = |step: String| {
            move |source| EngineError::Host {
                step,
                source: Box::new(source),
            }
        };
        let present: Vec<&Sandbox> = sandboxes
            .iter()
            .filter(|sb| {
                sb.attachment
                    .as_ref()
                    .is_some_and(|a| links.contains(&a.host_iface))
            })
            .collect();
        let ports = self.bridge_ports(&present)?;
        let mut pins: HashMap<(u32, IpAddr), [u8; 6]> = HashMap::new();
        for (index, ip, mac) in self
            .rtnl()
            .permanent_neighbours()
            .map_err(host_err("list the host's pinned neighbours".into()))?
        {
            pins.insert((index, ip), mac);
        }
        let mut bridges: HashMap<u32, Option<u32>> = HashMap::new();
        // Sandboxes on a port of their bridge with its settings: their
        // static entries are looked up after the loop, all at once.
        let mut on_their_ports = Vec::new();
        for sb in sandboxes {
            let Some(att) = &sb.attachment else {
                continue;
            };
            let Some(shard) = self.config.network.bridge_shard(att.ipv4) else {
                continue;
            };
            if !links.contains(&att.host_iface) {
                continue;
            }
            let bridge = match bridges.get(&shard.index) {
                Some(found) => *found,
                None => {
                    let found = self
                        .rtnl()
                        .link_index(&shard.iface)
                        .map_err(host_err(format!("look up bridge {}", shard.iface)))?;
                    bridges.insert(shard.index, found);
                    found
                }
            };
            let port = ports.get(&att.host_iface);
            let found = match port {
                None => Some("not a bridge port".to_string()),
                Some(p) if Some(p.bridge) != bridge => {
                    Some(format!("a port of link #{}", p.bridge))
                }
                Some(p) if !p.isolated => {
                    Some("a port that learns addresses, takes floods or is not isolated".into())
                }
                Some(p) if !p.up => Some("a port that is down".into()),
                Some(_) => None,
            };
            let settings_ok = found.is_none();
            if let Some(found) = found {
                differences.push(super::verify::Difference {
                    kind: "differs",
                    object: format!("bridge port {} of sandbox {}", att.host_iface, sb.name),
                    expected: Some(format!(
                        "an isolated port of {}, up, that learns nothing and takes no flood",
                        shard.iface
                    )),
                    found: Some(found),
                });
            }
            if let Some(p) = port.filter(|_| settings_ok) {
                on_their_ports.push((sb, p.index));
            }
            // The host's pins of the sandbox's addresses to its MAC.
            let Some(bridge) = bridge else {
                continue;
            };
            for ip in super::plumbing::bridge_neighbours(sb) {
                let pinned = pins.get(&(bridge, ip));
                if pinned == Some(&att.mac.0) {
                    continue;
                }
                differences.push(super::verify::Difference::against(
                    format!("pin of {ip} on {} for sandbox {}", shard.iface, sb.name),
                    format!("{} (nud permanent)", att.mac),
                    pinned.map(|m| palisade_core::element::MacAddr(*m).to_string()),
                ));
            }
        }
        for (sb, _, found) in self.lacking_static_entries(&on_their_ports)? {
            let Some(att) = &sb.attachment else {
                continue;
            };
            differences.push(super::verify::Difference::against(
                format!(
                    "static forwarding entry of sandbox {} for {}",
                    sb.name, att.mac
                ),
                format!(
                    "its bridge sends {} to port {} (static)",
                    att.mac, att.host_iface
                ),
                found.map(|entry| {
                    let kind = if entry.is_static {
                        "static"
                    } else {
                        "not static"
                    };
                    format!("an entry to link #{} ({kind})", entry.port)
                }),
            ));
        }
        Ok(())
    }

    /// Puts every placed sandbox's interface back on its bridge (`bridges`:
    /// each slice's bridge index) where it is not, gives its port the
    /// static forwarding entry and the settings [`Engine::join_bridge`]
    /// makes where the settings are not there (ports from before palisade
    /// made them, or changed by hand), sets it up where it is down, and
    /// gives a port that kept its settings its static entry back where the
    /// bridge lost it. One dump of the ports' settings, and one lookup per
    /// entry, many to a datagram: a dump of the forwarding entries would
    /// cost the kernel a walk over its bridge's whole table for each port.
    fn isolate_ports(
        &mut self,
        placed: &[&Sandbox],
        bridges: &HashMap<u32, u32>,
        report: &mut RepairReport,
    ) -> Result<(), EngineError> {
        let ports = self.bridge_ports(placed)?;
        // Ports that kept their settings, whose static entry is looked up.
        let mut settled = Vec::new();
        for &sb in placed {
            let Some(att) = &sb.attachment else {
                continue;
            };
            let Some(shard) = self.config.network.bridge_shard(att.ipv4) else {
                continue;
            };
            let Some(&bridge) = bridges.get(&shard.index) else {
                continue;
            };
            let err = |step: String| super::plumbing::link_err(sb, step);
            let (index, isolated, up) = match ports.get(&att.host_iface) {
                Some(port) if port.bridge == bridge && port.isolated && port.up => {
                    settled.push((sb, port.index));
                    continue;
                }
                Some(port) if port.bridge == bridge => (port.index, port.isolated, port.up),
                _ => {
                    let Some(index) = self
                        .rtnl()
                        .link_index(&att.host_iface)
                        .map_err(err(format!("look up {}", att.host_iface)))?
                    else {
                        continue;
                    };
                    self.rtnl()
                        .set_master(index, bridge)
                        .map_err(err(format!("put it back on bridge {}", shard.iface)))?;
                    report.ports_rejoined.push(sb.name.to_string());
                    (index, false, false)
                }
            };
            if isolated {
                settled.push((sb, index));
            } else {
                self.rtnl()
                    .add_static_bridge_entry(index, att.mac.0)
                    .map_err(err(format!(
                        "add its MAC to the forwarding database for {}",
                        att.host_iface
                    )))?;
                self.rtnl()
                    .set_isolated_port(index)
                    .map_err(err(format!("make {} an isolated port", att.host_iface)))?;
            }
            if !up {
                // A restore that failed half-way (`init` lists it) can
                // leave a port down; setting one up that is up changes
                // nothing.
                self.rtnl()
                    .set_up(index)
                    .map_err(err(format!("bring {} up", att.host_iface)))?;
            }
            report.ports_isolated.push(sb.name.to_string());
        }
        for (sb, index, _) in self.lacking_static_entries(&settled)? {
            let mac = sb.attachment.as_ref().map(|a| a.mac.0).unwrap_or_default();
            self.rtnl()
                .add_static_bridge_entry(index, mac)
                .map_err(super::plumbing::link_err(
                    sb,
                    format!("add its MAC to the forwarding database of its bridge (port #{index})"),
                ))?;
            report.entries_restored.push(sb.name.to_string());
        }
        Ok(())
    }

    /// Those of `ports` (a sandbox and its port's index) whose bridge has
    /// no static entry sending the sandbox's MAC to that port, each with
    /// the entry its bridge has for the MAC instead, if any.
    fn lacking_static_entries<'sb>(
        &mut self,
        ports: &[(&'sb Sandbox, u32)],
    ) -> Result<Vec<LackingEntry<'sb>>, EngineError> {
        let lookups: Vec<(u32, [u8; 6])> = ports
            .iter()
            .map(|(sb, index)| {
                let mac = sb.attachment.as_ref().map(|a| a.mac.0).unwrap_or_default();
                (*index, mac)
            })
            .collect();
        let found = self
            .rtnl()
            .bridge_entries(&lookups)
            .map_err(|source| EngineError::Host {
                step: "look up the sandboxes' entries in their bridges' forwarding databases"
                    .into(),
                source: Box::new(source),
            })?;
        Ok(ports
            .iter()
            .zip(found)
            .filter(|((_, index), entry)| {
                *entry
                    != Some(palisade_link::BridgeEntry {
                        port: *index,
                        is_static: true,
                    })
            })
            .map(|(&(sb, index), entry)| (sb, index, entry))
            .collect())
    }

    /// Makes the host's permanent entries on `bridge` (`present`) exactly
    /// the sandboxes' addresses and MACs.
    fn repin(
        &mut self,
        sandboxes: &[&Sandbox],
        bridge: u32,
        shard: &BridgeShard,
        present: &HashMap<IpAddr, [u8; 6]>,
        report: &mut RepairReport,
    ) -> Result<(), EngineError> {
        let host_err = |step: String| {
            move |source| EngineError::Host {
                step,
                source: Box::new(source),
            }
        };
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
