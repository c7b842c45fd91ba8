//! What the front ends show of a sandbox and of the whole system.

use palisade_core::config::Config;
use palisade_core::model::{Sandbox, GATEWAY6};
use palisade_core::names::SANDBOX_IFACE;
use palisade_store::SandboxRecord;

/// A sandbox with everything a user (or a VMM) needs to know.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SandboxView {
    pub name: String,
    pub tenant: String,
    pub kind: String,
    pub state: String,
    pub internet: bool,
    pub allow: Vec<String>,
    /// Host ports forwarded to the sandbox.
    pub exposures: Vec<palisade_core::exposure::Exposure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<NetnsView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkView>,
    /// The attachment of a sandbox a CNI runtime made (kind `cni`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cni: Option<palisade_core::model::CniAttachment>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NetnsView {
    pub name: String,
    pub path: String,
    /// Whether palisade created it (and removes it on destroy).
    pub created: bool,
    pub interface: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NetworkView {
    pub host_interface: String,
    pub mac: String,
    pub ipv4: String,
    pub ipv4_gateway: String,
    pub ipv6: String,
    pub ipv6_gateway: String,
    /// Bridge mode: the bridge the host interface is a port of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
}

impl SandboxView {
    pub fn new(config: &Config, r: &SandboxRecord, sb: &Sandbox) -> SandboxView {
        SandboxView {
            name: r.name.to_string(),
            tenant: r.tenant.to_string(),
            kind: r.kind.to_string(),
            state: r.state.to_string(),
            internet: r.internet,
            allow: r.allow.iter().map(|a| a.to_string()).collect(),
            exposures: r.exposures.clone(),
            netns: (r.kind == palisade_core::model::SandboxKind::Netns).then(|| NetnsView {
                name: r.name.to_string(),
                path: palisade_link::netns_path(r.name.as_str())
                    .display()
                    .to_string(),
                created: r.netns_created,
                interface: SANDBOX_IFACE.to_string(),
            }),
            network: sb.attachment.as_ref().map(|a| NetworkView {
                host_interface: a.host_iface.clone(),
                mac: a.mac.to_string(),
                ipv4: format!("{}/32", a.ipv4),
                ipv4_gateway: config.gateway4().to_string(),
                ipv6: format!("{}/128", a.ipv6),
                ipv6_gateway: GATEWAY6.to_string(),
                bridge: (config.network.mode == palisade_core::config::Mode::Bridge)
                    .then(|| config.network.bridge_shard(a.ipv4).map(|s| s.iface))
                    .flatten(),
            }),
            cni: sb.cni.clone(),
            created_at: r.created_at.clone(),
        }
    }
}

/// `palisade status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatusView {
    /// The attachment mode in force (the configured one, else the one the
    /// store recorded).
    pub mode: palisade_core::config::Mode,
    pub tables: Vec<TableStatus>,
    pub sandboxes: usize,
    pub sandboxes_per_tenant: std::collections::BTreeMap<String, usize>,
    pub drift: bool,
    pub differences: usize,
    /// Destroyed sandboxes' veths counted as retired since the last reap
    /// (a veth whose namespace palisade deleted may already be gone with it).
    pub retired_interfaces: u64,
    pub features: Vec<Feature>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableStatus {
    pub table: String,
    pub present: bool,
    pub expected: bool,
    pub rules: usize,
    pub elements: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Feature {
    pub name: String,
    pub available: bool,
    pub detail: String,
}
