//! Shared helpers for the kernel-touching tests.
//!
//! Every test works inside throwaway named network namespaces ("labs") and
//! never touches the root namespace. A [`Lab`] deletes its namespace on drop,
//! so cleanup happens even when an assertion fails.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use palisade_link::{create_named_netns, delete_named_netns, netns_path, NetnsCreated};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// True when running as root; otherwise prints a loud skip notice.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        eprintln!("SKIPPED: needs root ({test})");
        return false;
    }
    true
}

/// A uniquely named namespace, deleted on drop.
pub struct Lab {
    pub name: String,
    pub path: PathBuf,
}

impl Lab {
    pub fn new() -> Lab {
        let name = unique_name();
        let created = create_named_netns(&name).expect("create lab netns");
        assert_eq!(created, NetnsCreated::Created, "{name} already existed");
        Lab {
            path: netns_path(&name),
            name,
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = delete_named_netns(&self.name) {
            eprintln!("warning: failed to delete lab netns {}: {e}", self.name);
        }
    }
}

/// A fresh `pltest-<pid>-<n>` name that is not in use.
pub fn unique_name() -> String {
    format!(
        "pltest-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Run `ip -n NS -j ARGS...` and return its stdout.
pub fn ip_json(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .arg("-n")
        .arg(ns)
        .arg("-j")
        .args(args)
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip -n {ns} -j {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// "aa:bb:cc:dd:ee:ff" as `ip` prints MACs.
pub fn mac_str(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
