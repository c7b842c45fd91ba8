//! Links, addresses and routes of a sandbox, and the host side they hang on.
//! Everything in-process over rtnetlink: no `ip` process per step.

use super::{faults, Engine, EngineError};
use palisade_core::bridge_shard::BridgeShard;
use palisade_core::config::Mode;
use palisade_core::element::MacAddr;
use palisade_core::model::{Attachment, Sandbox, SandboxKind, GATEWAY6, GATEWAY_MAC};
use palisade_core::names::{self, BRIDGE_IFACE, SANDBOX_IFACE};
use palisade_link::{LinkError, RouteSpec, Rtnl, VethSpec};
use palisade_store::RetiredLink;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;

pub(super) fn link_err(
    sb: &Sandbox,
    step: impl Into<String>,
) -> impl FnOnce(LinkError) -> EngineError {
    let sandbox = sb.name.to_string();
    let step = step.into();
    move |source| EngineError::Link {
        sandbox,
        step,
        source: Box::new(source),
    }
}

pub(super) fn host_err(step: impl Into<String>) -> impl FnOnce(LinkError) -> EngineError {
    let step = step.into();
    move |source| EngineError::Host {
        step,
        source: Box::new(source),
    }
}

impl Engine {
    /// Host-wide plumbing in the current namespace: forwarding on, and in
    /// bridge mode the bridge with the gateway addresses. Idempotent.
    pub(super) fn ensure_host(&mut self) -> Result<(), EngineError> {
        palisade_link::set_sysctl("net/ipv4/ip_forward", "1")
            .map_err(host_err("enable IPv4 forwarding"))?;
        palisade_link::set_sysctl("net/ipv6/conf/all/forwarding", "1")
            .map_err(host_err("enable IPv6 forwarding"))?;
        if self.config.network.mode == Mode::Bridge {
            let index = match self
                .rtnl
                .link_index(BRIDGE_IFACE)
                .map_err(host_err("look up bridge"))?
            {
                Some(i) => i,
                None => self
                    .rtnl
                    .create_bridge(BRIDGE_IFACE, Some(GATEWAY_MAC.0))
                    .map_err(host_err(format!("create bridge {BRIDGE_IFACE}")))?,
            };
            give_bridge_its_mac(&mut self.rtnl, index).map_err(host_err(format!(
                "set the address of bridge {BRIDGE_IFACE}"
            )))?;
            let subnet = self.config.network.subnet;
            self.rtnl
                .add_address(
                    index,
                    IpAddr::V4(self.config.gateway4()),
                    subnet.prefix_len(),
                )
                .map_err(host_err("add the IPv4 gateway to the bridge"))?;
            self.rtnl
                .add_address(index, IpAddr::V6(GATEWAY6), 64)
                .map_err(host_err("add the IPv6 gateway to the bridge"))?;
            // Sandboxes reach each other through the gateway (their /32
            // addresses make every destination off-link); no redirects.
            for key in [
                format!("net/ipv4/conf/{BRIDGE_IFACE}/send_redirects"),
                format!("net/ipv6/conf/{BRIDGE_IFACE}/accept_ra"),
            ] {
                palisade_link::set_sysctl(&key, "0").map_err(host_err(format!("set {key}")))?;
            }
            self.rtnl
                .set_up(index)
                .map_err(host_err("bring the bridge up"))?;
            // The address brings the route to the IPv4 pool; re-adding an
            // address that is there does not bring back a route deleted
            // since (`verify` reports one).
            let routed_to = self
                .rtnl
                .route_oif(IpAddr::V4(subnet.network()))
                .map_err(host_err("look up the route to the IPv4 pool"))?;
            if routed_to != Some(index) {
                self.rtnl
                    .add_route(&RouteSpec {
                        dest: IpAddr::V4(subnet.network()),
                        prefix_len: subnet.prefix_len(),
                        oif: index,
                        gateway: None,
                        onlink: false,
                        source: Some(IpAddr::V4(self.config.gateway4())),
                    })
                    .map_err(host_err("route the IPv4 pool to the bridge"))?;
            }
            let subnet6 = self.config.network.subnet6;
            self.rtnl
                .add_route(&RouteSpec {
                    dest: IpAddr::V6(subnet6.network()),
                    prefix_len: subnet6.prefix_len(),
                    oif: index,
                    gateway: None,
                    onlink: false,
                    source: None,
                })
                .map_err(host_err("route the IPv6 pool to the bridge"))?;
        }
        Ok(())
    }

