//! `palisade-guest-attacks`: the attacker inside a microVM guest.
//!
//! It runs as a child of the guest's `/init`, in a real Linux guest attached
//! to a palisade tap sandbox, and tries what a hostile workload would: reach
//! the metadata service, the host's services, other sandboxes and private
//! ranges; forge its source IP and MAC; poison the host's neighbour table
//! with ARP and NDP; play router and DHCP server. It does not judge: it
//! prints one line per attempt on the console,
//!
//! ```text
//! PALISADE-CASE <case> <name> <outcome>
//! ```
//!
//! then `PALISADE-DONE`, and the test on the host side compares the lines
//! with what palisade's policy allows and with what the lab's listeners and
//! captures recorded. `<case>` is the attack case (1-7), `<name>` says what
//! was sent (`tcp:169.254.169.254:80`, `icmp:fd00:ec2::254`,
//! `spoof4-peer`...), and `<outcome>` is `reply` (the destination
//! answered), `noreply` (nothing came back in time), `refused` (TCP reset or
//! ICMP port unreachable), `unreachable:<why>`, `sent` (a forged frame left
//! the interface; whether it arrived is for the host to tell) or
//! `error:<why>` (the attempt could not be made at all).
//!
//! Parameters come from the kernel command line (`palisade.KEY=VALUE`), or
//! from the arguments (`KEY=VALUE`) when there are any, which makes it
//! possible to run it in an ordinary network namespace too (with
//! `configure=0` if the interface is already set up):
//!
//! | key | meaning |
//! |---|---|
//! | `iface` | interface to use (default `eth0`) |
//! | `ip4`, `ip6`, `mac` | the sandbox's own addresses and MAC (required) |
//! | `gw4`, `gw6` | gateways (default `10.200.0.1`, `fe80::1`) |
//! | `gwmac` | the gateway's MAC, destination of forged frames (required) |
//! | `peer4`, `peer6` | a sandbox of the same tenant (required) |
//! | `other4`, `other6` | a sandbox of another tenant (required) |
//! | `host` | comma-separated addresses of the host (case 2) |
//! | `hostports` | ports to try on them (default 22,2375,4646,6443,8000,10250) |
//! | `peerport` | port the other sandboxes listen on (default 8080) |
//! | `timeout` | probe timeout in ms (default 2000) |
//! | `configure` | `1` (default): address `iface`, bring it up, add the routes |

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::Path;
use std::time::Duration;

use palisade_lab::traffic::{
    self, build_arp_reply, build_arp_request, build_icmpv6_frame, build_neighbor_advert,
    build_udp_frame, ProbeOutcome,
};
use palisade_lab::World;
use palisade_link::{ipv6_link_local_from_mac, set_sysctl, RouteSpec, Rtnl};

