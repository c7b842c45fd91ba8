//! Policy-only changes of an existing sandbox (`sandbox update`): internet
//! on or off, ports added to or removed from its allow list.
//!
//! A change is the difference between the sandbox's elements before and
//! after, applied as one atomic batch: O(1) whatever the number of
//! sandboxes, and never a window with no policy. A change that narrows the
//! policy also moves the sandbox to its next policy generation (two more
//! elements per address in the same batch), so its established connections
//! are judged again by the new policy from their next packet on, without a
//! walk of the conntrack table. The store keeps the policy being replaced
//! in a journal row until the kernel has the new one, so a crash in between
//! is finished by the next command's repair.

use super::{faults, Engine, EngineError, SandboxView};
use palisade_core::compile::sandbox_elements;
use palisade_core::element::Element;
use palisade_core::model::Sandbox;
use palisade_core::model::{next_policy_epoch, SandboxKind};
use palisade_core::names::SandboxName;
use palisade_core::policy::PortRule;
use palisade_store::PolicyColumns;

/// A `sandbox update` request as given by a user (not yet validated).
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    /// Turn internet egress on or off; `None` leaves it.
    pub internet: Option<bool>,
    /// Rules (`PROTO:PORT`) to add to the allow list.
    pub allow: Vec<String>,
    /// Rules to remove from the allow list.
    pub revoke: Vec<String>,
    /// Empty the allow list: every port, when internet is on.
    pub all_ports: bool,
}

/// What `update` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOutcome {
    pub sandbox: SandboxView,
    /// False when the request asked for the policy the sandbox already had.
    pub changed: bool,
    /// The change took something away: the sandbox's established
    /// connections are judged again by the new policy, and the ones it
    /// forbids are dropped from their next packet on.
    pub narrowed: bool,
}

impl Engine {
    /// Changes the policy of an existing sandbox in one atomic batch.
    pub fn update(
        &mut self,
        name: &str,
        req: &UpdateRequest,
    ) -> Result<UpdateOutcome, EngineError> {
        let name = SandboxName::new(name)?;
        let record = self
            .store
            .sandbox(&name)?
            .filter(|r| r.state == palisade_store::SandboxState::Ready)
            .ok_or_else(|| EngineError::NotFound(name.to_string()))?;
        let previous = PolicyColumns {
            internet: record.internet,
            allow: record.allow.clone(),
            epoch: record.policy_epoch,
        };
        let mut next = self.next_policy(&record, &previous, req)?;
        let old_model = self.model(&record);
        if next == previous {
            return Ok(UpdateOutcome {
                sandbox: SandboxView::new(&self.config, &record, &old_model),
                changed: false,
                narrowed: false,
            });
        }
        let with = |policy: &PolicyColumns| palisade_store::SandboxRecord {
            internet: policy.internet,
            allow: policy.allow.clone(),
            policy_epoch: policy.epoch,
            ..record.clone()
        };
        let (_, taken) = self.policy_diff(&old_model, &self.model(&with(&next)));
        let narrowed = !taken.is_empty();
        if narrowed {
            next.epoch = next_policy_epoch(previous.epoch);
        }
        let updated = with(&next);
        let new_model = self.model(&updated);
        let (add, delete) = self.policy_diff(&old_model, &new_model);

        self.store
            .begin_policy_update(record.id, &previous, &next)?;
        let applied = faults::point("update-after-journal").and_then(|()| {
            self.nft
                .apply_elements(&add, &delete)
                .map_err(|source| EngineError::Elements {
                    sandbox: name.to_string(),
                    source: Box::new(source),
                })
        });
        if let Err(failure) = applied {
            // The batch is atomic: the kernel still has the previous policy.
            self.store
                .finish_policy_update(Some((record.id, &previous)))?;
            return Err(failure);
        }
        self.store.finish_policy_update(None)?;
        Ok(UpdateOutcome {
            sandbox: SandboxView::new(&self.config, &updated, &new_model),
            changed: true,
            narrowed,
        })
    }

