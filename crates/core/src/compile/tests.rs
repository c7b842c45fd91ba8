use super::*;
use crate::model::{Sandbox, SandboxKind};
use crate::names::{SandboxName, TenantName};
use crate::policy::PortRule;

fn config(text: &str) -> Config {
    Config::from_toml("test", text).unwrap()
}

fn sandbox(config: &Config, id: u64, tenant_id: u32, internet: bool, allow: &[&str]) -> Sandbox {
    Sandbox {
        id,
        name: SandboxName::new(&format!("sb{id}")).unwrap(),
        tenant: TenantName::new(&format!("t{tenant_id}")).unwrap(),
        tenant_id,
        kind: SandboxKind::Netns,
        internet,
        allow: allow
            .iter()
            .map(|a| a.parse::<PortRule>().unwrap())
            .collect(),
        policy_epoch: 1,
        exposures: Vec::new(),
        attachment: Some(Sandbox::attachment_for(config, id, id as u32 + 1)),
        cni: None,
    }
}

/// A sandbox a CNI runtime attached as port `veth{id}` of `bridge`.
fn cni_sandbox(id: u64, tenant_id: u32, bridge: &str, v6: bool) -> Sandbox {
    Sandbox {
        id,
        name: SandboxName::new(&format!("cni-{id}")).unwrap(),
        tenant: TenantName::new(&format!("t{tenant_id}")).unwrap(),
        tenant_id,
        kind: SandboxKind::Cni,
        internet: false,
        allow: Vec::new(),
        policy_epoch: 1,
        exposures: Vec::new(),
        attachment: None,
        cni: Some(crate::model::CniAttachment {
            network: "net1".into(),
            container_id: format!("c{id}"),
            ifname: "eth0".into(),
            netns: format!("/run/netns/c{id}"),
            host_port: format!("veth{id}"),
            bridge: bridge.into(),
            mac: crate::model::sandbox_mac(id),
            ipv4: vec![format!("10.89.0.{id}").parse().unwrap()],
            ipv6: if v6 {
                vec![format!("fd89::{id}").parse().unwrap()]
            } else {
                Vec::new()
            },
        }),
    }
}

fn rule(text: &str) -> TenantRule {
    text.parse().unwrap()
}

fn exposure(host_ip: Option<&str>, host: &str, guest: &str) -> Exposure {
    Exposure::new(
        crate::policy::Proto::Tcp,
        host_ip.map(|a| a.parse().unwrap()),
        host.parse().unwrap(),
        guest.parse().unwrap(),
    )
    .unwrap()
}

/// Compares with a golden file under tests/golden; `UPDATE_GOLDEN=1`
/// rewrites it (review the diff before committing).
fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "compiled ruleset differs from {}",
        path.display()
    );
}

/// Routed mode, named: these tests were written for it (bridge mode's
/// differences are tested where a config names `mode = "bridge"`).
const ROUTED: &str = "[network]\nmode = \"routed\"\n";
const UPLINK: &str = "[network]\nmode = \"routed\"\nuplink = \"up0\"\n";

#[test]
fn golden_routed_deny() {
    let c = config(UPLINK);
    let mut sbs = vec![
        sandbox(&c, 1, 1, false, &[]),
        sandbox(&c, 2, 2, true, &[]),
        sandbox(&c, 3, 1, true, &["tcp:443", "udp:53"]),
    ];
    sbs[1].exposures.push(exposure(None, "8080", "80"));
    sbs[2]
        .exposures
        .push(exposure(Some("198.51.100.1"), "9000-9001", "90-91"));
    sbs[2]
        .exposures
        .push(exposure(Some("2001:db8:1::1"), "53", "53"));
    let rules = [
        (1, rule("allow tcp 8080 203.0.113.10/32")),
        (1, rule("deny udp all 2001:db8::/32")),
        (2, rule("deny tcp 8000-8999 198.51.100.0/24")),
        (2, rule("allow udp 53 2001:db8:1::53/128")),
    ];
    golden(
        "routed-deny.nft",
        &compile(&c, &sbs, &rules).replace_script(),
    );
}

#[test]
fn golden_routed_same_tenant_no_uplink() {
    let c = config("[network]\nmode = \"routed\"\n[isolation]\ninter_sandbox = \"same-tenant\"\nblocked = [\"203.0.113.0/24\", \"2001:db8:bad::/48\"]\n");
    let sbs = vec![
        sandbox(&c, 1, 1, false, &[]),
        cni_sandbox(2, 1, "cnibr0", true),
        cni_sandbox(3, 2, "cnibr0", false),
    ];
    golden(
        "routed-same-tenant.nft",
        &compile(&c, &sbs, &[]).replace_script(),
    );
}

