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

use netlink_packet_core::NLM_F_DUMP;
use netlink_packet_route::link::{
    InfoBridgePort, InfoPortData, InfoPortKind, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::neighbour::format_mac;
use super::{attributes, Ctx, Rtnl, NLMSG_HDRLEN};
use crate::error::Result;

/// Attributes of linux/if_link.h: a link's, then the port ones
/// (`IFLA_BRPORT_*`) the kernel nests in a bridge port's `IFLA_PROTINFO`.
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
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
    /// Administratively up (`IFF_UP`).
    pub up: bool,
}

impl Rtnl {
    /// Make bridge port `index` a sandbox's port (see the module doc).
    /// Port settings go only with `RTM_NEWLINK`, on a link that is a port
    /// already. Made on a port that is down, they cost the kernel no link
    /// notification (on one that is up, one more, and each walks every
    /// namespace id of the host).
    pub fn set_isolated_port(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
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
    /// it handed out. Read as bytes, message by message, so that 10,000
    /// ports cost a few hundred kilobytes rather than the crate's full
    /// parse of each. The kernel resumes this dump by counting links, so a
    /// link deleted meanwhile can make it skip a port: callers that miss
    /// one should ask again (see the engine's `bridge_ports`).
    pub fn bridge_ports(&mut self) -> Result<Vec<BridgePort>> {
        let mut request = LinkMessage::default();
        request.header.interface_family = AddressFamily::Bridge;
        let ctx = Ctx {
            op: "list bridge ports",
            what: "(all)",
        };
        let mut ports = Vec::new();
        self.request_raw(
            RouteNetlinkMessage::GetLink(request),
            NLM_F_DUMP,
            &ctx,
            |_, one| {
                ports.extend(port_of(one));
                Ok(())
            },
        )?;
        Ok(ports)
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
        let what = format!("{} dev #{port}", format_mac(mac));
        self.replace_neighbour(msg, mac, "add static bridge entry", &what)
    }
}

/// Where a bridge sends the frames for one MAC, as
/// [`Rtnl::bridge_entries`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeEntry {
    /// The port the entry sends them to; the bridge's own index for one of
    /// its own addresses.
    pub port: u32,
    /// Static (`NUD_NOARP`): made by hand, never learnt, never aged out.
    pub is_static: bool,
}

impl Rtnl {
    /// The entry of each `(port, mac)`'s bridge for `mac`, looked up in the
    /// forwarding database of the bridge `port` belongs to; `None` where
    /// there is none, or `port` is gone or off every bridge. One lookup per
    /// MAC, many to a datagram: a dump of a bridge's database walks all of
    /// it once for each of its ports.
    pub fn bridge_entries(
        &mut self,
        lookups: &[(u32, [u8; 6])],
    ) -> Result<Vec<Option<BridgeEntry>>> {
        // Built as they are sent: 10,000 messages made up front cost
        // megabytes the process would keep.
        let messages = lookups.iter().map(|&(port, mac)| {
            let mut msg = NeighbourMessage::default();
            msg.header.family = AddressFamily::Bridge;
            msg.header.ifindex = port;
            msg.header.flags = NeighbourFlags::Controller;
            msg.attributes
                .push(NeighbourAttribute::LinkLocalAddress(mac.to_vec()));
            RouteNetlinkMessage::GetNeighbour(msg)
        });
        let what = format!("{} entries", lookups.len());
        let ctx = Ctx {
            op: "look up bridge forwarding entries",
            what: &what,
        };
        let mut found = vec![None; lookups.len()];
        let mut failure = None;
        self.request_batch(messages, &ctx, |position, outcome| match outcome {
            Ok(reply) => found[position] = entry_of(reply),
            // No entry; a port gone; a link that is no bridge's port.
            Err(libc::ENOENT | libc::ENODEV | libc::EINVAL) => {}
            Err(errno) => {
                failure.get_or_insert((position, errno));
            }
        })?;
        if let Some((position, errno)) = failure {
            let (port, mac) = lookups[position];
            let what = format!("{} dev #{port}", format_mac(mac));
            return Err(self.nack(
                &Ctx {
                    op: "look up bridge forwarding entry",
                    what: &what,
                },
                errno,
                None,
            ));
        }
        Ok(found)
    }
}

/// A bridge family neighbour message (netlink header included) as an
/// entry.
fn entry_of(message: &[u8]) -> Option<BridgeEntry> {
    const RTM_NEWNEIGH: u16 = 28;
    const NDMSG_LEN: usize = 12;
    const NUD_NOARP: u16 = 0x40;
    if message.get(4..6)? != RTM_NEWNEIGH.to_ne_bytes() {
        return None;
    }
    let header = message.get(NLMSG_HDRLEN..NLMSG_HDRLEN + NDMSG_LEN)?;
    Some(BridgeEntry {
        port: u32::from_ne_bytes(header[4..8].try_into().ok()?),
        is_static: u16::from_ne_bytes(header[8..10].try_into().ok()?) == NUD_NOARP,
    })
}

/// A bridge family link message (netlink header included) as a port;
/// `None` for anything without port settings.
fn port_of(message: &[u8]) -> Option<BridgePort> {
    const RTM_NEWLINK: u16 = 16;
    const IFINFOMSG_LEN: usize = 16;
    if message.get(4..6)? != RTM_NEWLINK.to_ne_bytes() {
        return None;
    }
    let payload = message.get(NLMSG_HDRLEN..)?;
    let header = payload.get(..IFINFOMSG_LEN)?;
    let u32_at = |b: &[u8]| {
        b.get(0..4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut name = None;
    let mut bridge = None;
    let mut settings = None;
    for (kind, value) in attributes(&payload[IFINFOMSG_LEN..]) {
        match kind {
            IFLA_IFNAME => {
                let end = value.iter().position(|&c| c == 0).unwrap_or(value.len());
                name = Some(String::from_utf8_lossy(&value[..end]).into_owned());
            }
            IFLA_MASTER => bridge = u32_at(value),
            IFLA_PROTINFO => settings = Some(value),
            _ => {}
        }
    }
    let settings = settings?;
    let flag = |wanted: u16| {
        attributes(settings)
            .find(|(kind, _)| *kind == wanted)
            .and_then(|(_, value)| value.first().map(|v| *v != 0))
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
    const IFF_UP: u32 = 1;
    Some(BridgePort {
        index: u32_at(&header[4..8])?,
        name: name?,
        bridge: bridge?,
        isolated,
        up: u32_at(&header[8..12])? & IFF_UP != 0,
    })
}
