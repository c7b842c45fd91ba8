//! Logging in and out, refreshing, changing one's password, and the
//! second factor.

use super::super::auth::roles::Principal;
use super::super::auth::{password, tokens, totp};
use super::super::error::ApiError;
use super::super::middleware::Audit;
use super::super::state::{now, AppState};
use super::users::{check_user_name, UserView};
use super::{ApiJson, OptionalJson};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use palisade_store::UserRecord;
use std::sync::Arc;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// The current TOTP code, for users with a second factor.
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds the access token is valid for.
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_expires_in: i64,
}

fn wrong_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "wrong user name, password or code")
}

/// One password verification at a time per core: each takes about 19 MiB
/// and a core's worth of time, and nobody should be able to queue
/// hundreds.
pub async fn argon2_turn() -> tokio::sync::SemaphorePermit<'static> {
    static TURNS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let permits = std::thread::available_parallelism().map_or(2, |n| n.get());
    TURNS
        .get_or_init(|| tokio::sync::Semaphore::new(permits))
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

/// Runs a credential check for the account name `name` under the lockout:
/// refused while locked; counted before it runs (so parallel guesses
/// count); forgotten on success; locks at the threshold on failure.
pub fn attempt(
    s: &AppState,
    name: &str,
    audit: &Audit,
    check: impl FnOnce() -> Result<bool, ApiError>,
) -> Result<(), ApiError> {
    let policy = s.policy();
    let lock = i64::from(policy.lockout_minutes) * 60;
    let t = now();
    let locked = s
        .accounts()
        .begin_login_attempt(name, t, policy.lockout_threshold, lock)?;
    if let Some(until) = locked {
        return Err(ApiError::too_many(
            "account_locked",
            format!(
                "too many failed logins for {name}; locked for {} more seconds",
                until - t
            ),
            (until - t) as u64,
        ));
    }
    match check() {
        Ok(true) => {
            s.accounts().clear_login_failures(name)?;
            Ok(())
        }
        Ok(false) => {
            let f = s
                .accounts()
                .fail_login_attempt(name, t, policy.lockout_threshold, lock)?;
            if f.locked_until > t {
                audit.detail("locked_until", f.locked_until);
            }
            // A wrong guess is a failed login; a refusal while locked (429)
            // is a denial.
            audit.outcome(palisade_store::Outcome::Failure);
            Err(wrong_credentials())
        }
        Err(e) => {
            // Not a wrong guess (a second factor is needed): uncount this
            // attempt only, so asking without a code never resets the count.
            s.accounts().uncount_login_attempt(name)?;
            Err(e)
        }
    }
}

/// Issues an access and a refresh token for `user`.
fn issue(state: &AppState, user: &UserRecord) -> Result<TokenPair, ApiError> {
    let policy = state.policy();
    let t = now();
    let access_ttl = i64::from(policy.access_token_minutes) * 60;
    let refresh_ttl = i64::from(policy.refresh_token_hours) * 3600;
    let (access_token, _) = state
        .keys
        .issue(&user.name, user.id, user.token_epoch, t, access_ttl)
        .map_err(|e| ApiError::internal("signing a token", e))?;
    let refresh_token =
        tokens::random_token(32).map_err(|e| ApiError::internal("making a refresh token", e))?;
    let mut accounts = state.accounts();
    accounts.insert_refresh(
        &tokens::refresh_hash(&refresh_token),
        user.id,
        t + refresh_ttl,
    )?;
    accounts.prune_expired(t)?;
    Ok(TokenPair {
        access_token,
        token_type: "Bearer",
        expires_in: access_ttl,
        refresh_token,
        refresh_expires_in: refresh_ttl,
    })
}

