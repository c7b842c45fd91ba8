//! The policy matrix proven with real traffic, in a throwaway lab.
//!
//! A lab host namespace runs the real `palisade` binary; a "world" namespace
//! behind its uplink holds the internet, the metadata service and private
//! networks as local addresses, each with listeners that record every
//! arrival. Two tenants get two sandboxes each. For each cell a probe is sent
//! from inside a sandbox (or from the host, or the world), and the cell is
//! "reached" only if the target's listener recorded the packet.

use anyhow::{bail, Context, Result};
use palisade_core::config::Mode;
use palisade_lab::traffic::{self, ListenerSet, ProbeOutcome, L4};
use palisade_lab::{Lab, World};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// What a cell expects or observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Reached,
    Blocked,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Reached => "reached",
            Verdict::Blocked => "blocked",
        })
    }
}

/// One cell of the matrix.
#[derive(Debug, Clone)]
pub struct Cell {
    pub from: String,
    pub to: String,
    /// Which policy rule the cell demonstrates (1-8, as in the README).
    pub rule: u8,
    pub expected: Verdict,
    pub observed: Verdict,
    pub detail: String,
}

impl Cell {
    /// A cell whose observation is "did any packet arrive".
    fn from_arrivals(
        from: String,
        to: String,
        rule: u8,
        expected: Verdict,
        arrived: usize,
        detail: String,
    ) -> Cell {
        Cell {
            from,
            to,
            rule,
            expected,
            observed: if arrived > 0 {
                Verdict::Reached
            } else {
                Verdict::Blocked
            },
            detail,
        }
    }

    pub fn ok(&self) -> bool {
        self.expected == self.observed
    }
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct ScenarioOptions {
    pub mode: Mode,
    /// The palisade binary to run on the lab host.
    pub binary: PathBuf,
    /// Prefix of the sandbox names (they are also namespace names, which
    /// are global, so concurrent runs need distinct prefixes).
    pub prefix: String,
    /// Probe timeout for connections expected to be dropped.
    pub timeout: Duration,
    /// `inter_sandbox = "same-tenant"` when true, `"deny"` when false.
    pub same_tenant: bool,
    /// Bridge mode: `network.sandboxes_per_bridge` (the default if `None`).
    /// 4 puts the four sandboxes on two bridges, two of each tenant apart.
    pub sandboxes_per_bridge: Option<u32>,
    /// Called with progress messages.
    pub progress: fn(&str),
}

const HOST_PORT: u16 = 22;
const PEER_PORT: u16 = 8080;
const WEB_PORT: u16 = 80;
const TLS_PORT: u16 = 443;
const DNS_PORT: u16 = 53;
const MDNS_PORT: u16 = 5353;

/// A sandbox of the scenario.
#[derive(Debug, Clone)]
struct Member {
    name: String,
    tenant: &'static str,
    internet: bool,
    allow: Option<u16>,
    ipv4: Ipv4Addr,
    ipv6: Ipv6Addr,
    host_iface: String,
    /// Bridge mode: the bridge its host interface is a port of.
    bridge: Option<String>,
}

impl Member {
    fn path(&self) -> PathBuf {
        palisade_link::netns_path(&self.name)
    }
    fn label(&self) -> String {
        format!("{} ({})", self.short(), self.tenant)
    }
    fn short(&self) -> String {
        self.name
            .rsplit('-')
            .next()
            .unwrap_or(&self.name)
            .to_string()
    }
}

/// Runs palisade on the lab host with this scenario's config and state.
struct Palisade<'a> {
    lab: &'a Lab,
    binary: PathBuf,
    config: PathBuf,
    state: PathBuf,
}

