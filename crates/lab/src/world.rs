//! The world: everything beyond the lab host's uplink.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;

use palisade_link::{open_netns, run_in_netns, set_sysctl, RouteSpec, Rtnl, VethSpec};

use crate::error::{Context, Result};
use crate::lab::{bring_up_lo, Lab};
use crate::netns::NetnsGuard;

/// The namespace behind the lab's uplink: the internet and every forbidden
/// destination in one place.
///
/// All the stand-in destinations are addresses on the world's `lo`, so a
/// listener bound to one of them receives any packet that escapes the
/// sandbox towards it, and records the source address it arrived with.
/// The world routes the sandbox ranges (and everything else) back to the
/// lab and has `rp_filter` off: if palisade failed to masquerade or let a
/// spoofed packet out, the packet still arrives and the test sees the
/// offending source address instead of a silent drop.
#[derive(Debug)]
pub struct World {
    ns: Arc<NetnsGuard>,
}

impl World {
    /// Name of the lab's uplink interface.
    pub const LAB_IFACE: &'static str = "up0";
    /// Name of the world's interface facing the lab.
    pub const WORLD_IFACE: &'static str = "eth0";
    /// MAC address of the lab's uplink (`up0`): the next hop for frames
    /// forged in the world, and recognisable in captures.
    pub const LAB_MAC: [u8; 6] = [0x02, 0x70, 0x6c, 0x61, 0x62, 0x01];
    /// MAC address of the world's `eth0`: the lab's gateway MAC.
    pub const WORLD_MAC: [u8; 6] = [0x02, 0x70, 0x6c, 0x61, 0x62, 0x02];

    /// The lab's uplink address, its source for traffic to the world.
    pub const LAB4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    /// The world's address on the uplink: the lab's IPv4 gateway.
    pub const WORLD4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    /// The lab's IPv6 uplink address.
    pub const LAB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
    /// The world's IPv6 uplink address: the lab's IPv6 gateway.
    pub const WORLD6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
    /// Prefix length of the uplink subnets (IPv4, IPv6).
    pub const UPLINK_PREFIX: (u8, u8) = (24, 64);

    /// A public internet host.
    pub const INTERNET4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
    /// The cloud metadata service.
    pub const METADATA4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
    /// A host in 10.0.0.0/8.
    pub const PRIVATE10: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 10);
    /// A host in 172.16.0.0/12.
    pub const PRIVATE172: Ipv4Addr = Ipv4Addr::new(172, 16, 5, 10);
    /// A host in 192.168.0.0/16.
    pub const PRIVATE192: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 10);
    /// A host in the carrier-grade NAT range 100.64.0.0/10.
    pub const CGNAT4: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 10);
    /// A public IPv6 internet host.
    pub const INTERNET6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0x10);
    /// The IPv6 metadata service (as on AWS).
    pub const METADATA6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    /// A host in the unique-local range fc00::/7.
    pub const ULA6: Ipv6Addr = Ipv6Addr::new(0xfd99, 0, 0, 0, 0, 0, 0, 0x10);

    /// The sandbox ranges routed back to the lab explicitly (IPv4, IPv6),
    /// besides the default routes.
    pub const RETURN_ROUTES: [(IpAddr, u8); 2] = [
        (IpAddr::V4(Ipv4Addr::new(10, 200, 0, 0)), 16),
        (
            IpAddr::V6(Ipv6Addr::new(0xfd70, 0x616c, 0x6973, 0, 0, 0, 0, 0)),
            48,
        ),
    ];

    /// Every destination the world answers for, public ones first.
    pub fn destinations() -> Vec<IpAddr> {
        vec![
            Self::INTERNET4.into(),
            Self::INTERNET6.into(),
            Self::METADATA4.into(),
            Self::METADATA6.into(),
            Self::PRIVATE10.into(),
            Self::PRIVATE172.into(),
            Self::PRIVATE192.into(),
            Self::CGNAT4.into(),
            Self::ULA6.into(),
        ]
    }

    /// Destinations a sandbox must never reach (everything but the two
    /// internet hosts).
    pub fn forbidden() -> Vec<IpAddr> {
        Self::destinations()
            .into_iter()
            .filter(|a| *a != IpAddr::from(Self::INTERNET4) && *a != IpAddr::from(Self::INTERNET6))
            .collect()
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        self.ns.name()
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        self.ns.path()
    }

    /// Run `f` on a thread inside the world namespace.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        run_in_netns(&self.path(), f).ctx(|| format!("enter world {}", self.name()))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // The lab holds another handle on the guard; delete now rather
        // than when the lab goes, as documented on `Lab::add_world`.
        if let Err(e) = self.ns.delete() {
            eprintln!("palisade-lab: LEAK: {e}");
        }
    }
}