    /// Creates the sandbox's interface and everything on it. On error, what
    /// was made stays for the caller's rollback (`detach`) to remove.
    pub(super) fn attach(&mut self, sb: &Sandbox, create_netns: bool) -> Result<(), EngineError> {
        let Some(att) = sb.attachment.clone() else {
            return Ok(());
        };
        match sb.kind {
            SandboxKind::Netns => self.attach_veth(sb, &att, create_netns),
            SandboxKind::Tap => {
                palisade_link::create_tap(&att.host_iface, None)
                    .map_err(link_err(sb, format!("create tap {}", att.host_iface)))?;
                let index = self
                    .rtnl
                    .link_index(&att.host_iface)
                    .map_err(link_err(sb, "look up tap"))?
                    .ok_or_else(|| EngineError::InvalidRequest {
                        sandbox: sb.name.to_string(),
                        why: format!("tap {} vanished right after creation", att.host_iface),
                    })?;
                faults::point("after-link")?;
                self.configure_host_side(sb, index, att.ipv4, att.ipv6)
                    .map(drop)
            }
            // The runtime's plugins make and remove a CNI sandbox's interface.
            SandboxKind::None | SandboxKind::Cni => Ok(()),
        }
    }

    /// A namespace sandbox's veth, with `eth0` inside the namespace.
    fn attach_veth(
        &mut self,
        sb: &Sandbox,
        att: &Attachment,
        create_netns: bool,
    ) -> Result<(), EngineError> {
        let name = sb.name.as_str();
        if create_netns {
            palisade_link::create_named_netns(name)
                .map_err(link_err(sb, "create network namespace"))?;
        }
        faults::point("after-netns")?;
        let path = palisade_link::netns_path(name);
        let ns =
            palisade_link::open_netns(&path).map_err(link_err(sb, "open network namespace"))?;
        // Before the veth: its first notification would give the namespace
        // the lowest free id, which the kernel then walks to for every
        // later one (palisade_core::names::netns_id).
        if let Some(id) = names::netns_id(sb.id) {
            self.rtnl
                .assign_netns_id(ns.as_fd(), id)
                .map_err(link_err(sb, "give the namespace its id on the host"))?;
        }
        // In routed mode every host end has the gateway's MAC and both ends
        // know each other's addresses (static neighbours).
        let routed = self.config.network.mode == Mode::Routed;
        let index = self
            .rtnl
            .create_veth(&VethSpec {
                host_name: att.host_iface.clone(),
                host_mac: routed.then_some(GATEWAY_MAC.0),
                peer_name: SANDBOX_IFACE.to_string(),
                peer_mac: Some(att.mac.0),
                peer_netns: Some(ns.as_fd()),
                big_packets: self.config.network.big_tcp,
            })
            .map_err(link_err(
                sb,
                format!("create veth {} <-> {SANDBOX_IFACE}", att.host_iface),
            ))?;
        faults::point("after-link")?;
        // The host end first, while its peer is down: it comes up without
        // carrier, and the kernel walks every IPv6 route of the host once,
        // when `eth0` comes up and brings the carrier (in its link watch),
        // rather than twice (as the host end comes up, then again for its
        // carrier change). See docs/benchmarks.md.
        let keep_default_size = self.configure_host_side(sb, index, att.ipv4, att.ipv6)?;
        let gateway = Gateway {
            ipv4: self.config.gateway4(),
            mac: routed.then_some(GATEWAY_MAC),
        };
        configure_inside(sb, &path, att.ipv4, att.ipv6, &gateway)?;
        if keep_default_size {
            super::packet_size::lower_sandbox_end(&path)
                .map_err(link_err(sb, "set eth0 to its bridge's packet size"))?;
        }
        if routed {
            self.drop_multicast_route(sb, &att.host_iface, index)?;
        }
        Ok(())
    }

