//! Compilation of the configuration and the sandboxes to palisade's tables.
//!
//! The rules are static: they depend on the configuration only. Everything
//! per sandbox is an element of a named set or map ([`sandbox_elements`]), so
//! the rule count never grows with the number of sandboxes and adding or
//! removing one is a single batch of element updates.
//!
//! Interfaces are matched by the `pal-*` wildcard, not by set membership, so
//! a sandbox interface is filtered (and, lacking elements, dropped) from the
//! instant it exists.

use crate::config::{Config, InterSandbox, Mode};
use crate::element::{Element, Family, KeyPart, TABLE};
use crate::exposure::Exposure;
use crate::model::{CniAttachment, Sandbox};
use crate::names::{BRIDGE_PREFIX, IFACE_PREFIX};
use crate::policy;
use crate::tenant_rule::TenantRule;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every family palisade may own a table in. A replace script deletes the
/// tables of all of them, so a table left from an earlier mode goes away.
pub const ALL_FAMILIES: [Family; 3] = [Family::Inet, Family::Arp, Family::Bridge];

/// Sets and maps that hold per-sandbox elements, with their nft type, per
/// family. The order is the order of declaration.
const INET_SETS_ROUTED: &[(&str, &str)] = &[
    ("macs", "ifname . ether_addr"),
    // A sandbox's source checked in one lookup per packet: its interface,
    // its only MAC and one of its addresses (see `SOURCE_RULES`).
    ("sources4", "ifname . ether_addr . ipv4_addr"),
    ("sources6", "ifname . ether_addr . ipv6_addr"),
];
const INET_SETS: &[(&str, &str)] = &[
    ("tenant4", "ipv4_addr : mark"),
    ("tenant6", "ipv6_addr : mark"),
    ("member4", "mark . ipv4_addr"),
    ("member6", "mark . ipv6_addr"),
    // Policy generations (see `Sandbox::policy_epoch`): the stamp a new
    // connection of the address gets, and the stamps still current.
    ("epoch4", "ipv4_addr : mark"),
    ("epoch6", "ipv6_addr : mark"),
    ("current4", "ipv4_addr . mark"),
    ("current6", "ipv6_addr . mark"),
    ("internet4", "ipv4_addr"),
    ("internet6", "ipv6_addr"),
    ("ports4", "ipv4_addr . inet_proto . inet_service"),
    ("ports6", "ipv6_addr . inet_proto . inet_service"),
    (
        "expose_any4",
        "inet_proto . inet_service : ipv4_addr . inet_service",
    ),
    (
        "expose_any6",
        "inet_proto . inet_service : ipv6_addr . inet_service",
    ),
    (
        "expose_at4",
        "ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service",
    ),
    (
        "expose_at6",
        "ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service",
    ),
];
const ARP_SETS: &[(&str, &str)] = &[
    ("macs", "ifname . ether_addr"),
    ("addrs4", "ifname . ipv4_addr"),
];
const BRIDGE_SETS: &[(&str, &str)] = &[
    ("macs", "ifname . ether_addr"),
    ("sources4", "ifname . ether_addr . ipv4_addr"),
    ("sources6", "ifname . ether_addr . ipv6_addr"),
    // CNI attachments: the bridges palisade polices, their sandbox ports and
    // each port's tenant.
    ("cni_bridges", "ifname"),
    ("cni_ports", "ifname"),
    ("port_tenant", "ifname : mark"),
    ("port_member", "ifname . mark"),
];
/// Tenant rules (see [`crate::tenant_rule`]): interval sets keyed by the
/// tenant's mark, one element per rule.
const INET_SETS_RULES: &[(&str, &str)] = &[
    ("rule_deny4", "mark . inet_proto . inet_service . ipv4_addr"),
    ("rule_deny6", "mark . inet_proto . inet_service . ipv6_addr"),
    (
        "rule_allow4",
        "mark . inet_proto . inet_service . ipv4_addr",
    ),
    (
        "rule_allow6",
        "mark . inet_proto . inet_service . ipv6_addr",
    ),
];
/// Bridges with CNI sandbox ports, in the inet table: their routed traffic
/// meets the same chains as palisade's own interfaces.
const INET_SETS_CNI: &[(&str, &str)] = &[("cni_bridges", "ifname")];

/// The compiled tables: what `palisade ruleset` prints and `init` applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// Families with a table, in order.
    pub families: Vec<Family>,
    /// The table definitions (nft syntax), elements included.
    pub tables: String,
}