#[test]
fn golden_bridge() {
    let c = config("[network]\nmode = \"bridge\"\nuplink = \"up0\"\n");
    let sbs = vec![
        sandbox(&c, 1, 1, false, &[]),
        sandbox(&c, 2, 2, true, &["tcp:443"]),
    ];
    golden("bridge.nft", &compile(&c, &sbs, &[]).replace_script());
}

#[test]
fn rule_count_does_not_grow_with_sandboxes() {
    let c = config(UPLINK);
    let one = compile(&c, &[sandbox(&c, 1, 1, true, &["tcp:443"])], &[]);
    let many: Vec<_> = (1..=500)
        .map(|i| sandbox(&c, i, (i % 7) as u32 + 1, i % 2 == 0, &["tcp:443"]))
        .collect();
    let big = compile(&c, &many, &[]);
    assert_eq!(one.rule_count(), big.rule_count());
    assert!(one.rule_count() > 10);
}

#[test]
fn element_counts_per_sandbox_are_constant() {
    let c = config(UPLINK);
    let plain = sandbox_elements(&c, &sandbox(&c, 1, 1, false, &[]));
    let internet = sandbox_elements(&c, &sandbox(&c, 9999, 1, true, &[]));
    assert_eq!(plain.len() + 2, internet.len());
    let narrowed = sandbox_elements(&c, &sandbox(&c, 5, 1, true, &["tcp:443"]));
    assert_eq!(plain.len() + 2, narrowed.len());
    assert!(narrowed
        .iter()
        .any(|e| e.set == "ports4" && e.to_nft() == "10.200.0.6 . tcp . 443"));
}

#[test]
fn cni_sandbox_binds_its_port_and_policy_follows_its_addresses() {
    let c = config(UPLINK);
    let mut sb = cni_sandbox(4, 3, "cnibr0", true);
    sb.internet = true;
    sb.allow = vec!["tcp:443".parse().unwrap()];
    sb.exposures.push(exposure(None, "8080", "80"));
    let els: Vec<String> = sandbox_elements(&c, &sb)
        .iter()
        .map(|e| format!("{} {} {}", e.family.keyword(), e.set, e.to_nft()))
        .collect();
    for want in [
        "bridge cni_ports \"veth4\"",
        "bridge macs \"veth4\" . 02:00:00:00:00:04",
        "bridge sources4 \"veth4\" . 02:00:00:00:00:04 . 10.89.0.4",
        "bridge sources6 \"veth4\" . 02:00:00:00:00:04 . fd89::4",
        "bridge sources6 \"veth4\" . 02:00:00:00:00:04 . fe80::ff:fe00:4",
        "bridge port_tenant \"veth4\" : 0x00000003",
        "bridge port_member \"veth4\" . 0x00000003",
        "inet tenant4 10.89.0.4 : 0x00000003",
        "inet member6 0x00000003 . fd89::4",
        "inet ports4 10.89.0.4 . tcp . 443",
        "inet ports6 fd89::4 . tcp . 443",
        "inet expose_any4 tcp . 8080 : 10.89.0.4 . 80",
        "inet expose_any6 tcp . 8080 : fd89::4 . 80",
    ] {
        assert!(
            els.iter().any(|e| e == want),
            "{want} missing from {els:#?}"
        );
    }
    // Nothing keyed by an interface lands in the inet or arp tables: the
    // port is only seen by the bridge family.
    assert!(!els
        .iter()
        .any(|e| e.starts_with("inet") && e.contains("veth4")));
    assert!(!els.iter().any(|e| e.starts_with("arp")));
    // The bridge itself is shared, not the sandbox's.
    assert!(!els.iter().any(|e| e.contains("cnibr0")));
    let ruleset = compile(&c, &[sb.clone(), cni_sandbox(5, 3, "cnibr0", false)], &[]);
    assert_eq!(
        ruleset.tables.matches("elements = { \"cnibr0\" }").count(),
        2
    );
}