    /// The host's side of a sandbox's link. Returns whether the sandbox's
    /// own end has to keep the kernel's default packet size (its bridge
    /// passes no more; see `packet_size`).
    fn configure_host_side(
        &mut self,
        sb: &Sandbox,
        index: u32,
        ipv4: Ipv4Addr,
        ipv6: Ipv6Addr,
    ) -> Result<bool, EngineError> {
        let iface = sb
            .attachment
            .as_ref()
            .map(|a| a.host_iface.clone())
            .unwrap_or_default();
        if self.config.network.mode == Mode::Bridge {
            return self.join_bridge(sb, &iface, index, ipv4);
        }
        // The host never takes router advertisements or redirects from a sandbox.
        for key in [
            format!("net/ipv6/conf/{iface}/accept_ra"),
            format!("net/ipv6/conf/{iface}/accept_redirects"),
            format!("net/ipv4/conf/{iface}/accept_redirects"),
            format!("net/ipv4/conf/{iface}/send_redirects"),
        ] {
            palisade_link::set_sysctl(&key, "0").map_err(link_err(sb, format!("set {key}")))?;
        }
        // The host end needs no link-local address of its own: the gateway
        // fe80::1 is added without duplicate address detection.
        self.rtnl
            .disable_ipv6_autoconf_address(index)
            .map_err(link_err(
                sb,
                "turn off the automatic IPv6 link-local address",
            ))?;
        match sb.kind {
            SandboxKind::Netns => {
                // The gateway addresses are not on the host end: the
                // sandbox has the gateway's MAC pinned (configure_inside),
                // and the host has the sandbox's. The same address on
                // every host end costs the kernel a walk over all of them
                // for each one added or removed (IPv4 local route aliases,
                // the IPv6 address hash chain, fe80::1's local route), and
                // ARP or neighbour discovery have nothing to resolve.
                self.rtnl
                    .set_up(index)
                    .map_err(link_err(sb, "bring the interface up"))?;
                let mac = sb.attachment.as_ref().map(|a| a.mac.0).unwrap_or_default();
                for (dest, len) in [(IpAddr::V4(ipv4), 32), (IpAddr::V6(ipv6), 128)] {
                    self.route_to_sandbox(sb, index, dest, len, None)?;
                    self.rtnl
                        .add_permanent_neighbour(index, dest, mac)
                        .map_err(link_err(sb, format!("pin the sandbox's MAC for {dest}")))?;
                }
            }
            _ => {
                // A tap's guest configures itself and resolves the gateway
                // with ARP and neighbour discovery: the tap carries both
                // gateway addresses.
                let gw4 = self.config.gateway4();
                self.rtnl
                    .add_address(index, IpAddr::V4(gw4), 32)
                    .map_err(link_err(sb, "add the IPv4 gateway address"))?;
                // fe80::1/128 without a prefix route: the kernel then adds
                // one route for it (the local one) instead of three, and
                // every IPv6 route in this namespace is walked each time a
                // sandbox link comes up (see docs/benchmarks.md).
                self.rtnl
                    .add_address_without_prefix_route(index, IpAddr::V6(GATEWAY6), 128)
                    .map_err(link_err(sb, "add the IPv6 gateway address"))?;
                self.rtnl
                    .set_up(index)
                    .map_err(link_err(sb, "bring the interface up"))?;
                for (dest, len, source) in [
                    (IpAddr::V4(ipv4), 32, Some(IpAddr::V4(gw4))),
                    (IpAddr::V6(ipv6), 128, None),
                ] {
                    self.route_to_sandbox(sb, index, dest, len, source)?;
                }
            }
        }
        Ok(false)
    }

    /// Bridge mode: the host end becomes an isolated port of the sandbox's
    /// bridge, with IPv6 off, that is sent only frames for the sandbox's MAC
    /// (a static entry of the bridge), and the host pins the sandbox's
    /// addresses there. A port passes frames to its bridge below layer 3,
    /// so it needs no address, no route and no other sysctl of its own;
    /// with IPv6 on, each port would get an `ff00::/8` route, and every port
    /// coming up or going down makes the kernel walk all the IPv6 routes of
    /// the host (docs/benchmarks.md). With IPv6 off the kernel skips that
    /// walk for the port coming up, and the routes it walks on the way down
    /// are the bridges' few.
    fn join_bridge(
        &mut self,
        sb: &Sandbox,
        iface: &str,
        index: u32,
        ipv4: Ipv4Addr,
    ) -> Result<bool, EngineError> {
        let key = format!("net/ipv6/conf/{iface}/disable_ipv6");
        palisade_link::set_sysctl(&key, "1").map_err(link_err(sb, format!("set {key}")))?;
        let shard =
            self.config
                .network
                .bridge_shard(ipv4)
                .ok_or_else(|| EngineError::InvalidRequest {
                    sandbox: sb.name.to_string(),
                    why: format!("its address {ipv4} is outside network.subnet"),
                })?;
        let bridge = self.ensure_bridge_shard(sb, &shard)?;
        let big_tcp = self.config.network.big_tcp;
        // A tap passes 64 KiB, and so does its bridge once it is a port.
        let tap_lowers_bridge = big_tcp
            && sb.kind == SandboxKind::Tap
            && self.bridge_passes_big_packets(bridge, &shard)?;
        self.rtnl.set_master(index, bridge).map_err(|e| {
            let step = if e.errno() == Some(libc::EXFULL) {
                format!(
                    "attach to bridge {}: it is full (a Linux bridge takes at most \
                     {BRIDGE_MAX_PORTS} ports)",
                    shard.iface
                )
            } else {
                format!("attach to bridge {}", shard.iface)
            };
            link_err(sb, step)(e)
        })?;
        let keep_default_size = if big_tcp && sb.kind == SandboxKind::Netns {
            !self.let_bridge_pass_big_packets(bridge, &shard)?
        } else {
            false
        };
        if tap_lowers_bridge {
            self.lower_veths_on_bridge(&shard)?;
        }
        // The entry first: `init` takes a port with the settings for one
        // that has its entry.
        let mac = sb.attachment.as_ref().map(|a| a.mac.0).unwrap_or_default();
        self.rtnl
            .add_static_bridge_entry(index, mac)
            .map_err(link_err(
                sb,
                format!(
                    "add its MAC to bridge {}'s forwarding database",
                    shard.iface
                ),
            ))?;
        // Settings while the port is down, then up on its own: settings
        // changed on a link that is up make the kernel send one more link
        // notification, and each walks every namespace id of the host.
        self.rtnl
            .set_isolated_port(index)
            .map_err(link_err(sb, "make the interface an isolated port"))?;
        self.rtnl
            .set_up(index)
            .map_err(link_err(sb, "bring the interface up"))?;
        // The host's entries for the sandbox's addresses are pinned to its
        // MAC: learnt ones, a neighbour advertisement from another sandbox
        // on the bridge could override (the port's anti-spoofing checks an
        // advertisement's source, not the address it claims).
        for ip in bridge_neighbours(sb) {
            self.rtnl
                .add_permanent_neighbour(bridge, ip, mac)
                .map_err(link_err(sb, format!("pin {ip} on bridge {}", shard.iface)))?;
        }
        Ok(keep_default_size)
    }

