//! Bridge mode spreads sandboxes over bridges `palisade0`, `palisade1`, ...
//!
//! A Linux bridge takes at most 1,023 ports, so one bridge cannot hold
//! 10,000 sandboxes. Each bridge holds one aligned slice of both pools:
//! sandbox offset `n` (host `n` of the IPv4 and of the IPv6 pool, see
//! [`crate::ipam`]) is on bridge `n / sandboxes_per_bridge`. The slice is a
//! prefix, so the host needs one route per bridge and per family, never one
//! per sandbox, and a sandbox's bridge follows from its address alone: the
//! store keeps nothing more, and `init` finds the same bridge after a crash.
//!
//! `palisade0` keeps the routes to the whole pools (the first slice and any
//! address outside the slices of the other bridges); the other bridges'
//! slice routes are more specific.

use crate::config::NetworkConfig;
use crate::names::BRIDGE_PREFIX;
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Sandboxes per bridge unless the configuration says otherwise: a power
/// of two (slices are prefixes) below the kernel's 1,023 ports.
pub const DEFAULT_SANDBOXES_PER_BRIDGE: u32 = 512;
/// Bounds of `network.sandboxes_per_bridge`.
pub const MIN_SANDBOXES_PER_BRIDGE: u32 = 4;
pub const MAX_SANDBOXES_PER_BRIDGE: u32 = 512;

/// One bridge of bridge mode and the slice of the pools it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeShard {
    /// 0 for `palisade0`, which carries the routes to the whole pools.
    pub index: u32,
    pub iface: String,
    pub slice4: Ipv4Net,
    pub slice6: Ipv6Net,
}

/// The name of bridge `index`.
pub fn bridge_iface(index: u32) -> String {
    format!("{BRIDGE_PREFIX}{index}")
}

/// Whether `name` is one of bridge mode's bridges (`palisade` and digits).
pub fn is_bridge_iface(name: &str) -> bool {
    name.strip_prefix(BRIDGE_PREFIX)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl NetworkConfig {
    /// The bridge that holds the sandbox with IPv4 address `ipv4`; `None`
    /// when the address is not in the pool.
    pub fn bridge_shard(&self, ipv4: Ipv4Addr) -> Option<BridgeShard> {
        if !self.subnet.contains(&ipv4) {
            return None;
        }
        debug_assert!(
            self.sandboxes_per_bridge.is_power_of_two(),
            "validated by the configuration"
        );
        let pool_bits = 32 - u32::from(self.subnet.prefix_len());
        // A pool smaller than a slice is one bridge's slice.
        let bits = self.sandboxes_per_bridge.trailing_zeros().min(pool_bits);
        let offset = u32::from(ipv4) - u32::from(self.subnet.network());
        let index = offset >> bits;
        let first = u128::from(index) << bits;
        let slice4 = Ipv4Net::new(
            Ipv4Addr::from(u32::from(self.subnet.network()) + (index << bits)),
            (32 - bits) as u8,
        )
        .expect("a prefix length of at most 32");
        let slice6 = Ipv6Net::new(
            Ipv6Addr::from(u128::from(self.subnet6.network()) + first),
            (128 - bits) as u8,
        )
        .expect("a prefix length of at most 128");
        Some(BridgeShard {
            index,
            iface: bridge_iface(index),
            slice4,
            slice6,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn network(per_bridge: u32, subnet: &str) -> NetworkConfig {
        let mut n = Config::default().network;
        n.sandboxes_per_bridge = per_bridge;
        n.subnet = subnet.parse().unwrap();
        n.subnet6 = "fd00:1::/64".parse().unwrap();
        n
    }

    #[test]
    fn a_sandbox_is_on_the_bridge_of_its_slice() {
        let n = network(512, "10.200.0.0/16");
        let first = n.bridge_shard("10.200.0.2".parse().unwrap()).unwrap();
        assert_eq!(first.iface, "palisade0");
        assert_eq!(first.slice4.to_string(), "10.200.0.0/23");
        assert_eq!(first.slice6.to_string(), "fd00:1::/119");
        let last_of_first = n.bridge_shard("10.200.1.255".parse().unwrap()).unwrap();
        assert_eq!(last_of_first.index, 0);
        let second = n.bridge_shard("10.200.2.0".parse().unwrap()).unwrap();
        assert_eq!(second.index, 1);
        assert_eq!(second.iface, "palisade1");
        assert_eq!(second.slice4.to_string(), "10.200.2.0/23");
        assert_eq!(second.slice6.to_string(), "fd00:1::200/119");
        let last = n.bridge_shard("10.200.255.254".parse().unwrap()).unwrap();
        assert_eq!(last.index, 127);
        assert_eq!(last.slice4.to_string(), "10.200.254.0/23");
        assert_eq!(last.slice6.to_string(), "fd00:1::fe00/119");
    }

    #[test]
    fn slices_hold_both_addresses_of_every_sandbox() {
        let n = network(4, "10.9.0.0/24");
        for offset in 2..255u32 {
            let v4 = Ipv4Addr::from(u32::from(n.subnet.network()) + offset);
            let v6 = Ipv6Addr::from(u128::from(n.subnet6.network()) + u128::from(offset));
            let shard = n.bridge_shard(v4).unwrap();
            assert_eq!(shard.index, offset / 4);
            assert!(shard.slice4.contains(&v4), "{shard:?} {v4}");
            assert!(shard.slice6.contains(&v6), "{shard:?} {v6}");
            assert_eq!(shard.slice4.prefix_len(), 30);
            assert_eq!(shard.slice6.prefix_len(), 126);
        }
    }

    #[test]
    fn a_pool_smaller_than_a_slice_is_one_bridge() {
        let n = network(512, "10.9.0.0/29");
        let shard = n.bridge_shard("10.9.0.6".parse().unwrap()).unwrap();
        assert_eq!(shard.index, 0);
        assert_eq!(shard.slice4.to_string(), "10.9.0.0/29");
        assert_eq!(shard.slice6.to_string(), "fd00:1::/125");
    }

    #[test]
    fn addresses_outside_the_pool_have_no_bridge() {
        let n = network(512, "10.200.0.0/16");
        assert_eq!(n.bridge_shard("10.201.0.2".parse().unwrap()), None);
    }

    #[test]
    fn bridge_names_are_recognised() {
        assert!(is_bridge_iface("palisade0"));
        assert!(is_bridge_iface("palisade127"));
        assert!(!is_bridge_iface("palisade"));
        assert!(!is_bridge_iface("palisadex"));
        assert!(!is_bridge_iface("pal-1"));
        // The largest index, for a /8 pool with 4 sandboxes per bridge, fits
        // in an interface name.
        assert!(bridge_iface((1 << 24) / 4 - 1).len() <= crate::names::IFNAME_MAX);
    }
}
