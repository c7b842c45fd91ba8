//! Secret key files in the state directory: random bytes made on first
//! use, readable by the owner only, refused when anyone else could read
//! them.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Reads the secret at `path`, making `len` random bytes there (mode
/// 0600) if it does not exist.
pub fn load_or_create(path: &Path, len: usize) -> Result<Vec<u8>, String> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let mut secret = vec![0u8; len];
            getrandom::fill(&mut secret).map_err(|e| format!("no randomness: {e}"))?;
            file.write_all(&secret)
                .and_then(|_| file.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load(path, len),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

/// Reads an existing secret, checking its length and permissions.
pub fn load(path: &Path, len: usize) -> Result<Vec<u8>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} is readable by others (mode {:o}); it must be 0600",
            path.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    let secret = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if secret.len() != len {
        return Err(format!(
            "{} holds {} bytes, not {len}: it is not a palisade key",
            path.display(),
            secret.len()
        ));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_private_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        let a = load_or_create(&p, 32).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load_or_create(&p, 32).unwrap(), a);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&p, 32).unwrap_err().contains("readable by others"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load(&p, 16).unwrap_err().contains("not a palisade key"));
    }
}
