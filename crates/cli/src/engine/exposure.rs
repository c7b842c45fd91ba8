//! Exposing a sandbox's ports on the host, and taking exposures back.
//!
//! The store is the source of truth and refuses a host port that another
//! exposure holds; the kernel's DNAT map elements follow in one batch. A
//! failed kernel update takes the row back, so the two never disagree.

use super::{Engine, EngineError, SandboxView};
use palisade_core::compile::exposure_elements;
use palisade_core::exposure::{Exposure, PortRange};
use palisade_core::names::SandboxName;
use palisade_core::policy::Proto;
use palisade_store::{SandboxRecord, SandboxState};
use std::net::IpAddr;

/// An `expose` or `unexpose` request as a user typed it.
#[derive(Debug, Clone, Default)]
pub struct ExposeRequest {
    pub sandbox: String,
    /// `PORT` or `FIRST-LAST` inside the sandbox.
    pub port: Option<String>,
    /// `PORT` or `FIRST-LAST` on the host; defaults to the sandbox's ports.
    pub host_port: Option<String>,
    /// `tcp` or `udp`.
    pub proto: String,
    /// One host address; `None` for all of them.
    pub host_ip: Option<String>,
}

impl Engine {
    /// The ready, networked sandbox a request is about.
    fn exposable(&self, name: &str) -> Result<SandboxRecord, EngineError> {
        let name = SandboxName::new(name)?;
        let record = self
            .store
            .sandbox(&name)?
            .ok_or_else(|| EngineError::NotFound(name.to_string()))?;
        let invalid = |why: &str| EngineError::InvalidRequest {
            sandbox: name.to_string(),
            why: why.to_string(),
        };
        if record.state != SandboxState::Ready {
            return Err(invalid("it is being created or destroyed"));
        }
        if record.offset.is_none() && record.cni.is_none() {
            return Err(invalid(
                "it has networking disabled (--kind none); nothing can be exposed",
            ));
        }
        Ok(record)
    }

    /// Adds an exposure. Exposing exactly what is already exposed is a
    /// no-op; any other overlap on a host port is refused.
    pub fn expose(&mut self, req: &ExposeRequest) -> Result<(SandboxView, Exposure), EngineError> {
        let record = self.exposable(&req.sandbox)?;
        let invalid = |why: String| EngineError::InvalidRequest {
            sandbox: record.name.to_string(),
            why,
        };
        let proto: Proto = req.proto.parse().map_err(invalid)?;
        let guest = parse_range(req.port.as_deref())
            .map_err(invalid)?
            .ok_or_else(|| invalid("--port (the port inside the sandbox) is required".into()))?;
        let host = parse_range(req.host_port.as_deref())
            .map_err(invalid)?
            .unwrap_or(guest);
        let host_ip = parse_host_ip(req.host_ip.as_deref()).map_err(invalid)?;
        let exposure =
            Exposure::new(proto, host_ip, host, guest).map_err(|e| invalid(e.to_string()))?;
        if record.exposures.contains(&exposure) {
            return Ok((self.view(&record), exposure));
        }
        let sandbox = self.model(&record);
        let (v4, v6) = sandbox.primary_addresses();
        check_family(&exposure, v4.is_some(), v6.is_some()).map_err(invalid)?;
        self.store.add_exposure(record.id, &exposure)?;
        let elements = exposure_elements(&exposure, v4, v6);
        if let Err(source) = self.nft.apply_elements(&elements, &[]) {
            self.store.remove_exposure(record.id, &exposure)?;
            return Err(EngineError::Elements {
                sandbox: record.name.to_string(),
                source: Box::new(source),
            });
        }
        let record = self.reread(&record)?;
        Ok((self.view(&record), exposure))
    }

    /// Removes the exposures that match the request: by host ports, by
    /// sandbox ports, or all of them (neither given), for the protocol and
    /// host address given. The kernel forgets them first, so a failure
    /// halfway leaves the port closed rather than open.
    pub fn unexpose(&mut self, req: &ExposeRequest) -> Result<Vec<Exposure>, EngineError> {
        let record = self.exposable(&req.sandbox)?;
        let invalid = |why: String| EngineError::InvalidRequest {
            sandbox: record.name.to_string(),
            why,
        };
        let proto: Proto = req.proto.parse().map_err(invalid)?;
        let guest = parse_range(req.port.as_deref()).map_err(invalid)?;
        let host = parse_range(req.host_port.as_deref()).map_err(invalid)?;
        let host_ip = parse_host_ip(req.host_ip.as_deref()).map_err(invalid)?;
        let doomed: Vec<Exposure> = record
            .exposures
            .iter()
            .filter(|e| e.proto == proto)
            .filter(|e| req.host_ip.is_none() || e.host_ip == host_ip)
            .filter(|e| guest.is_none_or(|g| e.guest_ports == g))
            .filter(|e| host.is_none_or(|h| e.host_ports == h))
            .copied()
            .collect();
        if doomed.is_empty() {
            let have = if record.exposures.is_empty() {
                "it has no exposures".to_string()
            } else {
                let list: Vec<String> = record.exposures.iter().map(|e| e.to_string()).collect();
                format!("it has {}", list.join(", "))
            };
            return Err(invalid(format!("no {proto} exposure matches; {have}")));
        }
        let (v4, v6) = self.model(&record).primary_addresses();
        let elements: Vec<_> = doomed
            .iter()
            .flat_map(|e| exposure_elements(e, v4, v6))
            .collect();
        self.nft
            .apply_elements(&[], &elements)
            .map_err(|source| EngineError::Elements {
                sandbox: record.name.to_string(),
                source: Box::new(source),
            })?;
        for e in &doomed {
            self.store.remove_exposure(record.id, e)?;
        }
        Ok(doomed)
    }

    fn reread(&self, record: &SandboxRecord) -> Result<SandboxRecord, EngineError> {
        self.store
            .sandbox(&record.name)?
            .ok_or_else(|| EngineError::NotFound(record.name.to_string()))
    }

    fn view(&self, record: &SandboxRecord) -> SandboxView {
        SandboxView::new(&self.config, record, &self.model(record))
    }
}

/// An exposure on a host address of one family needs a sandbox address of
/// that family to forward to (a CNI sandbox may have only one).
pub(super) fn check_family(exposure: &Exposure, has_v4: bool, has_v6: bool) -> Result<(), String> {
    match exposure.host_ip {
        Some(IpAddr::V4(a)) if !has_v4 => Err(format!(
            "host address {a} is IPv4 but the sandbox has no IPv4 address"
        )),
        Some(IpAddr::V6(a)) if !has_v6 => Err(format!(
            "host address {a} is IPv6 but the sandbox has no IPv6 address"
        )),
        _ => Ok(()),
    }
}

fn parse_range(s: Option<&str>) -> Result<Option<PortRange>, String> {
    s.map(|p| p.parse::<PortRange>().map_err(|e| e.to_string()))
        .transpose()
}

fn parse_host_ip(s: Option<&str>) -> Result<Option<IpAddr>, String> {
    s.map(|a| {
        a.parse::<IpAddr>()
            .map_err(|_| format!("--host-ip {a:?} is not an IPv4 or IPv6 address"))
    })
    .transpose()
}
