//! A sandbox's bridge port: its settings, read back for every port in one
//! dump, and the static forwarding entry that sends it its sandbox's
//! frames.
//!
//! A port of a sandbox is isolated (the bridge forwards nothing between two
//! isolated ports, with or without a firewall), learns no address, and is
//! sent no flooded frame: no unknown unicast, which would carry another
//! sandbox's traffic to it once that sandbox's learnt entry aged out, and
//! no broadcast or unregistered multicast, which would otherwise be copied
//! to every port of the bridge. The host reaches the sandbox through a
//! static entry for its MAC instead.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::link::{
    InfoBridgePort, InfoPortData, InfoPortKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    LinkProtoInfoBridge,
};
use netlink_packet_route::neighbour::{
    NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_packet_utils::nla::Nla;

use super::neighbour::format_mac;
use super::{Ctx, Rtnl};
use crate::error::Result;

/// Port attributes of linux/if_link.h (`IFLA_BRPORT_*`), as the kernel
/// reports them in a bridge port's `IFLA_PROTINFO`.
const IFLA_BRPORT_LEARNING: u16 = 8;
const IFLA_BRPORT_UNICAST_FLOOD: u16 = 9;
const IFLA_BRPORT_MCAST_FLOOD: u16 = 27;
const IFLA_BRPORT_BCAST_FLOOD: u16 = 30;
const IFLA_BRPORT_ISOLATED: u16 = 33;

/// One port of a bridge, as [`Rtnl::bridge_ports`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePort {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Index of its bridge.
    pub bridge: u32,
    /// Isolated, not learning, and sent no flooded frame: the settings
    /// [`Rtnl::set_isolated_port`] makes.
    pub isolated: bool,
}

impl Rtnl {
    /// Make bridge port `index` a sandbox's port (see the module doc) and,
    /// with `up`, bring it up in the same request. Port settings go only
    /// with `RTM_NEWLINK`, on a link that is a port already.
    pub fn set_isolated_port(&mut self, index: u32, up: bool) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        if up {
            msg.header.flags = LinkFlags::Up;
            msg.header.change_mask = LinkFlags::Up;
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![
                InfoBridgePort::Isolated(true),
                InfoBridgePort::Learning(false),
                InfoBridgePort::UnicastFlood(false),
                InfoBridgePort::BroadcastFlood(false),
                InfoBridgePort::MulticastFlood(false),
            ])),
        ]));
        let what = format!("link #{index}");
        let ctx = Ctx {
            op: "make an isolated bridge port of",
            what: &what,
        };
        self.request(RouteNetlinkMessage::NewLink(msg), 0, &ctx)
            .map(drop)
    }

    /// Every bridge port of the socket's namespace, in one dump. A bridge
    /// family dump: unlike a link dump, its answer for a veth carries no
    /// peer namespace id, which the kernel finds with a walk over every id
    /// it handed out.
    pub fn bridge_ports(&mut self) -> Result<Vec<BridgePort>> {
        let mut request = LinkMessage::default();
        request.header.interface_family = AddressFamily::Bridge;
        let replies = self.dump(RouteNetlinkMessage::GetLink(request), "list bridge ports")?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => port_of(link),
                _ => None,
            })
            .collect())
    }

    /// Add a static entry for `mac` on bridge port `port` to its bridge's
    /// forwarding database (`bridge fdb replace MAC dev PORT master
    /// static`), replacing any entry for `mac`. Static, not permanent: a
    /// permanent entry would mean the MAC is the host's own.
    pub fn add_static_bridge_entry(&mut self, port: u32, mac: [u8; 6]) -> Result<()> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Bridge;
        msg.header.ifindex = port;
        msg.header.flags = NeighbourFlags::Controller;
        msg.header.state = NeighbourState::Noarp;
        msg.attributes
            .push(NeighbourAttribute::LinkLocalAddress(mac.to_vec()));
        let what = format!("{} dev #{port}", format_mac(mac));
        let ctx = Ctx {
            op: "add static bridge entry",
            what: &what,
        };
        self.request(
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
            &ctx,
        )
        .map(drop)
    }

    /// The static entries of every bridge's forwarding database, as (port
    /// index, MAC), in one dump.
    pub fn static_bridge_entries(&mut self) -> Result<Vec<(u32, [u8; 6])>> {
        let mut request = NeighbourMessage::default();
        request.header.family = AddressFamily::Bridge;
        let replies = self.dump(
            RouteNetlinkMessage::GetNeighbour(request),
            "list bridge forwarding entries",
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n)
                    if n.header.family == AddressFamily::Bridge
                        && n.header.state == NeighbourState::Noarp =>
                {
                    let mac = n.attributes.iter().find_map(|a| match a {
                        NeighbourAttribute::LinkLocalAddress(m) => <[u8; 6]>::try_from(&m[..]).ok(),
                        _ => None,
                    })?;
                    Some((n.header.ifindex, mac))
                }
                _ => None,
            })
            .collect())
    }
}

/// A bridge family link message as a port; `None` for the bridges
/// themselves, which are listed too but have no port settings.
fn port_of(link: LinkMessage) -> Option<BridgePort> {
    let mut name = None;
    let mut bridge = None;
    let mut settings = None;
    for attribute in link.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name = Some(n),
            LinkAttribute::Controller(m) => bridge = Some(m),
            LinkAttribute::ProtoInfoBridge(infos) => settings = Some(infos),
            _ => {}
        }
    }
    let settings = settings?;
    let flag = |kind: u16| {
        settings.iter().find_map(|info| match info {
            LinkProtoInfoBridge::Other(nla) if nla.kind() == kind => {
                let mut value = vec![0u8; nla.value_len()];
                nla.emit_value(&mut value);
                value.first().map(|v| *v != 0)
            }
            _ => None,
        })
    };
    let isolated = flag(IFLA_BRPORT_ISOLATED) == Some(true)
        && [
            IFLA_BRPORT_LEARNING,
            IFLA_BRPORT_UNICAST_FLOOD,
            IFLA_BRPORT_MCAST_FLOOD,
            IFLA_BRPORT_BCAST_FLOOD,
        ]
        .into_iter()
        .all(|kind| flag(kind) == Some(false));
    Some(BridgePort {
        index: link.header.index,
        name: name?,
        bridge: bridge?,
        isolated,
    })
}
