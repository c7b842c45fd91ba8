//! `palisade serve`: the daemon. A JSON REST API under `/api/v1` on a Unix
//! socket and, when configured, on TCP with TLS; tokens, roles and tenant
//! scoping; an audit record for every change, refusal and verification.
//!
//! The daemon keeps no state of its own in memory: every request opens the
//! engine (taking the state lock that CLI processes take too) and reads the
//! store, so the CLI and the daemon are never out of step and there is
//! always one writer.

pub mod auth;
mod error;
pub mod evidence;
mod listen;
mod middleware;
mod openapi;
pub mod routes;
mod state;

pub use auth::roles::Role;
pub use error::ApiError;
pub use routes::{add_user, UserView, PREFIX};

use crate::engine::Engine;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::Router;
use palisade_core::config::Config;
use palisade_core::server_config::LogFormat;
use palisade_store::{Accounts, AuditKey, AuditLog};
use state::{AppState, Transport};
use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The socket's file name in the state directory, when the configuration
/// names none.
pub const SOCKET_FILE: &str = "palisade.sock";

/// Where the daemon's Unix socket is.
pub fn socket_path(config: &Config, state_dir: &Path) -> PathBuf {
    config
        .server
        .socket
        .clone()
        .unwrap_or_else(|| state_dir.join(SOCKET_FILE))
}

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Start(String),
    #[error("serving the API failed: {0}")]
    Serve(std::io::Error),
}

fn start(e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Start(e.to_string())
}

/// Sets up logging for the daemon (stderr; JSON if configured). The level
/// comes from `RUST_LOG`, default `info`.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,netlink_packet_route=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Opens the accounts and the audit log of a state directory (making the
/// audit key on first use).
pub fn open_records(state_dir: &Path) -> Result<(Accounts, AuditLog), DaemonError> {
    std::fs::create_dir_all(state_dir).map_err(|e| {
        start(format!(
            "cannot create the state directory {}: {e}",
            state_dir.display()
        ))
    })?;
    let key = AuditKey::load_or_create(state_dir).map_err(start)?;
    let audit = AuditLog::open(state_dir, key).map_err(start)?;
    let accounts = Accounts::open(state_dir).map_err(start)?;
    Ok((accounts, audit))
}

