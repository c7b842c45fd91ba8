//! The layers every request passes: the per-client rate limit, token
//! authentication, and the audit record written once per request that
//! changes something, is refused, or verifies something.

use super::auth::roles::{Principal, Role};
use super::auth::tokens::TokenError;
use super::error::ApiError;
use super::listen::Client;
use super::routes::action_of;
use super::state::{now, AppState};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use palisade_store::{NewAuditRecord, Outcome};
use std::sync::{Arc, Mutex};

/// What a handler tells the audit record about its request. Handlers fill
/// it in as soon as they know the target, so a failure is recorded with it.
#[derive(Debug, Clone, Default)]
pub struct AuditNote {
    pub actor: Option<String>,
    pub actor_tenant: Option<String>,
    pub target: Option<String>,
    pub tenant: Option<String>,
    pub details: serde_json::Map<String, serde_json::Value>,
    /// Recorded even though the request is a read (a verification).
    pub always: bool,
    /// Overrides the outcome read from the status (e.g. a 404 that hides
    /// another tenant's object is a denial).
    pub outcome: Option<Outcome>,
}

/// The per-request slot holding the [`AuditNote`].
#[derive(Debug, Clone, Default)]
pub struct Audit(Arc<Mutex<AuditNote>>);

impl Audit {
    fn with<T>(&self, f: impl FnOnce(&mut AuditNote) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn target(&self, target: impl Into<String>, tenant: Option<&str>) {
        self.with(|n| {
            n.target = Some(target.into());
            if tenant.is_some() {
                n.tenant = tenant.map(String::from);
            }
        });
    }

    pub fn detail(&self, key: &str, value: impl serde::Serialize) {
        let v = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.with(|n| n.details.insert(key.to_string(), v));
    }

    pub fn actor(&self, name: &str, tenant: Option<&str>) {
        self.with(|n| {
            n.actor = Some(name.to_string());
            n.actor_tenant = tenant.map(String::from);
        });
    }

    pub fn always(&self) {
        self.with(|n| n.always = true);
    }

    pub fn outcome(&self, outcome: Outcome) {
        self.with(|n| n.outcome = Some(outcome));
    }

    fn take(&self) -> AuditNote {
        self.with(std::mem::take)
    }
}

fn client_of(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<Client>>()
        .map(|c| c.0 .0.clone())
        .unwrap_or_else(|| "unknown".into())
}

/// Refuses a client over its request budget with 429 and Retry-After.
/// Only the first refusal of a burst is audited, so a flood cannot fill
/// the log.
pub async fn rate_limit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let client = client_of(&req);
    let limiter = state.limiter();
    match limiter.check_key(&client) {
        Ok(()) => next.run(req).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            static LAST: Mutex<Option<std::collections::HashMap<String, i64>>> = Mutex::new(None);
            let first = {
                let mut guard = LAST.lock().unwrap_or_else(|p| p.into_inner());
                let last = guard.get_or_insert_with(Default::default);
                let t = now();
                // Forget clients quiet for a minute, so the map stays small.
                last.retain(|_, at| t - *at < 60);
                let repeat = last.contains_key(&client);
                if !repeat {
                    last.insert(client.clone(), t);
                }
                !repeat
            };
            if first {
                let st = state.clone();
                let record = NewAuditRecord {
                    actor: "anonymous".into(),
                    source: client,
                    action: "rate_limit".into(),
                    target: req.uri().path().to_string(),
                    tenant: None,
                    outcome: Outcome::Denied,
                    details: serde_json::json!({"status": 429}),
                };
                let _ = tokio::task::spawn_blocking(move || st.record(record)).await;
            }
            ApiError::too_many(
                "rate_limited",
                "too many requests from this client; retry later",
                wait.as_secs() + 1,
            )
            .into_response()
        }
    }
}

