//! Ownership of named network namespaces.
//!
//! The lab's first promise is that it never leaks: a namespace that
//! outlives its test keeps veths, addresses and listeners around and can
//! confuse the next run. So every namespace the lab makes is held by a
//! [`NetnsGuard`] whose `Drop` deletes it, which also runs while a failed
//! assertion unwinds.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use palisade_link::{create_named_netns, delete_named_netns, netns_path, NetnsCreated};

use crate::error::{Context, LabError, Result};

static NAME_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call: `plab<pid><tag><n>`.
///
/// The pid keeps concurrent test binaries apart, the counter keeps
/// concurrent tests of one binary apart, and the `plab` prefix makes
/// leftovers easy to recognise in `ip netns list`.
pub fn unique_name(tag: char) -> String {
    let n = NAME_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("plab{}{tag}{n}", std::process::id())
}

/// A named network namespace (`/run/netns/NAME`) that is deleted when the
/// guard is dropped.
#[derive(Debug)]
pub struct NetnsGuard {
    name: String,
    deleted: AtomicBool,
}

impl NetnsGuard {
    /// Create a brand-new namespace called `name`.
    ///
    /// Fails if one of that name already exists: taking ownership of a
    /// namespace someone else made would delete it behind their back.
    pub fn create(name: &str) -> Result<NetnsGuard> {
        match create_named_netns(name).ctx(|| format!("create netns {name}"))? {
            NetnsCreated::Created => Ok(NetnsGuard {
                name: name.to_string(),
                deleted: AtomicBool::new(false),
            }),
            NetnsCreated::AlreadyExisted => Err(LabError::Invalid(format!(
                "netns {name} already exists; refusing to take ownership of it"
            ))),
        }
    }

    /// Create a namespace with a fresh [`unique_name`].
    pub fn create_unique(tag: char) -> Result<NetnsGuard> {
        NetnsGuard::create(&unique_name(tag))
    }

    /// Take ownership of `name`, existing or not (e.g. a namespace that
    /// palisade will create for a sandbox): it is deleted on drop if it
    /// exists by then.
    pub fn adopt(name: &str) -> NetnsGuard {
        NetnsGuard {
            name: name.to_string(),
            deleted: AtomicBool::new(false),
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        netns_path(&self.name)
    }

    /// Delete the namespace now. Idempotent; returns whether something was
    /// deleted by this call.
    pub fn delete(&self) -> Result<bool> {
        if self.deleted.swap(true, Ordering::SeqCst) {
            return Ok(false);
        }
        delete_named_netns(&self.name).ctx(|| format!("delete netns {}", self.name))
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Err(e) = self.delete() {
            // Drop cannot fail; a leak must at least be visible.
            eprintln!("palisade-lab: LEAK: {e}");
        }
    }
}
