//! The API's routes: one table says, for each, its method, path, audit
//! action and documentation; the router, the audit log's action names and
//! the OpenAPI document are all built from it, so none can miss a route.

mod audit;
mod auth;
mod compliance;
mod extract;
mod policy;
mod sandboxes;
mod system;
mod tenants;
mod users;

pub use extract::{ApiJson, ApiQuery, OptionalJson};
pub use users::{add_user, UserView};

use super::auth::roles::{Permission, Principal, Refusal};
use super::error::ApiError;
use super::state::AppState;
use axum::http::Method;
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use std::sync::Arc;

/// The prefix of every route.
pub const PREFIX: &str = "/api/v1";

/// One route of the API.
pub struct Route {
    pub method: Method,
    /// Path below [`PREFIX`], with `{param}` placeholders.
    pub path: &'static str,
    /// The action name in audit records.
    pub action: &'static str,
    pub summary: &'static str,
    /// Reachable without a token.
    pub public: bool,
    /// Schema of the JSON body, if any (see `openapi.rs`).
    pub body: Option<&'static str>,
    /// Schema of the success answer.
    pub answer: &'static str,
    /// Query parameters.
    pub query: &'static [&'static str],
}

type Handler = MethodRouter<Arc<AppState>>;

const PUBLIC: bool = true;
const TOKEN: bool = false;
const NONE: &[&str] = &[];

#[allow(clippy::too_many_arguments)]
fn r(
    method: Method,
    path: &'static str,
    action: &'static str,
    summary: &'static str,
    public: bool,
    body: Option<&'static str>,
    answer: &'static str,
    query: &'static [&'static str],
    handler: Handler,
) -> (Route, Handler) {
    (
        Route {
            method,
            path,
            action,
            summary,
            public,
            body,
            answer,
            query,
        },
        handler,
    )
}