    /// Runs a bridge's idempotent set-up again (`init`): the check in
    /// [`Engine::ensure_bridge_shard`] sees only its IPv4 route.
    pub(super) fn set_up_bridge_again(
        &mut self,
        sb: &Sandbox,
        bridge: u32,
        shard: &BridgeShard,
    ) -> Result<(), EngineError> {
        let gateway4 = self.config.gateway4();
        set_up_bridge(&mut self.rtnl, bridge, shard, gateway4)
            .map_err(link_err(sb, format!("set up bridge {}", shard.iface)))
    }

    /// Bridge mode: removes the pins [`Engine::join_bridge`] made, if the
    /// bridge is there.
    fn unpin_from_bridge(&mut self, sb: &Sandbox) -> Result<(), EngineError> {
        let Some(att) = &sb.attachment else {
            return Ok(());
        };
        let Some(shard) = self.config.network.bridge_shard(att.ipv4) else {
            return Ok(());
        };
        let Some(bridge) = self
            .rtnl
            .link_index(&shard.iface)
            .map_err(link_err(sb, format!("look up bridge {}", shard.iface)))?
        else {
            return Ok(());
        };
        for ip in bridge_neighbours(sb) {
            self.rtnl.del_neighbour(bridge, ip).map_err(link_err(
                sb,
                format!("unpin {ip} from bridge {}", shard.iface),
            ))?;
        }
        Ok(())
    }

    /// The bridge that holds `shard`'s slice of the pools, made on first
    /// use. `palisade0` is made by `init` ([`Engine::ensure_host`]) and
    /// routes the whole pools; another bridge has the gateway addresses
    /// without prefix routes and routes its own slices, more specific.
    ///
    /// A bridge whose slice the host does not route to it (its set-up was
    /// interrupted) is set up again: every step is idempotent. Checking
    /// costs one IPv4 route lookup.
    pub(super) fn ensure_bridge_shard(
        &mut self,
        sb: &Sandbox,
        shard: &BridgeShard,
    ) -> Result<u32, EngineError> {
        let name = &shard.iface;
        let found = self
            .rtnl
            .link_index(name)
            .map_err(link_err(sb, format!("look up bridge {name}")))?;
        if shard.index == 0 {
            return found.ok_or_else(|| EngineError::InvalidRequest {
                sandbox: sb.name.to_string(),
                why: format!("bridge {BRIDGE_IFACE} is missing; run palisade init"),
            });
        }
        if let Some(index) = found {
            // IPv4: an IPv6 lookup's answer carries a source address the
            // kernel picks with a walk over every interface of the host.
            let routed_to = self
                .rtnl
                .route_oif(IpAddr::V4(shard.slice4.network()))
                .map_err(link_err(sb, format!("look up the route to bridge {name}")))?;
            if routed_to == Some(index) {
                return Ok(index);
            }
        }
        let index = match found {
            Some(index) => index,
            None => self
                .rtnl
                .create_bridge(name, Some(GATEWAY_MAC.0))
                .map_err(link_err(sb, format!("create bridge {name}")))?,
        };
        faults::point("after-bridge")?;
        let gateway4 = self.config.gateway4();
        set_up_bridge(&mut self.rtnl, index, shard, gateway4)
            .map_err(link_err(sb, format!("set up bridge {name}")))?;
        Ok(index)
    }

