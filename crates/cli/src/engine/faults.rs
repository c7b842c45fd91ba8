//! Fault injection for the crash and fail-closed tests.
//!
//! `PALISADE_CRASH_AT=<point>` kills the process with SIGKILL at that point,
//! as a `kill -9` would; `PALISADE_FAIL_AT=<point>` makes the step fail as if
//! the kernel had refused it. Both are read once per call and cost nothing
//! when unset. Points: after-record, after-elements, after-netns,
//! after-bridge (bridge mode: a new bridge, before its addresses and
//! routes), after-link, before-ready, destroy-after-mark, destroy-after-link, update-after-journal,
//! rule-after-journal, rule-after-kernel. `rule-after-kernel` comes after
//! the kernel has the change: failing there leaves the journal open, and
//! the next command finishes the change, as after a crash.

use super::EngineError;

/// Crashes or fails here if the environment asks for it.
pub fn point(name: &str) -> Result<(), EngineError> {
    if std::env::var("PALISADE_CRASH_AT").is_ok_and(|v| v == name) {
        // SAFETY: kill(2) on our own pid with a valid signal has no memory
        // safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    if std::env::var("PALISADE_FAIL_AT").is_ok_and(|v| v == name) {
        return Err(EngineError::Injected(name.to_string()));
    }
    Ok(())
}
