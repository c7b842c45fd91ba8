//! sysctls are per network namespace: set/get inside a lab only.

mod common;

use common::{root_or_skip, Lab};
use palisade_link::{get_sysctl, run_in_netns, set_sysctl, LinkError, Rtnl, VethSpec};

#[test]
fn sysctl_set_get_in_lab_namespace() {
    if !root_or_skip("sysctl_set_get_in_lab_namespace") {
        return;
    }
    let lab = Lab::new();
    // Read-only look at the root namespace, to prove we never change it.
    let root_before = get_sysctl("net.ipv4.ip_forward").unwrap();

    let (before, after) = run_in_netns(&lab.path, || {
        let before = get_sysctl("net.ipv4.ip_forward").unwrap();
        let flipped = if before == "1" { "0" } else { "1" };
        set_sysctl("net/ipv4/ip_forward", flipped).unwrap();
        (before, get_sysctl("net.ipv4.ip_forward").unwrap())
    })
    .unwrap();
    assert_ne!(before, after);
    assert_eq!(get_sysctl("net.ipv4.ip_forward").unwrap(), root_before);

    // Per-interface keys, by path (interface names may contain dots).
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();
    rtnl.create_veth(&VethSpec {
        host_name: "eth0.7".into(),
        peer_name: "peer7".into(),
        ..Default::default()
    })
    .unwrap();
    let ra = run_in_netns(&lab.path, || {
        set_sysctl("net/ipv6/conf/eth0.7/accept_ra", "0").unwrap();
        get_sysctl("net/ipv6/conf/eth0.7/accept_ra").unwrap()
    })
    .unwrap();
    assert_eq!(ra, "0");

    // Errors name the key and path.
    let err = run_in_netns(&lab.path, || set_sysctl("net.ipv4.no_such_key", "1"))
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, LinkError::Sysctl { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/proc/sys/net/ipv4/no_such_key"),
        "{err}"
    );
}

#[test]
fn sysctl_keys_are_validated() {
    for bad in ["net/../../etc/passwd", "net.ipv4.ip_forward;x", ""] {
        let err = get_sysctl(bad).unwrap_err();
        assert!(matches!(err, LinkError::InvalidArgument { .. }), "{err:?}");
        assert!(set_sysctl(bad, "1").is_err());
    }
}
