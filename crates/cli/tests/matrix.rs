//! The policy matrix with real traffic (rules 1-6 and 8-9 of the README),
//! in both modes and with both inter-sandbox settings, IPv4 and IPv6.

use palisade::demo::scenario::{self, ScenarioOptions};
use palisade_core::config::Mode;
use std::time::Duration;

fn run(test: &str, tag: char, mode: Mode, same_tenant: bool, sandboxes_per_bridge: Option<u32>) {
    if !palisade_lab::root_or_skip(test) {
        return;
    }
    let opts = ScenarioOptions {
        mode,
        binary: env!("CARGO_BIN_EXE_palisade").into(),
        prefix: format!("mx{}{tag}", std::process::id()),
        timeout: Duration::from_millis(1000),
        same_tenant,
        sandboxes_per_bridge,
        progress: |m| eprintln!("  - {m}"),
    };
    let cells = scenario::run(&opts).expect("scenario runs");
    let table = palisade::demo::render(&cells, false);
    eprintln!("{table}");
    assert!(cells.len() > 70, "too few cells:\n{table}");
    // Both outcomes occur, so the matrix can tell them apart.
    assert!(cells
        .iter()
        .any(|c| c.observed == scenario::Verdict::Reached));
    assert!(cells
        .iter()
        .any(|c| c.observed == scenario::Verdict::Blocked));
    let bad: Vec<_> = cells.iter().filter(|c| !c.ok()).collect();
    assert!(
        bad.is_empty(),
        "cells that do not match the policy: {bad:#?}\n{table}"
    );
}

#[test]
fn routed_same_tenant() {
    run("routed_same_tenant", 'a', Mode::Routed, true, None);
}

#[test]
fn routed_deny() {
    run("routed_deny", 'b', Mode::Routed, false, None);
}

/// 4 sandboxes per bridge: each tenant has one sandbox on each of two
/// bridges, so every pair of the same tenant crosses bridges.
#[test]
fn bridge_same_tenant() {
    run("bridge_same_tenant", 'c', Mode::Bridge, true, Some(4));
}

#[test]
fn bridge_deny() {
    run("bridge_deny", 'd', Mode::Bridge, false, Some(4));
}

/// The default layout: all four on `palisade0`, same-tenant pairs on one
/// bridge.
#[test]
fn bridge_same_tenant_on_one_bridge() {
    run(
        "bridge_same_tenant_on_one_bridge",
        'e',
        Mode::Bridge,
        true,
        None,
    );
}