/// Builds the router over `state`.
fn router(state: Arc<AppState>, max_body: usize) -> Router {
    let mut public = Router::new();
    let mut protected = Router::new();
    for (route, handler) in routes::table() {
        let path = format!("{PREFIX}{}", route.path);
        if route.public {
            public = public.route(&path, handler);
        } else {
            protected = protected.route(&path, handler);
        }
    }
    public
        .merge(protected.route_layer(from_fn_with_state(state.clone(), middleware::authenticate)))
        .route_layer(from_fn_with_state(state.clone(), middleware::audit))
        .fallback(|| async { ApiError::not_found("such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(from_fn_with_state(state.clone(), middleware::rate_limit))
        .with_state(state)
}

/// Resolves when SIGTERM or SIGINT arrives.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: finishing requests in flight, then stopping"),
        _ = int.recv() => tracing::info!("SIGINT: finishing requests in flight, then stopping"),
    }
}

/// Prunes audit records older than the retention period, now and hourly.
fn spawn_retention(state: Arc<AppState>, days: u32) {
    tokio::spawn(async move {
        loop {
            let st = state.clone();
            let cutoff = evidence::rfc3339((state::now() - i64::from(days) * 86_400).max(0) as u64);
            let done =
                tokio::task::spawn_blocking(move || st.audit_log().prune_before(&cutoff)).await;
            match done {
                Ok(Ok(r)) if r.pruned > 0 => {
                    tracing::info!(
                        pruned = r.pruned,
                        "audit records past retention pruned behind a signed checkpoint"
                    )
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "audit retention"),
                Err(e) => tracing::error!(error = %e, "audit retention task"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
}

/// Deletes retired sandbox interfaces within a second of their destroy, so
/// that destroys through the API never wait for a batch deletion.
fn spawn_reaper(state: Arc<AppState>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let reaped = state
                .engine(|engine| {
                    if engine.retired_links_waiting()? == 0 {
                        return Ok(false);
                    }
                    Ok(engine.reap_waiting_links()?)
                })
                .await;
            if let Err(e) = reaped {
                tracing::error!(error = %e, "deleting retired sandbox interfaces");
            }
        }
    });
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn serve(config: Config, state_dir: &Path) -> Result<(), DaemonError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| start(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(serve_async(config, state_dir.to_path_buf()))
}

async fn serve_async(config: Config, state_dir: PathBuf) -> Result<(), DaemonError> {
    // Reconcile first: the daemon serves nothing until the kernel matches
    // the store.
    let (cfg, dir) = (config.clone(), state_dir.clone());
    let report = tokio::task::spawn_blocking(move || Engine::open_init(cfg, &dir).map(|(_, r)| r))
        .await
        .map_err(start)?
        .map_err(|e| start(format!("reconciling on start failed, not serving: {e}")))?;
    for line in report.lines() {
        tracing::warn!(repair = %line, "reconciled on start");
    }
    let keys = auth::tokens::TokenKeys::load_or_create(&state_dir).map_err(start)?;
    let (accounts, audit) = open_records(&state_dir)?;
    let socket = socket_path(&config, &state_dir);
    let server = config.server.clone();
    let transport = Transport {
        unix_socket: Some(socket.clone()),
        unix_socket_mode: server.socket_mode,
        tcp: server.listen,
        tls: server.tls.is_some(),
    };
    let state = Arc::new(
        AppState::new(config, state_dir.clone(), keys, accounts, audit, transport)
            .map_err(start)?,
    );
    if state.accounts().users().map_err(start)?.is_empty() {
        tracing::warn!(
            "no users yet: make the first admin with `palisade user add NAME --role admin` on this host"
        );
    }
    if let Some(days) = server.audit.retention_days {
        spawn_retention(state.clone(), days);
    }
    spawn_reaper(state.clone());
    let app = router(state.clone(), server.max_body_bytes);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };

    let unix = listen::unix(&socket, server.socket_mode)
        .await
        .map_err(start)?;
    tracing::info!(socket = %socket.display(), mode = format!("{:o}", server.socket_mode), "listening");
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(
        axum::serve(
            unix,
            app.clone()
                .into_make_service_with_connect_info::<listen::Client>(),
        )
        .with_graceful_shutdown(stopped(stop_rx.clone()))
        .into_future(),
    );
    if let Some(addr) = server.listen {
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| start(format!("cannot listen on {addr}: {e}")))?;
        match &server.tls {
            Some(files) => {
                let tls = listen::tls_config(&files.cert, &files.key).map_err(start)?;
                let listener = listen::TlsListener::new(tcp, tls).map_err(start)?;
                tracing::info!(%addr, "listening with TLS");
                tasks.spawn(
                    axum::serve(
                        listener,
                        app.clone()
                            .into_make_service_with_connect_info::<listen::Client>(),
                    )
                    .with_graceful_shutdown(stopped(stop_rx.clone()))
                    .into_future(),
                );
            }
            None => {
                tracing::warn!(%addr, "listening with plain HTTP on loopback (server.allow_plain_tcp)");
                tasks.spawn(
                    axum::serve(
                        tcp,
                        app.clone()
                            .into_make_service_with_connect_info::<listen::Client>(),
                    )
                    .with_graceful_shutdown(stopped(stop_rx.clone()))
                    .into_future(),
                );
            }
        }
    }
    tokio::select! {
        _ = shutdown_signal() => {}
        Some(done) = tasks.join_next() => {
            // A listener ended on its own: stop the others too.
            let _ = stop_tx.send(true);
            let _ = std::fs::remove_file(&socket);
            return match done {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(DaemonError::Serve(e)),
                Err(e) => Err(start(e)),
            };
        }
    }
    let _ = stop_tx.send(true);
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        if let Ok(Err(e)) = done {
            result = Err(DaemonError::Serve(e));
        }
    }
    let _ = std::fs::remove_file(&socket);
    tracing::info!("stopped");
    result
}
