//! Sandboxes that a CNI runtime attaches: the interface, its bridge and its
//! addresses are made by an earlier plugin in the chain; palisade records
//! the attachment and adds its policy, failing closed like `create`.
//!
//! An attachment is identified as CNI identifies it, by
//! `(CNI_CONTAINERID, CNI_IFNAME)`. Its elements are keyed by the bridge
//! port; the bridge's own elements are shared by every sandbox on it, added
//! with the first and removed with the last.

use super::exposure::check_family;
use super::{faults, Engine, EngineError, SandboxView, VerifyReport};
use palisade_core::compile::{cni_bridge_elements, sandbox_elements};
use palisade_core::exposure::Exposure;
use palisade_core::model::{CniAttachment, Sandbox, SandboxKind};
use palisade_core::names::SandboxName;
use palisade_store::{NewSandbox, SandboxRecord, SandboxState, StoreError};

/// A CNI `ADD`, as the plugin front end resolved it from the network
/// configuration, `args`, `CNI_ARGS`, the runtime's capabilities and the
/// kernel.
#[derive(Debug, Clone)]
pub struct CniAttachRequest {
    pub attachment: CniAttachment,
    pub tenant: String,
    pub internet: bool,
    pub allow: Vec<String>,
    /// From the `portMappings` capability.
    pub exposures: Vec<Exposure>,
}

/// What `GC` removed, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniGcReport {
    pub removed: Vec<String>,
    pub failed: Vec<String>,
}

impl Engine {
    /// Records a CNI attachment and applies its policy. On any failure
    /// nothing of it remains and the error says why: the runtime then fails
    /// the container instead of starting it unprotected.
    pub fn cni_attach(&mut self, req: &CniAttachRequest) -> Result<SandboxView, EngineError> {
        let c = &req.attachment;
        if self.config.network.uplink.as_deref() == Some(c.bridge.as_str()) {
            return Err(EngineError::InvalidRequest {
                sandbox: format!("of container {}", c.container_id),
                why: format!(
                    "bridge {} is palisade's uplink; give the containers a bridge of their own",
                    c.bridge
                ),
            });
        }
        if c.bridge.starts_with(palisade_core::names::BRIDGE_PREFIX) {
            return Err(EngineError::InvalidRequest {
                sandbox: format!("of container {}", c.container_id),
                why: format!(
                    "bridge {}: names starting with {} belong to palisade's own bridges; give the containers a bridge named otherwise",
                    c.bridge,
                    palisade_core::names::BRIDGE_PREFIX
                ),
            });
        }
        if let Some(existing) = self.store.cni_sandbox(&c.container_id, &c.ifname)? {
            return Err(EngineError::InvalidRequest {
                sandbox: existing.name.to_string(),
                why: format!(
                    "container {} already has interface {} attached; DEL it first",
                    c.container_id, c.ifname
                ),
            });
        }
        // The kernel just gave this port name to a new veth, so a sandbox
        // still recorded on it lost its interface without a DEL: its
        // policy must not apply to the newcomer.
        if let Some(stale) = self.store.cni_sandbox_by_port(&c.host_port)? {
            let sandbox = self.model(&stale);
            self.tear_down(&stale, &sandbox, true)?;
        }
        // A row that holds one of these addresses outlived its container
        // (a lost DEL, a reboot): its address-keyed policy would apply to
        // this one. Gone if its port is gone; refused while its port lives.
        for addr in c.addresses() {
            for holder in self.store.cni_sandboxes_with_address(addr)? {
                let port = holder
                    .cni
                    .as_ref()
                    .map(|h| h.host_port.clone())
                    .unwrap_or_default();
                let alive = self
                    .rtnl
                    .link(&port)
                    .map_err(|e| EngineError::Rtnetlink(Box::new(e)))?
                    .is_some();
                if alive {
                    return Err(EngineError::InvalidRequest {
                        sandbox: holder.name.to_string(),
                        why: format!(
                            "it still holds {addr} on the live port {port}; the runtime's IPAM handed the address out twice"
                        ),
                    });
                }
                let sandbox = self.model(&holder);
                self.tear_down(&holder, &sandbox, true)?;
            }
        }
        let name = self.cni_sandbox_name(c)?;
        let (tenant, internet, allow) = self.resolve_policy(
            &name,
            &req.tenant,
            SandboxKind::Cni,
            req.internet,
            &req.allow,
        )?;
        let (v4, v6) = (!c.ipv4.is_empty(), !c.ipv6.is_empty());
        if !v4 && !v6 {
            return Err(EngineError::InvalidRequest {
                sandbox: name.to_string(),
                why: format!(
                    "the previous plugin's result gives interface {} no IP address to police",
                    c.ifname
                ),
            });
        }
        for e in &req.exposures {
            check_family(e, v4, v6).map_err(|why| EngineError::InvalidRequest {
                sandbox: name.to_string(),
                why,
            })?;
        }
        let new = NewSandbox {
            name,
            tenant,
            kind: SandboxKind::Cni,
            internet,
            allow,
            netns_created: false,
            cni: Some(c.clone()),
        };
        let range = palisade_core::ipam::OffsetRange::of(&self.config.network.subnet);
        let record = self.store.insert_sandbox(&new, range)?;
        let mut elements_applied = false;
        match self.build_cni(&record, &req.exposures, &mut elements_applied) {
            Ok(record) => Ok(SandboxView::new(
                &self.config,
                &record,
                &self.model(&record),
            )),
            Err(failure) => {
                let sandbox = self.model(&record);
                Err(self.roll_back(&record, &sandbox, elements_applied, failure))
            }
        }
    }

