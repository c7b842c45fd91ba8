//! The markdown report: medians per k for every system, palisade's ratio to
//! each peer, palisade's own figures, the data plane, memory, and the
//! issue's targets with whether each was met.

use crate::series::{Point, Series};
use crate::{Outcome, System};
use std::fmt::Write;

fn series(outcomes: &[Outcome], system: System) -> Option<&Series> {
    outcomes
        .iter()
        .find(|o| o.system == system)
        .and_then(|o| o.series.as_ref())
}

fn point(s: Option<&Series>, k: usize) -> Option<&Point> {
    s?.points.iter().find(|p| p.k == k)
}

fn extra(p: Option<&Point>, name: &str) -> Option<f64> {
    p?.extra.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

fn cell(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() && v >= 100.0 => format!("{v:.0}"),
        Some(v) if v.is_finite() && v >= 10.0 => format!("{v:.1}"),
        Some(v) if v.is_finite() => format!("{v:.2}"),
        _ => "—".into(),
    }
}

/// A difference of two medians, which noise can make negative.
fn signed_cell(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() && v < 0.0 => format!("-{}", cell(Some(-v))),
        _ => cell(v),
    }
}

fn ratio(peer: Option<f64>, ours: Option<f64>) -> String {
    match (peer, ours) {
        (Some(p), Some(o)) if o > 0.0 => format!("{:.0}x", p / o),
        _ => "—".into(),
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    format!("{cores} cores ({cpu}), Linux {kernel}")
}

/// palisade's series, each with the name of its mode, the default
/// (bridge) first.
fn modes(outcomes: &[Outcome]) -> Vec<(System, &'static str, &Series)> {
    [
        (System::Palisade, "bridge mode"),
        (System::PalisadeRouted, "routed mode"),
    ]
    .into_iter()
    .filter_map(|(system, mode)| Some((system, mode, series(outcomes, system)?)))
    .collect()
}

type Check = fn(f64) -> bool;

/// The targets: what (`{k}` is the largest level), whether a
/// value meets it, and its unit; [`target_values`] gives the values in
/// this order.
const TARGETS: [(&str, Check, &str); 15] = [
    (
        "attach to an existing namespace at k = {k} ≤ 2 ms",
        |v| v <= 2.0,
        "ms",
    ),
    ("detach at k = {k} ≤ 2 ms", |v| v <= 2.0, "ms"),
    (
        "detach at k = {k}, amortised over a batch of {batch} with its deletion, ≤ 2 ms",
        |v| v <= 2.0,
        "ms",
    ),
    (
        "create with own namespace at k = {k} ≤ 5 ms",
        |v| v <= 5.0,
        "ms",
    ),
    (
        "destroy with own namespace at k = {k} ≤ 5 ms",
        |v| v <= 5.0,
        "ms",
    ),
    ("attach k = {k} ÷ k = 1 ≤ 1.5", |v| v <= 1.5, ""),
    ("detach k = {k} ÷ k = 1 ≤ 1.5", |v| v <= 1.5, ""),
    (
        "own-namespace create k = {k} ÷ k = 1 ≤ 1.5",
        |v| v <= 1.5,
        "",
    ),
    (
        "own-namespace destroy k = {k} ÷ k = 1 ≤ 1.5",
        |v| v <= 1.5,
        "",
    ),
    (
        "policy-only change at k = {k}, widening (internet on), ≤ 1 ms",
        |v| v <= 1.0,
        "ms",
    ),
    (
        "policy-only change at k = {k}, narrowing (internet off), ≤ 1 ms",
        |v| v <= 1.0,
        "ms",
    ),
    (
        "init reconciling k = {k} after the tables were deleted ≤ 1 s",
        |v| v <= 1000.0,
        "ms",
    ),
    ("verify of k = {k} ≤ 1 s", |v| v <= 1000.0, "ms"),
    (
        "data plane with the table loaded ÷ without (median of the rounds' ratios) ≥ 0.95",
        |v| v >= 0.95,
        "",
    ),
    (
        "RSS of the process holding k = {k} < 50 MiB",
        |v| v < 50.0,
        "MiB",
    ),
];

/// One mode's values for [`TARGETS`], in order.
fn target_values(s: &Series, dataplane: Option<f64>) -> Vec<Option<f64>> {
    let top = s.points.last();
    let first = s.points.iter().find(|p| p.k == 1);
    let at = |name: &str| extra(top, name);
    let rel = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    vec![
        top.map(|p| p.attach_ms),
        top.map(|p| p.detach_ms),
        at("detach_amortised_ms"),
        at("own_create_ms"),
        at("own_destroy_ms"),
        rel(top.map(|p| p.attach_ms), first.map(|p| p.attach_ms)),
        rel(top.map(|p| p.detach_ms), first.map(|p| p.detach_ms)),
        rel(at("own_create_ms"), extra(first, "own_create_ms")),
        rel(at("own_destroy_ms"), extra(first, "own_destroy_ms")),
        at("update_ms"),
        at("update_narrow_ms"),
        at("init_ms"),
        at("verify_ms"),
        dataplane,
        at("rss_mib"),
    ]
}

pub fn render(outcomes: &[Outcome], levels: &[usize], reps: usize) -> String {
    let pal = series(outcomes, System::Palisade);
    let routed = series(outcomes, System::PalisadeRouted);
    let nv = series(outcomes, System::Netavark);
    let cni = series(outcomes, System::Cni);
    let ipt = series(outcomes, System::Iptables);
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "Machine: {}. Medians of {reps} timed runs of the k-th attachment with k - 1 present; ms unless stated.\n", machine());

    for (title, pick) in [
        ("Attach one sandbox to a namespace that already exists (palisade: veth, addresses, routes, rules, store; netavark `setup`; CNI `ADD` of bridge + firewall + portmap; iptables: 3 calls, rules only)", true),
        ("Detach it again (netavark `teardown`, CNI `DEL`)", false),
    ] {
        let get = |p: Option<&Point>| p.map(|p| if pick { p.attach_ms } else { p.detach_ms });
        let cli = if pick { "cli_create_ms" } else { "cli_destroy_ms" };
        let _ = writeln!(w, "### {title}\n");
        let _ = writeln!(w, "| k | palisade (bridge mode, the default) | palisade, routed mode | palisade CLI | netavark | CNI plugins | iptables | netavark ÷ palisade | CNI ÷ palisade | iptables ÷ palisade |");
        let _ = writeln!(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for &k in levels {
            let ours = get(point(pal, k));
            let (a, b, c) = (get(point(nv, k)), get(point(cni, k)), get(point(ipt, k)));
            let _ = writeln!(
                w,
                "| {k} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(ours),
                cell(get(point(routed, k))),
                cell(extra(point(pal, k), cli)),
                cell(a),
                cell(b),
                cell(c),
                ratio(a, ours),
                ratio(b, ours),
                ratio(c, ours)
            );
        }
        let _ = writeln!(w);
    }

    for (_, mode, ms) in modes(outcomes) {
        let pal = Some(ms);
        let _ = writeln!(w, "### palisade's other figures ({mode})\n");
        let batch = palisade::engine::RETIRED_LINKS_BATCH;
        let _ = writeln!(w, "| k | create with own netns | destroy with own netns | detach amortised over a batch of {batch} (its deletion included; median of {} batches) | the same, of the {batch} oldest | policy change: widen | policy change: narrow (ends connections) | policy change (CLI) | verify | verify (CLI) | init after tables deleted | init, tables in place | engine open (before each CLI command) | engine resumed (before each daemon request) | RSS of the process holding k (MiB) | peak RSS of `palisade verify` (MiB) |", crate::palisade_subject::BATCH_REPS);
        let _ = writeln!(
            w,
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for &k in levels {
            let p = point(pal, k);
            let _ = writeln!(
                w,
                "| {k} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(extra(p, "own_create_ms")),
                cell(extra(p, "own_destroy_ms")),
                cell(extra(p, "detach_amortised_ms")),
                cell(extra(p, "detach_oldest_amortised_ms")),
                cell(extra(p, "update_ms")),
                cell(extra(p, "update_narrow_ms")),
                cell(extra(p, "cli_update_ms")),
                cell(extra(p, "verify_ms")),
                cell(extra(p, "cli_verify_ms")),
                cell(extra(p, "init_ms")),
                cell(extra(p, "init_in_place_ms")),
                cell(extra(p, "engine_open_ms")),
                cell(extra(p, "engine_resume_ms")),
                cell(extra(p, "rss_mib")),
                cell(extra(p, "cli_verify_peak_rss_mib")),
            );
        }
        let _ = writeln!(w);
    }

    let _ = writeln!(w, "### Tenant rule changes\n");
    let _ = writeln!(w, "A deny rule added narrows every sandbox of the tenant: each moves to its next policy generation in the rule's batch, so established connections the rule forbids end. Removing it is one element.\n");
    let _ = writeln!(
        w,
        "| k | sandboxes of the tenant | deny rule added | deny rule removed |"
    );
    let _ = writeln!(w, "|---:|---:|---:|---:|");
    for &k in levels {
        let p = point(pal, k);
        let _ = writeln!(
            w,
            "| {k} | {} | {} | {} |",
            extra(p, "tenant_members").map_or("—".to_string(), |n| format!("{n:.0}")),
            cell(extra(p, "tenant_deny_add_ms")),
            cell(extra(p, "tenant_deny_remove_ms")),
        );
    }
    let _ = writeln!(w);

    let _ = writeln!(
        w,
        "### palisade's attach beside the kernel's floor (the same namespace id, veth, addresses and routes, or bridge port, made directly, nothing else; same lab, same k)\n"
    );
    let _ = writeln!(
        w,
        "| k | {} |",
        modes(outcomes)
            .iter()
            .map(|(_, mode, _)| format!(
                "palisade attach ({mode}) | kernel floor ({mode}) | beyond the floor ({mode})"
            ))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(
        w,
        "|---:|{}",
        "---:|---:|---:|".repeat(modes(outcomes).len())
    );
    for &k in levels {
        let mut row = format!("| {k} |");
        for (_, _, ms) in modes(outcomes) {
            let p = point(Some(ms), k);
            let attach = p.map(|p| p.attach_ms);
            let floor = extra(p, "floor_attach_ms");
            let beyond = attach.zip(floor).map(|(a, f)| a - f);
            let _ = write!(
                row,
                " {} | {} | {} |",
                cell(attach),
                cell(floor),
                signed_cell(beyond)
            );
        }
        let _ = writeln!(w, "{row}");
    }
    let _ = writeln!(w);

    own_namespace_floor(w, outcomes, levels);

    let _ = writeln!(
        w,
        "### Data plane: one iperf3 TCP stream between two sandboxes\n"
    );
    let _ = writeln!(
        w,
        "| firewall | other sandboxes loaded | with (Gbit/s) | without (Gbit/s) | ratio of the medians | median of the rounds' ratios | rounds |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|");
    for o in outcomes {
        if let Some(r) = &o.dataplane {
            let (with, without, q) = r.medians();
            let what = match o.system {
                System::Palisade => "palisade (bridge mode, the default)",
                System::PalisadeRouted => "palisade, routed mode",
                System::Iptables => "iptables (a chain per sandbox)",
                _ => continue,
            };
            let _ = writeln!(
                w,
                "| {what} | {} | {with:.2} | {without:.2} | {q:.3} | {:.3} | {} |",
                o.dataplane_present,
                r.paired_median(),
                r.with.len()
            );
            if let (Some((alone, q)), Some(paired)) =
                (r.conntrack_medians(), r.conntrack_paired_median())
            {
                let _ = writeln!(
                    w,
                    "| conntrack alone (one rule: established accept), in the same runs | — | {alone:.2} | {without:.2} | {q:.3} | {paired:.3} | {} |",
                    r.conntrack.len()
                );
            }
        }
    }
    let _ = writeln!(w);

    let _ = writeln!(w, "### Targets\n");
    let modes = modes(outcomes);
    let kk = modes
        .first()
        .and_then(|(_, _, s)| s.points.last())
        .map_or(0, |p| p.k);
    let _ = writeln!(
        w,
        "| target | {} |",
        modes
            .iter()
            .map(|(_, mode, _)| format!("{mode} | met"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(w, "|---|{}", "---:|:---:|".repeat(modes.len()));
    let measured: Vec<Vec<Option<f64>>> = modes
        .iter()
        .map(|(system, _, s)| {
            let dataplane = outcomes
                .iter()
                .find(|o| o.system == *system)
                .and_then(|o| o.dataplane.as_ref())
                .map(|r| r.paired_median());
            target_values(s, dataplane)
        })
        .collect();
    for (i, (what, ok, unit)) in TARGETS.iter().enumerate() {
        let what = what.replace("{k}", &kk.to_string()).replace(
            "{batch}",
            &palisade::engine::RETIRED_LINKS_BATCH.to_string(),
        );
        let mut row = format!("| {what} |");
        for values in &measured {
            let (shown, met) = match values[i] {
                Some(v) if v.is_finite() => (
                    format!("{} {unit}", cell(Some(v))),
                    if ok(v) { "yes" } else { "**no**" },
                ),
                _ => ("—".into(), "not measured"),
            };
            let _ = write!(row, " {} | {met} |", shown.trim_end());
        }
        let _ = writeln!(w, "{row}");
    }
    let _ = writeln!(w);

    let notes: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            let why = o
                .failure
                .clone()
                .or_else(|| o.series.as_ref().and_then(|s| s.stopped.clone()))?;
            Some(format!("- {}: {why}", o.system.label()))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(w, "Not measured or not reached:\n");
        for n in notes {
            let _ = writeln!(w, "{n}");
        }
    }
    out
}

/// palisade's create and destroy with its own namespace beside the kernel's
/// floor for the same, at each k, and each column's ratio of the top k to
/// k = 1: what grows in the floor grows in the kernel.
fn own_namespace_floor(w: &mut String, outcomes: &[Outcome], levels: &[usize]) {
    const COLUMNS: [(&str, &str); 4] = [
        ("create", "own_create_ms"),
        ("floor create", "floor_own_create_ms"),
        ("destroy", "own_destroy_ms"),
        ("floor destroy", "floor_own_destroy_ms"),
    ];
    let modes = modes(outcomes);
    let _ = writeln!(
        w,
        "### palisade's create and destroy with its own namespace beside the kernel's floor (a new namespace and the floor's attach into it, then the namespace deleted; same lab, same k, back to back)\n"
    );
    let _ = writeln!(
        w,
        "| k | {} |",
        modes
            .iter()
            .flat_map(|(_, mode, _)| COLUMNS.iter().map(move |(c, _)| format!("{c} ({mode})")))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(w, "|---:|{}", "---:|".repeat(COLUMNS.len() * modes.len()));
    for &k in levels {
        let mut row = format!("| {k} |");
        for (_, _, ms) in &modes {
            let p = point(Some(ms), k);
            for (_, key) in COLUMNS {
                let _ = write!(row, " {} |", cell(extra(p, key)));
            }
        }
        let _ = writeln!(w, "{row}");
    }
    if let (Some(&top), true) = (levels.last(), levels.contains(&1)) {
        let mut row = format!("| {top} ÷ 1 |");
        for (_, _, ms) in &modes {
            for (_, key) in COLUMNS {
                let ratio = extra(point(Some(ms), top), key)
                    .zip(extra(point(Some(ms), 1), key))
                    .map(|(a, b)| a / b);
                let _ = write!(
                    row,
                    " {} |",
                    ratio.map_or("—".into(), |r| format!("{r:.2}"))
                );
            }
        }
        let _ = writeln!(w, "{row}");
    }
    let _ = writeln!(w);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_difference_keeps_its_sign_and_precision() {
        assert_eq!(signed_cell(Some(-0.123)), "-0.12");
        assert_eq!(signed_cell(Some(12.34)), "12.3");
        assert_eq!(signed_cell(None), "—");
    }

    #[test]
    fn the_own_namespace_table_gives_each_column_its_ratio_to_k_1() {
        let at = |k: usize, scale: f64| crate::series::Point {
            k,
            attach_ms: 1.0,
            detach_ms: 1.0,
            reps: 7,
            extra: [
                ("own_create_ms", 2.0),
                ("floor_own_create_ms", 1.0),
                ("own_destroy_ms", 0.5),
                ("floor_own_destroy_ms", 0.25),
            ]
            .iter()
            .map(|(n, v)| (n.to_string(), v * scale))
            .collect(),
        };
        let outcome = Outcome {
            system: System::Palisade,
            series: Some(crate::series::Series {
                system: "palisade".into(),
                points: vec![at(1, 1.0), at(10, 3.0)],
                stopped: None,
            }),
            dataplane: None,
            dataplane_present: 0,
            failure: None,
        };
        let mut table = String::new();
        own_namespace_floor(&mut table, &[outcome], &[1, 10]);
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(
            rows,
            [
                "| k | create (bridge mode) | floor create (bridge mode) | destroy (bridge mode) | floor destroy (bridge mode) |",
                "| 1 | 2.00 | 1.00 | 0.50 | 0.25 |",
                "| 10 | 6.00 | 3.00 | 1.50 | 0.75 |",
                "| 10 ÷ 1 | 3.00 | 3.00 | 3.00 | 3.00 |",
            ]
        );
    }
}