    /// Deletes the IPv6 multicast route the kernel gives a routed host end
    /// as its link comes up: with one per sandbox, every link that comes up
    /// or goes down would walk them all (see docs/benchmarks.md). The host
    /// sends no multicast there: both sides' neighbours are pinned.
    ///
    /// The kernel adds the route once the link's carrier change is
    /// processed, which reading the link state forces (it synchronises the
    /// link watch for that device). So: once both ends are up.
    fn drop_multicast_route(
        &mut self,
        sb: &Sandbox,
        iface: &str,
        index: u32,
    ) -> Result<(), EngineError> {
        self.rtnl
            .sync_link_state(iface)
            .map_err(link_err(sb, "wait for the link to come up"))?;
        self.rtnl
            .del_multicast_route(index)
            .map_err(link_err(sb, "delete the link's IPv6 multicast route"))?;
        Ok(())
    }

    /// The host's route to one of the sandbox's addresses over its link.
    fn route_to_sandbox(
        &mut self,
        sb: &Sandbox,
        index: u32,
        dest: IpAddr,
        len: u8,
        source: Option<IpAddr>,
    ) -> Result<(), EngineError> {
        self.rtnl
            .add_route(&RouteSpec {
                dest,
                prefix_len: len,
                oif: index,
                gateway: None,
                onlink: false,
                source,
            })
            .map_err(link_err(sb, format!("route {dest}/{len}")))
    }

