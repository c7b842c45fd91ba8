use std::collections::BTreeSet;

use crate::facts::{Check, Outcome};
use crate::report::judge;
use crate::*;

fn healthy() -> Evidence {
    serde_json::from_str(include_str!("../fixtures/healthy.json")).unwrap()
}

fn all_reports(ev: &Evidence) -> Vec<Report> {
    Framework::ALL.iter().map(|f| evaluate(*f, ev)).collect()
}

fn failing(ev: &Evidence) -> BTreeSet<String> {
    all_reports(ev)
        .into_iter()
        .flat_map(|r| r.controls)
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.id)
        .collect()
}

fn control(ev: &Evidence, id: &str) -> ControlResult {
    all_reports(ev)
        .into_iter()
        .flat_map(|r| r.controls)
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no control {id}"))
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

const ALL_IDS: [&str; 11] = [
    "CC6.1", "CC6.6", "CC7.2", "1.3", "1.4", "10.2", "SC-7", "AC-3", "AU-9", "A.8.20", "A.8.22",
];
/// Controls that rest on the firewall being the compiled one.
const NETWORK: [&str; 6] = ["CC6.6", "1.3", "1.4", "SC-7", "A.8.20", "A.8.22"];

#[test]
fn healthy_evidence_passes_every_control() {
    let ev = healthy();
    for r in all_reports(&ev) {
        assert_eq!(r.overall, Status::Pass, "{}", r.framework);
        assert_eq!(r.summary.fail, 0);
        assert_eq!(r.summary.not_applicable, 0);
        assert_eq!(r.summary.pass, r.controls.len());
        for c in &r.controls {
            assert_eq!(c.status, Status::Pass, "{}: {}", c.id, c.rationale);
            assert!(c.rationale.starts_with("Passes"), "{}", c.rationale);
            assert!(!c.evidence.is_empty());
        }
    }
    let ids: BTreeSet<String> = all_reports(&ev)
        .into_iter()
        .flat_map(|r| r.controls)
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, set(&ALL_IDS));
}

