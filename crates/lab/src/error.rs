//! The error type of the lab.
//!
//! A failing isolation test is only useful if it says which step of the
//! setup broke, so every error carries a human-readable context ("create
//! veth up0 in lab plab123x0") next to the underlying cause.

use palisade_link::LinkError;

/// Errors from building the lab or running traffic through it.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A namespace, link, address, route or sysctl operation failed.
    #[error("{context}: {source}")]
    Link {
        /// What the lab was doing.
        context: String,
        /// The error from `palisade-link`.
        #[source]
        source: LinkError,
    },

    /// A socket or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the lab was doing.
        context: String,
        /// The underlying OS error.
        #[source]
        source: std::io::Error,
    },

    /// A caller-supplied value was rejected.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

/// Attach context to errors from `palisade-link` and from `std::io`.
pub(crate) trait Context<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, LinkError> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| LabError::Link {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| LabError::Io {
            context: context(),
            source,
        })
    }
}
