//! veth pairs with the peer born directly inside another namespace.

mod common;

use std::os::fd::AsFd;

use common::{ip_json, mac_str, root_or_skip, Lab};
use palisade_link::{open_netns, LinkError, Rtnl, VethSpec, BIG_PACKET_SIZE, DEFAULT_PACKET_SIZE};
use serde_json::Value;

const HOST_MAC: [u8; 6] = [0x02, 0x50, 0x4c, 0x00, 0x00, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0x50, 0x4c, 0x00, 0x00, 0x02];

fn link_json(ns: &str, dev: &str) -> Value {
    let out = ip_json(ns, &["link", "show", "dev", dev]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

#[test]
fn veth_peer_created_in_sandbox_namespace() {
    if !root_or_skip("veth_peer_created_in_sandbox_namespace") {
        return;
    }
    let lab = Lab::new();
    let sbx = Lab::new();
    let sbx_file = open_netns(&sbx.path).unwrap();
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();

    let spec = VethSpec {
        host_name: "vh-test0".into(),
        host_mac: Some(HOST_MAC),
        peer_name: "eth0".into(),
        peer_mac: Some(PEER_MAC),
        peer_netns: Some(sbx_file.as_fd()),
        big_packets: false,
    };
    let host_index = rtnl.create_veth(&spec).unwrap();
    assert_eq!(rtnl.link_index("vh-test0").unwrap(), Some(host_index));
    // The peer is not in the lab namespace at all...
    assert_eq!(rtnl.link_index("eth0").unwrap(), None);

    // ...but in the sandbox, under its final name, with its MAC.
    let peer = link_json(&sbx.name, "eth0");
    assert_eq!(peer["address"], mac_str(PEER_MAC), "{peer}");
    let host = link_json(&lab.name, "vh-test0");
    assert_eq!(host["address"], mac_str(HOST_MAC), "{host}");
    assert_eq!(host["ifindex"], host_index);

    let links = rtnl.list_links().unwrap();
    let summary = links.iter().find(|l| l.name == "vh-test0").unwrap();
    assert_eq!(summary.index, host_index);
    assert_eq!(summary.kind.as_deref(), Some("veth"));
    assert_eq!(summary.mac, Some(HOST_MAC));
    assert_eq!(summary.master, None);

    let mut sbx_rtnl = Rtnl::open_in(&sbx.path).unwrap();
    let sbx_links = sbx_rtnl.list_links().unwrap();
    let eth0 = sbx_links.iter().find(|l| l.name == "eth0").unwrap();
    assert_eq!(eth0.mac, Some(PEER_MAC));
    assert_eq!(eth0.kind.as_deref(), Some("veth"));

    // Duplicate host name: a helpful, matchable error.
    let err = rtnl.create_veth(&spec).unwrap_err();
    assert!(err.is_already_exists(), "{err:?}");
    assert_eq!(err.errno(), Some(libc::EEXIST));
    let msg = err.to_string();
    assert!(msg.contains("vh-test0"), "{msg}");
    assert!(msg.contains(&lab.path.display().to_string()), "{msg}");
    // The peer's namespace, described only once the request has failed.
    let peer_where = format!("(peer eth0 in netns {})", sbx.path.display());
    assert!(msg.contains(&peer_where), "{msg}");
    eprintln!("duplicate veth error reads: {msg}");

    // Another host name but the peer name clashes inside the sandbox.
    let clash = VethSpec {
        host_name: "vh-test1".into(),
        ..spec.clone()
    };
    let err = rtnl.create_veth(&clash).unwrap_err();
    assert!(err.is_already_exists(), "{err:?}");
    eprintln!("peer-name clash error reads: {err}");
    let msg = err.to_string();
    assert!(msg.contains("peer eth0"), "{msg}");
    assert!(msg.contains(&sbx.name), "{msg}");
    assert_eq!(rtnl.link_index("vh-test1").unwrap(), None);

    // Deleting one end removes both; deleting again is a no-op.
    assert!(rtnl.delete_link("vh-test0").unwrap());
    assert!(!rtnl.delete_link("vh-test0").unwrap());
    assert_eq!(sbx_rtnl.link_index("eth0").unwrap(), None);
}

#[test]
fn veth_without_namespace_and_random_macs() {
    if !root_or_skip("veth_without_namespace_and_random_macs") {
        return;
    }
    let lab = Lab::new();
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();
    let idx = rtnl
        .create_veth(&VethSpec {
            host_name: "va".into(),
            peer_name: "vb".into(),
            ..Default::default()
        })
        .unwrap();
    let links = rtnl.list_links().unwrap();
    let va = links.iter().find(|l| l.name == "va").unwrap();
    let vb = links.iter().find(|l| l.name == "vb").unwrap();
    assert_eq!(va.index, idx);
    assert!(va.mac.is_some() && vb.mac.is_some());
    rtnl.set_up(idx).unwrap();
    let va_json = link_json(&lab.name, "va");
    let flags = va_json["flags"].as_array().unwrap();
    assert!(flags.iter().any(|f| f == "UP"), "{va_json}");
}

#[test]
fn bad_names_fail_before_the_kernel() {
    if !root_or_skip("bad_names_fail_before_the_kernel") {
        return;
    }
    let lab = Lab::new();
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();
    let err = rtnl
        .create_veth(&VethSpec {
            host_name: "a-very-long-interface-name".into(),
            peer_name: "eth0".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, LinkError::InvalidArgument { .. }), "{err:?}");
    assert!(err.to_string().contains("15 bytes"), "{err}");
}

#[test]
fn link_state_follows_the_peer_and_lookups_stay_in_their_namespace() {
    if !root_or_skip("link_state_follows_the_peer_and_lookups_stay_in_their_namespace") {
        return;
    }
    let lab = Lab::new();
    let sbx = Lab::new();
    let sbx_file = open_netns(&sbx.path).unwrap();
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();
    let host = rtnl
        .create_veth(&VethSpec {
            host_name: "vh-state".into(),
            host_mac: None,
            peer_name: "eth0".into(),
            peer_mac: None,
            peer_netns: Some(sbx_file.as_fd()),
            big_packets: false,
        })
        .unwrap();
    let mut inside = Rtnl::open_in(&sbx.path).unwrap();
    let eth0 = inside.link_index("eth0").unwrap().unwrap();
    // Each socket answers for its own namespace only.
    assert_eq!(inside.link_index("vh-state").unwrap(), None);
    assert_eq!(rtnl.link_index("eth0").unwrap(), None);

    rtnl.set_up(host).unwrap();
    assert!(
        !rtnl.sync_link_state("vh-state").unwrap(),
        "carrier with the peer down"
    );
    inside.set_up(eth0).unwrap();
    // That the read also waits for the link watch is shown by the engine's
    // lifecycle test: the multicast route it deletes right after appears
    // only once the link watch has run.
    assert!(
        rtnl.sync_link_state("vh-state").unwrap(),
        "no carrier with both ends up"
    );

    let err = rtnl.sync_link_state("vh-missing").unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENODEV), "{err:?}");
    assert!(err.to_string().contains("vh-missing"), "{err}");
}

