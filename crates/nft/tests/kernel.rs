//! Kernel tests. Each one runs in a throwaway network namespace of its own
//! (a thread that unshares CLONE_NEWNET), never in the machine's namespace.
//! They need root; without it they say so loudly and pass.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;

use palisade_core::element::{encode_key, Element, Family, KeyPart, MacAddr};
use palisade_nft::{
    apply_script, canonical_listing, list_table_json, nft_available, with_throwaway_netns,
    NftError, NftSocket, SetOp,
};
use serde_json::{json, Value};

const SCRIPT: &str = r#"
table inet palisade {
    set ifs { type ifname; }
    set hosts4 { type ifname . ipv4_addr . ether_addr; }
    set hosts6 { type ifname . ipv6_addr . ether_addr; }
    set ports { type ifname . inet_proto . inet_service; }
    set marks { type mark . ifname; }
    map ifmark { type ifname : mark; }
}
table arp palisade {
    set hosts4 { type ifname . ipv4_addr . ether_addr; }
}
"#;

/// Runs `test` in a fresh network namespace, or skips loudly when that
/// cannot work here.
fn in_netns(name: &str, test: impl FnOnce() + Send) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root ({name})");
        return;
    }
    if !nft_available() {
        eprintln!("SKIPPED: needs the nft binary ({name})");
        return;
    }
    with_throwaway_netns(test).expect("throwaway netns");
}

fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}

fn el(family: Family, set: &'static str, key: Vec<KeyPart>) -> Element {
    Element {
        family,
        set,
        key,
        key_end: Vec::new(),
        value: Vec::new(),
    }
}

fn ifname(n: &str) -> KeyPart {
    KeyPart::IfName(n.to_string())
}

/// The sandbox "pal7": one element in every set of the test tables.
fn sandbox7() -> Vec<Element> {
    let v4 = KeyPart::Ipv4(Ipv4Addr::new(10, 200, 0, 5));
    let v6 = KeyPart::Ipv6("fd00::5".parse::<Ipv6Addr>().unwrap());
    vec![
        el(Family::Inet, "ifs", vec![ifname("pal7")]),
        el(
            Family::Inet,
            "hosts4",
            vec![ifname("pal7"), v4.clone(), KeyPart::Ether(mac(5))],
        ),
        el(
            Family::Inet,
            "hosts6",
            vec![ifname("pal7"), v6, KeyPart::Ether(mac(5))],
        ),
        el(
            Family::Inet,
            "ports",
            vec![ifname("pal7"), KeyPart::L4Proto(6), KeyPart::Port(443)],
        ),
        el(
            Family::Inet,
            "marks",
            vec![KeyPart::Mark(3), ifname("pal7")],
        ),
        Element {
            family: Family::Inet,
            set: "ifmark",
            key: vec![ifname("pal7")],
            key_end: Vec::new(),
            value: vec![KeyPart::Mark(3)],
        },
        el(
            Family::Arp,
            "hosts4",
            vec![ifname("pal7"), v4, KeyPart::Ether(mac(5))],
        ),
    ]
}