/// The guest has no named namespaces: the probes of the lab library enter
/// "the namespace at this path", which for us is our own.
const OWN_NETNS: &str = "/proc/self/ns/net";
/// A MAC that belongs to nobody, for MAC-spoofing frames.
const FORGED_MAC: [u8; 6] = [0x02, 0xde, 0xad, 0xbe, 0xef, 0x01];
/// A source outside the sandbox pool (TEST-NET-1) and its IPv6 counterpart.
const OUTSIDE4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
const OUTSIDE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x66, 0, 0, 0, 0, 0x66);
/// The prefix a rogue router advertisement offers.
const ROGUE_PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 1, 0, 0, 0, 0);
/// Where a rogue DHCP offer tells the host to go.
const ROGUE_LEASE4: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 250);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// Pause after each forged frame, so captures see them one by one.
const FRAME_GAP: Duration = Duration::from_millis(30);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let params = match Params::load(&args) {
        Ok(p) => p,
        Err(e) => {
            report(0, "setup", &format!("error:{e}"));
            done();
            std::process::exit(1);
        }
    };
    if params.configure {
        if let Err(e) = configure(&params) {
            report(0, "setup", &format!("error:{e}"));
            done();
            std::process::exit(1);
        }
    }
    println!(
        "PALISADE-INFO guest {} ip4 {} ip6 {} mac {} gateway-mac {}",
        params.iface,
        params.ip4,
        params.ip6,
        fmt_mac(params.mac),
        fmt_mac(params.gwmac)
    );
    let scope = match iface_index(&params.iface) {
        Ok(i) => i,
        Err(e) => {
            report(0, "setup", &format!("error:{e}"));
            done();
            std::process::exit(1);
        }
    };

    // Cases 1, 2, 3 and 7: probes, all at once (each waits for its own
    // timeout, so a round costs one timeout).
    run_probes(&probe_plan(&params, scope), params.timeout);
    // Cases 4, 5 and 6: forged frames, one after another.
    for (case, name, frame) in frame_plan(&params) {
        let outcome = match frame {
            Ok(f) => match traffic::send_frame(Path::new(OWN_NETNS), &params.iface, &f) {
                Ok(()) => "sent".to_string(),
                Err(e) => format!("error:{e}"),
            },
            Err(e) => format!("error:{e}"),
        };
        report(case, &name, &outcome);
        std::thread::sleep(FRAME_GAP);
    }
    // After the poisoning attempts, the sandbox's own traffic still works.
    let after: Vec<Probe> = [IpAddr::V4(params.peer4), IpAddr::V6(params.peer6)]
        .into_iter()
        .map(|ip| {
            let dst = SocketAddr::new(ip, params.peer_port);
            Probe {
                case: 5,
                name: format!("after:{}", target_name("tcp", dst)),
                kind: Kind::Tcp(dst),
            }
        })
        .collect();
    run_probes(&after, params.timeout);
    done();
}

fn report(case: u8, name: &str, outcome: &str) {
    // One write per line: the serial console must not interleave lines.
    let line = format!(
        "PALISADE-CASE {case} {name} {}\n",
        outcome.replace(char::is_whitespace, "_")
    );
    print_line(&line);
}

fn done() {
    print_line("PALISADE-DONE\n");
}

fn print_line(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

/// Everything the attacks need to know, from the command line.
#[derive(Debug)]
struct Params {
    iface: String,
    ip4: Ipv4Addr,
    ip6: Ipv6Addr,
    mac: [u8; 6],
    gw4: Ipv4Addr,
    gw6: Ipv6Addr,
    gwmac: [u8; 6],
    peer4: Ipv4Addr,
    peer6: Ipv6Addr,
    other4: Ipv4Addr,
    other6: Ipv6Addr,
    host: Vec<IpAddr>,
    host_ports: Vec<u16>,
    peer_port: u16,
    timeout: Duration,
    configure: bool,
}

impl Params {
    /// From `args` (`KEY=VALUE`) if given, else from `/proc/cmdline`
    /// (`palisade.KEY=VALUE`).
    fn load(args: &[String]) -> Result<Params, String> {
        let mut kv = BTreeMap::new();
        if args.is_empty() {
            let cmdline = std::fs::read_to_string("/proc/cmdline")
                .map_err(|e| format!("read /proc/cmdline: {e}"))?;
            for word in cmdline.split_whitespace() {
                if let Some((k, v)) = word
                    .strip_prefix("palisade.")
                    .and_then(|w| w.split_once('='))
                {
                    kv.insert(k.to_string(), v.to_string());
                }
            }
        } else {
            for a in args {
                let a = a.trim_start_matches("--");
                let (k, v) = a
                    .split_once('=')
                    .ok_or_else(|| format!("argument {a:?} is not KEY=VALUE"))?;
                kv.insert(k.to_string(), v.to_string());
            }
        }
        let get = |k: &str| -> Result<&str, String> {
            kv.get(k)
                .map(String::as_str)
                .ok_or_else(|| format!("parameter {k} is missing"))
        };
        let get_or = |k: &str, d: &'static str| kv.get(k).map(String::as_str).unwrap_or(d);
        fn parse<T: std::str::FromStr>(k: &str, v: &str) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("parameter {k}={v:?} does not parse"))
        }
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        let host = list(get_or("host", ""))
            .iter()
            .map(|s| parse::<IpAddr>("host", s))
            .collect::<Result<Vec<_>, _>>()?;
        let host_ports = list(get_or("hostports", "22,2375,4646,6443,8000,10250"))
            .iter()
            .map(|s| parse::<u16>("hostports", s))
            .collect::<Result<Vec<_>, _>>()?;
        let timeout_ms: u64 = parse("timeout", get_or("timeout", "2000"))?;
        Ok(Params {
            iface: get_or("iface", "eth0").to_string(),
            ip4: parse("ip4", get("ip4")?)?,
            ip6: parse("ip6", get("ip6")?)?,
            mac: parse_mac("mac", get("mac")?)?,
            gw4: parse("gw4", get_or("gw4", "10.200.0.1"))?,
            gw6: parse("gw6", get_or("gw6", "fe80::1"))?,
            gwmac: parse_mac("gwmac", get("gwmac")?)?,
            peer4: parse("peer4", get("peer4")?)?,
            peer6: parse("peer6", get("peer6")?)?,
            other4: parse("other4", get("other4")?)?,
            other6: parse("other6", get("other6")?)?,
            host,
            host_ports,
            peer_port: parse("peerport", get_or("peerport", "8080"))?,
            timeout: Duration::from_millis(timeout_ms.max(1)),
            configure: get_or("configure", "1") != "0",
        })
    }
}