impl Palisade<'_> {
    fn run(&self, args: &[&str]) -> Result<Output> {
        let mut full = vec![
            "--config",
            self.config.to_str().context("config path")?,
            "--state-dir",
            self.state.to_str().context("state path")?,
        ];
        full.extend_from_slice(args);
        Ok(self.lab.command(&self.binary, &full, &[])?)
    }

    fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        if !out.status.success() {
            bail!(
                "palisade {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Removes the scenario's state directory however the run ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds the lab, runs every cell, tears everything down, and returns the
/// cells. An error means the scenario itself could not run.
pub fn run(opts: &ScenarioOptions) -> Result<Vec<Cell>> {
    let progress = opts.progress;
    progress("building the lab host namespace and the world behind its uplink");
    let lab = Lab::new()?;
    let world = lab.add_world()?;
    let state = TempDir(std::env::temp_dir().join(format!("palisade-demo-{}", lab.name())));
    std::fs::create_dir_all(&state.0)?;
    let config = state.0.join("palisade.toml");
    let mode = opts.mode.name();
    let per_bridge = opts
        .sandboxes_per_bridge
        .map(|n| format!("sandboxes_per_bridge = {n}\n"))
        .unwrap_or_default();
    std::fs::write(
        &config,
        format!(
            "[network]\nmode = \"{mode}\"\nuplink = \"{}\"\n{per_bridge}\n[isolation]\ninter_sandbox = \"{}\"\n",
            World::LAB_IFACE,
            if opts.same_tenant { "same-tenant" } else { "deny" }
        ),
    )?;
    let palisade = Palisade {
        lab: &lab,
        binary: opts.binary.clone(),
        config,
        state: state.0.join("state"),
    };
    progress(&format!("palisade init ({mode} mode)"));
    palisade.ok(&["init"])?;

    // Created in this order, so that with 4 sandboxes per bridge (two on
    // the first, whose slice holds the network and gateway) each tenant has
    // one sandbox on each bridge.
    let specs: [(&str, &str, bool, Option<u16>); 4] = [
        ("a1", "acme", true, None),
        ("b1", "beta", false, None),
        ("a2", "acme", true, Some(TLS_PORT)),
        ("b2", "beta", true, None),
    ];
    let mut members = Vec::new();
    for (short, tenant, internet, allow) in specs {
        let name = format!("{}-{short}", opts.prefix);
        lab.adopt_cleanup(&name);
        let mut args = vec![
            "sandbox",
            "create",
            name.as_str(),
            "--tenant",
            tenant,
            "--json",
        ];
        let allow_arg = allow.map(|p| format!("tcp:{p}"));
        if internet {
            args.push("--internet");
        }
        if let Some(a) = &allow_arg {
            args.extend(["--allow", a.as_str()]);
        }
        let shown = args
            .iter()
            .filter(|a| **a != "--json")
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        progress(&format!("palisade {shown}"));
        let json: serde_json::Value = serde_json::from_str(&palisade.ok(&args)?)?;
        let net = &json["network"];
        let addr = |key: &str| -> Result<String> {
            Ok(net[key]
                .as_str()
                .and_then(|s| s.split('/').next())
                .with_context(|| format!("create output lacks network.{key}"))?
                .to_string())
        };
        members.push(Member {
            name,
            tenant,
            internet,
            allow,
            ipv4: addr("ipv4")?.parse()?,
            ipv6: addr("ipv6")?.parse()?,
            host_iface: addr("host_interface")?,
            bridge: net["bridge"].as_str().map(str::to_string),
        });
    }

    if opts.mode == Mode::Bridge {
        let bridges: std::collections::BTreeSet<&str> =
            members.iter().filter_map(|m| m.bridge.as_deref()).collect();
        progress(&format!(
            "the sandboxes are ports of {}",
            bridges.iter().copied().collect::<Vec<_>>().join(", ")
        ));
        if opts
            .sandboxes_per_bridge
            .is_some_and(|n| n as usize <= members.len())
            && bridges.len() < 2
        {
            bail!("the sandboxes should span several bridges, but are on {bridges:?}");
        }
    }
    progress("starting listeners: world (internet, metadata, private ranges), host services, each sandbox");
    let any4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
    let world_listeners = ListenerSet::start_grid(
        &world.path(),
        &[L4::Tcp],
        &[any4, any6],
        &[WEB_PORT, TLS_PORT],
    )?;
    let world_udp = ListenerSet::start(
        &world.path(),
        &[
            (L4::Udp, SocketAddr::new(World::INTERNET4.into(), DNS_PORT)),
            (L4::Udp, SocketAddr::new(World::INTERNET6.into(), DNS_PORT)),
        ],
    )?;
    let host_listeners =
        ListenerSet::start_grid(&lab.path(), &[L4::Tcp], &[any4, any6], &[HOST_PORT])?;
    let mut peer_listeners = Vec::new();
    for m in &members {
        peer_listeners.push(ListenerSet::start_grid(
            &m.path(),
            &[L4::Tcp],
            &[any4, any6],
            &[PEER_PORT],
        )?);
    }

    let mut cells = Vec::new();
    progress("sending traffic from every sandbox");
    for (i, src) in members.iter().enumerate() {
        let mut probes: Vec<Probe> = vec![
            Probe::world(
                src,
                "metadata 169.254.169.254:80",
                4,
                World::METADATA4.into(),
                WEB_PORT,
                false,
            ),
            Probe::world(
                src,
                "metadata [fd00:ec2::254]:80",
                4,
                World::METADATA6.into(),
                WEB_PORT,
                false,
            ),
            Probe::world(
                src,
                "private 10.99.0.10:80",
                4,
                World::PRIVATE10.into(),
                WEB_PORT,
                false,
            ),
            Probe::world(
                src,
                "private 192.168.77.10:80",
                4,
                World::PRIVATE192.into(),
                WEB_PORT,
                false,
            ),
            Probe::world(
                src,
                "private [fd99::10]:80",
                4,
                World::ULA6.into(),
                WEB_PORT,
                false,
            ),
            Probe::host(src, "host gateway 10.200.0.1:22", "10.200.0.1".parse()?),
            Probe::host(src, "host uplink 198.51.100.1:22", World::LAB4.into()),
            Probe::host(src, "host uplink [2001:db8:1::1]:22", World::LAB6.into()),
            Probe::world(
                src,
                "internet 203.0.113.10:80",
                5,
                World::INTERNET4.into(),
                WEB_PORT,
                src.internet && src.allow.is_none(),
            ),
            Probe::world(
                src,
                "internet 203.0.113.10:443",
                5,
                World::INTERNET4.into(),
                TLS_PORT,
                src.internet,
            ),
            Probe::world(
                src,
                "internet [2001:db8:ffff::10]:443",
                5,
                World::INTERNET6.into(),
                TLS_PORT,
                src.internet,
            ),
        ];
        for (j, dst) in members.iter().enumerate() {
            if i == j {
                continue;
            }
            let same = opts.same_tenant && dst.tenant == src.tenant;
            for (ip, fam) in [(IpAddr::V4(dst.ipv4), "v4"), (IpAddr::V6(dst.ipv6), "v6")] {
                probes.push(Probe {
                    to: format!("{} {fam} :{PEER_PORT}", dst.label()),
                    rule: 3,
                    dst: SocketAddr::new(ip, PEER_PORT),
                    expected: if same {
                        Verdict::Reached
                    } else {
                        Verdict::Blocked
                    },
                    target: Target::Peer(j),
                });
            }
        }
        let listeners_of = |t: Target| match t {
            Target::World => &world_listeners,
            Target::Host => &host_listeners,
            Target::Peer(j) => &peer_listeners[j],
        };
        // Only this round's source (or the masquerading uplink) counts.
        let from_src = |peer: IpAddr| match peer {
            IpAddr::V4(a) => a == src.ipv4 || a == World::LAB4,
            IpAddr::V6(a) => a == src.ipv6 || a == World::LAB6,
        };
        let before: Vec<usize> = probes
            .iter()
            .map(|p| arrivals_for(listeners_of(p.target), p.dst, from_src))
            .collect();
        let results = run_probes(&src.path(), &probes, opts.timeout)?;
        for ((probe, outcome), before) in probes.iter().zip(results).zip(before) {
            let arrived = arrivals_for(listeners_of(probe.target), probe.dst, from_src) - before;
            cells.push(Cell::from_arrivals(
                src.label(),
                probe.to.clone(),
                probe.rule,
                probe.expected,
                arrived,
                format!("{outcome:?}, {arrived} arrival(s)"),
            ));
        }
    }

    progress("sending unsolicited traffic to the sandboxes from the world and the host");
    for (label, ns, rule) in [
        ("world (uplink side)", world.path(), 1u8),
        ("host", lab.path(), 2u8),
    ] {
        let probes: Vec<Probe> = members
            .iter()
            .enumerate()
            .map(|(j, m)| Probe {
                to: format!("{} v4 :{PEER_PORT}", m.label()),
                rule,
                dst: SocketAddr::new(IpAddr::V4(m.ipv4), PEER_PORT),
                expected: Verdict::Blocked,
                target: Target::Peer(j),
            })
            .collect();
        let count = |p: &Probe| match p.target {
            Target::Peer(j) => arrivals_for(&peer_listeners[j], p.dst, |_| true),
            _ => 0,
        };
        let before: Vec<usize> = probes.iter().map(count).collect();
        let results = run_probes(&ns, &probes, opts.timeout)?;
        for ((probe, outcome), before) in probes.iter().zip(results).zip(before) {
            let arrived = count(probe) - before;
            cells.push(Cell::from_arrivals(
                label.to_string(),
                probe.to.clone(),
                probe.rule,
                probe.expected,
                arrived,
                format!("{outcome:?}, {arrived} arrival(s)"),
            ));
        }
    }

    progress("sending forged packets (another sandbox's source address)");
    let a1 = &members[0];
    let b1 = &members[1];
    let gateway_iface = match (opts.mode, &a1.bridge) {
        (Mode::Bridge, Some(bridge)) => bridge.clone(),
        (Mode::Bridge, None) => bail!("sandbox {} has no bridge in bridge mode", a1.name),
        (Mode::Routed, _) => a1.host_iface.clone(),
    };
    let gateway_mac = traffic::link_mac(&lab.path(), &gateway_iface)?;
    let own_mac = traffic::link_mac(&a1.path(), palisade_core::names::SANDBOX_IFACE)?;
    let forged_mac = [0x02, 0xde, 0xad, 0xbe, 0xef, 0x01];
    let dns4 = SocketAddr::new(World::INTERNET4.into(), DNS_PORT);
    let dns6 = SocketAddr::new(World::INTERNET6.into(), DNS_PORT);
    let cases: [(&str, [u8; 6], IpAddr, SocketAddr, Verdict); 7] = [
        (
            "own MAC and IPv4 (control)",
            own_mac,
            a1.ipv4.into(),
            dns4,
            Verdict::Reached,
        ),
        (
            "forged IPv4: b1's",
            own_mac,
            b1.ipv4.into(),
            dns4,
            Verdict::Blocked,
        ),
        (
            "forged IPv4: 203.0.113.99",
            own_mac,
            Ipv4Addr::new(203, 0, 113, 99).into(),
            dns4,
            Verdict::Blocked,
        ),
        (
            "forged MAC, own IPv4",
            forged_mac,
            a1.ipv4.into(),
            dns4,
            Verdict::Blocked,
        ),
        (
            "own MAC and IPv6 (control)",
            own_mac,
            a1.ipv6.into(),
            dns6,
            Verdict::Reached,
        ),
        (
            "forged IPv6: b1's",
            own_mac,
            b1.ipv6.into(),
            dns6,
            Verdict::Blocked,
        ),
        (
            "forged MAC, own IPv6",
            forged_mac,
            a1.ipv6.into(),
            dns6,
            Verdict::Blocked,
        ),
    ];
    for (label, src_mac, src_ip, dst, expected) in cases {
        let before = world_udp.arrivals_at(L4::Udp, dst).len();
        let frame = traffic::build_udp_frame(
            src_mac,
            gateway_mac,
            src_ip,
            dst.ip(),
            40000,
            dst.port(),
            b"palisade-spoof",
        )?;
        traffic::send_frame(&a1.path(), palisade_core::names::SANDBOX_IFACE, &frame)?;
        std::thread::sleep(Duration::from_millis(300));
        let arrived = world_udp.arrivals_at(L4::Udp, dst).len() - before;
        cells.push(Cell::from_arrivals(
            a1.label(),
            format!("UDP internet :53, {label}"),
            6,
            expected,
            arrived,
            format!("{arrived} arrival(s)"),
        ));
    }

    progress("sending broadcast and multicast from a sandbox");
    let mut bcast_listeners = vec![ListenerSet::start_grid(
        &lab.path(),
        &[L4::Udp],
        &[any4, any6],
        &[MDNS_PORT],
    )?];
    for m in members.iter().skip(1) {
        bcast_listeners.push(ListenerSet::start_grid(
            &m.path(),
            &[L4::Udp],
            &[any4, any6],
            &[MDNS_PORT],
        )?);
    }
    // The scenario runs with the default pool.
    let pool_broadcast = IpAddr::V4(
        palisade_core::config::Config::default()
            .network
            .subnet
            .broadcast(),
    );
    let group_cases: [(&str, [u8; 6], IpAddr, IpAddr); 4] = [
        (
            "255.255.255.255 (broadcast)",
            [0xff; 6],
            a1.ipv4.into(),
            Ipv4Addr::BROADCAST.into(),
        ),
        (
            "10.200.255.255 (pool broadcast)",
            [0xff; 6],
            a1.ipv4.into(),
            pool_broadcast,
        ),
        (
            "224.0.0.1 (all hosts)",
            [0x01, 0x00, 0x5e, 0, 0, 1],
            a1.ipv4.into(),
            Ipv4Addr::new(224, 0, 0, 1).into(),
        ),
        (
            "[ff02::1] (all nodes)",
            [0x33, 0x33, 0, 0, 0, 1],
            a1.ipv6.into(),
            "ff02::1".parse::<IpAddr>()?,
        ),
    ];
    let heard = |sets: &[ListenerSet]| sets.iter().map(|s| s.all_arrivals().len()).sum::<usize>();
    for (label, dst_mac, src_ip, dst_ip) in group_cases {
        let before = heard(&bcast_listeners);
        let frame = traffic::build_udp_frame(
            own_mac,
            dst_mac,
            src_ip,
            dst_ip,
            40001,
            MDNS_PORT,
            b"palisade-bcast",
        )?;
        traffic::send_frame(&a1.path(), palisade_core::names::SANDBOX_IFACE, &frame)?;
        std::thread::sleep(Duration::from_millis(300));
        let arrived = heard(&bcast_listeners) - before;
        cells.push(Cell::from_arrivals(
            a1.label(),
            format!("UDP {label} :{MDNS_PORT} to host or sandboxes"),
            4,
            Verdict::Blocked,
            arrived,
            format!("{arrived} arrival(s)"),
        ));
    }
    drop(bcast_listeners);

    progress("verifying the kernel against the store, then destroying every sandbox");
    let verify = palisade.run(&["verify"])?;
    cells.push(Cell {
        from: "palisade verify".into(),
        to: "kernel matches the store".into(),
        rule: 9,
        expected: Verdict::Reached,
        observed: if verify.status.success() {
            Verdict::Reached
        } else {
            Verdict::Blocked
        },
        detail: String::from_utf8_lossy(&verify.stdout).trim().to_string(),
    });
    drop(world_listeners);
    drop(host_listeners);
    drop(peer_listeners);
    for m in &members {
        palisade.ok(&["sandbox", "destroy", &m.name])?;
    }
    // A destroyed sandbox's veth may wait, retired (no policy, no route;
    // down, or in routed mode still up), for a batch deletion, as many as
    // `status` counts; `palisade reap` deletes the batch now.
    let status: serde_json::Value = serde_json::from_str(&palisade.ok(&["status", "--json"])?)
        .context("palisade status --json")?;
    let waiting = status["retired_interfaces"].as_u64().unwrap_or(0);
    let mut leftovers = not_retired(&lab, waiting)?;
    palisade.ok(&["reap"])?;
    leftovers.extend(leftovers_after_reap(&lab, &members)?);
    cells.push(Cell {
        from: "palisade sandbox destroy".into(),
        to: "no interface or namespace left".into(),
        rule: 8,
        expected: Verdict::Blocked,
        observed: if leftovers.is_empty() {
            Verdict::Blocked
        } else {
            Verdict::Reached
        },
        detail: if leftovers.is_empty() {
            "clean".into()
        } else {
            leftovers.join(", ")
        },
    });
    Ok(cells)
}

#[derive(Debug, Clone, Copy)]
enum Target {
    World,
    Host,
    Peer(usize),
}

struct Probe {
    to: String,
    rule: u8,
    dst: SocketAddr,
    expected: Verdict,
    target: Target,
}

impl Probe {
    fn world(_src: &Member, to: &str, rule: u8, ip: IpAddr, port: u16, allowed: bool) -> Probe {
        Probe {
            to: to.to_string(),
            rule,
            dst: SocketAddr::new(ip, port),
            expected: if allowed {
                Verdict::Reached
            } else {
                Verdict::Blocked
            },
            target: Target::World,
        }
    }
    fn host(_src: &Member, to: &str, ip: IpAddr) -> Probe {
        Probe {
            to: to.to_string(),
            rule: 2,
            dst: SocketAddr::new(ip, HOST_PORT),
            expected: Verdict::Blocked,
            target: Target::Host,
        }
    }
}

/// Runs the probes concurrently (each on its own thread inside `netns`), so
/// a round costs one timeout, not one per dropped probe.
fn run_probes(netns: &Path, probes: &[Probe], timeout: Duration) -> Result<Vec<ProbeOutcome>> {
    let handles: Vec<_> = probes
        .iter()
        .map(|p| {
            let ns = netns.to_path_buf();
            let dst = p.dst;
            std::thread::spawn(move || traffic::tcp_connect(&ns, dst, timeout))
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(
            h.join()
                .map_err(|_| anyhow::anyhow!("probe thread panicked"))??,
        );
    }
    // Let listeners record the last accepted connections.
    std::thread::sleep(Duration::from_millis(200));
    Ok(out)
}

fn arrivals_for(listeners: &ListenerSet, dst: SocketAddr, from: impl Fn(IpAddr) -> bool) -> usize {
    listeners
        .all_arrivals()
        .into_iter()
        .filter(|a| {
            a.l4 == L4::Tcp && a.local.port() == dst.port() && same_ip(a.local.ip(), dst.ip())
        })
        .filter(|a| from(canonical(a.peer.ip())))
        .count()
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    canonical(a) == canonical(b)
}

/// Interfaces or namespaces of the scenario's sandboxes still present.
/// Sandbox interfaces left after every sandbox was destroyed, if there are
/// more of them than the `waiting` retired ones palisade counts.
fn not_retired(lab: &Lab, waiting: u64) -> Result<Vec<String>> {
    let left: Vec<String> = lab
        .run(|| palisade_link::Rtnl::open().and_then(|mut r| r.list_links()))??
        .into_iter()
        .filter(|l| l.name.starts_with(palisade_core::names::IFACE_PREFIX))
        .map(|l| l.name)
        .collect();
    if left.len() as u64 <= waiting {
        return Ok(Vec::new());
    }
    Ok(left
        .into_iter()
        .map(|n| format!("interface {n} (not retired: {waiting} counted as retired)"))
        .collect())
}

fn leftovers_after_reap(lab: &Lab, members: &[Member]) -> Result<Vec<String>> {
    let names: Vec<String> = lab
        .run(|| palisade_link::Rtnl::open().and_then(|mut r| r.list_links()))??
        .into_iter()
        .map(|l| l.name)
        .collect();
    let mut out: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with(palisade_core::names::IFACE_PREFIX))
        .map(|n| format!("interface {n}"))
        .collect();
    for m in members {
        if palisade_link::named_netns_exists(&m.name) {
            out.push(format!("namespace {}", m.name));
        }
    }
    Ok(out)
}