/// Each bad fact flips exactly the controls that depend on it.
#[test]
fn each_bad_fact_flips_exactly_its_controls() {
    type Mutation = fn(&mut Evidence);
    let network_and_monitoring: Vec<&str> = NETWORK.iter().copied().chain(["CC7.2"]).collect();
    let cases: Vec<(&str, Mutation, Vec<&str>)> = vec![
        (
            "verify not run",
            |e| e.verify = None,
            network_and_monitoring.clone(),
        ),
        (
            "verify out of sync",
            |e| {
                let v = e.verify.as_mut().unwrap();
                v.in_sync = false;
                v.differences = 2;
            },
            network_and_monitoring.clone(),
        ),
        (
            "verify differences without the flag",
            |e| e.verify.as_mut().unwrap().differences = 1,
            network_and_monitoring.clone(),
        ),
        (
            "tables missing",
            |e| e.verify.as_mut().unwrap().tables_present = false,
            network_and_monitoring.clone(),
        ),
        (
            "probe mismatch",
            |e| e.probes.as_mut().unwrap().matched = 39,
            NETWORK.to_vec(),
        ),
        ("probes not run", |e| e.probes = None, vec![]),
        (
            "no probe sent",
            |e| e.probes.as_mut().unwrap().probes = 0,
            vec![],
        ),
        (
            "no default deny",
            |e| e.isolation.default_deny = false,
            vec!["CC6.6", "1.3", "SC-7", "A.8.20"],
        ),
        (
            "IPv6 not enforced",
            |e| e.isolation.ipv6_enforced = false,
            vec!["CC6.6", "1.3", "SC-7", "A.8.20"],
        ),
        (
            "metadata reachable",
            |e| e.isolation.metadata_blocked = false,
            vec!["CC6.6", "1.4", "SC-7", "A.8.20"],
        ),
        (
            "private ranges reachable",
            |e| e.isolation.private_ranges_blocked = false,
            vec!["CC6.6", "1.4", "SC-7", "A.8.20"],
        ),
        (
            "host reachable",
            |e| e.isolation.host_blocked = false,
            vec!["CC6.6", "1.4", "SC-7", "A.8.20"],
        ),
        (
            "unknown inter-sandbox policy",
            |e| e.isolation.inter_sandbox = "allow".into(),
            vec!["1.3", "SC-7", "A.8.22"],
        ),
        (
            "same-tenant",
            |e| e.isolation.inter_sandbox = "same-tenant".into(),
            vec![],
        ),
        (
            "no anti-spoofing",
            |e| e.isolation.anti_spoofing = false,
            vec!["1.4", "SC-7", "A.8.20"],
        ),
        (
            "exposure not via DNAT",
            |e| e.isolation.exposures_dnat_only = false,
            vec!["1.4", "SC-7"],
        ),
        (
            "nothing exposed",
            |e| {
                e.isolation.exposures = 0;
                e.isolation.exposures_dnat_only = false;
            },
            vec![],
        ),
        (
            "plain HTTP off loopback",
            |e| e.transport.plain_tcp_loopback_only = false,
            vec!["CC6.6", "A.8.20"],
        ),
        (
            "plain HTTP off loopback, no TLS",
            |e| {
                e.transport.tls = false;
                e.transport.plain_tcp_loopback_only = false;
            },
            vec!["CC6.6", "A.8.20"],
        ),
        ("Unix socket only", |e| e.transport.tls = false, vec![]),
        (
            "world-writable socket",
            |e| e.transport.unix_socket_mode = 0o666,
            vec!["CC6.1", "AC-3"],
        ),
        (
            "TLS only, no socket",
            |e| e.transport.unix_socket = false,
            vec![],
        ),
        (
            "unknown role",
            |e| e.access.users[2].role = "superuser".into(),
            vec!["CC6.1", "AC-3"],
        ),
        (
            "no users",
            |e| e.access.users.clear(),
            vec!["CC6.1", "AC-3"],
        ),
        (
            "operator not scoped",
            |e| e.access.users[1].tenant = None,
            vec!["CC6.1", "AC-3"],
        ),
        (
            "operator not scoped, single tenant",
            |e| {
                e.access.users[1].tenant = None;
                e.isolation.tenants = 1;
            },
            vec![],
        ),
        (
            "short passwords",
            |e| e.access.password_min_length = 6,
            vec!["CC6.1"],
        ),
        ("no Argon2id", |e| e.access.argon2id = false, vec!["CC6.1"]),
        (
            "weak policy, admin with TOTP",
            |e| e.access.password_min_length = 10,
            vec![],
        ),
        (
            "weak policy, admin without TOTP",
            |e| {
                e.access.password_min_length = 10;
                e.access.users[0].totp = false;
            },
            vec!["CC6.1"],
        ),
        (
            "few classes, admin without TOTP",
            |e| {
                e.access.password_min_classes = 1;
                e.access.users[0].totp = false;
            },
            vec!["CC6.1"],
        ),
        (
            "strong policy, admin without TOTP",
            |e| e.access.users[0].totp = false,
            vec![],
        ),
        (
            "no lockout",
            |e| e.access.lockout_threshold = 0,
            vec!["CC6.1"],
        ),
        (
            "lockout of 0 minutes",
            |e| e.access.lockout_minutes = 0,
            vec!["CC6.1"],
        ),
        (
            "lax lockout",
            |e| e.access.lockout_threshold = 50,
            vec!["CC6.1"],
        ),
        (
            "no rate limit",
            |e| e.access.rate_limit_per_minute = 0,
            vec!["CC6.1"],
        ),
        (
            "token lifetime unset",
            |e| e.access.access_token_minutes = 0,
            vec!["CC6.1"],
        ),
        (
            "long-lived tokens",
            |e| e.access.access_token_minutes = 600,
            vec!["CC6.1"],
        ),
        (
            "audit chain broken",
            |e| {
                e.audit.chain_intact = false;
                e.audit.problems = vec!["record 17: MAC mismatch".into()];
            },
            vec!["CC7.2", "10.2", "AU-9"],
        ),
        (
            "audit problems reported",
            |e| e.audit.problems = vec!["record 3: gap".into()],
            vec!["CC7.2", "10.2", "AU-9"],
        ),
        (
            "empty audit log",
            |e| e.audit.records = 0,
            vec!["CC7.2", "10.2", "AU-9"],
        ),
        (
            "logins not recorded",
            |e| e.audit.records_logins = false,
            vec!["CC7.2", "10.2"],
        ),
        (
            "denials not recorded",
            |e| e.audit.records_denials = false,
            vec!["CC7.2", "10.2"],
        ),
        (
            "no retention",
            |e| e.audit.retention_days = None,
            vec!["10.2"],
        ),
        (
            "short retention",
            |e| e.audit.retention_days = Some(90),
            vec!["10.2"],
        ),
        ("no keyed MAC", |e| e.audit.keyed_mac = false, vec!["AU-9"]),
        (
            "key file readable",
            |e| e.audit.key_file_private = false,
            vec!["AU-9"],
        ),
    ];
    for (name, mutate, expected) in cases {
        let mut ev = healthy();
        mutate(&mut ev);
        assert_eq!(failing(&ev), set(&expected), "case: {name}");
        for id in &expected {
            let c = control(&ev, id);
            assert!(
                c.rationale.starts_with("Fails because "),
                "{name}: {id}: {}",
                c.rationale
            );
        }
    }
}