impl Ruleset {
    /// A script that replaces all of palisade's tables in one transaction:
    /// each table is created if absent, deleted, and defined anew. `nft -f`
    /// applies a file as a single transaction, so there is no moment without
    /// a policy.
    pub fn replace_script(&self) -> String {
        let mut s =
            String::from("#!/usr/sbin/nft -f\n# palisade: generated, applied as one transaction\n");
        for f in ALL_FAMILIES {
            let _ = writeln!(s, "table {} {TABLE} {{}}", f.keyword());
            let _ = writeln!(s, "delete table {} {TABLE}", f.keyword());
        }
        s.push_str(&self.tables);
        s
    }

    /// Number of rules in the compiled tables (independent of sandboxes).
    pub fn rule_count(&self) -> usize {
        static_rule_lines(&self.tables)
    }

    /// The text of rule `index` (from 0) of `chain` in the table of
    /// `family`, as compiled: what a kernel rule counter is attributed to.
    pub fn rule(&self, family: Family, chain: &str, index: usize) -> Option<&str> {
        let table = format!("table {} {TABLE} {{", family.keyword());
        let start = self.tables.find(&table)?;
        let mut in_chain = false;
        let mut n = 0;
        for line in self.tables[start..].lines().skip(1) {
            let t = line.trim();
            if !in_chain && t == "}" && !line.starts_with('\t') {
                return None; // end of the table
            }
            if let Some(name) = t.strip_prefix("chain ") {
                in_chain = name.trim_end_matches(" {") == chain;
                continue;
            }
            if t == "}" {
                in_chain = false;
            } else if in_chain && !t.is_empty() && !t.starts_with("type ") {
                if n == index {
                    return Some(t);
                }
                n += 1;
            }
        }
        None
    }
}

fn static_rule_lines(tables: &str) -> usize {
    let mut in_chain = false;
    let mut n = 0;
    for line in tables.lines() {
        let t = line.trim();
        if t.starts_with("chain ") {
            in_chain = true;
        } else if t == "}" {
            in_chain = false;
        } else if in_chain && !t.is_empty() && !t.starts_with("type ") {
            n += 1;
        }
    }
    n
}

/// Families that have a table under this configuration. The bridge table
/// exists in routed mode too: CNI sandboxes are bridge ports.
pub fn families(config: &Config) -> Vec<Family> {
    match config.network.mode {
        Mode::Routed => vec![Family::Inet, Family::Arp, Family::Bridge],
        Mode::Bridge => vec![Family::Inet, Family::Bridge],
    }
}

/// Compiles the whole ruleset for these sandboxes and tenant rules (each
/// with the mark of its tenant).
pub fn compile(config: &Config, sandboxes: &[Sandbox], rules: &[(u32, TenantRule)]) -> Ruleset {
    let mut elements: BTreeMap<(Family, &'static str), Vec<String>> = BTreeMap::new();
    for e in each_element(config, sandboxes, rules) {
        elements
            .entry((e.family, e.set))
            .or_default()
            .push(e.to_nft());
    }
    let mut tables = String::new();
    for family in families(config) {
        let t = match family {
            Family::Inet => inet_table(config, &elements),
            Family::Arp => arp_table(config, &elements),
            Family::Bridge => bridge_table(config, &elements),
        };
        tables.push_str(&t);
    }
    Ruleset {
        families: families(config),
        tables,
    }
}

/// Every element of these sandboxes and tenant rules, one at a time: what
/// the compiled tables hold in their sets beyond the static ones
/// ([`compile`] with no sandboxes and no rules is the rest). At 10,000
/// sandboxes there are about 160,000, so callers encode or digest each
/// rather than keep them.
pub fn each_element<'a>(
    config: &'a Config,
    sandboxes: &'a [Sandbox],
    rules: &'a [(u32, TenantRule)],
) -> impl Iterator<Item = Element> + 'a {
    let bridges: std::collections::BTreeSet<&str> = sandboxes
        .iter()
        .filter_map(|sb| sb.cni.as_ref().map(|c| c.bridge.as_str()))
        .collect();
    sandboxes
        .iter()
        .flat_map(move |sb| sandbox_elements(config, sb))
        .chain(bridges.into_iter().flat_map(cni_bridge_elements))
        .chain(rules.iter().map(|(tenant_id, r)| r.element(*tenant_id)))
}