fn parse_mac(key: &str, s: &str) -> Result<[u8; 6], String> {
    let bad = || format!("parameter {key}={s:?} is not a MAC address");
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

fn fmt_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn iface_index(name: &str) -> Result<u32, String> {
    let mut rtnl = Rtnl::open().map_err(|e| format!("rtnetlink: {e}"))?;
    rtnl.link_index(name)
        .map_err(|e| format!("look up {name}: {e}"))?
        .ok_or_else(|| format!("no interface {name}"))
}

/// What palisade tells a tap sandbox's guest to configure: the MAC (set by
/// the VMM), the IPv4 address as a /32 with a default route via the
/// gateway on-link, the IPv6 address as a /128 with a default route via
/// fe80::1. No DAD, so the addresses are usable at once.
fn configure(p: &Params) -> Result<(), String> {
    let sysctl = |k: &str, v: &str| set_sysctl(k, v).map_err(|e| format!("sysctl {k}: {e}"));
    for scope in ["all", "default", p.iface.as_str()] {
        sysctl(&format!("net/ipv6/conf/{scope}/accept_dad"), "0")?;
        sysctl(&format!("net/ipv6/conf/{scope}/accept_ra"), "0")?;
    }
    let mut rtnl = Rtnl::open().map_err(|e| format!("rtnetlink: {e}"))?;
    if let Some(lo) = rtnl
        .link_index("lo")
        .map_err(|e| format!("look up lo: {e}"))?
    {
        rtnl.set_up(lo).map_err(|e| format!("lo up: {e}"))?;
    }
    let link = rtnl
        .list_links()
        .map_err(|e| format!("list links: {e}"))?
        .into_iter()
        .find(|l| l.name == p.iface)
        .ok_or_else(|| format!("no interface {} (is virtio_net loaded?)", p.iface))?;
    if link.mac != Some(p.mac) {
        return Err(format!(
            "{} has MAC {}, palisade assigned {}: start the VMM with the sandbox's MAC",
            p.iface,
            link.mac.map(fmt_mac).unwrap_or_else(|| "none".into()),
            fmt_mac(p.mac)
        ));
    }
    let eth = link.index;
    rtnl.add_address(eth, IpAddr::V4(p.ip4), 32)
        .map_err(|e| format!("add {}/32: {e}", p.ip4))?;
    rtnl.add_address(eth, IpAddr::V6(p.ip6), 128)
        .map_err(|e| format!("add {}/128: {e}", p.ip6))?;
    rtnl.set_up(eth)
        .map_err(|e| format!("{} up: {e}", p.iface))?;
    for (dest, gateway, onlink) in [
        (IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V4(p.gw4), true),
        (IpAddr::V6(Ipv6Addr::UNSPECIFIED), IpAddr::V6(p.gw6), false),
    ] {
        rtnl.add_route(&RouteSpec {
            dest,
            prefix_len: 0,
            oif: eth,
            gateway: Some(gateway),
            onlink,
            source: None,
        })
        .map_err(|e| format!("default route via {gateway}: {e}"))?;
    }
    // Let the link come up (carrier, link-local address) before probing.
    std::thread::sleep(Duration::from_millis(300));
    Ok(())
}

enum Kind {
    Tcp(SocketAddr),
    Udp(SocketAddr),
    Icmp(IpAddr),
}

struct Probe {
    case: u8,
    name: String,
    kind: Kind,
}

/// `tcp:10.0.0.1:80`, `udp:[fd00::1]:53`: like a socket address, but never
/// with a scope id, so the host side can predict every name.
fn target_name(proto: &str, dst: SocketAddr) -> String {
    match dst.ip() {
        IpAddr::V4(ip) => format!("{proto}:{ip}:{}", dst.port()),
        IpAddr::V6(ip) => format!("{proto}:[{ip}]:{}", dst.port()),
    }
}

/// A destination for connecting: link-local IPv6 addresses get the
/// interface as their scope.
fn sockaddr(ip: IpAddr, port: u16, scope: u32) -> SocketAddr {
    match ip {
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => {
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope))
        }
        _ => SocketAddr::new(ip, port),
    }
}

