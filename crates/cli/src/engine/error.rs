//! Errors of the engine, each with the sandbox or object it concerns.

use palisade_core::names::NameError;
use palisade_core::policy::PortRuleError;

/// What to do about an element batch the kernel refused for want of a
/// table or set: palisade's tables were deleted, or were made by a
/// palisade that compiled other sets (an upgrade before `init`).
fn missing_table_hint(source: &palisade_nft::NftError) -> &'static str {
    match source {
        palisade_nft::NftError::Kernel { errno, .. } if *errno == libc::ENOENT => {
            "; palisade's tables are missing or were made by another version of palisade: \
             run palisade init to rebuild them from the store"
        }
        _ => "",
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    PortRule(#[from] PortRuleError),
    #[error("sandbox {sandbox}: {why}")]
    InvalidRequest { sandbox: String, why: String },
    #[error("no sandbox named {0}")]
    NotFound(String),
    #[error(
        "network.sandboxes_per_bridge is {wanted}, but the {sandboxes} sandbox(es) here are placed {recorded} per bridge; set it back to {recorded}, or destroy them first"
    )]
    BridgeLayout {
        wanted: u32,
        recorded: u32,
        sandboxes: usize,
    },
    #[error(
        "network.mode is {configured}, but the {sandboxes} sandbox(es) here are attached in {recorded} mode; set network.mode = \"{recorded}\" (or leave it out), or destroy them first"
    )]
    ModeMismatch {
        configured: palisade_core::config::Mode,
        recorded: palisade_core::config::Mode,
        sandboxes: u64,
    },
    #[error(
        "the {sandboxes} sandbox(es) here were placed by an earlier palisade, all on bridge palisade0; run palisade init once to move them to their bridges"
    )]
    BridgeLayoutUnrecorded { sandboxes: usize },
    /// A tenant rule that is not acceptable (the message says why).
    #[error(transparent)]
    TenantRule(#[from] palisade_core::tenant_rule::TenantRuleError),
    /// `rule remove` with an id that is not one of the tenant's rules.
    #[error(
        "tenant {tenant} has no rule {id} (palisade rule list --tenant {tenant} shows its rules)"
    )]
    RuleNotFound { tenant: String, id: u64 },
    /// The kernel refused a tenant rule's element; the rule was not changed.
    #[error("rule {id} of tenant {tenant} ({rule}): firewall update failed, nothing was applied: {source}{}", missing_table_hint(source))]
    RuleElements {
        tenant: String,
        id: u64,
        rule: palisade_core::tenant_rule::TenantRule,
        source: Box<palisade_nft::NftError>,
    },
    #[error(transparent)]
    Store(#[from] palisade_store::StoreError),
    #[error("cannot lock the state directory {dir}: {source}")]
    Lock { dir: String, source: std::io::Error },
    #[error("sandbox {sandbox}: {step}: {source}")]
    Link {
        sandbox: String,
        step: String,
        source: Box<palisade_link::LinkError>,
    },
    #[error("host plumbing: {step}: {source}")]
    Host {
        step: String,
        source: Box<palisade_link::LinkError>,
    },
    #[error(
        "sandbox {sandbox}: firewall update failed, nothing was applied: {source}{}",
        missing_table_hint(source)
    )]
    Elements {
        sandbox: String,
        source: Box<palisade_nft::NftError>,
    },
    #[error("sandbox {sandbox}: cannot forget the connections of its addresses: {source}")]
    Conntrack {
        sandbox: String,
        source: Box<palisade_nft::NftError>,
    },
    #[error("cannot forget the connections of {count} released sandbox address(es): {source}")]
    ConntrackReleased {
        count: usize,
        source: Box<palisade_nft::NftError>,
    },
    #[error("applying palisade's tables failed, the previous tables stay in force: {0}")]
    Ruleset(Box<palisade_nft::NftError>),
    #[error("reading palisade's tables back failed: {0}")]
    ReadBack(Box<palisade_nft::NftError>),
    #[error("nf_tables is not usable here: {0}")]
    Netfilter(Box<palisade_nft::NftError>),
    #[error("rtnetlink is not usable here: {0}")]
    Rtnetlink(Box<palisade_link::LinkError>),
    #[error("{failure}; cleaning up also failed ({cleanup}); the next palisade command will finish the clean-up")]
    RollbackFailed {
        failure: Box<EngineError>,
        cleanup: String,
    },
    #[error("fault injected at {0} (PALISADE_FAIL_AT)")]
    Injected(String),
}
