//! Link operations: listing, veth pairs, bridges, up/master, deletion.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkExtentMask,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_utils::nla::DefaultNla;

use super::{attributes, validate_ifname, Ctx, Rtnl, NLMSG_HDRLEN};
use crate::error::{LinkError, Result};

/// `IN6_ADDR_GEN_MODE_NONE` from linux/if_link.h.
const IN6_ADDR_GEN_MODE_NONE: u8 = 1;

/// The largest IPv4 packet a veth passes up and down the stack in one
/// piece (`GSO_MAX_SIZE`; BIG TCP for IPv4, Linux 6.3), against 64 KiB by
/// default. See [`VethSpec::big_packets`].
pub const BIG_PACKET_SIZE: u32 = 524_280;

/// The kernel's default packet size limit (`GSO_LEGACY_MAX_SIZE`).
pub const DEFAULT_PACKET_SIZE: u32 = 65_536;

/// IPv4 packet-size attributes of linux/if_link.h (the route crate has no
/// variant for them).
const IFLA_GSO_IPV4_MAX_SIZE: u16 = 63;
const IFLA_GRO_IPV4_MAX_SIZE: u16 = 64;

/// The IPv4 limits (GSO and GRO) set to `size`. A kernel older than the
/// attributes ignores them; one that cannot pass `size` refuses the
/// request with `EINVAL`.
///
/// IPv6 keeps 64 KiB: a sandbox's big IPv6 packets were cut into
/// MTU-sized ones on their way through the host (4,200-4,500 frames of a
/// 24 MiB stream where it left the host, against 600-700 with 64 KiB).
fn packet_size_attributes(size: u32) -> [LinkAttribute; 2] {
    let other = |kind| LinkAttribute::Other(DefaultNla::new(kind, size.to_ne_bytes().to_vec()));
    [other(IFLA_GSO_IPV4_MAX_SIZE), other(IFLA_GRO_IPV4_MAX_SIZE)]
}

/// One interface as seen by [`Rtnl::list_links`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSummary {
    /// Interface index within its namespace.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Link kind (`IFLA_INFO_KIND`): "veth", "tun", "bridge"...; `None` for
    /// devices without one (loopback, physical NICs).
    pub kind: Option<String>,
    /// Hardware address, when it is a 6-byte Ethernet MAC.
    pub mac: Option<[u8; 6]>,
    /// Index of the bridge/bond this link is enslaved to.
    pub master: Option<u32>,
    /// For a veth: the index of its peer, in the peer's namespace.
    pub peer_index: Option<u32>,
    /// Interface group (`IFLA_GROUP`); 0 is the kernel's default group.
    pub group: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Largest IPv4 packet the stack hands the link in one piece
    /// (`IFLA_GSO_IPV4_MAX_SIZE`); `None` from a kernel before 6.3.
    pub gso_ipv4_max_size: Option<u32>,
}

/// A veth pair to create with [`Rtnl::create_veth`].
#[derive(Debug, Clone, Default)]
pub struct VethSpec<'a> {
    /// Name of the end that stays in the socket's namespace.
    pub host_name: String,
    /// MAC of that end; random if `None`.
    pub host_mac: Option<[u8; 6]>,
    /// Name of the other end, unique only within its own namespace.
    pub peer_name: String,
    /// MAC of the other end; random if `None`.
    pub peer_mac: Option<[u8; 6]>,
    /// Open namespace file (e.g. from [`crate::open_netns`]) in which the
    /// peer is created directly; `None` keeps it next to the host end.
    pub peer_netns: Option<BorrowedFd<'a>>,
    /// Both ends pass IPv4 packets of up to [`BIG_PACKET_SIZE`] in one
    /// piece (GSO and GRO) rather than 64 KiB: every per-packet
    /// cost on the path, a firewall's included, is paid once per that many
    /// bytes of a bulk TCP stream. A kernel that cannot gets the default
    /// (the pair is made again without; [`Rtnl::big_packets_refused`]).
    pub big_packets: bool,
}

impl Rtnl {
    /// Index of the interface called `name`, or `None` if there is none.
    /// Asked over ioctl: the rtnetlink answer for a veth would make the
    /// kernel look up its peer's namespace id (see `device_ioctl`).
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>> {
        validate_ifname("link_index", name)?;
        super::device_ioctl::index_of(&self.devices, name).map_err(|source| LinkError::Socket {
            op: "look up link",
            what: name.to_string(),
            netns: self.netns.clone(),
            source,
        })
    }

