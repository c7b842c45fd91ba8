//! The one error type of this crate.
//!
//! Every variant says *what* was being done (`op`), *to what* (an interface,
//! a namespace, a sysctl key) and *where* (the network namespace), plus the
//! errno and, for netlink, the kernel's extended-ack message. Callers build
//! sandboxes out of a dozen kernel calls; without that context an `EEXIST`
//! or `EINVAL` is impossible to attribute.

use std::path::PathBuf;

/// Errors from namespace, netlink, tun and sysctl operations.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A caller-supplied value was rejected before reaching the kernel.
    #[error("invalid argument for {op}: {reason}")]
    InvalidArgument {
        /// The operation that was attempted.
        op: &'static str,
        /// Why the argument is invalid.
        reason: String,
    },

    /// A system call on a named network namespace (or its bind mount) failed.
    #[error("{op} {}: {source}", path.display())]
    Netns {
        /// The operation that was attempted (e.g. "bind-mount netns onto").
        op: &'static str,
        /// The namespace file, e.g. `/run/netns/NAME`.
        path: PathBuf,
        /// The underlying OS error (carries the errno).
        #[source]
        source: std::io::Error,
    },

    /// The kernel refused a netlink request because the object already
    /// exists (`EEXIST`), typically a duplicate interface name.
    #[error(
        "{op} {what} in {netns}: already exists (errno {})\
         {}; pick another name or delete the existing one first",
        libc::EEXIST,
        ext_ack_suffix(ext_ack)
    )]
    AlreadyExists {
        /// The operation that was attempted.
        op: &'static str,
        /// The object (interface name, address, route...).
        what: String,
        /// The network namespace the request was sent in.
        netns: String,
        /// The kernel's extended-ack message, when it sent one.
        ext_ack: Option<String>,
    },

    /// The kernel answered a netlink request with an error.
    #[error(
        "{op} {what} in {netns}: {} (errno {errno}){}",
        nix::errno::Errno::from_raw(*errno).desc(),
        ext_ack_suffix(ext_ack)
    )]
    Netlink {
        /// The operation that was attempted.
        op: &'static str,
        /// The object (interface name, address, route...).
        what: String,
        /// The network namespace the request was sent in.
        netns: String,
        /// The positive errno the kernel returned.
        errno: i32,
        /// The kernel's extended-ack message, when it sent one.
        ext_ack: Option<String>,
    },

    /// The netlink socket itself failed (open, send, receive) or the kernel
    /// sent something this crate could not decode.
    #[error("netlink socket error during {op} {what} in {netns}: {source}")]
    Socket {
        /// The operation that was attempted.
        op: &'static str,
        /// The object the request was about.
        what: String,
        /// The network namespace of the socket.
        netns: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The kernel's list of interfaces could not be read.
    #[error("read the interface list from /proc/thread-self/net/dev: {source}")]
    InterfaceList {
        #[source]
        source: std::io::Error,
    },

    /// `/dev/net/tun` does not exist; this crate never loads modules.
    #[error(
        "cannot create tap {name}: /dev/net/tun is missing \
         (load the `tun` module or create the device node: mknod /dev/net/tun c 10 200)"
    )]
    TunUnavailable {
        /// The tap that was being created.
        name: String,
    },

    /// A tun/tap ioctl failed.
    #[error("{op} for tap {name}: {source}")]
    Tun {
        /// The ioctl or step that failed.
        op: &'static str,
        /// The tap interface name.
        name: String,
        /// The underlying OS error (carries the errno).
        #[source]
        source: std::io::Error,
    },

    /// Reading or writing `/proc/sys/...` failed.
    #[error("{op} sysctl {key} ({}): {source}", path.display())]
    Sysctl {
        /// "read" or "write".
        op: &'static str,
        /// The key as given by the caller.
        key: String,
        /// The resolved /proc/sys path.
        path: PathBuf,
        /// The underlying OS error (carries the errno).
        #[source]
        source: std::io::Error,
    },

    /// Spawning the helper thread that enters a namespace failed.
    #[error("spawning a thread to enter netns {}: {source}", path.display())]
    Thread {
        /// The namespace the thread was meant to enter.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn ext_ack_suffix(ext_ack: &Option<String>) -> String {
    match ext_ack {
        Some(msg) => format!(": kernel says \"{msg}\""),
        None => String::new(),
    }
}

impl LinkError {
    /// The same error about `what` instead: for callers that describe the
    /// object only once a request has failed (a description that costs a
    /// system call, such as a namespace's, is then off the success path).
    pub fn about(self, what: String) -> LinkError {
        match self {
            LinkError::AlreadyExists {
                op, netns, ext_ack, ..
            } => LinkError::AlreadyExists {
                op,
                what,
                netns,
                ext_ack,
            },
            LinkError::Netlink {
                op,
                netns,
                errno,
                ext_ack,
                ..
            } => LinkError::Netlink {
                op,
                what,
                netns,
                errno,
                ext_ack,
            },
            LinkError::Socket {
                op, netns, source, ..
            } => LinkError::Socket {
                op,
                what,
                netns,
                source,
            },
            other => other,
        }
    }

    /// The errno behind this error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            LinkError::AlreadyExists { .. } => Some(libc::EEXIST),
            LinkError::Netlink { errno, .. } => Some(*errno),
            LinkError::Netns { source, .. }
            | LinkError::Socket { source, .. }
            | LinkError::Tun { source, .. }
            | LinkError::Sysctl { source, .. }
            | LinkError::Thread { source, .. }
            | LinkError::InterfaceList { source } => source.raw_os_error(),
            LinkError::TunUnavailable { .. } => Some(libc::ENOENT),
            LinkError::InvalidArgument { .. } => Some(libc::EINVAL),
        }
    }

    /// The kernel's extended-ack message, if it sent one.
    pub fn ext_ack(&self) -> Option<&str> {
        match self {
            LinkError::AlreadyExists { ext_ack, .. } | LinkError::Netlink { ext_ack, .. } => {
                ext_ack.as_deref()
            }
            _ => None,
        }
    }

    /// True when the failure is "that object already exists".
    pub fn is_already_exists(&self) -> bool {
        matches!(self, LinkError::AlreadyExists { .. })
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = LinkError> = std::result::Result<T, E>;