/// TCP (ports 80 and 443), UDP (port 53) and ICMP echo to `ip`.
fn web_probes(case: u8, ip: IpAddr, out: &mut Vec<Probe>) {
    for port in [80, 443] {
        let dst = SocketAddr::new(ip, port);
        out.push(Probe {
            case,
            name: target_name("tcp", dst),
            kind: Kind::Tcp(dst),
        });
    }
    let dst = SocketAddr::new(ip, 53);
    out.push(Probe {
        case,
        name: target_name("udp", dst),
        kind: Kind::Udp(dst),
    });
    out.push(Probe {
        case,
        name: format!("icmp:{ip}"),
        kind: Kind::Icmp(ip),
    });
}

fn probe_plan(p: &Params, scope: u32) -> Vec<Probe> {
    let mut out = Vec::new();
    // 1: the metadata service, IPv4 and IPv6.
    for ip in [World::METADATA4.into(), World::METADATA6.into()] {
        web_probes(1, ip, &mut out);
    }
    // 2: the host's services on every address it has.
    for &ip in &p.host {
        for &port in &p.host_ports {
            let dst = sockaddr(ip, port, scope);
            out.push(Probe {
                case: 2,
                name: target_name("tcp", SocketAddr::new(ip, port)),
                kind: Kind::Tcp(dst),
            });
        }
    }
    // 3: the same tenant's sandbox and another tenant's.
    for ip in [
        IpAddr::V4(p.peer4),
        IpAddr::V6(p.peer6),
        IpAddr::V4(p.other4),
        IpAddr::V6(p.other6),
    ] {
        let dst = SocketAddr::new(ip, p.peer_port);
        out.push(Probe {
            case: 3,
            name: target_name("tcp", dst),
            kind: Kind::Tcp(dst),
        });
        out.push(Probe {
            case: 3,
            name: target_name("udp", dst),
            kind: Kind::Udp(dst),
        });
        out.push(Probe {
            case: 3,
            name: format!("icmp:{ip}"),
            kind: Kind::Icmp(ip),
        });
    }
    // 7: the internet (reachable with --internet, within --allow) and every
    // blocked range the world stands in for (never).
    for ip in [
        World::INTERNET4.into(),
        World::INTERNET6.into(),
        World::PRIVATE10.into(),
        World::PRIVATE172.into(),
        World::PRIVATE192.into(),
        World::CGNAT4.into(),
        World::ULA6.into(),
    ] {
        web_probes(7, ip, &mut out);
    }
    out
}

