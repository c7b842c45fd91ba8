//! `sandbox update`: policy-only changes of a live sandbox, proven with
//! traffic to the lab's stand-in internet; a narrowing change also ends an
//! established connection; bad requests are refused with why; a crash
//! between the journal and the kernel is finished by the next command.

mod common;

use common::Env;
use palisade_lab::traffic::{tcp_connect, ProbeOutcome};
use palisade_lab::World;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
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
    let held_listener = world
        .run(|| TcpListener::bind((World::INTERNET4, 8443)).unwrap())
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
    ]);
    let before = env.json(&["sandbox", "show", &s, "--json"]);
    assert!(reaches(&s, 443));
    assert!(!reaches(&s, 80));

    // A connection that the narrowing below must end.
    let mut held = palisade_link::run_in_netns(&palisade_link::netns_path(&s), || {
        TcpStream::connect_timeout(&SocketAddr::new(World::INTERNET4.into(), 8443), T).unwrap()
    })
    .unwrap();
    let (mut server, _) = held_listener.accept().unwrap();
    server.set_read_timeout(Some(T)).unwrap();
    held.write_all(b"before").unwrap();
    let mut buf = [0u8; 16];
    let n = server.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"before");

    // Widen: port 80 too. Same address, same interface.
    let v = env.json(&["sandbox", "update", &s, "--allow", "tcp:80", "--json"]);
    assert_eq!(v["changed"], true);
    assert_eq!(v["sandbox"]["network"], before["network"]);
    assert_eq!(v["connections_forgotten"], 0);
    assert!(reaches(&s, 80));
    env.ok(&["verify", &s]);

    // Asking again changes nothing.
    let out = env.ok(&["sandbox", "update", &s, "--allow", "tcp:80"]);
    assert!(out.contains("nothing changed"), "{out}");

    // Narrow: 8443 revoked; the held connection ends with it.
    let v = env.json(&["sandbox", "update", &s, "--revoke", "tcp:8443", "--json"]);
    assert!(
        v["connections_forgotten"].as_u64().unwrap() >= 1,
        "the held connection was not forgotten: {v}"
    );
    let _ = held.write_all(b"after");
    match server.read(&mut buf) {
        Ok(n) if n > 0 => panic!(
            "data on a revoked connection still arrived: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        _ => {}
    }
    assert!(reaches(&s, 443));

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
