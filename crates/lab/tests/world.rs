//! A lab with a world: probes from the lab host reach the world's
//! listeners with the lab's uplink address as source, over IPv4 and IPv6.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use palisade_lab::traffic::{ping, tcp_connect, udp_exchange, ListenerSet, ProbeOutcome, L4};
use palisade_lab::{root_or_skip, Lab, World};

mod common;

const T: Duration = Duration::from_secs(5);

#[test]
fn probes_from_the_lab_reach_the_world() {
    if !root_or_skip("probes_from_the_lab_reach_the_world") {
        return;
    }
    let lab = Lab::new().expect("lab");
    let world = lab.add_world().expect("world");
    let targets: Vec<IpAddr> = vec![
        World::INTERNET4.into(),
        World::METADATA4.into(),
        World::INTERNET6.into(),
        World::METADATA6.into(),
    ];
    let listeners =
        ListenerSet::start_grid(&world.path(), &[L4::Tcp, L4::Udp], &targets, &[80, 8080])
            .expect("listeners");
    assert_eq!(listeners.len(), 16);

    for ip in &targets {
        let lab_ip: IpAddr = if ip.is_ipv4() {
            World::LAB4.into()
        } else {
            World::LAB6.into()
        };
        for port in [80, 8080] {
            let dst = SocketAddr::new(*ip, port);
            assert_eq!(
                tcp_connect(&lab.path(), dst, T).unwrap(),
                ProbeOutcome::Connected,
                "tcp {dst}"
            );
            assert_eq!(
                udp_exchange(&lab.path(), dst, T).unwrap(),
                ProbeOutcome::Replied,
                "udp {dst}"
            );
            for l4 in [L4::Tcp, L4::Udp] {
                let got = listeners.arrivals_at(l4, dst);
                assert_eq!(got.len(), 1, "{l4:?} arrivals at {dst}: {got:?}");
                assert_eq!(got[0].peer.ip(), lab_ip, "{l4:?} source seen at {dst}");
                assert_eq!(got[0].local, dst);
            }
        }
        assert_eq!(
            ping(&lab.path(), *ip, T).unwrap(),
            ProbeOutcome::Replied,
            "ping {ip}"
        );
    }
    assert_eq!(listeners.all_arrivals().len(), 16);
}

#[test]
fn every_world_destination_answers_ping() {
    if !root_or_skip("every_world_destination_answers_ping") {
        return;
    }
    let lab = Lab::new().expect("lab");
    let _world = lab.add_world().expect("world");
    for ip in World::destinations() {
        assert_eq!(
            ping(&lab.path(), ip, T).unwrap(),
            ProbeOutcome::Replied,
            "ping {ip}"
        );
    }
    assert_eq!(World::forbidden().len(), World::destinations().len() - 2);
}

#[test]
fn closed_ports_are_refused() {
    if !root_or_skip("closed_ports_are_refused") {
        return;
    }
    let lab = Lab::new().expect("lab");
    let _world = lab.add_world().expect("world");
    for ip in [IpAddr::from(World::INTERNET4), World::INTERNET6.into()] {
        let dst = SocketAddr::new(ip, 9);
        assert_eq!(
            tcp_connect(&lab.path(), dst, T).unwrap(),
            ProbeOutcome::Refused,
            "tcp {dst}"
        );
        assert_eq!(
            udp_exchange(&lab.path(), dst, T).unwrap(),
            ProbeOutcome::Refused,
            "udp {dst}"
        );
    }
}

#[test]
fn unrouted_destination_is_unreachable() {
    if !root_or_skip("unrouted_destination_is_unreachable") {
        return;
    }
    // A lab without a world has no default route at all.
    let lab = Lab::new().expect("lab");
    let dst: SocketAddr = "203.0.113.10:80".parse().unwrap();
    match tcp_connect(&lab.path(), dst, T).unwrap() {
        ProbeOutcome::Unreachable(why) => assert!(!why.is_empty()),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(matches!(
        ping(&lab.path(), dst.ip(), T).unwrap(),
        ProbeOutcome::Unreachable(_)
    ));
}

#[test]
fn the_lab_runs_commands_inside_itself() {
    if !root_or_skip("the_lab_runs_commands_inside_itself") {
        return;
    }
    let lab = Lab::new().expect("lab");
    let _world = lab.add_world().expect("world");
    let forwarding = lab
        .command(
            std::path::Path::new("/bin/sh"),
            &["-c", "cat /proc/sys/net/ipv4/ip_forward; echo $LABVAR"],
            &[("LABVAR", "hello")],
        )
        .expect("command");
    assert!(forwarding.status.success(), "{forwarding:?}");
    assert_eq!(String::from_utf8_lossy(&forwarding.stdout), "1\nhello\n");
    let links = lab
        .run(|| std::fs::read_to_string("/proc/thread-self/net/dev"))
        .unwrap()
        .unwrap();
    assert!(links.contains("up0:"), "{links}");
}

#[test]
fn unmasqueraded_sandbox_traffic_arrives_with_its_own_source_and_routes_back() {
    if !root_or_skip("unmasqueraded_sandbox_traffic_arrives_with_its_own_source_and_routes_back") {
        return;
    }
    // A stand-in sandbox in palisade's ranges, routed through the lab with
    // no NAT at all: the world must see the sandbox's own addresses and
    // its return routes must carry the replies back.
    let lab = Lab::new().expect("lab");
    let world = lab.add_world().expect("world");
    let sbx4: IpAddr = "10.200.0.5".parse().unwrap();
    let sbx6: IpAddr = "fd70:616c:6973::5".parse().unwrap();
    let sbx = common::linked_netns(
        &lab,
        's',
        "sbx0",
        &[
            ("10.200.0.1".parse().unwrap(), sbx4, 24),
            ("fd70:616c:6973::1".parse().unwrap(), sbx6, 64),
        ],
        true,
    );
    for (dst_ip, src_ip) in [
        (IpAddr::from(World::INTERNET4), sbx4),
        (World::INTERNET6.into(), sbx6),
    ] {
        let dst = SocketAddr::new(dst_ip, 443);
        let set = ListenerSet::start(&world.path(), &[(L4::Tcp, dst), (L4::Udp, dst)]).unwrap();
        assert_eq!(
            tcp_connect(&sbx.path(), dst, T).unwrap(),
            ProbeOutcome::Connected,
            "tcp {dst}"
        );
        assert_eq!(
            udp_exchange(&sbx.path(), dst, T).unwrap(),
            ProbeOutcome::Replied,
            "udp {dst}"
        );
        assert_eq!(
            ping(&sbx.path(), dst_ip, T).unwrap(),
            ProbeOutcome::Replied,
            "ping {dst_ip}"
        );
        for a in set.all_arrivals() {
            assert_eq!(a.peer.ip(), src_ip, "{a:?}");
        }
        assert_eq!(set.all_arrivals().len(), 2);
    }
}
