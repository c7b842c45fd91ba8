//! Full sandbox plumbing: veth, addresses, host routes, default routes, and
//! real TCP traffic from the sandbox namespace to the lab side, v4 and v6.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use common::{ip_json, root_or_skip, Lab};
use palisade_link::{open_netns, run_in_netns, RouteSpec, Rtnl, VethSpec};
use serde_json::Value;

const LAB_V4: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
const SBX_V4: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 5);
const LAB_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
const SBX_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5);
const GW_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

fn routes(ns: &str, family: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(&ip_json(ns, &[family, "route", "show"])).unwrap();
    v.as_array().unwrap().clone()
}

fn addrs(ns: &str, dev: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(&ip_json(ns, &["addr", "show", "dev", dev])).unwrap();
    v[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

/// Connect from inside `sbx` to `target`, send a line, expect the echo.
fn tcp_round_trip(lab: &Lab, sbx: &Lab, bind: SocketAddr) {
    let listener = run_in_netns(&lab.path, move || TcpListener::bind(bind))
        .unwrap()
        .expect("bind listener in lab netns");
    let target = listener.local_addr().unwrap();
    let client = run_in_netns(
        &sbx.path,
        move || -> std::io::Result<(TcpStream, SocketAddr)> {
            let s = TcpStream::connect_timeout(&target, Duration::from_secs(10))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.set_write_timeout(Some(Duration::from_secs(10)))?;
            let local = s.local_addr()?;
            Ok((s, local))
        },
    )
    .unwrap();
    let (mut client, client_addr) =
        client.unwrap_or_else(|e| panic!("connect from sandbox to {target}: {e}"));
    // The handshake completed, so the connection sits in the backlog.
    let (mut server, peer) = listener.accept().unwrap();
    assert_eq!(peer, client_addr);
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.write_all(b"ping\n").unwrap();
    let mut buf = [0u8; 5];
    server.read_exact(&mut buf).unwrap();
    server.write_all(&buf).unwrap();
    let mut back = [0u8; 5];
    client.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping\n");
}

#[test]
fn sandbox_plumbing_carries_tcp_v4_and_v6() {
    if !root_or_skip("sandbox_plumbing_carries_tcp_v4_and_v6") {
        return;
    }
    let lab = Lab::new();
    let sbx = Lab::new();
    let sbx_file = open_netns(&sbx.path).unwrap();
    let mut host = Rtnl::open_in(&lab.path).unwrap();
    let mut guest = Rtnl::open_in(&sbx.path).unwrap();

    let vh = host
        .create_veth(&VethSpec {
            host_name: "vh-sbx".into(),
            host_mac: Some([0x02, 0, 0, 0, 0, 0x01]),
            peer_name: "eth0".into(),
            peer_mac: Some([0x02, 0, 0, 0, 0, 0x05]),
            peer_netns: Some(sbx_file.as_fd()),
            big_packets: false,
        })
        .unwrap();
    let eth0 = guest.link_index("eth0").unwrap().expect("eth0 in sandbox");

    // Lab side: gateway addresses and host routes to the sandbox.
    host.add_address(vh, LAB_V4.into(), 32).unwrap();
    host.add_address(vh, LAB_V6.into(), 128).unwrap();
    host.add_address(vh, GW_V6.into(), 64).unwrap();
    host.set_up(vh).unwrap();
    for (dest, len) in [(IpAddr::from(SBX_V4), 32), (IpAddr::from(SBX_V6), 128)] {
        host.add_route(&RouteSpec {
            dest,
            prefix_len: len,
            oif: vh,
            gateway: None,
            onlink: false,
            source: None,
        })
        .unwrap();
    }

    // Sandbox side.
    let lo = guest.link_index("lo").unwrap().unwrap();
    guest.set_up(lo).unwrap();
    guest.add_address(eth0, SBX_V4.into(), 32).unwrap();
    guest.add_address(eth0, SBX_V6.into(), 128).unwrap();
    // Idempotent: re-adding the same addresses is fine.
    guest.add_address(eth0, SBX_V4.into(), 32).unwrap();
    guest.add_address(eth0, SBX_V6.into(), 128).unwrap();
    guest.set_up(eth0).unwrap();
    let v4_default = RouteSpec {
        dest: Ipv4Addr::UNSPECIFIED.into(),
        prefix_len: 0,
        oif: eth0,
        gateway: Some(LAB_V4.into()),
        onlink: true,
        source: None,
    };
    let v6_default = RouteSpec {
        dest: Ipv6Addr::UNSPECIFIED.into(),
        prefix_len: 0,
        oif: eth0,
        gateway: Some(GW_V6.into()),
        onlink: false,
        source: Some(SBX_V6.into()),
    };
    guest.add_route(&v4_default).unwrap();
    guest.add_route(&v6_default).unwrap();
    // Idempotent: NLM_F_REPLACE.
    guest.add_route(&v4_default).unwrap();
    guest.add_route(&v6_default).unwrap();

    // What `ip` sees.
    let sbx_addrs = addrs(&sbx.name, "eth0");
    assert!(
        sbx_addrs.contains(&"10.200.0.5/32".to_string()),
        "{sbx_addrs:?}"
    );
    assert!(
        sbx_addrs.contains(&"fd00::5/128".to_string()),
        "{sbx_addrs:?}"
    );
    let lab_addrs = addrs(&lab.name, "vh-sbx");
    assert!(
        lab_addrs.contains(&"fe80::1/64".to_string()),
        "{lab_addrs:?}"
    );
    let r4 = routes(&sbx.name, "-4");
    let d4 = r4
        .iter()
        .find(|r| r["dst"] == "default")
        .expect("v4 default");
    assert_eq!(d4["gateway"], "10.200.0.1");
    assert_eq!(d4["dev"], "eth0");
    assert!(
        d4["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "onlink"),
        "{d4}"
    );
    let r6 = routes(&sbx.name, "-6");
    let d6 = r6
        .iter()
        .find(|r| r["dst"] == "default")
        .expect("v6 default");
    assert_eq!(d6["gateway"], "fe80::1");
    assert_eq!(d6["prefsrc"], "fd00::5");
    let lab_r4 = routes(&lab.name, "-4");
    let host_route = lab_r4
        .iter()
        .find(|r| r["dst"] == "10.200.0.5")
        .expect("/32");
    assert_eq!(host_route["dev"], "vh-sbx");
    assert_eq!(host_route["scope"], "link");
    let lab_r6 = routes(&lab.name, "-6");
    assert!(lab_r6.iter().any(|r| r["dst"] == "fd00::5"), "{lab_r6:?}");

    // Real traffic, sandbox -> lab, over both families.
    tcp_round_trip(&lab, &sbx, SocketAddr::new(LAB_V4.into(), 0));
    tcp_round_trip(&lab, &sbx, SocketAddr::new(LAB_V6.into(), 0));

    // Route deletion is idempotent.
    assert!(host.del_route(SBX_V4.into(), 32, vh).unwrap());
    assert!(!host.del_route(SBX_V4.into(), 32, vh).unwrap());
    assert!(host.del_route(SBX_V6.into(), 128, vh).unwrap());
    assert!(!host.del_route(SBX_V6.into(), 128, vh).unwrap());
    assert!(guest
        .del_route(Ipv4Addr::UNSPECIFIED.into(), 0, eth0)
        .unwrap());
    assert!(!guest
        .del_route(Ipv4Addr::UNSPECIFIED.into(), 0, eth0)
        .unwrap());
}

#[test]
fn kernel_ext_ack_reaches_the_error() {
    if !root_or_skip("kernel_ext_ack_reaches_the_error") {
        return;
    }
    let lab = Lab::new();
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();
    let lo = rtnl.link_index("lo").unwrap().unwrap();
    // Host bits set beyond the prefix: the kernel refuses with an ext ack.
    let err = rtnl
        .add_route(&RouteSpec {
            dest: "10.9.9.9".parse().unwrap(),
            prefix_len: 8,
            oif: lo,
            gateway: None,
            onlink: false,
            source: None,
        })
        .unwrap_err();
    eprintln!("bad prefix error reads: {err}");
    assert_eq!(err.errno(), Some(libc::EINVAL));
    assert!(err.ext_ack().is_some(), "no extended ack in {err:?}");
    assert!(err.to_string().contains("10.9.9.9/8"), "{err}");

    // Mixed families are rejected before reaching the kernel.
    assert!(rtnl
        .add_route(&RouteSpec {
            dest: "10.0.0.0".parse().unwrap(),
            prefix_len: 8,
            oif: lo,
            gateway: Some("fe80::1".parse().unwrap()),
            onlink: false,
            source: None,
        })
        .is_err());
}
