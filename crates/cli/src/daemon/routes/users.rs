//! Users: admins manage them; an admin scoped to a tenant manages only
//! that tenant's users, and never makes an unscoped one.

use super::super::auth::password;
use super::super::auth::roles::{Permission, Principal, Refusal, Role};
use super::super::error::ApiError;
use super::super::middleware::Audit;
use super::super::state::{now, AppState};
use super::{refused, require, ApiJson};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use palisade_core::names::TenantName;
use palisade_core::server_config::SecurityPolicy;
use palisade_store::{Accounts, UserRecord};
use std::sync::Arc;

/// What the API shows of a user: never its hash or secrets.
#[derive(Debug, serde::Serialize)]
pub struct UserView {
    pub name: String,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub totp: bool,
    pub created_at: String,
    pub password_changed_at: String,
    /// Unix seconds until which logins are refused, when locked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
}

impl UserView {
    pub fn new(u: &UserRecord, locked_until: Option<i64>) -> UserView {
        UserView {
            name: u.name.clone(),
            role: u.role.clone(),
            tenant: u.tenant.clone(),
            totp: u.totp_secret.is_some(),
            created_at: u.created_at.clone(),
            password_changed_at: u.password_changed_at.clone(),
            locked_until,
        }
    }
}

/// User names: 1-64 characters of a-z, 0-9, '.', '_' and '-', starting
/// with a letter or digit.
pub fn check_user_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "user name {:?}: 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit",
            name.chars().take(80).collect::<String>()
        )))
    }
}

fn check_tenant(t: &str) -> Result<(), ApiError> {
    TenantName::new(t)
        .map(|_| ())
        .map_err(|e| ApiError::invalid(e.to_string()))
}

/// Adds a user after checking its name, role, tenant and password against
/// the policy. Used by the API and by `palisade user add`.
pub fn add_user(
    accounts: &mut Accounts,
    policy: &SecurityPolicy,
    name: &str,
    new_password: &str,
    role: Role,
    tenant: Option<&str>,
) -> Result<UserRecord, ApiError> {
    check_user_name(name)?;
    if let Some(t) = tenant {
        check_tenant(t)?;
    }
    policy.check_password(new_password).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
            e.to_string(),
        )
    })?;
    let hash =
        password::hash(new_password).map_err(|e| ApiError::internal("hashing the password", e))?;
    Ok(accounts.add_user(name, &hash, role.as_str(), tenant)?)
}

/// The user `name` as `me` may see it: other tenants' users do not exist.
fn visible(state: &AppState, me: &Principal, name: &str) -> Result<UserRecord, ApiError> {
    let user = state
        .accounts()
        .user(name)?
        .ok_or_else(|| ApiError::not_found(format_args!("user {name}")))?;
    let tenant = user.tenant.as_deref().unwrap_or("");
    if me.tenant.is_some() && !me.sees(tenant) {
        return Err(ApiError::not_found(format_args!("user {name}")));
    }
    Ok(user)
}

/// Refuses a change that would leave no unscoped admin: nobody could then
/// manage users or the policy through the API.
fn keep_an_admin(accounts: &Accounts, losing: &str) -> Result<(), ApiError> {
    let admins = accounts
        .users()?
        .into_iter()
        .filter(|u| u.role == "admin" && u.tenant.is_none() && u.name != losing)
        .count();
    if admins == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_admin",
            format!("{losing} is the last unscoped admin; add another first"),
        ));
    }
    Ok(())
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    require(&me, Permission::Administer)?;
    let t = now();
    let accounts = state.accounts();
    let mut out = Vec::new();
    for u in accounts.users()? {
        if me.tenant.is_some() && u.tenant != me.tenant {
            continue;
        }
        out.push(UserView::new(&u, accounts.locked_until(&u.name, t)?));
    }
    Ok(Json(out))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub name: String,
    pub password: String,
    pub role: Role,
    /// Scope the user to one tenant.
    #[serde(default)]
    pub tenant: Option<String>,
}

