//! The kernel's floor under an attach: the same links and routes that
//! palisade's routed attach makes, made directly over rtnetlink with
//! nothing else (no firewall elements, no sysctls, no store, no checks).
//! Timed on palisade's own lab at each k, just before palisade's timed
//! attaches, so that both see the same host: what palisade's attach costs
//! beyond it is palisade's own work, and what grows with k in the floor is
//! the kernel's.

use crate::series::{median, ms};
use anyhow::{Context, Result};
use palisade_link::{RouteSpec, Rtnl, VethSpec};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::time::Instant;

/// The namespace the floor's sandbox end goes into (made untimed, as for
/// palisade's adopted namespaces).
const NETNS: &str = "floor";
/// Not a `pal-` name: palisade's reconcile would take it for an orphan.
const HOST_END: &str = "floor-host";
const SANDBOX_END: &str = "eth0";
/// Documentation addresses, outside palisade's pools; no packet is sent.
const ADDR4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const GATEWAY4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// Median of `reps` floor attaches, in ms. Each is undone untimed.
pub fn attach_ms(reps: usize) -> Result<f64> {
    palisade_link::create_named_netns(NETNS).context("the floor's namespace")?;
    let timed = (0..reps)
        .map(|_| attach_once())
        .collect::<Result<Vec<f64>>>();
    let cleaned = palisade_link::delete_named_netns(NETNS).context("the floor's namespace");
    let mut timed = timed?;
    cleaned?;
    Ok(median(&mut timed))
}

/// One attach: a veth into the namespace, the host end without an IPv6
/// link-local address (as palisade's), both ends up, the sandbox end's
/// addresses and default routes, the host's /32 and /128 routes to it.
fn attach_once() -> Result<f64> {
    let path = palisade_link::netns_path(NETNS);
    let ns = palisade_link::open_netns(&path)?;
    let mut host = Rtnl::open()?;
    let t0 = Instant::now();
    let index = host.create_veth(&VethSpec {
        host_name: HOST_END.into(),
        host_mac: None,
        peer_name: SANDBOX_END.into(),
        peer_mac: None,
        peer_netns: Some(ns.as_fd()),
    })?;
    let mut inside = Rtnl::open_in(&path)?;
    let eth = inside
        .link_index(SANDBOX_END)?
        .context("the floor's eth0 right after its creation")?;
    inside.add_address(eth, IpAddr::V4(ADDR4), 32)?;
    inside.add_address(eth, IpAddr::V6(ADDR6), 128)?;
    inside.set_up(eth)?;
    for (dest, gateway, onlink) in [
        (
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(GATEWAY4),
            true,
        ),
        (
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            IpAddr::V6(GATEWAY6),
            false,
        ),
    ] {
        inside.add_route(&RouteSpec {
            dest,
            prefix_len: 0,
            oif: eth,
            gateway: Some(gateway),
            onlink,
            source: None,
        })?;
    }
    host.disable_ipv6_autoconf_address(index)?;
    host.set_up(index)?;
    for (dest, len) in [(IpAddr::V4(ADDR4), 32), (IpAddr::V6(ADDR6), 128)] {
        host.add_route(&RouteSpec {
            dest,
            prefix_len: len,
            oif: index,
            gateway: None,
            onlink: false,
            source: None,
        })?;
    }
    let took = ms(t0.elapsed());
    // Both ends go with it.
    host.delete_link(HOST_END)?;
    Ok(took)
}
