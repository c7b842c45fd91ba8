//! Errors of the daemon: every answer that is not a success is JSON with a
//! stable machine-readable code and a message for people.

use crate::engine::EngineError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use palisade_store::StoreError;

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable code clients can match on, e.g. `invalid_credentials`.
    pub code: &'static str,
    pub message: String,
    /// Seconds until a retry can succeed (429 answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no {what}"))
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
        }
    }

    /// A failure inside palisade; the details go to the log, not the client.
    pub fn internal(context: &str, error: impl std::fmt::Display) -> ApiError {
        tracing::error!(%error, "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{context} failed; see the daemon's log"),
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        // The audit middleware reads the error back from the response.
        response.extensions_mut().insert(self);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::UserExists(_)
            | StoreError::NameTaken(_)
            | StoreError::PortTaken { .. }
            | StoreError::AttachmentTaken { .. }
            | StoreError::RuleExists { .. }
            | StoreError::RuleOverlaps { .. } => ApiError::conflict(e.to_string()),
            StoreError::UserMissing(name) => ApiError::not_found(format_args!("user {name}")),
            StoreError::PoolFull { .. } => {
                ApiError::new(StatusCode::CONFLICT, "pool_full", e.to_string())
            }
            other => ApiError::internal("the state database", other),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::Name(_)
            | EngineError::PortRule(_)
            | EngineError::InvalidRequest { .. } => ApiError::invalid(e.to_string()),
            EngineError::NotFound(name) => ApiError::not_found(format_args!("sandbox {name}")),
            EngineError::Store(s) => s.into(),
            EngineError::RuleNotFound { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            EngineError::TenantRule(_) => ApiError::invalid(e.to_string()),
            other => {
                // Kernel failures: the request failed closed; say what failed.
                tracing::error!(error = %other, "engine");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "apply_failed",
                    other.to_string(),
                )
            }
        }
    }
}