fn outcome_word(o: &ProbeOutcome) -> String {
    match o {
        ProbeOutcome::Connected | ProbeOutcome::Replied => "reply".into(),
        ProbeOutcome::TimedOut => "noreply".into(),
        ProbeOutcome::Refused => "refused".into(),
        ProbeOutcome::Unreachable(why) => format!("unreachable:{why}"),
    }
}

/// Runs every probe on its own thread and reports them in plan order.
fn run_probes(probes: &[Probe], timeout: Duration) {
    let handles: Vec<_> = probes
        .iter()
        .map(|p| {
            let ns = Path::new(OWN_NETNS);
            let kind = match &p.kind {
                Kind::Tcp(d) => Kind::Tcp(*d),
                Kind::Udp(d) => Kind::Udp(*d),
                Kind::Icmp(ip) => Kind::Icmp(*ip),
            };
            std::thread::spawn(move || {
                let r = match kind {
                    Kind::Tcp(d) => traffic::tcp_connect(ns, d, timeout),
                    Kind::Udp(d) => traffic::udp_exchange(ns, d, timeout),
                    Kind::Icmp(ip) => traffic::ping(ns, ip, timeout),
                };
                match r {
                    Ok(o) => outcome_word(&o),
                    Err(e) => format!("error:{e}"),
                }
            })
        })
        .collect();
    for (p, h) in probes.iter().zip(handles) {
        let outcome = h
            .join()
            .unwrap_or_else(|_| "error:probe thread panicked".into());
        report(p.case, &p.name, &outcome);
    }
}

type Frame = Result<Vec<u8>, String>;

fn lab(r: palisade_lab::Result<Vec<u8>>) -> Frame {
    r.map_err(|e| e.to_string())
}