    fn build_cni(
        &mut self,
        record: &SandboxRecord,
        exposures: &[Exposure],
        elements_applied: &mut bool,
    ) -> Result<SandboxRecord, EngineError> {
        faults::point("after-record")?;
        for e in exposures {
            self.store.add_exposure(record.id, e)?;
        }
        let record = self
            .store
            .sandbox_by_id(record.id)?
            .ok_or_else(|| EngineError::NotFound(record.name.to_string()))?;
        let sandbox = self.model(&record);
        // The runtime's IPAM reuses addresses: connections tracked for an
        // earlier holder must not carry over to this sandbox.
        self.forget_sandbox_connections(&sandbox)?;
        let mut elements = sandbox_elements(&self.config, &sandbox);
        let bridge = &sandbox.cni.as_ref().expect("kind cni").bridge;
        // Adding an element that exists is not an error: the bridge's own
        // elements go in the same batch whether or not it is the first.
        elements.extend(cni_bridge_elements(bridge));
        self.add_sandbox_elements(&sandbox, &elements)?;
        *elements_applied = true;
        faults::point("before-ready")?;
        self.store.set_state(record.id, SandboxState::Ready)?;
        Ok(SandboxRecord {
            state: SandboxState::Ready,
            ..record
        })
    }

    /// The bridge's shared elements, when `sandbox` is the last one on it.
    pub(super) fn last_on_bridge(
        &self,
        sandbox: &Sandbox,
    ) -> Result<Vec<palisade_core::element::Element>, EngineError> {
        let Some(c) = &sandbox.cni else {
            return Ok(Vec::new());
        };
        if self.store.bridge_in_use(&c.bridge, sandbox.id)? {
            return Ok(Vec::new());
        }
        Ok(cni_bridge_elements(&c.bridge))
    }

