//! Sandboxes and their exposures. Every check of a sandbox's tenant runs
//! inside the same engine turn as the change it guards, so a sandbox cannot
//! be swapped for another tenant's between the check and the change.

use super::super::auth::roles::{Permission, Principal};
use super::super::error::ApiError;
use super::super::middleware::Audit;
use super::super::state::AppState;
use super::{page_size, refused, ApiJson, ApiQuery, Page};
use crate::engine::{
    CreateRequest, DestroyOutcome, Engine, ExposeRequest, SandboxView, UpdateRequest,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use palisade_core::exposure::Exposure;
use palisade_core::model::SandboxKind;
use std::sync::Arc;

/// The sandbox `name` if `me` may act on it with `perm`; another tenant's
/// sandbox is "not found", like one that does not exist.
fn sandbox_for(
    engine: &Engine,
    me: &Principal,
    perm: Permission,
    name: &str,
    audit: &Audit,
) -> Result<SandboxView, ApiError> {
    // A scoped user must not tell a missing sandbox from another tenant's,
    // not even from its own audit records: both are recorded alike, under
    // the user's tenant, until the check has passed.
    audit.target(format!("sandbox {name}"), None);
    let view = engine.sandbox_view(name)?;
    me.require_on(perm, &view.tenant)
        .map_err(|r| refused(r, format_args!("sandbox {name}")))?;
    audit.target(format!("sandbox {name}"), Some(&view.tenant));
    Ok(view)
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub tenant: Option<String>,
    pub kind: Option<String>,
    pub state: Option<String>,
    pub limit: Option<usize>,
    /// The last name of the previous page.
    pub after: Option<String>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<SandboxView>>, ApiError> {
    let limit = page_size(q.limit)?;
    if let Some(k) = &q.kind {
        k.parse::<SandboxKind>().map_err(ApiError::invalid)?;
    }
    let scope = match me.list_scope(q.tenant.as_deref()) {
        Ok(scope) => scope.map(String::from),
        // Another tenant's list is an empty one.
        Err(_) => {
            return Ok(Json(Page {
                items: Vec::new(),
                next: None,
            }))
        }
    };
    let mut views = state
        .engine(move |e| Ok(e.sandbox_views(scope.as_deref())?))
        .await?;
    views.retain(|v| {
        q.kind.as_deref().is_none_or(|k| v.kind == k)
            && q.state.as_deref().is_none_or(|s| v.state == s)
            && q.after.as_deref().is_none_or(|a| v.name.as_str() > a)
    });
    views.sort_by(|a, b| a.name.cmp(&b.name));
    let more = views.len() > limit;
    views.truncate(limit);
    let next = more.then(|| views.last().map(|v| v.name.clone())).flatten();
    Ok(Json(Page { items: views, next }))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxCreate {
    pub name: String,
    /// Defaults to the user's tenant for a scoped user.
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(default)]
    pub internet: bool,
    /// `PROTO:PORT` pairs narrowing internet egress.
    #[serde(default)]
    pub allow: Vec<String>,
}

fn default_kind() -> String {
    "netns".into()
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    ApiJson(req): ApiJson<SandboxCreate>,
) -> Result<(StatusCode, Json<SandboxView>), ApiError> {
    let tenant = req
        .tenant
        .clone()
        .or_else(|| me.tenant.clone())
        .ok_or_else(|| ApiError::invalid("tenant is required"))?;
    audit.target(format!("sandbox {}", req.name), Some(&tenant));
    audit.detail("kind", &req.kind);
    audit.detail("internet", req.internet);
    audit.detail("allow", &req.allow);
    me.require_on(Permission::Operate, &tenant)
        .map_err(|r| refused(r, format_args!("tenant {tenant}")))?;
    let kind: SandboxKind = req.kind.parse().map_err(ApiError::invalid)?;
    let request = CreateRequest {
        name: req.name,
        tenant,
        kind,
        internet: req.internet,
        allow: req.allow,
    };
    let view = state.engine(move |e| Ok(e.create(&request)?)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    Path(name): Path<String>,
) -> Result<Json<SandboxView>, ApiError> {
    let view = state
        .engine(move |e| sandbox_for(e, &me, Permission::Read, &name, &audit))
        .await?;
    Ok(Json(view))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxUpdate {
    /// Turn internet egress on or off.
    #[serde(default)]
    pub internet: Option<bool>,
    /// `PROTO:PORT` rules to add.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Rules to remove.
    #[serde(default)]
    pub revoke: Vec<String>,
    /// Empty the allow list (every port, when internet is on).
    #[serde(default)]
    pub all_ports: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct SandboxUpdated {
    pub sandbox: SandboxView,
    pub changed: bool,
    pub narrowed: bool,
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<SandboxUpdate>,
) -> Result<Json<SandboxUpdated>, ApiError> {
    audit.detail("internet", req.internet);
    audit.detail("allow", &req.allow);
    audit.detail("revoke", &req.revoke);
    audit.detail("all_ports", req.all_ports);
    let request = UpdateRequest {
        internet: req.internet,
        allow: req.allow,
        revoke: req.revoke,
        all_ports: req.all_ports,
    };
    let outcome = state
        .engine(move |e| {
            sandbox_for(e, &me, Permission::Operate, &name, &audit)?;
            Ok(e.update(&name, &request)?)
        })
        .await?;
    Ok(Json(SandboxUpdated {
        sandbox: outcome.sandbox,
        changed: outcome.changed,
        narrowed: outcome.narrowed,
    }))
}

pub async fn destroy(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    Path(name): Path<String>,
) -> Result<Json<SandboxView>, ApiError> {
    state
        .engine(move |e| {
            sandbox_for(e, &me, Permission::Operate, &name, &audit)?;
            match e.destroy(&name)? {
                DestroyOutcome::Destroyed(view) => Ok(Json(*view)),
                DestroyOutcome::NotFound => {
                    Err(ApiError::not_found(format_args!("sandbox {name}")))
                }
            }
        })
        .await
}

pub async fn exposures(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    Path(name): Path<String>,
) -> Result<Json<Vec<Exposure>>, ApiError> {
    let view = state
        .engine(move |e| sandbox_for(e, &me, Permission::Read, &name, &audit))
        .await?;
    Ok(Json(view.exposures))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposureCreate {
    /// `PORT` or `FIRST-LAST` inside the sandbox.
    pub port: String,
    /// `PORT` or `FIRST-LAST` on the host; defaults to `port`.
    #[serde(default)]
    pub host_port: Option<String>,
    #[serde(default = "default_proto")]
    pub proto: String,
    /// One host address; all of them when absent.
    #[serde(default)]
    pub host_ip: Option<String>,
}

fn default_proto() -> String {
    "tcp".into()
}

#[derive(Debug, serde::Serialize)]
pub struct ExposureAdded {
    pub sandbox: SandboxView,
    pub exposure: Exposure,
}

pub async fn expose(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<ExposureCreate>,
) -> Result<(StatusCode, Json<ExposureAdded>), ApiError> {
    audit.detail("port", &req.port);
    audit.detail("host_port", &req.host_port);
    audit.detail("proto", &req.proto);
    audit.detail("host_ip", &req.host_ip);
    let request = ExposeRequest {
        sandbox: name.clone(),
        port: Some(req.port),
        host_port: req.host_port,
        proto: req.proto,
        host_ip: req.host_ip,
    };
    let (sandbox, exposure) = state
        .engine(move |e| {
            sandbox_for(e, &me, Permission::Operate, &name, &audit)?;
            Ok(e.expose(&request)?)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ExposureAdded { sandbox, exposure }),
    ))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnexposeQuery {
    pub proto: Option<String>,
    pub port: Option<String>,
    pub host_port: Option<String>,
    pub host_ip: Option<String>,
}

pub async fn unexpose(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<UnexposeQuery>,
) -> Result<Json<Vec<Exposure>>, ApiError> {
    audit.detail("port", &q.port);
    audit.detail("host_port", &q.host_port);
    audit.detail("proto", &q.proto);
    let request = ExposeRequest {
        sandbox: name.clone(),
        port: q.port,
        host_port: q.host_port,
        proto: q.proto.unwrap_or_else(default_proto),
        host_ip: q.host_ip,
    };
    let removed = state
        .engine(move |e| {
            sandbox_for(e, &me, Permission::Operate, &name, &audit)?;
            Ok(e.unexpose(&request)?)
        })
        .await?;
    Ok(Json(removed))
}
