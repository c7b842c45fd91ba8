//! `verify` in bridge mode: the bridges themselves. Each bridge that holds
//! a sandbox (and `palisade0`, which `init` makes) must exist, be up, have
//! the gateway's fixed MAC and both gateway addresses, and be where the
//! host routes its slice. `init` makes all of it again.

use super::verify::Difference;
use super::{Engine, EngineError};
use palisade_core::bridge_shard::BridgeShard;
use palisade_core::config::Mode;
use palisade_core::model::{Sandbox, GATEWAY6, GATEWAY_MAC};
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

impl Engine {
    /// Appends to `differences` what is wrong with the bridges of
    /// `sandboxes`. One address dump and, per bridge, one link lookup and
    /// two route lookups: bridges number k / `sandboxes_per_bridge`.
    pub(super) fn check_bridges(
        &mut self,
        sandboxes: &[Sandbox],
        differences: &mut Vec<Difference>,
    ) -> Result<(), EngineError> {
        if self.config.network.mode != Mode::Bridge {
            return Ok(());
        }
        let mut shards: BTreeMap<u32, BridgeShard> = BTreeMap::new();
        if let Some(first) = self
            .config
            .network
            .bridge_shard(self.config.network.subnet.network())
        {
            shards.insert(first.index, first);
        }
        for sb in sandboxes {
            if let Some(shard) = sb
                .attachment
                .as_ref()
                .and_then(|att| self.config.network.bridge_shard(att.ipv4))
            {
                shards.entry(shard.index).or_insert(shard);
            }
        }
        let host_err = |step: String| {
            move |source| EngineError::Host {
                step,
                source: Box::new(source),
            }
        };
        let addresses: HashSet<(u32, IpAddr)> = self
            .rtnl()
            .list_addresses()
            .map_err(host_err("list the host's addresses".into()))?
            .into_iter()
            .map(|(index, ip, _)| (index, ip))
            .collect();
        let gateways = [IpAddr::V4(self.config.gateway4()), IpAddr::V6(GATEWAY6)];
        for shard in shards.values() {
            let name = &shard.iface;
            let Some(bridge) = self
                .rtnl()
                .link(name)
                .map_err(host_err(format!("look up bridge {name}")))?
            else {
                differences.push(Difference {
                    kind: "missing",
                    object: format!("bridge {name}"),
                    expected: None,
                    found: None,
                });
                continue;
            };
            let mut found = Vec::new();
            if !bridge.up {
                found.push("down".to_string());
            }
            if bridge.mac != Some(GATEWAY_MAC.0) {
                found.push(match bridge.mac {
                    Some(mac) => format!("MAC {}", palisade_core::element::MacAddr(mac)),
                    None => "no MAC".into(),
                });
            }
            if !found.is_empty() {
                differences.push(Difference {
                    kind: "differs",
                    object: format!("bridge {name}"),
                    expected: Some(format!("up, MAC {GATEWAY_MAC}")),
                    found: Some(found.join(", ")),
                });
            }
            for gateway in gateways {
                if !addresses.contains(&(bridge.index, gateway)) {
                    differences.push(Difference {
                        kind: "missing",
                        object: format!("gateway address {gateway} on bridge {name}"),
                        expected: None,
                        found: None,
                    });
                }
            }
            for (slice, dest) in [
                (shard.slice4.to_string(), IpAddr::V4(shard.slice4.network())),
                (shard.slice6.to_string(), IpAddr::V6(shard.slice6.network())),
            ] {
                let out = self
                    .rtnl()
                    .route_oif(dest)
                    .map_err(host_err(format!("look up the route to {slice}")))?;
                if out != Some(bridge.index) {
                    differences.push(Difference {
                        kind: "differs",
                        object: format!("route to slice {slice} of bridge {name}"),
                        expected: Some(format!("out of {name}")),
                        found: Some(match out {
                            Some(index) => format!("out of link #{index}"),
                            None => "no route".into(),
                        }),
                    });
                }
            }
        }
        Ok(())
    }
}