    /// Removes the sandbox's interface and, if palisade made it, its
    /// namespace. Idempotent: what is already gone is not an error.
    ///
    /// A veth is retired rather than deleted: its host end waits for
    /// [`Engine::reap_retired_links`], which deletes all of them in one
    /// request. Deleting a device one by one makes the kernel wait for RCU
    /// each time, 20-40 ms here; see docs/benchmarks.md. A retired host end keeps its `pal-`
    /// name, so the table's guard still drops whatever reaches it, and the
    /// name is never handed out again (ids are not reused). Inside an
    /// adopted namespace the peer is renamed, so that the runtime can attach
    /// an `eth0` there again at once. Taps are deleted at once: their VMM
    /// may still hold them open.
    ///
    /// In bridge mode, a veth in a namespace palisade made is left up with
    /// nothing of its own on the bridge (no pins, no elements: the bridge
    /// drops all it sends), to die with the namespace in the kernel's
    /// clean-up; setting it down would cost a notification walking every
    /// namespace id of the host and the bridge's port-down work, 0.6 ms at
    /// 10,000 (docs/benchmarks.md). Should a process keep that namespace
    /// alive, the reap sets it down and deletes it (attack 16). Otherwise
    /// the host end is set down into the group at once, and
    /// an adopted namespace's peer is set down after it: the other way
    /// round, the host end would see its carrier go while still up, one
    /// more notification walking every namespace id of the host (detach at
    /// 10,000: 0.87-0.97 ms against 1.20-1.30; docs/decisions.md). In
    /// routed mode no link of the host changes state: each change costs the
    /// kernel a walk of every IPv6 route of the host (docs/benchmarks.md).
    /// The host's routes to the sandbox are deleted, an adopted namespace's
    /// peer is stripped of its addresses and routes rather than set down
    /// (its carrier change would be a walk), and the host end is left up
    /// until the reap sets it down into the group: with its routes and
    /// policy gone nothing is routed to it and the guard drops all it sends.
    ///
    /// Returns what was done with the veth, for the store and the reap.
    pub(super) fn detach<'sb>(
        &mut self,
        sb: &'sb Sandbox,
        netns_created: bool,
    ) -> Result<RetiredLink<'sb>, EngineError> {
        let mut retired = RetiredLink::None;
        if let Some(att) = &sb.attachment {
            match sb.kind {
                SandboxKind::Netns if self.config.network.mode == Mode::Routed => {
                    if !netns_created {
                        retire_peer(sb, &att.host_iface, PeerRetirement::Strip)?;
                    }
                    if self.unroute_sandbox(sb, &att.host_iface)? {
                        retired = RetiredLink::LeftUp(&att.host_iface);
                    }
                }
                SandboxKind::Netns if netns_created => {
                    self.unpin_from_bridge(sb)?;
                    if self
                        .rtnl
                        .link_index(&att.host_iface)
                        .map_err(link_err(sb, format!("look up {}", att.host_iface)))?
                        .is_some()
                    {
                        retired = RetiredLink::LeftUp(&att.host_iface);
                    }
                }
                SandboxKind::Netns => {
                    self.unpin_from_bridge(sb)?;
                    if self
                        .rtnl
                        .retire_link(&att.host_iface, RETIRED_LINK_GROUP)
                        .map_err(link_err(sb, format!("retire {}", att.host_iface)))?
                    {
                        retired = RetiredLink::SetDown;
                    }
                    retire_peer(sb, &att.host_iface, PeerRetirement::SetDown)?;
                }
                _ => {
                    if self.config.network.mode == Mode::Bridge {
                        self.unpin_from_bridge(sb)?;
                    }
                    self.rtnl
                        .delete_link(&att.host_iface)
                        .map_err(link_err(sb, format!("delete {}", att.host_iface)))?;
                }
            }
        }
        if sb.kind == SandboxKind::Netns && netns_created {
            palisade_link::delete_named_netns_releasing_elsewhere(sb.name.as_str())
                .map_err(link_err(sb, "delete network namespace"))?;
        }
        Ok(retired)
    }

    /// Deletes the host's routes to a routed sandbox over its host end
    /// `iface`, if both are there. Returns whether the host end exists.
    fn unroute_sandbox(&mut self, sb: &Sandbox, iface: &str) -> Result<bool, EngineError> {
        let Some(att) = &sb.attachment else {
            return Ok(false);
        };
        let Some(index) = self
            .rtnl
            .link_index(iface)
            .map_err(link_err(sb, format!("look up {iface}")))?
        else {
            return Ok(false);
        };
        for (dest, len) in [(IpAddr::V4(att.ipv4), 32), (IpAddr::V6(att.ipv6), 128)] {
            self.rtnl
                .del_route(dest, len, index)
                .map_err(link_err(sb, format!("delete the route to {dest}/{len}")))?;
        }
        Ok(true)
    }

    /// How many retired interfaces wait to be reaped (as counted by
    /// destroys since the last reap).
    pub fn retired_links_waiting(&self) -> Result<u64, EngineError> {
        Ok(self.store.retired_links()?)
    }

    /// Deletes every retired interface (and its peer) in one request, after
    /// setting those left up down into the group. Returns whether there
    /// were any. Always asks the kernel to delete the group, so that it
    /// also takes what an interrupted destroy left there unrecorded
    /// (`init`, `palisade reap`).
    pub fn reap_retired_links(&mut self) -> Result<bool, EngineError> {
        self.reap(true)
    }

    /// Like [`Engine::reap_retired_links`], but asks the kernel to delete
    /// the group only when a destroy since the last reap put an interface
    /// there: the deletion walks every interface of the host under the
    /// routing lock to find the group's (1.5 ms for 20,000 interfaces, even
    /// with the group empty), and the veths of namespaces palisade made
    /// have mostly gone with their namespaces by then. For the batch of
    /// destroys and the daemon's reaper.
    pub fn reap_waiting_links(&mut self) -> Result<bool, EngineError> {
        self.reap(false)
    }

    fn reap(&mut self, sweep: bool) -> Result<bool, EngineError> {
        let left_up = self.store.links_left_up()?;
        // Every retired link counts once; those set down at their destroy
        // are in the group already. (A name left up twice counts twice but
        // is listed once, which errs towards deleting.)
        let set_down = self
            .store
            .retired_links()?
            .saturating_sub(left_up.len() as u64);
        let mut in_group = set_down > 0;
        for name in &left_up {
            // Gone already (with a namespace palisade deleted): nothing to do.
            in_group |= self
                .rtnl
                .retire_link(name, RETIRED_LINK_GROUP)
                .map_err(host_err(format!("retire {name}")))?;
        }
        let reaped = if sweep || in_group {
            self.rtnl
                .delete_group(RETIRED_LINK_GROUP)
                .map_err(host_err("delete the retired sandbox interfaces"))?
        } else {
            false
        };
        self.store.reset_retired_links()?;
        Ok(reaped)
    }

    /// Open rtnetlink handle, for reconcile.
    pub(super) fn rtnl(&mut self) -> &mut Rtnl {
        &mut self.rtnl
    }
}

/// Interface group of retired sandbox veths, deleted together by
/// [`Engine::reap_retired_links`] ("pald" in ASCII: unlikely to be an
/// operator's group).
pub const RETIRED_LINK_GROUP: u32 = 0x7061_6c64;

/// Ports a Linux bridge takes (`BR_MAX_PORTS` less the reserved port 0):
/// the most sandboxes bridge mode can hold at once.
pub const BRIDGE_MAX_PORTS: usize = 1023;