    /// The elements to add and to delete to go from one policy of a sandbox
    /// to another.
    pub(super) fn policy_diff(&self, from: &Sandbox, to: &Sandbox) -> (Vec<Element>, Vec<Element>) {
        let before = sandbox_elements(&self.config, from);
        let after = sandbox_elements(&self.config, to);
        let delete = before
            .iter()
            .filter(|e| !after.contains(e))
            .cloned()
            .collect();
        let add = after.into_iter().filter(|e| !before.contains(e)).collect();
        (add, delete)
    }

    /// Validates a request against the sandbox's current policy and returns
    /// the policy it asks for.
    fn next_policy(
        &self,
        record: &palisade_store::SandboxRecord,
        previous: &PolicyColumns,
        req: &UpdateRequest,
    ) -> Result<PolicyColumns, EngineError> {
        let invalid = |why: String| EngineError::InvalidRequest {
            sandbox: record.name.to_string(),
            why,
        };
        let wants_change = req.internet.is_some()
            || !req.allow.is_empty()
            || !req.revoke.is_empty()
            || req.all_ports;
        if record.kind == SandboxKind::None && wants_change {
            return Err(invalid(
                "it has networking disabled (--kind none); its policy cannot change".into(),
            ));
        }
        if req.all_ports && (!req.allow.is_empty() || !req.revoke.is_empty()) {
            return Err(invalid(
                "--all-ports empties the allow list; it cannot be combined with --allow or --revoke"
                    .into(),
            ));
        }
        let internet = req.internet.unwrap_or(previous.internet);
        let mut allow = previous.allow.clone();
        if req.all_ports {
            allow.clear();
        }
        for text in &req.revoke {
            let rule: PortRule = text.parse()?;
            let before = allow.len();
            allow.retain(|r| r != &rule);
            if allow.len() == before {
                return Err(invalid(format!(
                    "{rule} is not in its allow list ({})",
                    list(&previous.allow)
                )));
            }
        }
        for text in &req.allow {
            let rule: PortRule = text.parse()?;
            if !allow.contains(&rule) {
                allow.push(rule);
            }
        }
        if !previous.allow.is_empty() && allow.is_empty() && internet && !req.all_ports {
            return Err(invalid(
                "removing the last allowed port would open every port to the internet; pass --all-ports for that, or --no-internet".into(),
            ));
        }
        if !internet && !allow.is_empty() {
            let why = if req.internet == Some(false) {
                "--no-internet with an allow list: the list narrows internet egress; pass --all-ports too to drop it"
            } else {
                "--allow narrows internet egress and the sandbox has none; add --internet"
            };
            return Err(invalid(why.into()));
        }
        if internet && self.config.network.uplink.is_none() {
            return Err(invalid(
                "--internet needs network.uplink in the configuration (the host interface to masquerade through)".into(),
            ));
        }
        Ok(PolicyColumns {
            internet,
            allow,
            epoch: previous.epoch,
        })
    }

    /// Finishes a policy change that a crash interrupted: the kernel holds
    /// either the policy the journal recorded or the stored one (the batch
    /// was atomic); one idempotent batch brings it to the stored one.
    pub(super) fn finish_interrupted_update(&mut self) -> Result<Option<String>, EngineError> {
        let Some((id, previous)) = self.store.pending_policy_update()? else {
            return Ok(None);
        };
        let Some(record) = self.store.sandbox_by_id(id)? else {
            // Destroyed since: its elements went with it.
            self.store.finish_policy_update(None)?;
            return Ok(None);
        };
        let stored = self.model(&record);
        let replaced = self.model(&palisade_store::SandboxRecord {
            internet: previous.internet,
            allow: previous.allow,
            policy_epoch: previous.epoch,
            ..record.clone()
        });
        // Adding what is already there is not an error, so the whole stored
        // policy is (re)added: the batch is right whichever state it meets.
        let (_, delete) = self.policy_diff(&replaced, &stored);
        let after = sandbox_elements(&self.config, &stored);
        self.nft
            .apply_elements(&after, &delete)
            .map_err(|source| EngineError::Elements {
                sandbox: record.name.to_string(),
                source: Box::new(source),
            })?;
        self.store.finish_policy_update(None)?;
        Ok(Some(record.name.to_string()))
    }
}

fn list(allow: &[PortRule]) -> String {
    if allow.is_empty() {
        return "empty".into();
    }
    allow
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
