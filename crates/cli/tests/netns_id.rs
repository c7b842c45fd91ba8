//! A sandbox's namespace gets its id on the lab host before its veth is
//! made, counting down as sandboxes are made (`names::netns_id`): the
//! kernel's walk to a namespace's id, once per notification about the
//! sandbox's link, then stops at the newest sandbox first. A namespace that
//! already has an id keeps it.

mod common;

use common::Env;
use palisade_core::names::{id_of_host_iface, netns_id};
use palisade_link::{netns_path, open_netns, Rtnl};
use std::os::fd::AsFd;

/// The id the lab host gives namespace `name`, as rtnetlink says it.
fn lab_netns_id(env: &Env, name: &str) -> Option<i32> {
    let file = open_netns(&netns_path(name)).unwrap();
    Rtnl::open_in(&env.lab.path())
        .unwrap()
        .netns_id(file.as_fd())
        .unwrap()
}

/// The id the lab host gives sandbox `name`'s namespace, checked against
/// the one `ip link` names as the peer's of its host end.
fn id_on_the_lab_host(env: &Env, name: &str) -> Option<i32> {
    let shown = env.json(&["sandbox", "show", name, "--json"]);
    let host_iface = shown["network"]["host_interface"].as_str().unwrap();
    let id = lab_netns_id(env, name);
    let link = env.lab_ok("ip", &["-j", "link", "show", "dev", host_iface]);
    let link: serde_json::Value = serde_json::from_str(&link).unwrap();
    assert_eq!(
        link[0]["link_netnsid"].as_i64(),
        id.map(i64::from),
        "{link}"
    );
    id
}

/// The id palisade gives sandbox `name`'s namespace.
fn chosen_id(env: &Env, name: &str) -> i32 {
    let shown = env.json(&["sandbox", "show", name, "--json"]);
    let host_iface = shown["network"]["host_interface"].as_str().unwrap();
    netns_id(id_of_host_iface(host_iface).unwrap()).unwrap()
}

fn run(test: &str, mode: &str) {
    let Some(env) = Env::new(test, &format!("[network]\nmode = \"{mode}\"\n")) else {
        return;
    };
    env.ok(&["init"]);
    let made = env.name("made");
    env.ok(&["sandbox", "create", &made, "--tenant", "t"]);
    // A namespace the runtime made, and one it had already linked to the
    // host, so that it has an id there already (the kernel's choice).
    let adopted = env.name("adopted");
    palisade_link::create_named_netns(&adopted).unwrap();
    env.ok(&["sandbox", "create", &adopted, "--tenant", "t"]);
    let linked = env.name("linked");
    palisade_link::create_named_netns(&linked).unwrap();
    env.lab_ok(
        "ip",
        &[
            "link", "add", "rt-0", "type", "veth", "peer", "eth9", "netns", &linked,
        ],
    );
    let kernels_choice = lab_netns_id(&env, &linked).expect("the veth gave it an id");
    env.ok(&["sandbox", "create", &linked, "--tenant", "t"]);

    let made_id = id_on_the_lab_host(&env, &made).unwrap();
    let adopted_id = id_on_the_lab_host(&env, &adopted).unwrap();
    assert_eq!(made_id, chosen_id(&env, &made));
    assert_eq!(adopted_id, chosen_id(&env, &adopted));
    assert!(adopted_id < made_id, "{adopted_id} >= {made_id}");
    assert_eq!(id_on_the_lab_host(&env, &linked), Some(kernels_choice));

    env.ok(&["verify"]);
    for name in [&made, &adopted, &linked] {
        env.ok(&["sandbox", "destroy", name]);
    }
    env.lab_ok("ip", &["link", "del", "rt-0"]);
}

#[test]
fn sandbox_namespaces_get_ids_counting_down_in_routed_mode() {
    run(
        "sandbox_namespaces_get_ids_counting_down_in_routed_mode",
        "routed",
    );
}

#[test]
fn sandbox_namespaces_get_ids_counting_down_in_bridge_mode() {
    run(
        "sandbox_namespaces_get_ids_counting_down_in_bridge_mode",
        "bridge",
    );
}
