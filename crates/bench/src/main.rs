//! `palisade-bench`: palisade side by side with netavark, the CNI reference
//! plugins and per-sandbox iptables chains, in throwaway lab namespaces.
//!
//! The parent process starts one child per system; each child moves itself
//! into a fresh network and mount namespace (the lab host, linked to
//! nothing), grows its system to each k, times it, and prints its figures
//! as JSON. The parent renders them as one markdown report. Nothing touches
//! the machine's own network namespace, and everything a child made dies
//! with it.

mod dataplane;
mod floor;
mod lab;
mod palisade_subject;
mod peers;
mod proc;
mod report;
mod series;
mod settle;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
enum System {
    /// palisade in bridge mode, its default (sandboxes spread over bridges
    /// of 512).
    Palisade,
    /// palisade in routed mode (a host route per sandbox).
    PalisadeRouted,
    Netavark,
    Cni,
    Iptables,
}

impl System {
    fn label(self) -> &'static str {
        match self {
            System::Palisade => "palisade",
            System::PalisadeRouted => "palisade-routed",
            System::Netavark => "netavark",
            System::Cni => "cni",
            System::Iptables => "iptables",
        }
    }

    /// What the system needs on the machine, or why it cannot run.
    fn missing(self) -> Option<String> {
        let need: Vec<String> = match self {
            System::Palisade | System::PalisadeRouted => {
                vec!["nft".into(), "iperf3".into(), "nsenter".into(), "ip".into()]
            }
            System::Netavark => vec![peers::netavark::BINARY.into(), "iptables".into()],
            System::Cni => peers::cni::PLUGINS
                .iter()
                .map(|p| format!("{}/{p}", peers::cni::PLUGIN_DIR))
                .chain(["iptables".to_string()])
                .collect(),
            System::Iptables => vec!["iptables".into(), "iperf3".into(), "nsenter".into()],
        };
        let missing: Vec<String> = need.into_iter().filter(|p| !on_path(p)).collect();
        (!missing.is_empty()).then(|| format!("not installed: {}", missing.join(", ")))
    }
}

fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).exists()))
        .unwrap_or(false)
}

/// palisade side by side with its peers at 1 to 10,000 sandboxes, in
/// throwaway lab namespaces (needs root). Prints a markdown report.
#[derive(Parser, Debug, Clone)]
#[command(name = "palisade-bench")]
struct Args {
    /// Numbers of sandboxes k at which to measure (the k-th is timed with
    /// k - 1 present).
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000,10000")]
    levels: Vec<usize>,
    /// Timed attach/detach repetitions at each k (medians are reported).
    #[arg(long, default_value_t = 11)]
    reps: usize,
    /// Seconds each peer may spend growing; a k it cannot reach in time is
    /// reported as not reached.
    #[arg(long, default_value_t = 240)]
    peer_budget: u64,
    /// Seconds palisade may spend growing.
    #[arg(long, default_value_t = 900)]
    palisade_budget: u64,
    /// Systems to run, in this order. Each waits for the machine to be
    /// quiet after the one before (the kernel frees a lab's namespaces in
    /// the background).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "netavark,cni,iptables,palisade,palisade-routed"
    )]
    systems: Vec<System>,
    /// Data plane rounds (each: one iperf3 run with and one without the
    /// firewall); 0 to skip.
    #[arg(long, default_value_t = 5)]
    dataplane_rounds: usize,
    /// Seconds per iperf3 run.
    #[arg(long, default_value_t = 3)]
    dataplane_seconds: u32,
    /// Also write the markdown report to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Also write the raw figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Internal: run one system inside a fresh lab and print JSON.
    #[arg(long, hide = true)]
    child: Option<System>,
}