/// Checks the bearer token and puts the [`Principal`] in the request.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let audit = req.extensions().get::<Audit>().cloned().unwrap_or_default();
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::unauthorized(
                "missing_token",
                "an Authorization: Bearer token is required",
            )
        })?;
    let claims = state.keys.decode(token).map_err(|e| match e {
        TokenError::Expired => ApiError::unauthorized("token_expired", e.to_string()),
        TokenError::Invalid(_) => ApiError::unauthorized("invalid_token", e.to_string()),
    })?;
    audit.actor(&claims.sub, None);
    let principal = state
        .blocking(move |state| {
            let accounts = state.accounts();
            let user = accounts
                .user_by_id(claims.uid)?
                .filter(|u| u.name == claims.sub)
                .ok_or_else(|| {
                    ApiError::unauthorized("invalid_token", "the token's user no longer exists")
                })?;
            if user.token_epoch != claims.ep || accounts.access_revoked(&claims.jti)? {
                return Err(ApiError::unauthorized(
                    "token_revoked",
                    "the token was revoked (logout or password change); log in again",
                ));
            }
            let role: Role = user
                .role
                .parse()
                .map_err(|e: String| ApiError::internal("reading the user's role", e))?;
            Ok(Principal {
                user_id: user.id,
                name: user.name,
                role,
                tenant: user.tenant,
                token_id: claims.jti,
                token_expires: claims.exp,
            })
        })
        .await?;
    audit.actor(&principal.name, principal.tenant.as_deref());
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

/// Writes one audit record for every request that changes something, is
/// refused, or verifies something; reads that succeed are not recorded.
///
/// The handler and the record run in a task of their own: a client that
/// hangs up does not cancel them, so a change it asked for is still
/// recorded.
pub async fn audit(
    State(state): State<Arc<AppState>>,
    path: Option<MatchedPath>,
    mut req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let route = path.as_ref().map(|p| p.as_str().to_string());
    let client = client_of(&req);
    let slot = Audit::default();
    req.extensions_mut().insert(slot.clone());
    let task = tokio::spawn(async move {
        let response = next.run(req).await;
        let record = record_for(&method, route, client, &slot, &response);
        if let Some(record) = record {
            let st = state.clone();
            let _ = tokio::task::spawn_blocking(move || st.record(record)).await;
        }
        response
    });
    match task.await {
        Ok(response) => response,
        Err(e) => ApiError::internal("the request task", e).into_response(),
    }
}

/// The record of one request, if it is one to record.
fn record_for(
    method: &Method,
    route: Option<String>,
    client: String,
    slot: &Audit,
    response: &Response,
) -> Option<NewAuditRecord> {
    let status = response.status();
    let note = slot.take();
    let denied = matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    );
    // Successful reads are not recorded; failed ones are, so a refused look
    // at another tenant's object (404) is on record exactly like a look at
    // one that does not exist.
    let read = *method == Method::GET || *method == Method::HEAD;
    if read && !status.is_client_error() && !note.always && note.outcome.is_none() {
        return None;
    }
    let outcome = note.outcome.unwrap_or(if status.is_success() {
        Outcome::Success
    } else if denied {
        Outcome::Denied
    } else {
        Outcome::Failure
    });
    let action = route
        .as_deref()
        .and_then(|r| action_of(method, r))
        .unwrap_or("unknown")
        .to_string();
    let mut details = note.details;
    details.insert("status".into(), status.as_u16().into());
    if let Some(e) = response.extensions().get::<ApiError>() {
        details.insert("error".into(), e.code.into());
        // Messages about credentials may echo what was typed; keep only
        // the code for those.
        if !action.starts_with("auth.") && !action.starts_with("user.") {
            details.insert("message".into(), e.message.clone().into());
        }
    }
    Some(NewAuditRecord {
        actor: note.actor.unwrap_or_else(|| "anonymous".into()),
        source: client,
        action,
        target: note.target.or(route).unwrap_or_else(|| "unknown".into()),
        tenant: note.tenant.or(note.actor_tenant),
        outcome,
        details: serde_json::Value::Object(details),
    })
}
