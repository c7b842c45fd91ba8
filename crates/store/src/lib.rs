//! palisade's state in embedded SQLite: tenants, sandboxes and their address
//! allocations, plus the lock that makes one palisade process the writer.
//!
//! A sandbox row is written with the state `creating` before any kernel
//! change and turned `ready` after the last one; `destroying` is written
//! before teardown. A row in any state but `ready` is therefore an intent
//! journal entry: after a crash the next command finds it in O(1) and
//! finishes or rolls back that sandbox. A policy change (`sandbox update`)
//! keeps the policy it replaces in a one-row journal until the kernel has it.
//!
//! Beside them, [`AuditLog`] keeps a tamper-evident, hash-chained and
//! MAC-authenticated record of who did what (see the `audit` module).

mod accounts;
mod audit;
mod lock;
mod store;

pub use accounts::{Accounts, LoginFailures, UserRecord};
pub use audit::{
    AuditError, AuditFilter, AuditKey, AuditLog, AuditPage, AuditRecord, ChainProblem, ChainReport,
    CheckpointView, NewAuditRecord, Outcome, ProblemKind, PruneReport, AUDIT_KEY_FILE,
    DEFAULT_PAGE, MAX_PAGE, MAX_PROBLEMS,
};
pub use lock::{StateLock, LOCK_FILE};
pub use store::{
    NewSandbox, PolicyColumns, RetiredLink, SandboxRecord, SandboxState, Store, StoreError,
    TenantRuleRecord, DB_FILE,
};