#[test]
fn big_packets_on_both_ends_and_on_a_bridge_once_it_has_a_port() {
    if !root_or_skip("big_packets_on_both_ends_and_on_a_bridge_once_it_has_a_port") {
        return;
    }
    let lab = Lab::new();
    let sbx = Lab::new();
    let sbx_file = open_netns(&sbx.path).unwrap();
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();
    let make = |rtnl: &mut Rtnl, host: &str, peer: &str, big: bool| {
        rtnl.create_veth(&VethSpec {
            host_name: host.into(),
            peer_name: peer.into(),
            peer_netns: Some(sbx_file.as_fd()),
            big_packets: big,
            ..Default::default()
        })
        .unwrap()
    };
    let big_index = make(&mut rtnl, "vh-big", "eth-big", true);
    make(&mut rtnl, "vh-plain", "eth-plain", false);
    assert!(!rtnl.big_packets_refused());

    let mut sbx_rtnl = Rtnl::open_in(&sbx.path).unwrap();
    for (in_sandbox, name, want) in [
        (false, "vh-big", BIG_PACKET_SIZE),
        (true, "eth-big", BIG_PACKET_SIZE),
        (false, "vh-plain", DEFAULT_PACKET_SIZE),
        (true, "eth-plain", DEFAULT_PACKET_SIZE),
    ] {
        let rtnl = if in_sandbox { &mut sbx_rtnl } else { &mut rtnl };
        let link = rtnl.link(name).unwrap().unwrap();
        assert_eq!(link.gso_ipv4_max_size, Some(want), "{name}");
    }
    // IPv6 keeps the kernel's 64 KiB (`ip` shows its limits).
    for (ns, dev) in [(&lab.name, "vh-big"), (&sbx.name, "eth-big")] {
        let v: Value =
            serde_json::from_str(&ip_json(ns, &["-d", "link", "show", "dev", dev])).unwrap();
        assert_eq!(v[0]["gso_max_size"], 65536, "{dev}: {}", v[0]);
        assert_eq!(v[0]["gro_max_size"], 65536, "{dev}: {}", v[0]);
    }

    // A bridge without ports cannot take them (its ceiling is 64 KiB)...
    let bridge = rtnl.create_bridge("br-big", None).unwrap();
    assert!(!rtnl.allow_big_packets(bridge).unwrap());
    assert!(!rtnl.passes_big_packets(bridge).unwrap());
    // ...and can once it has a port that can...
    rtnl.set_master(big_index, bridge).unwrap();
    assert!(rtnl.allow_big_packets(bridge).unwrap());
    assert!(rtnl.passes_big_packets(bridge).unwrap());
    let link = rtnl.link("br-big").unwrap().unwrap();
    assert_eq!(link.gso_ipv4_max_size, Some(BIG_PACKET_SIZE));
    // (already there: nothing to change, still true)
    assert!(rtnl.allow_big_packets(bridge).unwrap());
    // ...until a tap joins: a tap passes 64 KiB, and so then does the bridge.
    palisade_link::run_in_netns(&lab.path, || palisade_link::create_tap("tap-big", None))
        .unwrap()
        .unwrap();
    let tap = rtnl.link_index("tap-big").unwrap().unwrap();
    rtnl.set_master(tap, bridge).unwrap();
    assert!(!rtnl.passes_big_packets(bridge).unwrap());
    assert!(!rtnl.allow_big_packets(bridge).unwrap());
    // A link can be lowered back to the default.
    rtnl.set_ipv4_packet_size(big_index, DEFAULT_PACKET_SIZE)
        .unwrap();
    assert!(!rtnl.passes_big_packets(big_index).unwrap());
}
