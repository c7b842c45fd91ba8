//! Bringing the kernel back in line with the store.
//!
//! Every command starts with [`Engine::repair`], which is O(1) when the last
//! run ended cleanly: it reads the intent journal (rows not `ready`) and
//! checks that the table exists. The full comparison runs on `init`, or when
//! the table is gone, and rebuilds the whole table in one transaction.

use super::{Engine, EngineError};
use palisade_core::bridge_shard::is_bridge_iface;
use palisade_core::model::SandboxKind;
use palisade_core::names;
use palisade_store::SandboxState;
use std::collections::BTreeSet;

/// What a repair or reconcile changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RepairReport {
    /// Interrupted creates rolled back.
    pub rolled_back: Vec<String>,
    /// Interrupted destroys finished.
    pub finished_destroys: Vec<String>,
    /// Interrupted policy changes (`sandbox update`) finished.
    pub finished_updates: Vec<String>,
    /// Interrupted tenant rule changes (`rule add`, `rule remove`) finished.
    pub finished_rule_changes: Vec<String>,
    /// The tables were missing or differed from the store, and have been
    /// rebuilt.
    pub table_rebuilt: bool,
    /// Interfaces of palisade's with no sandbox, removed.
    pub orphan_links_removed: Vec<String>,
    /// Sandboxes whose interface was missing and has been recreated.
    pub links_restored: Vec<String>,
    /// Bridge mode: sandboxes whose addresses the host had no pin for
    /// (or a wrong one), pinned again.
    pub pins_restored: Vec<String>,
    /// Bridge mode: sandboxes whose port lacked its settings (ports from
    /// before palisade set them, or changed by hand) or was down, set
    /// again.
    pub ports_isolated: Vec<String>,
    /// Bridge mode: sandboxes whose interface was off its bridge, put back.
    pub ports_rejoined: Vec<String>,
    /// Bridge mode: sandboxes whose bridge had no static entry sending
    /// their MAC to their port (deleted or changed by hand), given one
    /// again.
    pub entries_restored: Vec<String>,
    /// Problems that could not be fixed.
    pub unfixable: Vec<String>,
}

impl RepairReport {
    pub fn is_empty(&self) -> bool {
        self == &RepairReport::default()
    }

    /// One line per change, for the user.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for n in &self.rolled_back {
            out.push(format!(
                "rolled back the interrupted creation of sandbox {n}"
            ));
        }
        for n in &self.finished_destroys {
            out.push(format!(
                "finished the interrupted destruction of sandbox {n}"
            ));
        }
        for n in &self.finished_updates {
            out.push(format!(
                "finished the interrupted policy change of sandbox {n}"
            ));
        }
        for n in &self.finished_rule_changes {
            out.push(format!("finished the interrupted change of {n}"));
        }
        if self.table_rebuilt {
            out.push("rebuilt palisade's nftables tables from the store".into());
        }
        for n in &self.orphan_links_removed {
            out.push(format!("removed orphaned interface {n}"));
        }
        for n in &self.links_restored {
            out.push(format!("recreated the missing interface of sandbox {n}"));
        }
        for n in &self.pins_restored {
            out.push(format!(
                "pinned the addresses of sandbox {n} to its MAC on its bridge again"
            ));
        }
        for n in &self.ports_rejoined {
            out.push(format!(
                "put the interface of sandbox {n} back on its bridge"
            ));
        }
        for n in &self.ports_isolated {
            out.push(format!(
                "made the bridge port of sandbox {n} an isolated port, up, that is sent only its frames"
            ));
        }
        for n in &self.entries_restored {
            out.push(format!(
                "gave the MAC of sandbox {n} its static entry on its bridge again"
            ));
        }
        for n in &self.unfixable {
            out.push(format!("could not fix: {n}"));
        }
        out
    }
}