/// Every element one sandbox contributes, across all families. A sandbox
/// without networking contributes none.
pub fn sandbox_elements(config: &Config, sb: &Sandbox) -> Vec<Element> {
    if let Some(cni) = &sb.cni {
        return cni_elements(sb, cni);
    }
    let Some(att) = &sb.attachment else {
        return Vec::new();
    };
    let iface = || KeyPart::IfName(att.host_iface.clone());
    let v4 = KeyPart::Ipv4(att.ipv4);
    let v6 = KeyPart::Ipv6(att.ipv6);
    let ll6 = KeyPart::Ipv6(att.link_local6());
    let el = |family, set, key: Vec<KeyPart>, value: Vec<KeyPart>| Element {
        family,
        set,
        key,
        key_end: Vec::new(),
        value,
    };
    let mut out = Vec::new();
    // Anti-spoofing: the interface's only MAC and addresses.
    let family = match config.network.mode {
        Mode::Routed => Family::Inet,
        Mode::Bridge => Family::Bridge,
    };
    let mac = || KeyPart::Ether(att.mac);
    out.push(el(family, "macs", vec![iface(), mac()], Vec::new()));
    out.push(el(
        family,
        "sources4",
        vec![iface(), mac(), v4.clone()],
        Vec::new(),
    ));
    for addr in [&v6, &ll6] {
        out.push(el(
            family,
            "sources6",
            vec![iface(), mac(), addr.clone()],
            Vec::new(),
        ));
    }
    if config.network.mode == Mode::Routed {
        out.push(el(
            Family::Arp,
            "macs",
            vec![iface(), KeyPart::Ether(att.mac)],
            Vec::new(),
        ));
        out.push(el(
            Family::Arp,
            "addrs4",
            vec![iface(), v4.clone()],
            Vec::new(),
        ));
    }
    out.extend(policy_elements(sb, &[att.ipv4], &[att.ipv6]));
    out
}

/// The elements of a sandbox's identity, tenancy, egress and exposures:
/// everything keyed by its addresses rather than its interface.
fn policy_elements(sb: &Sandbox, v4s: &[Ipv4Addr], v6s: &[Ipv6Addr]) -> Vec<Element> {
    let mark = KeyPart::Mark(sb.tenant_id);
    let epoch = KeyPart::Mark(sb.policy_epoch);
    let el = |set, key: Vec<KeyPart>, value: Vec<KeyPart>| Element {
        family: Family::Inet,
        set,
        key,
        key_end: Vec::new(),
        value,
    };
    let mut out = Vec::new();
    let addrs = v4s
        .iter()
        .map(|&a| (KeyPart::Ipv4(a), "4"))
        .chain(v6s.iter().map(|&a| (KeyPart::Ipv6(a), "6")));
    for (addr, v) in addrs {
        let six = v == "6";
        let pick = |s4: &'static str, s6: &'static str| if six { s6 } else { s4 };
        out.push(el(
            pick("tenant4", "tenant6"),
            vec![addr.clone()],
            vec![mark.clone()],
        ));
        out.push(el(
            pick("member4", "member6"),
            vec![mark.clone(), addr.clone()],
            Vec::new(),
        ));
        out.push(el(
            pick("epoch4", "epoch6"),
            vec![addr.clone()],
            vec![epoch.clone()],
        ));
        out.push(el(
            pick("current4", "current6"),
            vec![addr.clone(), epoch.clone()],
            Vec::new(),
        ));
        if !sb.internet {
            continue;
        }
        if sb.allow.is_empty() {
            out.push(el(pick("internet4", "internet6"), vec![addr], Vec::new()));
            continue;
        }
        for rule in &sb.allow {
            out.push(el(
                pick("ports4", "ports6"),
                vec![
                    addr.clone(),
                    KeyPart::L4Proto(rule.proto.number()),
                    KeyPart::Port(rule.port),
                ],
                Vec::new(),
            ));
        }
    }
    for exposure in &sb.exposures {
        out.extend(exposure_elements(
            exposure,
            v4s.first().copied(),
            v6s.first().copied(),
        ));
    }
    out
}

/// The elements of a sandbox attached by a CNI runtime: anti-spoofing and
/// tenancy of its bridge port, then the address-keyed policy.
fn cni_elements(sb: &Sandbox, cni: &CniAttachment) -> Vec<Element> {
    let port = || KeyPart::IfName(cni.host_port.clone());
    let el = |set, key: Vec<KeyPart>, value: Vec<KeyPart>| Element {
        family: Family::Bridge,
        set,
        key,
        key_end: Vec::new(),
        value,
    };
    let mut out = vec![
        el("cni_ports", vec![port()], Vec::new()),
        el("macs", vec![port(), KeyPart::Ether(cni.mac)], Vec::new()),
        el(
            "port_tenant",
            vec![port()],
            vec![KeyPart::Mark(sb.tenant_id)],
        ),
        el(
            "port_member",
            vec![port(), KeyPart::Mark(sb.tenant_id)],
            Vec::new(),
        ),
    ];
    let mac = || KeyPart::Ether(cni.mac);
    for &a in &cni.ipv4 {
        out.push(el(
            "sources4",
            vec![port(), mac(), KeyPart::Ipv4(a)],
            Vec::new(),
        ));
    }
    let link_local = cni.link_local6();
    for &a in cni.ipv6.iter().chain([&link_local]) {
        out.push(el(
            "sources6",
            vec![port(), mac(), KeyPart::Ipv6(a)],
            Vec::new(),
        ));
    }
    out.extend(policy_elements(sb, &cni.ipv4, &cni.ipv6));
    out
}