#[test]
fn cni_sandbox_without_ipv6_exposes_over_ipv4_only() {
    let c = config(UPLINK);
    let mut sb = cni_sandbox(6, 1, "cnibr0", false);
    sb.exposures.push(exposure(None, "8080", "80"));
    sb.exposures.push(exposure(Some("2001:db8::1"), "81", "81"));
    let sets: Vec<&str> = sandbox_elements(&c, &sb)
        .iter()
        .filter(|e| e.set.starts_with("expose"))
        .map(|e| e.set)
        .collect();
    assert_eq!(sets, vec!["expose_any4"]);
}

#[test]
fn none_kind_has_no_elements() {
    let c = config(UPLINK);
    let mut sb = sandbox(&c, 1, 1, true, &[]);
    sb.kind = SandboxKind::None;
    sb.attachment = None;
    assert!(sandbox_elements(&c, &sb).is_empty());
}

#[test]
fn anti_spoofing_binds_interface_mac_and_addresses() {
    let c = config(ROUTED);
    let els = sandbox_elements(&c, &sandbox(&c, 4, 1, false, &[]));
    let text: Vec<String> = els
        .iter()
        .map(|e| format!("{:?} {} {}", e.family, e.set, e.to_nft()))
        .collect();
    for want in [
        "Inet macs \"pal-4\" . 02:00:00:00:00:04",
        "Inet sources4 \"pal-4\" . 02:00:00:00:00:04 . 10.200.0.5",
        "Inet sources6 \"pal-4\" . 02:00:00:00:00:04 . fd70:616c:6973::5",
        "Inet sources6 \"pal-4\" . 02:00:00:00:00:04 . fe80::ff:fe00:4",
        "Arp addrs4 \"pal-4\" . 10.200.0.5",
        "Inet tenant4 10.200.0.5 : 0x00000001",
    ] {
        assert!(text.iter().any(|t| t == want), "missing {want}: {text:#?}");
    }
}

#[test]
fn without_uplink_nothing_reaches_the_internet() {
    let c = config(ROUTED);
    let r = compile(&c, &[sandbox(&c, 1, 1, false, &[])], &[]);
    assert!(!r.tables.contains("@internet4"));
    assert!(!r.tables.contains("masquerade"));
}

#[test]
fn blocked_before_internet_and_deny_before_allow() {
    let c = config(UPLINK);
    let t = compile(&c, &[], &[]).tables;
    let pos = |s: &str| t.find(s).unwrap_or_else(|| panic!("{s} missing"));
    assert!(pos("@blocked4 counter drop") < pos("@internet4 ct mark set"));
    assert!(pos("@blocked6 counter drop") < pos("@ports6 ct mark set"));
    assert!(pos("ip daddr @tenant4 counter drop") < pos("@blocked4"));
}

#[test]
fn replace_script_removes_tables_of_every_family() {
    let c = config(ROUTED);
    let s = compile(&c, &[], &[]).replace_script();
    for f in ["inet", "arp", "bridge"] {
        assert!(s.contains(&format!("delete table {f} palisade")), "{f}");
    }
    // Routed mode keeps a bridge table for CNI ports, without the chains
    // of palisade's own bridge.
    assert!(s.contains("table bridge palisade {\n"));
    assert!(!s.contains("jump port_source"));
}

#[test]
fn exposures_are_map_elements_one_per_port_and_family() {
    let c = config(UPLINK);
    let mut sb = sandbox(&c, 1, 1, false, &[]);
    let before = compile(&c, std::slice::from_ref(&sb), &[]).rule_count();
    sb.exposures.push(exposure(None, "8000-8002", "80-82"));
    sb.exposures
        .push(exposure(Some("2001:db8::1"), "443", "8443"));
    let exposed: Vec<String> = sandbox_elements(&c, &sb)
        .iter()
        .filter(|e| e.set.starts_with("expose"))
        .map(|e| format!("{} {}", e.set, e.to_nft()))
        .collect();
    assert_eq!(
        exposed,
        vec![
            "expose_any4 tcp . 8000 : 10.200.0.2 . 80",
            "expose_any6 tcp . 8000 : fd70:616c:6973::2 . 80",
            "expose_any4 tcp . 8001 : 10.200.0.2 . 81",
            "expose_any6 tcp . 8001 : fd70:616c:6973::2 . 81",
            "expose_any4 tcp . 8002 : 10.200.0.2 . 82",
            "expose_any6 tcp . 8002 : fd70:616c:6973::2 . 82",
            "expose_at6 2001:db8::1 . tcp . 443 : fd70:616c:6973::2 . 8443",
        ]
    );
    assert_eq!(compile(&c, &[sb], &[]).rule_count(), before);
}

