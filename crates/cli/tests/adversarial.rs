//! The adversarial suite: one test per attack, each in its own lab, from a
//! sandbox whose owner has root and raw sockets. Listeners and captures
//! record everything that arrives; every test also has a control that must
//! get through, so a broken lab cannot pass for a working firewall.
//!
//! Port exposure (attack 9) lives in `exposure.rs`, next to the feature.

mod common;

use common::Env;
use palisade_lab::traffic::{
    build_arp_reply, build_icmpv6_frame, build_neighbor_advert, build_udp_frame, link_mac, ping,
    send_frame, send_udp_spoofed, tcp_connect, udp_exchange, Capture, ListenerSet, L4,
};
use palisade_lab::World;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_millis(600);
const HOST_PORTS: [u16; 6] = [22, 2375, 4646, 6443, 8000, 10250];

fn config(mode: &str) -> String {
    format!(
        "[network]\nmode = \"{mode}\"\nuplink = \"up0\"\n[isolation]\ninter_sandbox = \"same-tenant\"\n"
    )
}

fn sock(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

/// A lab with a world and some sandboxes.
struct Arena {
    env: Env,
    world: World,
    names: Vec<String>,
}

struct Sb {
    name: String,
    ns: PathBuf,
    v4: Ipv4Addr,
    v6: Ipv6Addr,
    mac: [u8; 6],
    host_iface: String,
}

impl Arena {
    /// `sandboxes`: (short name, tenant, extra `sandbox create` arguments).
    fn new(test: &str, mode: &str, sandboxes: &[(&str, &str, &[&str])]) -> Option<Arena> {
        let env = Env::new(test, &config(mode))?;
        let world = env.lab.add_world().unwrap();
        let mut names = Vec::new();
        for (short, tenant, extra) in sandboxes {
            let name = env.name(short);
            let mut args = vec!["sandbox", "create", name.as_str(), "--tenant", tenant];
            args.extend_from_slice(extra);
            env.ok(&args);
            names.push(name);
        }
        Some(Arena { env, world, names })
    }

    fn sb(&self, i: usize) -> Sb {
        let v = self
            .env
            .json(&["sandbox", "show", &self.names[i], "--json"]);
        let strip = |s: &Value| s.as_str().unwrap().split('/').next().unwrap().to_string();
        let n = &v["network"];
        let mac: palisade_core::element::MacAddr = n["mac"].as_str().unwrap().parse().unwrap();
        Sb {
            name: self.names[i].clone(),
            ns: palisade_link::netns_path(&self.names[i]),
            v4: strip(&n["ipv4"]).parse().unwrap(),
            v6: strip(&n["ipv6"]).parse().unwrap(),
            mac: mac.0,
            host_iface: n["host_interface"].as_str().unwrap().to_string(),
        }
    }

    /// The MAC a sandbox sends to for its gateway: the host end of its veth
    /// (routed) or the bridge (bridge mode).
    fn gateway_mac(&self, sb: &Sb) -> [u8; 6] {
        let iface = if link_mac(&self.env.lab.path(), "palisade0").is_ok() {
            "palisade0"
        } else {
            sb.host_iface.as_str()
        };
        link_mac(&self.env.lab.path(), iface).unwrap()
    }

    fn finish(self) {
        for n in &self.names {
            self.env.ok(&["sandbox", "destroy", n]);
        }
        self.env.assert_empty();
    }
}

/// Peers of every arrival at `set`, for messages.
fn arrivals(set: &ListenerSet) -> Vec<String> {
    set.all_arrivals()
        .iter()
        .map(|a| format!("{:?} {} <- {}", a.l4, a.local, a.peer))
        .collect()
}

/// Attack 1: Metadata over TCP, UDP and ICMP, IPv4 and IPv6, from a sandbox whose
/// egress is open and whose --allow names the metadata ports.
#[test]
fn attack_01_metadata() {
    let extra: &[&str] = &["--internet", "--allow", "tcp:80", "--allow", "udp:53"];
    let Some(a) = Arena::new("attack_01_metadata", "routed", &[("x", "a", extra)]) else {
        return;
    };
    let x = a.sb(0);
    let mut meta = ListenerSet::new();
    let mut control = ListenerSet::new();
    for ip in [IpAddr::from(World::METADATA4), World::METADATA6.into()] {
        meta.add(&a.world.path(), L4::Tcp, sock(ip, 80)).unwrap();
        meta.add(&a.world.path(), L4::Udp, sock(ip, 53)).unwrap();
    }
    for ip in [IpAddr::from(World::INTERNET4), World::INTERNET6.into()] {
        control.add(&a.world.path(), L4::Tcp, sock(ip, 80)).unwrap();
    }
    for ip in [IpAddr::from(World::METADATA4), World::METADATA6.into()] {
        assert!(
            !tcp_connect(&x.ns, sock(ip, 80), T).unwrap().reached(),
            "tcp {ip}"
        );
        assert!(
            !udp_exchange(&x.ns, sock(ip, 53), T).unwrap().reached(),
            "udp {ip}"
        );
        assert!(!ping(&x.ns, ip, T).unwrap().reached(), "ping {ip}");
    }
    assert!(meta.all_arrivals().is_empty(), "{:?}", arrivals(&meta));
    // Control: the same ports on an internet host do get through.
    for ip in [IpAddr::from(World::INTERNET4), World::INTERNET6.into()] {
        assert!(
            tcp_connect(&x.ns, sock(ip, 80), T).unwrap().reached(),
            "control {ip}"
        );
    }
    assert_eq!(control.all_arrivals().len(), 2);
    a.finish();
}

/// Attack 2: Every host address on the ports hosts typically serve, including the
/// gateway's link-local fe80::1 on the sandbox's own link.
#[test]
fn attack_02_host_services() {
    let Some(a) = Arena::new("attack_02_host_services", "routed", &[("x", "a", &[])]) else {
        return;
    };
    let x = a.sb(0);
    let lab = a.env.lab.path();
    let mut host = ListenerSet::new();
    for port in HOST_PORTS {
        host.add(&lab, L4::Tcp, sock(Ipv4Addr::UNSPECIFIED, port))
            .unwrap();
        host.add(&lab, L4::Tcp, sock(Ipv6Addr::UNSPECIFIED, port))
            .unwrap();
    }
    let eth0 = palisade_link::Rtnl::open_in(&x.ns)
        .unwrap()
        .link_index("eth0")
        .unwrap()
        .unwrap();
    let gateway6 = SocketAddr::V6(SocketAddrV6::new(
        palisade_core::model::GATEWAY6,
        0,
        0,
        eth0,
    ));
    let targets: Vec<IpAddr> = vec![
        World::LAB4.into(),
        World::LAB6.into(),
        Ipv4Addr::new(10, 200, 0, 1).into(),
    ];
    for port in HOST_PORTS {
        for ip in &targets {
            let got = tcp_connect(&x.ns, sock(*ip, port), T).unwrap();
            assert!(!got.reached(), "host {ip}:{port}: {got:?}");
        }
        let mut ll = gateway6;
        ll.set_port(port);
        let got = tcp_connect(&x.ns, ll, T).unwrap();
        assert!(!got.reached(), "host {ll}: {got:?}");
    }
    assert!(host.all_arrivals().is_empty(), "{:?}", arrivals(&host));
    // Control: the listeners answer the world.
    assert!(tcp_connect(&a.world.path(), sock(World::LAB4, 22), T)
        .unwrap()
        .reached());
    a.finish();
}

/// Attack 3: Sandbox to sandbox, same tenant (allowed) and across tenants (never).
fn sandbox_to_sandbox(test: &str, mode: &str) {
    let Some(a) = Arena::new(
        test,
        mode,
        &[("a1", "a", &[]), ("a2", "a", &[]), ("b1", "b", &[])],
    ) else {
        return;
    };
    let (a1, a2, b1) = (a.sb(0), a.sb(1), a.sb(2));
    let mut ls = ListenerSet::new();
    for s in [&a1, &a2, &b1] {
        for ip in [IpAddr::from(s.v4), s.v6.into()] {
            ls.add(&s.ns, L4::Tcp, sock(ip, 7)).unwrap();
            ls.add(&s.ns, L4::Udp, sock(ip, 7)).unwrap();
        }
    }
    for (from, to, allowed) in [(&a1, &a2, true), (&a1, &b1, false), (&b1, &a2, false)] {
        for ip in [IpAddr::from(to.v4), to.v6.into()] {
            let t = tcp_connect(&from.ns, sock(ip, 7), T).unwrap().reached();
            let u = udp_exchange(&from.ns, sock(ip, 7), T).unwrap().reached();
            let p = ping(&from.ns, ip, T).unwrap().reached();
            assert_eq!(
                (t, u, p),
                (allowed, allowed, allowed),
                "{} -> {} at {ip}",
                from.name,
                to.name
            );
        }
    }
    let at_b1: Vec<_> = ls
        .all_arrivals()
        .into_iter()
        .filter(|x| [IpAddr::from(b1.v4), b1.v6.into()].contains(&x.local.ip()))
        .collect();
    assert!(at_b1.is_empty(), "{at_b1:?}");
    a.finish();
}

#[test]
fn attack_03_sandbox_to_sandbox_routed() {
    sandbox_to_sandbox("attack_03_sandbox_to_sandbox_routed", "routed");
}

#[test]
fn attack_03_sandbox_to_sandbox_bridge() {
    sandbox_to_sandbox("attack_03_sandbox_to_sandbox_bridge", "bridge");
}

/// Attack 4: Forged IPv4 and IPv6 sources (another sandbox's, outside the pool,
/// the gateway's, a free pool address) and a forged source MAC.
fn spoofing(test: &str, mode: &str) {
    let Some(a) = Arena::new(
        test,
        mode,
        &[("x", "a", &["--internet"]), ("y", "b", &["--internet"])],
    ) else {
        return;
    };
    let (x, y) = (a.sb(0), a.sb(1));
    let dst4 = sock(World::INTERNET4, 53);
    let dst6 = sock(World::INTERNET6, 53);
    let world = ListenerSet::start(&a.world.path(), &[(L4::Udp, dst4), (L4::Udp, dst6)]).unwrap();
    let gw = a.gateway_mac(&x);
    let forged4 = [
        y.v4,
        Ipv4Addr::new(10, 99, 0, 10),
        Ipv4Addr::new(10, 200, 0, 1),
        Ipv4Addr::new(10, 200, 0, 200),
    ];
    let forged6 = [
        y.v6,
        "fd99::10".parse().unwrap(),
        "fd70:616c:6973::c8".parse().unwrap(),
        "fe80::1".parse().unwrap(),
    ];
    for src in forged4 {
        send_udp_spoofed(&x.ns, "eth0", gw, sock(src, 5353), dst4, b"forged").unwrap();
    }
    for src in forged6 {
        send_udp_spoofed(&x.ns, "eth0", gw, sock(src, 5353), dst6, b"forged").unwrap();
    }
    // Its own addresses, but another sandbox's MAC.
    for (src, dst) in [(IpAddr::from(x.v4), dst4), (x.v6.into(), dst6)] {
        let f = build_udp_frame(y.mac, gw, src, dst.ip(), 5353, 53, b"forged").unwrap();
        send_frame(&x.ns, "eth0", &f).unwrap();
    }
    // Control: the same frames with its own MAC and addresses arrive.
    for (src, dst) in [(IpAddr::from(x.v4), dst4), (x.v6.into(), dst6)] {
        send_udp_spoofed(&x.ns, "eth0", gw, sock(src, 5353), dst, b"genuine").unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let got = world.all_arrivals();
    let forged: Vec<_> = got.iter().filter(|a| a.payload == b"forged").collect();
    assert!(forged.is_empty(), "forged packets arrived: {forged:?}");
    assert_eq!(
        got.iter().filter(|a| a.payload == b"genuine").count(),
        2,
        "{got:?}"
    );
    a.finish();
}

#[test]
fn attack_04_spoofed_sources_routed() {
    spoofing("attack_04_spoofed_sources_routed", "routed");
}

#[test]
fn attack_04_spoofed_sources_bridge() {
    spoofing("attack_04_spoofed_sources_bridge", "bridge");
}

/// Attack 5, bridge mode: an ARP frame whose Ethernet source is not its
/// port's MAC stops at the port, even with the sandbox's own MAC and
/// address in its payload; the same frame from the port's MAC passes.
#[test]
fn attack_05_arp_with_a_forged_ethernet_source_stops_at_its_port() {
    let Some(a) = Arena::new(
        "attack_05_arp_with_a_forged_ethernet_source_stops_at_its_port",
        "bridge",
        &[("x", "a", &[]), ("y", "a", &[])],
    ) else {
        return;
    };
    let (x, y) = (a.sb(0), a.sb(1));
    // Packets counted by the port chain's last rule, the catch-all drop.
    let dropped = || -> u64 {
        let out = a.env.lab_ok(
            "nft",
            &["list", "chain", "bridge", "palisade", "port_source"],
        );
        let last = out
            .lines()
            .rfind(|l| l.contains("counter packets"))
            .unwrap_or_else(|| panic!("no counter in port_source:\n{out}"))
            .to_string();
        assert!(last.trim_end().ends_with("drop"), "{last}");
        last.split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    };
    let gw4 = Ipv4Addr::new(10, 200, 0, 1);
    let genuine = build_arp_reply(x.mac, x.v4, [0xff; 6], gw4);
    let mut forged = genuine.clone();
    forged[6..12].copy_from_slice(&y.mac);

    let before = dropped();
    for _ in 0..3 {
        send_frame(&x.ns, "eth0", &genuine).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(dropped(), before, "x's own ARP was dropped");
    for _ in 0..3 {
        send_frame(&x.ns, "eth0", &forged).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        dropped(),
        before + 3,
        "ARP from a forged Ethernet source passed"
    );
    a.finish();
}

fn neighbours(env: &Env, netns: Option<&str>) -> String {
    let mut args = vec![];
    if let Some(n) = netns {
        args.extend(["-n", n]);
    }
    args.extend(["neigh", "show"]);
    let out = env
        .lab
        .command(std::path::Path::new("ip"), &args, &[])
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_lowercase()
}

/// Attack 5: ARP replies and neighbour advertisements claiming the gateway's or
/// another sandbox's address.
fn neighbour_spoofing(test: &str, mode: &str) {
    let Some(a) = Arena::new(test, mode, &[("x", "a", &[]), ("y", "a", &["--internet"])]) else {
        return;
    };
    let (x, y) = (a.sb(0), a.sb(1));
    let gw = a.gateway_mac(&x);
    let gw4 = Ipv4Addr::new(10, 200, 0, 1);
    let gw6: Ipv6Addr = "fe80::1".parse().unwrap();
    let world = ListenerSet::start(
        &a.world.path(),
        &[
            (L4::Tcp, sock(World::INTERNET4, 80)),
            (L4::Tcp, sock(World::INTERNET6, 80)),
        ],
    )
    .unwrap();
    // y talks first, so the host has entries for y's addresses for the
    // forged advertisements to try to override (a host ignores one for an
    // address it has no entry for).
    for dest in [IpAddr::V4(World::INTERNET4), IpAddr::V6(World::INTERNET6)] {
        assert!(tcp_connect(&y.ns, sock(dest, 80), T).unwrap().reached());
    }
    let capture = Capture::start(&y.ns, "eth0").unwrap();
    let mark = capture.len();
    let all_nodes = [0x33, 0x33, 0, 0, 0, 1];
    for _ in 0..3 {
        for (claim, to_mac, to_ip) in [
            (gw4, [0xff; 6], y.v4),
            (y.v4, gw, gw4),
            (y.v4, [0xff; 6], gw4),
        ] {
            send_frame(&x.ns, "eth0", &build_arp_reply(x.mac, claim, to_mac, to_ip)).unwrap();
        }
        let ll = palisade_core::model::link_local_from_mac(palisade_core::element::MacAddr(x.mac));
        for target in [gw6, y.v6] {
            for (dst_mac, dst_ip) in [(all_nodes, "ff02::1".parse().unwrap()), (gw, gw6)] {
                let f = build_neighbor_advert(x.mac, dst_mac, ll, dst_ip, target);
                send_frame(&x.ns, "eth0", &f).unwrap();
            }
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let x_mac = palisade_core::element::MacAddr(x.mac).to_string();
    let own = [x.v4.to_string(), x.v6.to_string()];
    let host = neighbours(&a.env, None);
    for line in host.lines().filter(|l| l.contains(&x_mac)) {
        let ip = line.split_whitespace().next().unwrap_or_default();
        assert!(
            own.iter().any(|o| o == ip) || ip.starts_with("fe80:"),
            "the host believes {ip} is at x's MAC:\n{host}"
        );
    }
    let theirs = neighbours(&a.env, Some(&y.name));
    assert!(
        !theirs.contains(&x_mac),
        "sandbox y learnt x's MAC:\n{theirs}"
    );
    let seen: Vec<_> = capture.frames()[mark..]
        .iter()
        .filter(|f| !f.outgoing && f.data.get(6..12) == Some(&x.mac[..]))
        .cloned()
        .collect();
    assert!(seen.is_empty(), "y received {} frames from x", seen.len());
    // Control: y still reaches the world and gets its answers.
    assert!(tcp_connect(&y.ns, sock(World::INTERNET4, 80), T)
        .unwrap()
        .reached());
    assert!(tcp_connect(&y.ns, sock(World::INTERNET6, 80), T)
        .unwrap()
        .reached());
    assert_eq!(world.all_arrivals().len(), 4);
    a.finish();
}

#[test]
fn attack_05_arp_and_ndp_spoofing_routed() {
    neighbour_spoofing("attack_05_arp_and_ndp_spoofing_routed", "routed");
}

#[test]
fn attack_05_arp_and_ndp_spoofing_bridge() {
    neighbour_spoofing("attack_05_arp_and_ndp_spoofing_bridge", "bridge");
}

/// A router advertisement announcing 2001:db8:bad::/64 and itself as the
/// default router.
fn router_advert() -> Vec<u8> {
    let mut m = vec![134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&[
        3, 4, 64, 0xc0, 0, 0, 0x0e, 0x10, 0, 0, 0x0e, 0x10, 0, 0, 0, 0,
    ]);
    m.extend_from_slice(&"2001:db8:bad::".parse::<Ipv6Addr>().unwrap().octets());
    m
}

/// A DHCPv4 offer of 10.200.0.99 with the attacker as router and DNS.
fn dhcp_offer(server: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![2, 1, 6, 0, 0x12, 0x34, 0x56, 0x78];
    m.resize(236, 0);
    m[16..20].copy_from_slice(&[10, 200, 0, 99]);
    m.extend_from_slice(&[99, 130, 83, 99, 53, 1, 2, 54, 4]);
    m.extend_from_slice(&server.octets());
    m.extend_from_slice(&[3, 4]);
    m.extend_from_slice(&server.octets());
    m.extend_from_slice(&[6, 4]);
    m.extend_from_slice(&server.octets());
    m.push(255);
    m
}

/// Attack 6: Rogue router advertisement, redirect, DHCP offer and DHCPv6
/// advertise.
fn rogue_servers(test: &str, mode: &str) {
    let Some(a) = Arena::new(test, mode, &[("x", "a", &[]), ("y", "a", &[])]) else {
        return;
    };
    let (x, y) = (a.sb(0), a.sb(1));
    let lab = a.env.lab.path();
    let routes = |netns: Option<&str>| {
        let mut args = vec![];
        if let Some(n) = netns {
            args.extend(["-n", n]);
        }
        args.extend(["-6", "route", "show"]);
        let out = a
            .env
            .lab
            .command(std::path::Path::new("ip"), &args, &[])
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let capture_y = Capture::start(&y.ns, "eth0").unwrap();
    let capture_up = Capture::start(&lab, "up0").unwrap();
    let ll = palisade_core::model::link_local_from_mac(palisade_core::element::MacAddr(x.mac));
    let all_nodes = [0x33, 0x33, 0, 0, 0, 1];
    let ff02_1: Ipv6Addr = "ff02::1".parse().unwrap();
    let dhcp6_advertise = [2u8, 0x12, 0x34, 0x56, 0, 1, 0, 4, 0, 3, 0, 1];
    // An ICMPv6 redirect: "reach the internet host through me".
    let mut redirect = vec![137u8, 0, 0, 0, 0, 0, 0, 0];
    redirect.extend_from_slice(&ll.octets());
    redirect.extend_from_slice(&World::INTERNET6.octets());
    for _ in 0..3 {
        let rd = build_icmpv6_frame(x.mac, all_nodes, ll, ff02_1, 255, &redirect).unwrap();
        send_frame(&x.ns, "eth0", &rd).unwrap();
        let ra = build_icmpv6_frame(x.mac, all_nodes, ll, ff02_1, 255, &router_advert()).unwrap();
        send_frame(&x.ns, "eth0", &ra).unwrap();
        let offer = build_udp_frame(
            x.mac,
            [0xff; 6],
            x.v4.into(),
            Ipv4Addr::BROADCAST.into(),
            67,
            68,
            &dhcp_offer(x.v4),
        )
        .unwrap();
        send_frame(&x.ns, "eth0", &offer).unwrap();
        let adv = build_udp_frame(
            x.mac,
            [0x33, 0x33, 0, 1, 0, 2],
            ll.into(),
            "ff02::1:2".parse::<Ipv6Addr>().unwrap().into(),
            547,
            546,
            &dhcp6_advertise,
        )
        .unwrap();
        send_frame(&x.ns, "eth0", &adv).unwrap();
        let adv_all = build_udp_frame(
            x.mac,
            all_nodes,
            ll.into(),
            ff02_1.into(),
            547,
            546,
            &dhcp6_advertise,
        )
        .unwrap();
        send_frame(&x.ns, "eth0", &adv_all).unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let from_x = |c: &Capture| -> usize {
        c.frames()
            .iter()
            .filter(|f| !f.outgoing && f.data.get(6..12) == Some(&x.mac[..]))
            .count()
    };
    assert_eq!(
        from_x(&capture_y),
        0,
        "the other sandbox received rogue frames"
    );
    assert_eq!(
        from_x(&capture_up),
        0,
        "rogue frames left through the uplink"
    );
    // Nothing learnt from the rogue advertisement, here or in the other
    // sandbox (kernel link-local routes may appear meanwhile: ignored).
    for (who, table) in [("host", routes(None)), ("sandbox y", routes(Some(&y.name)))] {
        for line in table.lines() {
            assert!(
                !line.contains("proto ra") && !line.contains("2001:db8:bad"),
                "{who} learnt a route from the rogue advertisement: {line}"
            );
        }
    }
    // Control: the capture on y does see what it is sent legitimately.
    assert!(
        ping(&x.ns, y.v4.into(), T).unwrap().reached(),
        "control: same tenant ping"
    );
    assert!(
        capture_y.frames().iter().any(|f| !f.outgoing),
        "capture on y saw nothing at all"
    );
    a.finish();
}

#[test]
fn attack_06_rogue_ra_and_dhcp_routed() {
    rogue_servers("attack_06_rogue_ra_and_dhcp_routed", "routed");
}

#[test]
fn attack_06_rogue_ra_and_dhcp_bridge() {
    rogue_servers("attack_06_rogue_ra_and_dhcp_bridge", "bridge");
}

/// Attack 7: Every blocked range with --internet; a port outside --allow.
#[test]
fn attack_07_blocked_ranges_and_ports() {
    let Some(a) = Arena::new(
        "attack_07_blocked_ranges_and_ports",
        "routed",
        &[
            ("open", "a", &["--internet"]),
            ("narrow", "a", &["--internet", "--allow", "tcp:443"]),
        ],
    ) else {
        return;
    };
    let (open, narrow) = (a.sb(0), a.sb(1));
    let w = a.world.path();
    let mut forbidden = ListenerSet::new();
    for ip in World::forbidden() {
        forbidden.add(&w, L4::Tcp, sock(ip, 80)).unwrap();
        forbidden.add(&w, L4::Udp, sock(ip, 53)).unwrap();
    }
    for ip in World::forbidden() {
        assert!(
            !tcp_connect(&open.ns, sock(ip, 80), T).unwrap().reached(),
            "tcp {ip}"
        );
        assert!(
            !udp_exchange(&open.ns, sock(ip, 53), T).unwrap().reached(),
            "udp {ip}"
        );
    }
    assert!(
        forbidden.all_arrivals().is_empty(),
        "{:?}",
        arrivals(&forbidden)
    );
    let internet = ListenerSet::start(
        &w,
        &[
            (L4::Tcp, sock(World::INTERNET4, 443)),
            (L4::Tcp, sock(World::INTERNET4, 80)),
        ],
    )
    .unwrap();
    assert!(
        tcp_connect(&open.ns, sock(World::INTERNET4, 80), T)
            .unwrap()
            .reached(),
        "control"
    );
    assert!(
        tcp_connect(&narrow.ns, sock(World::INTERNET4, 443), T)
            .unwrap()
            .reached(),
        "allowed"
    );
    assert!(
        !tcp_connect(&narrow.ns, sock(World::INTERNET4, 80), T)
            .unwrap()
            .reached(),
        "not allowed"
    );
    let at80 = internet.arrivals_at(L4::Tcp, sock(World::INTERNET4, 80));
    assert_eq!(
        at80.len(),
        1,
        "only the open sandbox's control may arrive: {at80:?}"
    );
    a.finish();
}

/// Attack 8: Unsolicited inbound from the uplink side, without an exposure.
#[test]
fn attack_08_unsolicited_inbound() {
    let Some(a) = Arena::new(
        "attack_08_unsolicited_inbound",
        "routed",
        &[("x", "a", &["--internet"])],
    ) else {
        return;
    };
    let x = a.sb(0);
    let mut ls = ListenerSet::new();
    for ip in [IpAddr::from(x.v4), x.v6.into()] {
        for port in [22, 80] {
            ls.add(&x.ns, L4::Tcp, sock(ip, port)).unwrap();
            ls.add(&x.ns, L4::Udp, sock(ip, port)).unwrap();
        }
    }
    for ip in [IpAddr::from(x.v4), x.v6.into()] {
        for port in [22, 80] {
            assert!(!tcp_connect(&a.world.path(), sock(ip, port), T)
                .unwrap()
                .reached());
            assert!(!udp_exchange(&a.world.path(), sock(ip, port), T)
                .unwrap()
                .reached());
        }
        assert!(
            !ping(&a.world.path(), ip, T).unwrap().reached(),
            "ping {ip}"
        );
    }
    assert!(ls.all_arrivals().is_empty(), "{:?}", arrivals(&ls));
    // Control: the sandbox's own connection out gets its answers back.
    let _w = ListenerSet::start(&a.world.path(), &[(L4::Tcp, sock(World::INTERNET4, 80))]).unwrap();
    assert!(tcp_connect(&x.ns, sock(World::INTERNET4, 80), T)
        .unwrap()
        .reached());
    a.finish();
}

/// Attack 10: Policy changes under a flood: nothing that neither the old nor the
/// new policy allows gets through while tables are replaced, sandboxes come
/// and go, and exposures change.
#[test]
fn attack_10_policy_change_under_flood() {
    let Some(a) = Arena::new(
        "attack_10_policy_change_under_flood",
        "routed",
        &[("x", "a", &[]), ("peer", "a", &[]), ("other", "b", &[])],
    ) else {
        return;
    };
    let (x, peer, other) = (a.sb(0), a.sb(1), a.sb(2));
    let forbidden = [
        (a.world.path(), sock(World::METADATA4, 53)),
        (a.world.path(), sock(World::PRIVATE10, 53)),
        (a.world.path(), sock(World::INTERNET4, 53)),
        (other.ns.clone(), sock(other.v4, 53)),
        (a.env.lab.path(), sock(World::LAB4, 53)),
    ];
    let mut bad = ListenerSet::new();
    for (ns, addr) in &forbidden {
        bad.add(ns, L4::Udp, *addr).unwrap();
    }
    let good = ListenerSet::start(&peer.ns, &[(L4::Udp, sock(peer.v4, 53))]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut targets: Vec<SocketAddr> = forbidden.iter().map(|(_, s)| *s).collect();
    targets.push(sock(peer.v4, 53));
    let (s2, n2) = (Arc::clone(&stop), Arc::clone(&sent));
    let socket = palisade_link::run_in_netns(&x.ns, || UdpSocket::bind("0.0.0.0:0"))
        .unwrap()
        .unwrap();
    let flood = std::thread::spawn(move || {
        while !s2.load(Ordering::Relaxed) {
            for t in &targets {
                let _ = socket.send_to(b"flood", t);
            }
            n2.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    let extra = a.env.name("extra");
    for _ in 0..3 {
        a.env.ok(&["init"]);
        a.env
            .ok(&["sandbox", "create", &extra, "--tenant", "b", "--internet"]);
        a.env.ok(&[
            "expose",
            &peer.name,
            "--proto",
            "udp",
            "--port",
            "53",
            "--host-port",
            "5353",
        ]);
        a.env.ok(&["unexpose", &peer.name, "--proto", "udp"]);
        a.env.ok(&["sandbox", "destroy", &extra]);
    }
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(bad.all_arrivals().is_empty(), "{:?}", arrivals(&bad));
    let delivered = good.all_arrivals().len();
    let rounds = sent.load(Ordering::Relaxed);
    assert!(
        rounds > 100 && delivered > 100,
        "the flood did not flow: {delivered} delivered in {rounds} rounds"
    );
    a.finish();
}

/// Attack 11: Names with shell and nft metacharacters, `/`, `..`, over-long ones,
/// and pairs a naive truncation to 15 bytes would make collide.
#[test]
fn attack_11_hostile_names() {
    let Some(env) = Env::new("attack_11_hostile_names", &config("routed")) else {
        return;
    };
    let long = "x".repeat(64);
    for bad in [
        "a;reboot",
        "$(id)",
        "a b",
        "a/b",
        "..",
        "../etc",
        "a\"b",
        "a}b",
        "a{b",
        "-a",
        "A",
        "",
        long.as_str(),
        "a\nb",
        "pal-*",
    ] {
        let out = env.palisade(&["sandbox", "create", bad, "--tenant", "t"]);
        assert!(!out.status.success(), "{bad:?} was accepted");
        let out = env.palisade(&["sandbox", "create", "ok", "--tenant", bad]);
        assert!(!out.status.success(), "tenant {bad:?} was accepted");
    }
    assert!(env.pal_links().is_empty());
    // Two 63-byte names equal in their first 60 bytes: distinct interfaces
    // and, across tenants, isolated.
    let stem = format!("{}-", env.name("n")).repeat(8);
    let one = format!("{}1", &stem[..62]);
    let two = format!("{}2", &stem[..62]);
    env.lab.adopt_cleanup(&one);
    env.lab.adopt_cleanup(&two);
    env.ok(&["sandbox", "create", &one, "--tenant", "t1"]);
    env.ok(&["sandbox", "create", &two, "--tenant", "t2"]);
    let links = env.pal_links();
    assert_eq!(links.len(), 2, "{links:?}");
    let ns_two = palisade_link::netns_path(&two);
    let (one4, _) = env.addresses(&one);
    let ls = ListenerSet::start(
        &palisade_link::netns_path(&one),
        &[(L4::Tcp, sock(one4.parse::<Ipv4Addr>().unwrap(), 7))],
    )
    .unwrap();
    assert!(
        !tcp_connect(&ns_two, sock(one4.parse::<Ipv4Addr>().unwrap(), 7), T)
            .unwrap()
            .reached()
    );
    assert!(ls.all_arrivals().is_empty());
    env.ok(&["sandbox", "destroy", &one]);
    env.ok(&["sandbox", "destroy", &two]);
    env.assert_empty();
}

/// Attack 12: A firewall apply the kernel refuses: a foreign element already holds
/// the address the sandbox would get. The sandbox is not created, nothing of
/// it remains, the foreign element is left alone.
#[test]
fn attack_12_failed_apply_leaves_nothing() {
    let Some(env) = Env::new("attack_12_failed_apply_leaves_nothing", &config("routed")) else {
        return;
    };
    env.ok(&["init"]);
    let nft = |args: &[&str]| {
        env.lab
            .command(std::path::Path::new("nft"), args, &[])
            .unwrap()
    };
    let out = nft(&[
        "add",
        "element",
        "inet",
        "palisade",
        "tenant4",
        "{ 10.200.0.2 : 0x00000063 }",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = env.name("victim");
    let out = env.palisade(&["sandbox", "create", &name, "--tenant", "t"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "created despite the refused apply");
    assert!(
        err.contains("firewall update failed") && err.contains(&name),
        "{err}"
    );
    assert!(env.pal_links().is_empty(), "an interface remains");
    assert!(
        !palisade_link::named_netns_exists(&name),
        "the namespace remains"
    );
    let list = env.json(&["sandbox", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
    let table = env.table_text();
    assert!(
        table.contains("10.200.0.2 : 0x00000063"),
        "the foreign element was touched"
    );
    assert!(
        !table.contains("\"pal-1\" ."),
        "elements of the failed sandbox remain:\n{table}"
    );
    // Control: without the foreign element, the same create works.
    nft(&[
        "delete",
        "element",
        "inet",
        "palisade",
        "tenant4",
        "{ 10.200.0.2 }",
    ]);
    env.ok(&["sandbox", "create", &name, "--tenant", "t"]);
    env.ok(&["sandbox", "destroy", &name]);
    env.assert_empty();
}

/// Attack 13: a destroyed sandbox whose namespace lives on (adopted, so not
/// palisade's to delete) puts its address, routes and gateway back on the
/// retired veth, which routed mode leaves up until the reap and bridge mode
/// leaves on its bridge, down: nothing it sends gets anywhere.
fn retired_veth(test: &str, mode: &str) {
    let Some(mut a) = Arena::new(test, mode, &[]) else {
        return;
    };
    let name = a.env.name("x");
    palisade_link::create_named_netns(&name).unwrap();
    a.env
        .ok(&["sandbox", "create", &name, "--tenant", "a", "--internet"]);
    a.names.push(name.clone());
    let x = a.sb(0);
    let gw = a.gateway_mac(&x);
    let gw_mac = gw
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let targets = [IpAddr::from(World::INTERNET4), World::INTERNET6.into()];
    let mut world = ListenerSet::new();
    for ip in targets {
        world.add(&a.world.path(), L4::Udp, sock(ip, 53)).unwrap();
    }
    for ip in targets {
        assert!(
            udp_exchange(&x.ns, sock(ip, 53), T).unwrap().reached(),
            "control: the live sandbox reaches {ip}"
        );
    }
    let reached_before = world.all_arrivals().len();
    assert_eq!(reached_before, 2, "{:?}", arrivals(&world));

    a.env.ok(&["sandbox", "destroy", &name]);
    assert_eq!(a.env.retired_links(), vec![x.host_iface.clone()]);
    let suffix = x.host_iface.strip_prefix("pal-").unwrap();
    let gone = format!("gone-{suffix}")
        .chars()
        .take(15)
        .collect::<String>();
    let v4 = format!("{}/32", x.v4);
    let v6 = format!("{}/128", x.v6);
    let neigh = |ip: &str| format!("neigh replace {ip} lladdr {gw_mac} dev {gone} nud permanent");
    for cmd in [
        // Bridge mode set it down.
        format!("link set {gone} up"),
        // Bridge mode keeps its IPv4 address: replace, not add.
        format!("addr replace {v4} dev {gone}"),
        format!("addr replace {v6} dev {gone} nodad"),
        neigh("10.200.0.1"),
        neigh("fe80::1"),
        format!("route replace default via 10.200.0.1 dev {gone} onlink"),
        format!("-6 route replace default via fe80::1 dev {gone}"),
    ] {
        let mut args = vec!["-n", name.as_str()];
        args.extend(cmd.split_whitespace());
        let out = a
            .env
            .lab
            .command(std::path::Path::new("ip"), &args, &[])
            .unwrap();
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for ip in targets {
        assert!(
            !udp_exchange(&x.ns, sock(ip, 53), T).unwrap().reached(),
            "the retired veth passed a packet to {ip}"
        );
    }
    assert_eq!(
        world.all_arrivals().len(),
        reached_before,
        "{:?}",
        arrivals(&world)
    );
    a.env.ok(&["reap"]);
    assert_eq!(a.env.retired_links(), Vec::<String>::new());
    palisade_link::delete_named_netns(&name).unwrap();
    a.finish();
}

#[test]
fn attack_13_retired_veth_passes_nothing_routed() {
    retired_veth("attack_13_retired_veth_passes_nothing_routed", "routed");
}

#[test]
fn attack_13_retired_veth_passes_nothing_bridge() {
    retired_veth("attack_13_retired_veth_passes_nothing_bridge", "bridge");
}

/// Whether `capture` recorded an arriving frame that carries `payload`.
fn received(capture: &Capture, payload: &[u8]) -> bool {
    capture
        .frames()
        .iter()
        .any(|f| !f.outgoing && f.data.windows(payload.len()).any(|w| w == payload))
}

/// Runs `program ARGS` in the lab host, as an admin or a bug might.
fn run(env: &Env, program: &str, args: &[&str]) {
    env.lab_ok(program, args);
}

fn ip(env: &Env, args: &[&str]) {
    run(env, "ip", args);
}

/// Sets bridge port `port`'s `settings` (`ip link set dev PORT type
/// bridge_slave ...`).
fn set_port(env: &Env, port: &str, settings: &str) {
    let mut args = vec!["link", "set", "dev", port, "type", "bridge_slave"];
    args.extend(settings.split_whitespace());
    ip(env, &args);
}

/// Attack 14 (bridge mode): listening in on the bridge. A sandbox's port is
/// sent no other sandbox's unicast: a frame from the host's side to a MAC
/// the bridge has no entry for (as the host's traffic to a sandbox whose
/// learnt entry aged out would be) is flooded to no port, and frames from
/// one sandbox straight to another's MAC, or to everyone, are not
/// forwarded, even with palisade's bridge table deleted. The captures
/// inside the sandboxes see every frame their `eth0` receives, addressed
/// to it or not.
#[test]
fn attack_14_bridge_ports_hear_only_their_own_frames() {
    let Some(a) = Arena::new(
        "attack_14_bridge_ports_hear_only_their_own_frames",
        "bridge",
        &[("x", "a", &[]), ("y", "a", &[]), ("z", "b", &[])],
    ) else {
        return;
    };
    let (x, y, z) = (a.sb(0), a.sb(1), a.sb(2));
    let lab = a.env.lab.path();
    let gw = a.gateway_mac(&x);
    let gw4 = IpAddr::from(Ipv4Addr::new(10, 200, 0, 1));
    let unknown = [0x02, 0, 0, 0, 0x99, 0x99];
    let from_host = |dst: [u8; 6], payload: &[u8]| {
        let f = build_udp_frame(gw, dst, gw4, x.v4.into(), 9, 9, payload).unwrap();
        send_frame(&lab, "palisade0", &f).unwrap();
    };
    let [cx, cy, cz] = [&x, &y, &z].map(|s| Capture::start(&s.ns, "eth0").unwrap());
    // Each sandbox gets its own frames: the captures work, and the host
    // reaches every port through its static entry.
    let each_gets_its_own = |tag: &str| {
        for (s, c) in [(&x, &cx), (&y, &cy), (&z, &cz)] {
            let payload = format!("{tag}-for-{}", s.name);
            from_host(s.mac, payload.as_bytes());
            std::thread::sleep(Duration::from_millis(100));
            assert!(
                received(c, payload.as_bytes()),
                "control ({tag}): {} gets its own frame",
                s.name
            );
        }
    };
    each_gets_its_own("first");
    from_host(x.mac, b"for-x");
    from_host(unknown, b"unknown-mac");
    std::thread::sleep(Duration::from_millis(300));
    assert!(received(&cx, b"for-x"), "control: x gets its own frame");
    for (who, c) in [("x", &cx), ("y", &cy), ("z", &cz)] {
        assert!(!received(c, b"unknown-mac"), "{who} got a flooded frame");
    }
    for (who, c) in [("y", &cy), ("z", &cz)] {
        assert!(!received(c, b"for-x"), "{who} got x's frame");
    }
    // Control: the same frames reach a port that takes floods.
    set_port(&a.env, &y.host_iface, "flood on");
    from_host(unknown, b"unknown-mac-2");
    std::thread::sleep(Duration::from_millis(300));
    assert!(received(&cy, b"unknown-mac-2"), "control: flooded to y");
    assert!(!received(&cz, b"unknown-mac-2"), "z's port takes no flood");

    // `verify` names the changed port, `init` sets it again.
    a.env.ok(&["verify", &x.name]);
    let out = a.env.palisade(&["verify"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "went unnoticed: {said}");
    let object = format!("differs bridge port {} of sandbox {}", y.host_iface, y.name);
    assert!(said.contains(&object), "{said}");
    assert!(said.contains("takes floods"), "{said}");
    let out = a.env.ok(&["init"]);
    assert!(
        out.contains(&format!(
            "made the bridge port of sandbox {} an isolated port",
            y.name
        )),
        "{out}"
    );
    from_host(unknown, b"unknown-mac-3");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !received(&cy, b"unknown-mac-3"),
        "y's port set again by init"
    );
    a.env.ok(&["verify"]);
    // Down by hand: named by verify, set up again by init.
    ip(&a.env, &["link", "set", "dev", &y.host_iface, "down"]);
    let out = a.env.palisade(&["verify"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "went unnoticed: {said}");
    assert!(said.contains("a port that is down"), "{said}");
    a.env.ok(&["init"]);
    a.env.ok(&["verify"]);
    each_gets_its_own("after-repairs");
    // Off its bridge: named by verify, put back by init.
    ip(&a.env, &["link", "set", "dev", &z.host_iface, "nomaster"]);
    let out = a.env.palisade(&["verify"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "went unnoticed: {said}");
    assert!(said.contains("not a bridge port"), "{said}");
    // Meanwhile the host takes in z's frames on the port itself, outside
    // every bridge: they are dropped, not routed out unfiltered (z has no
    // internet).
    let world = ListenerSet::start(
        &a.world.path(),
        &[
            (L4::Udp, sock(World::INTERNET4, 53)),
            (L4::Udp, sock(World::METADATA4, 53)),
        ],
    )
    .unwrap();
    let port_mac = link_mac(&lab, &z.host_iface).unwrap();
    for dst in [World::INTERNET4, World::METADATA4] {
        send_udp_spoofed(
            &z.ns,
            "eth0",
            port_mac,
            sock(z.v4, 5353),
            sock(dst, 53),
            b"off",
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(world.all_arrivals().is_empty(), "{:?}", arrivals(&world));
    let dropped = rule_packets(&a, "inet", "forward", "iifname \"pal-*\" counter packets");
    assert_eq!(dropped, Some(2), "the port rule dropped them");
    let said = a.env.ok(&["init"]);
    assert!(
        said.contains(&format!(
            "put the interface of sandbox {} back on its bridge",
            z.name
        )),
        "{said}"
    );
    a.env.ok(&["verify"]);
    each_gets_its_own("after-rejoin");

    // A pin removed by hand: named by verify, put back by init.
    let v4 = y.v4.to_string();
    ip(&a.env, &["neigh", "del", &v4, "dev", "palisade0"]);
    let out = a.env.palisade(&["verify"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "went unnoticed: {said}");
    let object = format!("missing pin of {v4} on palisade0 for sandbox {}", y.name);
    assert!(said.contains(&object), "{said}");
    let said = a.env.ok(&["init"]);
    assert!(
        said.contains(&format!("sandbox {} to its MAC", y.name)),
        "{said}"
    );
    a.env.ok(&["verify"]);

    // Straight from x to y's MAC, with palisade's bridge table gone.
    run(&a.env, "nft", &["delete", "table", "bridge", "palisade"]);
    let direct = |dst: [u8; 6], payload: &[u8]| {
        let f = build_udp_frame(x.mac, dst, x.v4.into(), y.v4.into(), 9, 9, payload).unwrap();
        send_frame(&x.ns, "eth0", &f).unwrap();
    };
    direct(y.mac, b"direct");
    direct([0xff; 6], b"broadcast");
    std::thread::sleep(Duration::from_millis(300));
    for (who, c) in [("y", &cy), ("z", &cz)] {
        for payload in [&b"direct"[..], b"broadcast"] {
            assert!(
                !received(c, payload),
                "x's frame crossed the bridge to {who}: {}",
                String::from_utf8_lossy(payload)
            );
        }
    }
    // Control: once y's port is not isolated, it does.
    set_port(&a.env, &y.host_iface, "isolated off");
    direct(y.mac, b"direct-2");
    std::thread::sleep(Duration::from_millis(300));
    assert!(received(&cy, b"direct-2"), "control: forwarded to y");
    a.env.ok(&["init"]);
    a.finish();
}

/// The packet count of the first rule of `family palisade chain` whose
/// listing contains `rule`; `None` without one.
fn rule_packets(a: &Arena, family: &str, chain: &str, rule: &str) -> Option<u64> {
    a.env
        .lab_ok("nft", &["list", "chain", family, "palisade", chain])
        .lines()
        .find(|l| l.contains(rule))
        .and_then(|l| l.split("packets ").nth(1))
        .and_then(|n| n.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Attack 15 (bridge mode): multicast chatter. A sandbox's kernel sends
/// router solicitations for as long as it lives, and MLD reports (about 9
/// a second from 100 sandboxes created in a row), each a walk of the
/// bridge over its ports and a trip through the host's input path. They
/// stop at the sandbox's port; neighbour discovery still passes.
#[test]
fn attack_15_sandbox_multicast_stops_at_its_port() {
    let Some(a) = Arena::new(
        "attack_15_sandbox_multicast_stops_at_its_port",
        "bridge",
        &[("x", "a", &[]), ("y", "a", &[])],
    ) else {
        return;
    };
    let (x, y) = (a.sb(0), a.sb(1));
    let ll = palisade_core::model::link_local_from_mac(palisade_core::element::MacAddr(x.mac));
    let at_port = || {
        rule_packets(
            &a,
            "bridge",
            "port_source",
            "nd-neighbor-advert } counter packets",
        )
    };
    let at_host =
        || rule_packets(&a, "inet", "sandbox_to_host", "counter packets").expect("the host's drop");
    let udp_at_port = || rule_packets(&a, "bridge", "port_source", "!= ipv6-icmp counter packets");
    let (port_before, udp_before, host_before) = (at_port(), udp_at_port(), at_host());
    let all_routers: Ipv6Addr = "ff02::2".parse().unwrap();
    let mld_routers: Ipv6Addr = "ff02::16".parse().unwrap();
    for _ in 0..3 {
        let rs = [133u8, 0, 0, 0, 0, 0, 0, 0];
        let f =
            build_icmpv6_frame(x.mac, [0x33, 0x33, 0, 0, 0, 2], ll, all_routers, 255, &rs).unwrap();
        send_frame(&x.ns, "eth0", &f).unwrap();
        // An MLDv2 report with no records.
        let report = [143u8, 0, 0, 0, 0, 0, 0, 0];
        let f = build_icmpv6_frame(
            x.mac,
            [0x33, 0x33, 0, 0, 0, 0x16],
            ll,
            mld_routers,
            1,
            &report,
        )
        .unwrap();
        send_frame(&x.ns, "eth0", &f).unwrap();
        // An mDNS query: multicast, not ICMPv6.
        let f = build_udp_frame(
            x.mac,
            [0x33, 0x33, 0, 0, 0, 0xfb],
            ll.into(),
            "ff02::fb".parse::<Ipv6Addr>().unwrap().into(),
            5353,
            5353,
            b"query",
        )
        .unwrap();
        send_frame(&x.ns, "eth0", &f).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        at_host(),
        host_before,
        "the host's input path saw a sandbox's solicitations"
    );
    let (Some(before), Some(after), Some(udp_before), Some(udp_after)) =
        (port_before, at_port(), udp_before, udp_at_port())
    else {
        panic!("the port has no rules for multicast");
    };
    assert!(
        after >= before + 6,
        "the port did not drop the ICMPv6: {before} then {after}"
    );
    assert!(
        udp_after >= udp_before + 3,
        "the port did not drop the mDNS queries: {udp_before} then {udp_after}"
    );
    // Control: neighbour discovery passes, and IPv6 between the two works.
    assert!(
        ping(&x.ns, y.v6.into(), T).unwrap().reached(),
        "control: same tenant ping over IPv6"
    );
    a.finish();
}

/// Attack 16 (bridge mode): a sandbox outlives its destroy in the namespace
/// palisade made for it. The destroy leaves that namespace's veth to die
/// with it, but a process can keep a namespace alive (here the test holds
/// it open): its `eth0` keeps its addresses, routes and gateway, and its
/// host end stays up on the bridge until the reap. Its elements are gone,
/// so the bridge drops all it sends: nothing reaches the internet (which
/// its policy allowed), the metadata service or the host, although its
/// frames reach its port. The reap deletes the veth, namespace alive or not.
#[test]
fn attack_16_a_kept_namespace_passes_nothing_after_its_destroy() {
    use std::os::fd::AsRawFd;
    let Some(mut a) = Arena::new(
        "attack_16_a_kept_namespace_passes_nothing_after_its_destroy",
        "bridge",
        &[],
    ) else {
        return;
    };
    let name = a.env.name("x");
    // No namespace by that name: palisade makes it.
    a.env
        .ok(&["sandbox", "create", &name, "--tenant", "a", "--internet"]);
    a.names.push(name.clone());
    let x = a.sb(0);
    let gw4 = IpAddr::from(Ipv4Addr::new(10, 200, 0, 1));
    let internet = [IpAddr::from(World::INTERNET4), World::INTERNET6.into()];
    let metadata = [IpAddr::from(World::METADATA4), World::METADATA6.into()];
    let mut heard = ListenerSet::new();
    for ip in internet.iter().chain(&metadata) {
        heard.add(&a.world.path(), L4::Udp, sock(*ip, 53)).unwrap();
    }
    heard
        .add(&a.env.lab.path(), L4::Udp, sock(gw4, 53))
        .unwrap();
    for ip in internet {
        assert!(
            udp_exchange(&x.ns, sock(ip, 53), T).unwrap().reached(),
            "control: the live sandbox reaches {ip}"
        );
    }
    let heard_before = heard.all_arrivals().len();
    assert_eq!(heard_before, 2, "{:?}", arrivals(&heard));

    let kept = palisade_link::open_netns(&x.ns).unwrap();
    a.env.ok(&["sandbox", "destroy", &name]);
    a.names.clear();
    assert!(!x.ns.exists(), "the destroy removed the namespace's name");
    let inside = PathBuf::from(format!("/proc/self/fd/{}", kept.as_raw_fd()));
    assert_eq!(a.env.retired_links(), vec![x.host_iface.clone()]);
    // A veth waiting for the reap is no finding.
    a.env.ok(&["verify"]);
    let port = Capture::start(&a.env.lab.path(), &x.host_iface).unwrap();
    for ip in internet.iter().chain(&metadata).chain([&gw4]) {
        assert!(
            !udp_exchange(&inside, sock(*ip, 53), T).unwrap().reached(),
            "the kept namespace reached {ip} after its destroy"
        );
    }
    assert_eq!(
        heard.all_arrivals().len(),
        heard_before,
        "{:?}",
        arrivals(&heard)
    );
    let internet4 = World::INTERNET4.octets();
    assert!(
        port.frames()
            .iter()
            .any(|f| !f.outgoing && f.data.windows(4).any(|w| w == internet4)),
        "control: the kept namespace's packets reach its port"
    );

    a.env.ok(&["reap"]);
    assert_eq!(a.env.retired_links(), Vec::<String>::new());
    let mut rtnl = palisade_link::Rtnl::open_in(&inside).unwrap();
    assert_eq!(
        rtnl.link_index("eth0").unwrap(),
        None,
        "the reap deleted the veth of the kept namespace"
    );
    drop(kept);
    a.finish();
}
