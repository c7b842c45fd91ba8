//! The security policy in force: password rules, session lifetimes,
//! lockout and rate limit.

use super::super::auth::roles::{Permission, Principal};
use super::super::error::ApiError;
use super::super::middleware::Audit;
use super::super::state::AppState;
use super::{require_global, ApiJson};
use axum::extract::State;
use axum::{Extension, Json};
use palisade_core::server_config::SecurityPolicy;
use std::sync::Arc;

pub async fn show(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
) -> Result<Json<SecurityPolicy>, ApiError> {
    require_global(&me, Permission::Read)?;
    Ok(Json(state.policy()))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    ApiJson(policy): ApiJson<SecurityPolicy>,
) -> Result<Json<SecurityPolicy>, ApiError> {
    audit.target("security policy", None);
    audit.detail("before", state.policy());
    audit.detail("after", &policy);
    require_global(&me, Permission::Administer)?;
    policy
        .validate()
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    state.set_policy(policy.clone())?;
    Ok(Json(policy))
}
