//! The kernel's floor under an attach: the same namespace id, links and
//! routes that palisade's attach makes, made directly over rtnetlink with
//! nothing else (no firewall elements, no sysctls but a bridge port's
//! `disable_ipv6`, no store, no checks). In bridge mode the host end is a port of a bridge of
//! the floor's own, as palisade's are ports of its bridges.
//! Timed on palisade's own lab at each k, just before palisade's timed
//! attaches, so that both see the same host: what palisade's attach costs
//! beyond it is palisade's own work, and what grows with k in the floor is
//! the kernel's.

use crate::series::{median, ms};
use anyhow::{Context, Result};
use palisade_core::config::Mode;
use palisade_link::{RouteSpec, Rtnl, VethSpec};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::time::Instant;

/// The namespace the floor's sandbox ends go into (made untimed, as for
/// palisade's adopted namespaces, and kept for every repetition, as the
/// timed attaches keep the k-th sandbox's).
const NETNS: &str = "floor";
/// The namespace made and deleted by each own-namespace repetition.
const OWN_NETNS: &str = "floor-own";
/// The bridge of the floor's bridge-mode ports.
const BRIDGE: &str = "floor-br";
/// Repetitions the floor's address range holds.
const MAX_REPS: usize = 250;
/// Each repetition asks for an id for its namespace before the veth, as
/// palisade's attach does (`palisade_core::names::netns_id`): the shared
/// namespace gets this one at the first, and the own namespaces ids
/// counting down below it. Below the ids of palisade's sandboxes, above
/// the few the kernel picks itself.
const NETNS_ID_BASE: i32 = 1 << 30;
/// Gateways of the floor's sandbox ends; their addresses are documentation
/// addresses too, outside palisade's pools. No packet is sent.
const GATEWAY4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// Median of `reps` floor attaches, in ms. They are undone together
/// afterwards, untimed, as palisade's retired veths are: a deletion between
/// two of them would leave the kernel's deferred work of freeing a device
/// to the next. The caller lets the kernel settle before timing anything
/// else.
pub fn attach_ms(reps: usize, mode: Mode) -> Result<f64> {
    anyhow::ensure!(
        reps <= MAX_REPS,
        "the kernel floor takes at most {MAX_REPS} repetitions (one address each)"
    );
    let mut host = Rtnl::open()?;
    let bridge = match mode {
        Mode::Routed => None,
        Mode::Bridge => Some(make_bridge(&mut host).context("the floor's bridge")?),
    };
    palisade_link::create_named_netns(NETNS).context("the floor's namespace")?;
    let timed = (0..reps)
        .map(|rep| {
            let (took, assigned) = attach_once(&mut host, NETNS, rep, NETNS_ID_BASE, bridge)?;
            // As for palisade's k-th sandbox, only the first repetition
            // gives the namespace its id; the others are told it has one.
            if assigned != (rep == 0) {
                eprintln!("palisade-bench: warning: the floor's namespace id was assigned: {assigned}, at repetition {rep}");
            }
            Ok(took)
        })
        .collect::<Result<Vec<f64>>>();
    let mut cleaned = Ok(());
    for rep in 0..reps {
        // Both ends go with it; one never made is no error.
        if let Err(e) = host.delete_link(&host_end(rep)) {
            cleaned = Err(e);
        }
    }
    if bridge.is_some() {
        if let Err(e) = host.delete_link(BRIDGE) {
            cleaned = Err(e);
        }
    }
    let namespace = palisade_link::delete_named_netns(NETNS);
    let mut timed = timed?;
    cleaned.context("deleting the floor's veths")?;
    namespace.context("the floor's namespace")?;
    Ok(median(&mut timed))
}