#[test]
fn exposure_accepts_come_after_the_sandbox_source_decision() {
    let c = config(UPLINK);
    let t = compile(&c, &[], &[]).tables;
    let pos = |s: &str| t.find(s).unwrap_or_else(|| panic!("{s} missing"));
    // Traffic from a sandbox jumps to from_sandbox before the to_sandbox
    // chain (where DNAT is accepted) is consulted.
    assert!(pos("jump from_sandbox") < pos("jump to_sandbox"));
    assert!(pos("chain from_sandbox") < pos("ct status dnat accept"));
    assert!(pos("ip daddr 127.0.0.0/8 return") < pos("map @expose_any4"));
}

#[test]
fn rules_are_found_by_family_chain_and_position() {
    let c = config(UPLINK);
    let r = compile(&c, &[], &[]);
    assert_eq!(
        r.rule(Family::Inet, "from_sandbox", 0),
        Some("ct direction reply ct state established,related accept")
    );
    assert_eq!(
        r.rule(Family::Inet, "sandbox_to_host", 2),
        Some("counter drop")
    );
    assert_eq!(
        r.rule(Family::Arp, "from_sandbox", 2),
        Some("arp daddr ip != 10.200.0.1 counter drop")
    );
    assert_eq!(r.rule(Family::Inet, "sandbox_to_host", 3), None);
    assert_eq!(
        r.rule(Family::Bridge, "forward", 0),
        Some("iifname @cni_ports jump cni_port_to_port")
    );
    assert_eq!(r.rule(Family::Bridge, "forward", 2), None);
}

#[test]
fn tenant_rules_are_elements_looked_up_after_every_always_denied_drop() {
    let c = config(UPLINK);
    let sbs = [sandbox(&c, 1, 1, true, &[])];
    let none = compile(&c, &sbs, &[]);
    let rules: Vec<_> = (1..=50)
        .map(|i| (i, rule(&format!("deny tcp {i} 203.0.113.0/24"))))
        .collect();
    let some = compile(&c, &sbs, &rules);
    // Rules are elements: the rule count stays.
    assert_eq!(none.rule_count(), some.rule_count());
    assert!(some
        .tables
        .contains("0x00000032 . tcp . 50 . 203.0.113.0/24"));
    let t = &some.tables;
    let pos = |s: &str| t.find(s).unwrap_or_else(|| panic!("{s} missing"));
    let deny = pos("@rule_deny4 meta mark set 0x0 counter drop");
    let allow =
        pos("@rule_allow6 meta mark set 0x0 ct mark set ip6 saddr map @epoch6 counter accept");
    for before in [
        "ip daddr @tenant4 counter drop",
        "ip daddr 10.200.0.0/16 counter drop",
        "ip daddr @blocked4 counter drop",
        "ip6 daddr @blocked6 counter drop",
        "oifname != \"up0\" counter drop",
        "meta mark set ip saddr map @tenant4\n",
    ] {
        assert!(pos(before) < deny, "{before} after the deny lookup");
    }
    // Deny before any accept of internet egress; the mark is cleared
    // before the packet goes on.
    assert!(deny < allow);
    assert!(allow < pos("meta mark set 0x0\n"));
    assert!(pos("meta mark set 0x0\n") < pos("ip saddr @internet4 ct mark set"));
    assert!(t.contains("set rule_allow6 {\n\t\ttype mark . inet_proto . inet_service . ipv6_addr\n\t\tflags interval\n"));
    // Without an uplink the sets exist (elements can always be added) but
    // nothing looks them up.
    let no_uplink = compile(&config(ROUTED), &[], &rules);
    assert!(no_uplink.tables.contains("set rule_deny4"));
    assert!(!no_uplink.tables.contains("@rule_deny4"));
}

/// The rules of `chain` in the inet table, as compiled.
fn inet_chain(r: &Ruleset, chain: &str) -> Vec<String> {
    (0..)
        .map_while(|i| r.rule(Family::Inet, chain, i).map(str::to_string))
        .collect()
}

