//! `palisade demo`: the policy matrix, proven with real traffic in a
//! throwaway lab, printed as expected versus observed.

pub mod scenario;

use anyhow::{bail, Result};
use palisade_core::config::Mode;
use scenario::{Cell, ScenarioOptions};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Attachment mode to demonstrate (bridge, palisade's default, or
    /// routed).
    #[arg(long, default_value = "bridge", value_parser = parse_mode)]
    pub mode: Mode,
    /// How long a probe waits before a connection counts as dropped, in
    /// milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub timeout_ms: u64,
    /// Run with `inter_sandbox = "deny"` (no sandbox reaches another, even of
    /// its own tenant) instead of `"same-tenant"`.
    #[arg(long)]
    pub deny_same_tenant: bool,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    Mode::from_name(s).ok_or_else(|| format!("{s:?} is not a mode (bridge or routed)"))
}

fn progress(msg: &str) {
    eprintln!("  - {msg}");
}

pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("palisade demo needs root: it creates throwaway network namespaces (your host's own network is not touched)");
    }
    if args.timeout_ms == 0 {
        bail!("--timeout-ms must be at least 1");
    }
    eprintln!("palisade demo: everything below happens in throwaway network namespaces");
    let opts = ScenarioOptions {
        mode: args.mode,
        binary: std::env::current_exe()?,
        prefix: format!("demo{}", std::process::id()),
        timeout: Duration::from_millis(args.timeout_ms),
        same_tenant: !args.deny_same_tenant,
        sandboxes_per_bridge: None,
        progress,
    };
    let cells = scenario::run(&opts)?;
    let colour = std::io::stdout().is_terminal();
    print!("{}", render(&cells, colour));
    let failed = cells.iter().filter(|c| !c.ok()).count();
    if failed == 0 {
        println!(
            "all {} cells match the policy; the lab has been removed",
            cells.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} of {} cells do NOT match the policy", cells.len());
        Ok(ExitCode::from(1))
    }
}

/// The matrix as a table; `colour` adds ANSI colours for a terminal.
pub fn render(cells: &[Cell], colour: bool) -> String {
    let paint = |text: String, ok: bool| {
        if colour {
            format!("\x1b[{}m{text}\x1b[0m", if ok { "32" } else { "1;31" })
        } else {
            text
        }
    };
    let w_from = cells.iter().map(|c| c.from.len()).max().unwrap_or(4).max(4);
    let w_to = cells.iter().map(|c| c.to.len()).max().unwrap_or(2).max(2);
    let mut out = format!(
        "\n{:<w_from$}  {:<w_to$}  {:>4}  {:<8}  {:<8}  RESULT\n",
        "FROM", "TO", "RULE", "EXPECTED", "OBSERVED"
    );
    for c in cells {
        let result = if c.ok() {
            "ok".to_string()
        } else {
            format!("MISMATCH ({})", c.detail)
        };
        out.push_str(&format!(
            "{:<w_from$}  {:<w_to$}  {:>4}  {:<8}  {:<8}  {}\n",
            c.from,
            c.to,
            c.rule,
            c.expected.to_string(),
            c.observed.to_string(),
            paint(result, c.ok())
        ));
    }
    out.push('\n');
    out
}
