//! Error type of the crate.
//!
//! Every variant says what was being done (which set, which family, which
//! `nft` invocation) so a caller can log it without wrapping it again.

use std::io;

use palisade_core::element::Family;

/// What a netlink message asked the kernel to do; used in error context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    /// `NFT_MSG_NEWSETELEM`.
    Add,
    /// `NFT_MSG_DELSETELEM`.
    Delete,
    /// `NFT_MSG_DESTROYSETELEM` (delete, absent elements ignored).
    Destroy,
    /// `NFT_MSG_GETSETELEM` dump.
    List,
}

impl SetOp {
    /// Lower-case verb for messages.
    pub fn verb(self) -> &'static str {
        match self {
            SetOp::Add => "add",
            SetOp::Delete => "delete",
            SetOp::Destroy => "destroy",
            SetOp::List => "list",
        }
    }
}

/// Errors of nf_tables I/O.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// A socket system call failed (open, bind, send, receive).
    #[error("netlink socket: {op} failed: {source}")]
    Socket {
        op: &'static str,
        #[source]
        source: io::Error,
    },

    /// The kernel rejected a message about one set; the whole batch it was
    /// part of was aborted.
    #[error(
        "nf_tables refused to {} elements of set {set} in table {} palisade: {} (errno {errno}){}",
        .op.verb(),
        .family.keyword(),
        errno_text(*.errno),
        ext_text(.message)
    )]
    Kernel {
        op: SetOp,
        family: Family,
        set: String,
        errno: i32,
        /// Extended ack message (`NLMSGERR_ATTR_MSG`), when the kernel sent one.
        message: Option<String>,
    },

    /// The kernel rejected the batch as a whole (not one of its set messages).
    #[error("nf_tables refused the batch: {} (errno {errno}){}", errno_text(*.errno), ext_text(.message))]
    Batch { errno: i32, message: Option<String> },

    /// Conntrack (ctnetlink) refused a dump or a delete.
    #[error("conntrack refused to {op}: {} (errno {errno}){}", errno_text(*.errno), ext_text(.message))]
    Conntrack {
        op: &'static str,
        errno: i32,
        message: Option<String>,
    },

    /// An element cannot be encoded (e.g. a key longer than nf_tables allows).
    #[error("element for set {set} in table {} palisade: {reason}", .family.keyword())]
    InvalidElement {
        family: Family,
        set: String,
        reason: String,
    },

    /// The kernel answered something this crate does not understand.
    #[error("netlink protocol error: {0}")]
    Protocol(String),

    /// The `nft` binary could not be started or fed.
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },

    /// `nft` ran and failed.
    #[error("`nft {args}` failed ({status}): {stderr}")]
    Nft {
        args: String,
        status: String,
        stderr: String,
    },

    /// `nft -j` printed something that is not JSON.
    #[error("`nft {args}` printed invalid JSON: {source}")]
    Json {
        args: String,
        #[source]
        source: serde_json::Error,
    },

    /// A throwaway network namespace could not be created.
    #[error("cannot create a throwaway network namespace: {source}")]
    Netns {
        #[source]
        source: io::Error,
    },
}

impl NftError {
    /// The kernel's errno, for errors the kernel reported.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NftError::Kernel { errno, .. }
            | NftError::Batch { errno, .. }
            | NftError::Conntrack { errno, .. } => Some(*errno),
            NftError::Socket { source, .. } | NftError::Netns { source } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// strerror text without std's " (os error N)" suffix (the errno is printed
/// separately).
fn errno_text(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.find(" (os error") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

fn ext_text(message: &Option<String>) -> String {
    match message {
        Some(m) => format!(": {m}"),
        None => String::new(),
    }
}