/// Cases 4, 5 and 6, in the order they are sent.
fn frame_plan(p: &Params) -> Vec<(u8, String, Frame)> {
    let own_ll = ipv6_link_local_from_mac(p.mac);
    let mut out: Vec<(u8, String, Frame)> = Vec::new();

    // 4: forged sources, towards the internet's UDP listener (port 53).
    // The control (own MAC and address) reaches when the sandbox has
    // internet; the peer and the other tenant's sandbox have internet, so
    // if a forged source were taken for theirs it would reach too.
    let dns4 = SocketAddr::new(World::INTERNET4.into(), 53);
    let dns6 = SocketAddr::new(World::INTERNET6.into(), 53);
    let spoofs: [(&str, [u8; 6], IpAddr, SocketAddr); 12] = [
        ("spoof4-control", p.mac, p.ip4.into(), dns4),
        ("spoof4-peer", p.mac, p.peer4.into(), dns4),
        ("spoof4-other", p.mac, p.other4.into(), dns4),
        ("spoof4-outside", p.mac, OUTSIDE4.into(), dns4),
        ("spoof4-gateway", p.mac, p.gw4.into(), dns4),
        ("spoof4-mac", FORGED_MAC, p.ip4.into(), dns4),
        ("spoof6-control", p.mac, p.ip6.into(), dns6),
        ("spoof6-peer", p.mac, p.peer6.into(), dns6),
        ("spoof6-other", p.mac, p.other6.into(), dns6),
        ("spoof6-outside", p.mac, OUTSIDE6.into(), dns6),
        ("spoof6-gateway", p.mac, p.gw6.into(), dns6),
        ("spoof6-mac", FORGED_MAC, p.ip6.into(), dns6),
    ];
    for (i, (name, mac, src, dst)) in spoofs.into_iter().enumerate() {
        let payload = format!("palisade-spoof {name}");
        let frame = build_udp_frame(
            mac,
            p.gwmac,
            src,
            dst.ip(),
            40000 + i as u16,
            dst.port(),
            payload.as_bytes(),
        );
        out.push((4, name.to_string(), lab(frame)));
    }

    // 5: ARP and NDP claiming the gateway's or another sandbox's address.
    let arp: [(&str, Vec<u8>); 7] = [
        (
            "arp-reply-gateway",
            build_arp_reply(p.mac, p.gw4, p.gwmac, p.gw4),
        ),
        (
            "arp-reply-peer",
            build_arp_reply(p.mac, p.peer4, p.gwmac, p.gw4),
        ),
        (
            "arp-reply-other",
            build_arp_reply(p.mac, p.other4, p.gwmac, p.gw4),
        ),
        (
            "arp-request-gateway",
            build_arp_request(p.mac, p.gw4, p.gw4),
        ),
        ("arp-request-peer", build_arp_request(p.mac, p.peer4, p.gw4)),
        (
            "arp-request-other",
            build_arp_request(p.mac, p.other4, p.gw4),
        ),
        (
            "arp-request-forged-mac",
            build_arp_request(FORGED_MAC, p.ip4, p.gw4),
        ),
    ];
    for (name, frame) in arp {
        out.push((5, name.to_string(), Ok(frame)));
    }
    let nd: [(&str, [u8; 6], Ipv6Addr, Ipv6Addr); 5] = [
        ("na-gateway", p.mac, own_ll, p.gw6),
        ("na-gateway-from-gateway", p.mac, p.gw6, p.gw6),
        ("na-peer", p.mac, own_ll, p.peer6),
        ("na-other", p.mac, own_ll, p.other6),
        ("na-forged-mac", FORGED_MAC, own_ll, p.ip6),
    ];
    for (name, mac, src, target) in nd {
        out.push((
            5,
            name.to_string(),
            Ok(build_neighbor_advert(
                mac,
                ALL_NODES_MAC,
                src,
                ALL_NODES,
                target,
            )),
        ));
    }
    // Neighbour solicitations for the gateway from someone else's address:
    // a host that answers them learns "that address is at this MAC".
    for (name, src) in [("ns-from-peer", p.peer6), ("ns-from-other", p.other6)] {
        out.push((5, name.to_string(), neighbor_solicit(p.mac, src, p.gw6)));
    }

    // 6: playing router and DHCP server.
    out.push((6, "ra".into(), router_advert(p.mac, own_ll)));
    out.push((6, "ra-from-gateway".into(), router_advert(p.mac, p.gw6)));
    let offer = dhcp4_offer(p);
    out.push((
        6,
        "dhcp4-offer".into(),
        lab(build_udp_frame(
            p.mac,
            BROADCAST_MAC,
            p.ip4.into(),
            Ipv4Addr::BROADCAST.into(),
            67,
            68,
            &offer,
        )),
    ));
    out.push((
        6,
        "dhcp4-offer-to-gateway".into(),
        lab(build_udp_frame(
            p.mac,
            p.gwmac,
            p.ip4.into(),
            p.gw4.into(),
            67,
            68,
            &offer,
        )),
    ));
    out.push((
        6,
        "dhcp6-advertise".into(),
        lab(build_udp_frame(
            p.mac,
            ALL_NODES_MAC,
            own_ll.into(),
            ALL_NODES.into(),
            547,
            546,
            &dhcp6_advertise(p.mac),
        )),
    ));
    out
}

/// Solicited-node multicast address and MAC of `target`.
fn solicited_node(target: Ipv6Addr) -> (Ipv6Addr, [u8; 6]) {
    let o = target.octets();
    let ip = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    );
    (ip, [0x33, 0x33, 0xff, o[13], o[14], o[15]])
}

