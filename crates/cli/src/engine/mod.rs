//! The engine: turns requests into store rows, compiled elements and kernel
//! plumbing, in an order that fails closed, and repairs what an interrupted
//! run left behind. Front ends (the CLI, later the daemon and CNI plugin) call
//! it and never build rules themselves.

mod bridge_devices;
mod bridges;
mod cni;
mod error;
mod exposure;
mod faults;
mod lifecycle;
mod mode;
mod packet_size;
mod plumbing;
mod probe;
mod reconcile;
mod status;
mod tenant_rules;
mod update;
mod verify;
mod view;

pub use cni::{CniAttachRequest, CniGcReport};
pub use error::EngineError;
pub use exposure::ExposeRequest;
pub use lifecycle::{CreateRequest, DestroyOutcome};
pub use plumbing::{BRIDGE_MAX_PORTS, RETIRED_LINKS_BATCH, RETIRED_LINK_GROUP};
pub use probe::{
    Expect, ProbeOptions, ProbeReport, ProbeResult, SandboxProbes, DEFAULT_INTERNET_TARGETS,
};
pub use reconcile::RepairReport;
pub use tenant_rules::TenantRuleView;
pub use update::{UpdateOutcome, UpdateRequest};
pub use verify::{Difference, VerifyReport};
pub use view::{SandboxView, StatusView};

use palisade_core::config::Config;
use palisade_core::element::{Family, TABLE};
use palisade_core::model::Sandbox;
use palisade_nft::NftSocket;
use palisade_store::{SandboxRecord, StateLock, Store};
use std::path::{Path, PathBuf};

/// Default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/palisade";

/// The model of a stored sandbox under this configuration.
fn model_of(config: &Config, r: &SandboxRecord) -> Sandbox {
    Sandbox {
        id: r.id,
        name: r.name.clone(),
        tenant: r.tenant.clone(),
        tenant_id: r.tenant_id,
        kind: r.kind,
        internet: r.internet,
        allow: r.allow.clone(),
        policy_epoch: r.policy_epoch,
        exposures: r.exposures.clone(),
        attachment: r.offset.map(|o| Sandbox::attachment_for(config, r.id, o)),
        cni: r.cni.clone(),
    }
}

/// What the ready sandboxes and the tenant rules of `store` compile to.
fn compile_store(
    config: &Config,
    store: &Store,
) -> Result<palisade_core::compile::Ruleset, EngineError> {
    let sandboxes: Vec<Sandbox> = store
        .sandboxes()?
        .iter()
        .filter(|r| r.state == palisade_store::SandboxState::Ready)
        .map(|r| model_of(config, r))
        .collect();
    let rules: Vec<_> = store
        .tenant_rules(None)?
        .into_iter()
        .map(|r| (r.tenant_id, r.rule))
        .collect();
    Ok(palisade_core::compile::compile(config, &sandboxes, &rules))
}

/// The ruleset the store in `state_dir` compiles to, read without the state
/// lock, the kernel sockets or any repair: printing it changes nothing on
/// the host. No store yet means no sandboxes.
pub fn stored_ruleset(
    config: &Config,
    state_dir: &Path,
) -> Result<palisade_core::compile::Ruleset, EngineError> {
    if !state_dir.join(palisade_store::DB_FILE).exists() {
        return Ok(palisade_core::compile::compile(config, &[], &[]));
    }
    compile_store(config, &Store::open(state_dir)?)
}

/// An open engine: the state lock, the store and persistent kernel sockets.
pub struct Engine {
    config: Config,
    state_dir: PathBuf,
    store: Store,
    nft: NftSocket,
    rtnl: palisade_link::Rtnl,
    _lock: StateLock,
}

/// An [`Engine`] without the state lock: see [`Engine::idle`].
pub struct IdleEngine {
    config: Config,
    state_dir: PathBuf,
    store: Store,
    nft: NftSocket,
    rtnl: palisade_link::Rtnl,
}

impl IdleEngine {
    /// Takes the state lock again and repairs what another process left
    /// interrupted meanwhile, as [`Engine::open`] does; the store is read
    /// afresh by every query, so what other processes changed is seen.
    pub fn resume(self) -> Result<(Engine, RepairReport), EngineError> {
        let lock = take_state_lock(&self.state_dir)?;
        let mut engine = Engine {
            config: self.config,
            state_dir: self.state_dir,
            store: self.store,
            nft: self.nft,
            rtnl: self.rtnl,
            _lock: lock,
        };
        // Another process may have switched the mode meanwhile (only
        // possible with no sandbox attached): one query while it has not.
        engine.settle_mode()?;
        let report = engine.repair(false)?;
        Ok((engine, report))
    }
}

fn take_state_lock(state_dir: &Path) -> Result<StateLock, EngineError> {
    StateLock::acquire(state_dir, || {
        eprintln!("palisade: waiting for another palisade process to finish...")
    })
    .map_err(|source| EngineError::Lock {
        dir: state_dir.display().to_string(),
        source,
    })
}