pub async fn add(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    ApiJson(req): ApiJson<UserCreate>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    audit.target(format!("user {}", req.name), req.tenant.as_deref());
    audit.detail("role", req.role);
    require(&me, Permission::Administer)?;
    // A scoped admin makes users of its own tenant only.
    let tenant = match (&me.tenant, req.tenant) {
        (Some(mine), None) => Some(mine.clone()),
        (Some(mine), Some(t)) if &t != mine => {
            return Err(refused(Refusal::Hidden, format_args!("tenant {t}")))
        }
        (_, t) => t,
    };
    state
        .blocking(move |s| {
            let policy = s.policy();
            let u = add_user(
                &mut s.accounts(),
                &policy,
                &req.name,
                &req.password,
                req.role,
                tenant.as_deref(),
            )?;
            Ok((StatusCode::CREATED, Json(UserView::new(&u, None))))
        })
        .await
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    require(&me, Permission::Administer)?;
    let u = visible(&state, &me, &name)?;
    let locked = state.accounts().locked_until(&name, now())?;
    Ok(Json(UserView::new(&u, locked)))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default)]
    pub role: Option<Role>,
    /// Scope to this tenant; `""` removes the scope.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Set a new password (revokes the user's tokens).
    #[serde(default)]
    pub password: Option<String>,
    /// Remove the user's second factor.
    #[serde(default)]
    pub reset_totp: bool,
    /// Lift a lockout.
    #[serde(default)]
    pub unlock: bool,
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<UserUpdate>,
) -> Result<Json<UserView>, ApiError> {
    audit.target(format!("user {name}"), None);
    audit.detail("role", req.role);
    audit.detail("tenant", &req.tenant);
    audit.detail("password_reset", req.password.is_some());
    audit.detail("reset_totp", req.reset_totp);
    audit.detail("unlock", req.unlock);
    require(&me, Permission::Administer)?;
    state
        .blocking(move |s| {
            let user = visible(s, &me, &name)?;
            let new_tenant = match req.tenant.as_deref() {
                None => user.tenant.clone(),
                Some("") => None,
                Some(t) => {
                    check_tenant(t)?;
                    Some(t.to_string())
                }
            };
            if me.tenant.is_some() && new_tenant != me.tenant {
                return Err(ApiError::forbidden(
                    "an admin scoped to a tenant keeps its users in that tenant",
                ));
            }
            let new_role = req
                .role
                .map(|r| r.as_str().to_string())
                .unwrap_or_else(|| user.role.clone());
            // Everything is checked (and the password hashed) before the
            // first write, so a refused request changes nothing.
            let new_hash = match &req.password {
                Some(p) => {
                    s.policy().check_password(p).map_err(|e| {
                        ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "weak_password",
                            e.to_string(),
                        )
                    })?;
                    Some(
                        password::hash(p)
                            .map_err(|e| ApiError::internal("hashing the password", e))?,
                    )
                }
                None => None,
            };
            let mut accounts = s.accounts();
            if (new_role != user.role || new_tenant != user.tenant)
                && user.role == "admin"
                && user.tenant.is_none()
            {
                keep_an_admin(&accounts, &name)?;
            }
            if new_role != user.role || new_tenant != user.tenant {
                accounts.set_role(&name, &new_role, new_tenant.as_deref())?;
            }
            if let Some(hash) = &new_hash {
                accounts.set_password(&name, hash)?;
            }
            if req.reset_totp {
                accounts.clear_totp(&name)?;
            }
            if req.unlock {
                accounts.unlock(&name)?;
            }
            let u = accounts
                .user(&name)?
                .ok_or_else(|| ApiError::not_found(format_args!("user {name}")))?;
            let locked = accounts.locked_until(&name, now())?;
            Ok(Json(UserView::new(&u, locked)))
        })
        .await
}

pub async fn remove(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    Path(name): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    audit.target(format!("user {name}"), None);
    require(&me, Permission::Administer)?;
    let user = visible(&state, &me, &name)?;
    let mut accounts = state.accounts();
    if user.role == "admin" && user.tenant.is_none() {
        keep_an_admin(&accounts, &name)?;
    }
    accounts.delete_user(&name)?;
    Ok(Json(UserView::new(&user, None)))
}
