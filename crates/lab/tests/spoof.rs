//! The spoofing helpers work when nothing filters: a forged UDP frame sent
//! from a small namespace veth-linked to the lab arrives at a listener in
//! the lab with the forged source address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use palisade_lab::traffic::{
    build_udp_frame, link_mac, send_frame, send_udp_spoofed, Listener, L4,
};
use palisade_lab::{root_or_skip, Lab, NetnsGuard};

mod common;

const LAB4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Forged, but inside the link's subnet so the lab's inherited rp_filter
/// setting (whatever the machine uses) accepts it.
const FORGED4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);
const LAB6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1);
const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 2);
const FORGED6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 0, 0, 0, 0, 0x77);

/// An extra namespace `eth0` <-> lab `atk0`, both addressed.
fn attacker(lab: &Lab) -> NetnsGuard {
    common::linked_netns(
        lab,
        'a',
        "atk0",
        &[
            (LAB4.into(), PEER4.into(), 24),
            (LAB6.into(), PEER6.into(), 64),
        ],
        false,
    )
}

#[test]
fn spoofed_udp_arrives_with_forged_source() {
    if !root_or_skip("spoofed_udp_arrives_with_forged_source") {
        return;
    }
    let lab = Lab::new().expect("lab");
    let atk = attacker(&lab);
    let lab_mac = link_mac(&lab.path(), "atk0").unwrap();
    let atk_mac = link_mac(&atk.path(), "eth0").unwrap();

    // IPv4 through the convenience helper.
    let dst4 = SocketAddr::new(LAB4.into(), 5353);
    let l4 = Listener::start(&lab.path(), L4::Udp, dst4).unwrap();
    let src4 = SocketAddr::new(FORGED4.into(), 4444);
    send_udp_spoofed(&atk.path(), "eth0", lab_mac, src4, dst4, b"forged v4").unwrap();
    let got = l4.wait_for_arrivals(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].peer, src4);
    assert_eq!(got[0].payload, b"forged v4");

    // IPv6 with a source from nowhere, through build_udp_frame + send_frame.
    let dst6 = SocketAddr::new(LAB6.into(), 5353);
    let l6 = Listener::start(&lab.path(), L4::Udp, dst6).unwrap();
    let frame = build_udp_frame(
        atk_mac,
        lab_mac,
        IpAddr::V6(FORGED6),
        dst6.ip(),
        5555,
        dst6.port(),
        b"forged v6",
    )
    .unwrap();
    send_frame(&atk.path(), "eth0", &frame).unwrap();
    let got = l6.wait_for_arrivals(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].peer, SocketAddr::new(FORGED6.into(), 5555));
    assert_eq!(got[0].payload, b"forged v6");
}
