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
use crate::model::{Attachment, Sandbox};
use crate::names::{BRIDGE_IFACE, IFACE_PREFIX};
use crate::policy;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;

/// Every family palisade may own a table in. A replace script deletes the
/// tables of all of them, so a table left from an earlier mode goes away.
pub const ALL_FAMILIES: [Family; 3] = [Family::Inet, Family::Arp, Family::Bridge];

/// Sets and maps that hold per-sandbox elements, with their nft type, per
/// family. The order is the order of declaration.
const INET_SETS_ROUTED: &[(&str, &str)] = &[
    ("macs", "ifname . ether_addr"),
    ("addrs4", "ifname . ipv4_addr"),
    ("addrs6", "ifname . ipv6_addr"),
];
const INET_SETS: &[(&str, &str)] = &[
    ("tenant4", "ipv4_addr : mark"),
    ("tenant6", "ipv6_addr : mark"),
    ("member4", "mark . ipv4_addr"),
    ("member6", "mark . ipv6_addr"),
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
    ("addrs4", "ifname . ipv4_addr"),
    ("addrs6", "ifname . ipv6_addr"),
];

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

/// Families that have a table under this configuration.
pub fn families(config: &Config) -> Vec<Family> {
    match config.network.mode {
        Mode::Routed => vec![Family::Inet, Family::Arp],
        Mode::Bridge => vec![Family::Inet, Family::Bridge],
    }
}

/// Compiles the whole ruleset for these sandboxes.
pub fn compile(config: &Config, sandboxes: &[Sandbox]) -> Ruleset {
    let mut elements: BTreeMap<(Family, &'static str), Vec<String>> = BTreeMap::new();
    for sb in sandboxes {
        for e in sandbox_elements(config, sb) {
            elements
                .entry((e.family, e.set))
                .or_default()
                .push(e.to_nft());
        }
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

/// Every element one sandbox contributes, across all families. A sandbox
/// without networking contributes none.
pub fn sandbox_elements(config: &Config, sb: &Sandbox) -> Vec<Element> {
    let Some(att) = &sb.attachment else {
        return Vec::new();
    };
    let iface = || KeyPart::IfName(att.host_iface.clone());
    let mark = KeyPart::Mark(sb.tenant_id);
    let v4 = KeyPart::Ipv4(att.ipv4);
    let v6 = KeyPart::Ipv6(att.ipv6);
    let ll6 = KeyPart::Ipv6(att.link_local6());
    let el = |family, set, key: Vec<KeyPart>, value: Vec<KeyPart>| Element {
        family,
        set,
        key,
        value,
    };
    let mut out = Vec::new();
    // Anti-spoofing: the interface's only MAC and addresses.
    let family = match config.network.mode {
        Mode::Routed => Family::Inet,
        Mode::Bridge => Family::Bridge,
    };
    out.push(el(
        family,
        "macs",
        vec![iface(), KeyPart::Ether(att.mac)],
        Vec::new(),
    ));
    out.push(el(family, "addrs4", vec![iface(), v4.clone()], Vec::new()));
    out.push(el(family, "addrs6", vec![iface(), v6.clone()], Vec::new()));
    out.push(el(family, "addrs6", vec![iface(), ll6.clone()], Vec::new()));
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
    // Identity and tenancy, keyed by address (anti-spoofing makes that safe).
    out.push(el(
        Family::Inet,
        "tenant4",
        vec![v4.clone()],
        vec![mark.clone()],
    ));
    out.push(el(
        Family::Inet,
        "tenant6",
        vec![v6.clone()],
        vec![mark.clone()],
    ));
    out.push(el(
        Family::Inet,
        "member4",
        vec![mark.clone(), v4.clone()],
        Vec::new(),
    ));
    out.push(el(
        Family::Inet,
        "member6",
        vec![mark, v6.clone()],
        Vec::new(),
    ));
    // Egress.
    if sb.internet {
        if sb.allow.is_empty() {
            out.push(el(Family::Inet, "internet4", vec![v4.clone()], Vec::new()));
            out.push(el(Family::Inet, "internet6", vec![v6.clone()], Vec::new()));
        } else {
            for rule in &sb.allow {
                let proto = KeyPart::L4Proto(rule.proto.number());
                let port = KeyPart::Port(rule.port);
                out.push(el(
                    Family::Inet,
                    "ports4",
                    vec![v4.clone(), proto.clone(), port.clone()],
                    Vec::new(),
                ));
                out.push(el(
                    Family::Inet,
                    "ports6",
                    vec![v6.clone(), proto, port],
                    Vec::new(),
                ));
            }
        }
    }
    for exposure in &sb.exposures {
        out.extend(exposure_elements(exposure, att));
    }
    out
}

/// The DNAT map elements of one exposure: one per host port and family.
pub fn exposure_elements(exposure: &Exposure, att: &Attachment) -> Vec<Element> {
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
                value: vec![target, KeyPart::Port(guest_port)],
            });
        };
        match exposure.host_ip {
            None => {
                push("expose_any4", None, KeyPart::Ipv4(att.ipv4));
                push("expose_any6", None, KeyPart::Ipv6(att.ipv6));
            }
            Some(IpAddr::V4(a)) => push(
                "expose_at4",
                Some(KeyPart::Ipv4(a)),
                KeyPart::Ipv4(att.ipv4),
            ),
            Some(IpAddr::V6(a)) => push(
                "expose_at6",
                Some(KeyPart::Ipv6(a)),
                KeyPart::Ipv6(att.ipv6),
            ),
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
    for (name, ty) in sets {
        let els = elements
            .get(&(family, *name))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        write_set(out, name, ty, false, els);
    }
}

/// Interface match for "comes from / goes to a sandbox".
fn sandbox_ifaces(config: &Config) -> String {
    match config.network.mode {
        Mode::Routed => format!("\"{IFACE_PREFIX}*\""),
        Mode::Bridge => format!("\"{BRIDGE_IFACE}\""),
    }
}

fn inet_table(config: &Config, elements: &BTreeMap<(Family, &'static str), Vec<String>>) -> String {
    let net = &config.network;
    let mut t = format!("table inet {TABLE} {{\n");
    if net.mode == Mode::Routed {
        write_sets(&mut t, Family::Inet, INET_SETS_ROUTED, elements);
    }
    write_sets(&mut t, Family::Inet, INET_SETS, elements);

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
                "iifname . ether saddr != @macs counter drop".into(),
                "iifname . ip saddr @addrs4 return".into(),
                "iifname . ip6 saddr @addrs6 return".into(),
                // Duplicate address detection sends from the unspecified address.
                "ip6 saddr :: icmpv6 type nd-neighbor-solicit ip6 hoplimit 255 return".into(),
                "counter drop".into(),
            ],
        );
    }

    write_chain(
        &mut t,
        "forward",
        Some("type filter hook forward priority filter - 10; policy accept;"),
        &[
            format!("iifname {ifaces} jump from_sandbox"),
            format!("oifname {ifaces} jump to_sandbox"),
        ],
    );

    let mut from = vec![
        "ct state established,related accept".to_string(),
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
        from.push("ip saddr @internet4 counter accept".into());
        from.push("ip6 saddr @internet6 counter accept".into());
        from.push("ip saddr . meta l4proto . th dport @ports4 counter accept".into());
        from.push("ip6 saddr . meta l4proto . th dport @ports6 counter accept".into());
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
                "meta mark . ip daddr @member4 meta mark set 0x0 counter accept".into(),
                "meta mark . ip6 daddr @member6 meta mark set 0x0 counter accept".into(),
                "meta mark set 0x0 counter drop".into(),
            ],
        );
    }

    // New connections towards a sandbox exist only through an exposure
    // (DNAT). Packets from sandboxes never get here: from_sandbox decided
    // them already, exposure or not, so an exposure is no pivot.
    write_chain(
        &mut t,
        "to_sandbox",
        None,
        &[
            "ct state established,related accept".into(),
            "ct status dnat accept".into(),
            "counter drop".into(),
        ],
    );

    write_chain(
        &mut t,
        "input",
        Some("type filter hook input priority filter - 10; policy accept;"),
        &[format!("iifname {ifaces} jump sandbox_to_host")],
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
        &[format!("oifname {ifaces} jump host_to_sandbox")],
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
            ],
        );
    }
    t.push_str("}\n");
    t
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