/// Every route with its handler.
pub fn table() -> Vec<(Route, Handler)> {
    use Method as M;
    vec![
        r(M::POST, "/auth/login", "auth.login", "Log in with a user name and password (and a TOTP code when enrolled); returns an access and a refresh token.", PUBLIC, Some("LoginRequest"), "TokenPair", NONE, post(auth::login)),
        r(M::POST, "/auth/refresh", "auth.refresh", "Trade a refresh token for a new token pair; the old refresh token stops working.", PUBLIC, Some("RefreshRequest"), "TokenPair", NONE, post(auth::refresh)),
        r(M::GET, "/openapi.json", "openapi", "This document.", PUBLIC, None, "OpenApi", NONE, get(system::openapi)),
        r(M::GET, "/health", "health", "Liveness: answers when the daemon serves requests.", PUBLIC, None, "Health", NONE, get(system::health)),
        r(M::POST, "/auth/logout", "auth.logout", "Revoke the access token used and, if given, a refresh token.", TOKEN, Some("LogoutRequest"), "Empty", NONE, post(auth::logout)),
        r(M::POST, "/auth/password", "auth.password", "Change one's own password; revokes every token of the user.", TOKEN, Some("PasswordChange"), "Empty", NONE, post(auth::change_password)),
        r(M::GET, "/auth/me", "auth.me", "The authenticated user.", TOKEN, None, "User", NONE, get(auth::me)),
        r(M::POST, "/auth/totp", "auth.totp.enroll", "Start TOTP enrolment (needs the password): returns a new secret, in force once confirmed.", TOKEN, Some("PasswordConfirm"), "TotpEnrolment", NONE, post(auth::totp_enroll)),
        r(M::POST, "/auth/totp/confirm", "auth.totp.confirm", "Confirm TOTP enrolment with a current code.", TOKEN, Some("TotpCode"), "Empty", NONE, post(auth::totp_confirm)),
        r(M::DELETE, "/auth/totp", "auth.totp.disable", "Turn one's own second factor off (needs the password).", TOKEN, Some("PasswordConfirm"), "Empty", NONE, delete(auth::totp_disable)),
        r(M::GET, "/sandboxes", "sandbox.list", "List sandboxes, filtered by tenant, kind and state, by pages (cursor: the last name seen).", TOKEN, None, "SandboxPage", &["tenant", "kind", "state", "limit", "after"], get(sandboxes::list)),
        r(M::POST, "/sandboxes", "sandbox.create", "Create a sandbox and its isolated network attachment.", TOKEN, Some("SandboxCreate"), "Sandbox", NONE, post(sandboxes::create)),
        r(M::GET, "/sandboxes/{name}", "sandbox.show", "One sandbox.", TOKEN, None, "Sandbox", NONE, get(sandboxes::show)),
        r(M::PATCH, "/sandboxes/{name}", "sandbox.update", "Change a sandbox's egress policy in one atomic update.", TOKEN, Some("SandboxUpdate"), "SandboxUpdated", NONE, patch(sandboxes::update)),
        r(M::DELETE, "/sandboxes/{name}", "sandbox.destroy", "Destroy a sandbox and everything it had.", TOKEN, None, "Sandbox", NONE, delete(sandboxes::destroy)),
        r(M::GET, "/sandboxes/{name}/exposures", "exposure.list", "A sandbox's exposed ports.", TOKEN, None, "Exposures", NONE, get(sandboxes::exposures)),
        r(M::POST, "/sandboxes/{name}/exposures", "exposure.add", "Forward a host port (or range) to a sandbox port.", TOKEN, Some("ExposureCreate"), "ExposureAdded", NONE, post(sandboxes::expose)),
        r(M::DELETE, "/sandboxes/{name}/exposures", "exposure.remove", "Remove exposures matching the query (all of the protocol's when none is given).", TOKEN, None, "Exposures", &["proto", "port", "host_port", "host_ip"], delete(sandboxes::unexpose)),
        r(M::POST, "/verify", "verify", "Read the kernel's rules back and compare them with the store; with probe, also send real traffic from inside each sandbox.", TOKEN, Some("VerifyRequest"), "VerifyResult", NONE, post(system::verify)),
        r(M::GET, "/status", "status", "Tables, counts, drift and kernel features.", TOKEN, None, "Status", NONE, get(system::status)),
        r(M::GET, "/tenants", "tenant.list", "Tenants with their sandbox and rule counts.", TOKEN, None, "Tenants", NONE, get(tenants::list)),
        r(M::GET, "/tenants/{tenant}", "tenant.show", "One tenant.", TOKEN, None, "Tenant", NONE, get(tenants::show)),
        r(M::GET, "/tenants/{tenant}/rules", "rule.list", "A tenant's custom firewall rules.", TOKEN, None, "TenantRules", NONE, get(tenants::rules)),
        r(M::POST, "/tenants/{tenant}/rules", "rule.add", "Add an allow or deny rule (protocol, ports, CIDR); rules never re-open the always-denied ranges.", TOKEN, Some("TenantRuleCreate"), "TenantRule", NONE, post(tenants::add_rule)),
        r(M::DELETE, "/tenants/{tenant}/rules/{id}", "rule.remove", "Remove a tenant rule.", TOKEN, None, "TenantRule", NONE, delete(tenants::remove_rule)),
        r(M::GET, "/users", "user.list", "Users (an admin scoped to a tenant sees that tenant's).", TOKEN, None, "Users", NONE, get(users::list)),
        r(M::POST, "/users", "user.add", "Add a user.", TOKEN, Some("UserCreate"), "User", NONE, post(users::add)),
        r(M::GET, "/users/{name}", "user.show", "One user.", TOKEN, None, "User", NONE, get(users::show)),
        r(M::PATCH, "/users/{name}", "user.update", "Change a user's role or scope, reset its password or second factor, or unlock it.", TOKEN, Some("UserUpdate"), "User", NONE, patch(users::update)),
        r(M::DELETE, "/users/{name}", "user.delete", "Delete a user; its tokens stop working.", TOKEN, None, "User", NONE, delete(users::remove)),
        r(M::GET, "/security-policy", "policy.show", "The security policy in force.", TOKEN, None, "SecurityPolicy", NONE, get(policy::show)),
        r(M::PUT, "/security-policy", "policy.update", "Replace the security policy (password, session, lockout, rate limit).", TOKEN, Some("SecurityPolicy"), "SecurityPolicy", NONE, put(policy::update)),
        r(M::GET, "/audit", "audit.query", "Audit records by time range, action, actor, tenant and outcome, by pages (cursor: the last seq seen).", TOKEN, None, "AuditPage", &["since", "until", "action", "actor", "tenant", "outcome", "after", "limit"], get(audit::query)),
        r(M::GET, "/audit/verify", "audit.verify", "Check the audit chain: any edited, inserted or deleted record is reported with where it is.", TOKEN, None, "ChainReport", NONE, get(audit::verify)),
        r(M::GET, "/audit/export", "audit.export", "Matching audit records as JSON lines.", TOKEN, None, "JsonLines", &["since", "until", "action", "actor", "tenant", "outcome"], get(audit::export)),
        r(M::GET, "/compliance/report", "compliance.report", "A compliance report from live evidence, as JSON, Markdown or HTML.", TOKEN, None, "ComplianceReport", &["framework", "format"], get(compliance::report)),
    ]
}

/// The audit action of a matched route (`path` includes the prefix).
pub fn action_of(method: &Method, path: &str) -> Option<&'static str> {
    let path = path.strip_prefix(PREFIX)?;
    static ACTIONS: std::sync::OnceLock<Vec<(Method, &'static str, &'static str)>> =
        std::sync::OnceLock::new();
    ACTIONS
        .get_or_init(|| {
            table()
                .into_iter()
                .map(|(r, _)| (r.method, r.path, r.action))
                .collect()
        })
        .iter()
        .find(|(m, p, _)| m == method && *p == path)
        .map(|(_, _, a)| *a)
}

/// A refusal as the client sees it: hidden objects do not exist.
pub fn refused(r: Refusal, what: impl std::fmt::Display) -> ApiError {
    match r {
        Refusal::Role(why) => ApiError::forbidden(why),
        Refusal::Hidden => ApiError::not_found(what),
    }
}

/// `principal.require(p)` as an API answer.
pub fn require(p: &Principal, perm: Permission) -> Result<(), ApiError> {
    p.require(perm).map_err(|r| refused(r, "such object"))
}

/// `principal.require_global(p)` as an API answer.
pub fn require_global(p: &Principal, perm: Permission) -> Result<(), ApiError> {
    p.require_global(perm)
        .map_err(|r| refused(r, "such object"))
}

/// Page size: default 100, at most 1000.
pub fn page_size(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(format!(
            "limit = {n}: must be between 1 and 1000"
        ))),
    }
}

/// The shape of every list answer.
#[derive(Debug, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}