    /// Waits until the kernel has processed any pending carrier change of
    /// the interface `name` (the link watch runs such changes later, in a
    /// worker), and says whether it has carrier.
    pub fn sync_link_state(&mut self, name: &str) -> Result<bool> {
        validate_ifname("sync_link_state", name)?;
        super::device_ioctl::sync_carrier(&self.devices, name).map_err(|source| LinkError::Socket {
            op: "read the link state of",
            what: name.to_string(),
            netns: self.netns.clone(),
            source,
        })
    }

    /// The interface called `name`, or `None` if there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<LinkSummary>> {
        validate_ifname("link", name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.get_link(msg, name)
    }

    /// The interface with this index, or `None` if there is none.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<LinkSummary>> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.get_link(msg, &format!("#{index}"))
    }

    fn get_link(&mut self, mut msg: LinkMessage, what: &str) -> Result<Option<LinkSummary>> {
        msg.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let ctx = Ctx {
            op: "look up link",
            what,
        };
        self.get_link_summary(msg, &ctx)
    }

    fn get_link_summary(&mut self, msg: LinkMessage, ctx: &Ctx<'_>) -> Result<Option<LinkSummary>> {
        let mut found = None;
        let outcome = self.request_raw(RouteNetlinkMessage::GetLink(msg), 0, ctx, |_, one| {
            found = found.take().or_else(|| summarize(one));
            Ok(())
        });
        match outcome {
            Ok(()) => Ok(found),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// All interfaces of the socket's namespace.
    pub fn list_links(&mut self) -> Result<Vec<LinkSummary>> {
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let ctx = Ctx {
            op: "list links",
            what: "(all)",
        };
        let mut links = Vec::new();
        self.request_raw(
            RouteNetlinkMessage::GetLink(msg),
            NLM_F_DUMP,
            &ctx,
            |_, one| {
                links.extend(summarize(one));
                Ok(())
            },
        )?;
        Ok(links)
    }

    /// Create a veth pair in one request and return the host end's index.
    ///
    /// With `peer_netns` set, the peer is born inside that namespace, so it
    /// can take a name such as `eth0` that may already exist here, and it
    /// is never visible in this namespace even transiently.
    pub fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<u32> {
        validate_ifname("create_veth", &spec.host_name)?;
        validate_ifname("create_veth", &spec.peer_name)?;
        let big = spec.big_packets && !self.big_packets_refused;
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(spec.peer_name.clone()));
        if big {
            peer.attributes
                .extend(packet_size_attributes(BIG_PACKET_SIZE));
        }
        if let Some(mac) = spec.peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if let Some(fd) = spec.peer_netns {
            peer.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
        }
        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(spec.host_name.clone()));
        if let Some(mac) = spec.host_mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if big {
            msg.attributes
                .extend(packet_size_attributes(BIG_PACKET_SIZE));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        // The peer's namespace is named (a readlink) only in an error.
        let peer_where = || match spec.peer_netns {
            Some(fd) => format!(" in {}", describe_netns_fd(fd)),
            None => String::new(),
        };
        let what = || {
            format!(
                "{} (peer {}{})",
                spec.host_name,
                spec.peer_name,
                peer_where()
            )
        };
        let created = self
            .create_link(msg, &spec.host_name, "create veth", &spec.host_name)
            .map_err(|e| e.about(what()));
        match created {
            // A kernel without BIG TCP refuses the sizes as a whole: make
            // the pair as it can, and stop asking.
            Err(e) if big && e.errno() == Some(libc::EINVAL) => {
                self.big_packets_refused = true;
                self.create_veth(spec)
            }
            // EEXIST does not say which end clashed; find out, since the
            // peer usually lives in another namespace the caller can't see.
            Err(LinkError::AlreadyExists {
                op, netns, ext_ack, ..
            }) if spec.peer_netns.is_some()
                && matches!(self.link_index(&spec.host_name), Ok(None)) =>
            {
                Err(LinkError::AlreadyExists {
                    op,
                    what: format!(
                        "peer {}{} of veth {}",
                        spec.peer_name,
                        peer_where(),
                        spec.host_name
                    ),
                    netns,
                    ext_ack,
                })
            }
            other => other,
        }
    }

    /// Create a bridge called `name` and return its index. With `mac` it
    /// keeps that address; without, the kernel gives it its lowest port's,
    /// which changes as ports come and go (and each change flushes every
    /// neighbour entry on the bridge, permanent ones included).
    pub fn create_bridge(&mut self, name: &str, mac: Option<[u8; 6]>) -> Result<u32> {
        validate_ifname("create_bridge", name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        if let Some(mac) = mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.create_link(msg, name, "create bridge", name)
    }

    /// Send an exclusive RTM_NEWLINK, then resolve the new link's index.
    fn create_link(
        &mut self,
        msg: LinkMessage,
        name: &str,
        op: &'static str,
        what: &str,
    ) -> Result<u32> {
        let ctx = Ctx { op, what };
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            &ctx,
        )?;
        self.link_index(name)?.ok_or_else(|| LinkError::Netlink {
            op,
            what: what.to_string(),
            netns: self.netns.clone(),
            errno: libc::ENODEV,
            ext_ack: Some("link vanished right after creation".to_string()),
        })
    }

    /// Set link `index`'s hardware address.
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        let what = format!("link #{index}");
        let ctx = Ctx {
            op: "set the address of",
            what: &what,
        };
        self.request(RouteNetlinkMessage::SetLink(msg), 0, &ctx)
            .map(drop)
    }

    /// Sets the largest IPv4 packet link `index` passes in one piece (GSO
    /// and GRO): [`BIG_PACKET_SIZE`] or [`DEFAULT_PACKET_SIZE`], say.
    /// `EINVAL` means the link (or, for a bridge, one of its ports) cannot
    /// pass that much.
    pub fn set_ipv4_packet_size(&mut self, index: u32, size: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.extend(packet_size_attributes(size));
        let what = format!("link #{index} to {size} bytes");
        let ctx = Ctx {
            op: "set the packet size limits of",
            what: &what,
        };
        self.request(RouteNetlinkMessage::SetLink(msg), 0, &ctx)
            .map(drop)
    }

    /// Lets link `index` pass IPv4 packets of up to [`BIG_PACKET_SIZE`] in
    /// one piece, as [`VethSpec::big_packets`] does for a veth; for a
    /// bridge once it has ports: a bridge's ceiling is its ports' lowest
    /// (64 KiB with none, or with a tap). A link that already does is left
    /// as it is (setting the sizes again would cost a link notification).
    /// Returns whether the link passes them now; `Ok(false)` when the
    /// kernel refuses (`EINVAL`) or the link is gone.
    pub fn allow_big_packets(&mut self, index: u32) -> Result<bool> {
        if self.big_packets_refused {
            return Ok(false);
        }
        match self.link_by_index(index)? {
            None => return Ok(false),
            Some(link) if link.gso_ipv4_max_size == Some(BIG_PACKET_SIZE) => return Ok(true),
            Some(_) => {}
        }
        match self.set_ipv4_packet_size(index, BIG_PACKET_SIZE) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::EINVAL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether link `index` passes IPv4 packets of over 64 KiB in one piece
    /// (`Ok(false)` as well when it is gone or the kernel predates 6.3).
    pub fn passes_big_packets(&mut self, index: u32) -> Result<bool> {
        Ok(self
            .link_by_index(index)?
            .and_then(|l| l.gso_ipv4_max_size)
            .is_some_and(|size| size > DEFAULT_PACKET_SIZE))
    }

    /// Whether a veth creation found that this kernel cannot pass packets
    /// of [`BIG_PACKET_SIZE`] (it then makes veths with the default).
    pub fn big_packets_refused(&self) -> bool {
        self.big_packets_refused
    }

    /// Enslave link `index` to the bridge (or bond) `master`; 0 releases it.
    pub fn set_master(&mut self, index: u32, master: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Controller(master));
        let what = format!("link #{index} -> master #{master}");
        let ctx = Ctx {
            op: "set master of",
            what: &what,
        };
        self.request(RouteNetlinkMessage::SetLink(msg), 0, &ctx)
            .map(drop)
    }

    /// Bring link `index` administratively up.
    pub fn set_up(&mut self, index: u32) -> Result<()> {
        self.set_updown(index, true)
    }

    /// Set link `index` administratively down: it passes no traffic.
    pub fn set_down(&mut self, index: u32) -> Result<()> {
        self.set_updown(index, false)
    }

    fn set_updown(&mut self, index: u32, up: bool) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        if up {
            msg.header.flags = LinkFlags::Up;
        }
        msg.header.change_mask = LinkFlags::Up;
        let what = format!("link #{index}");
        let ctx = Ctx {
            op: if up { "set up" } else { "set down" },
            what: &what,
        };
        self.request(RouteNetlinkMessage::SetLink(msg), 0, &ctx)
            .map(drop)
    }

    /// Turn off the kernel's automatic IPv6 link-local address on link
    /// `index` (`addr_gen_mode` none), so the caller adds its own with
    /// `IFA_F_NODAD` and the link never has a tentative address. Over
    /// netlink rather than /proc/sys: a path lookup under /proc/sys/net
    /// costs time proportional to the number of namespaces that ever looked
    /// one up.
    pub fn disable_ipv6_autoconf_address(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(IN6_ADDR_GEN_MODE_NONE)],
            )]));
        let what = format!("link #{index}");
        let ctx = Ctx {
            op: "set IPv6 addr_gen_mode none",
            what: &what,
        };
        self.request(RouteNetlinkMessage::SetLink(msg), 0, &ctx)
            .map(drop)
    }

    /// Set the interface called `name` down and move it into interface
    /// group `group`, in one request, so that [`Rtnl::delete_group`] can
    /// later delete it together with others. Returns `Ok(false)` if it did
    /// not exist.
    ///
    /// A bridge port stays on its bridge: down, it passes nothing, and
    /// releasing it now would cost a detach two link notifications, each a
    /// walk over every namespace id of the host, and an RCU grace period.
    /// The group deletion releases it without those notifications (the
    /// link is being unregistered by then).
    ///
    /// Deleting a device makes the kernel wait for RCU grace periods before
    /// `RTM_DELLINK` returns; retiring is a plain attribute change, and one
    /// group deletion shares those waits among all the devices in it.
    pub fn retire_link(&mut self, name: &str, group: u32) -> Result<bool> {
        validate_ifname("retire_link", name)?;
        let mut msg = LinkMessage::default();
        msg.header.change_mask = LinkFlags::Up;
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Group(group));
        let ctx = Ctx {
            op: "retire link",
            what: name,
        };
        match self.request(RouteNetlinkMessage::SetLink(msg), 0, &ctx) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Rename link `index` to `new_name`; it may be up (Linux 6.2 and later
    /// rename running interfaces).
    pub fn rename_link(&mut self, index: u32, new_name: &str) -> Result<()> {
        validate_ifname("rename_link", new_name)?;
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::IfName(new_name.to_string()));
        let what = format!("link #{index} -> {new_name}");
        let ctx = Ctx {
            op: "rename link",
            what: &what,
        };
        self.request(RouteNetlinkMessage::SetLink(msg), 0, &ctx)
            .map(drop)
    }

    /// Delete every interface in group `group` (for veths, their peers in
    /// other namespaces too) in one request. Returns `Ok(false)` if the
    /// group was empty.
    pub fn delete_group(&mut self, group: u32) -> Result<bool> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::Group(group));
        let what = format!("group {group}");
        let ctx = Ctx {
            op: "delete links of",
            what: &what,
        };
        match self.request(RouteNetlinkMessage::DelLink(msg), 0, &ctx) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Delete the interface called `name` (for a veth, both ends go).
    /// Returns `Ok(false)` if it did not exist.
    pub fn delete_link(&mut self, name: &str) -> Result<bool> {
        validate_ifname("delete_link", name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let ctx = Ctx {
            op: "delete link",
            what: name,
        };
        match self.request(RouteNetlinkMessage::DelLink(msg), 0, &ctx) {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// "netns net:[4026532292]" for an open namespace file, for messages.
pub(super) fn describe_netns_fd(fd: BorrowedFd<'_>) -> String {
    let raw = fd.as_raw_fd();
    match std::fs::read_link(format!("/proc/self/fd/{raw}")) {
        Ok(target) => format!("netns {}", target.display()),
        Err(_) => format!("netns fd {raw}"),
    }
}

/// An `RTM_NEWLINK` message (netlink header included) as a summary; `None`
/// for any other message. Parsed by hand: only these few attributes are
/// needed, and a full parse of every attribute is most of a 10,000-link
/// dump's cost.
fn summarize(message: &[u8]) -> Option<LinkSummary> {
    const RTM_NEWLINK: u16 = 16;
    const IFINFOMSG_LEN: usize = 16;
    const IFLA_ADDRESS: u16 = 1;
    const IFLA_IFNAME: u16 = 3;
    const IFLA_LINK: u16 = 5;
    const IFLA_MASTER: u16 = 10;
    const IFLA_LINKINFO: u16 = 18;
    const IFLA_INFO_KIND: u16 = 1;
    const IFLA_GROUP: u16 = 27;
    const IFF_UP: u32 = 1;
    let u32_at = |b: &[u8]| {
        b.get(0..4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let text = |b: &[u8]| {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    };
    if message.get(4..6)? != RTM_NEWLINK.to_ne_bytes() {
        return None;
    }
    let payload = message.get(NLMSG_HDRLEN..)?;
    let header = payload.get(..IFINFOMSG_LEN)?;
    let mut s = LinkSummary {
        index: u32_at(&header[4..8])?,
        name: String::new(),
        kind: None,
        mac: None,
        master: None,
        peer_index: None,
        group: 0,
        up: u32_at(&header[8..12])? & IFF_UP != 0,
        gso_ipv4_max_size: None,
    };
    for (kind, value) in attributes(&payload[IFINFOMSG_LEN..]) {
        match kind {
            IFLA_IFNAME => s.name = text(value),
            IFLA_ADDRESS => s.mac = value.try_into().ok(),
            IFLA_MASTER => s.master = u32_at(value),
            IFLA_LINK => s.peer_index = u32_at(value),
            IFLA_GROUP => s.group = u32_at(value).unwrap_or(0),
            IFLA_GSO_IPV4_MAX_SIZE => s.gso_ipv4_max_size = u32_at(value),
            IFLA_LINKINFO => {
                s.kind = attributes(value)
                    .find(|(k, _)| *k == IFLA_INFO_KIND)
                    .map(|(_, v)| text(v));
            }
            _ => {}
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload};

    /// A link message as the kernel would send it, encoded by the crate.
    fn encoded(msg: LinkMessage) -> Vec<u8> {
        let mut packet = NetlinkMessage::new(
            NetlinkHeader::default(),
            NetlinkPayload::from(RouteNetlinkMessage::NewLink(msg)),
        );
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        out
    }

    #[test]
    fn summary_reads_the_attributes_it_needs() {
        let mut msg = LinkMessage::default();
        msg.header.index = 4242;
        msg.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
        msg.attributes.extend([
            LinkAttribute::Mtu(1500),
            LinkAttribute::IfName("pal-1a2b".into()),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 7]),
            LinkAttribute::Controller(9),
            LinkAttribute::Link(17),
            LinkAttribute::Group(0x7061_6c64),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
        ]);
        msg.attributes
            .extend(packet_size_attributes(BIG_PACKET_SIZE));
        let s = summarize(&encoded(msg)).expect("a link message");
        assert_eq!(
            s,
            LinkSummary {
                index: 4242,
                name: "pal-1a2b".into(),
                kind: Some("veth".into()),
                mac: Some([2, 0, 0, 0, 0, 7]),
                master: Some(9),
                peer_index: Some(17),
                group: 0x7061_6c64,
                up: true,
                gso_ipv4_max_size: Some(BIG_PACKET_SIZE),
            }
        );
    }

    #[test]
    fn summary_of_a_bare_link_and_of_other_messages() {
        let mut msg = LinkMessage::default();
        msg.header.index = 1;
        msg.attributes.push(LinkAttribute::IfName("lo".into()));
        let s = summarize(&encoded(msg)).expect("a link message");
        assert_eq!((s.index, s.name.as_str(), s.up), (1, "lo", false));
        assert_eq!((s.kind, s.mac, s.master, s.group), (None, None, None, 0));

        let mut not_a_link = encoded(LinkMessage::default());
        not_a_link[4..6].copy_from_slice(&20u16.to_ne_bytes()); // RTM_NEWADDR
        assert_eq!(summarize(&not_a_link), None);
        assert_eq!(summarize(&not_a_link[..10]), None);
    }
}
