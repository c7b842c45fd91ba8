//! Verification: the kernel's state read back and compared with what the
//! store compiles to.
//!
//! Both sides are read over netlink as the kernel holds them. The static
//! part of the compiled ruleset (tables, chains, rules, set declarations,
//! constant sets) is loaded in a throwaway network namespace and read back
//! there, so nft's own normalisation cannot cause false differences; rules
//! are compared by position, attributes as bytes, without handles or
//! counter values. The per-sandbox elements are compared as the bytes
//! palisade's own netlink writer sends. No listing of every element goes
//! through `nft` or JSON (docs/benchmarks.md has the cost at 10,000).

use super::{Engine, EngineError};
use palisade_core::compile::{self, Ruleset, ALL_FAMILIES};
use palisade_core::element::{Family, TABLE};
use palisade_core::model::SandboxKind;
use palisade_nft::{SetElement, TableSnapshot};
use std::collections::{BTreeSet, HashMap};

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

impl Difference {
    /// `object` is not as `expected`: "differs" with what was `found`, or
    /// "missing" when nothing was.
    pub(super) fn against(object: String, expected: String, found: Option<String>) -> Self {
        Difference {
            kind: if found.is_some() {
                "differs"
            } else {
                "missing"
            },
            object,
            expected: Some(expected),
            found,
        }
    }
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

/// The outcome of comparing palisade's tables alone.
struct TablesChecked {
    differences: Vec<Difference>,
    rules_checked: usize,
    elements_checked: usize,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.differences.is_empty()
    }
}

