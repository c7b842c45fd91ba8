//! Addresses and routes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Ctx, Rtnl};
use crate::error::{LinkError, Result};

/// A route for [`Rtnl::add_route`] (main table, unicast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination network; `0.0.0.0`/`::` with `prefix_len` 0 is default.
    pub dest: IpAddr,
    /// Destination prefix length.
    pub prefix_len: u8,
    /// Output interface index.
    pub oif: u32,
    /// Next hop; `None` for a directly connected (scope link) route.
    pub gateway: Option<IpAddr>,
    /// Treat the gateway as on-link even without a covering subnet route
    /// (`onlink`), needed when the sandbox only has a /32.
    pub onlink: bool,
    /// Preferred source address (`src`).
    pub source: Option<IpAddr>,
}

impl Rtnl {
    /// Add `addr/prefix_len` to link `index`. Re-adding an identical
    /// address succeeds. IPv6 addresses skip duplicate address detection
    /// (`IFA_F_NODAD`) so they are usable immediately rather than after ~1s
    /// of DAD, which would otherwise dominate sandbox start-up.
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> Result<()> {
        self.add_address_flagged(index, addr, prefix_len, false)
    }

    /// Like [`Rtnl::add_address`], but the kernel adds no route for the
    /// address's prefix (`IFA_F_NOPREFIXROUTE`); only its local route.
    pub fn add_address_without_prefix_route(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> Result<()> {
        self.add_address_flagged(index, addr, prefix_len, true)
    }

    fn add_address_flagged(
        &mut self,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
        no_prefix_route: bool,
    ) -> Result<()> {
        check_prefix("add_address", addr, prefix_len)?;
        let mut msg = AddressMessage::default();
        msg.header.family = family_of(addr);
        msg.header.prefix_len = prefix_len;
        msg.header.scope = AddressScope::Universe;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(addr));
        msg.attributes.push(AddressAttribute::Address(addr));
        let mut flags = AddressFlags::empty();
        if addr.is_ipv6() {
            msg.header.flags = AddressHeaderFlags::Nodad;
            flags |= AddressFlags::Nodad;
        }
        if no_prefix_route {
            flags |= AddressFlags::Noprefixroute;
        }
        if !flags.is_empty() {
            msg.attributes.push(AddressAttribute::Flags(flags));
        }
        let what = format!("{addr}/{prefix_len} on link #{index}");
        let ctx = Ctx {
            op: "add address",
            what: &what,
        };
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
            &ctx,
        )
        .map(drop)
    }

    /// Delete `addr/prefix_len` from link `index`; the kernel takes the
    /// routes that depend on it too. Returns `Ok(false)` if it was not
    /// there.
    pub fn del_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> Result<bool> {
        check_prefix("del_address", addr, prefix_len)?;
        let mut msg = AddressMessage::default();
        msg.header.family = family_of(addr);
        msg.header.prefix_len = prefix_len;
        msg.header.index = index;
        msg.attributes.push(AddressAttribute::Local(addr));
        msg.attributes.push(AddressAttribute::Address(addr));
        let what = format!("{addr}/{prefix_len} on link #{index}");
        let ctx = Ctx {
            op: "delete address",
            what: &what,
        };
        match self.request(RouteNetlinkMessage::DelAddress(msg), 0, &ctx) {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.errno(), Some(libc::EADDRNOTAVAIL | libc::ENODEV)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every address of this namespace, as `(link index, address, prefix)`.
    pub fn list_addresses(&mut self) -> Result<Vec<(u32, IpAddr, u8)>> {
        let replies = self.dump(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            "list addresses",
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => {
                    let addr = a.attributes.iter().find_map(|attr| match attr {
                        AddressAttribute::Local(ip) => Some(*ip),
                        _ => None,
                    });
                    let addr = addr.or_else(|| {
                        a.attributes.iter().find_map(|attr| match attr {
                            AddressAttribute::Address(ip) => Some(*ip),
                            _ => None,
                        })
                    })?;
                    Some((a.header.index, addr, a.header.prefix_len))
                }
                _ => None,
            })
            .collect())
    }

    /// Whether this namespace has a route to `dest` (`ip route get`): false
    /// when the kernel answers "unreachable" (no route, or an unreachable,
    /// prohibit or blackhole route).
    pub fn has_route(&mut self, dest: IpAddr) -> Result<bool> {
        Ok(self.get_route(dest)?.is_some_and(|r| {
            r.header.kind == RouteType::Unicast || r.header.kind == RouteType::Local
        }))
    }

    /// The interface the kernel would send a packet to `dest` out of
    /// (`ip route get`); `None` when it has no usable route.
    pub fn route_oif(&mut self, dest: IpAddr) -> Result<Option<u32>> {
        Ok(self.get_route(dest)?.and_then(|r| {
            r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            })
        }))
    }

    /// The kernel's answer to `ip route get dest`; `None` when it says
    /// the destination is unreachable.
    fn get_route(&mut self, dest: IpAddr) -> Result<Option<RouteMessage>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family_of(dest);
        msg.header.destination_prefix_length = if dest.is_ipv4() { 32 } else { 128 };
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dest)));
        let what = dest.to_string();
        let ctx = Ctx {
            op: "look up route",
            what: &what,
        };
        match self.request(RouteNetlinkMessage::GetRoute(msg), 0, &ctx) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(r),
                _ => None,
            })),
            Err(e)
                if matches!(
                    e.errno(),
                    Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EACCES | libc::EINVAL)
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Add (or replace) a route in the main table.
    pub fn add_route(&mut self, route: &RouteSpec) -> Result<()> {
        check_prefix("add_route", route.dest, route.prefix_len)?;
        for other in [route.gateway, route.source].into_iter().flatten() {
            if other.is_ipv6() != route.dest.is_ipv6() {
                return Err(LinkError::InvalidArgument {
                    op: "add_route",
                    reason: format!(
                        "{other} is not of the same address family as {}",
                        route.dest
                    ),
                });
            }
        }
        let mut msg = route_message(route.dest, route.prefix_len, route.oif);
        msg.header.protocol = RouteProtocol::Static;
        // As iproute2: a route without a next hop is scope link.
        msg.header.scope = if route.gateway.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        if route.onlink {
            msg.header.flags |= RouteFlags::Onlink;
        }
        if let Some(gw) = route.gateway {
            msg.attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
        }
        if let Some(src) = route.source {
            msg.attributes
                .push(RouteAttribute::PrefSource(RouteAddress::from(src)));
        }
        let what = describe_route(route);
        let ctx = Ctx {
            op: "add route",
            what: &what,
        };
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
            &ctx,
        )
        .map(drop)
    }

    /// Delete the main-table route to `dest/prefix_len` via link `oif`.
    /// Returns `Ok(false)` if there was no such route.
    pub fn del_route(&mut self, dest: IpAddr, prefix_len: u8, oif: u32) -> Result<bool> {
        check_prefix("del_route", dest, prefix_len)?;
        let msg = route_message(dest, prefix_len, oif);
        self.delete_route(msg, &format!("{dest}/{prefix_len} dev #{oif}"))
    }

    /// Delete the IPv6 multicast route (`ff00::/8`, local table) that the
    /// kernel gives link `index` when it comes up. Returns `Ok(false)` if
    /// there was none.
    ///
    /// These routes of all links share one node of the routing tree, so each
    /// one added or removed walks all the others, and every link coming up
    /// or going down walks every route of the namespace. A link that never
    /// sends multicast (its neighbours are pinned) needs none.
    pub fn del_multicast_route(&mut self, index: u32) -> Result<bool> {
        let mut msg = route_message(IpAddr::V6(MULTICAST6), 8, index);
        msg.header.table = RT_TABLE_LOCAL;
        msg.header.kind = RouteType::Multicast;
        self.delete_route(msg, &format!("ff00::/8 dev #{index} table local"))
    }

    /// Send `RTM_DELROUTE` for the route `msg` names (any protocol and
    /// scope); `Ok(false)` if there was no such route.
    fn delete_route(&mut self, mut msg: RouteMessage, what: &str) -> Result<bool> {
        msg.header.protocol = RouteProtocol::Unspec;
        msg.header.scope = RouteScope::NoWhere;
        let ctx = Ctx {
            op: "delete route",
            what,
        };
        match self.request(RouteNetlinkMessage::DelRoute(msg), 0, &ctx) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ESRCH) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The kernel's local routing table (`RT_TABLE_LOCAL`).
