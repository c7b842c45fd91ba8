//! Finding the attachment in the kernel: the container's interface, the
//! host end of its veth, and the bridge that end is a port of.
//!
//! The kernel, not the previous result, says which host port carries the
//! container: the container interface's veth peer index leads to it, so a
//! result that names the wrong host interface cannot make palisade police
//! the wrong port.

use super::error::{CniError, INVALID_CONFIG, INVALID_ENVIRONMENT};
use super::request::check_ifname;
use palisade_core::element::MacAddr;
use palisade_link::Rtnl;
use std::net::IpAddr;
use std::path::Path;

/// What the kernel shows of one attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub mac: MacAddr,
    pub host_port: String,
    pub bridge: String,
}

/// Looks up `ifname` inside `netns`, then its peer and bridge here. Every
/// gateway the previous result gives the interface must be an address of
/// the bridge itself: traffic through any other device (a VLAN upper of the
/// bridge, say) would not meet the rules keyed by the bridge.
pub fn discover(netns: &str, ifname: &str, gateways: &[IpAddr]) -> Result<Discovered, CniError> {
    let invalid = |why: String| CniError::new(INVALID_CONFIG, "cannot police this attachment", why);
    if !Path::new(netns).exists() {
        return Err(CniError::new(
            INVALID_ENVIRONMENT,
            "invalid CNI_NETNS",
            format!("CNI_NETNS={netns:?} does not exist"),
        ));
    }
    let mut inner = Rtnl::open_in(Path::new(netns)).map_err(|e| {
        CniError::new(
            INVALID_ENVIRONMENT,
            "invalid CNI_NETNS",
            format!("CNI_NETNS={netns:?}: {e}"),
        )
    })?;
    let link = inner
        .link(ifname)
        .map_err(|e| invalid(format!("{ifname} in {netns}: {e}")))?
        .ok_or_else(|| {
            invalid(format!(
                "there is no interface {ifname} in {netns}; palisade is a chained plugin and needs an earlier plugin (bridge) to create it"
            ))
        })?;
    let kind = link.kind.as_deref().unwrap_or("none");
    let (Some(peer), "veth") = (link.peer_index, kind) else {
        return Err(invalid(format!(
            "{ifname} in {netns} is of kind {kind}, not a veth; palisade polices veths whose host end is a bridge port"
        )));
    };
    let mac = link
        .mac
        .map(MacAddr)
        .ok_or_else(|| invalid(format!("{ifname} in {netns} has no MAC address")))?;
    let mut host = Rtnl::open().map_err(|e| invalid(format!("rtnetlink: {e}")))?;
    let port = host
        .link_by_index(peer)
        .map_err(|e| invalid(format!("host end of {ifname}: {e}")))?
        .ok_or_else(|| {
            invalid(format!(
                "the host end of {ifname} (index {peer}) is not in palisade's network namespace"
            ))
        })?;
    // IFLA_LINK names an index in the peer's namespace: the link found here
    // must point back at the container's interface, or it is some other
    // link that happens to have that index.
    if port.kind.as_deref() != Some("veth") || port.peer_index != Some(link.index) {
        return Err(invalid(format!(
            "the host end of {ifname} (index {peer}) is not in palisade's network namespace"
        )));
    }
    let master = port.master.ok_or_else(|| {
        invalid(format!(
            "the host end {} of {ifname} is not a bridge port; chain palisade after the bridge plugin (ptp is not supported)",
            port.name
        ))
    })?;
    let bridge = host
        .link_by_index(master)
        .map_err(|e| invalid(format!("bridge of {}: {e}", port.name)))?
        .ok_or_else(|| invalid(format!("the bridge of {} vanished", port.name)))?;
    if bridge.kind.as_deref() != Some("bridge") {
        return Err(invalid(format!(
            "{} is enslaved to {}, which is a {}, not a bridge",
            port.name,
            bridge.name,
            bridge.kind.as_deref().unwrap_or("device without a kind")
        )));
    }
    let on_bridge: Vec<IpAddr> = host
        .list_addresses()
        .map_err(|e| invalid(format!("addresses of {}: {e}", bridge.name)))?
        .into_iter()
        .filter(|(index, _, _)| *index == bridge.index)
        .map(|(_, a, _)| a)
        .collect();
    if let Some(g) = gateways.iter().find(|g| !on_bridge.contains(g)) {
        return Err(invalid(format!(
            "the gateway {g} is not an address of bridge {}: traffic through another device (a VLAN on the bridge?) would bypass palisade's rules",
            bridge.name
        )));
    }
    for name in [&port.name, &bridge.name] {
        check_ifname(name).map_err(|why| invalid(format!("interface {name:?}: {why}")))?;
    }
    Ok(Discovered {
        mac,
        host_port: port.name,
        bridge: bridge.name,
    })
}