#[test]
fn missing_verify_fails_with_a_rationale_naming_it() {
    let mut ev = healthy();
    ev.verify = None;
    for id in NETWORK.iter().chain(&["CC7.2"]) {
        let c = control(&ev, id);
        assert_eq!(c.status, Status::Fail);
        assert!(c.rationale.contains("missing evidence"), "{}", c.rationale);
        assert!(c.rationale.contains("palisade verify"), "{}", c.rationale);
        assert!(c
            .evidence
            .iter()
            .any(|l| l == "verify: not run (no result available)"));
    }
}

#[test]
fn verify_evidence_line_names_fact_and_value() {
    let c = control(&healthy(), "CC6.6");
    assert!(c.evidence.contains(
        &"verify: 0 differences between kernel and compiled rules (checked 2026-11-23T19:20:01Z, 12 sandboxes); in sync: yes; palisade tables present: yes".to_string()
    ));
    assert!(c.evidence.contains(
        &"probes: 40 of 40 probes matched their expectation (checked 2026-11-23T19:20:03Z)"
            .to_string()
    ));
}

#[test]
fn unix_socket_only_passes_with_encryption_not_applicable() {
    let mut ev = healthy();
    ev.transport.tls = false;
    for id in ["CC6.6", "A.8.20"] {
        let c = control(&ev, id);
        assert_eq!(c.status, Status::Pass);
        assert!(c.rationale.contains("not applicable"), "{}", c.rationale);
        assert!(
            c.rationale.contains("API encryption in transit"),
            "{}",
            c.rationale
        );
        assert!(c.rationale.contains("Unix socket"), "{}", c.rationale);
    }
}

#[test]
fn probes_not_run_are_named_as_not_applicable() {
    let mut ev = healthy();
    ev.probes = None;
    let c = control(&ev, "SC-7");
    assert_eq!(c.status, Status::Pass);
    assert!(c
        .rationale
        .contains("active probes (active probes were not run"));
    assert!(c
        .evidence
        .contains(&"probes: not run (optional)".to_string()));
}

#[test]
fn missing_retention_and_empty_log_say_what_is_missing() {
    let mut ev = healthy();
    ev.audit.retention_days = None;
    ev.audit.records = 0;
    let c = control(&ev, "10.2");
    assert!(c
        .rationale
        .contains("missing evidence: no audit retention period"));
    assert!(c
        .rationale
        .contains("missing evidence: the audit log holds no records"));
}

#[test]
fn failures_are_all_named() {
    let mut ev = healthy();
    ev.isolation.default_deny = false;
    ev.isolation.metadata_blocked = false;
    let c = control(&ev, "SC-7");
    assert!(c.rationale.contains("not denied by default"));
    assert!(c.rationale.contains("metadata"));
}

#[test]
fn judge_rules() {
    let check = |outcome| Check {
        name: "x",
        line: "x: 1".into(),
        outcome,
    };
    let na = || check(Outcome::NotApplicable("n/a here".into()));
    assert_eq!(judge(&[na(), na()]).0, Status::NotApplicable);
    assert!(judge(&[na()]).1.contains("n/a here"));
    assert_eq!(judge(&[na(), check(Outcome::Holds)]).0, Status::Pass);
    assert_eq!(
        judge(&[
            check(Outcome::Holds),
            check(Outcome::Missing("gone".into()))
        ])
        .0,
        Status::Fail
    );
    assert_eq!(
        judge(&[na(), check(Outcome::Bad("bad".into()))]).0,
        Status::Fail
    );
    // A control without any fact has no evidence: it cannot pass.
    assert_eq!(judge(&[]).0, Status::Fail);
}

#[test]
fn summary_and_overall() {
    let mut ev = healthy();
    ev.audit.keyed_mac = false;
    let r = evaluate(Framework::Nist80053, &ev);
    assert_eq!(r.overall, Status::Fail);
    assert_eq!(
        (r.summary.pass, r.summary.fail, r.summary.not_applicable),
        (2, 1, 0)
    );
    assert_eq!(r.generated_at, ev.collected_at);
    assert_eq!(r.framework, "nist-800-53");
    assert_eq!(r.framework_title, "NIST SP 800-53 Rev. 5");
    assert_eq!(r.evidence, ev);
}