impl Engine {
    /// The check every command starts with; `full` forces the full
    /// reconcile (`init`) instead of running it only when the table is gone.
    pub(super) fn repair(&mut self, full: bool) -> Result<RepairReport, EngineError> {
        let mut report = RepairReport::default();
        for record in self.store.unfinished()? {
            let sandbox = self.model(&record);
            // Whether an interrupted create got as far as its elements is
            // unknown: remove them by key.
            self.tear_down(&record, &sandbox, true)?;
            match record.state {
                SandboxState::Creating => report.rolled_back.push(record.name.to_string()),
                _ => report.finished_destroys.push(record.name.to_string()),
            }
        }
        if full || !self.table_present()? {
            // The rebuild compiles the stored policy, which is what an
            // interrupted policy change was heading for.
            if let Some((id, _)) = self.store.pending_policy_update()? {
                if let Some(r) = self.store.sandbox_by_id(id)? {
                    report.finished_updates.push(r.name.to_string());
                }
            }
            if let Some(r) = self.store.pending_rule_change()? {
                report
                    .finished_rule_changes
                    .push(format!("rule {} of tenant {} ({})", r.id, r.tenant, r.rule));
            }
            let full = self.reconcile()?;
            self.store.finish_policy_update(None)?;
            self.store.finish_rule_change()?;
            report.table_rebuilt = full.table_rebuilt;
            report.orphan_links_removed = full.orphan_links_removed;
            report.links_restored = full.links_restored;
            report.pins_restored = full.pins_restored;
            report.ports_isolated = full.ports_isolated;
            report.ports_rejoined = full.ports_rejoined;
            report.entries_restored = full.entries_restored;
            report.unfixable = full.unfixable;
        } else {
            if let Some(name) = self.finish_interrupted_update()? {
                report.finished_updates.push(name);
            }
            if let Some(rule) = self.finish_interrupted_rule_change()? {
                report.finished_rule_changes.push(rule);
            }
        }
        Ok(report)
    }

    /// Forgets the tracked connections of every released address in one
    /// conntrack walk, so the list stays short.
    fn forget_released(&mut self) -> Result<(), EngineError> {
        let released = self.store.released()?;
        if released.is_empty() {
            return Ok(());
        }
        let mut addrs = Vec::with_capacity(2 * released.len());
        for &o in &released {
            let a = palisade_core::model::Sandbox::attachment_for(&self.config, 0, o);
            addrs.push(a.ipv4.into());
            addrs.push(a.ipv6.into());
        }
        self.forget_addresses(&addrs)
            .map_err(|source| EngineError::ConntrackReleased {
                count: released.len(),
                source: Box::new(source),
            })?;
        self.store.clear_released(&released)?;
        Ok(())
    }

    /// Rebuilds the tables when one or more are gone (a flush, a reboot):
    /// first the static tables alone, then every element in one batch over
    /// netlink. Until the first step nothing filtered at all; between the
    /// two, every sandbox interface is dropped for want of elements, so the
    /// host only ever gets stricter on the way. Letting `nft` parse every
    /// element as text instead takes seconds at 10,000 sandboxes.
    fn rebuild_missing_tables(&mut self) -> Result<(), EngineError> {
        let skeleton = palisade_core::compile::compile(&self.config, &[], &[]).replace_script();
        palisade_nft::apply_script(&skeleton).map_err(|e| EngineError::Ruleset(Box::new(e)))?;
        let models = self.ready_models(None)?;
        let rules = self.compiled_rules()?;
        // Encoded as they are compiled: at 10,000 sandboxes the elements
        // as values would take several times the batch's size.
        let elements = palisade_core::compile::each_element(&self.config, &models, &rules);
        self.nft
            .add_element_stream(elements)
            .map_err(|e| EngineError::Ruleset(Box::new(e)))
    }

