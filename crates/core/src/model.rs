//! The model: sandboxes, their attachments and what derives from them.

use crate::config::Config;
use crate::element::MacAddr;
use crate::exposure::Exposure;
use crate::names::{self, SandboxName, TenantName};
use crate::policy::PortRule;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// How a sandbox is attached to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxKind {
    /// A network namespace with a veth (containers).
    Netns,
    /// A tap device for a VMM (microVMs).
    Tap,
    /// Networking disabled: no interface at all.
    None,
    /// Attached by a CNI runtime: an earlier plugin in the chain made the
    /// interface and its addresses; palisade adds the policy.
    Cni,
}

impl SandboxKind {
    pub fn has_network(self) -> bool {
        !matches!(self, SandboxKind::None)
    }
}

impl fmt::Display for SandboxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SandboxKind::Netns => "netns",
            SandboxKind::Tap => "tap",
            SandboxKind::None => "none",
            SandboxKind::Cni => "cni",
        })
    }
}

impl FromStr for SandboxKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "netns" => Ok(SandboxKind::Netns),
            "tap" => Ok(SandboxKind::Tap),
            "none" => Ok(SandboxKind::None),
            "cni" => Ok(SandboxKind::Cni),
            _ => Err(format!("{s:?} is not a sandbox kind (netns, tap or none)")),
        }
    }
}

/// The addresses of a networked sandbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attachment {
    /// Host-side interface (veth end or tap).
    pub host_iface: String,
    /// The sandbox's own MAC (inside the namespace, or the guest's NIC).
    pub mac: MacAddr,
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
}

impl Attachment {
    /// The IPv6 link-local address the sandbox's interface has by default
    /// (EUI-64 of its MAC): NDP with the gateway uses it as source.
    pub fn link_local6(&self) -> Ipv6Addr {
        link_local_from_mac(self.mac)
    }
}

