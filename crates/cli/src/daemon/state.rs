//! What every request handler shares: the configuration, the keys, the
//! accounts and audit log, the security policy in force, the rate limiter,
//! and the one way to reach the engine.

use super::auth::tokens::TokenKeys;
use super::error::ApiError;
use crate::engine::{Engine, IdleEngine};
use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use palisade_core::config::Config;
use palisade_core::server_config::SecurityPolicy;
use palisade_store::{Accounts, AuditLog, NewAuditRecord};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// The key under which the security policy in force is stored.
pub const POLICY_SETTING: &str = "security_policy";

pub type Limiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

pub struct AppState {
    pub config: Config,
    pub state_dir: PathBuf,
    pub keys: TokenKeys,
    accounts: Mutex<Accounts>,
    audit: Mutex<AuditLog>,
    /// One engine at a time in this process; the state lock orders it with
    /// CLI processes. Between requests the engine waits here without the
    /// lock (`None` before the first request, or after one that failed).
    engine_turn: Mutex<Option<IdleEngine>>,
    policy: RwLock<SecurityPolicy>,
    limiter: RwLock<Arc<Limiter>>,
    /// How the API is reachable, for the compliance report.
    pub transport: Transport,
}

/// The listeners in use.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    pub unix_socket: Option<PathBuf>,
    pub unix_socket_mode: u32,
    pub tcp: Option<std::net::SocketAddr>,
    pub tls: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these leaves consistent data (every
    // write is one SQLite transaction), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn limiter_for(policy: &SecurityPolicy) -> Arc<Limiter> {
    let per_minute = NonZeroU32::new(policy.rate_limit_per_minute).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute)))
}

impl AppState {
    pub fn new(
        config: Config,
        state_dir: PathBuf,
        keys: TokenKeys,
        accounts: Accounts,
        audit: AuditLog,
        transport: Transport,
    ) -> Result<AppState, String> {
        let policy = match accounts
            .setting(POLICY_SETTING)
            .map_err(|e| e.to_string())?
        {
            Some(json) => serde_json::from_str::<SecurityPolicy>(&json)
                .map_err(|e| format!("the stored security policy is unreadable: {e}"))?,
            None => config.server.security.clone(),
        };
        Ok(AppState {
            limiter: RwLock::new(limiter_for(&policy)),
            policy: RwLock::new(policy),
            config,
            state_dir,
            keys,
            accounts: Mutex::new(accounts),
            audit: Mutex::new(audit),
            engine_turn: Mutex::new(None),
            transport,
        })
    }

    pub fn accounts(&self) -> MutexGuard<'_, Accounts> {
        lock(&self.accounts)
    }

    pub fn audit_log(&self) -> MutexGuard<'_, AuditLog> {
        lock(&self.audit)
    }

    pub fn policy(&self) -> SecurityPolicy {
        self.policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn limiter(&self) -> Arc<Limiter> {
        self.limiter
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stores a new security policy and puts it in force.
    pub fn set_policy(&self, policy: SecurityPolicy) -> Result<(), ApiError> {
        let json = serde_json::to_string(&policy)
            .map_err(|e| ApiError::internal("encoding the policy", e))?;
        self.accounts().set_setting(POLICY_SETTING, &json)?;
        *self.limiter.write().unwrap_or_else(|p| p.into_inner()) = limiter_for(&policy);
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = policy;
        Ok(())
    }

    /// Appends to the audit log. A record that cannot be written is logged
    /// as an error: the request it describes has already happened.
    pub fn record(&self, record: NewAuditRecord) {
        if let Err(e) = self.audit_log().append(&record) {
            tracing::error!(error = %e, action = %record.action, "cannot write the audit record");
        }
    }

    /// Runs `f` on the engine, on a blocking thread: the state lock is
    /// taken, a crashed earlier operation (of this process or a CLI one)
    /// repaired, and the result is what the store and kernel say now. The
    /// store and the kernel sockets stay open between requests, without
    /// the lock, so a CLI command may run in between; after a server-side
    /// failure the engine is dropped and the next request opens a new one.
    pub async fn engine<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Engine) -> Result<T, ApiError> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut idle = lock(&state.engine_turn);
            let opened = match idle.take() {
                Some(engine) => engine.resume(),
                None => Engine::open(state.config.clone(), &state.state_dir),
            };
            let (mut engine, repair) = opened.map_err(ApiError::from)?;
            for line in repair.lines() {
                tracing::warn!(repair = %line, "repaired an interrupted operation");
            }
            let result = f(&mut engine);
            // A refused request (not found, invalid, conflict) leaves the
            // engine as it was; after a server-side failure (the kernel,
            // the store) the next request starts from a new one.
            let keep = match &result {
                Ok(_) => true,
                Err(e) => !e.status.is_server_error(),
            };
            if keep {
                *idle = Some(engine.idle());
            }
            result
        })
        .await
        .map_err(|e| ApiError::internal("the engine task", e))?
    }

    /// Runs blocking work (password hashing, database queries) off the
    /// async threads.
    pub async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(|e| ApiError::internal("a blocking task", e))?
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