const RT_TABLE_LOCAL: u8 = 255;

/// `ff00::`, the IPv6 multicast prefix.
const MULTICAST6: Ipv6Addr = Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0);

fn family_of(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn route_message(dest: IpAddr, prefix_len: u8, oif: u32) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family_of(dest);
    msg.header.destination_prefix_length = prefix_len;
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.kind = RouteType::Unicast;
    if prefix_len > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(dest)));
    }
    msg.attributes.push(RouteAttribute::Oif(oif));
    msg
}

fn describe_route(r: &RouteSpec) -> String {
    let mut s = if r.prefix_len == 0 && is_unspecified(r.dest) {
        "default".to_string()
    } else {
        format!("{}/{}", r.dest, r.prefix_len)
    };
    if let Some(gw) = r.gateway {
        s.push_str(&format!(" via {gw}"));
    }
    s.push_str(&format!(" dev #{}", r.oif));
    if r.onlink {
        s.push_str(" onlink");
    }
    if let Some(src) = r.source {
        s.push_str(&format!(" src {src}"));
    }
    s
}

fn is_unspecified(a: IpAddr) -> bool {
    a == IpAddr::V4(Ipv4Addr::UNSPECIFIED) || a == IpAddr::V6(Ipv6Addr::UNSPECIFIED)
}

fn check_prefix(op: &'static str, addr: IpAddr, prefix_len: u8) -> Result<()> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(LinkError::InvalidArgument {
            op,
            reason: format!("prefix length /{prefix_len} is too long for {addr}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_descriptions() {
        let r = RouteSpec {
            dest: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix_len: 0,
            oif: 2,
            gateway: Some("10.200.0.1".parse().unwrap()),
            onlink: true,
            source: None,
        };
        assert_eq!(describe_route(&r), "default via 10.200.0.1 dev #2 onlink");
    }
}
