//! Named namespaces: create, detect, enter, delete, and `ip netns` interop.

mod common;

use std::process::Command;

use common::{root_or_skip, unique_name, Lab};
use palisade_link::{
    create_named_netns, delete_named_netns, delete_named_netns_releasing_elsewhere,
    named_netns_exists, netns_path, open_netns, run_in_netns, NetnsCreated, Rtnl, VethSpec,
};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Deletes a namespace by name on drop, for tests that create it by hand.
struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = delete_named_netns(&self.0);
    }
}

fn current_netns() -> String {
    std::fs::read_link("/proc/thread-self/ns/net")
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn create_exists_delete_is_idempotent() {
    if !root_or_skip("create_exists_delete_is_idempotent") {
        return;
    }
    let name = unique_name();
    let _guard = Cleanup(name.clone());
    assert!(!named_netns_exists(&name));
    assert_eq!(create_named_netns(&name).unwrap(), NetnsCreated::Created);
    assert!(named_netns_exists(&name));
    assert!(netns_path(&name).exists());
    assert_eq!(
        create_named_netns(&name).unwrap(),
        NetnsCreated::AlreadyExisted
    );

    let listed = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&name)),
        "`ip netns list` does not show {name}:\n{listed}"
    );

    assert!(delete_named_netns(&name).unwrap());
    assert!(!named_netns_exists(&name));
    assert!(!netns_path(&name).exists());
    assert!(!delete_named_netns(&name).unwrap());
}

#[test]
fn releasing_elsewhere_frees_the_name_at_once_and_the_namespace_soon() {
    if !root_or_skip("releasing_elsewhere_frees_the_name_at_once_and_the_namespace_soon") {
        return;
    }
    let lab = Lab::new();
    let name = unique_name();
    let _guard = Cleanup(name.clone());
    create_named_netns(&name).unwrap();
    // A veth from the lab into the namespace: the kernel deletes it when
    // the namespace is freed, which shows that its last reference went.
    let mut host = Rtnl::open_in(&lab.path).unwrap();
    {
        let ns = open_netns(&netns_path(&name)).unwrap();
        host.create_veth(&VethSpec {
            host_name: "rel0".into(),
            host_mac: None,
            peer_name: "eth0".into(),
            peer_mac: None,
            peer_netns: Some(ns.as_fd()),
            big_packets: false,
        })
        .unwrap();
    }
    assert!(host.link_index("rel0").unwrap().is_some());

    assert!(delete_named_netns_releasing_elsewhere(&name).unwrap());
    assert!(!named_netns_exists(&name));
    assert!(!netns_path(&name).exists());
    assert!(!delete_named_netns_releasing_elsewhere(&name).unwrap());
    // The name is free at once.
    assert_eq!(create_named_netns(&name).unwrap(), NetnsCreated::Created);
    assert!(delete_named_netns(&name).unwrap());

    let deadline = Instant::now() + Duration::from_secs(20);
    while host.link_index("rel0").unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the namespace was not freed: its veth is still in the lab"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_in_netns_enters_the_namespace() {
    if !root_or_skip("run_in_netns_enters_the_namespace") {
        return;
    }
    let lab = Lab::new();
    let outside = current_netns();
    let inside = run_in_netns(&lab.path, current_netns).unwrap();
    assert_ne!(outside, inside);
    // Same namespace on a second entry: the bind mount pins it.
    assert_eq!(inside, run_in_netns(&lab.path, current_netns).unwrap());
    // The calling thread did not move.
    assert_eq!(outside, current_netns());

    // A fresh namespace holds only the loopback device.
    let mut rtnl = Rtnl::open_in(&lab.path).unwrap();
    let links = rtnl.list_links().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].name, "lo");
    assert_eq!(rtnl.link_index("lo").unwrap(), Some(1));
    assert_eq!(rtnl.link_index("nope0").unwrap(), None);

    // `ip netns exec`-style: a child process spawned inside runs there.
    let child = run_in_netns(&lab.path, || {
        Command::new("readlink")
            .arg("/proc/self/ns/net")
            .output()
            .unwrap()
    })
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&child.stdout).trim(), inside);
}

#[test]
fn missing_namespace_is_a_clear_error() {
    if !root_or_skip("missing_namespace_is_a_clear_error") {
        return;
    }
    let path = netns_path(&unique_name());
    let err = run_in_netns(&path, || ()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert_eq!(err.errno(), Some(libc::ENOENT));
    assert!(Rtnl::open_in(&path).is_err());
}

#[test]
fn invalid_names_are_rejected() {
    for bad in ["", "a/b", ".."] {
        assert!(create_named_netns(bad).is_err(), "{bad:?}");
        assert!(delete_named_netns(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn panics_inside_propagate() {
    if !root_or_skip("panics_inside_propagate") {
        return;
    }
    let lab = Lab::new();
    let path = lab.path.clone();
    let caught = std::panic::catch_unwind(move || {
        let _ = run_in_netns(&path, || panic!("boom inside"));
    });
    assert!(caught.is_err());
}
