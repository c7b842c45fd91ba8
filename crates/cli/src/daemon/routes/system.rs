//! The API's document, liveness, verification and status.

use super::super::auth::roles::{Permission, Principal};
use super::super::error::ApiError;
use super::super::middleware::Audit;
use super::super::state::AppState;
use super::{require, require_global, OptionalJson};
use crate::engine::{ProbeOptions, StatusView, DEFAULT_INTERNET_TARGETS};
use axum::extract::State;
use axum::{Extension, Json};
use palisade_store::Outcome;
use std::sync::Arc;
use std::time::Duration;

pub async fn openapi() -> Json<serde_json::Value> {
    Json(super::super::openapi::document())
}

pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Only this sandbox (required for users scoped to a tenant).
    #[serde(default)]
    pub sandbox: Option<String>,
    /// Also send real traffic from inside the sandboxes.
    #[serde(default)]
    pub probe: bool,
    /// How long each probe waits, 50-10000 ms (default 500).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

pub async fn verify(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    OptionalJson(req): OptionalJson<VerifyRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    audit.always();
    audit.target(
        req.sandbox
            .as_ref()
            .map(|s| format!("sandbox {s}"))
            .unwrap_or_else(|| "all sandboxes".into()),
        None,
    );
    audit.detail("probe", req.probe);
    require(&me, Permission::Operate)?;
    let timeout = req.timeout_ms.unwrap_or(500);
    if !(50..=10_000).contains(&timeout) {
        return Err(ApiError::invalid(format!(
            "timeout_ms = {timeout}: must be between 50 and 10000"
        )));
    }
    if me.tenant.is_some() && req.sandbox.is_none() {
        return Err(ApiError::invalid(
            "a user scoped to a tenant verifies one of its sandboxes at a time: give sandbox",
        ));
    }
    let audit_in = audit.clone();
    let (ok, report) = state
        .engine(move |e| {
            if let Some(name) = &req.sandbox {
                let view = e.sandbox_view(name)?;
                if !me.sees(&view.tenant) {
                    // Recorded exactly as a sandbox that does not exist.
                    return Err(ApiError::not_found(format_args!("sandbox {name}")));
                }
                audit_in.target(format!("sandbox {name}"), Some(&view.tenant));
            }
            if req.probe {
                let opts = ProbeOptions {
                    timeout: Duration::from_millis(timeout),
                    internet_targets: DEFAULT_INTERNET_TARGETS.to_vec(),
                };
                let r = e.probe(req.sandbox.as_deref(), &opts)?;
                audit_in.detail("differences", r.rules.differences.len());
                audit_in.detail("probes", r.probes);
                audit_in.detail("matched", r.matched);
                Ok((r.ok(), serde_json::to_value(&r)))
            } else {
                let r = e.verify(req.sandbox.as_deref())?;
                audit_in.detail("differences", r.differences.len());
                Ok((r.ok(), serde_json::to_value(&r)))
            }
        })
        .await?;
    audit.detail("ok", ok);
    if !ok {
        audit.outcome(Outcome::Failure);
    }
    let mut report = report.map_err(|e| ApiError::internal("encoding the report", e))?;
    report["ok"] = ok.into();
    Ok(Json(report))
}

pub async fn status(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
) -> Result<Json<StatusView>, ApiError> {
    require_global(&me, Permission::Read)?;
    Ok(Json(state.engine(|e| Ok(e.status()?)).await?))
}