/// The elements a bridge with CNI sandbox ports needs, shared by all of its
/// sandboxes: added with the first, removed with the last.
pub fn cni_bridge_elements(bridge: &str) -> Vec<Element> {
    [Family::Inet, Family::Bridge]
        .into_iter()
        .map(|family| Element {
            family,
            set: "cni_bridges",
            key: vec![KeyPart::IfName(bridge.to_string())],
            key_end: Vec::new(),
            value: Vec::new(),
        })
        .collect()
}

/// The DNAT map elements of one exposure: one per host port and family the
/// sandbox has an address in.
pub fn exposure_elements(
    exposure: &Exposure,
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
) -> Vec<Element> {
    let proto = KeyPart::L4Proto(exposure.proto.number());
    let mut out = Vec::new();
    for (host_port, guest_port) in exposure.port_pairs() {
        let key_tail = [proto.clone(), KeyPart::Port(host_port)];
        let mut push = |set: &'static str, host: Option<KeyPart>, target: KeyPart| {
            let key = host.into_iter().chain(key_tail.iter().cloned()).collect();
            out.push(Element {
                family: Family::Inet,
                set,
                key,
                key_end: Vec::new(),
                value: vec![target, KeyPart::Port(guest_port)],
            });
        };
        match (exposure.host_ip, ipv4, ipv6) {
            (None, _, _) => {
                if let Some(v4) = ipv4 {
                    push("expose_any4", None, KeyPart::Ipv4(v4));
                }
                if let Some(v6) = ipv6 {
                    push("expose_any6", None, KeyPart::Ipv6(v6));
                }
            }
            (Some(IpAddr::V4(a)), Some(v4), _) => {
                push("expose_at4", Some(KeyPart::Ipv4(a)), KeyPart::Ipv4(v4))
            }
            (Some(IpAddr::V6(a)), _, Some(v6)) => {
                push("expose_at6", Some(KeyPart::Ipv6(a)), KeyPart::Ipv6(v6))
            }
            // No address of that family: refused when the exposure is made.
            _ => {}
        }
    }
    out
}

/// Writes `set NAME { type T; [flags interval;] [elements = {...}] }`.
fn write_set(out: &mut String, name: &str, ty: &str, interval: bool, elements: &[String]) {
    let kind = if ty.contains(" : ") { "map" } else { "set" };
    let _ = writeln!(out, "\t{kind} {name} {{");
    let _ = writeln!(out, "\t\ttype {ty}");
    if interval {
        out.push_str("\t\tflags interval\n");
    }
    if !elements.is_empty() {
        let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(",\n\t\t\t"));
    }
    out.push_str("\t}\n\n");
}

fn write_chain(out: &mut String, name: &str, hook: Option<&str>, rules: &[String]) {
    let _ = writeln!(out, "\tchain {name} {{");
    if let Some(h) = hook {
        let _ = writeln!(out, "\t\t{h}");
    }
    for r in rules {
        let _ = writeln!(out, "\t\t{r}");
    }
    out.push_str("\t}\n\n");
}

