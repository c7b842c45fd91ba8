//! The compliance report, built from evidence gathered for this request.

use super::super::auth::roles::{Permission, Principal};
use super::super::error::ApiError;
use super::super::evidence::{collect, Reachability};
use super::super::middleware::Audit;
use super::super::state::AppState;
use super::{require_global, ApiQuery};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use palisade_compliance::{evaluate, render_html, render_markdown, Framework, Status};
use std::sync::Arc;

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// soc2, pci-dss-4.0, nist-800-53 or iso27001-2022.
    pub framework: Option<String>,
    /// json (default), markdown or html.
    pub format: Option<String>,
}

pub async fn report(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    audit.always();
    audit.target("compliance report", None);
    audit.detail("framework", &q.framework);
    require_global(&me, Permission::Read)?;
    let framework: Framework = q
        .framework
        .as_deref()
        .ok_or_else(|| {
            ApiError::invalid(
                "framework is required (soc2, pci-dss-4.0, nist-800-53, iso27001-2022)",
            )
        })?
        .parse()
        .map_err(|e: palisade_compliance::UnknownFramework| ApiError::invalid(e.to_string()))?;
    let format = q.format.unwrap_or_else(|| "json".into());
    if !["json", "markdown", "html"].contains(&format.as_str()) {
        return Err(ApiError::invalid(format!(
            "format {format:?}: one of json, markdown, html"
        )));
    }
    let reach = Reachability {
        unix_socket: state.transport.unix_socket.is_some(),
        unix_socket_mode: state.transport.unix_socket_mode,
        tls: state.transport.tls,
        plain_tcp_loopback_only: state.transport.tls
            || state.transport.tcp.is_none_or(|a| a.ip().is_loopback()),
    };
    let st = state.clone();
    let evidence = state
        .engine(move |e| {
            // A snapshot: the accounts are not held while rules and the
            // chain are checked.
            let users = st.accounts().users()?;
            let log = st.audit_log();
            Ok(collect(e, &users, &log, &st.policy(), &reach))
        })
        .await?;
    let report = evaluate(framework, &evidence);
    audit.detail("overall", report.overall);
    audit.detail("failed", report.summary.fail);
    if report.overall == Status::Fail {
        audit.outcome(palisade_store::Outcome::Failure);
    }
    Ok(match format.as_str() {
        "markdown" => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            render_markdown(&report),
        )
            .into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            render_html(&report),
        )
            .into_response(),
        _ => Json(report).into_response(),
    })
}