#[test]
fn framework_parsing() {
    for (s, f) in [
        ("soc2", Framework::Soc2),
        ("SOC2", Framework::Soc2),
        ("pci-dss-4.0", Framework::PciDss4),
        ("pci-dss", Framework::PciDss4),
        ("pci", Framework::PciDss4),
        ("nist-800-53", Framework::Nist80053),
        ("nist", Framework::Nist80053),
        ("iso27001-2022", Framework::Iso27001),
        (" iso27001 ", Framework::Iso27001),
    ] {
        assert_eq!(s.parse::<Framework>(), Ok(f), "{s}");
    }
    for f in Framework::ALL {
        assert_eq!(f.to_string().parse::<Framework>(), Ok(f));
    }
    let ids: Vec<String> = Framework::ALL.iter().map(|f| f.to_string()).collect();
    assert_eq!(ids, ["soc2", "pci-dss-4.0", "nist-800-53", "iso27001-2022"]);

    let err = "hipaa".parse::<Framework>().unwrap_err();
    assert_eq!(err.given, "hipaa");
    let msg = err.to_string();
    assert!(msg.contains("\"hipaa\""), "{msg}");
    for id in ids {
        assert!(msg.contains(&id), "{msg}");
    }
}

#[test]
fn framework_controls() {
    let ids = |f: Framework| -> Vec<&str> { f.controls().into_iter().map(|c| c.0).collect() };
    assert_eq!(ids(Framework::Soc2), ["CC6.1", "CC6.6", "CC7.2"]);
    assert_eq!(ids(Framework::PciDss4), ["1.3", "1.4", "10.2"]);
    assert_eq!(ids(Framework::Nist80053), ["SC-7", "AC-3", "AU-9"]);
    assert_eq!(ids(Framework::Iso27001), ["A.8.20", "A.8.22"]);
}

#[test]
fn json_shape() {
    let mut ev = healthy();
    ev.isolation.exposures = 0;
    ev.probes = None;
    let r = evaluate(Framework::Soc2, &ev);
    let v: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(v["framework"], "soc2");
    assert_eq!(v["overall"], "pass");
    assert_eq!(v["summary"]["not_applicable"], 0);
    assert_eq!(v["controls"][0]["id"], "CC6.1");
    assert_eq!(v["controls"][0]["status"], "pass");
    assert!(v["controls"][0]["evidence"].is_array());
    assert_eq!(v["evidence"]["verify"]["sandboxes"], 12);
    let back: Report = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
    assert_eq!(
        serde_json::to_value(Status::NotApplicable).unwrap(),
        "not_applicable"
    );
}

#[test]
fn escape_html_escapes_every_special_character() {
    assert_eq!(
        escape_html(r#"<a href="x" onclick='y'>&amp;</a>"#),
        "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
    );
    assert_eq!(escape_html("plain text ü"), "plain text ü");
}

#[test]
fn escape_markdown_neutralises_markup() {
    assert_eq!(
        escape_markdown("<script>*x*|[l](u)\n# h"),
        "\\<script\\>\\*x\\*\\|\\[l\\](u) \\# h"
    );
    assert_eq!(
        escape_markdown("2026-11-23T19:20:01Z, 12"),
        "2026-11-23T19:20:01Z, 12"
    );
}

fn hostile() -> Evidence {
    let mut ev = healthy();
    ev.access.password_min_length = 10;
    ev.access.users.push(UserEvidence {
        name: "<script>alert('x')</script>".into(),
        role: "admin".into(),
        tenant: None,
        totp: false,
    });
    ev.audit.problems = vec!["record 9: \"</pre><script>evil()</script>\" ``` end".into()];
    ev
}

#[test]
fn html_escapes_a_hostile_user_name() {
    let ev = hostile();
    for f in Framework::ALL {
        let r = evaluate(f, &ev);
        let html = render_html(&r);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("</pre><"), "{html}");
        if f == Framework::Soc2 {
            assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        }
        for c in &r.controls {
            assert!(html.contains(&format!("id=\"control-{}\"", c.id)));
        }
    }
    let cc61 = control(&ev, "CC6.1");
    assert_eq!(cc61.status, Status::Fail);
    assert!(cc61.rationale.contains("<script>alert('x')</script>"));
}

#[test]
fn markdown_contains_every_control_and_escapes() {
    let ev = hostile();
    for f in Framework::ALL {
        let r = evaluate(f, &ev);
        let md = render_markdown(&r);
        assert!(md.starts_with(&format!("# Compliance report: {}", f.title())));
        assert!(md.contains(&ev.collected_at));
        for c in &r.controls {
            assert!(md.contains(&format!("\n## {}: ", c.id)), "{}", c.id);
            assert!(md.contains(&format!("| {} |", c.id)), "{}", c.id);
        }
        // Outside the fenced JSON, nothing can open raw HTML.
        let before_json = md.split("## Evidence as collected").next().unwrap();
        let bytes = before_json.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'<' || *b == b'`' {
                assert_eq!(bytes[i - 1], b'\\', "unescaped at {i}: {before_json}");
            }
        }
        if f == Framework::Soc2 {
            assert!(before_json.contains("\\<script\\>alert('x')\\</script\\>"));
        }
        // The fence is longer than the backticks inside the JSON.
        assert!(md.contains("\n````json\n"), "{md}");
        assert!(md.trim_end().ends_with("````"));
    }
}
