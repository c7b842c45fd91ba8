//! Creating and destroying sandboxes, failing closed.
//!
//! Create: the row (state `creating`) is written first, so a crash at any
//! later point leaves an intent the next command rolls back; then the set
//! elements (one atomic batch) before the interface exists, so the
//! interface is filtered by its own policy from its first packet; then the
//! interface; then the row turns `ready`. Any error rolls everything back.

use super::{faults, Engine, EngineError, SandboxView};
use palisade_core::compile::sandbox_elements;
use palisade_core::model::{Sandbox, SandboxKind};
use palisade_core::names::{SandboxName, TenantName};
use palisade_core::policy::PortRule;
use palisade_store::{NewSandbox, SandboxRecord, SandboxState};

/// A `sandbox create` request as given by a user (not yet validated).
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub name: String,
    pub tenant: String,
    pub kind: SandboxKind,
    pub internet: bool,
    pub allow: Vec<String>,
}

/// What `destroy` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestroyOutcome {
    Destroyed(Box<SandboxView>),
    NotFound,
}

impl Engine {
    /// Validates a request without touching anything.
    fn validate(&self, req: &CreateRequest) -> Result<NewSandbox, EngineError> {
        let name = SandboxName::new(&req.name)?;
        if req.kind == SandboxKind::Cni {
            return Err(EngineError::InvalidRequest {
                sandbox: name.to_string(),
                why: "sandboxes of kind cni are made by palisade's CNI plugin, not by hand".into(),
            });
        }
        let (tenant, internet, allow) =
            self.resolve_policy(&name, &req.tenant, req.kind, req.internet, &req.allow)?;
        let netns_created =
            req.kind == SandboxKind::Netns && !palisade_link::named_netns_exists(name.as_str());
        Ok(NewSandbox {
            name,
            tenant,
            kind: req.kind,
            internet,
            allow,
            netns_created,
            cni: None,
        })
    }