    /// Removes a CNI attachment's policy and record. An attachment palisade
    /// does not know is not an error (`DEL` is idempotent); `None` then.
    pub fn cni_detach(
        &mut self,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<SandboxView>, EngineError> {
        let Some(record) = self.store.cni_sandbox(container_id, ifname)? else {
            return Ok(None);
        };
        let sandbox = self.model(&record);
        let view = SandboxView::new(&self.config, &record, &sandbox);
        self.store.set_state(record.id, SandboxState::Destroying)?;
        faults::point("destroy-after-mark")?;
        // The address goes back to the runtime's IPAM, which palisade does
        // not see reuse it: forget its connections now.
        self.forget_sandbox_connections(&sandbox)?;
        self.tear_down(&record, &sandbox, true)?;
        Ok(Some(view))
    }

    /// `CHECK`: the attachment is recorded, its port is still a port of its
    /// bridge with the container's peer behind it, and the kernel holds
    /// exactly its compiled policy. Returns what differs, as an error.
    pub fn cni_check(
        &mut self,
        container_id: &str,
        ifname: &str,
    ) -> Result<VerifyReport, EngineError> {
        let Some(record) = self.store.cni_sandbox(container_id, ifname)? else {
            return Err(EngineError::NotFound(format!(
                "CNI attachment of container {container_id}, interface {ifname}"
            )));
        };
        if record.state != SandboxState::Ready {
            return Err(EngineError::InvalidRequest {
                sandbox: record.name.to_string(),
                why: format!("it is {}, not ready", record.state),
            });
        }
        let mut report = self.verify(Some(record.name.as_str()))?;
        let c = record.cni.as_ref().expect("kind cni");
        let port = self
            .rtnl
            .link(&c.host_port)
            .map_err(|e| EngineError::Rtnetlink(Box::new(e)))?;
        let master = match port.as_ref().and_then(|p| p.master) {
            Some(m) => self
                .rtnl
                .link_by_index(m)
                .map_err(|e| EngineError::Rtnetlink(Box::new(e)))?
                .map(|l| l.name),
            None => None,
        };
        if port.is_some() && master.as_deref() != Some(c.bridge.as_str()) {
            report.differences.push(super::Difference {
                kind: "differs",
                object: format!("bridge of port {} of sandbox {}", c.host_port, record.name),
                expected: Some(c.bridge.clone()),
                found: Some(master.unwrap_or_else(|| "(none)".into())),
            });
        }
        Ok(report)
    }

    /// `GC`: removes every CNI sandbox of `network` whose attachment is not
    /// in `valid`, carrying on past failures and reporting each.
    pub fn cni_gc(
        &mut self,
        network: &str,
        valid: &[(String, String)],
    ) -> Result<CniGcReport, EngineError> {
        let mut report = CniGcReport::default();
        for record in self.store.cni_sandboxes(network)? {
            let c = record.cni.as_ref().expect("kind cni");
            if valid
                .iter()
                .any(|(id, ifname)| *id == c.container_id && *ifname == c.ifname)
            {
                continue;
            }
            let sandbox = self.model(&record);
            let result = self
                .forget_sandbox_connections(&sandbox)
                .and_then(|_| self.tear_down(&record, &sandbox, true))
                .and_then(|_| self.quarantine_cni_port(&sandbox));
            match result {
                Ok(()) => report.removed.push(record.name.to_string()),
                Err(e) => report.failed.push(format!("{}: {e}", record.name)),
            }
        }
        Ok(report)
    }

    /// Sets the bridge port of a CNI sandbox whose record is gone down, if
    /// it still exists: without its elements the port is not anti-spoofed,
    /// so it must pass nothing until the runtime's own clean-up removes it.
    /// (DEL does not need this: the chain's next plugin deletes the veth.)
    pub(super) fn quarantine_cni_port(&mut self, sandbox: &Sandbox) -> Result<(), EngineError> {
        let Some(c) = &sandbox.cni else {
            return Ok(());
        };
        let err = |e| EngineError::Rtnetlink(Box::new(e));
        if let Some(port) = self.rtnl.link(&c.host_port).map_err(err)? {
            self.rtnl.set_down(port.index).map_err(err)?;
        }
        Ok(())
    }

    /// A readable sandbox name for an attachment: `cni-` and the first 12
    /// characters of the container id (what runtimes show as its short id),
    /// plus the interface when it is not `eth0`. Falls back to a digest of
    /// both when that is not a valid name or is taken.
    fn cni_sandbox_name(&self, c: &CniAttachment) -> Result<SandboxName, EngineError> {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|ch| match ch.to_ascii_lowercase() {
                    ch @ ('a'..='z' | '0'..='9') => ch,
                    _ => '-',
                })
                .collect()
        };
        let short: String = clean(&c.container_id).chars().take(12).collect();
        let mut readable = format!("cni-{short}");
        if c.ifname != "eth0" {
            readable = format!("{readable}-{}", clean(&c.ifname));
        }
        if let Ok(name) = SandboxName::new(&readable) {
            if self.store.sandbox(&name)?.is_none() {
                return Ok(name);
            }
        }
        let digest = fnv1a(format!("{}/{}", c.container_id, c.ifname).as_bytes());
        let name = SandboxName::new(&format!("cni-{digest:016x}"))?;
        if self.store.sandbox(&name)?.is_some() {
            return Err(EngineError::Store(StoreError::NameTaken(name.to_string())));
        }
        Ok(name)
    }
}

/// 64-bit FNV-1a: a stable, dependency-free digest for fallback names (not
/// a security boundary: a collision only makes `ADD` fail).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
