//! Throwaway network namespaces.
//!
//! `unshare(CLONE_NEWNET)` moves only the calling thread, so a dedicated
//! thread can enter a fresh, empty namespace, do its work there (sockets it
//! opens and processes it spawns live in that namespace) and end; the
//! namespace disappears with its last user. The rest of the process, and
//! the machine's own namespaces, are never touched.

use std::io;

use crate::error::NftError;

/// Runs `f` on a new thread inside a fresh network namespace and returns
/// its result. Needs CAP_SYS_ADMIN. A panic in `f` is propagated.
pub fn with_throwaway_netns<T, F>(f: F) -> Result<T, NftError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| {
            // SAFETY: unshare(2) takes no pointers; it only changes the
            // network namespace of this (new, private) thread.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(NftError::Netns {
                    source: io::Error::last_os_error(),
                });
            }
            Ok(f())
        });
        match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
