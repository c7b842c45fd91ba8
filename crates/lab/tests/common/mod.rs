//! Shared test helper: a small extra namespace veth-linked to the lab.

use std::net::IpAddr;
use std::os::fd::AsFd;

use palisade_lab::{Lab, NetnsGuard};
use palisade_link::{open_netns, RouteSpec, Rtnl, VethSpec};

/// Create a namespace whose `eth0` is linked to `lab_iface` in the lab.
/// `addrs` are `(lab side, far side, prefix)`; with `default_via_lab`, the
/// far side gets default routes via the lab-side addresses.
pub fn linked_netns(
    lab: &Lab,
    tag: char,
    lab_iface: &str,
    addrs: &[(IpAddr, IpAddr, u8)],
    default_via_lab: bool,
) -> NetnsGuard {
    let ns = NetnsGuard::create_unique(tag).expect("extra netns");
    let fd = open_netns(&ns.path()).unwrap();
    let mut l = Rtnl::open_in(&lab.path()).unwrap();
    let mut a = Rtnl::open_in(&ns.path()).unwrap();
    let host = l
        .create_veth(&VethSpec {
            host_name: lab_iface.into(),
            host_mac: None,
            peer_name: "eth0".into(),
            peer_mac: None,
            peer_netns: Some(fd.as_fd()),
            big_packets: false,
        })
        .unwrap();
    let eth = a.link_index("eth0").unwrap().unwrap();
    let lo = a.link_index("lo").unwrap().unwrap();
    a.set_up(lo).unwrap();
    l.set_up(host).unwrap();
    a.set_up(eth).unwrap();
    for &(lab_side, far_side, plen) in addrs {
        l.add_address(host, lab_side, plen).unwrap();
        a.add_address(eth, far_side, plen).unwrap();
    }
    if default_via_lab {
        for &(lab_side, _, _) in addrs {
            let dest = if lab_side.is_ipv4() {
                IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED)
            } else {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            };
            a.add_route(&RouteSpec {
                dest,
                prefix_len: 0,
                oif: eth,
                gateway: Some(lab_side),
                onlink: false,
                source: None,
            })
            .unwrap();
        }
    }
    ns
}