/// How many retired veths wait before a destroy deletes them all. The
/// deletion's fixed part (two walks of every interface of the host to find
/// the group, and the RCU grace periods of one unregistration) is shared
/// by the batch: at 10,000 sandboxes a batch of 64 cost about 58 ms, of
/// which about 37 ms fixed (docs/decisions.md, fifteenth pass). In bridge
/// mode a retired veth keeps its bridge port until then: 512 sandboxes and
/// 128 retired still fit in a bridge's 1,023 ports.
pub const RETIRED_LINKS_BATCH: u64 = 128;

// A full bridge and a full batch of retired ports fit in a bridge.
const _: () = assert!(
    palisade_core::bridge_shard::MAX_SANDBOXES_PER_BRIDGE as usize + RETIRED_LINKS_BATCH as usize
        <= BRIDGE_MAX_PORTS
);

/// How the sandbox's end of a retired veth is made inert.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PeerRetirement {
    /// Set down: nothing passes, and its addresses and routes go with it.
    SetDown,
    /// Left up with its addresses and routes deleted, so that the host end
    /// sees no carrier change of its peer (routed mode; see
    /// [`Engine::detach`]).
    Strip,
}

/// In an adopted namespace, makes the sandbox's `eth0` inert and renames it
/// `gone-<host end>` until it is reaped. Nothing to do if the namespace or
/// the interface is gone (the runtime deleted the namespace first).
fn retire_peer(sb: &Sandbox, host_iface: &str, how: PeerRetirement) -> Result<(), EngineError> {
    let path = palisade_link::netns_path(sb.name.as_str());
    if !palisade_link::named_netns_exists(sb.name.as_str()) {
        return Ok(());
    }
    let mut rtnl = Rtnl::open_in(&path).map_err(link_err(sb, "open rtnetlink in the namespace"))?;
    let Some(eth) = rtnl
        .link_index(SANDBOX_IFACE)
        .map_err(link_err(sb, "look up eth0"))?
    else {
        return Ok(());
    };
    match how {
        PeerRetirement::SetDown => rtnl.set_down(eth).map_err(link_err(sb, "set eth0 down"))?,
        PeerRetirement::Strip => strip_peer(sb, &mut rtnl, eth)?,
    }
    let suffix = host_iface
        .strip_prefix(palisade_core::names::IFACE_PREFIX)
        .unwrap_or(host_iface);
    let retired_name: String = format!("gone-{suffix}").chars().take(15).collect();
    rtnl.rename_link(eth, &retired_name)
        .map_err(link_err(sb, format!("rename eth0 to {retired_name}")))
}

/// Deletes the default routes and the addresses that [`configure_inside`]
/// gave the sandbox's `eth0` (index `eth`), so that the namespace can get a
/// new `eth0` with the same ones and nothing is left to use the old link.
fn strip_peer(sb: &Sandbox, rtnl: &mut Rtnl, eth: u32) -> Result<(), EngineError> {
    let Some(att) = &sb.attachment else {
        return Ok(());
    };
    for any in [
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    ] {
        rtnl.del_route(any, 0, eth).map_err(link_err(
            sb,
            format!("delete eth0's default route ({any}/0)"),
        ))?;
    }
    for (addr, len) in [
        (IpAddr::V4(att.ipv4), 32),
        (IpAddr::V6(att.ipv6), 128),
        (IpAddr::V6(att.link_local6()), 64),
    ] {
        rtnl.del_address(eth, addr, len)
            .map_err(link_err(sb, format!("delete eth0's address {addr}/{len}")))?;
    }
    Ok(())
}

/// The sandbox's addresses the host pins on its bridge: both it routes to,
/// and the link-local one neighbour discovery uses.
pub(super) fn bridge_neighbours(sb: &Sandbox) -> Vec<IpAddr> {
    sb.attachment
        .as_ref()
        .map(|a| {
            vec![
                IpAddr::V4(a.ipv4),
                IpAddr::V6(a.ipv6),
                IpAddr::V6(a.link_local6()),
            ]
        })
        .unwrap_or_default()
}

/// Addresses, sysctls and routes of a bridge other than `palisade0`
/// (idempotent).
fn set_up_bridge(
    rtnl: &mut Rtnl,
    index: u32,
    shard: &BridgeShard,
    gateway4: Ipv4Addr,
) -> Result<(), LinkError> {
    let name = &shard.iface;
    give_bridge_its_mac(rtnl, index)?;
    rtnl.add_address_without_prefix_route(index, IpAddr::V4(gateway4), 32)?;
    rtnl.add_address(index, IpAddr::V6(GATEWAY6), 64)?;
    for key in [
        format!("net/ipv4/conf/{name}/send_redirects"),
        format!("net/ipv6/conf/{name}/accept_ra"),
    ] {
        palisade_link::set_sysctl(&key, "0")?;
    }
    rtnl.set_up(index)?;
    rtnl.add_route(&RouteSpec {
        dest: IpAddr::V6(shard.slice6.network()),
        prefix_len: shard.slice6.prefix_len(),
        oif: index,
        gateway: None,
        onlink: false,
        source: None,
    })?;
    // Last: the route `ensure_bridge_shard` checks for.
    rtnl.add_route(&RouteSpec {
        dest: IpAddr::V4(shard.slice4.network()),
        prefix_len: shard.slice4.prefix_len(),
        oif: index,
        gateway: None,
        onlink: false,
        source: Some(IpAddr::V4(gateway4)),
    })
}

