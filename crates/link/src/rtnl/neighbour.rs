//! Permanent neighbour entries.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Ctx, Rtnl};
use crate::error::Result;

impl Rtnl {
    /// Pin `ip` on link `index` to `mac` (`nud permanent`, replacing any
    /// entry there). The kernel then never asks for it: no ARP or neighbour
    /// discovery on the link for this address, and nothing a peer sends can
    /// change the entry.
    pub fn add_permanent_neighbour(&mut self, index: u32, ip: IpAddr, mac: [u8; 6]) -> Result<()> {
        let mut msg = neighbour_message(index, ip);
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::LinkLocalAddress(mac.to_vec()));
        let what = format!("{ip} lladdr {} dev #{index}", format_mac(mac));
        let ctx = Ctx {
            op: "add neighbour",
            what: &what,
        };
        self.request(
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
            &ctx,
        )
        .map(drop)
    }

    /// Delete the neighbour entry for `ip` on link `index`; `Ok(false)` if
    /// there was none.
    pub fn del_neighbour(&mut self, index: u32, ip: IpAddr) -> Result<bool> {
        let mut msg = neighbour_message(index, ip);
        msg.header.state = NeighbourState::None;
        let what = format!("{ip} dev #{index}");
        let ctx = Ctx {
            op: "delete neighbour",
            what: &what,
        };
        match self.request(RouteNetlinkMessage::DelNeighbour(msg), 0, &ctx) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Rtnl {
    /// The permanent neighbour entries of every link, as (link index,
    /// address, MAC). One dump for all: the kernel filters a dump by link
    /// only for sockets in strict mode, so one per link would read them all
    /// each time.
    pub fn permanent_neighbours(&mut self) -> Result<Vec<(u32, IpAddr, [u8; 6])>> {
        let replies = self.dump(
            RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()),
            "list neighbours",
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n)
                    if n.header.state == NeighbourState::Permanent =>
                {
                    let ip = n.attributes.iter().find_map(|a| match a {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                            Some(IpAddr::V4(*a))
                        }
                        NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                            Some(IpAddr::V6(*a))
                        }
                        _ => None,
                    })?;
                    let mac = n.attributes.iter().find_map(|a| match a {
                        NeighbourAttribute::LinkLocalAddress(m) => <[u8; 6]>::try_from(&m[..]).ok(),
                        _ => None,
                    })?;
                    Some((n.header.ifindex, ip, mac))
                }
                _ => None,
            })
            .collect())
    }
}

/// A neighbour message for `ip` on link `index`.
fn neighbour_message(index: u32, ip: IpAddr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.ifindex = index;
    msg.attributes
        .push(NeighbourAttribute::Destination(match ip {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
    msg
}

pub(super) fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
