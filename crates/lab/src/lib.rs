//! A throwaway network lab that proves palisade's isolation with real
//! packets.
//!
//! Rulesets can be unit-tested as text, but the only convincing evidence
//! that a sandbox cannot reach the metadata service or spoof its source
//! address is to send the packets and watch where they land. This crate
//! builds that setting out of network namespaces that it creates and
//! deletes itself:
//!
//! * a [`Lab`] namespace stands in for the host palisade runs on (with
//!   forwarding on), so palisade can be pointed at it without ever touching
//!   the machine's real root namespace;
//! * a [`World`] namespace behind the lab's uplink plays "the internet" and
//!   every forbidden destination (metadata, private ranges), with listeners
//!   that record each arrival and its source address;
//! * [`traffic`] has the listeners, the probes (TCP, UDP, ICMP echo) and
//!   raw-socket helpers to forge packets for attack tests.
//!
//! Every namespace is owned by a [`NetnsGuard`] and deleted on drop, also
//! when a test panics. Nothing here changes the root network namespace.

mod error;
mod lab;
mod netns;
mod sys;
pub mod traffic;
mod world;

pub use error::{LabError, Result};
pub use lab::Lab;
pub use netns::{unique_name, NetnsGuard};
pub use world::World;

/// True when the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// For tests: returns `true` when running as root; otherwise prints a loud
/// `SKIPPED: needs root` line naming `test` and returns `false`, so the
/// caller can `return` early. Lab tests create namespaces, veths and raw
/// sockets, all of which need root; skipping loudly keeps an unprivileged
/// `cargo test` usable without hiding that nothing was proven.
pub fn root_or_skip(test: &str) -> bool {
    if is_root() {
        return true;
    }
    eprintln!("==================================================================");
    eprintln!("SKIPPED: needs root: {test}");
    eprintln!("==================================================================");
    false
}
