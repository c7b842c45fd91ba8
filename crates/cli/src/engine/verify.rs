//! Verification: the kernel's state read back and compared with what the
//! store compiles to.
//!
//! Both sides are taken as the kernel prints them: the compiled ruleset is
//! applied in a throwaway network namespace and listed there, so formatting
//! and normalisation by nft cannot cause false differences. Listings are cut
//! into items (tables, chains, rules by position, sets and each element) and
//! compared as sets; counters and handles are ignored.

use super::{Engine, EngineError};
use palisade_core::compile::{self, ALL_FAMILIES};
use palisade_core::element::Family;
use palisade_core::model::SandboxKind;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One difference between the kernel and the store.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    /// `missing`, `unexpected` or `differs`.
    pub kind: &'static str,
    /// What it concerns, e.g. `rule inet palisade from_sandbox #3`.
    pub object: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.object)?;
        if let Some(e) = &self.expected {
            write!(f, "\n    expected: {e}")?;
        }
        if let Some(found) = &self.found {
            write!(f, "\n    found:    {found}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// The sandbox verified, or `None` for everything.
    pub sandbox: Option<String>,
    pub sandboxes_checked: usize,
    pub rules_checked: usize,
    pub elements_checked: usize,
    pub differences: Vec<Difference>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Items of a listing: object -> normalised JSON text.
type Items = BTreeMap<String, String>;

impl Engine {
    /// Compares the kernel with the store, for one sandbox or all.
    pub fn verify(&mut self, only: Option<&str>) -> Result<VerifyReport, EngineError> {
        let ready = self.ready_sandboxes()?;
        let selected: Vec<_> = match only {
            Some(name) => {
                let name = palisade_core::names::SandboxName::new(name)?;
                let found: Vec<_> = ready
                    .iter()
                    .filter(|(r, _)| r.name == name)
                    .cloned()
                    .collect();
                if found.is_empty() {
                    return Err(EngineError::NotFound(name.to_string()));
                }
                found
            }
            None => ready.clone(),
        };
        let models: Vec<_> = selected.iter().map(|(_, m)| m.clone()).collect();
        // Tenant rules are the tenants', not a sandbox's: always all of them.
        let compiled = compile::compile(&self.config, &models, &self.compiled_rules()?);
        let expected_listing =
            palisade_nft::canonical_listing(&compiled.replace_script(), &ALL_FAMILIES)
                .map_err(|e| EngineError::ReadBack(Box::new(e)))?;
        let mut expected = Items::new();
        let mut found = Items::new();
        for (family, listing) in expected_listing {
            collect_items(family, listing.as_ref(), &mut expected);
            let live = palisade_nft::list_table_json(family)
                .map_err(|e| EngineError::ReadBack(Box::new(e)))?;
            collect_items(family, live.as_ref(), &mut found);
        }
        let mut differences = Vec::new();
        for (object, want) in &expected {
            match found.get(object) {
                None => differences.push(Difference {
                    kind: "missing",
                    object: object.clone(),
                    expected: (!want.is_empty()).then(|| want.clone()),
                    found: None,
                }),
                Some(have) if have != want => differences.push(Difference {
                    kind: "differs",
                    object: object.clone(),
                    expected: Some(want.clone()),
                    found: Some(have.clone()),
                }),
                Some(_) => {}
            }
        }
        for (object, have) in &found {
            // With one sandbox selected, the other sandboxes' elements are
            // expected to be there and are not differences.
            if only.is_some() && object.starts_with("element ") {
                continue;
            }
            if !expected.contains_key(object) {
                differences.push(Difference {
                    kind: "unexpected",
                    object: object.clone(),
                    expected: None,
                    found: (!have.is_empty()).then(|| have.clone()),
                });
            }
        }
        // Interfaces and namespaces.
        let links: BTreeSet<String> = self
            .rtnl()
            .list_links()
            .map_err(|e| EngineError::Rtnetlink(Box::new(e)))?
            .into_iter()
            .map(|l| l.name)
            .collect();
        for (_, sb) in &selected {
            let iface = sb
                .attachment
                .as_ref()
                .map(|a| &a.host_iface)
                .or(sb.cni.as_ref().map(|c| &c.host_port));
            if let Some(iface) = iface {
                if !links.contains(iface) {
                    differences.push(Difference {
                        kind: "missing",
                        object: format!("interface {iface} of sandbox {}", sb.name),
                        expected: None,
                        found: None,
                    });
                }
            }
            if sb.kind == SandboxKind::Netns && !palisade_link::named_netns_exists(sb.name.as_str())
            {
                differences.push(Difference {
                    kind: "missing",
                    object: format!("network namespace {} of sandbox {}", sb.name, sb.name),
                    expected: None,
                    found: None,
                });
            }
        }
        let rules_checked = expected.keys().filter(|k| k.starts_with("rule ")).count();
        let elements_checked = expected
            .keys()
            .filter(|k| k.starts_with("element "))
            .count();
        Ok(VerifyReport {
            sandbox: only.map(str::to_string),
            sandboxes_checked: selected.len(),
            rules_checked,
            elements_checked,
            differences,
        })
    }

    /// Counts of rules and elements in the live tables, per family.
    pub(super) fn live_counts(&self) -> Result<Vec<(Family, bool, usize, usize)>, EngineError> {
        let mut out = Vec::new();
        for family in ALL_FAMILIES {
            let live = palisade_nft::list_table_json(family)
                .map_err(|e| EngineError::ReadBack(Box::new(e)))?;
            let mut items = Items::new();
            collect_items(family, live.as_ref(), &mut items);
            let rules = items.keys().filter(|k| k.starts_with("rule ")).count();
            let elements = items.keys().filter(|k| k.starts_with("element ")).count();
            out.push((family, live.is_some(), rules, elements));
        }
        Ok(out)
    }
}

/// Cuts one family's `nft -j` listing into comparable items.
fn collect_items(family: Family, listing: Option<&Value>, items: &mut Items) {
    let Some(entries) = listing
        .and_then(|l| l.get("nftables"))
        .and_then(Value::as_array)
    else {
        return;
    };
    let fam = family.keyword();
    let mut rule_index: BTreeMap<String, usize> = BTreeMap::new();
    for entry in entries {
        let Some((what, body)) = entry.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let name = body.get("name").and_then(Value::as_str).unwrap_or("");
        match what.as_str() {
            "table" => {
                items.insert(format!("table {fam} {name}"), String::new());
            }
            "chain" => {
                let mut b = body.clone();
                strip(&mut b, &["handle"]);
                items.insert(format!("chain {fam} palisade {name}"), b.to_string());
            }
            "rule" => {
                let chain = body.get("chain").and_then(Value::as_str).unwrap_or("");
                let i = rule_index.entry(chain.to_string()).or_default();
                *i += 1;
                let mut expr = body.get("expr").cloned().unwrap_or(Value::Null);
                zero_counters(&mut expr);
                items.insert(
                    format!("rule {fam} palisade {chain} #{i}"),
                    render_expr(&expr),
                );
            }
            "set" | "map" => {
                let mut b = body.clone();
                let elems = b.as_object_mut().and_then(|o| o.remove("elem"));
                strip(&mut b, &["handle"]);
                items.insert(format!("{what} {fam} palisade {name}"), b.to_string());
                if let Some(Value::Array(elems)) = elems {
                    for e in elems {
                        items.insert(
                            format!("element {fam} palisade {name} {}", render_value(&e)),
                            String::new(),
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

fn strip(v: &mut Value, keys: &[&str]) {
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
}

fn zero_counters(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(c) = o.get_mut("counter") {
                *c = Value::Null;
            }
            for (_, x) in o.iter_mut() {
                zero_counters(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(zero_counters),
        _ => {}
    }
}

fn render_expr(expr: &Value) -> String {
    expr.to_string()
}

/// Readable form of a set element: `pal-1 . 10.200.0.2`, `10.0.0.0/8`,
/// `10.200.0.2 : 1`.
fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => a.iter().map(render_value).collect::<Vec<_>>().join(" : "),
        Value::Object(o) => {
            if let Some(Value::Array(parts)) = o.get("concat") {
                return parts
                    .iter()
                    .map(render_value)
                    .collect::<Vec<_>>()
                    .join(" . ");
            }
            if let Some(p) = o.get("prefix") {
                return format!(
                    "{}/{}",
                    p.get("addr").map(render_value).unwrap_or_default(),
                    p.get("len").map(render_value).unwrap_or_default()
                );
            }
            if let Some(Value::Array(r)) = o.get("range") {
                return r.iter().map(render_value).collect::<Vec<_>>().join("-");
            }
            if let Some(e) = o.get("elem") {
                return e
                    .get("val")
                    .map(render_value)
                    .unwrap_or_else(|| e.to_string());
            }
            v.to_string()
        }
        _ => v.to_string(),
    }
}
