//! Tenant rules: allow or deny rules for every sandbox of a tenant
//! (`palisade rule add|list|remove`).
//!
//! A rule is validated against the configuration (an allow rule never
//! overlaps what palisade always denies), recorded in the store, and applied
//! as its one interval-set element in one atomic batch (O(1) whatever the
//! number of sandboxes, for a change that takes nothing away), and it
//! applies to the tenant's future sandboxes
//! without any further change (they carry the tenant's mark). A journal row
//! covers the moment between the store and the kernel, so a crash there is
//! finished by the next command's repair.
//!
//! A change that narrows what the tenant may do (a deny rule added, an
//! allow rule removed) also moves each of the tenant's sandboxes to its
//! next policy generation in the same batch, as a narrowing `sandbox
//! update` does for one sandbox: their established connections are judged
//! again by the new rules from their next packet on, and the ones the rules
//! now forbid end. That costs two elements per address of each of the
//! tenant's sandboxes, O(sandboxes of the tenant); widening changes stay
//! one element.

use super::{faults, Engine, EngineError};
use palisade_core::element::Element;
use palisade_core::exposure::PortRange;
use palisade_core::model::{next_policy_epoch, previous_policy_epoch};
use palisade_core::names::TenantName;
use palisade_core::policy::Proto;
use palisade_core::tenant_rule::{RuleAction, TenantRule};
use palisade_store::{SandboxRecord, TenantRuleRecord};

/// The tenant's sandboxes moved from one policy generation to another: the
/// store's side (sandbox id, generation) and the kernel's (elements).
#[derive(Default)]
struct GenerationStep {
    before: Vec<(u64, u32)>,
    after: Vec<(u64, u32)>,
    add: Vec<Element>,
    delete: Vec<Element>,
}

/// A tenant rule as the front ends show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TenantRuleView {
    pub id: u64,
    pub tenant: String,
    pub action: RuleAction,
    pub proto: Proto,
    /// `None` (JSON `null`): all ports.
    pub ports: Option<PortRange>,
    pub cidr: ipnet::IpNet,
    pub created_at: String,
}

impl TenantRuleView {
    fn new(r: &TenantRuleRecord) -> TenantRuleView {
        TenantRuleView {
            id: r.id,
            tenant: r.tenant.to_string(),
            action: r.rule.action,
            proto: r.rule.proto,
            ports: r.rule.ports,
            cidr: r.rule.cidr,
            created_at: r.created_at.clone(),
        }
    }

    /// The rule itself.
    pub fn rule(&self) -> TenantRule {
        TenantRule {
            action: self.action,
            proto: self.proto,
            ports: self.ports,
            cidr: self.cidr,
        }
    }
}

impl Engine {
    /// Adds a rule for every sandbox of `tenant`, present and future. Fails
    /// closed: if the kernel refuses the element, the rule is not kept.
    pub fn add_tenant_rule(
        &mut self,
        tenant: &str,
        rule: TenantRule,
    ) -> Result<TenantRuleView, EngineError> {
        let tenant = TenantName::new(tenant)?;
        rule.validate(&self.config)?;
        let step = if rule.action == RuleAction::Deny {
            self.next_generations(&tenant)?
        } else {
            GenerationStep::default()
        };
        let record =
            self.store
                .add_tenant_rule_setting_epochs(&tenant, &rule, true, &step.after)?;
        let mut add = vec![rule.element(record.tenant_id)];
        add.extend(step.add);
        let applied = faults::point("rule-after-journal").and_then(|()| {
            self.nft
                .apply_elements(&add, &step.delete)
                .map_err(|source| rule_error(&record, source))
        });
        if let Err(failure) = applied {
            // The batch is atomic: the kernel has nothing of the rule, and
            // the sandboxes' generations are as they were.
            self.store
                .remove_tenant_rule_setting_epochs(record.id, &step.before)?;
            return Err(failure);
        }
        // The kernel has the change and the journal is still open: a crash
        // here is finished by the next command's repair.
        faults::point("rule-after-kernel")?;
        self.store.finish_rule_change()?;
        Ok(TenantRuleView::new(&record))
    }

    /// The rules of one tenant, or of all, ordered by id.
    pub fn tenant_rules(&self, tenant: Option<&str>) -> Result<Vec<TenantRuleView>, EngineError> {
        let tenant = tenant.map(TenantName::new).transpose()?;
        Ok(self
            .store
            .tenant_rules(tenant.as_ref())?
            .iter()
            .map(TenantRuleView::new)
            .collect())
    }

