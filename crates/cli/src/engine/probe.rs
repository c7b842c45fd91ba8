//! Active verification: real packets from inside each sandbox, and proof
//! from palisade's own rule counters of what happened to them.
//!
//! A probe is sent, then the kernel's rule counters are polled until either
//! an answer arrives (the destination was reached) or one of palisade's
//! counted rules takes the packet: a `drop` rule proves it was stopped by
//! palisade, not merely that nothing answered; an `accept` rule proves
//! palisade let it through to a destination that may not answer (the
//! internet, a VM that is not running). Probes run one at a time so each
//! counter change belongs to one probe; other traffic on a busy host may be
//! counted with it, which can only make a mismatch look like a match if that
//! traffic hits the very rule the probe expects.
//!
//! Netns sandboxes: sockets are opened inside the sandbox's namespace (no
//! helper binary runs there). Tap sandboxes: UDP frames with the guest's MAC
//! and addresses are written into the tap, the path a VM's frames take; a
//! tap held by a running VMM cannot be written and is reported unprobed.

use super::{Engine, EngineError, VerifyReport};
use palisade_core::compile::{self, Ruleset};
use palisade_core::config::InterSandbox;
use palisade_core::element::Family;
use palisade_core::model::{Sandbox, SandboxKind};
use palisade_core::policy;
use palisade_nft::{RuleCounter, Verdict};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// How `verify --probe` probes.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// How long a probe waits for an answer or a counted rule.
    pub timeout: Duration,
    /// Internet destinations probed from sandboxes with `--internet`.
    pub internet_targets: Vec<IpAddr>,
}

/// Documentation addresses: routed nowhere, outside every blocked range.
pub const DEFAULT_INTERNET_TARGETS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Reach,
    Blocked,
}

/// Transport of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp(u16),
    Udp(u16),
    Icmp,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Tcp(p) => write!(f, "tcp/{p}"),
            Transport::Udp(p) => write!(f, "udp/{p}"),
            Transport::Icmp => f.write_str("icmp"),
        }
    }
}