    /// Full comparison: replaces the tables atomically with what the store
    /// compiles to unless they already hold exactly that, removes orphaned
    /// interfaces and recreates missing ones.
    fn reconcile(&mut self) -> Result<RepairReport, EngineError> {
        let mut report = RepairReport::default();
        self.ensure_host()?;
        if !self.table_present()? {
            self.rebuild_missing_tables()?;
            report.table_rebuilt = true;
        } else if !self.tables_match_store() {
            // Replacing live tables: one transaction, so no packet ever
            // meets a table without its elements. Only when they differ:
            // at 10,000 sandboxes `nft` takes about a second and 150 MiB
            // to parse every element, the comparison a third of that time
            // and no child (docs/benchmarks.md); and counters survive.
            let script = self.ruleset()?.replace_script();
            palisade_nft::apply_script(&script).map_err(|e| EngineError::Ruleset(Box::new(e)))?;
            report.table_rebuilt = true;
        }
        self.forget_released()?;

        // Retired interfaces go first, in one request, so that they are
        // neither reported nor deleted one by one as orphans below.
        self.reap_retired_links()?;
        let ready = self.ready_sandboxes()?;
        let wanted: BTreeSet<String> = ready
            .iter()
            .filter_map(|(_, m)| m.attachment.as_ref().map(|a| a.host_iface.clone()))
            .collect();
        // Names only: a link dump costs O(k) per veth at scale.
        let present: BTreeSet<String> = palisade_link::interface_names()
            .map_err(|e| EngineError::Rtnetlink(Box::new(e)))?
            .into_iter()
            .collect();
        for name in &present {
            if names::id_of_host_iface(name).is_some() && !wanted.contains(name) {
                self.rtnl()
                    .delete_link(name)
                    .map_err(|e| EngineError::Rtnetlink(Box::new(e)))?;
                report.orphan_links_removed.push(name.clone());
            }
        }
        for (record, sandbox) in &ready {
            let Some(att) = &sandbox.attachment else {
                continue;
            };
            if present.contains(&att.host_iface) {
                continue;
            }
            let name = sandbox.name.as_str();
            let netns_exists = palisade_link::named_netns_exists(name);
            if sandbox.kind == SandboxKind::Netns && !netns_exists && !record.netns_created {
                report.unfixable.push(format!(
                    "sandbox {name}: its adopted network namespace {name} is gone; destroy the sandbox"
                ));
                continue;
            }
            let create_netns = sandbox.kind == SandboxKind::Netns && !netns_exists;
            if sandbox.kind == SandboxKind::Netns && netns_exists {
                // A stale eth0 left inside would block the new veth.
                let path = palisade_link::netns_path(name);
                if let Ok(mut inner) = palisade_link::Rtnl::open_in(&path) {
                    let _ = inner.delete_link(names::SANDBOX_IFACE);
                }
            }
            match self.attach(sandbox, create_netns) {
                Ok(()) => report.links_restored.push(name.to_string()),
                Err(e) => report.unfixable.push(e.to_string()),
            }
        }
        if self.config.network.mode == palisade_core::config::Mode::Bridge {
            // The inet table takes every interface named `palisade...` for
            // one of palisade's bridges.
            for name in present
                .iter()
                .filter(|n| n.starts_with(names::BRIDGE_PREFIX) && !is_bridge_iface(n))
            {
                report.unfixable.push(format!(
                    "interface {name}: names starting with {} are palisade's bridges in bridge mode, and its traffic is filtered as theirs; rename it",
                    names::BRIDGE_PREFIX
                ));
            }
            // Those restored above were pinned as they were attached.
            let placed: Vec<&palisade_core::model::Sandbox> = ready
                .iter()
                .map(|(_, sandbox)| sandbox)
                .filter(|sandbox| {
                    sandbox
                        .attachment
                        .as_ref()
                        .is_some_and(|a| present.contains(&a.host_iface))
                })
                .collect();
            self.reconcile_bridges(&placed, &mut report)?;
        }
        if self.config.network.mode == palisade_core::config::Mode::Routed {
            for bridge in present.iter().filter(|n| is_bridge_iface(n)) {
                report.unfixable.push(format!(
                    "bridge {bridge} from bridge mode still exists; delete it if unused"
                ));
            }
        }
        Ok(report)
    }
}