/// What one child measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    system: System,
    series: Option<series::Series>,
    dataplane: Option<dataplane::Ratio>,
    /// Sandboxes present during the data plane runs.
    dataplane_present: usize,
    /// Why the system did not run or stopped, if it did.
    failure: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.child {
        Some(system) => child(system, &args),
        None => parent(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("palisade-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn parent(args: &Args) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("needs root: it creates network and mount namespaces (never touching the host's own network)");
    }
    let exe = std::env::current_exe()?;
    let mut outcomes = Vec::new();
    for (i, &system) in args.systems.iter().enumerate() {
        if i > 0 {
            settle::wait_until_quiet();
        }
        if let Some(why) = system.missing() {
            eprintln!("palisade-bench: {}: SKIPPED, {why}", system.label());
            outcomes.push(Outcome {
                system,
                series: None,
                dataplane: None,
                dataplane_present: 0,
                failure: Some(why),
            });
            continue;
        }
        eprintln!("palisade-bench: {} ...", system.label());
        let mut cmd = Command::new(&exe);
        cmd.arg("--child")
            .arg(system.label())
            .arg("--levels")
            .arg(join(&args.levels))
            .arg("--reps")
            .arg(args.reps.to_string())
            .arg("--peer-budget")
            .arg(args.peer_budget.to_string())
            .arg("--palisade-budget")
            .arg(args.palisade_budget.to_string())
            .arg("--dataplane-rounds")
            .arg(args.dataplane_rounds.to_string())
            .arg("--dataplane-seconds")
            .arg(args.dataplane_seconds.to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        let out = cmd.output().context("run a benchmark child")?;
        let outcome = if out.status.success() {
            serde_json::from_slice(&out.stdout).context("a benchmark child printed no result")?
        } else {
            Outcome {
                system,
                series: None,
                dataplane: None,
                dataplane_present: 0,
                failure: Some(format!("failed ({}); see its messages above", out.status)),
            }
        };
        outcomes.push(outcome);
    }
    let text = report::render(&outcomes, &args.levels, args.reps);
    println!("{text}");
    if let Some(path) = &args.out {
        std::fs::write(path, &text).with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&outcomes)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

fn join(levels: &[usize]) -> String {
    levels
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn child(system: System, args: &Args) -> Result<()> {
    lab::enter()?;
    let peer_budget = Duration::from_secs(args.peer_budget);
    let mut outcome = Outcome {
        system,
        series: None,
        dataplane: None,
        dataplane_present: 0,
        failure: None,
    };
    let levels = &args.levels;
    match system {
        System::Palisade | System::PalisadeRouted => {
            let mode = if system == System::Palisade {
                palisade_core::config::Mode::Bridge
            } else {
                palisade_core::config::Mode::Routed
            };
            let mut p = palisade_subject::Palisade::new(args.reps, mode)?;
            let s = series::run(
                system.label(),
                &mut p,
                levels,
                args.reps,
                Duration::from_secs(args.palisade_budget),
            )?;
            outcome.dataplane_present = s.points.last().map_or(0, |p| p.k - 1);
            outcome.series = Some(s);
            if args.dataplane_rounds > 0 {
                outcome.dataplane =
                    Some(p.dataplane(args.dataplane_rounds, args.dataplane_seconds)?);
            }
        }
        System::Netavark => {
            let mut n = peers::netavark::Netavark::new()?;
            outcome.series = Some(series::run(
                "netavark",
                &mut n,
                levels,
                args.reps,
                peer_budget,
            )?);
        }
        System::Cni => {
            let mut c = peers::cni::Cni::new();
            outcome.series = Some(series::run("cni", &mut c, levels, args.reps, peer_budget)?);
        }
        System::Iptables => {
            let mut t = peers::iptables::Iptables;
            let s = series::run("iptables", &mut t, levels, args.reps, peer_budget)?;
            outcome.dataplane_present = s.points.last().map_or(0, |p| p.k - 1);
            outcome.series = Some(s);
            if args.dataplane_rounds > 0 {
                outcome.dataplane = Some(iptables_dataplane(args)?);
            }
        }
    }
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

/// Throughput through the lab with the iptables peer's chains in FORWARD
/// against FORWARD emptied, alternating.
fn iptables_dataplane(args: &Args) -> Result<dataplane::Ratio> {
    let (client, server, ip) = dataplane::plain_pair()?;
    let pair = dataplane::Pair::start(client, server, ip)?;
    let saved = proc::run_quiet(Path::new("iptables-save"), &[])?;
    dataplane::alternate(
        &pair,
        args.dataplane_rounds,
        args.dataplane_seconds,
        "iptables",
        &[dataplane::Firewall::Loaded, dataplane::Firewall::Off],
        |state| {
            if state == dataplane::Firewall::Loaded {
                proc::run_timed(Path::new("iptables-restore"), &[], &[], Some(&saved))?;
            } else {
                proc::run_quiet(Path::new("iptables"), &["-w", "-F", "FORWARD"])?;
            }
            Ok(())
        },
    )
}
