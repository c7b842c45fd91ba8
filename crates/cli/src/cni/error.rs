//! CNI error results: the spec's well-known codes, and palisade's own
//! above 100.

use serde::Serialize;

/// An error as the CNI spec prints it on stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

/// `1`: the configuration's `cniVersion` is not supported.
pub const INCOMPATIBLE_VERSION: u32 = 1;
/// `4`: a required environment variable is missing or invalid.
pub const INVALID_ENVIRONMENT: u32 = 4;
/// `5`: reading the configuration failed.
pub const IO_FAILURE: u32 = 5;
/// `6`: the configuration is not valid JSON of the expected shape.
pub const DECODE_FAILURE: u32 = 6;
/// `7`: the configuration is understood but invalid.
pub const INVALID_CONFIG: u32 = 7;
/// `11`: a transient condition; the runtime may retry.
pub const TRY_AGAIN_LATER: u32 = 11;
/// `50`: `STATUS`: palisade cannot serve `ADD` now.
pub const NOT_AVAILABLE: u32 = 50;
/// `100`: palisade could not apply, remove or confirm a policy.
pub const POLICY_FAILED: u32 = 100;

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// The JSON the spec asks for, in the protocol version of the request.
    pub fn to_json(&self, cni_version: &str) -> String {
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(rename = "cniVersion")]
            cni_version: &'a str,
            code: u32,
            msg: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            details: &'a str,
        }
        serde_json::to_string(&Wire {
            cni_version,
            code: self.code,
            msg: &self.msg,
            details: &self.details,
        })
        .expect("plain strings serialize")
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CNI error {}: {}", self.code, self.msg)?;
        if !self.details.is_empty() {
            write!(f, ": {}", self.details)?;
        }
        Ok(())
    }
}

impl From<crate::engine::EngineError> for CniError {
    fn from(e: crate::engine::EngineError) -> Self {
        use crate::engine::EngineError as E;
        use palisade_store::StoreError as S;
        let code = match &e {
            E::Name(_) | E::PortRule(_) | E::InvalidRequest { .. } => INVALID_CONFIG,
            E::Store(
                S::NameTaken(_)
                | S::PortTaken { .. }
                | S::AttachmentTaken { .. }
                | S::PoolFull { .. },
            ) => INVALID_CONFIG,
            // Another process holds the state, or SQLite is busy.
            E::Lock { .. } | E::Store(S::Query { .. }) => TRY_AGAIN_LATER,
            _ => POLICY_FAILED,
        };
        CniError::new(code, "palisade", e.to_string())
    }
}