    /// The tenant and egress policy of a new sandbox: the request's, else
    /// the tenant's defaults from the configuration; checked for sense.
    pub(super) fn resolve_policy(
        &self,
        name: &SandboxName,
        tenant: &str,
        kind: SandboxKind,
        internet: bool,
        allow: &[String],
    ) -> Result<(TenantName, bool, Vec<PortRule>), EngineError> {
        let tenant = TenantName::new(tenant)?;
        let invalid = |why: String| EngineError::InvalidRequest {
            sandbox: name.to_string(),
            why,
        };
        let mut rules = Vec::new();
        for a in allow {
            let rule: PortRule = a.parse()?;
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
        if kind == SandboxKind::None && (internet || !rules.is_empty()) {
            return Err(invalid(
                "--kind none has networking disabled; --internet and --allow need networking"
                    .into(),
            ));
        }
        let defaults = self.config.tenant_defaults(&tenant);
        let (internet, rules) = if kind == SandboxKind::None {
            (false, Vec::new())
        } else {
            let internet = internet || defaults.internet;
            let rules = if rules.is_empty() {
                defaults.allow
            } else {
                rules
            };
            (internet, rules)
        };
        if !rules.is_empty() && !internet {
            return Err(invalid(
                "--allow narrows internet egress; add --internet".into(),
            ));
        }
        if internet && self.config.network.uplink.is_none() {
            return Err(invalid(
                "--internet needs network.uplink in the configuration (the host interface to masquerade through)".into(),
            ));
        }
        Ok((tenant, internet, rules))
    }

    /// Creates a sandbox; on any failure nothing of it remains.
    pub fn create(&mut self, req: &CreateRequest) -> Result<SandboxView, EngineError> {
        let new = self.validate(req)?;
        let range = palisade_core::ipam::OffsetRange::of(&self.config.network.subnet);
        let record = self.store.insert_sandbox(&new, range)?;
        let sandbox = self.model(&record);
        let mut elements_applied = false;
        match self.build(&record, &sandbox, &mut elements_applied) {
            Ok(()) => {
                let ready = SandboxRecord {
                    state: SandboxState::Ready,
                    ..record
                };
                Ok(SandboxView::new(&self.config, &ready, &sandbox))
            }
            // A refused element batch changed nothing (it is atomic), so the
            // roll-back must not delete those keys: they may be someone
            // else's.
            Err(failure) => Err(self.roll_back(&record, &sandbox, elements_applied, failure)),
        }
    }

    /// Undoes a failed create: the failure, or both it and why the clean-up
    /// failed too (the next command's repair finishes it then).
    pub(super) fn roll_back(
        &mut self,
        record: &SandboxRecord,
        sandbox: &Sandbox,
        elements_applied: bool,
        failure: EngineError,
    ) -> EngineError {
        match self.tear_down(record, sandbox, elements_applied) {
            Ok(()) => failure,
            Err(cleanup) => EngineError::RollbackFailed {
                failure: Box::new(failure),
                cleanup: cleanup.to_string(),
            },
        }
    }

    fn build(
        &mut self,
        record: &SandboxRecord,
        sandbox: &Sandbox,
        elements_applied: &mut bool,
    ) -> Result<(), EngineError> {
        faults::point("after-record")?;
        if let Some(offset) = record.offset {
            // A reused address: the previous holder's connections must not
            // carry over to this sandbox.
            if self.store.is_released(offset)? {
                self.forget_sandbox_connections(sandbox)?;
                self.store.clear_released(&[offset])?;
            }
        }
        let elements = sandbox_elements(&self.config, sandbox);
        if !elements.is_empty() {
            self.add_sandbox_elements(sandbox, &elements)?;
            *elements_applied = true;
        }
        faults::point("after-elements")?;
        self.attach(sandbox, record.netns_created)?;
        faults::point("before-ready")?;
        self.store.set_state(record.id, SandboxState::Ready)?;
        Ok(())
    }

    /// Adds a new sandbox's elements in one batch (fault point `elements`).
    pub(super) fn add_sandbox_elements(
        &mut self,
        sandbox: &Sandbox,
        elements: &[palisade_core::element::Element],
    ) -> Result<(), EngineError> {
        faults::point("elements")?;
        self.nft
            .apply_elements(elements, &[])
            .map_err(|source| EngineError::Elements {
                sandbox: sandbox.name.to_string(),
                source: Box::new(source),
            })
    }

    /// Removes every trace of a sandbox: links, namespace (if ours),
    /// elements (unless `with_elements` is false: they were never added),
    /// then the row. Idempotent, so it also finishes an interrupted create
    /// or destroy.
    pub(super) fn tear_down(
        &mut self,
        record: &SandboxRecord,
        sandbox: &Sandbox,
        with_elements: bool,
    ) -> Result<(), EngineError> {
        let retired = self.detach(sandbox, record.netns_created)?;
        faults::point("destroy-after-link")?;
        let mut elements = sandbox_elements(&self.config, sandbox);
        elements.extend(self.last_on_bridge(sandbox)?);
        if with_elements && !elements.is_empty() {
            self.nft
                .apply_elements(&[], &elements)
                .map_err(|source| EngineError::Elements {
                    sandbox: sandbox.name.to_string(),
                    source: Box::new(source),
                })?;
        }
        // The address goes back to the pool marked released: its tracked
        // connections are forgotten before it is handed out again (in
        // `build`, or all at once by `init`), not here, where it would cost
        // a walk of the whole conntrack table on every destroy.
        let waiting = self.store.delete_sandbox(record.id, retired)?;
        if waiting >= super::plumbing::RETIRED_LINKS_BATCH {
            self.reap_waiting_links()?;
        }
        Ok(())
    }

    /// Deletes the conntrack entries of the sandbox's addresses; returns how
    /// many.
    pub(super) fn forget_sandbox_connections(
        &mut self,
        sandbox: &Sandbox,
    ) -> Result<usize, EngineError> {
        let addrs = sandbox.addresses();
        if addrs.is_empty() {
            return Ok(0);
        }
        self.forget_addresses(&addrs)
            .map_err(|source| EngineError::Conntrack {
                sandbox: sandbox.name.to_string(),
                source: Box::new(source),
            })
    }

    /// Deletes the conntrack entries of these addresses (one walk of the
    /// table); a kernel without conntrack netlink has none to forget.
    pub(super) fn forget_addresses(
        &mut self,
        addrs: &[std::net::IpAddr],
    ) -> Result<usize, palisade_nft::NftError> {
        match self.nft.forget_connections(addrs) {
            Err(e) if matches!(e.errno(), Some(libc::EOPNOTSUPP | libc::EPROTONOSUPPORT)) => Ok(0),
            other => other,
        }
    }

    /// Destroys a sandbox; destroying one that does not exist is not an error.
    pub fn destroy(&mut self, name: &str) -> Result<DestroyOutcome, EngineError> {
        let name = SandboxName::new(name)?;
        let Some(record) = self.store.sandbox(&name)? else {
            return Ok(DestroyOutcome::NotFound);
        };
        let sandbox = self.model(&record);
        let view = SandboxView::new(&self.config, &record, &sandbox);
        self.store.set_state(record.id, SandboxState::Destroying)?;
        faults::point("destroy-after-mark")?;
        self.tear_down(&record, &sandbox, true)?;
        // By hand, a CNI sandbox's port outlives its record: shut it.
        self.quarantine_cni_port(&sandbox)?;
        Ok(DestroyOutcome::Destroyed(Box::new(view)))
    }
}
