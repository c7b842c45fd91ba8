//! Lifecycle: kinds, names, adoption, fail-closed creation, kill -9 at every
//! step, reconcile after tampering, and concurrent writers.

mod common;

use common::Env;
use std::net::IpAddr;

const ROUTED: &str = "[network]\nmode = \"routed\"\n";

#[test]
fn kinds_create_show_destroy_and_idempotence() {
    let Some(env) = Env::new("kinds_create_show_destroy_and_idempotence", ROUTED) else {
        return;
    };
    env.ok(&["init"]);
    env.ok(&["init"]); // idempotent
    let ns = env.name("ns");
    let tap = env.name("tap");
    let none = env.name("off");
    let v = env.json(&["sandbox", "create", &ns, "--tenant", "t1", "--json"]);
    assert_eq!(v["kind"], "netns");
    assert_eq!(v["netns"]["created"], true);
    assert!(palisade_link::named_netns_exists(&ns));
    let t = env.json(&[
        "sandbox", "create", &tap, "--tenant", "t1", "--kind", "tap", "--json",
    ]);
    let tap_iface = t["network"]["host_interface"].as_str().unwrap().to_string();
    assert!(
        env.pal_links().contains(&tap_iface),
        "tap {tap_iface} missing"
    );
    assert!(t["network"]["mac"].as_str().unwrap().starts_with("02:"));
    let n = env.json(&[
        "sandbox", "create", &none, "--tenant", "t2", "--kind", "none", "--json",
    ]);
    assert!(
        n.get("network").is_none(),
        "kind none must have no network: {n}"
    );
    assert_eq!(
        env.pal_links().len(),
        2,
        "kind none must create no interface"
    );

    // Options that need networking are refused for kind none, before anything.
    let out = env.palisade(&[
        "sandbox",
        "create",
        &env.name("off2"),
        "--tenant",
        "t2",
        "--kind",
        "none",
        "--internet",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("networking disabled"));

    // Duplicate name is refused and leaves the existing sandbox intact.
    let out = env.palisade(&["sandbox", "create", &ns, "--tenant", "t1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    let list = env.json(&["sandbox", "list", "--tenant", "t1", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(env.ok(&["sandbox", "list"]).contains(&tap));
    assert!(env.ok(&["sandbox", "show", &ns]).contains("10.200.0."));
    env.ok(&["verify"]);
    env.ok(&["verify", &ns]);
    let status = env.json(&["status", "--json"]);
    assert_eq!(status["drift"], false);
    assert_eq!(status["sandboxes"], 3);

    for name in [&ns, &tap, &none] {
        env.ok(&["sandbox", "destroy", name]);
        assert!(env
            .ok(&["sandbox", "destroy", name])
            .contains("nothing to do"));
    }
    assert!(
        !palisade_link::named_netns_exists(&ns),
        "created namespace must go"
    );
    env.assert_empty();
}

#[test]
fn adopted_namespace_survives_destroy() {
    let Some(env) = Env::new("adopted_namespace_survives_destroy", ROUTED) else {
        return;
    };
    let name = env.name("adopt");
    palisade_link::create_named_netns(&name).unwrap();
    let inside = |name: &str| {
        palisade_link::Rtnl::open_in(&palisade_link::netns_path(name))
            .and_then(|mut r| r.list_links())
            .unwrap()
            .into_iter()
            .filter(|l| l.name != "lo")
            .collect::<Vec<_>>()
    };
    // Twice into the same namespace: the first destroy must leave eth0's
    // name free at once, though its veth waits to be reaped.
    for round in 0..2 {
        let v = env.json(&["sandbox", "create", &name, "--tenant", "t", "--json"]);
        assert_eq!(v["netns"]["created"], false);
        let routed_out = palisade_link::Rtnl::open_in(&palisade_link::netns_path(&name))
            .and_then(|mut r| r.has_route("192.0.2.1".parse().unwrap()))
            .unwrap();
        assert!(
            routed_out,
            "control: an attached sandbox has a default route"
        );
        env.ok(&["sandbox", "destroy", &name]);
        assert!(
            palisade_link::named_netns_exists(&name),
            "an adopted namespace is not palisade's to delete"
        );
        let left = inside(&name);
        assert_eq!(left.len(), round + 1, "{left:?}");
        for l in &left {
            assert!(l.name.starts_with("gone-"), "{left:?}");
        }
        // Routed mode strips the retired peer instead of setting it down:
        // nothing in the namespace may still use it.
        let mut rtnl = palisade_link::Rtnl::open_in(&palisade_link::netns_path(&name)).unwrap();
        let addresses: Vec<_> = rtnl
            .list_addresses()
            .unwrap()
            .into_iter()
            .filter(|(_, ip, _)| !ip.is_loopback())
            .collect();
        assert_eq!(addresses, Vec::new(), "a retired peer keeps no address");
        for probe in ["192.0.2.1", "2001:db8::1"] {
            assert!(
                !rtnl.has_route(probe.parse().unwrap()).unwrap(),
                "a route out of the namespace is left for {probe}"
            );
        }
        // The host ends wait for the reap with no route left to them (that
        // nothing they receive passes is attack 13 in adversarial.rs).
        let host_ends = env.retired_links();
        assert_eq!(host_ends.len(), round + 1, "host ends wait retired");
        for h in &host_ends {
            assert_eq!(env.route_count_via(h, false), 0, "{h}");
            assert_eq!(env.route_count_via(h, true), 0, "{h}");
        }
    }
    env.assert_empty();
    assert_eq!(inside(&name), Vec::new(), "reaped with their host ends");
}

#[test]
fn retired_interfaces_are_reaped_in_batches() {
    let Some(env) = Env::new("retired_interfaces_are_reaped_in_batches", ROUTED) else {
        return;
    };
    env.ok(&["init"]);
    let batch = palisade::engine::RETIRED_LINKS_BATCH as usize;
    // Adopted namespaces: they outlive the destroy, so their veths can only
    // go by being reaped (a namespace palisade made may take its veth with
    // it when the kernel frees it).
    let names: Vec<String> = (0..batch).map(|i| env.name(&format!("b{i}"))).collect();
    for n in &names {
        palisade_link::create_named_netns(n).unwrap();
        env.ok(&["sandbox", "create", n, "--tenant", "t"]);
    }
    for (i, n) in names.iter().enumerate() {
        env.ok(&["sandbox", "destroy", n]);
        let waiting = env.retired_links().len();
        if i + 1 < batch {
            assert_eq!(
                waiting,
                i + 1,
                "retired, not deleted, before the batch is full"
            );
        } else {
            assert_eq!(waiting, 0, "the destroy that fills the batch deletes it");
        }
    }
    env.assert_empty();
    for n in &names {
        palisade_link::delete_named_netns(n).unwrap();
    }
    // init reaps too.
    let n = env.name("last");
    palisade_link::create_named_netns(&n).unwrap();
    env.ok(&["sandbox", "create", &n, "--tenant", "t"]);
    env.ok(&["sandbox", "destroy", &n]);
    assert_eq!(env.retired_links().len(), 1);
    assert_eq!(env.json(&["status", "--json"])["retired_interfaces"], 1);
    let text = String::from_utf8_lossy(&env.palisade(&["status"]).stdout).into_owned();
    assert!(
        text.contains("retired          1 interface(s) waiting to be reaped"),
        "{text}"
    );
    env.ok(&["init"]);
    assert_eq!(env.pal_links(), Vec::<String>::new());
    assert_eq!(env.json(&["status", "--json"])["retired_interfaces"], 0);
    palisade_link::delete_named_netns(&n).unwrap();
}

/// The reap of a batch, or the daemon's, asks the kernel to delete the
/// graveyard group (a walk over every interface of the host) only when a
/// destroy since the last reap put a link there; `palisade reap` always
/// does, and so takes a link an interrupted destroy left there unrecorded.
#[test]
fn a_waiting_reap_deletes_the_group_only_when_a_destroy_filled_it() {
    let Some(env) = Env::new(
        "a_waiting_reap_deletes_the_group_only_when_a_destroy_filled_it",
        ROUTED,
    ) else {
        return;
    };
    env.ok(&["init"]);
    let group = palisade::engine::RETIRED_LINK_GROUP.to_string();
    let add_stray = || {
        env.lab_ok(
            "ip",
            &[
                "link", "add", "stray0", "group", &group, "type", "veth", "peer", "name", "stray1",
            ],
        );
    };
    let stray_there = || {
        env.lab_ok("ip", &["-o", "link", "show", "group", &group])
            .contains("stray0")
    };
    let reap_waiting = || {
        let dir = env.dir.clone();
        env.lab
            .run(move || {
                let text = std::fs::read_to_string(dir.join("palisade.toml")).unwrap();
                let config =
                    palisade_core::config::Config::from_toml("palisade.toml", &text).unwrap();
                let (mut engine, _) =
                    palisade::engine::Engine::open(config, &dir.join("state")).unwrap();
                let waiting = engine.retired_links_waiting().unwrap();
                (waiting, engine.reap_waiting_links().unwrap())
            })
            .unwrap()
    };

    // Namespaces palisade made: their veths go with them once the destroys'
    // processes have let go of them.
    let made: Vec<String> = (0..2).map(|i| env.name(&format!("m{i}"))).collect();
    for n in &made {
        env.ok(&["sandbox", "create", n, "--tenant", "t"]);
    }
    for n in &made {
        env.ok(&["sandbox", "destroy", n]);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !env.pal_links().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the made namespaces' veths are still there: {:?}",
            env.pal_links()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    add_stray();
    assert_eq!(reap_waiting(), (2, false), "nothing of theirs to delete");
    assert!(
        stray_there(),
        "the group was deleted although no destroy filled it"
    );
    assert_eq!(env.json(&["status", "--json"])["retired_interfaces"], 0);

    // An adopted namespace's veth outlives its destroy: the reap deletes the
    // group, and the stray with it.
    let adopted = env.name("adopted");
    palisade_link::create_named_netns(&adopted).unwrap();
    env.ok(&["sandbox", "create", &adopted, "--tenant", "t"]);
    env.ok(&["sandbox", "destroy", &adopted]);
    assert_eq!(env.retired_links().len(), 1);
    assert_eq!(reap_waiting(), (1, true));
    assert!(!stray_there());
    assert_eq!(env.pal_links(), Vec::<String>::new());
    palisade_link::delete_named_netns(&adopted).unwrap();

    // `palisade reap` deletes the group with nothing recorded as waiting.
    add_stray();
    env.ok(&["reap"]);
    assert!(!stray_there(), "palisade reap left the group");
}

/// A create whose sets are not in the kernel (tables made by a palisade
/// that compiled other sets) fails closed and says to run `init`.
#[test]
fn a_create_without_its_tables_fails_closed_and_names_init() {
    let Some(env) = Env::new(
        "a_create_without_its_tables_fails_closed_and_names_init",
        ROUTED,
    ) else {
        return;
    };
    env.ok(&["init"]);
    // The table as a palisade without `sources4` would have left it.
    env.lab_ok("nft", &["flush", "table", "inet", "palisade"]);
    env.lab_ok("nft", &["delete", "set", "inet", "palisade", "sources4"]);
    let name = env.name("late");
    let out = env.palisade(&["sandbox", "create", &name, "--tenant", "t"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("firewall update failed, nothing was applied"),
        "{err}"
    );
    assert!(err.contains("run palisade init"), "{err}");
    assert_eq!(
        env.json(&["sandbox", "list", "--json"]),
        serde_json::json!([])
    );
    assert!(!palisade_link::named_netns_exists(&name));
    env.ok(&["init"]);
    env.ok(&["sandbox", "create", &name, "--tenant", "t"]);
    env.ok(&["sandbox", "destroy", &name]);
    env.assert_empty();
}

#[test]
fn bad_names_are_rejected_before_any_change() {
    let Some(env) = Env::new("bad_names_are_rejected_before_any_change", ROUTED) else {
        return;
    };
    env.ok(&["init"]);
    let long = "a".repeat(64);
    for bad in [
        "Upper", "a;reboot", "$(id)", "a b", "../etc", "a/b", "-lead", "", &long, "a\"}", "é",
    ] {
        let out = env.palisade(&["sandbox", "create", "--tenant", "t", "--", bad]);
        assert!(!out.status.success(), "{bad:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("sandbox name"), "{bad:?}: {err}");
        let out = env.palisade(&["sandbox", "create", &format!("--tenant={bad}"), "ok-name"]);
        assert!(!out.status.success(), "tenant {bad:?} accepted");
    }
    let out = env.palisade(&[
        "sandbox",
        "create",
        &env.name("p"),
        "--tenant",
        "t",
        "--internet",
        "--allow",
        "icmp:1",
    ]);
    assert!(!out.status.success());
    // Two long names that share their first 15 characters get distinct interfaces.
    let a = env.name(&"x".repeat(40));
    let b = env.name(&format!("{}y", "x".repeat(39)));
    let ia = env.json(&[
        "sandbox", "create", &a, "--tenant", "t", "--kind", "tap", "--json",
    ]);
    let ib = env.json(&[
        "sandbox", "create", &b, "--tenant", "t", "--kind", "tap", "--json",
    ]);
    assert_ne!(
        ia["network"]["host_interface"],
        ib["network"]["host_interface"]
    );
    env.ok(&["sandbox", "destroy", &a]);
    env.ok(&["sandbox", "destroy", &b]);
    env.assert_empty();
}

const CREATE_POINTS: [&str; 6] = [
    "after-record",
    "elements",
    "after-elements",
    "after-netns",
    "after-link",
    "before-ready",
];

#[test]
fn failed_create_leaves_nothing() {
    let Some(env) = Env::new("failed_create_leaves_nothing", ROUTED) else {
        return;
    };
    env.ok(&["init"]);
    for point in CREATE_POINTS {
        let name = env.name(&format!("f-{point}"));
        let out = env.palisade_env(
            &["sandbox", "create", &name, "--tenant", "t"],
            &[("PALISADE_FAIL_AT", point)],
        );
        assert!(!out.status.success(), "{point}: create must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(point),
            "{point}: error must give the reason: {err}"
        );
        assert!(
            !palisade_link::named_netns_exists(&name),
            "{point}: namespace left"
        );
        env.assert_empty();
    }
    // A real kernel refusal: the adopted namespace already has an eth0, so
    // creating the veth's inner end fails with EEXIST.
    let name = env.name("taken");
    palisade_link::create_named_netns(&name).unwrap();
    palisade_link::run_in_netns(&palisade_link::netns_path(&name), || {
        palisade_link::create_tap("eth0", None)
    })
    .unwrap()
    .unwrap();
    let out = env.palisade(&["sandbox", "create", &name, "--tenant", "t"]);
    assert!(
        !out.status.success(),
        "create into a namespace with an eth0 must fail"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("eth0"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        palisade_link::named_netns_exists(&name),
        "an adopted namespace is never deleted"
    );
    env.assert_empty();
}

#[test]
fn kill_9_during_create_or_destroy_is_repaired() {
    let Some(env) = Env::new("kill_9_during_create_or_destroy_is_repaired", ROUTED) else {
        return;
    };
    env.ok(&["init"]);
    for point in CREATE_POINTS {
        let name = env.name(&format!("k-{point}"));
        let out = env.palisade_env(
            &["sandbox", "create", &name, "--tenant", "t"],
            &[("PALISADE_CRASH_AT", point)],
        );
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(9), "{point}: not killed");
        // The next command repairs and says so.
        let out = env.palisade(&["sandbox", "list"]);
        assert!(out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("rolled back"), "{point}: {err}");
        assert!(
            !palisade_link::named_netns_exists(&name),
            "{point}: namespace left"
        );
        env.assert_empty();
    }
    for point in ["destroy-after-mark", "destroy-after-link"] {
        let name = env.name(&format!("d-{point}"));
        env.ok(&["sandbox", "create", &name, "--tenant", "t"]);
        let out = env.palisade_env(
            &["sandbox", "destroy", &name],
            &[("PALISADE_CRASH_AT", point)],
        );
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(9), "{point}: not killed");
        let out = env.palisade(&["status"]);
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("finished the interrupted destruction")
        );
        assert!(
            !palisade_link::named_netns_exists(&name),
            "{point}: namespace left"
        );
        env.assert_empty();
    }
}

#[test]
fn reconcile_restores_table_links_and_removes_orphans() {
    let Some(env) = Env::new("reconcile_restores_table_links_and_removes_orphans", ROUTED) else {
        return;
    };
    let a = env.name("a");
    env.ok(&["sandbox", "create", &a, "--tenant", "t"]);
    let (ipv4, _) = env.addresses(&a);
    let table_handle = || {
        let out = env
            .lab
            .command(
                std::path::Path::new("nft"),
                &["-a", "list", "table", "inet", "palisade"],
                &[],
            )
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let first = text.lines().next().unwrap_or_default().to_string();
        assert!(first.contains("# handle"), "{text}");
        first
    };

    // An intact table is left as it is: the same table, not a copy.
    let before = table_handle();
    let init = env.ok(&["init"]);
    assert!(!init.contains("rebuilt"), "{init}");
    assert_eq!(table_handle(), before, "init replaced an intact table");

    // Tampering with an element is drift that verify reports, with exit 1.
    env.lab
        .command(
            std::path::Path::new("nft"),
            &[
                "delete",
                "element",
                "inet",
                "palisade",
                "tenant4",
                &format!("{{ {ipv4} }}"),
            ],
            &[],
        )
        .unwrap();
    let out = env.palisade(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains(&format!("missing element inet palisade tenant4 {ipv4}")));
    assert_eq!(env.json(&["status", "--json"])["drift"], true);
    let init = env.ok(&["init"]);
    assert!(init.contains("rebuilt"), "{init}");
    env.ok(&["verify"]);

    // So is a rule added to one of palisade's chains; init replaces the
    // tables then.
    env.lab
        .command(
            std::path::Path::new("nft"),
            &["add", "rule", "inet", "palisade", "forward", "accept"],
            &[],
        )
        .unwrap();
    assert_eq!(env.palisade(&["verify"]).status.code(), Some(1));
    let before = table_handle();
    let init = env.ok(&["init"]);
    assert!(init.contains("rebuilt"), "{init}");
    assert_ne!(table_handle(), before, "the tampered table was kept");
    env.ok(&["verify"]);

    // A flushed ruleset is rebuilt by the next command.
    env.lab
        .command(std::path::Path::new("nft"), &["flush", "ruleset"], &[])
        .unwrap();
    let out = env.palisade(&["sandbox", "list"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("rebuilt"));
    env.ok(&["verify"]);

    // So is any one of palisade's tables on its own (here the arp table,
    // with the inet table intact).
    env.lab
        .command(
            std::path::Path::new("nft"),
            &["delete", "table", "arp", "palisade"],
            &[],
        )
        .unwrap();
    let out = env.palisade(&["sandbox", "list"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rebuilt"),
        "a missing arp table went unnoticed"
    );
    env.ok(&["verify"]);

    // An orphaned pal- interface goes; a deleted sandbox interface comes back.
    let iface = env.json(&["sandbox", "show", &a, "--json"])["network"]["host_interface"]
        .as_str()
        .unwrap()
        .to_string();
    env.lab
        .run(move || -> palisade_link::Result<()> {
            palisade_link::create_tap("pal-fffff", None)?;
            palisade_link::Rtnl::open()?.delete_link(&iface).map(|_| ())
        })
        .unwrap()
        .unwrap();
    let out = env.palisade(&["verify"]);
    assert_eq!(out.status.code(), Some(1), "a missing interface is drift");
    let init = env.ok(&["init"]);
    assert!(
        init.contains("removed orphaned interface pal-fffff"),
        "{init}"
    );
    assert!(
        init.contains(&format!("recreated the missing interface of sandbox {a}")),
        "{init}"
    );
    env.ok(&["verify"]);
    env.ok(&["sandbox", "destroy", &a]);
    env.assert_empty();
}

#[test]
fn concurrent_creates_never_share_an_address() {
    let Some(env) = Env::new("concurrent_creates_never_share_an_address", ROUTED) else {
        return;
    };
    env.ok(&["init"]);
    let names: Vec<String> = (0..8).map(|i| env.name(&format!("c{i}"))).collect();
    let env = std::sync::Arc::new(env);
    let handles: Vec<_> = names
        .iter()
        .cloned()
        .map(|n| {
            let env = env.clone();
            std::thread::spawn(move || {
                env.palisade(&[
                    "sandbox", "create", &n, "--tenant", "t", "--kind", "tap", "--json",
                ])
            })
        })
        .collect();
    let mut addrs = std::collections::BTreeSet::new();
    for h in handles {
        let out = h.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            addrs.insert(v["network"]["ipv4"].as_str().unwrap().to_string()),
            "address handed out twice"
        );
    }
    assert_eq!(addrs.len(), 8);
    env.ok(&["verify"]);
    for n in &names {
        env.ok(&["sandbox", "destroy", n]);
    }
    env.assert_empty();
}

#[test]
fn config_errors_are_reported_before_anything() {
    let Some(env) = Env::new(
        "config_errors_are_reported_before_anything",
        "[network]\nsubnet = \"10.0.0.0/33\"\n",
    ) else {
        return;
    };
    let out = env.palisade(&["init"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("network.subnet") && err.contains("10.0.0.0/33"),
        "{err}"
    );
    assert!(
        !env.table_text().contains("palisade"),
        "nothing may be applied"
    );
}

#[test]
fn verify_catches_tampering_with_rules_chains_and_sets() {
    let Some(env) = Env::new("verify_catches_tampering", ROUTED) else {
        return;
    };
    env.ok(&["init"]);
    let a = env.name("a");
    env.ok(&["sandbox", "create", &a, "--tenant", "t"]);
    env.ok(&["verify"]);
    let nft = |args: &[&str]| {
        env.lab_ok("nft", args);
    };
    // Each tampering must be named by verify, and undone by init.
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["add", "rule", "inet", "palisade", "guard", "accept"],
            "unexpected rule inet palisade guard #2",
        ),
        (
            vec!["chain", "inet", "palisade", "guard", "{ policy drop; }"],
            "differs chain inet palisade guard",
        ),
        (
            vec![
                "add",
                "element",
                "inet",
                "palisade",
                "sources4",
                "{ \"pal-ffff\" . 02:00:00:00:ff:ff . 10.200.9.9 }",
            ],
            "unexpected element inet palisade sources4",
        ),
        (
            vec![
                "delete",
                "element",
                "inet",
                "palisade",
                "blocked4",
                "{ 169.254.0.0/16 }",
            ],
            "missing element inet palisade blocked4",
        ),
        (
            vec!["flush", "chain", "inet", "palisade", "sandbox_source"],
            "missing rule inet palisade sandbox_source #1",
        ),
        (
            vec![
                "add",
                "set",
                "inet",
                "palisade",
                "extra",
                "{ type ipv4_addr; }",
            ],
            "unexpected set inet palisade extra",
        ),
    ];
    for (args, expected) in cases {
        nft(&args);
        let out = env.palisade(&["verify"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} went unnoticed: {stdout}"
        );
        assert!(
            stdout.contains(expected),
            "{args:?}: want {expected:?} in\n{stdout}"
        );
        env.ok(&["init"]);
        env.ok(&["verify"]);
    }
    // verify of one sandbox ignores the others' elements but not the
    // rules.
    let b = env.name("b");
    env.ok(&["sandbox", "create", &b, "--tenant", "u"]);
    env.ok(&["verify", &a]);
    nft(&["add", "rule", "inet", "palisade", "guard", "accept"]);
    assert_eq!(env.palisade(&["verify", &a]).status.code(), Some(1));
    env.ok(&["init"]);
    env.ok(&["sandbox", "destroy", &a]);
    env.ok(&["sandbox", "destroy", &b]);
    env.assert_empty();
}

/// Routed mode: nothing over a namespace sandbox's veth needs ARP or
/// neighbour discovery. The gateway's addresses are pinned to the host
/// end's MAC inside the sandbox, the sandbox's addresses to its MAC on the
/// host, and the host end carries no address at all.
#[test]
fn routed_namespace_link_pins_neighbours_both_ways() {
    let Some(env) = Env::new("routed_namespace_link_pins_neighbours_both_ways", ROUTED) else {
        return;
    };
    env.ok(&["init"]);
    let ns = env.name("pin");
    let v = env.json(&["sandbox", "create", &ns, "--tenant", "t1", "--json"]);
    let host_iface = v["network"]["host_interface"].as_str().unwrap().to_string();
    let mac = v["network"]["mac"].as_str().unwrap().to_string();
    let (ip4, ip6) = env.addresses(&ns);
    let ip_json = |args: &[&str]| -> serde_json::Value {
        let out = env
            .lab
            .command(std::path::Path::new("ip"), args, &[])
            .unwrap();
        assert!(out.status.success(), "ip {args:?}: {out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let pinned = |table: &serde_json::Value, dst: &str, lladdr: &str| {
        let entry = table
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["dst"] == dst)
            .unwrap_or_else(|| panic!("no neighbour entry for {dst}: {table}"));
        assert_eq!(entry["lladdr"], lladdr, "{entry}");
        assert!(
            entry["state"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "PERMANENT"),
            "{entry}"
        );
    };
    let inside = ip_json(&["-n", &ns, "-j", "neigh", "show", "dev", "eth0"]);
    for gateway in ["10.200.0.1", "fe80::1"] {
        pinned(&inside, gateway, "06:00:00:00:00:01");
    }
    let host = ip_json(&["-j", "neigh", "show", "dev", &host_iface]);
    for addr in [&ip4, &ip6] {
        pinned(&host, addr, &mac);
    }
    let addrs = ip_json(&["-j", "addr", "show", "dev", &host_iface]);
    let on_host_end = &addrs[0]["addr_info"];
    assert!(
        on_host_end.as_array().is_none_or(|a| a.is_empty()),
        "host end {host_iface} has addresses: {on_host_end}"
    );
    // Nor the kernel's IPv6 multicast route (one per link would make every
    // link change walk them all); the sandbox's own /128 is there.
    let local6 = ip_json(&[
        "-6",
        "-j",
        "route",
        "show",
        "table",
        "all",
        "dev",
        &host_iface,
    ]);
    let dsts: Vec<&str> = local6
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["dst"].as_str())
        .collect();
    assert!(dsts.contains(&ip6.as_str()), "no route to {ip6}: {local6}");
    assert!(
        !dsts.contains(&"ff00::/8"),
        "multicast route left: {local6}"
    );
    env.ok(&["verify"]);
    env.ok(&["sandbox", "destroy", &ns]);
    env.assert_empty();
}

/// Bridge mode: a retired veth keeps its bridge port, down, until the reap
/// gives it back (at most 64 wait, so a bridge of 512 sandboxes never fills
/// with them), and a full bridge refuses the next sandbox with a clear
/// error, creating nothing.
#[test]
fn bridge_ports_are_freed_at_the_reap_and_a_full_bridge_fails_closed() {
    let Some(env) = Env::new(
        "bridge_ports_are_freed_at_the_reap_and_a_full_bridge_fails_closed",
        "[network]\nmode = \"bridge\"\n",
    ) else {
        return;
    };
    env.ok(&["init"]);
    let bridge_ports = || -> Vec<String> {
        env.lab
            .run(|| {
                let mut rtnl = palisade_link::Rtnl::open()?;
                let bridge = rtnl.link_index(palisade_core::names::BRIDGE_IFACE)?;
                let links = rtnl.list_links()?;
                Ok::<_, palisade_link::LinkError>(
                    links
                        .into_iter()
                        .filter(|l| l.master.is_some() && l.master == bridge)
                        .map(|l| l.name)
                        .collect(),
                )
            })
            .unwrap()
            .unwrap()
    };
    // An adopted namespace, so that its veth waits retired after the destroy.
    let first = env.name("first");
    palisade_link::create_named_netns(&first).unwrap();
    let v = env.json(&["sandbox", "create", &first, "--tenant", "t", "--json"]);
    let host_end = v["network"]["host_interface"].as_str().unwrap().to_string();
    assert_eq!(bridge_ports(), vec![host_end.clone()], "control: a port");
    env.ok(&["sandbox", "destroy", &first]);
    assert_eq!(
        env.retired_links(),
        vec![host_end.clone()],
        "retired, not reaped"
    );
    assert_eq!(
        bridge_ports(),
        vec![host_end],
        "its port is held until the reap"
    );

    // Fill the bridge with veths to one free port (in one `ip` process).
    let fillers = palisade::engine::BRIDGE_MAX_PORTS - 2;
    let batch = std::env::temp_dir().join(format!("{}-fill.ip", env.name("b")));
    let lines: String = (0..fillers)
        .map(|i| format!("link add fill{i} master palisade0 type veth peer name fillp{i}\n"))
        .collect();
    std::fs::write(&batch, lines).unwrap();
    let out = env
        .lab
        .command(
            std::path::Path::new("ip"),
            &["-batch", batch.to_str().unwrap()],
            &[],
        )
        .unwrap();
    let _ = std::fs::remove_file(&batch);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(bridge_ports().len(), fillers + 1, "and the retired one");

    // The last port.
    let last = env.name("last");
    env.ok(&["sandbox", "create", &last, "--tenant", "t"]);
    // A refused create's veth is gone, or retired while the kernel cleans
    // up its deleted namespace in the background (taking the veth with it).
    let live_links = || -> Vec<String> {
        let retired = env.retired_links();
        env.pal_links()
            .into_iter()
            .filter(|l| !retired.contains(l))
            .collect()
    };
    let links_before = live_links();
    let over = env.name("over");
    let out = env.palisade(&["sandbox", "create", &over, "--tenant", "t"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a full bridge must refuse");
    assert!(
        stderr.contains("bridge palisade0: it is full") && stderr.contains("1023 ports"),
        "{stderr}"
    );
    let names: Vec<String> = env
        .json(&["sandbox", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec![last.clone()], "the refused sandbox is not kept");
    assert!(
        !palisade_link::named_netns_exists(&over),
        "its namespace is gone"
    );
    assert_eq!(live_links(), links_before, "its veth is gone or retired");
    // Bridge mode retires a veth by setting it down into the graveyard group.
    let retired = env.retired_links();
    let leftovers: Vec<_> = env
        .lab
        .run(|| palisade_link::Rtnl::open().and_then(|mut r| r.list_links()))
        .unwrap()
        .unwrap()
        .into_iter()
        .filter(|l| retired.contains(&l.name))
        .collect();
    assert!(
        !leftovers.is_empty(),
        "control: the first sandbox's veth waits"
    );
    assert!(
        leftovers
            .iter()
            .all(|l| !l.up && l.group == palisade::engine::RETIRED_LINK_GROUP),
        "a retired bridge-mode veth must be down in the graveyard group: {leftovers:?}"
    );
    assert_eq!(
        bridge_ports().len(),
        fillers + 2,
        "the fillers, the retired veth and the last sandbox hold the ports; the refused one none"
    );
    env.ok(&["verify"]);
    env.ok(&["sandbox", "destroy", &last]);
    env.ok(&["reap"]);
    assert_eq!(
        bridge_ports().len(),
        fillers,
        "the reap gives the retired veths' ports back"
    );
    env.assert_empty();
    palisade_link::delete_named_netns(&first).unwrap();
}

/// Bridge mode with 4 sandboxes per bridge: the first slice of the pools
/// (network, gateway and two sandboxes) is on `palisade0`, the next on
/// `palisade1`, made by its first sandbox. A crash right after that bridge
/// is created leaves it without addresses or routes; the next create on it
/// finishes it. Sandboxes on different bridges reach each other through the
/// host, as policy allows.
#[test]
fn bridge_mode_spreads_sandboxes_over_bridges_and_finishes_an_interrupted_one() {
    let Some(env) = Env::new(
        "bridge_mode_spreads_sandboxes_over_bridges_and_finishes_an_interrupted_one",
        "[network]\nmode = \"bridge\"\nsandboxes_per_bridge = 4\n\n[isolation]\ninter_sandbox = \"same-tenant\"\n",
    ) else {
        return;
    };
    env.ok(&["init"]);
    let create = |name: &str| env.json(&["sandbox", "create", name, "--tenant", "t", "--json"]);
    let bridge_of = |v: &serde_json::Value| v["network"]["bridge"].as_str().unwrap().to_string();
    let addresses = |v: &serde_json::Value| -> (IpAddr, IpAddr) {
        let addr = |key: &str| {
            v["network"][key]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        (addr("ipv4"), addr("ipv6"))
    };
    let first = env.name("first");
    let v1 = create(&first);
    let second = env.name("second");
    let v2 = create(&second);
    assert_eq!(bridge_of(&v1), "palisade0");
    assert_eq!(bridge_of(&v2), "palisade0");

    let third = env.name("third");
    let out = env.palisade_env(
        &["sandbox", "create", &third, "--tenant", "t"],
        &[("PALISADE_CRASH_AT", "after-bridge")],
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(9), "not killed at after-bridge");
    let link_index = |name: &'static str| {
        env.lab
            .run(move || palisade_link::Rtnl::open()?.link_index(name))
            .unwrap()
            .unwrap()
    };
    let unfinished = link_index("palisade1").expect("control: the crash left palisade1");
    let route_oif = |dest: IpAddr| {
        env.lab
            .run(move || palisade_link::Rtnl::open()?.route_oif(dest))
            .unwrap()
            .unwrap()
    };
    for slice in ["10.200.0.4", "fd70:616c:6973::4"] {
        assert_ne!(
            route_oif(slice.parse().unwrap()),
            Some(unfinished),
            "control: the crash came before the slice's routes ({slice})"
        );
    }

    let v3 = create(&third);
    assert_eq!(bridge_of(&v3), "palisade1");
    assert_eq!(link_index("palisade1"), Some(unfinished), "the same bridge");
    let (third4, third6) = addresses(&v3);
    for dest in [third4, third6] {
        assert_eq!(
            route_oif(dest),
            Some(unfinished),
            "{dest} is routed to palisade1"
        );
    }
    env.ok(&["verify"]);
    // The host's entries for a bridge sandbox's addresses are pinned.
    let pinned = |bridge: &str| -> String {
        let out = env
            .lab
            .command(
                std::path::Path::new("ip"),
                &["neigh", "show", "nud", "permanent", "dev", bridge],
                &[],
            )
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let assert_pinned = |why: &str| {
        let on_palisade1 = pinned("palisade1");
        for dest in [third4, third6] {
            assert!(
                on_palisade1.contains(&format!("{dest} lladdr")),
                "{why}: {dest} is not pinned on palisade1:\n{on_palisade1}"
            );
        }
    };
    assert_pinned("after the create");
    // Every bridge has palisade's own MAC, so its pins survive its ports
    // coming and going (a change of a bridge's address flushes them).
    for bridge in ["palisade0", "palisade1"] {
        let mac = env
            .lab
            .run(move || palisade_link::Rtnl::open()?.link(bridge))
            .unwrap()
            .unwrap()
            .and_then(|l| l.mac);
        assert_eq!(mac, Some(palisade_core::model::GATEWAY_MAC.0), "{bridge}");
    }
    // Lost pins are put back by init.
    let out = env
        .lab
        .command(
            std::path::Path::new("ip"),
            &["neigh", "flush", "dev", "palisade1", "nud", "permanent"],
            &[],
        )
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(pinned("palisade1").trim(), "", "control: the pins are gone");
    let said = env.ok(&["init"]);
    assert!(
        said.contains(&format!("pinned the addresses of sandbox {third}")),
        "{said}"
    );
    assert_pinned("after init");

    // From palisade0's first sandbox to palisade1's, both families.
    for dest in [third4, third6] {
        let at = std::net::SocketAddr::new(dest, 7100);
        let listener = palisade_link::run_in_netns(&palisade_link::netns_path(&third), move || {
            std::net::TcpListener::bind(at).unwrap()
        })
        .unwrap();
        let mut inside =
            palisade_link::run_in_netns(&palisade_link::netns_path(&first), move || {
                std::net::TcpStream::connect_timeout(&at, std::time::Duration::from_secs(2))
            })
            .unwrap()
            .unwrap_or_else(|e| panic!("{first} -> {at} across bridges: {e}"));
        let (mut outside, _) = listener.accept().unwrap();
        for s in [&inside, &outside] {
            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
        }
        assert_eq!(
            common::send_and_read(&mut inside, &mut outside, b"over"),
            Some(b"over".to_vec())
        );
        assert_eq!(
            common::send_and_read(&mut outside, &mut inside, b"back"),
            Some(b"back".to_vec())
        );
    }
    // Another layout is refused while sandboxes are placed with this one.
    let config = env.dir.join("palisade.toml");
    let layout = |n: u32| {
        std::fs::write(
            &config,
            format!("[network]\nmode = \"bridge\"\nsandboxes_per_bridge = {n}\n\n[isolation]\ninter_sandbox = \"same-tenant\"\n"),
        )
        .unwrap()
    };
    layout(8);
    let out = env.palisade(&["sandbox", "list"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "another layout must be refused");
    assert!(said.contains("placed 4 per bridge"), "{said}");
    layout(4);
    env.ok(&["sandbox", "list"]);

    for name in [&first, &second, &third] {
        env.ok(&["sandbox", "destroy", name]);
    }
    for bridge in ["palisade0", "palisade1"] {
        assert_eq!(pinned(bridge).trim(), "", "pins left on {bridge}");
    }
    env.assert_empty();

    // With none placed, another layout is taken: the old layout's bridges
    // (and their slice routes) go.
    layout(8);
    env.ok(&["init"]);
    assert_eq!(
        link_index("palisade1"),
        None,
        "the old layout's bridge is gone"
    );
    let fourth = env.name("fourth");
    let v4 = create(&fourth);
    assert_eq!(bridge_of(&v4), "palisade0");
    let (fourth4, fourth6) = addresses(&v4);
    let old_slice: ipnet::IpNet = "10.200.0.4/30".parse().unwrap();
    assert!(
        old_slice.contains(&fourth4),
        "control: {fourth4} is in the old layout's palisade1 slice"
    );
    for dest in [fourth4, fourth6] {
        assert_eq!(route_oif(dest), link_index("palisade0"), "{dest}");
    }
    env.ok(&["sandbox", "destroy", &fourth]);
    env.assert_empty();
}

/// A bridge-mode host from before the layout was recorded has every
/// sandbox on `palisade0`. Its store records none: every command but
/// `init` refuses, and `init` moves each sandbox to its slice's bridge.
#[test]
fn init_moves_sandboxes_placed_before_the_layout_was_recorded_to_their_bridges() {
    let Some(env) = Env::new(
        "init_moves_sandboxes_placed_before_the_layout_was_recorded_to_their_bridges",
        "[network]\nmode = \"bridge\"\nsandboxes_per_bridge = 4\n\n[isolation]\ninter_sandbox = \"same-tenant\"\n",
    ) else {
        return;
    };
    env.ok(&["init"]);
    let names: Vec<String> = ["a", "b", "c"].iter().map(|n| env.name(n)).collect();
    let views: Vec<serde_json::Value> = names
        .iter()
        .map(|n| env.json(&["sandbox", "create", n, "--tenant", "t", "--json"]))
        .collect();
    let moved = &views[2];
    assert_eq!(moved["network"]["bridge"], "palisade1", "control");
    let port = moved["network"]["host_interface"]
        .as_str()
        .unwrap()
        .to_string();
    let ip = |args: &[&str]| {
        env.lab_ok("ip", args);
    };
    // What an earlier palisade left: the port on palisade0, no palisade1,
    // no recorded layout.
    ip(&["link", "set", &port, "master", "palisade0"]);
    ip(&["link", "delete", "palisade1"]);
    let db = rusqlite::Connection::open(env.dir.join("state").join("palisade.db")).unwrap();
    db.execute("DELETE FROM meta WHERE key = 'bridge_layout'", [])
        .unwrap();
    drop(db);

    let out = env.palisade(&["sandbox", "list"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "refused before init");
    assert!(said.contains("run palisade init once"), "{said}");
    // An interface of someone else's named like palisade's bridges: init
    // says its traffic is filtered as theirs.
    ip(&["link", "add", "palisadex", "type", "bridge"]);

    let said = env.ok(&["init"]);
    assert!(
        said.contains("interface palisadex: names starting with palisade"),
        "{said}"
    );
    ip(&["link", "delete", "palisadex"]);
    let master = |name: &str| {
        let name = name.to_string();
        env.lab
            .run(move || palisade_link::Rtnl::open()?.link(&name))
            .unwrap()
            .unwrap()
            .and_then(|l| l.master)
    };
    let palisade1 = env
        .lab
        .run(|| palisade_link::Rtnl::open()?.link_index("palisade1"))
        .unwrap()
        .unwrap();
    assert!(palisade1.is_some(), "palisade1 made again");
    assert_eq!(master(&port), palisade1, "{port} moved to palisade1");
    // A port takes the kernel's defaults on a new bridge: made isolated
    // again, with its static entry, and only the moved one.
    assert!(
        said.contains(&format!(
            "made the bridge port of sandbox {} an isolated port",
            names[2]
        )),
        "{said}"
    );
    assert_eq!(said.matches("made the bridge port").count(), 1, "{said}");
    let port_now = port.clone();
    let isolated = env
        .lab
        .run(move || palisade_link::Rtnl::open()?.bridge_ports())
        .unwrap()
        .unwrap()
        .into_iter()
        .find(|p| p.name == port_now)
        .map(|p| p.isolated);
    assert_eq!(isolated, Some(true));
    env.ok(&["sandbox", "list"]);
    env.ok(&["verify"]);
    for n in &names {
        env.ok(&["sandbox", "destroy", n]);
    }
    env.assert_empty();
}

/// Bridge mode: `verify` reads the bridges back (up, fixed MAC, both
/// gateway addresses, the slice's routes) and `init` makes them again.
#[test]
fn verify_reports_a_tampered_bridge_and_init_repairs_it() {
    let Some(env) = Env::new(
        "verify_reports_a_tampered_bridge_and_init_repairs_it",
        "[network]\nmode = \"bridge\"\nsandboxes_per_bridge = 4\n",
    ) else {
        return;
    };
    env.ok(&["init"]);
    let names: Vec<String> = (0..3).map(|i| env.name(&format!("s{i}"))).collect();
    for n in &names {
        env.ok(&["sandbox", "create", n, "--tenant", "t"]);
    }
    let third = env.json(&["sandbox", "show", &names[2], "--json"]);
    assert_eq!(third["network"]["bridge"], "palisade1", "{third}");
    env.ok(&["verify"]);

    let ip = |args: &[&str]| env.lab_ok("ip", args);
    let slice6 = ip(&["-6", "route", "show", "dev", "palisade1"])
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .find(|dest| dest.starts_with("fd70:"))
        .expect("control: palisade1 has its IPv6 slice route");
    ip(&["address", "del", "10.200.0.1/32", "dev", "palisade1"]);
    ip(&["-6", "route", "del", &slice6, "dev", "palisade1"]);
    ip(&[
        "link",
        "set",
        "dev",
        "palisade1",
        "address",
        "02:aa:00:00:00:01",
    ]);
    let verify = |want: &[&str]| {
        let out = env.palisade(&["verify"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(!out.status.success(), "a tampered bridge passed: {text}");
        for w in want {
            assert!(text.contains(w), "no {w:?} in:\n{text}");
        }
        text
    };
    let text = verify(&[
        "missing gateway address 10.200.0.1 on bridge palisade1",
        &format!("differs route to slice {slice6} of bridge palisade1"),
        "differs bridge palisade1",
        "MAC 02:aa:00:00:00:01",
    ]);
    assert!(
        !text.contains("bridge palisade0"),
        "control: palisade0 was left alone:\n{text}"
    );
    env.ok(&["init"]);
    env.ok(&["verify"]);

    // Down, the bridge loses its IPv6 address and every route through it.
    ip(&["link", "set", "dev", "palisade1", "down"]);
    verify(&[
        "differs bridge palisade1",
        "down",
        "route to slice 10.200.0.4/30 of bridge palisade1",
    ]);
    env.ok(&["init"]);
    env.ok(&["verify"]);

    // palisade0's route to the IPv4 pool comes with its address; deleted,
    // re-adding the address would not bring it back.
    ip(&["route", "del", "10.200.0.0/16", "dev", "palisade0"]);
    verify(&["differs route to slice 10.200.0.0/30 of bridge palisade0"]);
    env.ok(&["init"]);
    env.ok(&["verify"]);

    ip(&["link", "del", "palisade1"]);
    verify(&["missing bridge palisade1"]);
    env.ok(&["init"]);
    env.ok(&["verify"]);
    for n in &names {
        env.ok(&["sandbox", "destroy", n]);
    }
    env.assert_empty();
}