fn write_sets(
    out: &mut String,
    family: Family,
    sets: &[(&'static str, &str)],
    elements: &BTreeMap<(Family, &'static str), Vec<String>>,
) {
    write_sets_flagged(out, family, sets, false, elements);
}

fn write_sets_flagged(
    out: &mut String,
    family: Family,
    sets: &[(&'static str, &str)],
    interval: bool,
    elements: &BTreeMap<(Family, &'static str), Vec<String>>,
) {
    for (name, ty) in sets {
        let els = elements
            .get(&(family, *name))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        write_set(out, name, ty, interval, els);
    }
}

/// Interface match for "comes from / goes to a sandbox".
fn sandbox_ifaces(config: &Config) -> String {
    match config.network.mode {
        Mode::Routed => format!("\"{IFACE_PREFIX}*\""),
        Mode::Bridge => format!("\"{BRIDGE_PREFIX}*\""),
    }
}

fn inet_table(config: &Config, elements: &BTreeMap<(Family, &'static str), Vec<String>>) -> String {
    let net = &config.network;
    let mut t = format!("table inet {TABLE} {{\n");
    if net.mode == Mode::Routed {
        write_sets(&mut t, Family::Inet, INET_SETS_ROUTED, elements);
    }
    write_sets(&mut t, Family::Inet, INET_SETS, elements);
    write_sets(&mut t, Family::Inet, INET_SETS_CNI, elements);
    write_sets_flagged(&mut t, Family::Inet, INET_SETS_RULES, true, elements);

    let (user4, user6) = policy::split_nets(&config.isolation.blocked);
    let mut blocked4 = policy::builtin_blocked_v4();
    blocked4.extend(user4.iter().copied());
    let mut blocked6 = policy::builtin_blocked_v6();
    blocked6.extend(policy::nat64_forms(&blocked4));
    blocked6.extend(user6.iter().copied());
    let b4: Vec<String> = ipnet::Ipv4Net::aggregate(&blocked4)
        .iter()
        .map(|n| n.to_string())
        .collect();
    let b6: Vec<String> = ipnet::Ipv6Net::aggregate(&blocked6)
        .iter()
        .map(|n| n.to_string())
        .collect();
    write_set(&mut t, "blocked4", "ipv4_addr", true, &b4);
    write_set(&mut t, "blocked6", "ipv6_addr", true, &b6);

    let ifaces = sandbox_ifaces(config);
    let nd = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255";

    if net.mode == Mode::Routed {
        // Anti-spoofing before conntrack sees the packet.
        write_chain(
            &mut t,
            "guard",
            Some("type filter hook prerouting priority raw - 10; policy accept;"),
            &[format!("iifname {ifaces} jump sandbox_source")],
        );
        write_chain(
            &mut t,
            "sandbox_source",
            None,
            &[
                SOURCE_RULES[0].into(),
                // IPv6 multicast other than neighbour discovery (MLD
                // reports, router solicitations, ...) has no business on
                // the host, and dropping it here spares the kernel a route
                // lookup that walks one multicast route per sandbox link.
                // After the IPv4 return, so IPv4 traffic never meets it.
                MULTICAST6_BUT_ND[0].into(),
                MULTICAST6_BUT_ND[1].into(),
                SOURCE_RULES[1].into(),
                SOURCE_RULES[2].into(),
                "counter drop".into(),
            ],
        );
    }

    // Bridge mode: a sandbox's port passes frames to its bridge, and the
    // inet hooks see its traffic coming in on the bridge (with
    // br_netfilter too). Anything the host takes in on a port itself came
    // from a port that left its bridge: dropped rather than routed
    // unfiltered (`verify` reports the port, `init` puts it back).
    let port_off_its_bridge = match net.mode {
        Mode::Bridge => vec![format!("iifname \"{IFACE_PREFIX}*\" counter drop")],
        Mode::Routed => vec![],
    };
    let mut forward = port_off_its_bridge.clone();
    forward.extend([
        format!("iifname {ifaces} jump from_sandbox"),
        format!("oifname {ifaces} jump to_sandbox"),
        "iifname @cni_bridges jump from_sandbox".into(),
        "oifname @cni_bridges jump to_sandbox".into(),
    ]);
    write_chain(
        &mut t,
        "forward",
        Some("type filter hook forward priority filter - 10; policy accept;"),
        &forward,
    );

    // Established connections pass on their first rules, so a policy
    // change must not leave one running that the new policy forbids. A
    // sandbox's connections carry its policy generation (`ct mark`, set by
    // every accept below): a packet of one whose stamp is no longer current
    // goes on to be judged as if new, and is stamped again if it passes.
    // Narrowing a policy is then one element replaced, where deleting the
    // connections would walk the whole conntrack table. Replies a sandbox
    // sends (to an exposure's client, to a peer) are not its own
    // connections and pass as before.
    let mut from = vec![
        "ct direction reply ct state established,related accept".to_string(),
        "ct state established,related ip saddr . ct mark @current4 accept".to_string(),
        "ct state established,related ip6 saddr . ct mark @current6 accept".to_string(),
        "ct state invalid counter drop".to_string(),
    ];
    match config.isolation.inter_sandbox {
        InterSandbox::Deny => {
            from.push("ip daddr @tenant4 counter drop".into());
            from.push("ip6 daddr @tenant6 counter drop".into());
        }
        InterSandbox::SameTenant => {
            from.push("ip daddr @tenant4 jump to_peer".into());
            from.push("ip6 daddr @tenant6 jump to_peer".into());
        }
    }
    from.push(format!("ip daddr {} counter drop", net.subnet));
    from.push(format!("ip6 daddr {} counter drop", net.subnet6));
    from.push("ip daddr @blocked4 counter drop".into());
    from.push("ip6 daddr @blocked6 counter drop".into());
    if let Some(up) = &net.uplink {
        from.push(format!("oifname != \"{up}\" counter drop"));
        from.extend(egress_verdicts(&SENT));
    }
    from.push("counter drop".into());
    write_chain(&mut t, "from_sandbox", None, &from);

    if config.isolation.inter_sandbox == InterSandbox::SameTenant {
        // The mark carries the source's tenant for one lookup only and is
        // cleared before the packet leaves this chain.
        write_chain(
            &mut t,
            "to_peer",
            None,
            &[
                "meta mark set ip saddr map @tenant4".into(),
                "meta mark set ip6 saddr map @tenant6".into(),
                format!(
                    "meta mark . ip daddr @member4 meta mark set 0x0 {} counter accept",
                    SENT.stamp(4)
                ),
                format!(
                    "meta mark . ip6 daddr @member6 meta mark set 0x0 {} counter accept",
                    SENT.stamp(6)
                ),
                "meta mark set 0x0 counter drop".into(),
            ],
        );
    }

    // New connections towards a sandbox exist only through an exposure
    // (DNAT). Packets from sandboxes never get here: from_sandbox decided
    // them already, exposure or not, so an exposure is no pivot. Replies to
    // a sandbox's own connections pass while its stamp is current, and are
    // judged again by its policy (reading the flow from the reply's side)
    // when it is not.
    write_chain(
        &mut t,
        "to_sandbox",
        None,
        &[
            "ct direction original ct state established,related accept".into(),
            "ct state established,related ip daddr . ct mark @current4 accept".into(),
            "ct state established,related ip6 daddr . ct mark @current6 accept".into(),
            "ct state established,related jump stale_reply".into(),
            "ct status dnat accept".into(),
            "counter drop".into(),
        ],
    );
    let mut stale = Vec::new();
    if net.uplink.is_some() {
        stale.extend(egress_verdicts(&RECEIVED));
    }
    stale.push("counter drop".into());
    write_chain(&mut t, "stale_reply", None, &stale);

    let mut input = port_off_its_bridge;
    input.extend([
        format!("iifname {ifaces} jump sandbox_to_host"),
        "iifname @cni_bridges jump sandbox_to_host".into(),
    ]);
    write_chain(
        &mut t,
        "input",
        Some("type filter hook input priority filter - 10; policy accept;"),
        &input,
    );
    // The host may open connections to an exposure (output path); the
    // sandbox's replies to them are the only other traffic it sends the host.
    write_chain(
        &mut t,
        "sandbox_to_host",
        None,
        &[
            format!("{nd} accept"),
            "ct direction reply ct state established accept".into(),
            "counter drop".into(),
        ],
    );
    write_chain(
        &mut t,
        "output",
        Some("type filter hook output priority filter - 10; policy accept;"),
        &[
            format!("oifname {ifaces} jump host_to_sandbox"),
            "oifname @cni_bridges jump host_to_sandbox".into(),
        ],
    );
    write_chain(
        &mut t,
        "host_to_sandbox",
        None,
        &[
            "ct state established,related accept".into(),
            "ct status dnat accept".into(),
            format!("{nd} accept"),
            "counter drop".into(),
        ],
    );

    // Exposures: DNAT of traffic to the host's own addresses, from outside
    // (prerouting) and from the host itself (output). Loopback is left
    // alone: the kernel will not route 127.0.0.0/8 or ::1 to a sandbox.
    let dnat = "fib daddr type local jump exposed";
    write_chain(
        &mut t,
        "expose_prerouting",
        Some("type nat hook prerouting priority dstnat; policy accept;"),
        &[dnat.into()],
    );
    write_chain(
        &mut t,
        "expose_output",
        Some("type nat hook output priority -100; policy accept;"),
        &[dnat.into()],
    );
    write_chain(
        &mut t,
        "exposed",
        None,
        &[
            "ip daddr 127.0.0.0/8 return".into(),
            "ip6 daddr ::1 return".into(),
            "dnat ip to ip daddr . meta l4proto . th dport map @expose_at4".into(),
            "dnat ip to meta l4proto . th dport map @expose_any4".into(),
            "dnat ip6 to ip6 daddr . meta l4proto . th dport map @expose_at6".into(),
            "dnat ip6 to meta l4proto . th dport map @expose_any6".into(),
        ],
    );

    if let Some(up) = &net.uplink {
        write_chain(
            &mut t,
            "postrouting",
            Some("type nat hook postrouting priority srcnat; policy accept;"),
            &[
                format!("oifname \"{up}\" ip saddr {} masquerade", net.subnet),
                format!("oifname \"{up}\" ip6 saddr {} masquerade", net.subnet6),
                format!("oifname \"{up}\" iifname @cni_bridges masquerade"),
            ],
        );
    }
    t.push_str("}\n");
    t
}

/// Where a packet of a sandbox's outgoing connection carries the flow's
/// fields: as sent by the sandbox, or as a reply it receives (addresses
/// and ports swapped; a masqueraded reply is translated back before the
/// forward hook).
struct FlowSide {
    /// `saddr` or `daddr`: the sandbox's address.
    sandbox: &'static str,
    /// The other end's address.
    remote: &'static str,
    /// The other end's port.
    remote_port: &'static str,
}

const SENT: FlowSide = FlowSide {
    sandbox: "saddr",
    remote: "daddr",
    remote_port: "th dport",
};
const RECEIVED: FlowSide = FlowSide {
    sandbox: "daddr",
    remote: "saddr",
    remote_port: "th sport",
};

impl FlowSide {
    /// `ip` or `ip6`.
    fn ip(family: u8) -> &'static str {
        if family == 4 {
            "ip"
        } else {
            "ip6"
        }
    }

    /// The statement that stamps the connection with the sandbox's current
    /// policy generation.
    fn stamp(&self, family: u8) -> String {
        format!(
            "ct mark set {} {} map @epoch{family}",
            Self::ip(family),
            self.sandbox
        )
    }
}

/// The egress policy of the sandbox at one end of a flow, after every
/// always-denied drop and the uplink check: tenant rules (so no rule can
/// re-open those drops), then internet egress and its ports. The packet
/// mark carries the sandbox's tenant for the rule lookups only (as in
/// to_peer) and is cleared before any verdict and before the packet goes
/// on. Deny rules come before every accept; allow rules accept what
/// internet egress would not. Every accept stamps the connection.
fn egress_verdicts(side: &FlowSide) -> Vec<String> {
    let FlowSide {
        sandbox,
        remote,
        remote_port,
    } = side;
    let mut out = Vec::new();
    for f in [4, 6] {
        let ip = FlowSide::ip(f);
        out.push(format!("meta mark set {ip} {sandbox} map @tenant{f}"));
    }
    for (set, verdict) in [("rule_deny", "drop"), ("rule_allow", "accept")] {
        for f in [4, 6] {
            let ip = FlowSide::ip(f);
            let stamp = match verdict {
                "accept" => format!("{} ", side.stamp(f)),
                _ => String::new(),
            };
            out.push(format!(
                "meta mark . meta l4proto . {remote_port} . {ip} {remote} @{set}{f} meta mark set 0x0 {stamp}counter {verdict}"
            ));
        }
    }
    out.push("meta mark set 0x0".into());
    for f in [4, 6] {
        let ip = FlowSide::ip(f);
        out.push(format!(
            "{ip} {sandbox} @internet{f} {} counter accept",
            side.stamp(f)
        ));
    }
    for f in [4, 6] {
        let ip = FlowSide::ip(f);
        out.push(format!(
            "{ip} {sandbox} . meta l4proto . {remote_port} @ports{f} {} counter accept",
            side.stamp(f)
        ));
    }
    out
}

/// Routed mode: ARP from a sandbox may claim only its own address and MAC
/// and may ask only for the gateway.
fn arp_table(config: &Config, elements: &BTreeMap<(Family, &'static str), Vec<String>>) -> String {
    let mut t = format!("table arp {TABLE} {{\n");
    write_sets(&mut t, Family::Arp, ARP_SETS, elements);
    write_chain(
        &mut t,
        "input",
        Some("type filter hook input priority filter - 10; policy accept;"),
        &[format!("iifname \"{IFACE_PREFIX}*\" jump from_sandbox")],
    );
    write_chain(
        &mut t,
        "from_sandbox",
        None,
        &[
            "iifname . arp saddr ether != @macs counter drop".into(),
            "iifname . arp saddr ip != @addrs4 counter drop".into(),
            format!("arp daddr ip != {} counter drop", config.gateway4()),
        ],
    );
    t.push_str("}\n");
    t
}

/// Drops IPv6 multicast from a sandbox other than neighbour discovery.
/// What a sandbox's interface may send, in routed mode's guard and on a
/// bridge port: IPv4 and IPv6 from its only MAC and its own addresses,
/// and duplicate address detection (from the unspecified address) with
/// its MAC. One set lookup per packet rather than two (MAC, then address):
/// every packet a sandbox sends pays it (docs/benchmarks.md).
const SOURCE_RULES: [&str; 3] = [
    "iifname . ether saddr . ip saddr @sources4 return",
    "iifname . ether saddr . ip6 saddr @sources6 return",
    "ip6 saddr :: icmpv6 type nd-neighbor-solicit ip6 hoplimit 255 iifname . ether saddr @macs return",
];

const MULTICAST6_BUT_ND: [&str; 2] = [
    "ip6 daddr ff00::/8 meta l4proto != ipv6-icmp counter drop",
    "ip6 daddr ff00::/8 icmpv6 type != { nd-neighbor-solicit, nd-neighbor-advert } counter drop",
];

/// The anti-spoofing chain of a bridge port: the port's only MAC and
/// addresses; ARP may claim only those. On a port of palisade's own
/// bridges (`gateway`, the only address ARP may then ask for), IPv6
/// multicast other than neighbour discovery stops here too, as in routed
/// mode: a sandbox's router solicitations (repeated for as long as it
/// lives, backing off to one an hour) and MLD reports have no business on
/// the host, and would otherwise cost the bridge a walk over its ports and
/// the host its input path for each.
fn port_source_rules(gateway: Option<std::net::Ipv4Addr>) -> Vec<String> {
    let arp_target = gateway
        .map(|a| format!(" arp daddr ip {a}"))
        .unwrap_or_default();
    let multicast6 = match gateway {
        Some(_) => MULTICAST6_BUT_ND.map(String::from).to_vec(),
        None => Vec::new(),
    };
    vec![SOURCE_RULES[0].to_string()]
        .into_iter()
        .chain(multicast6)
        .chain([
            SOURCE_RULES[1].into(),
            SOURCE_RULES[2].into(),
            // ARP: sent from the port's MAC, claiming that MAC and one of
            // its IPv4 addresses.
            format!(
                "ether type arp iifname . ether saddr @macs iifname . arp saddr ether . arp saddr ip @sources4{arp_target} return"
            ),
            "counter drop".into(),
        ])
        .collect()
}

/// The bridge table: anti-spoofing per port, and which ports may exchange
/// frames.
///
/// In bridge mode, palisade's own bridge has no layer-2 path between two
/// sandboxes at all (traffic between them is routed through the host and
/// meets the inet rules, with or without br_netfilter).
///
/// In every mode, CNI sandboxes are ports of bridges an earlier plugin made.
/// Two sandbox ports exchange frames only when the configuration allows
/// same-tenant traffic and their tenants match; a port palisade does not
/// know reaches no sandbox port at layer 2, and at layer 3 the inet rules
/// treat it as a sandbox with no policy (everything dropped).
/// (`meta ibrname`, which would drop unknown ports outright, needs
/// CONFIG_NFT_BRIDGE_META, which common kernels lack.)
fn bridge_table(
    config: &Config,
    elements: &BTreeMap<(Family, &'static str), Vec<String>>,
) -> String {
    let mut t = format!("table bridge {TABLE} {{\n");
    write_sets(&mut t, Family::Bridge, BRIDGE_SETS, elements);
    let own_ports = format!("\"{IFACE_PREFIX}*\"");
    let own = config.network.mode == Mode::Bridge;
    let mut prerouting = Vec::new();
    if own {
        prerouting.push(format!("iifname {own_ports} jump port_source"));
    }
    prerouting.push("iifname @cni_ports jump cni_port_source".into());
    write_chain(
        &mut t,
        "prerouting",
        Some("type filter hook prerouting priority -300; policy accept;"),
        &prerouting,
    );
    if own {
        write_chain(
            &mut t,
            "port_source",
            None,
            &port_source_rules(Some(config.gateway4())),
        );
    }
    write_chain(&mut t, "cni_port_source", None, &port_source_rules(None));
    let mut forward = Vec::new();
    if own {
        forward.push(format!(
            "iifname {own_ports} oifname {own_ports} counter drop"
        ));
    }
    forward.push("iifname @cni_ports jump cni_port_to_port".into());
    forward.push("oifname @cni_ports counter drop".into());
    write_chain(
        &mut t,
        "forward",
        Some("type filter hook forward priority filter - 10; policy accept;"),
        &forward,
    );
    let port_to_port: Vec<String> = match config.isolation.inter_sandbox {
        InterSandbox::Deny => vec!["counter drop".into()],
        // As in the inet table's to_peer: the mark carries the source
        // port's tenant for one lookup and is cleared on the way out.
        InterSandbox::SameTenant => vec![
            "meta mark set iifname map @port_tenant".into(),
            "oifname . meta mark @port_member meta mark set 0x0 counter accept".into(),
            "meta mark set 0x0 counter drop".into(),
        ],
    };
    write_chain(&mut t, "cni_port_to_port", None, &port_to_port);
    t.push_str("}\n");
    t
}

#[cfg(test)]
mod tests;
