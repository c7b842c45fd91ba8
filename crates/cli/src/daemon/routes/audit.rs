//! The audit log: queries, the chain check and export. A user scoped to a
//! tenant sees only records of that tenant.

use super::super::auth::roles::{Permission, Principal};
use super::super::error::ApiError;
use super::super::middleware::Audit;
use super::super::state::AppState;
use super::{require, require_global, ApiQuery};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use palisade_store::{AuditFilter, AuditRecord, ChainReport, Outcome};
use std::sync::Arc;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// RFC 3339 time, inclusive.
    pub since: Option<String>,
    /// RFC 3339 time, exclusive.
    pub until: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub tenant: Option<String>,
    pub outcome: Option<Outcome>,
    /// The last seq of the previous page.
    pub after: Option<u64>,
    pub limit: Option<usize>,
}

#[derive(Debug, serde::Serialize)]
pub struct AuditPageView {
    pub items: Vec<AuditRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// The filter a principal may use: a scoped user's tenant replaces theirs;
/// `None` when the filter asks for another tenant (an empty answer).
fn filter(me: &Principal, q: AuditQuery, limit: usize) -> Option<AuditFilter> {
    let tenant = match me.list_scope(q.tenant.as_deref()) {
        Ok(t) => t.map(String::from),
        Err(_) => return None,
    };
    Some(AuditFilter {
        since: q.since,
        until: q.until,
        action: q.action,
        actor: q.actor,
        tenant,
        outcome: q.outcome,
        after_seq: q.after,
        limit,
    })
}

fn bad_filter(e: palisade_store::AuditError) -> ApiError {
    match e {
        palisade_store::AuditError::BadTime { .. } => ApiError::invalid(e.to_string()),
        other => ApiError::internal("reading the audit log", other),
    }
}

pub async fn query(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPageView>, ApiError> {
    require(&me, Permission::Read)?;
    let limit = super::page_size(q.limit)?;
    let Some(f) = filter(&me, q, limit) else {
        return Ok(Json(AuditPageView {
            items: Vec::new(),
            next: None,
        }));
    };
    state
        .blocking(move |s| {
            let page = s.audit_log().query(&f).map_err(bad_filter)?;
            Ok(Json(AuditPageView {
                items: page.records,
                next: page.next_after,
            }))
        })
        .await
}

pub async fn verify(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
) -> Result<Json<ChainReport>, ApiError> {
    audit.always();
    audit.target("audit chain", None);
    require_global(&me, Permission::Read)?;
    let report = state
        .blocking(|s| {
            s.audit_log()
                .verify()
                .map_err(|e| ApiError::internal("verifying the audit chain", e))
        })
        .await?;
    audit.detail("intact", report.intact);
    audit.detail("records_checked", report.records_checked);
    audit.detail(
        "problems",
        report.problems.len() as u64 + report.problems_omitted,
    );
    if !report.intact {
        audit.outcome(Outcome::Failure);
    }
    Ok(Json(report))
}

pub async fn export(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<impl IntoResponse, ApiError> {
    require(&me, Permission::Read)?;
    let body = match filter(&me, q, 0) {
        None => Vec::new(),
        Some(f) => {
            state
                .blocking(move |s| {
                    let mut out = Vec::new();
                    s.audit_log()
                        .export_jsonl(&f, &mut out)
                        .map_err(bad_filter)?;
                    Ok(out)
                })
                .await?
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body))
}