    /// Removes rule `id` of `tenant`: the store forgets it (journaled),
    /// then its element leaves the kernel.
    pub fn remove_tenant_rule(
        &mut self,
        tenant: &str,
        id: u64,
    ) -> Result<TenantRuleView, EngineError> {
        let tenant = TenantName::new(tenant)?;
        let record = self
            .store
            .tenant_rule(id)?
            .filter(|r| r.tenant == tenant)
            .ok_or_else(|| EngineError::RuleNotFound {
                tenant: tenant.to_string(),
                id,
            })?;
        let step = if record.rule.action == RuleAction::Allow {
            self.next_generations(&tenant)?
        } else {
            GenerationStep::default()
        };
        // The store forgets the rule first, with a journal row: a crash
        // from here on is finished by the next command (the rule's element
        // leaves the kernel), as for a rule added.
        self.store
            .remove_tenant_rule_journaled(&record, &step.after)?;
        let mut delete = vec![record.rule.element(record.tenant_id)];
        delete.extend(step.delete);
        let applied = faults::point("rule-after-journal").and_then(|()| {
            self.nft
                .apply_elements(&step.add, &delete)
                .map_err(|source| rule_error(&record, source))
        });
        if let Err(failure) = applied {
            // The batch is atomic: the kernel still has the rule.
            self.store.restore_tenant_rule(&record, &step.before)?;
            return Err(failure);
        }
        faults::point("rule-after-kernel")?;
        self.store.finish_rule_change()?;
        Ok(TenantRuleView::new(&record))
    }

    /// The tenant's ready sandboxes, each moved to its next policy
    /// generation: what a narrowing rule change applies with its rule.
    fn next_generations(&self, tenant: &TenantName) -> Result<GenerationStep, EngineError> {
        let mut step = GenerationStep::default();
        for record in self.tenant_sandboxes(tenant)? {
            let next = SandboxRecord {
                policy_epoch: next_policy_epoch(record.policy_epoch),
                ..record.clone()
            };
            let (add, delete) = self.policy_diff(&self.model(&record), &self.model(&next));
            if add.is_empty() && delete.is_empty() {
                // No address: nothing of it is stamped.
                continue;
            }
            step.before.push((record.id, record.policy_epoch));
            step.after.push((next.id, next.policy_epoch));
            step.add.extend(add);
            step.delete.extend(delete);
        }
        Ok(step)
    }

    fn tenant_sandboxes(&self, tenant: &TenantName) -> Result<Vec<SandboxRecord>, EngineError> {
        Ok(self.store.ready_sandboxes_of(tenant)?)
    }

    /// Every stored rule with its tenant's mark, for compilation.
    pub(super) fn compiled_rules(&self) -> Result<Vec<(u32, TenantRule)>, EngineError> {
        Ok(self
            .store
            .tenant_rules(None)?
            .into_iter()
            .map(|r| (r.tenant_id, r.rule))
            .collect())
    }

    /// Finishes a rule change a crash interrupted: the kernel gets the
    /// rule's element if the store has the rule, and loses it if not (one
    /// idempotent batch either way).
    pub(super) fn finish_interrupted_rule_change(&mut self) -> Result<Option<String>, EngineError> {
        let Some(pending) = self.store.pending_rule_change()? else {
            return Ok(None);
        };
        let element = pending.rule.element(pending.tenant_id);
        let kept = self.store.tenant_rule(pending.id)?.is_some();
        let (mut add, mut delete) = if kept {
            (vec![element], Vec::new())
        } else {
            (Vec::new(), vec![element])
        };
        // A narrowing change moved the tenant's sandboxes to their next
        // generation in the store; the kernel has that one or the one
        // before. Removing the one before (by key, for the generation map)
        // and adding the store's holds in both cases, and changes nothing
        // for a change that moved nothing.
        for record in self.tenant_sandboxes(&pending.tenant)? {
            let before = SandboxRecord {
                policy_epoch: previous_policy_epoch(record.policy_epoch),
                ..record.clone()
            };
            let (a, d) = self.policy_diff(&self.model(&before), &self.model(&record));
            add.extend(a);
            delete.extend(d);
        }
        self.nft
            .apply_elements(&add, &delete)
            .map_err(|source| rule_error(&pending, source))?;
        self.store.finish_rule_change()?;
        Ok(Some(format!(
            "rule {} of tenant {} ({})",
            pending.id, pending.tenant, pending.rule
        )))
    }
}

fn rule_error(r: &TenantRuleRecord, source: palisade_nft::NftError) -> EngineError {
    EngineError::RuleElements {
        tenant: r.tenant.to_string(),
        id: r.id,
        rule: r.rule,
        source: Box::new(source),
    }
}
