//! Compliance reports for palisade, computed from live evidence.
//!
//! The daemon collects [`Evidence`] (the result of `palisade verify`, the
//! optional active probes, the audit log's state, the isolation policy, the
//! API users and authentication policy, and how the API is reachable). This
//! crate turns it into a [`Report`] for one [`Framework`] with [`evaluate`],
//! and renders that as Markdown ([`render_markdown`]) or as a self-contained
//! HTML page ([`render_html`]); the report itself serialises to JSON. Nothing
//! here does I/O or reads a clock.
//!
//! # How a control is judged
//!
//! A control is computed from a fixed list of facts (see
//! `docs/compliance.md`). Each fact contributes one evidence line and comes
//! out as *holds*, *bad*, *missing* or *not applicable*:
//!
//! - a control **fails** if any of its facts is bad or missing; missing
//!   evidence never passes (no `verify` result, an empty audit log, no
//!   users, no retention period);
//! - otherwise it **passes** if at least one of its facts holds; facts that
//!   do not apply (encryption in transit when the API is reachable only
//!   through a Unix socket or loopback, probes that were not run, port
//!   exposure when nothing is exposed) are named in the rationale;
//! - it is **not applicable** only if not one of its facts applies.
//!
//! ```
//! use palisade_compliance::{evaluate, Framework};
//! # fn evidence() -> palisade_compliance::Evidence {
//! #     serde_json::from_str(include_str!("../fixtures/healthy.json")).unwrap()
//! # }
//! let framework: Framework = "pci".parse().unwrap();
//! let report = evaluate(framework, &evidence());
//! assert_eq!(report.framework, "pci-dss-4.0");
//! assert!(palisade_compliance::render_markdown(&report).contains("## 1.3:"));
//! ```

mod evidence;
mod facts;
mod framework;
mod render;
mod report;

pub use evidence::{
    AccessEvidence, AuditEvidence, Evidence, IsolationEvidence, ProbeEvidence, TransportEvidence,
    UserEvidence, VerifyEvidence,
};
pub use facts::{
    BASELINE_PASSWORD_LENGTH, MAX_ACCESS_TOKEN_MINUTES, MAX_LOCKOUT_THRESHOLD, MIN_RETENTION_DAYS,
    STRONG_PASSWORD_CLASSES, STRONG_PASSWORD_LENGTH,
};
pub use framework::{Framework, UnknownFramework};
pub use render::{escape_html, escape_markdown, render_html, render_markdown};
pub use report::{evaluate, ControlResult, Report, Status, Summary};

#[cfg(test)]
mod tests;
