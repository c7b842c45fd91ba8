//! `palisade verify --probe`: real traffic from inside netns and tap
//! sandboxes, every outcome proven by a palisade rule counter or an answer,
//! and a broken ruleset caught by the probes themselves.

mod common;

use common::Env;
use palisade_lab::traffic::{ListenerSet, L4};
use palisade_lab::World;
use serde_json::Value;
use std::net::SocketAddr;

const CONFIG: &str = "[network]\nuplink = \"up0\"\n[isolation]\ninter_sandbox = \"same-tenant\"\n";

fn probes_of<'a>(report: &'a Value, sandbox: &str) -> &'a Vec<Value> {
    report["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == sandbox)
        .unwrap_or_else(|| panic!("{sandbox} not in the report"))["probes"]
        .as_array()
        .unwrap()
}

fn find<'a>(probes: &'a [Value], target: &str, destination: &str, transport: &str) -> &'a Value {
    probes
        .iter()
        .find(|p| {
            p["target"].as_str().unwrap().starts_with(target)
                && p["destination"] == destination
                && p["transport"] == transport
        })
        .unwrap_or_else(|| panic!("no probe {target} {destination} {transport}: {probes:#?}"))
}

#[test]
fn probes_prove_every_outcome_and_catch_a_broken_rule() {
    let Some(env) = Env::new("probes_prove_every_outcome_and_catch_a_broken_rule", CONFIG) else {
        return;
    };
    let world = env.lab.add_world().unwrap();
    let _internet = ListenerSet::start(
        &world.path(),
        &[(L4::Tcp, SocketAddr::new(World::INTERNET4.into(), 443))],
    )
    .unwrap();
    let a1 = env.name("a1");
    let a2 = env.name("a2");
    let b1 = env.name("b1");
    let vm = env.name("vm");
    env.ok(&["sandbox", "create", &a1, "--tenant", "a"]);
    env.ok(&["sandbox", "create", &a2, "--tenant", "a"]);
    env.ok(&[
        "sandbox",
        "create",
        &b1,
        "--tenant",
        "b",
        "--internet",
        "--allow",
        "tcp:443",
    ]);
    env.ok(&["sandbox", "create", &vm, "--tenant", "a", "--kind", "tap"]);
    let (a2_4, a2_6) = env.addresses(&a2);
    let (b1_4, _) = env.addresses(&b1);

    let args = [
        "verify",
        "--probe",
        "--json",
        "--timeout-ms",
        "700",
        "--internet-target",
        "203.0.113.10",
    ];
    let out = env.palisade(&args);
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert!(out.status.success(), "verify --probe failed: {report:#}");
    assert!(report["probes"].as_u64().unwrap() > 60, "{report:#}");
    assert_eq!(report["probes"], report["matched"]);

    let a1p = probes_of(&report, &a1);
    // Metadata: dropped by the blocked-range rule, over TCP, UDP and ICMP.
    for transport in ["tcp/80", "udp/53", "icmp"] {
        let p = find(a1p, "metadata", "169.254.169.254", transport);
        assert_eq!(p["observed"], "dropped", "{p:#}");
        assert!(
            p["evidence"].as_str().unwrap().contains("@blocked4"),
            "{p:#}"
        );
        let p = find(a1p, "metadata", "fd00:ec2::254", transport);
        assert!(
            p["evidence"].as_str().unwrap().contains("@blocked6"),
            "{p:#}"
        );
    }
    // The host, on its uplink address: dropped in the input path.
    let p = find(a1p, "host", &World::LAB4.to_string(), "tcp/22");
    assert!(
        p["evidence"].as_str().unwrap().contains("sandbox_to_host"),
        "{p:#}"
    );
    // Same tenant reaches (the peer's kernel answers with a reset), the
    // other tenant is dropped.
    let p = find(a1p, &format!("sandbox {a2}"), &a2_4, "tcp/9");
    assert_eq!(p["observed"], "reached", "{p:#}");
    assert_eq!(
        find(a1p, &format!("sandbox {a2}"), &a2_6, "tcp/9")["observed"],
        "reached"
    );
    let p = find(a1p, &format!("sandbox {b1}"), &b1_4, "tcp/9");
    assert_eq!(p["observed"], "dropped", "{p:#}");
    // A private range.
    let p = find(a1p, "blocked range 10.0.0.0/8", "10.0.0.1", "udp/53");
    assert_eq!(p["observed"], "dropped", "{p:#}");

    // Internet: the allowed port reaches the world's listener, another port
    // is dropped.
    let b1p = probes_of(&report, &b1);
    let p = find(b1p, "internet (allowed)", "203.0.113.10", "tcp/443");
    assert_eq!(p["observed"], "reached", "{p:#}");
    let p = find(b1p, "internet (port not allowed)", "203.0.113.10", "tcp/1");
    assert_eq!(p["observed"], "dropped", "{p:#}");

    // The tap is probed with frames written into it, as a guest's would be.
    let vm_report = report["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == vm.as_str())
        .unwrap();
    assert!(vm_report["method"].as_str().unwrap().starts_with("tap"));
    let vmp = probes_of(&report, &vm);
    let p = find(vmp, "metadata", "169.254.169.254", "udp/80");
    assert_eq!(p["observed"], "dropped", "{p:#}");
    // Tap probes do not read answers: palisade's accept counter is the
    // evidence.
    let p = find(vmp, &format!("sandbox {a2}"), &a2_4, "udp/9");
    assert_eq!(p["observed"], "accepted", "{p:#}");
    assert!(p["evidence"].as_str().unwrap().contains("to_peer"), "{p:#}");
    let p = find(vmp, &format!("sandbox {b1}"), &b1_4, "udp/9");
    assert_eq!(p["observed"], "dropped", "{p:#}");

    // A tap a VMM holds cannot be written: reported unprobed, exit 1.
    let tap = env.json(&["sandbox", "show", &vm, "--json"])["network"]["host_interface"]
        .as_str()
        .unwrap()
        .to_string();
    let held = env
        .lab
        .run(move || palisade_link::attach_tap(&tap))
        .unwrap()
        .unwrap();
    let out = env.palisade(&["verify", "--probe", &vm, "--json", "--timeout-ms", "300"]);
    assert!(!out.status.success(), "an unprobed tap passed");
    let busy: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(busy["unprobed"], 1, "{busy:#}");
    assert!(
        busy["sandboxes"][0]["not_probed"]
            .as_str()
            .unwrap()
            .contains("held by a running VMM"),
        "{busy:#}"
    );
    drop(held);

    // Text output names each probe and ends with the totals.
    let text = env.ok(&["verify", "--probe", &a1, "--timeout-ms", "300"]);
    assert!(
        text.contains("metadata") && text.contains("probes:"),
        "{text}"
    );

    // Break the host rule: the probes (not only the static comparison) see
    // the host reached, and the exit status says so.
    env.lab
        .command(
            std::path::Path::new("nft"),
            &["flush", "chain", "inet", "palisade", "sandbox_to_host"],
            &[],
        )
        .unwrap();
    let out = env.palisade(&["verify", "--probe", &a1, "--json", "--timeout-ms", "300"]);
    assert!(!out.status.success(), "a flushed host chain went unnoticed");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = find(
        probes_of(&report, &a1),
        "host",
        &World::LAB4.to_string(),
        "tcp/22",
    );
    assert_eq!(p["matched"], false, "{p:#}");
    assert_eq!(p["observed"], "reached", "{p:#}");

    env.ok(&["init"]);
    for n in [&a1, &a2, &b1, &vm] {
        env.ok(&["sandbox", "destroy", n]);
    }
    env.assert_empty();
}