/// The interface of a sandbox that a CNI runtime attached (kind `cni`): a
/// veth made by an earlier plugin in the chain, whose host end is a port of
/// `bridge`. Its addresses came from that plugin's IPAM, not from palisade's
/// pools.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CniAttachment {
    /// CNI network name (`name` of the network configuration).
    pub network: String,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`: the interface inside the container.
    pub ifname: String,
    /// `CNI_NETNS`: the container's network namespace.
    pub netns: String,
    /// Host end of the container's veth: the bridge port.
    pub host_port: String,
    /// The bridge the port belongs to.
    pub bridge: String,
    /// The container interface's MAC.
    pub mac: MacAddr,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
}

impl CniAttachment {
    /// Every address the runtime's IPAM gave the interface, IPv4 first.
    pub fn addresses(&self) -> impl Iterator<Item = std::net::IpAddr> + '_ {
        let v4 = self.ipv4.iter().map(|&a| std::net::IpAddr::from(a));
        v4.chain(self.ipv6.iter().map(|&a| std::net::IpAddr::from(a)))
    }

    /// The link-local address the container's interface has by default
    /// (EUI-64 of its MAC): its NDP and router solicitations use it.
    pub fn link_local6(&self) -> Ipv6Addr {
        link_local_from_mac(self.mac)
    }
}

/// EUI-64 link-local address of a MAC.
pub fn link_local_from_mac(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

/// MAC of the sandbox with this id: locally administered, unicast, unique
/// per id below 2^40.
pub fn sandbox_mac(id: u64) -> MacAddr {
    let b = id.to_be_bytes();
    MacAddr([0x02, b[3], b[4], b[5], b[6], b[7]])
}

/// IPv6 gateway every sandbox uses: link-local, the same on every link.
pub const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// MAC of the host end of every routed-mode veth, which sandboxes have
/// pinned as the gateway's: locally administered and unicast, and never a
/// sandbox's (those begin with 02, [`sandbox_mac`]).
pub const GATEWAY_MAC: MacAddr = MacAddr([0x06, 0, 0, 0, 0, 0x01]);

/// The policy generation a new sandbox starts with.
pub const FIRST_POLICY_EPOCH: u32 = 1;

/// The generation after `epoch`: 0 is never one (no connection mark is),
/// so the count wraps from `u32::MAX` to 1.
pub fn next_policy_epoch(epoch: u32) -> u32 {
    epoch.checked_add(1).unwrap_or(FIRST_POLICY_EPOCH)
}

/// The generation before `epoch`: the inverse of [`next_policy_epoch`].
pub fn previous_policy_epoch(epoch: u32) -> u32 {
    if epoch <= FIRST_POLICY_EPOCH {
        u32::MAX
    } else {
        epoch - 1
    }
}

/// A sandbox as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Sandbox {
    /// Never reused; kernel names derive from it.
    pub id: u64,
    pub name: SandboxName,
    pub tenant: TenantName,
    /// Never reused; used as the tenant's mark in the ruleset.
    pub tenant_id: u32,
    pub kind: SandboxKind,
    pub internet: bool,
    /// When non-empty, internet egress is narrowed to these.
    pub allow: Vec<PortRule>,
    /// Generation of the policy above, never 0: it goes up each time the
    /// policy narrows. Every connection the sandbox opens is stamped with
    /// it (`ct mark`); one stamped with an older generation is judged again
    /// by the current policy on its next packet. See [`crate::compile`].
    pub policy_epoch: u32,
    /// Host ports forwarded to this sandbox.
    pub exposures: Vec<Exposure>,
    /// The interface palisade made: `Some` exactly when `kind` is `netns`
    /// or `tap`.
    pub attachment: Option<Attachment>,
    /// The interface a CNI runtime made: `Some` exactly when `kind` is `cni`.
    pub cni: Option<CniAttachment>,
}

impl Sandbox {
    /// The address of each family that exposures forward to and probes send
    /// from: palisade's own, or the first the CNI runtime assigned.
    pub fn primary_addresses(&self) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
        match (&self.attachment, &self.cni) {
            (Some(a), _) => (Some(a.ipv4), Some(a.ipv6)),
            (None, Some(c)) => (c.ipv4.first().copied(), c.ipv6.first().copied()),
            (None, None) => (None, None),
        }
    }

    /// Every address the sandbox owns, whoever assigned it.
    pub fn addresses(&self) -> Vec<std::net::IpAddr> {
        let mut out = Vec::new();
        if let Some(a) = &self.attachment {
            out.push(a.ipv4.into());
            out.push(a.ipv6.into());
        }
        if let Some(c) = &self.cni {
            out.extend(c.addresses());
        }
        out
    }
}

impl Sandbox {
    /// Builds the attachment of a networked sandbox from its id and the host
    /// offset IPAM gave it (the same offset in both pools).
    pub fn attachment_for(config: &Config, id: u64, offset: u32) -> Attachment {
        let v4 = u32::from(config.network.subnet.network()) + offset;
        let v6 = u128::from(config.network.subnet6.network()) + u128::from(offset);
        Attachment {
            host_iface: names::host_iface(id),
            mac: sandbox_mac(id),
            ipv4: Ipv4Addr::from(v4),
            ipv6: Ipv6Addr::from(v6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_generation_undoes_the_next_one_across_the_wrap() {
        for epoch in [FIRST_POLICY_EPOCH, 2, 77, u32::MAX - 1, u32::MAX] {
            assert_eq!(previous_policy_epoch(next_policy_epoch(epoch)), epoch);
        }
        assert_eq!(previous_policy_epoch(FIRST_POLICY_EPOCH), u32::MAX);
    }

    #[test]
    fn link_local_is_eui64() {
        let mac: MacAddr = "02:00:00:00:00:05".parse().unwrap();
        assert_eq!(link_local_from_mac(mac).to_string(), "fe80::ff:fe00:5");
    }

    #[test]
    fn macs_are_local_unicast_and_distinct() {
        let a = sandbox_mac(1);
        let b = sandbox_mac(2);
        assert_ne!(a, b);
        assert_eq!(a.0[0] & 0x03, 0x02);
    }

    #[test]
    fn attachment_uses_same_offset_in_both_pools() {
        let c = Config::default();
        let a = Sandbox::attachment_for(&c, 7, 5);
        assert_eq!(a.ipv4.to_string(), "10.200.0.5");
        assert_eq!(a.ipv6.to_string(), "fd70:616c:6973::5");
        assert_eq!(a.host_iface, "pal-7");
    }
}
