//! `palisade verify --probe`: real traffic from inside netns and tap
//! sandboxes, every outcome proven by a palisade rule counter or an answer,
//! and a broken ruleset caught by the probes themselves.

mod common;

use common::Env;
use palisade_lab::traffic::{ListenerSet, L4};
use palisade_lab::World;
use serde_json::Value;
use std::fs::File;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn config(mode: &str) -> String {
    format!(
        "[network]\nmode = \"{mode}\"\nuplink = \"up0\"\n[isolation]\ninter_sandbox = \"same-tenant\"\n"
    )
}

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
fn probes_prove_every_outcome_and_catch_a_broken_rule_routed() {
    probes_prove_every_outcome(
        "probes_prove_every_outcome_and_catch_a_broken_rule_routed",
        "routed",
    );
}

/// Bridge mode: the tap is an isolated port of its bridge that learns
/// nothing, so its frames reach the host only through the port settings and
/// the static entry made at attach.
#[test]
fn probes_prove_every_outcome_and_catch_a_broken_rule_bridge() {
    probes_prove_every_outcome(
        "probes_prove_every_outcome_and_catch_a_broken_rule_bridge",
        "bridge",
    );
}

fn probes_prove_every_outcome(test: &str, mode: &str) {
    let Some(env) = Env::new(test, &config(mode)) else {
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
        .run({
            let tap = tap.clone();
            move || palisade_link::attach_tap(&tap)
        })
        .unwrap()
        .unwrap();
    if mode == "bridge" {
        // The way back: the port learns nothing and is sent no flooded
        // frame, so a datagram from a peer reaches the guest only through
        // the static entry for the guest's MAC (and the host's pin of its
        // address).
        let guest_mac: palisade_core::element::MacAddr = env
            .json(&["sandbox", "show", &vm, "--json"])["network"]["mac"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let (vm_4, _) = env.addresses(&vm);
        let vm_4: std::net::Ipv4Addr = vm_4.parse().unwrap();
        let a2_path = palisade_link::netns_path(&a2);
        let reaches_guest = |limit: Duration| {
            frames_until(&held, limit, || {
                palisade_lab::traffic::udp_exchange(
                    &a2_path,
                    SocketAddr::new(vm_4.into(), 9),
                    Duration::from_millis(100),
                )
                .unwrap();
            })
            .into_iter()
            .any(|f| is_udp_to(&f, guest_mac.0, vm_4, 9))
        };
        assert!(
            reaches_guest(Duration::from_secs(3)),
            "a datagram from {a2} never reached tap {tap}"
        );
        // Control: without the static entry nothing reaches the guest, and
        // `init` puts the entry back.
        env.lab_ok(
            "bridge",
            &[
                "fdb",
                "del",
                &guest_mac.to_string(),
                "dev",
                &tap,
                "master",
                "static",
            ],
        );
        assert!(
            !reaches_guest(Duration::from_millis(1500)),
            "tap {tap} got a datagram without its static entry"
        );
        let out = env.palisade(&["verify"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "a lost static entry passed: {text}");
        assert!(
            text.contains(&format!("missing static forwarding entry of sandbox {vm}")),
            "{text}"
        );
        let repaired = env.ok(&["init"]);
        assert!(
            repaired.contains(&format!(
                "gave the MAC of sandbox {vm} its static entry on its bridge again"
            )),
            "{repaired}"
        );
        env.ok(&["verify"]);
        assert!(
            reaches_guest(Duration::from_secs(3)),
            "init did not give tap {tap} its static entry back"
        );
    }
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

/// Calls `send` every 200 ms and collects the frames the host writes into
/// the tap held by `tap`, for up to `limit`.
fn frames_until(tap: &File, limit: Duration, mut send: impl FnMut()) -> Vec<Vec<u8>> {
    let end = Instant::now() + limit;
    let mut frames = Vec::new();
    let mut next_send = Instant::now();
    let mut reader = tap;
    while Instant::now() < end {
        if Instant::now() >= next_send {
            send();
            next_send = Instant::now() + Duration::from_millis(200);
        }
        let mut pfd = libc::pollfd {
            fd: tap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, owned by this frame.
        let ready = unsafe { libc::poll(&mut pfd, 1, 50) };
        if ready == 1 {
            let mut buf = vec![0u8; 2048];
            let n = reader.read(&mut buf).unwrap();
            buf.truncate(n);
            frames.push(buf);
        }
    }
    frames
}

/// An Ethernet frame to `mac` carrying an IPv4 UDP datagram to `ip`:`port`.
fn is_udp_to(frame: &[u8], mac: [u8; 6], ip: Ipv4Addr, port: u16) -> bool {
    if frame.len() < 14 + 20 + 8 || frame[..6] != mac || frame[12..14] != [0x08, 0x00] {
        return false;
    }
    let ip_header = &frame[14..];
    let header_len = usize::from(ip_header[0] & 0x0f) * 4;
    ip_header[9] == 17
        && ip_header[16..20] == ip.octets()
        && ip_header.len() >= header_len + 8
        && u16::from_be_bytes([ip_header[header_len + 2], ip_header[header_len + 3]]) == port
}
