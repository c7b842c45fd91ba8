//! Finding and reading palisade's configuration file, for every front end.

use palisade_core::config::{Config, ConfigError};
use std::path::{Path, PathBuf};

/// Where the configuration is looked for when no path is given.
pub const DEFAULT_CONFIG: &str = "/etc/palisade/palisade.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read the configuration {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

/// Reads `path`; without one, [`DEFAULT_CONFIG`] if it exists, else the
/// built-in defaults.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigFileError> {
    let default_path = Path::new(DEFAULT_CONFIG);
    let path = match path {
        Some(p) => p,
        None if default_path.exists() => default_path,
        None => return Ok(Config::default()),
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Config::from_toml(&path.display().to_string(), &text)?)
}
