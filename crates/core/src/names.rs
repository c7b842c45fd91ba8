//! Names users give (sandboxes, tenants) and the kernel names derived from them.
//!
//! User names are checked against a strict charset before anything else
//! happens, so they can never carry shell or nft metacharacters. Kernel names
//! are not derived from user names at all but from the store's never-reused
//! sandbox id, which makes them collision-free by construction.

use std::fmt;

/// Prefix of every interface palisade creates on the host side. Static rules
/// match it with a wildcard, so an interface is filtered from the instant it
/// exists, before its set elements are added.
pub const IFACE_PREFIX: &str = "pal-";

/// The first bridge in `bridge` mode; the others are `palisade1`, ...
/// ([`crate::bridge_shard`]).
pub const BRIDGE_IFACE: &str = "palisade0";

/// Prefix of bridge mode's bridges. Static rules match it with a wildcard,
/// so a bridge is filtered from the instant it exists.
pub const BRIDGE_PREFIX: &str = "palisade";

/// Interface name of a netns sandbox's end of its veth, inside its namespace.
pub const SANDBOX_IFACE: &str = "eth0";

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;

/// Longest user-given name.
pub const NAME_MAX: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{what} name is empty; use 1-63 characters of a-z, 0-9 and '-'")]
    Empty { what: &'static str },
    #[error("{what} name {shown} is {len} characters long; the limit is 63")]
    TooLong {
        what: &'static str,
        shown: String,
        len: usize,
    },
    #[error("{what} name {shown} must start with a-z or 0-9")]
    BadStart { what: &'static str, shown: String },
    #[error(
        "{what} name {shown} contains {bad}; only a-z, 0-9 and '-' are allowed (pattern [a-z0-9][a-z0-9-]{{0,62}})"
    )]
    BadChar {
        what: &'static str,
        shown: String,
        bad: String,
    },
}

/// Validates a user-given name: `[a-z0-9][a-z0-9-]{0,62}`.
pub fn validate(what: &'static str, name: &str) -> Result<(), NameError> {
    // Debug formatting escapes control characters so the message itself is
    // safe to print.
    let shown = format!("{:?}", truncate_for_display(name));
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    let len = name.chars().count();
    if len > NAME_MAX {
        return Err(NameError::TooLong { what, shown, len });
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameError::BadChar {
            what,
            shown,
            bad: format!("{bad:?}"),
        });
    }
    if name.starts_with('-') {
        return Err(NameError::BadStart { what, shown });
    }
    Ok(())
}

fn truncate_for_display(name: &str) -> String {
    if name.chars().count() > 80 {
        let head: String = name.chars().take(77).collect();
        format!("{head}...")
    } else {
        name.to_string()
    }
}

/// A validated sandbox name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SandboxName(String);

impl SandboxName {
    pub fn new(name: &str) -> Result<Self, NameError> {
        validate("sandbox", name)?;
        Ok(SandboxName(name.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SandboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated tenant name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    pub fn new(name: &str) -> Result<Self, NameError> {
        validate("tenant", name)?;
        Ok(TenantName(name.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Host-side interface name of the sandbox with this id: `pal-` and the id in
/// hex. Ids are never reused, so two sandboxes never share a name; 11 hex
/// digits cover every id below 2^44.
pub fn host_iface(id: u64) -> String {
    let name = format!("{IFACE_PREFIX}{id:x}");
    debug_assert!(name.len() <= IFNAME_MAX);
    name
}

/// Inverse of [`host_iface`]: the sandbox id an interface name belongs to.
pub fn id_of_host_iface(name: &str) -> Option<u64> {
    let hex = name.strip_prefix(IFACE_PREFIX)?;
    if hex.is_empty() || hex.len() > 11 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Only the canonical lower-case, no-leading-zero form is ours.
    let id = u64::from_str_radix(hex, 16).ok()?;
    (host_iface(id) == name).then_some(id)
}

/// What palisade's namespace ids count down from (sandbox ids start at 1,
/// so the first is one less). The kernel's ids are non-negative `i32`s,
/// and one below the maximum keeps the kernel's exclusive upper bound
/// (`id + 1`) from overflowing.
pub const NETNS_ID_TOP: i32 = i32::MAX - 1;

/// The id the host gives the namespace of the sandbox with this id, or
/// `None` once the range is used up (the kernel then picks one). Ids
/// count down as sandbox ids count up, so the newest sandbox's namespace
/// has the lowest id of all palisade's: the kernel finds a namespace's id
/// with a walk over the ids in ascending order, once for each notification
/// about the sandbox's link, and most of those come while it is new
/// (docs/architecture.md, "Namespace ids").
pub fn netns_id(sandbox_id: u64) -> Option<i32> {
    let offset = i32::try_from(sandbox_id).ok()?;
    (offset <= NETNS_ID_TOP).then(|| NETNS_ID_TOP - offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn namespace_ids_count_down_from_the_top_and_stop_at_zero() {
        assert_eq!(netns_id(0), Some(NETNS_ID_TOP));
        assert_eq!(netns_id(1), Some(NETNS_ID_TOP - 1));
        assert!(netns_id(2) < netns_id(1));
        assert_eq!(netns_id(NETNS_ID_TOP as u64), Some(0));
        assert_eq!(netns_id(NETNS_ID_TOP as u64 + 1), None);
        assert_eq!(netns_id(u64::MAX), None);
    }

    #[test]
    fn accepts_good_names() {
        for n in ["a", "0", "web-1", "a-b-c", &"x".repeat(63)] {
            validate("sandbox", n).unwrap();
        }
    }

    #[test]
    fn rejects_bad_names_with_reason() {
        let cases = [
            ("", "empty"),
            ("-a", "must start"),
            ("A", "contains"),
            ("a b", "contains"),
            ("a;rm -rf /", "contains"),
            ("a/b", "contains"),
            ("..", "contains"),
            ("a\"}", "contains"),
            ("é", "contains"),
            ("a\n", "contains"),
        ];
        for (n, why) in cases {
            let err = validate("sandbox", n).unwrap_err().to_string();
            assert!(err.contains(why), "{n:?}: {err}");
        }
        let long = "a".repeat(64);
        assert!(validate("sandbox", &long)
            .unwrap_err()
            .to_string()
            .contains("64 characters"));
    }

    #[test]
    fn iface_names_fit_and_round_trip() {
        for id in [1u64, 15, 16, 255, 1 << 20, (1 << 44) - 1] {
            let n = host_iface(id);
            assert!(n.len() <= IFNAME_MAX, "{n}");
            assert_eq!(id_of_host_iface(&n), Some(id));
        }
        assert_eq!(id_of_host_iface("pal-01"), None);
        assert_eq!(id_of_host_iface("pal-"), None);
        assert_eq!(id_of_host_iface("eth0"), None);
        assert_eq!(id_of_host_iface("pal-xyz"), None);
    }

    proptest! {
        #[test]
        fn distinct_ids_never_collide(a in 0u64..(1 << 44), b in 0u64..(1 << 44)) {
            prop_assume!(a != b);
            prop_assert_ne!(host_iface(a), host_iface(b));
        }

        #[test]
        fn validated_names_are_safe(s in ".{0,80}") {
            if validate("sandbox", &s).is_ok() {
                prop_assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
                prop_assert!(!s.is_empty() && s.len() <= 63);
            }
        }
    }
}