impl Engine {
    /// Takes the state lock, opens the store and the kernel sockets, then
    /// repairs what an interrupted earlier run left (O(1) when healthy).
    pub fn open(config: Config, state_dir: &Path) -> Result<(Engine, RepairReport), EngineError> {
        Self::open_with(config, state_dir, false)
    }

    /// `init`: like [`Engine::open`], but always with the full reconcile
    /// (host plumbing, whole table, links), done once.
    pub fn open_init(
        config: Config,
        state_dir: &Path,
    ) -> Result<(Engine, RepairReport), EngineError> {
        Self::open_with(config, state_dir, true)
    }

    fn open_with(
        config: Config,
        state_dir: &Path,
        full: bool,
    ) -> Result<(Engine, RepairReport), EngineError> {
        std::fs::create_dir_all(state_dir).map_err(|source| EngineError::Lock {
            dir: state_dir.display().to_string(),
            source,
        })?;
        let lock = take_state_lock(state_dir)?;
        let store = Store::open(state_dir)?;
        let nft = NftSocket::open().map_err(|e| EngineError::Netfilter(Box::new(e)))?;
        let rtnl = palisade_link::Rtnl::open().map_err(|e| EngineError::Rtnetlink(Box::new(e)))?;
        let mut engine = Engine {
            config,
            state_dir: state_dir.to_path_buf(),
            store,
            nft,
            rtnl,
            _lock: lock,
        };
        // Before anything reads the mode.
        engine.settle_mode()?;
        // Before the repair, which may attach sandboxes to their bridges.
        engine.check_bridge_layout(full)?;
        let report = engine.repair(full)?;
        Ok((engine, report))
    }

    /// Releases the state lock and keeps the store and the kernel sockets
    /// for [`IdleEngine::resume`]: a long-running process (the daemon)
    /// between two operations, so that another process may take the lock
    /// meanwhile without the next operation paying for a new engine.
    pub fn idle(self) -> IdleEngine {
        IdleEngine {
            config: self.config,
            state_dir: self.state_dir,
            store: self.store,
            nft: self.nft,
            rtnl: self.rtnl,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The model of a stored sandbox.
    fn model(&self, r: &SandboxRecord) -> Sandbox {
        model_of(&self.config, r)
    }

    /// Every sandbox in state `ready`, as models.
    /// The models of the ready sandboxes (only the one named `only`, if
    /// given), without keeping their rows: at 10,000 sandboxes the rows
    /// alongside would double what `verify` and `init` hold.
    fn ready_models(
        &self,
        only: Option<&palisade_core::names::SandboxName>,
    ) -> Result<Vec<Sandbox>, EngineError> {
        Ok(self
            .store
            .sandboxes()?
            .into_iter()
            .filter(|r| r.state == palisade_store::SandboxState::Ready)
            .filter(|r| only.is_none_or(|name| &r.name == name))
            .map(|r| self.model(&r))
            .collect())
    }

    fn ready_sandboxes(&self) -> Result<Vec<(SandboxRecord, Sandbox)>, EngineError> {
        Ok(self
            .store
            .sandboxes()?
            .into_iter()
            .filter(|r| r.state == palisade_store::SandboxState::Ready)
            .map(|r| {
                let m = self.model(&r);
                (r, m)
            })
            .collect())
    }

    /// The compiled ruleset for the current store.
    pub fn ruleset(&self) -> Result<palisade_core::compile::Ruleset, EngineError> {
        compile_store(&self.config, &self.store)
    }

    /// True when every table palisade uses in this mode exists (one
    /// `GETTABLE` request per family: O(1) whatever the tables hold).
    fn table_present(&mut self) -> Result<bool, EngineError> {
        for family in palisade_core::compile::families(&self.config) {
            let exists = self
                .nft
                .table_exists(family)
                .map_err(|e| EngineError::ReadBack(Box::new(e)))?;
            if !exists {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub fn sandbox_views(&self, tenant: Option<&str>) -> Result<Vec<SandboxView>, EngineError> {
        Ok(self
            .store
            .sandboxes()?
            .iter()
            .filter(|r| tenant.is_none_or(|t| r.tenant.as_str() == t))
            .map(|r| SandboxView::new(&self.config, r, &self.model(r)))
            .collect())
    }

    pub fn sandbox_view(&self, name: &str) -> Result<SandboxView, EngineError> {
        let name = palisade_core::names::SandboxName::new(name)?;
        let r = self
            .store
            .sandbox(&name)?
            .ok_or_else(|| EngineError::NotFound(name.to_string()))?;
        Ok(SandboxView::new(&self.config, &r, &self.model(&r)))
    }
}

/// Name of palisade's table in a family, for messages.
pub fn table_name(family: Family) -> String {
    format!("{} {TABLE}", family.keyword())
}
