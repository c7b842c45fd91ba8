//! Tenant rules (`palisade rule add|list|remove`), proven with traffic to
//! recording listeners on the lab's stand-in internet host: a blocked
//! result is the absence of an arrival at the listener, not only a client
//! timeout. Allow rules open internet egress for one tenant's sandboxes
//! without --internet; deny rules win over --internet and --allow; no allow
//! rule re-opens an always-denied range; rules survive a lost table and
//! `verify` notices a rule element changed behind palisade's back.

mod common;

use common::{hold, send_and_read, tcp_listener, Env};
use palisade_lab::traffic::{tcp_connect, Listener};
use palisade_lab::World;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_millis(700);
const CONFIG: &str = "[network]\nuplink = \"up0\"\n";

/// Recording listeners on the internet host, IPv4 and IPv6, on each port.
struct Internet {
    _world: World,
    listeners: Vec<(IpAddr, u16, Listener)>,
}

impl Internet {
    fn new(env: &Env, ports: &[u16]) -> Internet {
        let world = env.lab.add_world().unwrap();
        let mut listeners = Vec::new();
        for &port in ports {
            for addr in [IpAddr::from(World::INTERNET4), World::INTERNET6.into()] {
                listeners.push((addr, port, tcp_listener(&world.path(), addr, port)));
            }
        }
        Internet {
            _world: world,
            listeners,
        }
    }

    fn arrivals(&self, addr: IpAddr, port: u16) -> usize {
        self.listeners
            .iter()
            .find(|(a, p, _)| *a == addr && *p == port)
            .expect("a listener on that address and port")
            .2
            .arrivals()
            .len()
    }

    /// Connects from sandbox `name` to `addr:port` and returns whether the
    /// listener recorded the connection; the client's own view must agree.
    fn reaches(&self, name: &str, addr: impl Into<IpAddr>, port: u16) -> bool {
        let addr = addr.into();
        let before = self.arrivals(addr, port);
        let outcome = tcp_connect(
            &palisade_link::netns_path(name),
            SocketAddr::new(addr, port),
            T,
        )
        .unwrap();
        // A dropped SYN never arrives; give a late arrival a moment.
        std::thread::sleep(Duration::from_millis(50));
        let arrived = self.arrivals(addr, port) > before;
        assert_eq!(
            arrived,
            outcome.reached(),
            "{name} -> {addr}:{port}: the listener and the client disagree ({outcome:?})"
        );
        arrived
    }
}