pub async fn login(
    State(state): State<Arc<AppState>>,
    Extension(audit): Extension<Audit>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    // Whatever the name, the attempt is recorded under it.
    let name: String = req.username.chars().take(64).collect();
    audit.actor(&name, None);
    audit.target(format!("user {name}"), None);
    check_user_name(&req.username)?;
    let audit_inner = audit.clone();
    let _turn = argon2_turn().await;
    state
        .blocking(move |s| {
            let t = now();
            let user = s.accounts().user(&name)?;
            let password_ok = |given: &str| match &user {
                Some(u) => password::verify(&u.password_hash, given),
                None => {
                    password::verify_dummy(given);
                    false
                }
            };
            let totp_ok =
                |code: Option<&String>| match user.as_ref().and_then(|u| u.totp_secret.as_ref()) {
                    None => Ok(true),
                    // Not a failure: the password was right, a code is simply
                    // needed.
                    Some(_) if code.is_none() => Err(ApiError::unauthorized(
                        "totp_required",
                        "this user has a second factor: send the current code as totp",
                    )),
                    Some(secret) => Ok(code.is_some_and(|c| totp::check(secret, c, t as u64))),
                };
            attempt(s, &name, &audit_inner, || {
                Ok(password_ok(&req.password) && totp_ok(req.totp.as_ref())?)
            })?;
            let user = user.ok_or_else(wrong_credentials)?;
            issue(s, &user)
        })
        .await
        .map(Json)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

pub async fn refresh(
    State(state): State<Arc<AppState>>,
    Extension(audit): Extension<Audit>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    state
        .blocking(move |s| {
            let invalid = || {
                ApiError::unauthorized(
                    "invalid_refresh_token",
                    "the refresh token is unknown, used, revoked or expired",
                )
            };
            let uid = s
                .accounts()
                .take_refresh(&tokens::refresh_hash(&req.refresh_token), now())?
                .ok_or_else(invalid)?;
            let user = s.accounts().user_by_id(uid)?.ok_or_else(invalid)?;
            audit.actor(&user.name, user.tenant.as_deref());
            audit.target(format!("user {}", user.name), user.tenant.as_deref());
            issue(s, &user)
        })
        .await
        .map(Json)
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

pub async fn logout(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    OptionalJson(req): OptionalJson<LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    audit.target(format!("user {}", me.name), me.tenant.as_deref());
    let mut accounts = state.accounts();
    accounts.revoke_access(&me.token_id, me.token_expires)?;
    if let Some(r) = req.refresh_token {
        accounts.revoke_refresh(&tokens::refresh_hash(&r))?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

pub async fn change_password(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    audit.target(format!("user {}", me.name), me.tenant.as_deref());
    let _turn = argon2_turn().await;
    state
        .blocking(move |s| {
            confirm_password(s, &me, &req.current_password)?;
            s.policy().check_password(&req.new_password).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "weak_password",
                    e.to_string(),
                )
            })?;
            let hash = password::hash(&req.new_password)
                .map_err(|e| ApiError::internal("hashing the password", e))?;
            s.accounts().set_password(&me.name, &hash)?;
            Ok(StatusCode::NO_CONTENT)
        })
        .await
}

/// Checks the principal's own password again (for changes to its
/// credentials).
fn confirm_password(s: &AppState, me: &Principal, given: &str) -> Result<UserRecord, ApiError> {
    let user = s
        .accounts()
        .user_by_id(me.user_id)?
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "the user no longer exists"))?;
    // Under the same lockout as logins: a stolen token is no way to guess
    // the password.
    attempt(s, &me.name, &Audit::default(), || {
        Ok(password::verify(&user.password_hash, given))
    })
    .map_err(|e| match e.code {
        "invalid_credentials" => ApiError::forbidden("the current password is wrong"),
        _ => e,
    })?;
    Ok(user)
}

pub async fn me(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
) -> Result<Json<UserView>, ApiError> {
    let user = state
        .accounts()
        .user_by_id(me.user_id)?
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "the user no longer exists"))?;
    Ok(Json(UserView::new(&user, None)))
}

#[derive(Debug, serde::Serialize)]
pub struct TotpEnrolment {
    /// Base32 secret to enter in an authenticator app.
    pub secret: String,
    pub otpauth_uri: String,
}

pub async fn totp_enroll(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    ApiJson(req): ApiJson<PasswordConfirm>,
) -> Result<(StatusCode, Json<TotpEnrolment>), ApiError> {
    audit.target(format!("user {}", me.name), me.tenant.as_deref());
    let _turn = argon2_turn().await;
    let name = me.name.clone();
    let secret = state
        .blocking(move |s| {
            // A stolen token alone must not replace the second factor.
            confirm_password(s, &me, &req.password)?;
            let secret =
                totp::new_secret().map_err(|e| ApiError::internal("making a TOTP secret", e))?;
            s.accounts().set_totp_pending(&me.name, &secret)?;
            Ok(secret)
        })
        .await?;
    let me_name = name;
    Ok((
        StatusCode::CREATED,
        Json(TotpEnrolment {
            otpauth_uri: totp::otpauth_uri(&me_name, &secret),
            secret,
        }),
    ))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

pub async fn totp_confirm(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<StatusCode, ApiError> {
    audit.target(format!("user {}", me.name), me.tenant.as_deref());
    let mut accounts = state.accounts();
    let user = accounts
        .user_by_id(me.user_id)?
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "the user no longer exists"))?;
    let pending = user.totp_pending.ok_or_else(|| {
        ApiError::conflict("no TOTP enrolment is pending: POST /api/v1/auth/totp first")
    })?;
    if !totp::check(&pending, &req.code, now() as u64) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_code",
            "the code does not match the enrolled secret at this time",
        ));
    }
    accounts.confirm_totp(&me.name)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordConfirm {
    pub password: String,
}

pub async fn totp_disable(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Extension(audit): Extension<Audit>,
    ApiJson(req): ApiJson<PasswordConfirm>,
) -> Result<StatusCode, ApiError> {
    audit.target(format!("user {}", me.name), me.tenant.as_deref());
    state
        .blocking(move |s| {
            confirm_password(s, &me, &req.password)?;
            s.accounts().clear_totp(&me.name)?;
            Ok(StatusCode::NO_CONTENT)
        })
        .await
}