#[test]
fn every_accept_of_a_new_sandbox_connection_stamps_it_with_the_policy_generation() {
    let c = config(&format!(
        "{UPLINK}[isolation]\ninter_sandbox = \"same-tenant\"\n"
    ));
    let r = compile(&c, &[], &[]);
    let mut stamped = 0;
    for chain in ["from_sandbox", "to_peer", "stale_reply"] {
        let side = if chain == "stale_reply" {
            "daddr"
        } else {
            "saddr"
        };
        for rule in inet_chain(&r, chain) {
            if !rule.ends_with("accept") || rule.contains("ct state established") {
                continue;
            }
            let six = rule.contains("ip6 ") || rule.contains("@tenant6");
            let (ip, f) = if six { ("ip6", 6) } else { ("ip", 4) };
            let stamp = format!(" ct mark set {ip} {side} map @epoch{f} counter accept");
            assert!(rule.ends_with(&stamp), "{chain}: {rule} does not stamp");
            stamped += 1;
        }
    }
    // from_sandbox and stale_reply: tenant allow, internet, ports (x2
    // families); to_peer: members (x2).
    assert_eq!(stamped, 6 + 6 + 2);
}

#[test]
fn established_connections_pass_only_with_a_current_stamp() {
    let c = config(UPLINK);
    let r = compile(&c, &[], &[]);
    let from = inet_chain(&r, "from_sandbox");
    assert_eq!(
        from[..4],
        [
            "ct direction reply ct state established,related accept",
            "ct state established,related ip saddr . ct mark @current4 accept",
            "ct state established,related ip6 saddr . ct mark @current6 accept",
            "ct state invalid counter drop",
        ]
    );
    // No other rule lets an established connection through unjudged.
    assert!(from[4..].iter().all(|r| !r.contains("established")));
    assert_eq!(
        inet_chain(&r, "to_sandbox"),
        [
            "ct direction original ct state established,related accept",
            "ct state established,related ip daddr . ct mark @current4 accept",
            "ct state established,related ip6 daddr . ct mark @current6 accept",
            "ct state established,related jump stale_reply",
            "ct status dnat accept",
            "counter drop",
        ]
    );
}

#[test]
fn a_stale_reply_meets_the_egress_policy_read_from_the_reply_side() {
    let c = config(UPLINK);
    let r = compile(&c, &[], &[]);
    let from = inet_chain(&r, "from_sandbox");
    let start = from
        .iter()
        .position(|r| r == "oifname != \"up0\" counter drop")
        .unwrap()
        + 1;
    let swapped: Vec<String> = from[start..]
        .iter()
        .map(|r| {
            r.replace("saddr", "SANDBOX")
                .replace("daddr", "saddr")
                .replace("SANDBOX", "daddr")
                .replace("th dport", "th sport")
        })
        .collect();
    let stale = inet_chain(&r, "stale_reply");
    assert_eq!(stale, swapped);
    assert_eq!(stale.last().map(String::as_str), Some("counter drop"));
    assert!(stale.len() > 10, "{stale:#?}");
    // Without an uplink a sandbox has no egress to judge: stale replies drop.
    let bare = compile(&config(ROUTED), &[], &[]);
    assert_eq!(inet_chain(&bare, "stale_reply"), ["counter drop"]);
}

#[test]
fn a_new_policy_generation_replaces_only_the_stamp_elements() {
    let c = config(UPLINK);
    let before = sandbox(&c, 3, 1, true, &["tcp:443"]);
    let after = Sandbox {
        policy_epoch: crate::model::next_policy_epoch(before.policy_epoch),
        ..before.clone()
    };
    let old = sandbox_elements(&c, &before);
    let new = sandbox_elements(&c, &after);
    let gone: Vec<String> = old
        .iter()
        .filter(|e| !new.contains(e))
        .map(|e| format!("{} {}", e.set, e.to_nft()))
        .collect();
    let added: Vec<String> = new
        .iter()
        .filter(|e| !old.contains(e))
        .map(|e| format!("{} {}", e.set, e.to_nft()))
        .collect();
    assert_eq!(
        gone,
        [
            "epoch4 10.200.0.4 : 0x00000001",
            "current4 10.200.0.4 . 0x00000001",
            "epoch6 fd70:616c:6973::4 : 0x00000001",
            "current6 fd70:616c:6973::4 . 0x00000001",
        ]
    );
    assert_eq!(
        added,
        [
            "epoch4 10.200.0.4 : 0x00000002",
            "current4 10.200.0.4 . 0x00000002",
            "epoch6 fd70:616c:6973::4 : 0x00000002",
            "current6 fd70:616c:6973::4 . 0x00000002",
        ]
    );
    assert_eq!(crate::model::next_policy_epoch(u32::MAX), 1);
}