/// One probe and what it showed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProbeResult {
    /// What the destination stands for, e.g. `metadata`, `host`,
    /// `sandbox web-2`, `private range 10.0.0.0/8`.
    pub target: String,
    pub destination: String,
    pub transport: String,
    pub expect: Expect,
    /// `reached`, `dropped`, `accepted` or `no evidence`.
    pub observed: String,
    /// The answer, or the palisade rule that counted the packet.
    pub evidence: String,
    pub matched: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SandboxProbes {
    pub name: String,
    pub tenant: String,
    pub kind: String,
    /// How traffic was sent: `netns sockets` or `tap frames`.
    pub method: String,
    /// Why this sandbox could not be probed, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_probed: Option<String>,
    pub probes: Vec<ProbeResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProbeReport {
    /// The static comparison that runs first.
    pub rules: VerifyReport,
    pub sandboxes: Vec<SandboxProbes>,
    pub probes: usize,
    pub matched: usize,
    pub unprobed: usize,
}

impl ProbeReport {
    /// True only if the rules match and every probe of every networked
    /// sandbox was sent and matched its expectation.
    pub fn ok(&self) -> bool {
        self.rules.ok() && self.probes == self.matched && self.unprobed == 0
    }
}

/// A destination to probe from one sandbox.
struct Target {
    label: String,
    addr: IpAddr,
    transport: Transport,
    expect: Expect,
}

impl Engine {
    /// `verify --probe`: the static verify, then probes from every
    /// networked sandbox (or only `only`).
    pub fn probe(
        &mut self,
        only: Option<&str>,
        opts: &ProbeOptions,
    ) -> Result<ProbeReport, EngineError> {
        let rules = self.verify(only)?;
        let ready: Vec<Sandbox> = self
            .ready_sandboxes()?
            .into_iter()
            .map(|(_, m)| m)
            .collect();
        let compiled = compile::compile(&self.config, &ready, &self.compiled_rules()?);
        let host_addrs = self.host_addresses()?;
        let mut report = ProbeReport {
            rules,
            sandboxes: Vec::new(),
            probes: 0,
            matched: 0,
            unprobed: 0,
        };
        for sb in ready
            .iter()
            .filter(|s| only.is_none_or(|n| s.name.as_str() == n))
        {
            let targets = self.targets(sb, &ready, &host_addrs, opts);
            let probes = self.probe_sandbox(sb, &host_addrs, &targets, &compiled, opts.timeout)?;
            if sb.kind.has_network() && probes.not_probed.is_some() {
                report.unprobed += 1;
            }
            report.probes += probes.probes.len();
            report.matched += probes.probes.iter().filter(|p| p.matched).count();
            report.sandboxes.push(probes);
        }
        Ok(report)
    }

    /// The host's own addresses, loopback and link-local left out (the
    /// first is unreachable from a sandbox by construction, the second
    /// needs a scope the probe cannot name portably).
    fn host_addresses(&mut self) -> Result<Vec<IpAddr>, EngineError> {
        let mut out: Vec<IpAddr> = self
            .rtnl()
            .list_addresses()
            .map_err(|e| EngineError::Rtnetlink(Box::new(e)))?
            .into_iter()
            .map(|(_, a, _)| a)
            .filter(|a| !a.is_loopback() && !is_link_local(a))
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn targets(
        &self,
        sb: &Sandbox,
        all: &[Sandbox],
        host_addrs: &[IpAddr],
        opts: &ProbeOptions,
    ) -> Vec<Target> {
        let mut t = Vec::new();
        let tap = sb.kind == SandboxKind::Tap;
        let mut push = |label: String, addr: IpAddr, transports: &[Transport], expect| {
            for &transport in transports {
                // A tap is probed with UDP frames only (see the module doc).
                let transport = match (tap, transport) {
                    (true, Transport::Tcp(p)) => Transport::Udp(p),
                    (true, Transport::Icmp) => continue,
                    _ => transport,
                };
                t.push(Target {
                    label: label.clone(),
                    addr,
                    transport,
                    expect,
                });
            }
        };
        let web = [Transport::Tcp(80), Transport::Udp(53), Transport::Icmp];
        for addr in [
            IpAddr::V4(policy::METADATA_V4),
            IpAddr::V6(policy::METADATA_V6),
        ] {
            push("metadata".into(), addr, &web, Expect::Blocked);
        }
        let host_ports = [
            Transport::Tcp(22),
            Transport::Tcp(10250),
            Transport::Udp(53),
            Transport::Icmp,
        ];
        let mut gateway = vec![IpAddr::V4(self.config.gateway4())];
        gateway.retain(|g| !host_addrs.contains(g));
        for &addr in host_addrs.iter().chain(&gateway) {
            // The gateway is one of the host's addresses even when no
            // interface carries it (routed mode answers ARP for it).
            push("host".into(), addr, &host_ports, Expect::Blocked);
        }
        for other in all.iter().filter(|o| o.id != sb.id) {
            let (v4, v6) = other.primary_addresses();
            let allowed = self.config.isolation.inter_sandbox == InterSandbox::SameTenant
                && other.tenant_id == sb.tenant_id;
            let expect = if allowed {
                Expect::Reach
            } else {
                Expect::Blocked
            };
            let label = format!("sandbox {} (tenant {})", other.name, other.tenant);
            let addrs = v4.map(IpAddr::V4).into_iter().chain(v6.map(IpAddr::V6));
            for addr in addrs {
                push(label.clone(), addr, &[Transport::Tcp(9)], expect);
            }
        }
        for (label, addr) in private_representatives(&self.config) {
            push(label, addr, &[Transport::Udp(53)], Expect::Blocked);
        }
        if sb.internet && self.config.network.uplink.is_some() {
            for &addr in &opts.internet_targets {
                if sb.allow.is_empty() {
                    push(
                        "internet".into(),
                        addr,
                        &[Transport::Tcp(443)],
                        Expect::Reach,
                    );
                    continue;
                }
                for rule in &sb.allow {
                    let transport = match rule.proto {
                        policy::Proto::Tcp => Transport::Tcp(rule.port),
                        policy::Proto::Udp => Transport::Udp(rule.port),
                    };
                    push(
                        "internet (allowed)".into(),
                        addr,
                        &[transport],
                        Expect::Reach,
                    );
                }
                let outside = (1..).find(|p| {
                    !sb.allow
                        .iter()
                        .any(|r| r.proto == policy::Proto::Tcp && r.port == *p)
                });
                if let Some(port) = outside {
                    push(
                        "internet (port not allowed)".into(),
                        addr,
                        &[Transport::Tcp(port)],
                        Expect::Blocked,
                    );
                }
            }
        }
        t
    }

    fn probe_sandbox(
        &mut self,
        sb: &Sandbox,
        host_addrs: &[IpAddr],
        targets: &[Target],
        compiled: &Ruleset,
        timeout: Duration,
    ) -> Result<SandboxProbes, EngineError> {
        let mut out = SandboxProbes {
            name: sb.name.to_string(),
            tenant: sb.tenant.to_string(),
            kind: sb.kind.to_string(),
            method: match sb.kind {
                SandboxKind::Netns => "netns sockets",
                SandboxKind::Tap => "tap frames (udp)",
                SandboxKind::None => "none",
                SandboxKind::Cni => "netns sockets (CNI attachment)",
            }
            .into(),
            not_probed: None,
            probes: Vec::new(),
        };
        let (src4, src6) = sb.primary_addresses();
        if src4.is_none() && src6.is_none() {
            out.not_probed = Some("networking disabled: nothing to probe".into());
            return Ok(out);
        }
        let mut sender = match sb.kind {
            SandboxKind::Netns => Sender::Netns(palisade_link::netns_path(sb.name.as_str())),
            SandboxKind::Cni => {
                let netns = sb.cni.as_ref().map(|c| c.netns.clone()).unwrap_or_default();
                Sender::Netns(netns.into())
            }
            SandboxKind::Tap => match self.tap_sender(sb) {
                Ok(s) => s,
                Err(why) => {
                    out.not_probed = Some(why);
                    return Ok(out);
                }
            },
            SandboxKind::None => unreachable!("has an address"),
        };
        for target in targets {
            // A CNI sandbox may lack one family: nothing to send from.
            let src = match target.addr {
                IpAddr::V4(_) => src4.map(IpAddr::V4),
                IpAddr::V6(_) => src6.map(IpAddr::V6),
            };
            let Some(src) = src else { continue };
            let to_host = host_addrs.contains(&target.addr);
            if !to_host && !self.host_routes(target.addr)? {
                // The host's routing drops it before palisade's forward
                // rules: nothing palisade could prove, nothing that leaks.
                out.probes.push(ProbeResult {
                    target: target.label.clone(),
                    destination: target.addr.to_string(),
                    transport: target.transport.to_string(),
                    expect: target.expect,
                    observed: "unroutable".into(),
                    evidence: "the host has no route to it, so the packet cannot leave; palisade's rule is not reached".into(),
                    matched: target.expect == Expect::Blocked,
                });
                continue;
            }
            let chains = evidence_chains(to_host);
            let before = self.counters()?;
            let sent = sender.send(src, target);
            let (observed, evidence) = match sent {
                Err(e) => ("not sent".to_string(), e),
                Ok(mut pending) => self.watch(&mut pending, &before, chains, compiled, timeout)?,
            };
            let matched = match target.expect {
                Expect::Reach => observed == "reached" || observed == "accepted",
                Expect::Blocked => observed == "dropped",
            };
            out.probes.push(ProbeResult {
                target: target.label.clone(),
                destination: target.addr.to_string(),
                transport: target.transport.to_string(),
                expect: target.expect,
                observed,
                evidence,
                matched,
            });
        }
        Ok(out)
    }

    /// Polls for an answer or a counted palisade rule until `timeout`.
    ///
    /// Only rules of `chains` count as evidence: the chains a packet from
    /// the sandbox to this kind of destination passes. Counters elsewhere
    /// move with the host's and the sandbox's own background traffic
    /// (multicast listener reports, router solicitations) and say nothing
    /// about the probe. A drop is confirmed only if no answer follows
    /// within a short grace period, so a real answer always wins.
    fn watch(
        &mut self,
        pending: &mut Pending,
        before: &HashMap<(Family, String, u64), u64>,
        chains: &[(Family, &str)],
        compiled: &Ruleset,
        timeout: Duration,
    ) -> Result<(String, String), EngineError> {
        const GRACE: Duration = Duration::from_millis(30);
        let deadline = Instant::now() + timeout;
        let mut accepted = None;
        let mut dropped: Option<(String, Instant)> = None;
        loop {
            if let Some(answer) = pending.answer() {
                return Ok(("reached".into(), answer));
            }
            if let Some((what, seen)) = &dropped {
                if seen.elapsed() >= GRACE {
                    return Ok(("dropped".into(), what.clone()));
                }
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            let now = self.counters_list()?;
            for c in now
                .iter()
                .filter(|c| chains.contains(&(c.family, c.chain.as_str())))
            {
                let old = before
                    .get(&(c.family, c.chain.clone(), c.handle))
                    .copied()
                    .unwrap_or(0);
                if c.packets <= old {
                    continue;
                }
                let text = compiled
                    .rule(c.family, &c.chain, c.index)
                    .unwrap_or("(rule not in the compiled ruleset)");
                let what = format!(
                    "{} palisade {} rule #{}: {text} (+{} packets)",
                    c.family.keyword(),
                    c.chain,
                    c.index,
                    c.packets - old
                );
                match c.verdict {
                    Verdict::Drop => dropped = Some((what, Instant::now())),
                    Verdict::Accept => accepted = Some(what),
                    Verdict::Other => {}
                }
            }
            if dropped.is_some() {
                continue;
            }
            if Instant::now() >= deadline {
                return Ok(match accepted {
                    Some(what) => ("accepted".into(), format!("{what}; no answer")),
                    None => (
                        "no evidence".into(),
                        "no answer and no palisade rule counted the packet".into(),
                    ),
                });
            }
            // An accept is evidence enough, but an answer may still come:
            // keep polling briefly for it.
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn host_routes(&mut self, dest: IpAddr) -> Result<bool, EngineError> {
        self.rtnl()
            .has_route(dest)
            .map_err(|e| EngineError::Rtnetlink(Box::new(e)))
    }

    fn counters_list(&mut self) -> Result<Vec<RuleCounter>, EngineError> {
        let mut all = Vec::new();
        for family in compile::families(&self.config) {
            all.extend(
                self.nft
                    .rule_counters(family)
                    .map_err(|e| EngineError::ReadBack(Box::new(e)))?,
            );
        }
        Ok(all)
    }

    fn counters(&mut self) -> Result<HashMap<(Family, String, u64), u64>, EngineError> {
        Ok(self
            .counters_list()?
            .into_iter()
            .map(|c| ((c.family, c.chain, c.handle), c.packets))
            .collect())
    }

    /// Attaches to a tap that no VMM holds.
    fn tap_sender(&mut self, sb: &Sandbox) -> Result<Sender, String> {
        let att = sb.attachment.as_ref().expect("networked");
        let found = self
            .rtnl()
            .link(&att.host_iface)
            .map_err(|e| e.to_string())?;
        let Some(link) = found else {
            return Err(format!("its tap {} is missing", att.host_iface));
        };
        let host_mac = link
            .mac
            .ok_or_else(|| format!("tap {} has no MAC", att.host_iface))?;
        match palisade_link::attach_tap(&att.host_iface) {
            Ok(file) => {
                // The tap has carrier once it is held; a bridge port
                // forwards only after the kernel's link watch has seen
                // that, which runs later in a worker: until then a bridge
                // drops the frames written in.
                self.rtnl()
                    .sync_link_state(&att.host_iface)
                    .map_err(|e| e.to_string())?;
                Ok(Sender::Tap {
                    file,
                    guest_mac: att.mac.0,
                    host_mac,
                })
            }
            Err(e) if e.errno() == Some(libc::EBUSY) => Err(
                format!(
                    "tap {} is held by a running VMM; probe it before the VMM starts, or from inside the guest (docs/verify.md)",
                    att.host_iface
                ),
            ),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The chains whose verdict decides a packet from a sandbox: the input path
/// for the host's own addresses, the forward path for everything else (in
/// bridge mode too: traffic between sandboxes is routed through the host).
fn evidence_chains(to_host: bool) -> &'static [(Family, &'static str)] {
    if to_host {
        &[(Family::Inet, "sandbox_to_host")]
    } else {
        &[
            (Family::Inet, "from_sandbox"),
            (Family::Inet, "to_peer"),
            // CNI sandboxes on one bridge meet at layer 2.
            (Family::Bridge, "cni_port_to_port"),
        ]
    }
}

fn is_link_local(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

/// One sendable address per blocked range: the range's first address plus
/// one, skipping ranges whose addresses a sandbox's own kernel will not send
/// to (unspecified, loopback, link-local, multicast, IPv4-compatible/mapped).
fn private_representatives(config: &palisade_core::config::Config) -> Vec<(String, IpAddr)> {
    let (user4, user6) = policy::split_nets(&config.isolation.blocked);
    let mut out = Vec::new();
    for net in policy::builtin_blocked_v4().into_iter().chain(user4) {
        let first = u32::from(net.network());
        let addr = Ipv4Addr::from(first.saturating_add(1));
        if net.contains(&addr)
            && !addr.is_loopback()
            && !addr.is_link_local()
            && !addr.is_multicast()
            && addr.octets()[0] != 0
            && addr.octets()[0] < 224
        {
            out.push((format!("blocked range {net}"), IpAddr::V4(addr)));
        }
    }
    for net in policy::builtin_blocked_v6().into_iter().chain(user6) {
        let first = u128::from(net.network());
        let addr = Ipv6Addr::from(first.saturating_add(1));
        let seg0 = addr.segments()[0];
        if net.contains(&addr)
            && !addr.is_loopback()
            && seg0 != 0
            && seg0 & 0xffc0 != 0xfe80
            && seg0 & 0xff00 != 0xff00
        {
            out.push((format!("blocked range {net}"), IpAddr::V6(addr)));
        }
    }
    out
}

/// Sends probes on behalf of one sandbox.
enum Sender {
    Netns(std::path::PathBuf),
    Tap {
        file: std::fs::File,
        guest_mac: [u8; 6],
        host_mac: [u8; 6],
    },
}

/// A sent probe whose answer may still come.
enum Pending {
    Socket(Socket, Transport),
    /// Tap probes rely on the counters alone.
    Frame,
}

impl Sender {
    fn send(&mut self, src: IpAddr, target: &Target) -> Result<Pending, String> {
        match self {
            Sender::Netns(path) => {
                let (dst, transport) = (target.addr, target.transport);
                palisade_link::run_in_netns(path, move || open_probe(dst, transport))
                    .map_err(|e| format!("cannot enter the sandbox's namespace: {e}"))?
                    .map(|s| Pending::Socket(s, transport))
                    .map_err(|e| format!("cannot send from the sandbox: {e}"))
            }
            Sender::Tap {
                file,
                guest_mac,
                host_mac,
            } => {
                let port = match target.transport {
                    Transport::Tcp(p) | Transport::Udp(p) => p,
                    Transport::Icmp => 7,
                };
                let frame = palisade_lab::traffic::build_udp_frame(
                    *guest_mac,
                    *host_mac,
                    src,
                    target.addr,
                    40_000,
                    port,
                    b"palisade verify --probe\n",
                )
                .map_err(|e| e.to_string())?;
                file.write_all(&frame)
                    .map_err(|e| format!("cannot write into the tap: {e}"))?;
                Ok(Pending::Frame)
            }
        }
    }
}

/// Opens a non-blocking socket in the current (sandbox) namespace and sends
/// the probe's first packet.
fn open_probe(dst: IpAddr, transport: Transport) -> std::io::Result<Socket> {
    let domain = if dst.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let (sock, port) = match transport {
        Transport::Tcp(p) => (Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?, p),
        Transport::Udp(p) => (Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?, p),
        Transport::Icmp => {
            let proto = if dst.is_ipv4() {
                Protocol::ICMPV4
            } else {
                Protocol::ICMPV6
            };
            (Socket::new(domain, Type::RAW, Some(proto))?, 0)
        }
    };
    sock.set_nonblocking(true)?;
    let addr = SockAddr::from(SocketAddr::new(dst, port));
    match transport {
        Transport::Tcp(_) => match sock.connect(&addr) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        },
        Transport::Udp(_) => {
            sock.connect(&addr)?;
            sock.send(b"palisade verify --probe\n")?;
        }
        Transport::Icmp => {
            sock.send_to(&echo_request(dst.is_ipv6()), &addr)?;
        }
    }
    Ok(sock)
}

/// An ICMP(v6) echo request; the kernel fills in the ICMPv6 checksum.
fn echo_request(v6: bool) -> Vec<u8> {
    let mut m = vec![if v6 { 128 } else { 8 }, 0, 0, 0, 0x70, 0x6c, 0, 1];
    m.extend_from_slice(b"palisade verify --probe");
    if !v6 {
        let sum = palisade_lab::traffic::internet_checksum(&m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    m
}

impl Pending {
    /// The destination's answer, if one came.
    fn answer(&mut self) -> Option<String> {
        let Pending::Socket(sock, transport) = self else {
            return None;
        };
        match transport {
            Transport::Tcp(_) => match sock.take_error() {
                Ok(Some(e)) if e.kind() == ErrorKind::ConnectionRefused => {
                    Some("refused by the destination (TCP reset)".into())
                }
                Ok(Some(_)) | Err(_) => None,
                Ok(None) => sock
                    .peer_addr()
                    .ok()
                    .map(|_| "connection established".to_string()),
            },
            Transport::Udp(_) => {
                let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 512];
                match sock.recv(&mut buf) {
                    Ok(_) => Some("answered".into()),
                    Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                        Some("port unreachable from the destination".into())
                    }
                    Err(_) => None,
                }
            }
            Transport::Icmp => {
                let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
                loop {
                    let (n, _) = sock.recv_from(&mut buf).ok()?;
                    // SAFETY: recv_from initialised the first n bytes.
                    let bytes: Vec<u8> = buf[..n]
                        .iter()
                        .map(|b| unsafe { b.assume_init() })
                        .collect();
                    // IPv4 raw sockets include the IP header, IPv6 ones not.
                    let icmp = match bytes.first() {
                        Some(b) if b >> 4 == 4 => bytes.get(usize::from(b & 0x0f) * 4..)?,
                        _ => &bytes[..],
                    };
                    if matches!(icmp.first(), Some(0) | Some(129)) {
                        return Some("echo reply".into());
                    }
                }
            }
        }
    }
}
