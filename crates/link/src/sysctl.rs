//! Reading and writing `/proc/sys` keys.
//!
//! Network sysctls (`net.*`) are per network namespace, and the kernel picks
//! the namespace of the *thread* that opens the file. So these functions act
//! on the calling thread's namespace; wrap them in [`crate::run_in_netns`] to
//! target a sandbox.

use std::path::PathBuf;

use crate::error::{LinkError, Result};

/// Map a key to its `/proc/sys` path.
///
/// A key containing `/` is taken as a path ("net/ipv6/conf/eth0.100/mtu");
/// otherwise dots separate components ("net.ipv4.ip_forward"), like
/// sysctl(8). Only `[A-Za-z0-9_./-]` is allowed, and no `..`, so a key can
/// never escape `/proc/sys`.
pub fn sysctl_path(key: &str) -> Result<PathBuf> {
    let bad = |reason: &str| LinkError::InvalidArgument {
        op: "sysctl key",
        reason: format!("{key:?}: {reason}"),
    };
    if key.is_empty() {
        return Err(bad("empty"));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'))
    {
        return Err(bad("only [A-Za-z0-9_./-] are allowed"));
    }
    if key.contains("..") {
        return Err(bad("may not contain \"..\""));
    }
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c.is_empty() || c == ".") {
        return Err(bad("has an empty or '.' component"));
    }
    Ok(PathBuf::from("/proc/sys").join(rel))
}

/// Write `value` to the sysctl `key` in the calling thread's netns.
pub fn set_sysctl(key: &str, value: &str) -> Result<()> {
    let path = sysctl_path(key)?;
    std::fs::write(&path, value.as_bytes()).map_err(|e| LinkError::Sysctl {
        op: "write",
        key: key.to_string(),
        path,
        source: e,
    })
}

/// Read the sysctl `key` (trailing newline removed) in the calling thread's
/// netns.
pub fn get_sysctl(key: &str) -> Result<String> {
    let path = sysctl_path(key)?;
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(s.trim_end_matches('\n').to_string()),
        Err(e) => Err(LinkError::Sysctl {
            op: "read",
            key: key.to_string(),
            path,
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_paths() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            sysctl_path("net/ipv6/conf/eth0.100/accept_ra").unwrap(),
            PathBuf::from("/proc/sys/net/ipv6/conf/eth0.100/accept_ra")
        );
        for bad in [
            "",
            "net/../etc",
            "net..ipv4",
            "a b",
            "net.ipv4.*",
            "net//x",
            "./x",
        ] {
            assert!(sysctl_path(bad).is_err(), "{bad:?}");
        }
    }
}