fn failure(env: &Env, args: &[&str]) -> String {
    let out = env.palisade(args);
    assert!(
        !out.status.success(),
        "palisade {} should have failed",
        args.join(" ")
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn nft(env: &Env, args: &[&str]) -> String {
    let out = env.lab.command(Path::new("nft"), args, &[]).unwrap();
    assert!(
        out.status.success(),
        "nft {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The elements of one of palisade's inet sets (or maps), as nft prints
/// them.
fn set_elements(env: &Env, set: &str) -> Vec<String> {
    let kind = if set == "tenant4" { "map" } else { "set" };
    let text = nft(env, &["list", kind, "inet", "palisade", set]);
    let Some(body) = text.split("elements = {").nth(1) else {
        return Vec::new();
    };
    body.split('}')
        .next()
        .unwrap()
        .split(',')
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect()
}

fn rule_id(v: &serde_json::Value) -> String {
    v["id"].as_u64().unwrap().to_string()
}

#[test]
fn allow_rules_open_one_tenants_egress_to_their_destination_only() {
    let Some(env) = Env::new(
        "allow_rules_open_one_tenants_egress_to_their_destination_only",
        CONFIG,
    ) else {
        return;
    };
    let net = Internet::new(&env, &[8080, 8081]);
    let a1 = env.name("a1");
    let b1 = env.name("b1");
    env.ok(&["sandbox", "create", &a1, "--tenant", "acme"]);
    env.ok(&["sandbox", "create", &b1, "--tenant", "beta"]);
    assert!(!net.reaches(&a1, World::INTERNET4, 8080));

    let v4 = env.json(&[
        "rule",
        "add",
        "--tenant",
        "acme",
        "--allow",
        "--proto",
        "tcp",
        "--port",
        "8080",
        "--cidr",
        "203.0.113.10/32",
        "--json",
    ]);
    assert_eq!(v4["action"], "allow");
    assert_eq!(v4["proto"], "tcp");
    assert_eq!(v4["ports"], "8080");
    assert_eq!(v4["cidr"], "203.0.113.10/32");
    assert_eq!(v4["tenant"], "acme");
    let v6 = env.json(&[
        "rule",
        "add",
        "--tenant",
        "acme",
        "--allow",
        "--proto",
        "tcp",
        "--port",
        "8080-8080",
        "--cidr",
        "2001:db8:ffff::10",
        "--json",
    ]);
    assert_eq!(v6["cidr"], "2001:db8:ffff::10/128");

    // Tenant acme reaches exactly that destination and port, masqueraded
    // behind the uplink address.
    assert!(net.reaches(&a1, World::INTERNET4, 8080));
    assert!(net.reaches(&a1, World::INTERNET6, 8080));
    let arrival = net.listeners[0].2.arrivals().pop().unwrap();
    assert_eq!(
        arrival.peer.ip(),
        IpAddr::from(World::LAB4),
        "not masqueraded"
    );
    assert!(!net.reaches(&a1, World::INTERNET4, 8081));
    assert!(!net.reaches(&a1, World::INTERNET6, 8081));
    // Other tenants do not.
    assert!(!net.reaches(&b1, World::INTERNET4, 8080));
    assert!(!net.reaches(&b1, World::INTERNET6, 8080));
    // A sandbox of acme created after the rule has it too, with no other
    // change than its own elements.
    let a2 = env.name("a2");
    env.ok(&["sandbox", "create", &a2, "--tenant", "acme"]);
    assert!(net.reaches(&a2, World::INTERNET4, 8080));
    env.ok(&["verify"]);

    let listed = env.json(&["rule", "list", "--tenant", "acme", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let all = env.json(&["rule", "list", "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    assert!(env
        .json(&["rule", "list", "--tenant", "beta", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
    let text = env.ok(&["rule", "list"]);
    assert!(text.contains("allow  tcp   8080"), "{text}");

    // Removing: by the tenant that owns it only.
    let id = rule_id(&v4);
    let e = failure(&env, &["rule", "remove", "--tenant", "beta", &id]);
    assert!(e.contains(&format!("tenant beta has no rule {id}")), "{e}");
    let e = failure(&env, &["rule", "remove", "--tenant", "acme", "999"]);
    assert!(e.contains("has no rule 999"), "{e}");
    let removed = env.json(&["rule", "remove", "--tenant", "acme", &id, "--json"]);
    assert_eq!(removed["removed"]["id"], v4["id"]);
    assert!(!net.reaches(&a1, World::INTERNET4, 8080));
    assert!(!net.reaches(&a2, World::INTERNET4, 8080));
    assert!(net.reaches(&a1, World::INTERNET6, 8080));
    env.ok(&["rule", "remove", "--tenant", "acme", &rule_id(&v6)]);
    assert!(!net.reaches(&a1, World::INTERNET6, 8080));
    assert!(set_elements(&env, "rule_allow4").is_empty());
    assert!(set_elements(&env, "rule_allow6").is_empty());
    env.ok(&["verify"]);

    // Fails closed: a refused kernel update keeps no rule.
    let out = env.palisade_env(
        &[
            "rule",
            "add",
            "--tenant",
            "acme",
            "--allow",
            "--proto",
            "tcp",
            "--port",
            "8080",
            "--cidr",
            "203.0.113.10/32",
        ],
        &[("PALISADE_FAIL_AT", "rule-after-journal")],
    );
    assert!(!out.status.success());
    assert!(env
        .json(&["rule", "list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
    assert!(!net.reaches(&a1, World::INTERNET4, 8080));
    // Killed between the store and the kernel: the next command finishes
    // the change.
    let out = env.palisade_env(
        &[
            "rule",
            "add",
            "--tenant",
            "acme",
            "--allow",
            "--proto",
            "tcp",
            "--port",
            "8080",
            "--cidr",
            "203.0.113.10/32",
        ],
        &[("PALISADE_CRASH_AT", "rule-after-journal")],
    );
    assert!(!out.status.success());
    assert!(
        !net.reaches(&a1, World::INTERNET4, 8080),
        "applied before the crash"
    );
    let out = env.palisade(&["rule", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("finished the interrupted change of rule"),
        "{stderr}"
    );
    assert!(net.reaches(&a1, World::INTERNET4, 8080));
    env.ok(&["verify"]);

    for s in [&a1, &a2, &b1] {
        env.ok(&["sandbox", "destroy", s]);
    }
    env.assert_empty();
}

#[test]
fn deny_rules_win_over_internet_and_allowed_ports() {
    let Some(env) = Env::new("deny_rules_win_over_internet_and_allowed_ports", CONFIG) else {
        return;
    };
    let net = Internet::new(&env, &[8080, 443]);
    let open = env.name("open");
    let narrow = env.name("narrow");
    let other = env.name("other");
    env.ok(&["sandbox", "create", &open, "--tenant", "acme", "--internet"]);
    env.ok(&[
        "sandbox",
        "create",
        &narrow,
        "--tenant",
        "acme",
        "--internet",
        "--allow",
        "tcp:8080",
    ]);
    env.ok(&[
        "sandbox",
        "create",
        &other,
        "--tenant",
        "beta",
        "--internet",
    ]);
    assert!(net.reaches(&open, World::INTERNET4, 8080));
    assert!(net.reaches(&narrow, World::INTERNET4, 8080));

    let deny = env.json(&[
        "rule",
        "add",
        "--tenant",
        "acme",
        "--deny",
        "--proto",
        "tcp",
        "--port",
        "8080",
        "--cidr",
        "203.0.113.10/32",
        "--json",
    ]);
    assert_eq!(deny["action"], "deny");
    assert!(!net.reaches(&open, World::INTERNET4, 8080));
    assert!(!net.reaches(&narrow, World::INTERNET4, 8080));
    // Other destinations and ports still work, and other tenants.
    assert!(net.reaches(&open, World::INTERNET4, 443));
    assert!(net.reaches(&open, World::INTERNET6, 8080));
    assert!(net.reaches(&narrow, World::INTERNET6, 8080));
    assert!(net.reaches(&other, World::INTERNET4, 8080));

    // All ports, IPv6: a deny rule may cover anything.
    env.ok(&[
        "rule",
        "add",
        "--tenant",
        "acme",
        "--deny",
        "--proto",
        "tcp",
        "--cidr",
        "2001:db8::/32",
    ]);
    assert!(!net.reaches(&open, World::INTERNET6, 8080));
    assert!(!net.reaches(&open, World::INTERNET6, 443));
    assert!(net.reaches(&other, World::INTERNET6, 443));
    // Deny beats a tenant's own allow rule for the same traffic.
    env.ok(&[
        "rule",
        "add",
        "--tenant",
        "acme",
        "--allow",
        "--proto",
        "tcp",
        "--port",
        "8080",
        "--cidr",
        "203.0.113.0/24",
    ]);
    assert!(!net.reaches(&open, World::INTERNET4, 8080));
    // The same rule twice, or one overlapping it, is refused with why.
    let e = failure(
        &env,
        &[
            "rule",
            "add",
            "--tenant",
            "acme",
            "--deny",
            "--proto",
            "tcp",
            "--port",
            "8080",
            "--cidr",
            "203.0.113.10/32",
        ],
    );
    assert!(e.contains("already has this rule"), "{e}");
    let e = failure(
        &env,
        &[
            "rule",
            "add",
            "--tenant",
            "acme",
            "--deny",
            "--proto",
            "tcp",
            "--port",
            "8000-9000",
            "--cidr",
            "203.0.113.0/28",
        ],
    );
    assert!(e.contains("may not overlap"), "{e}");
    env.ok(&["verify"]);

    env.ok(&["rule", "remove", "--tenant", "acme", &rule_id(&deny)]);
    assert!(net.reaches(&open, World::INTERNET4, 8080));
    for s in [&open, &narrow, &other] {
        env.ok(&["sandbox", "destroy", s]);
    }
    env.assert_empty();
}

#[test]
fn allow_rules_never_reopen_always_denied_ranges() {
    let Some(env) = Env::new("allow_rules_never_reopen_always_denied_ranges", CONFIG) else {
        return;
    };
    env.ok(&["init"]);
    let cases = [
        ("169.254.169.254/32", "169.254.0.0/16"),
        ("10.0.0.0/8", "private range 10.0.0.0/8"),
        ("10.0.0.0/7", "private range 10.0.0.0/8"),
        ("fd00:ec2::254/128", "fc00::/7"),
        ("127.0.0.1/32", "loopback range 127.0.0.0/8"),
        (
            "10.200.0.0/16",
            "sandbox pool (network.subnet) range 10.200.0.0/16",
        ),
        (
            "fd70:616c:6973::/48",
            "sandbox pool (network.subnet6) range fd70:616c:6973::/48",
        ),
        ("64:ff9b::a9fe:a9fe/128", "NAT64 form"),
        ("0.0.0.0/0", "internet setting"),
    ];
    for (cidr, want) in cases {
        let e = failure(
            &env,
            &[
                "rule", "add", "--tenant", "acme", "--allow", "--proto", "tcp", "--cidr", cidr,
            ],
        );
        assert!(
            e.contains(&format!("allow {cidr} overlaps the always-denied")),
            "{e}"
        );
        assert!(e.contains(want), "{cidr}: {e}");
        assert!(e.contains("palisade never lets a rule re-open it"), "{e}");
    }
    let e = failure(
        &env,
        &[
            "rule",
            "add",
            "--tenant",
            "acme",
            "--allow",
            "--proto",
            "tcp",
            "--cidr",
            "203.0.113.1/24",
        ],
    );
    assert!(e.contains("did you mean 203.0.113.0/24"), "{e}");
    let e = failure(
        &env,
        &[
            "rule",
            "add",
            "--tenant",
            "acme",
            "--deny",
            "--proto",
            "tcp",
            "--port",
            "0",
            "--cidr",
            "203.0.113.0/24",
        ],
    );
    assert!(e.contains("1 to 65535"), "{e}");
    // Nothing was stored, and nothing touched the kernel.
    assert!(env
        .json(&["rule", "list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
    for set in ["rule_allow4", "rule_allow6"] {
        assert!(set_elements(&env, set).is_empty());
    }
    // Defence in depth: an allow element for the metadata service put into
    // the kernel behind palisade's back still reaches nothing, because the
    // blocked drops come first.
    let world = env.lab.add_world().unwrap();
    let md = tcp_listener(&world.path(), World::METADATA4, 80);
    let s = env.name("s");
    env.ok(&["sandbox", "create", &s, "--tenant", "acme", "--internet"]);
    let mark = set_elements(&env, "tenant4")[0]
        .split(" : ")
        .nth(1)
        .unwrap()
        .to_string();
    nft(
        &env,
        &[
            "add",
            "element",
            "inet",
            "palisade",
            "rule_allow4",
            &format!("{{ {mark} . tcp . 80 . 169.254.169.254 }}"),
        ],
    );
    let outcome = tcp_connect(
        &palisade_link::netns_path(&s),
        SocketAddr::new(World::METADATA4.into(), 80),
        T,
    )
    .unwrap();
    assert!(!outcome.reached(), "{outcome:?}");
    assert!(
        md.arrivals().is_empty(),
        "metadata reached: {:?}",
        md.arrivals()
    );
    env.ok(&["sandbox", "destroy", &s]);
}

#[test]
fn rules_survive_a_lost_table_and_verify_sees_changed_elements() {
    let Some(env) = Env::new(
        "rules_survive_a_lost_table_and_verify_sees_changed_elements",
        CONFIG,
    ) else {
        return;
    };
    let net = Internet::new(&env, &[8080]);
    let s = env.name("s");
    env.ok(&["sandbox", "create", &s, "--tenant", "acme"]);
    env.ok(&[
        "rule",
        "add",
        "--tenant",
        "acme",
        "--allow",
        "--proto",
        "tcp",
        "--port",
        "8080",
        "--cidr",
        "203.0.113.0/24",
    ]);
    env.ok(&[
        "rule",
        "add",
        "--tenant",
        "acme",
        "--deny",
        "--proto",
        "udp",
        "--port",
        "5000-5100",
        "--cidr",
        "2001:db8::/32",
    ]);
    assert!(net.reaches(&s, World::INTERNET4, 8080));
    let ruleset = env.ok(&["ruleset"]);
    assert!(
        ruleset.contains(". tcp . 8080 . 203.0.113.0/24"),
        "{ruleset}"
    );
    assert!(
        ruleset.contains(". udp . 5000-5100 . 2001:db8::/32"),
        "{ruleset}"
    );
    let clean = env.ok(&["verify"]);
    assert!(clean.contains("kernel matches the store"), "{clean}");

    // The table is lost: init rebuilds it with the rules' elements.
    nft(&env, &["delete", "table", "inet", "palisade"]);
    env.ok(&["init"]);
    assert!(net.reaches(&s, World::INTERNET4, 8080));
    assert_eq!(set_elements(&env, "rule_allow4").len(), 1);
    assert_eq!(set_elements(&env, "rule_deny6").len(), 1);
    env.ok(&["verify"]);

    // A rule element deleted by hand is a difference, and so is one added.
    let element = set_elements(&env, "rule_allow4").remove(0);
    nft(
        &env,
        &[
            "delete",
            "element",
            "inet",
            "palisade",
            "rule_allow4",
            &format!("{{ {element} }}"),
        ],
    );
    let out = env.palisade(&["verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("missing element inet palisade rule_allow4"),
        "{stdout}"
    );
    assert!(!net.reaches(&s, World::INTERNET4, 8080));
    env.ok(&["init"]);
    env.ok(&["verify"]);
    let stray = element.replace("203.0.113.0/24", "198.51.100.0/24");
    nft(
        &env,
        &[
            "add",
            "element",
            "inet",
            "palisade",
            "rule_allow4",
            &format!("{{ {stray} }}"),
        ],
    );
    let out = env.palisade(&["verify", "--json"]);
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let diffs = report["differences"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "{report}");
    assert_eq!(diffs[0]["kind"], "unexpected");
    assert!(
        diffs[0]["object"].as_str().unwrap().contains("rule_allow4"),
        "{report}"
    );
    env.ok(&["init"]);
    env.ok(&["verify"]);
    env.ok(&["sandbox", "destroy", &s]);
}

#[test]
fn narrowing_rules_end_the_tenants_established_connections_they_forbid() {
    let Some(env) = Env::new(
        "narrowing_rules_end_the_tenants_established_connections_they_forbid",
        CONFIG,
    ) else {
        return;
    };
    let world = env.lab.add_world().unwrap();
    // One listener per port; `hold` accepts the connection it just made.
    let [denied, kept, allowed]: [TcpListener; 3] = world
        .run(|| [8443u16, 9443, 7443].map(|p| TcpListener::bind((World::INTERNET4, p)).unwrap()))
        .unwrap();
    let acme = env.name("acme");
    let beta = env.name("beta");
    let solo = env.name("solo");
    env.ok(&["sandbox", "create", &acme, "--tenant", "acme", "--internet"]);
    env.ok(&["sandbox", "create", &beta, "--tenant", "beta", "--internet"]);
    env.ok(&["sandbox", "create", &solo, "--tenant", "solo"]);

    // A deny rule added for acme ends acme's connection to what it denies,
    // in both directions, and keeps its other connection and beta's
    // connection to the same destination.
    let (mut held, mut held_server) = hold(&acme, &denied, 8443);
    let (mut kept_conn, mut kept_server) = hold(&acme, &kept, 9443);
    let (mut beta_conn, mut beta_server) = hold(&beta, &denied, 8443);
    let cidr = format!("{}/32", World::INTERNET4);
    env.ok(&[
        "rule", "add", "--tenant", "acme", "--deny", "--proto", "tcp", "--port", "8443", "--cidr",
        &cidr,
    ]);
    assert_eq!(send_and_read(&mut held, &mut held_server, b"x"), None);
    assert_eq!(send_and_read(&mut held_server, &mut held, b"y"), None);
    assert_eq!(
        send_and_read(&mut kept_conn, &mut kept_server, b"k"),
        Some(b"k".to_vec())
    );
    assert_eq!(
        send_and_read(&mut kept_server, &mut kept_conn, b"l"),
        Some(b"l".to_vec())
    );
    assert_eq!(
        send_and_read(&mut beta_conn, &mut beta_server, b"b"),
        Some(b"b".to_vec())
    );
    env.ok(&["verify"]);

    // An allow rule removed from solo's tenant (solo has no --internet)
    // ends the connection only that rule allowed.
    let v = env.json(&[
        "rule", "add", "--tenant", "solo", "--allow", "--proto", "tcp", "--port", "7443", "--cidr",
        &cidr, "--json",
    ]);
    let (mut solo_conn, mut solo_server) = hold(&solo, &allowed, 7443);
    env.ok(&["rule", "remove", "--tenant", "solo", &rule_id(&v)]);
    assert_eq!(send_and_read(&mut solo_conn, &mut solo_server, b"s"), None);
    assert_eq!(
        send_and_read(&mut beta_conn, &mut beta_server, b"c"),
        Some(b"c".to_vec())
    );
    env.ok(&["verify"]);

    // Removing an allow rule, refused: the rule is back with its id, the
    // generations as they were (`verify` compares the kernel's generation
    // elements with the store's), and the connection carries on.
    let add_allow = [
        "rule",
        "add",
        "--tenant",
        "solo",
        "--allow",
        "--proto",
        "tcp",
        "--port",
        "7443",
        "--cidr",
        cidr.as_str(),
        "--json",
    ];
    let id = rule_id(&env.json(&add_allow));
    let (mut solo_again, mut solo_again_server) = hold(&solo, &allowed, 7443);
    let remove = ["rule", "remove", "--tenant", "solo", id.as_str()];
    let out = env.palisade_env(&remove, &[("PALISADE_FAIL_AT", "rule-after-journal")]);
    assert!(!out.status.success());
    let listed = env.json(&["rule", "list", "--tenant", "solo", "--json"]);
    assert_eq!(rule_id(&listed[0]), id, "{listed}");
    env.ok(&["verify"]);
    assert_eq!(
        send_and_read(&mut solo_again, &mut solo_again_server, b"r"),
        Some(b"r".to_vec())
    );
    env.ok(&remove);
    assert_eq!(
        send_and_read(&mut solo_again, &mut solo_again_server, b"s"),
        None
    );
    // Killed before the kernel, and after it: either way the next command
    // finishes the removal, and the connection only the rule allowed ends.
    for point in ["rule-after-journal", "rule-after-kernel"] {
        let id = rule_id(&env.json(&add_allow));
        let (mut conn, mut server) = hold(&solo, &allowed, 7443);
        let remove = ["rule", "remove", "--tenant", "solo", id.as_str()];
        let out = env.palisade_env(&remove, &[("PALISADE_CRASH_AT", point)]);
        assert!(!out.status.success(), "{point}");
        let out = env.palisade(&["sandbox", "list"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("finished the interrupted change of rule"),
            "{point}: {stderr}"
        );
        let listed = env.json(&["rule", "list", "--tenant", "solo", "--json"]);
        assert!(listed.as_array().unwrap().is_empty(), "{point}: {listed}");
        env.ok(&["verify"]);
        assert_eq!(send_and_read(&mut conn, &mut server, b"q"), None, "{point}");
    }

    // Killed between the journal (which has the sandboxes' next generation)
    // and the kernel: the next command finishes the change, and verify
    // agrees with the store. acme's connection the new rule denies ends;
    // the one to a port still allowed carries on.
    let (mut open_conn, mut open_server) = hold(&acme, &allowed, 7443);
    let out = env.palisade_env(
        &[
            "rule", "add", "--tenant", "acme", "--deny", "--proto", "tcp", "--port", "9443",
            "--cidr", &cidr,
        ],
        &[("PALISADE_CRASH_AT", "rule-after-journal")],
    );
    assert!(!out.status.success());
    env.ok(&["sandbox", "list"]);
    env.ok(&["verify"]);
    assert_eq!(send_and_read(&mut kept_conn, &mut kept_server, b"z"), None);
    assert_eq!(
        send_and_read(&mut open_conn, &mut open_server, b"o"),
        Some(b"o".to_vec())
    );

    // A refused batch leaves the store's generations and the kernel as
    // they were (verify), and no rule.
    let beta_deny = [
        "rule",
        "add",
        "--tenant",
        "beta",
        "--deny",
        "--proto",
        "tcp",
        "--port",
        "8443",
        "--cidr",
        cidr.as_str(),
    ];
    let out = env.palisade_env(&beta_deny, &[("PALISADE_FAIL_AT", "rule-after-journal")]);
    assert!(!out.status.success());
    let listed = env.json(&["rule", "list", "--tenant", "beta", "--json"]);
    assert!(listed.as_array().unwrap().is_empty(), "{listed}");
    env.ok(&["verify"]);
    assert_eq!(
        send_and_read(&mut beta_conn, &mut beta_server, b"d"),
        Some(b"d".to_vec())
    );

    // Killed after the kernel has the rule and the next generations: the
    // next command closes the journal, verify agrees, the connection ends.
    let out = env.palisade_env(&beta_deny, &[("PALISADE_CRASH_AT", "rule-after-kernel")]);
    assert!(!out.status.success());
    env.ok(&["sandbox", "list"]);
    env.ok(&["verify"]);
    let listed = env.json(&["rule", "list", "--tenant", "beta", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(send_and_read(&mut beta_conn, &mut beta_server, b"e"), None);
}