/// Bridge mode: anti-spoofing per port, and no layer-2 path between two
/// sandboxes at all (traffic between sandboxes is routed through the host and
/// meets the inet rules, with or without br_netfilter).
fn bridge_table(
    config: &Config,
    elements: &BTreeMap<(Family, &'static str), Vec<String>>,
) -> String {
    let mut t = format!("table bridge {TABLE} {{\n");
    write_sets(&mut t, Family::Bridge, BRIDGE_SETS, elements);
    let ports = format!("\"{IFACE_PREFIX}*\"");
    write_chain(
        &mut t,
        "prerouting",
        Some("type filter hook prerouting priority -300; policy accept;"),
        &[format!("iifname {ports} jump port_source")],
    );
    write_chain(
        &mut t,
        "port_source",
        None,
        &[
            "iifname . ether saddr != @macs counter drop".into(),
            "iifname . ip saddr @addrs4 return".into(),
            "iifname . ip6 saddr @addrs6 return".into(),
            "ip6 saddr :: icmpv6 type nd-neighbor-solicit ip6 hoplimit 255 return".into(),
            format!(
                "ether type arp iifname . arp saddr ether @macs iifname . arp saddr ip @addrs4 arp daddr ip {} return",
                config.gateway4()
            ),
            "counter drop".into(),
        ],
    );
    write_chain(
        &mut t,
        "forward",
        Some("type filter hook forward priority filter - 10; policy accept;"),
        &[format!("iifname {ports} oifname {ports} counter drop")],
    );
    t.push_str("}\n");
    t
}

#[cfg(test)]
mod tests;
