//! Namespace ids chosen before the kernel picks one.

mod common;

use std::os::fd::AsFd;

use common::{ip_json, root_or_skip, Lab};
use palisade_link::{open_netns, Rtnl, VethSpec};
use serde_json::Value;

/// The namespace id the lab's `ip link` gives the peer of `dev`.
fn link_netnsid(lab: &Lab, dev: &str) -> Value {
    let out = ip_json(&lab.name, &["link", "show", "dev", dev]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0]["link_netnsid"].clone()
}

fn veth_into(rtnl: &mut Rtnl, host_name: &str, sandbox: &Lab) {
    let file = open_netns(&sandbox.path).unwrap();
    rtnl.create_veth(&VethSpec {
        host_name: host_name.into(),
        peer_name: "eth0".into(),
        peer_netns: Some(file.as_fd()),
        ..VethSpec::default()
    })
    .unwrap();
}

#[test]
fn a_namespace_keeps_the_id_it_was_given_and_its_links_carry_it() {
    if !root_or_skip("a_namespace_keeps_the_id_it_was_given_and_its_links_carry_it") {
        return;
    }
    let lab = Lab::new();
    let chosen = Lab::new();
    let unchosen = Lab::new();
    let chosen_file = open_netns(&chosen.path).unwrap();
    let unchosen_file = open_netns(&unchosen.path).unwrap();
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();

    assert_eq!(rtnl.netns_id(chosen_file.as_fd()).unwrap(), None);
    assert!(rtnl.assign_netns_id(chosen_file.as_fd(), 1000).unwrap());
    assert_eq!(rtnl.netns_id(chosen_file.as_fd()).unwrap(), Some(1000));

    // An id lasts: a second one is refused, and the first stays.
    assert!(!rtnl.assign_netns_id(chosen_file.as_fd(), 7).unwrap());
    assert_eq!(rtnl.netns_id(chosen_file.as_fd()).unwrap(), Some(1000));
    // An id taken is refused to another namespace, which stays without.
    assert!(!rtnl.assign_netns_id(unchosen_file.as_fd(), 1000).unwrap());
    assert_eq!(rtnl.netns_id(unchosen_file.as_fd()).unwrap(), None);

    // The kernel names a veth's peer namespace by that id, and gives one
    // without an id the lowest free one.
    veth_into(&mut rtnl, "vh-chosen", &chosen);
    veth_into(&mut rtnl, "vh-unchosen", &unchosen);
    assert_eq!(link_netnsid(&lab, "vh-chosen"), 1000);
    assert_eq!(link_netnsid(&lab, "vh-unchosen"), 0);
    assert_eq!(rtnl.netns_id(unchosen_file.as_fd()).unwrap(), Some(0));
}

#[test]
fn a_refused_id_request_names_what_it_was_given() {
    if !root_or_skip("a_refused_id_request_names_what_it_was_given") {
        return;
    }
    let lab = Lab::new();
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();
    // Not a namespace: the kernel refuses the file itself (EINVAL), and
    // the error, described only now, says which file and which id.
    let not_a_namespace = std::fs::File::open("/proc/self/status").unwrap();
    let err = rtnl
        .assign_netns_id(not_a_namespace.as_fd(), 1000)
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("/status as id 1000"), "{msg}");
}
