//! The attachment mode: bridge on a new host, recorded by the store, kept
//! for a configuration that names none, refused when the configuration
//! names another while sandboxes are attached, switched (bridges deleted)
//! when none is, and inferred for sandboxes an earlier palisade made.

mod common;

use common::Env;

const ROUTED: &str = "[network]\nmode = \"routed\"\n";
const BRIDGE: &str = "[network]\nmode = \"bridge\"\n";
const UNNAMED: &str = "";

fn use_config(env: &Env, text: &str) {
    std::fs::write(env.dir.join("palisade.toml"), text).unwrap();
}

fn mode(env: &Env) -> String {
    env.json(&["status", "--json"])["mode"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Interfaces of the lab host named `palisade...` (bridge mode's bridges).
fn bridges(env: &Env) -> Vec<String> {
    env.lab_ok("ip", &["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_string())
        .filter(|n| n.starts_with("palisade"))
        .collect()
}

fn state_db(env: &Env) -> rusqlite::Connection {
    rusqlite::Connection::open(env.dir.join("state").join("palisade.db")).unwrap()
}

/// The store without a recorded mode and a configuration that names none,
/// as a palisade from before the record left a host; then a command.
fn as_an_earlier_palisade_left_it(env: &Env) {
    state_db(env)
        .execute("DELETE FROM meta WHERE key = 'network_mode'", [])
        .unwrap();
    use_config(env, UNNAMED);
    env.ok(&["verify"]);
}

fn recorded_mode(env: &Env) -> Option<String> {
    state_db(env)
        .query_row(
            "SELECT value FROM meta WHERE key = 'network_mode'",
            [],
            |r| r.get(0),
        )
        .ok()
}

#[test]
fn a_new_host_is_bridged_and_keeps_the_mode_its_sandboxes_were_made_in() {
    let Some(env) = Env::new(
        "a_new_host_is_bridged_and_keeps_the_mode_its_sandboxes_were_made_in",
        UNNAMED,
    ) else {
        return;
    };
    // A new host with no mode named: bridge, recorded at once.
    env.ok(&["init"]);
    assert_eq!(mode(&env), "bridge");
    assert_eq!(recorded_mode(&env).as_deref(), Some("bridge"));
    assert_eq!(bridges(&env), ["palisade0"]);
    let a = env.name("a");
    env.ok(&["sandbox", "create", &a, "--tenant", "t"]);
    let show = env.json(&["sandbox", "show", &a, "--json"]);
    assert_eq!(show["network"]["bridge"], "palisade0", "{show}");

    // Naming the other mode while a sandbox is attached: refused, with
    // the way out, and nothing changes.
    use_config(&env, ROUTED);
    for args in [vec!["init"], vec!["sandbox", "list"]] {
        let out = env.palisade(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} succeeded in the other mode"
        );
        assert!(
            err.contains(
                "network.mode is routed, but the 1 sandbox(es) here are attached in bridge mode"
            ) && err.contains("set network.mode = \"bridge\""),
            "{args:?}: {err}"
        );
    }
    use_config(&env, UNNAMED);
    assert_eq!(mode(&env), "bridge");
    env.ok(&["verify"]);
    assert_eq!(recorded_mode(&env).as_deref(), Some("bridge"));

    // With none attached (a sandbox without networking does not count),
    // the named mode is taken: leaving bridge mode deletes the bridges.
    env.ok(&["sandbox", "destroy", &a]);
    let quiet = env.name("quiet");
    env.ok(&[
        "sandbox", "create", &quiet, "--tenant", "t", "--kind", "none",
    ]);
    use_config(&env, ROUTED);
    env.ok(&["init"]);
    assert_eq!(mode(&env), "routed");
    assert_eq!(recorded_mode(&env).as_deref(), Some("routed"));
    assert_eq!(bridges(&env), Vec::<String>::new());
    let b = env.name("b");
    env.ok(&["sandbox", "create", &b, "--tenant", "t"]);
    let show = env.json(&["sandbox", "show", &b, "--json"]);
    assert!(show["network"]["bridge"].is_null(), "{show}");

    // The name taken out again: the recorded mode (routed) stays in force
    // for the routed sandbox, not the default.
    use_config(&env, UNNAMED);
    assert_eq!(mode(&env), "routed");
    env.ok(&["verify"]);
    use_config(&env, BRIDGE);
    let out = env.palisade(&["verify"]);
    assert!(
        !out.status.success(),
        "bridge mode taken over a routed sandbox"
    );
    use_config(&env, UNNAMED);
    env.ok(&["sandbox", "destroy", &b]);
    env.ok(&["sandbox", "destroy", &quiet]);
    env.assert_empty();
}

#[test]
fn sandboxes_of_a_palisade_that_recorded_no_mode_keep_theirs() {
    let Some(env) = Env::new(
        "sandboxes_of_a_palisade_that_recorded_no_mode_keep_theirs",
        ROUTED,
    ) else {
        return;
    };
    env.ok(&["init"]);
    let a = env.name("a");
    env.ok(&["sandbox", "create", &a, "--tenant", "t"]);
    // As an earlier palisade left it: routed sandboxes, no mode recorded,
    // and a configuration that names none (routed was its default).
    as_an_earlier_palisade_left_it(&env);
    assert_eq!(mode(&env), "routed");
    assert_eq!(recorded_mode(&env).as_deref(), Some("routed"));
    assert_eq!(bridges(&env), Vec::<String>::new());
    env.ok(&["sandbox", "destroy", &a]);

    // An earlier bridge-mode host recorded its bridge layout: bridge.
    use_config(&env, BRIDGE);
    env.ok(&["init"]);
    let b = env.name("b");
    env.ok(&["sandbox", "create", &b, "--tenant", "t"]);
    as_an_earlier_palisade_left_it(&env);
    assert_eq!(mode(&env), "bridge");
    env.ok(&["sandbox", "destroy", &b]);
    env.assert_empty();
}
