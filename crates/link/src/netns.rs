//! Named network namespaces, laid out exactly like `ip netns` does it.
//!
//! A named namespace is an empty file `/run/netns/NAME` with the namespace's
//! nsfs inode bind-mounted onto it. The bind mount is what keeps the
//! namespace alive after the creating thread is gone, and what lets `ip netns
//! exec`, `ip -n NAME` and other tools find it. `/run/netns` itself is made a
//! shared mount point (as iproute2 does) so that namespaces created later are
//! visible in mount namespaces that were cloned earlier, and vice versa.
//!
//! Everything that needs to *be* inside a namespace runs in a short-lived
//! helper thread: network namespaces are per thread, so entering one in a
//! fresh thread never disturbs the caller's thread or the rest of the
//! process.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};

use crate::error::{LinkError, Result};

/// Directory holding named network namespaces (same as iproute2).
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Outcome of [`create_named_netns`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetnsCreated {
    /// A new, empty network namespace was created.
    Created,
    /// A namespace with that name was already mounted; it was left alone.
    AlreadyExisted,
}

/// The file that represents the named namespace `name`.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// True when `/run/netns/NAME` exists *and* has a namespace mounted on it.
///
/// A bare file without the nsfs mount (left behind by a crash between
/// creating the file and mounting) does not count: entering it would fail.
pub fn named_netns_exists(name: &str) -> bool {
    if validate_name(name).is_err() {
        return false;
    }
    is_netns_mount(&netns_path(name))
}

fn is_netns_mount(path: &Path) -> bool {
    statfs(path)
        .map(|s| s.filesystem_type() == NSFS_MAGIC)
        .unwrap_or(false)
}

fn validate_name(name: &str) -> Result<()> {
    let bad = |reason: &str| LinkError::InvalidArgument {
        op: "netns name",
        reason: format!("{name:?}: {reason}"),
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(bad("must be a plain file name"));
    }
    if name.len() > 255 {
        return Err(bad("longer than 255 bytes"));
    }
    Ok(())
}

fn netns_err(op: &'static str, path: &Path, e: impl Into<io::Error>) -> LinkError {
    LinkError::Netns {
        op,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// Serialises the one-time setup of `/run/netns` within this process, so
/// that concurrent creators do not stack several bind mounts on it.
static RUN_DIR_READY: Mutex<bool> = Mutex::new(false);

/// Make sure `/run/netns` exists and is a shared mount point, the way
/// iproute2 does: try to mark it shared; if that fails with EINVAL it is not
/// a mount point yet, so bind-mount it onto itself and try again.
fn ensure_run_dir() -> Result<()> {
    let mut ready = RUN_DIR_READY.lock().unwrap_or_else(|p| p.into_inner());
    if *ready {
        return Ok(());
    }
    let dir = Path::new(NETNS_RUN_DIR);
    std::fs::create_dir_all(dir).map_err(|e| netns_err("create directory", dir, e))?;
    let make_shared = || {
        mount::<str, Path, str, str>(
            Some("none"),
            dir,
            None,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None,
        )
    };
    match make_shared() {
        Ok(()) => {}
        Err(nix::errno::Errno::EINVAL) => {
            mount::<Path, Path, str, str>(
                Some(dir),
                dir,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(|e| netns_err("bind-mount onto itself", dir, e))?;
            make_shared().map_err(|e| netns_err("make shared mount", dir, e))?;
        }
        Err(e) => return Err(netns_err("make shared mount", dir, e)),
    }
    *ready = true;
    Ok(())
}

/// Create the named network namespace `name`, like `ip netns add NAME`.
///
/// Idempotent: if it already exists, returns [`NetnsCreated::AlreadyExisted`]
/// without touching it. The new namespace contains only a down `lo`.
pub fn create_named_netns(name: &str) -> Result<NetnsCreated> {
    validate_name(name)?;
    ensure_run_dir()?;
    let path = netns_path(name);
    if is_netns_mount(&path) {
        return Ok(NetnsCreated::AlreadyExisted);
    }
    // A plain file left by an interrupted creation is reused; anything we
    // fail to mount on is removed again below.
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o444)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| netns_err("create mount point file", &path, e))?;

    let target = path.clone();
    let made = std::thread::Builder::new()
        .name(format!("netns-add-{name}"))
        .spawn(move || -> Result<()> {
            // This thread gets a brand-new network namespace; it exits right
            // after, so nothing else ever runs in it by accident.
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| netns_err("unshare(CLONE_NEWNET) for", &target, e))?;
            mount::<str, Path, str, str>(
                Some("/proc/thread-self/ns/net"),
                &target,
                None,
                MsFlags::MS_BIND,
                None,
            )
            .map_err(|e| netns_err("bind-mount new netns onto", &target, e))
        })
        .map_err(|e| LinkError::Thread {
            path: path.clone(),
            source: e,
        })?
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));

    if let Err(e) = made {
        // A concurrent creator may have won the race; that is success.
        if is_netns_mount(&path) {
            return Ok(NetnsCreated::AlreadyExisted);
        }
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(NetnsCreated::Created)
}