fn neighbor_solicit(mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Frame {
    let (dst, dst_mac) = solicited_node(target);
    let mut m = vec![135, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&target.octets());
    m.extend_from_slice(&[1, 1]); // source link-layer address option
    m.extend_from_slice(&mac);
    lab(build_icmpv6_frame(mac, dst_mac, src, dst, 255, &m))
}

/// A router advertisement: "I am your default router (lifetime 1800 s),
/// take addresses from 2001:db8:bad:1::/64 and ask DHCPv6 for the rest".
fn router_advert(mac: [u8; 6], src: Ipv6Addr) -> Frame {
    let mut m = vec![134, 0, 0, 0, 64, 0xc0]; // hop limit 64, M and O flags
    m.extend_from_slice(&1800u16.to_be_bytes()); // router lifetime
    m.extend_from_slice(&[0; 8]); // reachable time, retrans timer
    m.extend_from_slice(&[1, 1]); // source link-layer address option
    m.extend_from_slice(&mac);
    m.extend_from_slice(&[3, 4, 64, 0xc0]); // prefix information: /64, L and A
    m.extend_from_slice(&86400u32.to_be_bytes()); // valid lifetime
    m.extend_from_slice(&14400u32.to_be_bytes()); // preferred lifetime
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&ROGUE_PREFIX.octets());
    lab(build_icmpv6_frame(
        mac,
        ALL_NODES_MAC,
        src,
        ALL_NODES,
        255,
        &m,
    ))
}

/// A BOOTP/DHCP offer of 10.200.0.250/16 with this guest as router and
/// DNS server.
fn dhcp4_offer(p: &Params) -> Vec<u8> {
    let mut b = vec![2, 1, 6, 0]; // op reply, Ethernet, hlen 6, hops
    b.extend_from_slice(&0x7061_6c69u32.to_be_bytes()); // xid
    b.extend_from_slice(&[0; 4]); // secs, flags
    b.extend_from_slice(&[0; 4]); // ciaddr
    b.extend_from_slice(&ROGUE_LEASE4.octets()); // yiaddr
    b.extend_from_slice(&p.ip4.octets()); // siaddr
    b.extend_from_slice(&[0; 4]); // giaddr
    let mut chaddr = [0u8; 16];
    chaddr[..6].copy_from_slice(&p.gwmac);
    b.extend_from_slice(&chaddr);
    b.extend_from_slice(&[0; 64 + 128]); // sname, file
    b.extend_from_slice(&[99, 130, 83, 99]); // magic cookie
    b.extend_from_slice(&[53, 1, 2]); // DHCPOFFER
    for code in [54u8, 3, 6] {
        // server identifier, router, DNS server: this guest
        b.extend_from_slice(&[code, 4]);
        b.extend_from_slice(&p.ip4.octets());
    }
    b.extend_from_slice(&[1, 4, 255, 255, 0, 0]); // netmask
    b.extend_from_slice(&[51, 4]);
    b.extend_from_slice(&86400u32.to_be_bytes()); // lease time
    b.push(255);
    b
}

/// A DHCPv6 advertise offering an address in the rogue prefix.
fn dhcp6_advertise(mac: [u8; 6]) -> Vec<u8> {
    let mut b = vec![2, 0x70, 0x61, 0x6c]; // ADVERTISE, transaction id
    b.extend_from_slice(&[0, 2, 0, 10, 0, 3, 0, 1]); // server id: DUID-LL, Ethernet
    b.extend_from_slice(&mac);
    let mut addr = ROGUE_PREFIX.octets();
    addr[15] = 0x99;
    b.extend_from_slice(&[0, 3, 0, 40]); // IA_NA, 40 bytes
    b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0x0e, 0x10, 0, 0, 0x15, 0x18]); // IAID, T1, T2
    b.extend_from_slice(&[0, 5, 0, 24]); // IA address
    b.extend_from_slice(&addr);
    b.extend_from_slice(&[0, 0, 0x38, 0x40, 0, 1, 0x51, 0x80]); // lifetimes
    b
}