/// `elem` array of `nft -j list set|map <family> palisade <set>` (empty
/// when the set has no elements).
fn nft_elems(family: Family, kind: &str, set: &str) -> Vec<Value> {
    let out = Command::new("nft")
        .args(["-j", "list", kind, family.keyword(), "palisade", set])
        .output()
        .expect("run nft");
    assert!(
        out.status.success(),
        "nft list {kind} {set}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o.get(kind))
        .and_then(|s| s.get("elem"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn nft_text(args: &[&str]) -> String {
    let out = Command::new("nft").args(args).output().expect("run nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_sandbox7_present() {
    let concat = |items: Value| json!({ "concat": items });
    assert_eq!(nft_elems(Family::Inet, "set", "ifs"), vec![json!("pal7")]);
    assert_eq!(
        nft_elems(Family::Inet, "set", "hosts4"),
        vec![concat(json!(["pal7", "10.200.0.5", "02:00:00:00:00:05"]))]
    );
    assert_eq!(
        nft_elems(Family::Inet, "set", "hosts6"),
        vec![concat(json!(["pal7", "fd00::5", "02:00:00:00:00:05"]))]
    );
    assert_eq!(
        nft_elems(Family::Inet, "set", "ports"),
        vec![concat(json!(["pal7", "tcp", 443]))]
    );
    assert_eq!(
        nft_elems(Family::Inet, "set", "marks"),
        vec![concat(json!([3, "pal7"]))]
    );
    assert_eq!(
        nft_elems(Family::Inet, "map", "ifmark"),
        vec![json!(["pal7", 3])]
    );
    assert_eq!(
        nft_elems(Family::Arp, "set", "hosts4"),
        vec![concat(json!(["pal7", "10.200.0.5", "02:00:00:00:00:05"]))]
    );
    // The text form shows the mark as nft prints marks.
    let text = nft_text(&["list", "map", "inet", "palisade", "ifmark"]);
    assert!(text.contains("\"pal7\" : 0x00000003"), "{text}");
}

#[test]
fn add_then_delete_every_set_type() {
    in_netns("add_then_delete_every_set_type", || {
        apply_script(SCRIPT).unwrap();
        let mut sock = NftSocket::open().unwrap();
        let elems = sandbox7();

        sock.apply_elements(&elems, &[]).unwrap();
        assert_sandbox7_present();
        // Re-adding identical elements is fine and changes nothing.
        sock.apply_elements(&elems, &[]).unwrap();
        assert_sandbox7_present();

        // The raw read-back is exactly what we encoded.
        for e in &elems {
            let listed = sock.list_elements(e.family, e.set).unwrap();
            let value = (!e.value.is_empty()).then(|| encode_key(&e.value));
            assert_eq!(listed, vec![(encode_key(&e.key), value)], "set {}", e.set);
        }

        sock.apply_elements(&[], &elems).unwrap();
        for e in &elems {
            assert!(sock.list_elements(e.family, e.set).unwrap().is_empty());
            let kind = if e.value.is_empty() { "set" } else { "map" };
            assert!(nft_elems(e.family, kind, e.set).is_empty(), "set {}", e.set);
        }

        // Deleting what is absent is not an error.
        sock.apply_elements(&[], &elems).unwrap();
    });
}

#[test]
fn destroy_is_probed() {
    in_netns("destroy_is_probed", || {
        let mut sock = NftSocket::open().unwrap();
        let supported = sock.supports_destroy();
        eprintln!("kernel supports DESTROYSETELEM: {supported}");
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release.trim().split(['.', '-']);
        let major: u32 = parts.next().unwrap().parse().unwrap();
        let minor: u32 = parts.next().unwrap().parse().unwrap();
        if (major, minor) >= (6, 3) {
            assert!(supported, "kernel {release} should support DESTROYSETELEM");
        }
        // Cached: same answer again.
        assert_eq!(sock.supports_destroy(), supported);
    });
}

#[test]
fn fallback_delete_without_destroy() {
    in_netns("fallback_delete_without_destroy", || {
        apply_script(SCRIPT).unwrap();
        let mut sock = NftSocket::open().unwrap();
        sock.force_destroy_support(false);
        let elems = sandbox7();
        sock.apply_elements(&elems, &[]).unwrap();

        // Delete half of them plus elements that were never added.
        let mut delete: Vec<Element> = elems[..3].to_vec();
        delete.push(el(Family::Inet, "ifs", vec![ifname("pal99")]));
        delete.push(el(Family::Arp, "hosts4", {
            vec![
                ifname("pal99"),
                KeyPart::Ipv4(Ipv4Addr::new(10, 0, 0, 99)),
                KeyPart::Ether(mac(99)),
            ]
        }));
        sock.apply_elements(&[], &delete).unwrap();
        for e in &elems[..3] {
            assert!(sock.list_elements(e.family, e.set).unwrap().is_empty());
        }
        for e in &elems[3..] {
            assert_eq!(sock.list_elements(e.family, e.set).unwrap().len(), 1);
        }
        // Everything again, most of it now absent.
        sock.apply_elements(&[], &elems).unwrap();
        for e in &elems {
            assert!(sock.list_elements(e.family, e.set).unwrap().is_empty());
        }
    });
}

#[test]
fn map_value_changes_by_delete_and_add_in_one_call() {
    in_netns("map_value_changes_by_delete_and_add_in_one_call", || {
        apply_script(SCRIPT).unwrap();
        let mut sock = NftSocket::open().unwrap();
        let entry = |mark| Element {
            family: Family::Inet,
            set: "ifmark",
            key: vec![ifname("pal7")],
            key_end: Vec::new(),
            value: vec![KeyPart::Mark(mark)],
        };
        sock.apply_elements(&[entry(3)], &[]).unwrap();
        sock.apply_elements(&[entry(9)], &[entry(3)]).unwrap();
        assert_eq!(
            nft_elems(Family::Inet, "map", "ifmark"),
            vec![json!(["pal7", 9])]
        );
    });
}

#[test]
fn failing_batch_applies_nothing_and_names_the_set() {
    in_netns("failing_batch_applies_nothing_and_names_the_set", || {
        apply_script(SCRIPT).unwrap();
        let mut sock = NftSocket::open().unwrap();
        let good = el(Family::Inet, "ifs", vec![ifname("pal1")]);
        let bad = el(Family::Inet, "nosuch", vec![ifname("pal1")]);
        let err = sock.apply_elements(&[good.clone(), bad], &[]).unwrap_err();
        eprintln!("error: {err}");
        match &err {
            NftError::Kernel {
                op,
                family,
                set,
                errno,
                ..
            } => {
                assert_eq!(*op, SetOp::Add);
                assert_eq!(*family, Family::Inet);
                assert_eq!(set, "nosuch");
                assert_eq!(*errno, libc::ENOENT);
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(err.to_string().contains("nosuch"), "{err}");
        assert!(sock.list_elements(Family::Inet, "ifs").unwrap().is_empty());

        // A failing delete aborts the adds of the same call too.
        let bad_delete = el(Family::Arp, "nosuch", vec![ifname("pal1")]);
        let err = sock
            .apply_elements(std::slice::from_ref(&good), &[bad_delete])
            .unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
        assert!(err.to_string().contains("nosuch"), "{err}");
        assert!(sock.list_elements(Family::Inet, "ifs").unwrap().is_empty());

        // Listing a missing set is an error naming it.
        let err = sock.list_elements(Family::Inet, "nosuch").unwrap_err();
        assert!(err.to_string().contains("nosuch"), "{err}");

        // The socket stays usable after failures.
        sock.apply_elements(&[good], &[]).unwrap();
        assert_eq!(sock.list_elements(Family::Inet, "ifs").unwrap().len(), 1);
    });
}

#[test]
fn ten_thousand_elements_in_one_call() {
    in_netns("ten_thousand_elements_in_one_call", || {
        apply_script(SCRIPT).unwrap();
        let mut sock = NftSocket::open().unwrap();
        let elems: Vec<Element> = (0..10_000u32)
            .map(|i| {
                el(
                    Family::Inet,
                    "hosts4",
                    vec![
                        ifname(&format!("pal{i}")),
                        KeyPart::Ipv4(Ipv4Addr::from(0x0a00_0000 + i)),
                        KeyPart::Ether(MacAddr([2, 0, 0, 0, (i >> 8) as u8, i as u8])),
                    ],
                )
            })
            .collect();
        sock.apply_elements(&elems, &[]).unwrap();
        let mut listed: Vec<Vec<u8>> = sock
            .list_elements(Family::Inet, "hosts4")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut expected: Vec<Vec<u8>> = elems.iter().map(|e| encode_key(&e.key)).collect();
        listed.sort();
        expected.sort();
        assert_eq!(listed, expected);

        // Swap half of them in one call: delete 5,000, add 5,000 others.
        let (old, keep) = elems.split_at(5_000);
        let fresh: Vec<Element> = (20_000..25_000u32)
            .map(|i| el(Family::Inet, "ifs", vec![ifname(&format!("x{i}"))]))
            .collect();
        sock.apply_elements(&fresh, old).unwrap();
        assert_eq!(
            sock.list_elements(Family::Inet, "hosts4").unwrap().len(),
            keep.len()
        );
        assert_eq!(
            sock.list_elements(Family::Inet, "ifs").unwrap().len(),
            5_000
        );

        // And the fallback path with the same volume.
        sock.force_destroy_support(false);
        sock.apply_elements(&[], &elems).unwrap();
        assert!(sock
            .list_elements(Family::Inet, "hosts4")
            .unwrap()
            .is_empty());
    });
}

#[test]
fn scripts_and_listings() {
    in_netns("scripts_and_listings", || {
        assert!(list_table_json(Family::Inet).unwrap().is_none());
        assert!(list_table_json(Family::Arp).unwrap().is_none());

        let err = apply_script("table inet palisade { set s { type nonsense; } }").unwrap_err();
        match &err {
            NftError::Nft { stderr, .. } => assert!(stderr.contains("nonsense"), "{stderr}"),
            other => panic!("unexpected error {other:?}"),
        }
        // Nothing of the failed script was applied.
        assert!(list_table_json(Family::Inet).unwrap().is_none());

        apply_script(SCRIPT).unwrap();
        let inet = list_table_json(Family::Inet).unwrap().expect("inet table");
        let objects = inet["nftables"].as_array().unwrap();
        assert!(objects
            .iter()
            .any(|o| o["table"]["name"] == "palisade" && o["table"]["family"] == "inet"));
        assert!(objects.iter().any(|o| o["map"]["name"] == "ifmark"));
        assert!(list_table_json(Family::Arp).unwrap().is_some());
        assert!(list_table_json(Family::Bridge).unwrap().is_none());
    });
}

#[test]
fn canonical_listing_uses_its_own_namespace() {
    in_netns("canonical_listing_uses_its_own_namespace", || {
        let listing =
            canonical_listing(SCRIPT, &[Family::Inet, Family::Arp, Family::Bridge]).unwrap();
        assert_eq!(listing.len(), 3);
        assert_eq!(listing[0].0, Family::Inet);
        let inet = listing[0].1.as_ref().expect("inet table listed");
        assert!(inet["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["set"]["name"] == "hosts6"));
        assert!(listing[1].1.is_some());
        assert!(listing[2].1.is_none());
        // It did not leak into the namespace it was called from.
        assert!(list_table_json(Family::Inet).unwrap().is_none());

        let err = canonical_listing("this is not nft", &[Family::Inet]).unwrap_err();
        assert!(matches!(err, NftError::Nft { .. }), "{err:?}");
    });
}

/// Tenant rules are elements of interval sets with concatenations
/// (`NFTA_SET_ELEM_KEY_END`): added and removed over netlink, they list
/// exactly as the same elements written in an nft script do, and deleting
/// works with and without `DESTROYSETELEM`.
#[test]
fn interval_concatenation_elements() {
    use palisade_core::tenant_rule::TenantRule;
    const RULES: &str = r#"
table inet palisade {
    set rule_deny4 { type mark . inet_proto . inet_service . ipv4_addr; flags interval; }
    set rule_allow6 { type mark . inet_proto . inet_service . ipv6_addr; flags interval; }
}
"#;
    let rules: Vec<Element> = [
        (5, "deny tcp 443 203.0.113.0/24"),
        (5, "deny udp all 198.51.100.7/32"),
        (6, "deny tcp 8000-8080 203.0.113.0/24"),
        (5, "allow tcp 8080 2001:db8::/32"),
        (9, "allow udp 53-54 2001:db8:1::53/128"),
    ]
    .into_iter()
    .map(|(mark, text)| text.parse::<TenantRule>().unwrap().element(mark))
    .collect();
    // What nft itself makes of the same elements written as text.
    let mut script = RULES.to_string();
    for e in &rules {
        script.push_str(&format!(
            "add element inet palisade {} {{ {} }}\n",
            e.set,
            e.to_nft()
        ));
    }
    in_netns("interval_concatenation_elements", || {
        let canonical = canonical_listing(&script, &[Family::Inet]).unwrap();
        let want = canonical[0].1.clone().unwrap();
        apply_script(RULES).unwrap();
        let mut sock = NftSocket::open().unwrap();
        sock.apply_elements(&rules, &[]).unwrap();
        // Adding again is not an error.
        sock.apply_elements(&rules[..1], &[]).unwrap();
        let live = list_table_json(Family::Inet).unwrap().unwrap();
        let sets = |v: &Value| -> Vec<Value> {
            v["nftables"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|o| o.get("set"))
                .map(|s| {
                    let mut s = s.clone();
                    s.as_object_mut().unwrap().remove("handle");
                    // The listing order follows insertion; compare as sets.
                    if let Some(Value::Array(elems)) = s.get_mut("elem") {
                        elems.sort_by_key(|e| e.to_string());
                    }
                    s
                })
                .collect()
        };
        assert_eq!(sets(&live), sets(&want));
        assert_eq!(nft_elems(Family::Inet, "set", "rule_deny4").len(), 3);

        // Deleting one range leaves the others.
        sock.apply_elements(&[], &rules[..1]).unwrap();
        let text = nft_text(&["list", "set", "inet", "palisade", "rule_deny4"]);
        assert!(!text.contains(". 443 ."), "{text}");
        assert!(
            text.contains("0x00000006 . tcp . 8000-8080 . 203.0.113.0/24"),
            "{text}"
        );
        // The fallback path (no DESTROYSETELEM) deletes ranges too, and
        // skips absent ones.
        sock.force_destroy_support(false);
        sock.apply_elements(&[], &rules).unwrap();
        assert!(nft_elems(Family::Inet, "set", "rule_deny4").is_empty());
        assert!(nft_elems(Family::Inet, "set", "rule_allow6").is_empty());
    });
}