/// Gives a bridge palisade's fixed MAC if it has another (one made before
/// bridges had one). A bridge's own address otherwise follows its lowest
/// port's, and each change of it makes the kernel flush every neighbour
/// entry on the bridge, the pinned ones included. Only when it differs:
/// setting any address, even the same, flushes them too.
fn give_bridge_its_mac(rtnl: &mut Rtnl, index: u32) -> Result<(), LinkError> {
    if rtnl.link_by_index(index)?.and_then(|l| l.mac) != Some(GATEWAY_MAC.0) {
        rtnl.set_mac(index, GATEWAY_MAC.0)?;
    }
    Ok(())
}

/// The gateway as a sandbox sees it.
struct Gateway {
    ipv4: Ipv4Addr,
    /// Pinned as the MAC of both gateway addresses (routed mode); `None`
    /// leaves them to ARP and neighbour discovery (bridge mode).
    mac: Option<MacAddr>,
}

/// Inside the sandbox's namespace: loopback up, its addresses (/32 and
/// /128, so every destination is off-link and goes through the gateway),
/// and default routes via the gateway.
fn configure_inside(
    sb: &Sandbox,
    netns: &std::path::Path,
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
    gateway: &Gateway,
) -> Result<(), EngineError> {
    let gateway4 = gateway.ipv4;
    let link_local6 = sb
        .attachment
        .as_ref()
        .map(|a| a.link_local6())
        .unwrap_or(Ipv6Addr::UNSPECIFIED);
    let mut rtnl = Rtnl::open_in(netns).map_err(link_err(sb, "open rtnetlink in the namespace"))?;
    if let Some(lo) = rtnl.link_index("lo").map_err(link_err(sb, "look up lo"))? {
        rtnl.set_up(lo).map_err(link_err(sb, "bring lo up"))?;
    }
    let eth = rtnl
        .link_index(SANDBOX_IFACE)
        .map_err(link_err(sb, "look up eth0"))?
        .ok_or_else(|| EngineError::InvalidRequest {
            sandbox: sb.name.to_string(),
            why: "eth0 missing inside the namespace right after creation".into(),
        })?;
    rtnl.add_address(eth, IpAddr::V4(ipv4), 32)
        .map_err(link_err(sb, "add IPv4 address"))?;
    rtnl.add_address(eth, IpAddr::V6(ipv6), 128)
        .map_err(link_err(sb, "add IPv6 address"))?;
    // The kernel's own link-local address would be tentative for a second
    // of duplicate address detection (the link is point to point with the
    // host: nothing can duplicate it), and IPv6 needs it for neighbour
    // discovery with the gateway. So palisade adds the same EUI-64 address
    // itself, without DAD; over netlink, not /proc/sys, whose lookups slow
    // down with every namespace that makes one.
    rtnl.disable_ipv6_autoconf_address(eth).map_err(link_err(
        sb,
        "turn off the automatic IPv6 link-local address",
    ))?;
    rtnl.add_address(eth, IpAddr::V6(link_local6), 64)
        .map_err(link_err(sb, "add the IPv6 link-local address"))?;
    rtnl.set_up(eth).map_err(link_err(sb, "bring eth0 up"))?;
    if let Some(mac) = gateway.mac {
        for gw in [IpAddr::V4(gateway4), IpAddr::V6(GATEWAY6)] {
            rtnl.add_permanent_neighbour(eth, gw, mac.0)
                .map_err(link_err(sb, format!("pin the gateway's MAC for {gw}")))?;
        }
    }
    rtnl.add_route(&RouteSpec {
        dest: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        prefix_len: 0,
        oif: eth,
        gateway: Some(IpAddr::V4(gateway4)),
        onlink: true,
        source: None,
    })
    .map_err(link_err(sb, "add IPv4 default route"))?;
    rtnl.add_route(&RouteSpec {
        dest: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        prefix_len: 0,
        oif: eth,
        gateway: Some(IpAddr::V6(GATEWAY6)),
        onlink: false,
        source: None,
    })
    .map_err(link_err(sb, "add IPv6 default route"))?;
    Ok(())
}