impl Lab {
    /// Create the [`World`] and wire it to the lab's uplink `up0`, with
    /// default routes in the lab pointing at it. One world per lab (the
    /// second call fails: `up0` exists).
    ///
    /// The world namespace is deleted when the lab is dropped (or when the
    /// returned `World` is, whichever comes first).
    pub fn add_world(&self) -> Result<World> {
        let ns = Arc::new(NetnsGuard::create_unique('w')?);
        // Registered before anything can fail, so no error path leaks it.
        self.register(Arc::clone(&ns));
        let wname = ns.name().to_string();
        let lname = self.name().to_string();
        let wpath = ns.path();

        let world_fd = open_netns(&wpath).ctx(|| format!("open world {wname}"))?;
        let mut lab =
            Rtnl::open_in(&self.path()).ctx(|| format!("open rtnetlink in lab {lname}"))?;
        let mut world = Rtnl::open_in(&wpath).ctx(|| format!("open rtnetlink in world {wname}"))?;

        let up = lab
            .create_veth(&VethSpec {
                host_name: World::LAB_IFACE.to_string(),
                host_mac: Some(World::LAB_MAC),
                peer_name: World::WORLD_IFACE.to_string(),
                peer_mac: Some(World::WORLD_MAC),
                peer_netns: Some(world_fd.as_fd()),
                big_packets: false,
            })
            .ctx(|| {
                format!(
                    "create veth {} in lab {lname} to world {wname}",
                    World::LAB_IFACE
                )
            })?;
        let eth = world
            .link_index(World::WORLD_IFACE)
            .ctx(|| format!("look up {} in world {wname}", World::WORLD_IFACE))?
            .ok_or_else(|| {
                crate::LabError::Invalid(format!(
                    "veth peer {} did not appear in world {wname}",
                    World::WORLD_IFACE
                ))
            })?;

        // Sysctls first: rp_filter off so escaped spoofed packets are
        // delivered, not dropped; no DAD on the veth ends so IPv6 is usable
        // at once.
        run_in_netns(&wpath, || -> palisade_link::Result<()> {
            for key in [
                "net/ipv4/conf/all/rp_filter",
                "net/ipv4/conf/default/rp_filter",
                "net/ipv4/conf/lo/rp_filter",
                "net/ipv4/conf/eth0/rp_filter",
            ] {
                set_sysctl(key, "0")?;
            }
            set_sysctl("net/ipv6/conf/eth0/accept_dad", "0")
        })
        .and_then(|r| r)
        .ctx(|| format!("set sysctls in world {wname}"))?;
        run_in_netns(&self.path(), || {
            set_sysctl("net/ipv6/conf/up0/accept_dad", "0")
        })
        .and_then(|r| r)
        .ctx(|| format!("set sysctls in lab {lname}"))?;

        // Links and addresses on both sides before any route, so gateways
        // are on-link when the routes are added.
        bring_up_lo(&mut world, &wname)?;
        world
            .set_up(eth)
            .ctx(|| format!("set eth0 up in world {wname}"))?;
        lab.set_up(up)
            .ctx(|| format!("set up0 up in lab {lname}"))?;
        let (p4, p6) = World::UPLINK_PREFIX;
        for (addr, plen) in [
            (IpAddr::from(World::WORLD4), p4),
            (World::WORLD6.into(), p6),
        ] {
            world
                .add_address(eth, addr, plen)
                .ctx(|| format!("add {addr}/{plen} in world {wname}"))?;
        }
        for (addr, plen) in [(IpAddr::from(World::LAB4), p4), (World::LAB6.into(), p6)] {
            lab.add_address(up, addr, plen)
                .ctx(|| format!("add {addr}/{plen} in lab {lname}"))?;
        }
        let wlo = world
            .link_index("lo")
            .ctx(|| format!("look up lo in world {wname}"))?
            .unwrap_or(1);
        for addr in World::destinations() {
            let plen = if addr.is_ipv4() { 32 } else { 128 };
            world
                .add_address(wlo, addr, plen)
                .ctx(|| format!("add {addr}/{plen} to lo in world {wname}"))?;
        }

        let route = |dest: IpAddr, prefix_len: u8, oif: u32, gw: IpAddr| RouteSpec {
            dest,
            prefix_len,
            oif,
            gateway: Some(gw),
            onlink: false,
            source: None,
        };
        let lab_routes = [
            route(Ipv4Addr::UNSPECIFIED.into(), 0, up, World::WORLD4.into()),
            route(Ipv6Addr::UNSPECIFIED.into(), 0, up, World::WORLD6.into()),
        ];
        for r in &lab_routes {
            lab.add_route(r)
                .ctx(|| format!("add default route via {:?} in lab {lname}", r.gateway))?;
        }
        let mut world_routes = vec![
            route(Ipv4Addr::UNSPECIFIED.into(), 0, eth, World::LAB4.into()),
            route(Ipv6Addr::UNSPECIFIED.into(), 0, eth, World::LAB6.into()),
        ];
        for (dest, plen) in World::RETURN_ROUTES {
            let gw = if dest.is_ipv4() {
                IpAddr::from(World::LAB4)
            } else {
                World::LAB6.into()
            };
            world_routes.push(route(dest, plen, eth, gw));
        }
        for r in &world_routes {
            world
                .add_route(r)
                .ctx(|| format!("add route {}/{} in world {wname}", r.dest, r.prefix_len))?;
        }
        Ok(World { ns })
    }
}