impl Engine {
    /// Compares the kernel with the store, for one sandbox or all.
    pub fn verify(&mut self, only: Option<&str>) -> Result<VerifyReport, EngineError> {
        let only_name = only
            .map(palisade_core::names::SandboxName::new)
            .transpose()?;
        let models = self.ready_models(only_name.as_ref())?;
        if let (Some(name), true) = (&only_name, models.is_empty()) {
            return Err(EngineError::NotFound(name.to_string()));
        }
        let TablesChecked {
            mut differences,
            rules_checked,
            elements_checked,
        } = self.check_tables(only, &models)?;
        // Interfaces and namespaces.
        // Names only: a link dump costs O(k) per veth at scale.
        let links: BTreeSet<String> = palisade_link::interface_names()
            .map_err(|e| EngineError::Rtnetlink(Box::new(e)))?
            .into_iter()
            .collect();
        for sb in &models {
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
        self.check_bridge_ports(&models, &links, &mut differences)?;
        self.check_bridges(&models, &mut differences)?;
        Ok(VerifyReport {
            sandbox: only.map(str::to_string),
            sandboxes_checked: models.len(),
            rules_checked,
            elements_checked,
            differences,
        })
    }

    /// Whether palisade's tables in the kernel hold exactly what the store
    /// compiles to (`init` leaves them alone then). Any failure to read
    /// them back counts as a difference.
    pub(super) fn tables_match_store(&mut self) -> bool {
        match self
            .ready_models(None)
            .and_then(|models| self.check_tables(None, &models))
        {
            Ok(checked) => checked.differences.is_empty(),
            Err(_) => false,
        }
    }

    /// Compares palisade's tables in the kernel with what `models` (one
    /// sandbox's, when `only` names it) and the tenant rules compile to.
    fn check_tables(
        &mut self,
        only: Option<&str>,
        models: &[palisade_core::model::Sandbox],
    ) -> Result<TablesChecked, EngineError> {
        // Tenant rules are the tenants', not a sandbox's: always all of them.
        let rules = self.compiled_rules()?;
        // The compiled elements. For the whole store, a digest per set: at
        // 10,000 sandboxes there are about 160,000 elements, and holding
        // them as values would take tens of megabytes. A set whose digest
        // differs from the kernel's is compared element by element below.
        // One sandbox's elements are few: kept as they are.
        let digester = Digester::new();
        let mut wanted_digests: HashMap<(Family, &'static str), Digest> = HashMap::new();
        let mut wanted_elements: HashMap<(Family, &'static str), Vec<SetElement>> = HashMap::new();
        for e in compile::each_element(&self.config, models, &rules) {
            let element = SetElement::of(&e);
            if only.is_none() {
                digester.add(
                    wanted_digests.entry((e.family, e.set)).or_default(),
                    &element,
                );
            } else {
                wanted_elements
                    .entry((e.family, e.set))
                    .or_default()
                    .push(element);
            }
        }
        // The static part (tables, chains, rules, declarations, constant
        // sets) as the kernel holds it after loading it in a throwaway
        // namespace: the same size whatever the number of sandboxes. Its
        // text also names a rule that differs (rules never depend on
        // sandboxes).
        let compiled = compile::compile(&self.config, &[], &[]);
        let skeleton = compiled.replace_script();
        let canonical = palisade_nft::canonical_snapshot(&skeleton, &ALL_FAMILIES)
            .map_err(|e| EngineError::ReadBack(Box::new(e)))?;
        let mut cmp = Comparison::default();
        for (family, want, mut static_elements) in canonical {
            let have = self
                .nft
                .snapshot(family)
                .map_err(|e| EngineError::ReadBack(Box::new(e)))?;
            cmp.structure(family, &compiled, &want, &have);
            for (set, info) in &have.sets {
                if !want.sets.contains_key(set) {
                    continue; // reported as an unexpected set
                }
                let constant = static_elements.remove(set).unwrap_or_default();
                let found = self
                    .nft
                    .list_set_elements(family, set)
                    .map_err(|e| EngineError::ReadBack(Box::new(e)))?;
                let compiled_key = |(f, s): &(Family, &'static str)| *f == family && s == set;
                if only.is_none() {
                    let mut expected = wanted_digests
                        .iter()
                        .find(|(k, _)| compiled_key(k))
                        .map(|(_, d)| *d)
                        .unwrap_or_default();
                    for e in &constant {
                        digester.add(&mut expected, e);
                    }
                    let mut live = Digest::default();
                    for e in &found {
                        digester.add(&mut live, e);
                    }
                    if expected == live {
                        cmp.elements_checked += expected.count;
                        continue;
                    }
                }
                // Element by element: the set's compiled elements (again,
                // from the models, when only its digest was kept).
                let mut expected = constant;
                match wanted_elements
                    .keys()
                    .copied()
                    .find(compiled_key)
                    .and_then(|k| wanted_elements.remove(&k))
                {
                    Some(w) => expected.extend(w),
                    None if only.is_none() => expected.extend(
                        compile::each_element(&self.config, models, &rules)
                            .filter(|e| e.family == family && e.set == set)
                            .map(|e| SetElement::of(&e)),
                    ),
                    None => {}
                }
                expected.sort_unstable();
                expected.dedup();
                // With one sandbox selected, the other sandboxes' elements
                // are expected to be there and are not differences; the
                // rules' anonymous sets are compared whole.
                let report_unexpected = only.is_none() || info.anonymous;
                cmp.elements(family, set, &expected, &found, report_unexpected);
            }
        }
        if !cmp.missing_elements.is_empty() {
            // Name missing elements as nft writes them, where they were
            // compiled (constant sets' elements stay in hex). Only the sets
            // that lack some: the others may hold 10,000 elements each.
            let lacking: BTreeSet<(Family, String)> = cmp
                .missing_elements
                .iter()
                .map(|(_, family, set, _)| (*family, set.clone()))
                .collect();
            let texts: HashMap<(Family, &str, SetElement), String> =
                compile::each_element(&self.config, models, &rules)
                    .filter(|e| lacking.contains(&(e.family, e.set.to_string())))
                    .map(|e| ((e.family, e.set, SetElement::of(&e)), e.to_nft()))
                    .collect();
            cmp.name_missing_elements(&texts);
        }
        Ok(TablesChecked {
            differences: cmp.differences,
            rules_checked: cmp.rules_checked,
            elements_checked: cmp.elements_checked,
        })
    }

    /// Counts of rules and elements in the live tables, per family.
    pub(super) fn live_counts(&mut self) -> Result<Vec<(Family, bool, usize, usize)>, EngineError> {
        let mut out = Vec::new();
        for family in ALL_FAMILIES {
            let snap = self
                .nft
                .snapshot(family)
                .map_err(|e| EngineError::ReadBack(Box::new(e)))?;
            let mut elements = 0;
            for (set, info) in &snap.sets {
                if info.anonymous {
                    continue;
                }
                elements += self
                    .nft
                    .list_set_elements(family, set)
                    .map_err(|e| EngineError::ReadBack(Box::new(e)))?
                    .len();
            }
            out.push((family, snap.present, snap.rule_count(), elements));
        }
        Ok(out)
    }
}

/// What a multiset of set elements adds up to: how many, and two sums of
/// keyed 64-bit hashes. The keys are random per run, so no one can craft
/// elements whose digest matches another set's; two different sets of
/// elements meet by chance with a probability of about 2^-128.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Digest {
    count: usize,
    sums: [u64; 2],
}

/// Adds elements to [`Digest`]s, with this run's keys.
struct Digester {
    keys: [std::hash::RandomState; 2],
}

impl Digester {
    fn new() -> Self {
        Digester {
            keys: [std::hash::RandomState::new(), std::hash::RandomState::new()],
        }
    }

    fn add(&self, digest: &mut Digest, e: &SetElement) {
        use std::hash::BuildHasher;
        digest.count += 1;
        for (sum, key) in digest.sums.iter_mut().zip(&self.keys) {
            *sum = sum.wrapping_add(key.hash_one(e));
        }
    }
}

/// Differences found so far, and what was checked.
#[derive(Default)]
struct Comparison {
    differences: Vec<Difference>,
    rules_checked: usize,
    elements_checked: usize,
    /// Missing elements: where in `differences`, and which.
    missing_elements: Vec<(usize, Family, String, SetElement)>,
}

impl Comparison {
    fn push(
        &mut self,
        kind: &'static str,
        object: String,
        expected: Option<String>,
        found: Option<String>,
    ) {
        self.differences.push(Difference {
            kind,
            object,
            expected,
            found,
        });
    }

    /// Table, chains, rules and set declarations of one family.
    fn structure(
        &mut self,
        family: Family,
        compiled: &Ruleset,
        want: &TableSnapshot,
        have: &TableSnapshot,
    ) {
        let fam = family.keyword();
        match (want.present, have.present) {
            (true, false) => {
                self.push("missing", format!("table {fam} {TABLE}"), None, None);
                return;
            }
            (false, true) => {
                self.push("unexpected", format!("table {fam} {TABLE}"), None, None);
                return;
            }
            (false, false) => return,
            (true, true) => {}
        }
        if want.table != have.table {
            self.push(
                "differs",
                format!("table {fam} {TABLE} (flags)"),
                None,
                None,
            );
        }
        for (name, attrs) in &want.chains {
            match have.chains.get(name) {
                None => self.push("missing", format!("chain {fam} {TABLE} {name}"), None, None),
                Some(h) if h != attrs => self.push(
                    "differs",
                    format!("chain {fam} {TABLE} {name} (type, hook, priority or policy)"),
                    None,
                    None,
                ),
                Some(_) => {}
            }
        }
        for name in have.chains.keys().filter(|n| !want.chains.contains_key(*n)) {
            self.push(
                "unexpected",
                format!("chain {fam} {TABLE} {name}"),
                None,
                None,
            );
        }
        let no_rules = Vec::new();
        let chains: BTreeSet<&String> = want.rules.keys().chain(have.rules.keys()).collect();
        for chain in chains {
            let w = want.rules.get(chain).unwrap_or(&no_rules);
            let h = have.rules.get(chain).unwrap_or(&no_rules);
            self.rules_checked += w.len();
            for i in 0..w.len().max(h.len()) {
                let object = format!("rule {fam} {TABLE} {chain} #{}", i + 1);
                let text = || compiled.rule(family, chain, i).map(str::to_string);
                match (w.get(i), h.get(i)) {
                    (Some(_), None) => self.push("missing", object, text(), None),
                    (None, Some(_)) => self.push(
                        "unexpected",
                        object,
                        None,
                        Some("a rule palisade did not compile".into()),
                    ),
                    (Some(a), Some(b)) if a != b => self.push(
                        "differs",
                        object,
                        text(),
                        Some("another rule (read it with `nft -a list chain`)".into()),
                    ),
                    _ => {}
                }
            }
        }
        for (name, info) in &want.sets {
            match have.sets.get(name) {
                None => self.push("missing", format!("set {fam} {TABLE} {name}"), None, None),
                Some(h) if h != info => self.push(
                    "differs",
                    format!("set {fam} {TABLE} {name} (type or flags)"),
                    None,
                    None,
                ),
                Some(_) => {}
            }
        }
        for name in have.sets.keys().filter(|n| !want.sets.contains_key(*n)) {
            self.push(
                "unexpected",
                format!("set {fam} {TABLE} {name}"),
                None,
                None,
            );
        }
    }

    /// The elements of one set: `expected` against what the kernel listed,
    /// both sorted, in one merge walk.
    fn elements(
        &mut self,
        family: Family,
        set: &str,
        expected: &[SetElement],
        found: &[SetElement],
        report_unexpected: bool,
    ) {
        let fam = family.keyword();
        self.elements_checked += expected.len();
        let object = |e: &SetElement| format!("element {fam} {TABLE} {set} {}", render(e));
        let (mut want, mut have) = (expected.iter().peekable(), found.iter().peekable());
        loop {
            let missing = match (want.peek(), have.peek()) {
                (None, None) => break,
                (Some(w), Some(h)) if w == h => {
                    want.next();
                    have.next();
                    continue;
                }
                (Some(w), Some(h)) => w < h,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            if missing {
                let e = want.next().expect("peeked");
                self.missing_elements.push((
                    self.differences.len(),
                    family,
                    set.to_string(),
                    e.clone(),
                ));
                self.push("missing", object(e), None, None);
            } else {
                let e = have.next().expect("peeked");
                if report_unexpected {
                    self.push("unexpected", object(e), None, None);
                }
            }
        }
    }

    /// Replaces the hex of missing elements with their nft text, where
    /// `texts` has it.
    fn name_missing_elements(&mut self, texts: &HashMap<(Family, &str, SetElement), String>) {
        for (at, family, set, e) in std::mem::take(&mut self.missing_elements) {
            if let Some(text) = texts.get(&(family, set.as_str(), e)) {
                self.differences[at].object =
                    format!("element {} {TABLE} {set} {text}", family.keyword());
            }
        }
    }
}

/// An element read from the kernel, in hex (the kernel does not say what
/// its bytes mean): `0a000001`, `... - ...` for a range, `: ...` for a
/// map's data, `(end)` for the closing element of an interval.
fn render(e: &SetElement) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut s = hex(&e.key);
    if let Some(end) = &e.key_end {
        s.push_str(&format!(" - {}", hex(end)));
    }
    if let Some(d) = &e.data {
        s.push_str(&format!(" : {}", hex(d)));
    }
    if e.interval_end {
        s.push_str(" (end)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(key: &[u8], data: Option<&[u8]>) -> SetElement {
        SetElement {
            key: key.to_vec(),
            key_end: None,
            data: data.map(<[u8]>::to_vec),
            interval_end: false,
        }
    }

    fn digest(d: &Digester, elems: &[SetElement]) -> Digest {
        let mut out = Digest::default();
        for e in elems {
            d.add(&mut out, e);
        }
        out
    }

    #[test]
    fn a_digest_ignores_order_and_sees_any_change() {
        let d = Digester::new();
        let set: Vec<_> = (0u32..1000)
            .map(|i| element(&i.to_be_bytes(), Some(&[1, 0, 0, 0])))
            .collect();
        let mut shuffled = set.clone();
        shuffled.reverse();
        assert_eq!(digest(&d, &set), digest(&d, &shuffled));
        // One map value changed, one element missing, one duplicated.
        let mut value = set.clone();
        value[500].data = Some(vec![2, 0, 0, 0]);
        assert_ne!(digest(&d, &set), digest(&d, &value));
        assert_ne!(digest(&d, &set), digest(&d, &set[1..]));
        let mut twice = set.clone();
        twice[1] = twice[0].clone();
        assert_ne!(digest(&d, &set), digest(&d, &twice));
        // A range end or the interval-end flag counts too.
        let mut end = set.clone();
        end[3].interval_end = true;
        assert_ne!(digest(&d, &set), digest(&d, &end));
    }
}