/// Delete the named namespace, like `ip netns del NAME`.
///
/// Detaches the bind mount (the namespace itself lives on while a process,
/// socket or open file still references it) and removes the file. Returns
/// `Ok(false)` when there was nothing to delete.
pub fn delete_named_netns(name: &str) -> Result<bool> {
    validate_name(name)?;
    let path = netns_path(name);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(false);
    }
    unmount_and_remove(&path)
}

/// Like [`delete_named_netns`], but if the mount held the namespace's last
/// reference, that reference is dropped on a short-lived thread of its own.
///
/// The last reference going makes the kernel queue the namespace's clean-up
/// (`cleanup_net`), which walks every namespace of the host: about 7 ms of
/// CPU with 10,000 of them. Its worker is woken on the CPU of whoever
/// dropped the reference and preempts that thread there, even with another
/// CPU idle (docs/benchmarks.md). The name is free again when this returns;
/// only the kernel's clean-up starts later, and at the latest when the
/// process exits.
pub fn delete_named_netns_releasing_elsewhere(name: &str) -> Result<bool> {
    validate_name(name)?;
    let path = netns_path(name);
    let held = match open_netns(&path) {
        Ok(file) => Some(file),
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(false),
        // Unreadable: delete it all the same, releasing it here.
        Err(_) => None,
    };
    let deleted = unmount_and_remove(&path)?;
    if let Some(file) = held {
        // Should the thread not start, the reference is dropped here.
        let _ = std::thread::Builder::new()
            .name("netns-release".into())
            .spawn(move || drop(file));
    }
    Ok(deleted)
}

fn unmount_and_remove(path: &Path) -> Result<bool> {
    match umount2(path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (stale file); ENOENT: raced away.
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(netns_err("unmount", path, e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(netns_err("remove", path, e)),
    }
}

/// Open a namespace file (e.g. `/run/netns/NAME`) read-only, close-on-exec.
///
/// The returned file is what [`crate::VethSpec::peer_netns`] wants.
pub fn open_netns(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| netns_err("open netns", path, e))
}

/// Run `f` in a fresh thread that has entered the network namespace at
/// `path`, and return its result.
///
/// Sockets opened inside `f` belong to that namespace for their whole life,
/// whichever thread uses them later; processes spawned from `f` start there
/// too. A panic in `f` is propagated to the caller.
pub fn run_in_netns<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let ns = open_netns(path)?;
    let owned_path = path.to_path_buf();
    let thread_name = format!(
        "netns-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let handle = std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || -> Result<T> {
            setns(&ns, CloneFlags::CLONE_NEWNET)
                .map_err(|e| netns_err("setns(CLONE_NEWNET) into", &owned_path, e))?;
            drop(ns);
            Ok(f())
        })
        .map_err(|e| LinkError::Thread {
            path: path.to_path_buf(),
            source: e,
        })?;
    handle
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(validate_name("sbx-1").is_ok());
        for bad in ["", ".", "..", "a/b", "x\0y"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(!named_netns_exists("../etc"));
        assert_eq!(netns_path("abc"), PathBuf::from("/run/netns/abc"));
    }
}
