//! Evaluation: evidence in, report out.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::evidence::Evidence;
use crate::facts::{Check, Outcome};
use crate::framework::Framework;

/// The status of a control, or of a whole report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every fact the control depends on holds (or does not apply), and at
    /// least one holds.
    Pass,
    /// At least one fact the control depends on is bad or missing.
    Fail,
    /// Not one fact the control depends on applies to this deployment.
    NotApplicable,
}

impl Status {
    /// `pass`, `fail` or `not_applicable`, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotApplicable => "not_applicable",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many controls came out in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Controls that pass.
    pub pass: usize,
    /// Controls that fail.
    pub fail: usize,
    /// Controls that do not apply.
    pub not_applicable: usize,
}

/// One evaluated control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlResult {
    /// The framework's id for the control (`CC6.1`, `1.3`, `SC-7`, `A.8.20`).
    pub id: String,
    /// A short title.
    pub title: String,
    /// The outcome.
    pub status: Status,
    /// One sentence saying why the control has its status.
    pub rationale: String,
    /// The evidence lines the status was computed from, each naming a fact
    /// and its value.
    pub evidence: Vec<String>,
}

/// A compliance report for one framework.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The framework's canonical id (`soc2`, `pci-dss-4.0`, ...).
    pub framework: String,
    /// The framework's title.
    pub framework_title: String,
    /// When the report was generated: the evidence's `collected_at`, since
    /// evaluation reads no clock. The caller may overwrite it.
    pub generated_at: String,
    /// Counts per status.
    pub summary: Summary,
    /// `fail` if any control fails, else `pass` if any passes, else
    /// `not_applicable`.
    pub overall: Status,
    /// Every control of the framework, in the framework's order.
    pub controls: Vec<ControlResult>,
    /// The evidence the report was computed from, as given.
    pub evidence: Evidence,
}

/// Evaluates every control of `framework` against `evidence`.
pub fn evaluate(framework: Framework, evidence: &Evidence) -> Report {
    let controls: Vec<ControlResult> = framework
        .defs()
        .iter()
        .map(|def| {
            let checks: Vec<Check> = def.facts.iter().map(|f| f.check(evidence)).collect();
            let (status, rationale) = judge(&checks);
            ControlResult {
                id: def.id.to_string(),
                title: def.title.to_string(),
                status,
                rationale,
                evidence: checks.into_iter().map(|c| c.line).collect(),
            }
        })
        .collect();
    let mut summary = Summary::default();
    for c in &controls {
        match c.status {
            Status::Pass => summary.pass += 1,
            Status::Fail => summary.fail += 1,
            Status::NotApplicable => summary.not_applicable += 1,
        }
    }
    let overall = if summary.fail > 0 {
        Status::Fail
    } else if summary.pass > 0 {
        Status::Pass
    } else {
        Status::NotApplicable
    };
    Report {
        framework: framework.id().to_string(),
        framework_title: framework.title().to_string(),
        generated_at: evidence.collected_at.clone(),
        summary,
        overall,
        controls,
        evidence: evidence.clone(),
    }
}

/// Status and rationale from a control's checks: any bad or missing fact
/// fails it; otherwise it passes if at least one fact holds, and is not
/// applicable if none applies. Parts that do not apply are named.
pub(crate) fn judge(checks: &[Check]) -> (Status, String) {
    if checks.is_empty() {
        return (
            Status::Fail,
            "Fails because missing evidence: nothing is known about it.".to_string(),
        );
    }
    let mut failures = Vec::new();
    let mut holds = Vec::new();
    let mut not_applicable = Vec::new();
    for c in checks {
        match &c.outcome {
            Outcome::Holds => holds.push(c.name),
            Outcome::Bad(why) => failures.push(why.clone()),
            Outcome::Missing(what) => failures.push(format!("missing evidence: {what}")),
            Outcome::NotApplicable(why) => not_applicable.push(format!("{} ({why})", c.name)),
        }
    }
    if !failures.is_empty() {
        return (
            Status::Fail,
            format!("Fails because {}.", failures.join("; ")),
        );
    }
    if holds.is_empty() {
        return (
            Status::NotApplicable,
            format!(
                "Not applicable: none of its parts applies: {}.",
                not_applicable.join("; ")
            ),
        );
    }
    let mut rationale = format!("Passes: every part holds ({})", holds.join(", "));
    if not_applicable.is_empty() {
        rationale.push('.');
    } else {
        rationale.push_str(&format!("; not applicable: {}.", not_applicable.join("; ")));
    }
    (Status::Pass, rationale)
}
