//! The input: facts about a running palisade, collected by the daemon.
//!
//! Every type here is plain data. The daemon fills it from its own state (the
//! store, the configuration, the audit log, `palisade verify`); this crate
//! only reads it. Times are RFC 3339 strings and are shown as given.

use serde::{Deserialize, Serialize};

/// Everything a compliance report is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// When the daemon collected this evidence (RFC 3339). Also used as the
    /// report's `generated_at`, since evaluation reads no clock.
    pub collected_at: String,
    /// The result of comparing the kernel's rules with the compiled policy
    /// (`palisade verify`). `None` when it could not be run; every control
    /// that depends on it then fails.
    pub verify: Option<VerifyEvidence>,
    /// The result of active probes (`palisade verify --probe`). `None` when
    /// they were not run: they are optional and their absence fails nothing.
    pub probes: Option<ProbeEvidence>,
    /// The state of the tamper-evident audit log.
    pub audit: AuditEvidence,
    /// The isolation policy in force.
    pub isolation: IsolationEvidence,
    /// API users and the authentication policy.
    pub access: AccessEvidence,
    /// How the API is reachable.
    pub transport: TransportEvidence,
}

/// The static comparison of kernel state with the compiled ruleset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyEvidence {
    /// When the comparison ran (RFC 3339).
    pub checked_at: String,
    /// True when the kernel matched the compiled rules exactly.
    pub in_sync: bool,
    /// Number of differences found (0 when in sync).
    pub differences: usize,
    /// Number of sandboxes the comparison covered.
    pub sandboxes: usize,
    /// True when palisade's nftables tables exist in the kernel at all.
    pub tables_present: bool,
}

/// Active probes: real packets sent from inside sandboxes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeEvidence {
    /// When the probes ran (RFC 3339).
    pub checked_at: String,
    /// Number of probes sent.
    pub probes: usize,
    /// Number of probes whose outcome matched the expectation.
    pub matched: usize,
}

/// The hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvidence {
    /// True when the chain verified from the first record to the last.
    pub chain_intact: bool,
    /// Number of records in the log.
    pub records: u64,
    /// Problems the chain verification reported (empty when intact).
    pub problems: Vec<String>,
    /// Days records are kept before pruning; `None` when no retention period
    /// is configured.
    pub retention_days: Option<u32>,
    /// True when records are chained with a keyed MAC (not a bare hash), so
    /// that someone without the key cannot rewrite the log consistently.
    pub keyed_mac: bool,
    /// True when the MAC key file is readable by its owner only.
    pub key_file_private: bool,
    /// True when logins (successful and failed) are recorded.
    pub records_logins: bool,
    /// True when requests denied by authorisation are recorded.
    pub records_denials: bool,
}

/// The isolation policy compiled into the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationEvidence {
    /// True when traffic from sandboxes is dropped unless a rule allows it.
    pub default_deny: bool,
    /// True when cloud metadata endpoints are blocked.
    pub metadata_blocked: bool,
    /// True when private and special-purpose ranges are blocked.
    pub private_ranges_blocked: bool,
    /// True when the host's own addresses are blocked from sandboxes.
    pub host_blocked: bool,
    /// The inter-sandbox policy as configured: `"deny"` or `"same-tenant"`.
    /// Any other value is reported and fails the controls that use it.
    pub inter_sandbox: String,
    /// True when sandboxes can only send from their own addresses.
    pub anti_spoofing: bool,
    /// True when the rules cover IPv6 as well as IPv4.
    pub ipv6_enforced: bool,
    /// Number of tenants.
    pub tenants: usize,
    /// Number of sandboxes.
    pub sandboxes: usize,
    /// Number of exposed (published) ports.
    pub exposures: usize,
    /// True when every exposed port is implemented as a DNAT to exactly one
    /// sandbox port (no blanket accept towards a sandbox).
    pub exposures_dnat_only: bool,
    /// Number of per-tenant rules in force.
    pub tenant_rules: usize,
}

/// API users and authentication policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEvidence {
    /// Every API user.
    pub users: Vec<UserEvidence>,
    /// Minimum password length.
    pub password_min_length: u32,
    /// Minimum number of character classes (lower, upper, digit, other).
    pub password_min_classes: u32,
    /// Failed logins before an account is locked (0 = never locked).
    pub lockout_threshold: u32,
    /// How long a locked account stays locked.
    pub lockout_minutes: u32,
    /// Requests per minute allowed per client (0 = unlimited).
    pub rate_limit_per_minute: u32,
    /// Lifetime of an access token.
    pub access_token_minutes: u32,
    /// True when passwords are stored as Argon2id hashes.
    pub argon2id: bool,
}

/// One API user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEvidence {
    /// Login name (shown escaped in every rendering).
    pub name: String,
    /// `"admin"`, `"operator"` or `"viewer"`; anything else is reported.
    pub role: String,
    /// The tenant the user is confined to; `None` for a global user.
    pub tenant: Option<String>,
    /// True when the user has TOTP enrolled.
    pub totp: bool,
}

/// How the API is reachable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportEvidence {
    /// True when the API listens on a Unix socket.
    pub unix_socket: bool,
    /// Permission bits of the Unix socket (e.g. `0o660`).
    pub unix_socket_mode: u32,
    /// True when the API is served over TLS on a TCP listener.
    pub tls: bool,
    /// True when there is no plain (non-TLS) TCP listener, or every one is
    /// bound to a loopback address.
    pub plain_tcp_loopback_only: bool,
}