/// Medians of `reps` creates and destroys of a sandbox with its own
/// namespace, in ms: a new named namespace and the floor's attach into it,
/// then the namespace deleted, its veth going with it when the kernel frees
/// it. Back to back, as palisade's are timed, and deleted as palisade does
/// (the last reference dropped on another thread, so that the kernel's
/// clean-up does not preempt the caller).
pub fn own_namespace_ms(reps: usize, mode: Mode) -> Result<(f64, f64)> {
    anyhow::ensure!(
        reps <= MAX_REPS,
        "the kernel floor takes at most {MAX_REPS} repetitions (one address each)"
    );
    let mut host = Rtnl::open()?;
    let bridge = match mode {
        Mode::Routed => None,
        Mode::Bridge => Some(make_bridge(&mut host).context("the floor's bridge")?),
    };
    let (mut create, mut destroy) = (Vec::new(), Vec::new());
    let timed = (|| -> Result<()> {
        for rep in 0..reps {
            let t0 = Instant::now();
            palisade_link::create_named_netns(OWN_NETNS)?;
            let id = NETNS_ID_BASE - 1 - rep as i32;
            let (_, assigned) = attach_once(&mut host, OWN_NETNS, rep, id, bridge)?;
            if !assigned {
                eprintln!(
                    "palisade-bench: warning: the floor's own namespace {rep} kept the kernel's id"
                );
            }
            create.push(ms(t0.elapsed()));
            let t1 = Instant::now();
            palisade_link::delete_named_netns_releasing_elsewhere(OWN_NETNS)?;
            destroy.push(ms(t1.elapsed()));
        }
        Ok(())
    })();
    // What a failed repetition left; the veths go with their namespaces.
    let namespace = palisade_link::delete_named_netns(OWN_NETNS);
    let bridge_deleted = match bridge {
        Some(_) => host.delete_link(BRIDGE).map(|_| ()),
        None => Ok(()),
    };
    timed?;
    namespace.context("the floor's own namespace")?;
    bridge_deleted.context("deleting the floor's bridge")?;
    Ok((median(&mut create), median(&mut destroy)))
}

/// Not a `pal-` name: palisade's reconcile would take it for an orphan.
fn host_end(rep: usize) -> String {
    format!("floor-{rep}")
}

/// A bridge like palisade's, up, with the gateway addresses.
fn make_bridge(host: &mut Rtnl) -> Result<u32> {
    let index = host.create_bridge(BRIDGE, Some(palisade_core::model::GATEWAY_MAC.0))?;
    host.add_address_without_prefix_route(index, IpAddr::V4(GATEWAY4), 32)?;
    host.add_address(index, IpAddr::V6(GATEWAY6), 64)?;
    host.set_up(index)?;
    Ok(index)
}

/// One attach: the namespace `netns` asked for the id `netns_id` on the
/// host (returned: whether it got it), a veth into it, both ends without an automatic
/// IPv6 link-local address (as palisade's), both ends up, the host's /32
/// and /128 routes to the sandbox end (routed), or the host end a port of
/// `bridge` with IPv6 off, then the sandbox end's addresses and default
/// routes.
fn attach_once(
    host: &mut Rtnl,
    netns: &str,
    rep: usize,
    netns_id: i32,
    bridge: Option<u32>,
) -> Result<(f64, bool)> {
    let path = palisade_link::netns_path(netns);
    let ns = palisade_link::open_netns(&path)?;
    let sandbox_end = format!("eth{rep}");
    let host_end = host_end(rep);
    let addr4 = Ipv4Addr::new(192, 0, 2, (2 + rep) as u8);
    let addr6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, (2 + rep) as u16);
    let t0 = Instant::now();
    let assigned = host.assign_netns_id(ns.as_fd(), netns_id)?;
    let index = host.create_veth(&VethSpec {
        host_name: host_end.clone(),
        host_mac: None,
        peer_name: sandbox_end.clone(),
        peer_mac: None,
        peer_netns: Some(ns.as_fd()),
        big_packets: true,
    })?;
    // In palisade's order: the host end up while its peer is down, so that
    // the kernel walks the host's IPv6 routes once, when the carrier comes.
    if let Some(bridge) = bridge {
        palisade_link::set_sysctl(&format!("net/ipv6/conf/{host_end}/disable_ipv6"), "1")?;
        host.set_master(index, bridge)?;
        host.set_up(index)?;
    } else {
        host.disable_ipv6_autoconf_address(index)?;
        host.set_up(index)?;
        for (dest, len) in [(IpAddr::V4(addr4), 32), (IpAddr::V6(addr6), 128)] {
            host.add_route(&RouteSpec {
                dest,
                prefix_len: len,
                oif: index,
                gateway: None,
                onlink: false,
                source: None,
            })?;
        }
    }
    let mut inside = Rtnl::open_in(&path)?;
    let eth = inside
        .link_index(&sandbox_end)?
        .context("the floor's sandbox end right after its creation")?;
    inside.disable_ipv6_autoconf_address(eth)?;
    inside.add_address(eth, IpAddr::V4(addr4), 32)?;
    inside.add_address(eth, IpAddr::V6(addr6), 128)?;
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
    // The link is ready once the kernel has processed the carrier change.
    host.sync_link_state(&host_end)?;
    Ok((ms(t0.elapsed()), assigned))
}
