//! `sandbox update`: policy-only changes of a live sandbox, proven with
//! traffic to the lab's stand-in internet; a narrowing change also ends an
//! established connection it forbids, in both directions, while one it
//! still allows carries on; bad requests are refused with why; a crash
//! between the journal and the kernel is finished by the next command.

mod common;

use common::{hold, send_and_read, Env};
use palisade_lab::traffic::{tcp_connect, ProbeOutcome};
use palisade_lab::World;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

const T: Duration = Duration::from_millis(700);
const CONFIG: &str = "[network]\nuplink = \"up0\"\n";

/// True when a TCP connection from sandbox `name` to the internet host's
/// `port` is accepted.
fn reaches(name: &str, port: u16) -> bool {
    let dst = SocketAddr::new(World::INTERNET4.into(), port);
    matches!(
        tcp_connect(&palisade_link::netns_path(name), dst, T).unwrap(),
        ProbeOutcome::Connected
    )
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

#[test]
fn update_changes_policy_in_place_and_ends_what_it_no_longer_allows() {
    let Some(env) = Env::new(
        "update_changes_policy_in_place_and_ends_what_it_no_longer_allows",
        CONFIG,
    ) else {
        return;
    };
    let world = env.lab.add_world().unwrap();
    // Listeners on the stand-in internet host: 443 and 80 answer any
    // connection; 8443 also reads what arrives on its one connection.
    let listeners: Vec<TcpListener> = world
        .run(|| {
            [443u16, 80]
                .into_iter()
                .map(|p| TcpListener::bind((World::INTERNET4, p)).unwrap())
                .collect()
        })
        .unwrap();
    for l in listeners {
        std::thread::spawn(move || {
            for c in l.incoming() {
                drop(c);
            }
        });
    }
    let (held_listener, kept_listener) = world
        .run(|| {
            (
                TcpListener::bind((World::INTERNET4, 8443)).unwrap(),
                TcpListener::bind((World::INTERNET4, 9443)).unwrap(),
            )
        })
        .unwrap();

    let s = env.name("s");
    env.ok(&[
        "sandbox",
        "create",
        &s,
        "--tenant",
        "a",
        "--internet",
        "--allow",
        "tcp:443",
        "--allow",
        "tcp:8443",
        "--allow",
        "tcp:9443",
    ]);
    let before = env.json(&["sandbox", "show", &s, "--json"]);
    assert!(reaches(&s, 443));
    assert!(!reaches(&s, 80));

    // A connection the narrowing below must end, and one it must keep.
    let (mut held, mut held_server) = hold(&s, &held_listener, 8443);
    let (mut kept, mut kept_server) = hold(&s, &kept_listener, 9443);

    // Widen: port 80 too. Same address, same interface.
    let v = env.json(&["sandbox", "update", &s, "--allow", "tcp:80", "--json"]);
    assert_eq!(v["changed"], true);
    assert_eq!(v["sandbox"]["network"], before["network"]);
    assert_eq!(v["narrowed"], false);
    assert!(reaches(&s, 80));
    env.ok(&["verify", &s]);

    // Asking again changes nothing.
    let out = env.ok(&["sandbox", "update", &s, "--allow", "tcp:80"]);
    assert!(out.contains("nothing changed"), "{out}");

    // Narrow: 8443 revoked. Its connection ends both ways.
    let v = env.json(&["sandbox", "update", &s, "--revoke", "tcp:8443", "--json"]);
    assert_eq!(v["narrowed"], true, "{v}");
    env.ok(&["verify", &s]);
    // 9443 is still allowed: its connection carries on, also when the
    // first packet after the change is the outside's (a reply, judged
    // again by the sandbox's policy from the reply's side).
    assert_eq!(
        send_and_read(&mut kept_server, &mut kept, b"still in"),
        Some(b"still in".to_vec()),
        "a reply on a still-allowed connection was dropped"
    );
    assert_eq!(
        send_and_read(&mut kept, &mut kept_server, b"still out"),
        Some(b"still out".to_vec())
    );
    assert_eq!(
        send_and_read(&mut held_server, &mut held, b"in after"),
        None,
        "a reply on a revoked connection still reached the sandbox"
    );
    assert_eq!(
        send_and_read(&mut held, &mut held_server, b"out after"),
        None,
        "data on a revoked connection still left the sandbox"
    );
    assert!(reaches(&s, 443));

    // Narrowing again (9443 too) ends the kept connection as well.
    env.ok(&["sandbox", "update", &s, "--revoke", "tcp:9443"]);
    assert_eq!(send_and_read(&mut kept, &mut kept_server, b"x"), None);
    assert_eq!(send_and_read(&mut kept_server, &mut kept, b"y"), None);
    assert!(reaches(&s, 443) && reaches(&s, 80));

    // Refused, with why, and nothing changed by them.
    let e = failure(&env, &["sandbox", "update", &s, "--revoke", "udp:53"]);
    assert!(e.contains("udp:53 is not in its allow list"), "{e}");
    let e = failure(
        &env,
        &[
            "sandbox", "update", &s, "--revoke", "tcp:443", "--revoke", "tcp:80",
        ],
    );
    assert!(e.contains("--all-ports"), "{e}");
    let e = failure(&env, &["sandbox", "update", &s, "--no-internet"]);
    assert!(e.contains("allow list"), "{e}");
    let e = failure(&env, &["sandbox", "update", &s, "--allow", "tcp:99999"]);
    assert!(e.contains("99999"), "{e}");
    let e = failure(
        &env,
        &["sandbox", "update", &s, "--all-ports", "--allow", "tcp:22"],
    );
    assert!(e.contains("cannot be combined"), "{e}");
    let e = failure(&env, &["sandbox", "update", "nosuch", "--internet"]);
    assert!(e.contains("no sandbox named nosuch"), "{e}");
    let off = env.name("off");
    env.ok(&["sandbox", "create", &off, "--tenant", "a", "--kind", "none"]);
    let e = failure(&env, &["sandbox", "update", &off, "--internet"]);
    assert!(e.contains("networking disabled"), "{e}");
    assert!(reaches(&s, 80) && reaches(&s, 443));

    // Every port, then none.
    env.ok(&["sandbox", "update", &s, "--all-ports"]);
    assert!(reaches(&s, 80));
    env.ok(&["sandbox", "update", &s, "--no-internet"]);
    assert!(!reaches(&s, 443) && !reaches(&s, 80));
    let v = env.json(&["sandbox", "show", &s, "--json"]);
    assert_eq!(v["internet"], false, "{v}");
    env.ok(&["verify"]);

    // Killed between the journal and the kernel: the next command finishes
    // the change (the store has it), verify agrees, traffic follows.
    let out = env.palisade_env(
        &["sandbox", "update", &s, "--internet"],
        &[("PALISADE_CRASH_AT", "update-after-journal")],
    );
    assert!(!out.status.success());
    assert!(!reaches(&s, 443), "applied before the crash point");
    let out = env.palisade(&["sandbox", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("finished the interrupted policy change of sandbox"),
        "{stderr}"
    );
    assert!(reaches(&s, 443));
    env.ok(&["verify"]);

    // Fails closed: a refused batch leaves the previous policy in the store
    // and the kernel.
    let out = env.palisade_env(
        &["sandbox", "update", &s, "--no-internet"],
        &[("PALISADE_FAIL_AT", "update-after-journal")],
    );
    assert!(!out.status.success());
    let v = env.json(&["sandbox", "show", &s, "--json"]);
    assert_eq!(v["internet"], true, "{v}");
    assert!(reaches(&s, 443));
    env.ok(&["verify"]);

    env.ok(&["sandbox", "destroy", &s]);
    env.ok(&["sandbox", "destroy", &off]);
    env.assert_empty();
}
