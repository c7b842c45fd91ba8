//! Permanent neighbour entries.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{attributes, Ctx, Rtnl, NLMSG_HDRLEN};
use crate::error::Result;

impl Rtnl {
    /// Pin `ip` on link `index` to `mac` (`nud permanent`, replacing any
    /// entry there). The kernel then never asks for it: no ARP or neighbour
    /// discovery on the link for this address, and nothing a peer sends can
    /// change the entry.
    pub fn add_permanent_neighbour(&mut self, index: u32, ip: IpAddr, mac: [u8; 6]) -> Result<()> {
        let mut msg = neighbour_message(index, ip);
        msg.header.state = NeighbourState::Permanent;
        let what = format!("{ip} lladdr {} dev #{index}", format_mac(mac));
        self.replace_neighbour(msg, mac, "add neighbour", &what)
    }

    /// Sends `msg` with `mac` as its link-layer address, creating the entry
    /// or replacing the one there.
    pub(super) fn replace_neighbour(
        &mut self,
        mut msg: NeighbourMessage,
        mac: [u8; 6],
        op: &'static str,
        what: &str,
    ) -> Result<()> {
        msg.attributes
            .push(NeighbourAttribute::LinkLocalAddress(mac.to_vec()));
        let ctx = Ctx { op, what };
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
    /// each time. Read as bytes, entry by entry: a host with 10,000 bridge
    /// sandboxes pins 30,000 addresses, and the crate's full parse of each
    /// was a quarter of `verify` there.
    pub fn permanent_neighbours(&mut self) -> Result<Vec<(u32, IpAddr, [u8; 6])>> {
        let ctx = Ctx {
            op: "list neighbours",
            what: "(all)",
        };
        let mut found = Vec::new();
        self.request_raw(
            RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()),
            NLM_F_DUMP,
            &ctx,
            |_, one| {
                found.extend(permanent_entry(one));
                Ok(())
            },
        )?;
        Ok(found)
    }
}

/// A neighbour message (netlink header included) as (link index, address,
/// MAC) when it is a permanent IPv4 or IPv6 entry with a MAC.
fn permanent_entry(message: &[u8]) -> Option<(u32, IpAddr, [u8; 6])> {
    const RTM_NEWNEIGH: u16 = 28;
    const NDMSG_LEN: usize = 12;
    const NDA_DST: u16 = 1;
    const NDA_LLADDR: u16 = 2;
    const NUD_PERMANENT: u16 = 0x80;
    if message.get(4..6)? != RTM_NEWNEIGH.to_ne_bytes() {
        return None;
    }
    let payload = message.get(NLMSG_HDRLEN..)?;
    let header = payload.get(..NDMSG_LEN)?;
    let index = u32::from_ne_bytes(header[4..8].try_into().ok()?);
    let state = u16::from_ne_bytes(header[8..10].try_into().ok()?);
    if state != NUD_PERMANENT {
        return None;
    }
    let (mut ip, mut mac) = (None, None);
    for (kind, value) in attributes(&payload[NDMSG_LEN..]) {
        match kind {
            NDA_DST => {
                ip = match value.len() {
                    4 => Some(IpAddr::from(<[u8; 4]>::try_from(value).ok()?)),
                    16 => Some(IpAddr::from(<[u8; 16]>::try_from(value).ok()?)),
                    _ => None,
                }
            }
            NDA_LLADDR => mac = <[u8; 6]>::try_from(value).ok(),
            _ => {}
        }
    }
    Some((index, ip?, mac?))
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
