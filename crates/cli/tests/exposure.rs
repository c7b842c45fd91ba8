//! Port exposure with real traffic: reachable from the uplink side and from
//! the host itself, never a pivot for another sandbox, refused on conflict,
//! and gone with the sandbox, also for a new sandbox that gets its address.

mod common;

use common::Env;
use palisade_lab::traffic::{tcp_connect, udp_exchange, ListenerSet, ProbeOutcome, L4};
use palisade_lab::World;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

const T: Duration = Duration::from_millis(800);

fn config(mode: &str) -> String {
    format!("[network]\nmode = \"{mode}\"\nuplink = \"up0\"\n[isolation]\ninter_sandbox = \"same-tenant\"\n")
}

/// Sets the lab host's br_netfilter switches (per namespace; on by
/// default on this kernel).
fn set_br_netfilter(env: &Env, on: bool) {
    let value = if on { "1" } else { "0" };
    env.lab
        .run(move || {
            for key in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
                palisade_link::set_sysctl(&format!("net/bridge/{key}"), value).unwrap();
            }
        })
        .unwrap();
}

fn netns(name: &str) -> PathBuf {
    palisade_link::netns_path(name)
}

fn sock(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

/// Peers (source addresses) that reached the listener at `local`.
fn peers(set: &ListenerSet, l4: L4, local: SocketAddr) -> Vec<IpAddr> {
    set.arrivals_at(l4, local)
        .into_iter()
        .map(|a| a.peer.ip())
        .collect()
}

#[test]
fn exposure_reaches_from_outside_and_host_but_is_no_pivot_routed() {
    exposure_reaches_from_outside_and_host_but_is_no_pivot("routed");
}

#[test]
fn exposure_reaches_from_outside_and_host_but_is_no_pivot_bridge() {
    exposure_reaches_from_outside_and_host_but_is_no_pivot("bridge");
}

fn exposure_reaches_from_outside_and_host_but_is_no_pivot(mode: &str) {
    let Some(env) = Env::new(
        &format!("exposure_reaches_from_outside_and_host_but_is_no_pivot ({mode} mode)"),
        &config(mode),
    ) else {
        return;
    };
    let world = env.lab.add_world().unwrap();
    let web = env.name("web");
    let peer = env.name("peer");
    let other = env.name("other");
    env.ok(&["sandbox", "create", &web, "--tenant", "a"]);
    env.ok(&["sandbox", "create", &peer, "--tenant", "a"]);
    env.ok(&["sandbox", "create", &other, "--tenant", "b"]);
    let (web4, web6) = env.addresses(&web);
    let (peer4, _) = env.addresses(&peer);
    let (other4, other6) = env.addresses(&other);
    let web4: IpAddr = web4.parse().unwrap();
    let web6: IpAddr = web6.parse().unwrap();

    let mut listeners = ListenerSet::new();
    for port in [80, 9000, 9001, 9002] {
        listeners
            .add(&netns(&web), L4::Tcp, sock(web4, port))
            .unwrap();
        listeners
            .add(&netns(&web), L4::Tcp, sock(web6, port))
            .unwrap();
    }
    let out = env.ok(&["expose", &web, "--port", "80", "--host-port", "8080"]);
    assert!(out.contains("8080/tcp -> 80"), "{out}");
    env.ok(&[
        "expose",
        &web,
        "--port",
        "9000-9002",
        "--host-port",
        "7000-7002",
        "--host-ip",
        &World::LAB4.to_string(),
    ]);

    // From outside, through the uplink, IPv4 and IPv6; the source is kept.
    for (dst, local) in [
        (sock(World::LAB4, 8080), sock(web4, 80)),
        (sock(World::LAB6, 8080), sock(web6, 80)),
        (sock(World::LAB4, 7001), sock(web4, 9001)),
    ] {
        let got = tcp_connect(&world.path(), dst, T).unwrap();
        assert_eq!(got, ProbeOutcome::Connected, "world -> {dst}");
        let from = peers(&listeners, L4::Tcp, local);
        assert!(
            from.contains(&IpAddr::from(World::WORLD4))
                || from.contains(&IpAddr::from(World::WORLD6)),
            "world -> {dst} did not arrive at {local}: {from:?}"
        );
    }
    // The range is bound to the one address: not on the IPv6 one.
    assert_ne!(
        tcp_connect(&world.path(), sock(World::LAB6, 7001), T).unwrap(),
        ProbeOutcome::Connected
    );

    // From the host itself (the output path).
    for dst in [sock(World::LAB4, 8080), sock(World::LAB6, 8080)] {
        let got = tcp_connect(&env.lab.path(), dst, T).unwrap();
        assert_eq!(got, ProbeOutcome::Connected, "host -> {dst}");
    }

    // Another tenant's sandbox: the exposure is no way around the policy,
    // exactly like its direct attempt.
    for dst in [
        sock(World::LAB4, 8080),
        sock(World::LAB6, 8080),
        sock(web4, 80),
    ] {
        let got = tcp_connect(&netns(&other), dst, T).unwrap();
        assert!(!got.reached(), "other tenant -> {dst}: {got:?}");
    }
    for local in [sock(web4, 80), sock(web6, 80)] {
        let from = peers(&listeners, L4::Tcp, local);
        assert!(
            !from.contains(&other4.parse().unwrap()) && !from.contains(&other6.parse().unwrap()),
            "the other tenant reached {local}: {from:?}"
        );
    }
    // The same tenant may reach it directly, so through the exposure too.
    // In bridge mode, with both sandboxes on one bridge, br_netfilter
    // (when on) takes a packet whose DNAT leads back out of the bridge it
    // came in on and bridges it from port to port, where the ports'
    // isolation drops it: the hairpin fails closed, and works without
    // br_netfilter (docs/exposure.md).
    let peer4: IpAddr = peer4.parse().unwrap();
    let hairpins: &[(bool, bool)] = if mode == "bridge" {
        &[(false, true), (true, false)]
    } else {
        &[(true, true)]
    };
    for &(br_netfilter, reaches) in hairpins {
        if mode == "bridge" {
            set_br_netfilter(&env, br_netfilter);
        }
        let before = peers(&listeners, L4::Tcp, sock(web4, 80))
            .iter()
            .filter(|p| **p == peer4)
            .count();
        let got = tcp_connect(&netns(&peer), sock(World::LAB4, 8080), T).unwrap();
        let after = peers(&listeners, L4::Tcp, sock(web4, 80))
            .iter()
            .filter(|p| **p == peer4)
            .count();
        let what = format!("same tenant via the exposure (br_netfilter {br_netfilter})");
        if reaches {
            assert_eq!(got, ProbeOutcome::Connected, "{what}");
            assert_eq!(after, before + 1, "{what}");
        } else {
            assert!(!got.reached(), "{what}: {got:?}");
            assert_eq!(after, before, "{what}");
        }
    }

    // Conflicts are refused with a clear message, nothing changes.
    for args in [
        vec![
            "expose",
            other.as_str(),
            "--port",
            "80",
            "--host-port",
            "8080",
        ],
        vec![
            "expose",
            other.as_str(),
            "--port",
            "22",
            "--host-port",
            "8080",
            "--host-ip",
            "198.51.100.1",
        ],
        vec![
            "expose",
            other.as_str(),
            "--port",
            "1-3",
            "--host-port",
            "7002-7004",
        ],
    ] {
        let out = env.palisade(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            err.contains("is taken") && err.contains(&format!("sandbox {web} already exposes")),
            "{args:?}: {err}"
        );
    }
    // Bad input names the problem.
    for (args, want) in [
        (
            vec!["--port", "80", "--host-port", "8080-8081"],
            "differ in length",
        ),
        (vec!["--port", "0"], "not a port"),
        (vec!["--port", "80", "--host-ip", "127.0.0.1"], "loopback"),
        (
            vec!["--port", "80", "--host-ip", "nonsense"],
            "not an IPv4 or IPv6",
        ),
    ] {
        let mut full = vec!["expose", other.as_str()];
        full.extend(args);
        let out = env.palisade(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{full:?}: {err}"
        );
    }

    let show = env.json(&["sandbox", "show", &web, "--json"]);
    assert_eq!(show["exposures"].as_array().unwrap().len(), 2, "{show}");
    env.ok(&["verify"]);

    // Unexpose: the port is closed again (the host itself answers now).
    env.ok(&["unexpose", &web, "--host-port", "8080"]);
    let before = peers(&listeners, L4::Tcp, sock(web4, 80)).len();
    let got = tcp_connect(&world.path(), sock(World::LAB4, 8080), T).unwrap();
    assert!(!got.reached(), "unexposed port still reached: {got:?}");
    assert_eq!(peers(&listeners, L4::Tcp, sock(web4, 80)).len(), before);
    let out = env.palisade(&["unexpose", &web, "--host-port", "8080"]);
    assert!(
        !out.status.success(),
        "unexposing twice must say nothing matched"
    );

    for name in [&web, &peer, &other] {
        env.ok(&["sandbox", "destroy", name]);
    }
    let got = tcp_connect(&world.path(), sock(World::LAB4, 7001), T).unwrap();
    assert!(!got.reached(), "exposure survived destroy: {got:?}");
    env.assert_empty();
}

#[test]
fn destroyed_exposure_never_reaches_the_next_sandbox_at_its_address() {
    // A pool of five addresses, the other four taken below, so the next
    // sandbox must get the destroyed one's address.
    let config = "[network]\nuplink = \"up0\"\nsubnet = \"10.200.0.0/29\"\n";
    let Some(env) = Env::new(
        "destroyed_exposure_never_reaches_the_next_sandbox_at_its_address",
        config,
    ) else {
        return;
    };
    let world = env.lab.add_world().unwrap();
    let first = env.name("first");
    env.ok(&["sandbox", "create", &first, "--tenant", "a"]);
    let (addr4, _) = env.addresses(&first);
    let addr4: IpAddr = addr4.parse().unwrap();
    let mut listeners = ListenerSet::new();
    listeners
        .add(&netns(&first), L4::Udp, sock(addr4, 5353))
        .unwrap();
    env.ok(&["expose", &first, "--proto", "udp", "--port", "5353"]);

    // One UDP flow from the world, answered, so conntrack holds it as
    // established with its DNAT.
    let client = palisade_link::run_in_netns(&world.path(), || UdpSocket::bind("0.0.0.0:0"))
        .unwrap()
        .unwrap();
    client.set_read_timeout(Some(T)).unwrap();
    let target = sock(World::LAB4, 5353);
    let mut buf = [0u8; 64];
    client.send_to(b"one", target).unwrap();
    assert!(
        client.recv_from(&mut buf).is_ok(),
        "first sandbox did not answer"
    );
    assert_eq!(listeners.arrivals_at(L4::Udp, sock(addr4, 5353)).len(), 1);
    drop(listeners);

    let fillers: Vec<String> = (0..4).map(|i| env.name(&format!("fill{i}"))).collect();
    for f in &fillers {
        env.ok(&["sandbox", "create", f, "--tenant", "c", "--kind", "tap"]);
    }
    env.ok(&["sandbox", "destroy", &first]);
    let second = env.name("second");
    env.ok(&["sandbox", "create", &second, "--tenant", "b"]);
    let (again4, _) = env.addresses(&second);
    assert_eq!(
        again4.parse::<IpAddr>().unwrap(),
        addr4,
        "the pool must reuse the address"
    );
    let mut listeners = ListenerSet::new();
    listeners
        .add(&netns(&second), L4::Udp, sock(addr4, 5353))
        .unwrap();

    // The same flow again: without its exposure and connections forgotten,
    // these would land in the new sandbox.
    for _ in 0..3 {
        client.send_to(b"two", target).unwrap();
    }
    let fresh = udp_exchange(&world.path(), target, T).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !fresh.reached(),
        "a new flow reached the new sandbox: {fresh:?}"
    );
    let arrivals = listeners.arrivals_at(L4::Udp, sock(addr4, 5353));
    assert!(
        arrivals.is_empty(),
        "old exposure reached the new sandbox: {arrivals:?}"
    );

    env.ok(&["sandbox", "destroy", &second]);
    for f in &fillers {
        env.ok(&["sandbox", "destroy", f]);
    }
    env.assert_empty();
}
