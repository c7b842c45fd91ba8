//! Bridges, enslaving, and persistent taps.

mod common;

use common::{ip_json, root_or_skip, Lab};
use palisade_link::{create_tap, run_in_netns, BridgeEntry, Rtnl, VethSpec};
use serde_json::Value;

/// Runs `program -n LAB args` (`ip` or `bridge`), which must succeed; its
/// output.
fn run_in_lab(lab: &Lab, program: &str, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(program)
        .args(["-n", &lab.name])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn link_json(ns: &str, dev: &str) -> Value {
    let v: Value = serde_json::from_str(&ip_json(ns, &["-d", "link", "show", "dev", dev])).unwrap();
    v[0].clone()
}

#[test]
fn bridge_and_set_master() {
    if !root_or_skip("bridge_and_set_master") {
        return;
    }
    let lab = Lab::new();
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();
    let br = rtnl.create_bridge("plbr0", None).unwrap();
    let err = rtnl.create_bridge("plbr0", None).unwrap_err();
    assert!(err.is_already_exists(), "{err:?}");
    assert!(err.to_string().contains("plbr0"), "{err}");

    let va = rtnl
        .create_veth(&VethSpec {
            host_name: "va".into(),
            peer_name: "vb".into(),
            ..Default::default()
        })
        .unwrap();
    rtnl.set_master(va, br).unwrap();
    rtnl.set_up(br).unwrap();
    rtnl.set_up(va).unwrap();

    let links = rtnl.list_links().unwrap();
    let b = links.iter().find(|l| l.name == "plbr0").unwrap();
    assert_eq!(b.kind.as_deref(), Some("bridge"));
    let a = links.iter().find(|l| l.name == "va").unwrap();
    assert_eq!(a.master, Some(br));
    assert_eq!(link_json(&lab.name, "va")["master"], "plbr0");

    // Release from the bridge.
    rtnl.set_master(va, 0).unwrap();
    let a = rtnl
        .list_links()
        .unwrap()
        .into_iter()
        .find(|l| l.name == "va")
        .unwrap();
    assert_eq!(a.master, None);

    assert!(rtnl.delete_link("plbr0").unwrap());
    assert!(!rtnl.delete_link("plbr0").unwrap());
    assert!(rtnl.delete_link("va").unwrap());
}

#[test]
fn tap_create_and_delete() {
    if !root_or_skip("tap_create_and_delete") {
        return;
    }
    let lab = Lab::new();
    run_in_netns(&lab.path, || create_tap("pltap0", Some(1234)))
        .unwrap()
        .unwrap();
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();
    let tap = rtnl
        .list_links()
        .unwrap()
        .into_iter()
        .find(|l| l.name == "pltap0")
        .expect("tap exists after its fd was closed (persistent)");
    assert_eq!(tap.kind.as_deref(), Some("tun"));
    let details = link_json(&lab.name, "pltap0");
    let info = &details["linkinfo"]["info_data"];
    assert_eq!(info["type"], "tap", "{details}");
    assert_eq!(info["pi"], false, "{details}");
    assert_eq!(info["persist"], true, "{details}");
    assert_eq!(info["user"], 1234, "{details}");

    // Re-creating an existing persistent tap re-attaches: idempotent.
    run_in_netns(&lab.path, || create_tap("pltap0", Some(1234)))
        .unwrap()
        .unwrap();

    // A non-tap device of that name makes TUNSETIFF fail with a clear error.
    rtnl.create_bridge("plbr1", None).unwrap();
    let err = run_in_netns(&lab.path, || create_tap("plbr1", None))
        .unwrap()
        .unwrap_err();
    eprintln!("tap over bridge error reads: {err}");
    assert!(err.to_string().contains("plbr1"), "{err}");
    assert_eq!(err.errno(), Some(libc::EINVAL));

    assert!(rtnl.delete_link("pltap0").unwrap());
    assert!(!rtnl.delete_link("pltap0").unwrap());
    assert_eq!(rtnl.link_index("pltap0").unwrap(), None);
}

/// `route_oif` names the interface of the most specific route, and nothing
/// for an unreachable destination; `has_route` agrees.
#[test]
fn route_lookups_follow_the_most_specific_route() {
    if !root_or_skip("route_lookups_follow_the_most_specific_route") {
        return;
    }
    let lab = Lab::new();
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();
    let wide = rtnl.create_bridge("plwide", None).unwrap();
    let narrow = rtnl.create_bridge("plnarrow", None).unwrap();
    for (index, net, len) in [
        (wide, "10.9.0.0", 16),
        (narrow, "10.9.2.0", 23),
        (wide, "fd09::", 64),
        (narrow, "fd09::200", 119),
    ] {
        rtnl.set_up(index).unwrap();
        rtnl.add_route(&palisade_link::RouteSpec {
            dest: net.parse().unwrap(),
            prefix_len: len,
            oif: index,
            gateway: None,
            onlink: false,
            source: None,
        })
        .unwrap();
    }
    for (dest, want) in [
        ("10.9.0.7", Some(wide)),
        ("10.9.3.255", Some(narrow)),
        ("10.9.4.0", Some(wide)),
        ("fd09::1ff", Some(wide)),
        ("fd09::2ff", Some(narrow)),
        ("192.0.2.1", None),
        ("2001:db8::1", None),
    ] {
        let dest = dest.parse().unwrap();
        assert_eq!(rtnl.route_oif(dest).unwrap(), want, "{dest}");
        assert_eq!(rtnl.has_route(dest).unwrap(), want.is_some(), "{dest}");
    }
}

/// A bridge made with a MAC keeps it as its only port leaves, and so keeps
/// its permanent neighbour entries (a bridge whose address follows its
/// ports flushes them all when it changes); they can be listed and deleted.
#[test]
fn a_bridge_with_its_own_mac_keeps_its_pinned_neighbours() {
    if !root_or_skip("a_bridge_with_its_own_mac_keeps_its_pinned_neighbours") {
        return;
    }
    let lab = Lab::new();
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();
    let own = [0x06, 0, 0, 0, 0, 0x01];
    let br = rtnl.create_bridge("plpin", Some(own)).unwrap();
    rtnl.set_up(br).unwrap();
    let port = rtnl
        .create_veth(&VethSpec {
            host_name: "pp0".into(),
            peer_name: "pp1".into(),
            ..Default::default()
        })
        .unwrap();
    rtnl.set_master(port, br).unwrap();
    rtnl.set_up(port).unwrap();
    let other = rtnl.link_index("pp1").unwrap().unwrap();
    rtnl.set_up(other).unwrap();
    let mac = [0x02, 0, 0, 0, 0, 0x05];
    let pins: [std::net::IpAddr; 2] = ["10.9.0.5".parse().unwrap(), "fd09::5".parse().unwrap()];
    for ip in pins {
        rtnl.add_permanent_neighbour(br, ip, mac).unwrap();
    }
    rtnl.set_master(port, 0).unwrap();
    rtnl.set_down(port).unwrap();
    assert_eq!(rtnl.link("plpin").unwrap().unwrap().mac, Some(own));
    let mut listed = rtnl.permanent_neighbours().unwrap();
    listed.sort();
    assert_eq!(listed, vec![(br, pins[0], mac), (br, pins[1], mac)]);
    assert!(rtnl.del_neighbour(br, pins[0]).unwrap());
    assert!(!rtnl.del_neighbour(br, pins[0]).unwrap());
    assert_eq!(
        rtnl.permanent_neighbours().unwrap(),
        vec![(br, pins[1], mac)]
    );

    // Control: a bridge that takes its port's address loses them.
    let follows = rtnl.create_bridge("plfollow", None).unwrap();
    rtnl.set_up(follows).unwrap();
    rtnl.set_master(port, follows).unwrap();
    rtnl.set_up(port).unwrap();
    rtnl.add_permanent_neighbour(follows, pins[0], mac).unwrap();
    rtnl.set_master(port, 0).unwrap();
    let on_follows: Vec<_> = rtnl
        .permanent_neighbours()
        .unwrap()
        .into_iter()
        .filter(|(index, _, _)| *index == follows)
        .collect();
    assert_eq!(on_follows, vec![]);
}

/// `set_isolated_port` makes the settings `bridge_ports` reads back, as
/// `ip` sees them too; one setting changed by hand, and the port no longer
/// counts as isolated. The static entry is the bridge's, not the host's.
#[test]
fn isolated_ports_and_static_entries_read_back() {
    if !root_or_skip("isolated_ports_and_static_entries_read_back") {
        return;
    }
    let lab = Lab::new();
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();
    let br = rtnl.create_bridge("plbr0", None).unwrap();
    let mut port = |name: &str, peer: &str| {
        let index = rtnl
            .create_veth(&VethSpec {
                host_name: name.into(),
                peer_name: peer.into(),
                ..Default::default()
            })
            .unwrap();
        rtnl.set_master(index, br).unwrap();
        index
    };
    let (pa, pb) = (port("pa", "qa"), port("pb", "qb"));
    let isolated = |rtnl: &mut Rtnl| -> Vec<(String, u32, bool)> {
        let mut ports: Vec<_> = rtnl
            .bridge_ports()
            .unwrap()
            .into_iter()
            .map(|p| (p.name, p.bridge, p.isolated))
            .collect();
        ports.sort();
        ports
    };
    assert_eq!(
        isolated(&mut rtnl),
        vec![("pa".into(), br, false), ("pb".into(), br, false)],
        "control: a new port has the kernel's defaults"
    );
    let mac = [0x02, 0, 0, 0, 0, 0x0a];
    rtnl.add_static_bridge_entry(pa, mac).unwrap();
    rtnl.set_isolated_port(pa).unwrap();
    rtnl.set_isolated_port(pb).unwrap();
    assert_eq!(
        isolated(&mut rtnl),
        vec![("pa".into(), br, true), ("pb".into(), br, true)]
    );
    let a = link_json(&lab.name, "pa");
    let info = &a["linkinfo"]["info_slave_data"];
    for (key, want) in [
        ("isolated", true),
        ("learning", false),
        ("flood", false),
        ("mcast_flood", false),
        ("bcast_flood", false),
    ] {
        assert_eq!(info[key], want, "{key}: {info}");
    }
    assert!(
        !a["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "its admin state is left alone"
    );
    let fdb: Value = serde_json::from_slice(&run_in_lab(
        &lab,
        "bridge",
        &["-j", "fdb", "show", "dev", "pa"],
    ))
    .unwrap();
    let entry = fdb
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["mac"] == "02:00:00:00:00:0a")
        .unwrap_or_else(|| panic!("no entry for the MAC: {fdb}"));
    assert_eq!(entry["state"], "static", "{entry}");
    assert_eq!(entry["master"], "plbr0", "{entry}");

    // The lookups read the entry back, found through either port of its
    // bridge; a MAC without one, and a link that is no port, have none.
    let stray = rtnl
        .create_veth(&VethSpec {
            host_name: "pc".into(),
            peer_name: "qc".into(),
            ..Default::default()
        })
        .unwrap();
    let pa_mac = rtnl.link("pa").unwrap().unwrap().mac.unwrap();
    let other = [0x02, 0, 0, 0, 0, 0x0b];
    // More lookups than one datagram takes, and more than the socket's
    // receive buffer would hold answers for at once.
    let mut lookups = vec![
        (pa, mac),
        (pb, mac),
        (pa, other),
        (stray, mac),
        (pa, pa_mac),
    ];
    lookups.extend(std::iter::repeat_n((pb, other), 1100));
    lookups.push((pb, mac));
    let found = rtnl.bridge_entries(&lookups).unwrap();
    let on_pa = Some(BridgeEntry {
        port: pa,
        is_static: true,
    });
    assert_eq!(found[..4], [on_pa, on_pa, None, None]);
    assert_eq!(
        found[4],
        Some(BridgeEntry {
            port: pa,
            is_static: false
        }),
        "a port's own address is the bridge's permanent entry"
    );
    assert!(found[5..1105].iter().all(Option::is_none));
    assert_eq!(found[1105], on_pa);
    run_in_lab(
        &lab,
        "bridge",
        &["fdb", "del", "02:00:00:00:00:0a", "dev", "pa", "master"],
    );
    assert_eq!(rtnl.bridge_entries(&[(pa, mac)]).unwrap(), [None]);
    rtnl.add_static_bridge_entry(pa, mac).unwrap();

    // By hand, one setting back: no longer isolated.
    run_in_lab(
        &lab,
        "ip",
        &[
            "link",
            "set",
            "dev",
            "pb",
            "type",
            "bridge_slave",
            "mcast_flood",
            "on",
        ],
    );
    assert_eq!(
        isolated(&mut rtnl),
        vec![("pa".into(), br, true), ("pb".into(), br, false)]
    );
    assert!(rtnl.delete_link("plbr0").unwrap());
}
