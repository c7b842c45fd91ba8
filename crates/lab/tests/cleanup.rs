//! Dropping a lab leaves no namespace behind, also when a test panics.

use std::path::Path;
use std::process::Command;

use palisade_lab::{root_or_skip, unique_name, Lab};
use palisade_link::create_named_netns;

fn listed(name: &str) -> bool {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let in_ip = match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(name)),
        Err(_) => false, // no iproute2: /run/netns below is the real check
    };
    in_ip || Path::new("/run/netns").join(name).exists()
}

#[test]
fn dropped_lab_leaves_nothing_behind() {
    if !root_or_skip("dropped_lab_leaves_nothing_behind") {
        return;
    }
    let lab = Lab::new().expect("lab");
    let world = lab.add_world().expect("world");
    let sandbox = unique_name('s');
    create_named_netns(&sandbox).expect("sandbox netns");
    lab.adopt_cleanup(&sandbox);
    lab.adopt_cleanup(&unique_name('n')); // never created: must not fail
    let names = [
        lab.name().to_string(),
        world.name().to_string(),
        sandbox.clone(),
    ];
    for n in &names {
        assert!(listed(n), "{n} should exist while the lab lives");
    }
    drop(lab);
    for n in &names {
        assert!(!listed(n), "{n} leaked");
    }
    drop(world);
}

#[test]
fn panicking_test_still_cleans_up() {
    if !root_or_skip("panicking_test_still_cleans_up") {
        return;
    }
    let mut names = Vec::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::new().expect("lab");
        let world = lab.add_world().expect("world");
        names.push(lab.name().to_string());
        names.push(world.name().to_string());
        panic!("simulated test failure");
    }));
    assert!(caught.is_err());
    assert_eq!(names.len(), 2);
    for n in &names {
        assert!(!listed(n), "{n} leaked after a panic");
    }
}

#[test]
fn the_root_namespace_is_not_touched() {
    if !root_or_skip("the_root_namespace_is_not_touched") {
        return;
    }
    // Test threads run in the machine's root namespace.
    let snapshot = || {
        (
            std::fs::read_to_string("/proc/thread-self/net/dev").unwrap(),
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
            std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding").unwrap(),
        )
    };
    let ifaces = |dev: &str| -> Vec<String> {
        dev.lines()
            .skip(2)
            .filter_map(|l| l.split(':').next())
            .map(|n| n.trim().to_string())
            .collect()
    };
    let before = snapshot();
    {
        let lab = Lab::new().expect("lab");
        let _world = lab.add_world().expect("world");
        let during = snapshot();
        assert_eq!(ifaces(&during.0), ifaces(&before.0));
        assert_eq!((&during.1, &during.2), (&before.1, &before.2));
    }
    let after = snapshot();
    assert_eq!(ifaces(&after.0), ifaces(&before.0));
    assert_eq!((&after.1, &after.2), (&before.1, &before.2));
}
