//! Tenants (made by their first sandbox or rule) and their custom firewall
//! rules.

use super::super::auth::roles::{Permission, Principal};
use super::super::error::ApiError;
use super::super::middleware::Audit;
use super::super::state::AppState;
use super::{refused, ApiJson};
use crate::engine::TenantRuleView;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use palisade_core::tenant_rule::TenantRule;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Default, serde::Serialize)]
pub struct TenantView {
    pub name: String,
    pub sandboxes: usize,
    pub rules: usize,
    /// Whether the configuration has defaults for it (`[tenants.NAME]`).
    pub configured: bool,
}

async fn tenants(state: &Arc<AppState>) -> Result<BTreeMap<String, TenantView>, ApiError> {
    let configured: Vec<String> = state.config.tenants.keys().map(|t| t.to_string()).collect();
    state
        .engine(move |e| {
            let mut out: BTreeMap<String, TenantView> = BTreeMap::new();
            for v in e.sandbox_views(None)? {
                tenant(&mut out, &v.tenant).sandboxes += 1;
            }
            for r in e.tenant_rules(None)? {
                tenant(&mut out, &r.tenant).rules += 1;
            }
            for name in configured {
                tenant(&mut out, &name).configured = true;
            }
            Ok(out)
        })
        .await
}

fn tenant<'a>(out: &'a mut BTreeMap<String, TenantView>, name: &str) -> &'a mut TenantView {
    out.entry(name.to_string()).or_insert_with(|| TenantView {
        name: name.to_string(),
        ..TenantView::default()
    })
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
) -> Result<Json<Vec<TenantView>>, ApiError> {
    me.require(Permission::Read)
        .map_err(|r| refused(r, "tenants"))?;
    let all = tenants(&state).await?;
    Ok(Json(
        all.into_values().filter(|t| me.sees(&t.name)).collect(),
    ))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    me.require_on(Permission::Read, &name)
        .map_err(|r| refused(r, format_args!("tenant {name}")))?;
    tenants(&state)
        .await?
        .remove(&name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format_args!("tenant {name}")))
}

pub async fn rules(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<Vec<TenantRuleView>>, ApiError> {
    me.require_on(Permission::Read, &name)
        .map_err(|r| refused(r, format_args!("tenant {name}")))?;
    let rules = state
        .engine(move |e| Ok(e.tenant_rules(Some(&name))?))
        .await?;
    Ok(Json(rules))
}

fn guard(me: &Principal, tenant: &str) -> Result<(), ApiError> {
    me.require_on(Permission::Operate, tenant)
        .map_err(|r| refused(r, format_args!("tenant {tenant}")))
}

pub async fn add_rule(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    Path(tenant): Path<String>,
    ApiJson(rule): ApiJson<TenantRule>,
) -> Result<(StatusCode, Json<TenantRuleView>), ApiError> {
    audit.target(format!("tenant {tenant} rules"), Some(&tenant));
    audit.detail("rule", rule);
    guard(&me, &tenant)?;
    let view = state
        .engine(move |e| Ok(e.add_tenant_rule(&tenant, rule)?))
        .await?;
    audit.detail("id", view.id);
    Ok((StatusCode::CREATED, Json(view)))
}

pub async fn remove_rule(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<TenantRuleView>, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format_args!("rule {id} of tenant {tenant}")))?;
    audit.target(format!("tenant {tenant} rule {id}"), Some(&tenant));
    guard(&me, &tenant)?;
    let view = state
        .engine(move |e| Ok(e.remove_tenant_rule(&tenant, id)?))
        .await?;
    audit.detail("rule", view.rule());
    Ok(Json(view))
}
