//! A real microVM attacks palisade from inside.
//!
//! QEMU's `microvm` machine (software emulation, no KVM) boots a Debian
//! kernel with a busybox initramfs (`scripts/build-guest-image`) whose init
//! runs `palisade-guest-attacks` (crates/lab/src/bin). The VM is attached to
//! a palisade **tap** sandbox, created with the CLI in a throwaway lab host
//! namespace, exactly as a VMM would be; QEMU itself runs inside the lab
//! namespace. The guest tries attack cases 1-7 (metadata, host services,
//! other sandboxes, forged sources, ARP/NDP poisoning, rogue router/DHCP,
//! egress to blocked ranges) and prints one line per attempt on its serial
//! console. For each attempt this test checks both what the guest saw and
//! what the lab recorded: listeners and packet captures in the world, on the
//! lab host and in two netns sandboxes (one of the same tenant, one of
//! another), the lab host's neighbour table, addresses and routes. A blocked
//! attempt must arrive nowhere; the controls (same-tenant traffic, allowed
//! internet egress, a correctly addressed frame) must arrive, so a guest that
//! cannot send anything fails the test instead of passing it.
//!
//! The VM boots three times, as three sandboxes: without `--internet`, with
//! it, and with `--internet --allow tcp:443`.

mod common;

use common::Env;
use palisade_lab::traffic::{link_mac, Arrival, Capture, CapturedFrame, ListenerSet, L4};
use palisade_lab::World;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Port the netns sandboxes listen on.
const PEER_PORT: u16 = 8080;
/// Host services a sandbox must never reach (SSH, Docker, Nomad,
/// Kubernetes API, a web app, kubelet).
const HOST_PORTS: [u16; 6] = [22, 2375, 4646, 6443, 8000, 10250];
/// DHCPv4 server/client, DHCPv6 client/server.
const DHCP_PORTS: [u16; 4] = [67, 68, 546, 547];
/// The guest's probe timeout, in ms.
const GUEST_TIMEOUT_MS: u64 = 3000;
/// How long one boot may take before QEMU is killed.
const BOOT_LIMIT: Duration = Duration::from_secs(120);
/// The MAC the guest forges (as in palisade-guest-attacks).
const FORGED_MAC: [u8; 6] = [0x02, 0xde, 0xad, 0xbe, 0xef, 0x01];
/// Sources outside the pool that the guest forges.
const OUTSIDE4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
const OUTSIDE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x66, 0, 0, 0, 0, 0x66);
/// What `udp_exchange` sends; spoofed frames carry `palisade-spoof NAME`.
const PROBE_PAYLOAD: &[u8] = b"palisade-lab probe\n";
const SPOOF_PREFIX: &str = "palisade-spoof ";

/// `mode`, internet through the world, same-tenant traffic allowed.
fn config(mode: &str) -> String {
    format!(
        "[network]\nmode = \"{mode}\"\nuplink = \"{}\"\n\n[isolation]\ninter_sandbox = \"same-tenant\"\n",
        World::LAB_IFACE
    )
}

/// How the VM's sandbox is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// No `--internet`.
    Closed,
    /// `--internet`.
    Internet,
    /// `--internet --allow tcp:443`.
    Allow443,
}

impl Profile {
    fn short(self) -> &'static str {
        match self {
            Profile::Closed => "vm-closed",
            Profile::Internet => "vm-internet",
            Profile::Allow443 => "vm-allow",
        }
    }

    fn flags(self) -> &'static [&'static str] {
        match self {
            Profile::Closed => &[],
            Profile::Internet => &["--internet"],
            Profile::Allow443 => &["--internet", "--allow", "tcp:443"],
        }
    }

    /// May the sandbox reach the internet with this protocol and port?
    fn egress(self, proto: &str, port: u16) -> bool {
        match self {
            Profile::Closed => false,
            Profile::Internet => true,
            Profile::Allow443 => proto == "tcp" && port == 443,
        }
    }
}

/// A sandbox as `palisade sandbox show NAME --json` describes it.
#[derive(Debug, Clone)]
struct Sandbox {
    name: String,
    ip4: Ipv4Addr,
    ip6: Ipv6Addr,
    mac: [u8; 6],
    host_iface: String,
    /// Bridge mode: the bridge its interface is a port of.
    bridge: Option<String>,
}

impl Sandbox {
    /// Where the host keeps its neighbour entries for this sandbox: its
    /// bridge in bridge mode, its own interface in routed mode.
    fn neighbour_dev(&self) -> &str {
        self.bridge.as_deref().unwrap_or(&self.host_iface)
    }
}

fn show(env: &Env, name: &str) -> Sandbox {
    let v = env.json(&["sandbox", "show", name, "--json"]);
    let net = &v["network"];
    let field = |k: &str| -> String {
        net[k]
            .as_str()
            .unwrap_or_else(|| panic!("sandbox show {name}: no network.{k} in {v}"))
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    Sandbox {
        name: name.to_string(),
        ip4: field("ipv4").parse().unwrap(),
        ip6: field("ipv6").parse().unwrap(),
        mac: parse_mac(&field("mac")),
        host_iface: field("host_interface"),
        bridge: net["bridge"].as_str().map(str::to_string),
    }
}

fn parse_mac(s: &str) -> [u8; 6] {
    let mut mac = [0u8; 6];
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).unwrap_or_else(|_| panic!("bad MAC {s}")))
        .collect();
    assert_eq!(parts.len(), 6, "bad MAC {s}");
    mac.copy_from_slice(&parts);
    mac
}

fn fmt_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// The guest attack program: next to the palisade binary when the whole
/// workspace is built (`cargo test --workspace`), else built here into a
/// target directory of its own (the one running this test is locked by
/// cargo while tests run).
fn guest_attacks_binary() -> PathBuf {
    let palisade = Path::new(env!("CARGO_BIN_EXE_palisade"));
    let sibling = palisade.with_file_name("palisade-guest-attacks");
    if sibling.is_file() {
        return sibling;
    }
    let target = palisade
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join("microvm-guest");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!(
        "microvm: building palisade-guest-attacks into {}",
        target.display()
    );
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "-p",
            "palisade-lab",
            "--bin",
            "palisade-guest-attacks",
        ])
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build of palisade-guest-attacks failed"
    );
    let built = target.join("debug/palisade-guest-attacks");
    assert!(built.is_file(), "{} was not built", built.display());
    built
}

/// Kernel and initrd from `scripts/build-guest-image` (cached after the
/// first run).
fn guest_image(attacks: &Path) -> (PathBuf, PathBuf) {
    let started = Instant::now();
    let out = Command::new(workspace_root().join("scripts/build-guest-image"))
        .arg(attacks)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/build-guest-image");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/build-guest-image failed: {stdout}"
    );
    let get = |k: &str| -> PathBuf {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("build-guest-image printed no {k}=: {stdout}"))
            .into()
    };
    let image = (get("KERNEL"), get("INITRD"));
    eprintln!(
        "microvm: guest image ready in {:.1}s: {} {}",
        started.elapsed().as_secs_f64(),
        image.0.display(),
        image.1.display()
    );
    image
}

/// The host's TSC frequency in kHz, which is also the TSC frequency of a
/// guest under TCG (QEMU passes the host's counter through).
fn host_tsc_khz() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let t0 = Instant::now();
        // SAFETY: rdtsc has no preconditions on x86_64.
        let c0 = unsafe { core::arch::x86_64::_rdtsc() };
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: as above.
        let c1 = unsafe { core::arch::x86_64::_rdtsc() };
        let us = t0.elapsed().as_micros() as u64;
        if us > 0 && c1 > c0 {
            return (c1 - c0) * 1000 / us;
        }
    }
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("cpu MHz")?
                    .split(':')
                    .nth(1)?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
        })
        .map(|mhz| (mhz * 1000.0) as u64)
        .unwrap_or(2_000_000)
}

/// Wait until each of `ifaces` in the lab has its IPv6 link-local address,
/// so snapshots of the host's addresses do not race the kernel adding them.
fn wait_for_link_locals(env: &Env, ifaces: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let addrs = host_addresses(env);
        let missing: Vec<&&str> = ifaces
            .iter()
            .filter(|i| {
                !addrs
                    .iter()
                    .any(|(n, ip, _)| n == *i && is_link_local(&ip.to_string()))
            })
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no link-local address on {missing:?} in the lab"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Bridge mode: wait until the kernel has routed the bridge's own
/// link-local address, from its MAC (once its duplicate address detection
/// is done, a second or two
/// after its first port came up), so the snapshots of the host's routes
/// taken during a boot do not race it.
fn wait_for_local_link_local_route(env: &Env, bridge: &str) {
    let mac = link_mac(&env.lab.path(), bridge).expect("bridge MAC");
    let own = palisade_link::ipv6_link_local_from_mac(mac).to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let routes = ip_json(
            env,
            &["-6", "route", "show", "table", "local", "dev", bridge],
        );
        let routed = routes
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "local" && r["dst"] == own.as_str());
        if routed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no local route for {bridge}'s link-local address in the lab: {routes}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills QEMU if the test leaves before it exited (timeout or panic).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn collect(
    mut from: impl Read + Send + 'static,
) -> (std::thread::JoinHandle<()>, Arc<Mutex<Vec<u8>>>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = Arc::clone(&buf);
    let t = std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = from.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    (t, buf)
}

struct Boot {
    console: String,
    qemu_stderr: String,
    timed_out: bool,
    elapsed: Duration,
}

/// Run QEMU inside the lab namespace until the guest powers off (or the
/// limit passes, then kill it), calling `poll` every few hundred
/// milliseconds while it runs: state that lives only as long as the tap
/// has a carrier (neighbour entries, addresses and routes learnt on it)
/// must be looked at while the VM is up.
fn run_qemu(env: &Env, qemu: &Path, args: Vec<String>, mut poll: impl FnMut()) -> Boot {
    let mut cmd = Command::new(qemu);
    cmd.args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let child = env
        .lab
        .run(move || cmd.spawn())
        .expect("enter the lab")
        .expect("start qemu-system-x86_64");
    let mut vm = KillOnDrop(child);
    let (out_thread, out) = collect(vm.0.stdout.take().unwrap());
    let (err_thread, err) = collect(vm.0.stderr.take().unwrap());
    let mut timed_out = false;
    loop {
        poll();
        if vm.0.try_wait().expect("wait for qemu").is_some() {
            break;
        }
        if started.elapsed() > BOOT_LIMIT {
            timed_out = true;
            let _ = vm.0.kill();
            let _ = vm.0.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let elapsed = started.elapsed();
    drop(vm);
    let _ = out_thread.join();
    let _ = err_thread.join();
    let text =
        |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&b.lock().unwrap()).replace('\r', "");
    Boot {
        console: text(&out),
        qemu_stderr: text(&err),
        timed_out,
        elapsed,
    }
}

/// `PALISADE-CASE <case> <name> <outcome>` lines: name -> (case, outcome).
fn parse_console(console: &str) -> (BTreeMap<String, (u8, String)>, bool) {
    let mut cases = BTreeMap::new();
    let mut done = false;
    for line in console.lines() {
        if line.contains("PALISADE-DONE") {
            done = true;
        }
        let Some(rest) = line.split("PALISADE-CASE ").nth(1) else {
            continue;
        };
        let mut words = rest.split_whitespace();
        if let (Some(case), Some(name), Some(outcome)) = (words.next(), words.next(), words.next())
        {
            cases.insert(
                name.to_string(),
                (case.parse().unwrap_or(255), outcome.to_string()),
            );
        }
    }
    (cases, done)
}

/// What a case line must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// The destination answered (`reply`).
    Reach,
    /// No answer (`noreply`, `refused`, `unreachable:...`), but the
    /// attempt was made (not `error:...`).
    Block,
    /// A forged frame left the guest (`sent`); the host side judges.
    Sent,
}

impl Want {
    fn accepts(self, outcome: &str) -> bool {
        match self {
            Want::Reach => outcome == "reply",
            Want::Block => {
                outcome == "noreply" || outcome == "refused" || outcome.starts_with("unreachable:")
            }
            Want::Sent => outcome == "sent",
        }
    }
}

fn name(proto: &str, ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{proto}:{a}:{port}"),
        IpAddr::V6(a) => format!("{proto}:[{a}]:{port}"),
    }
}

/// TCP 80 and 443, UDP 53 and ICMP to `ip`, as the guest names them.
fn web(case: u8, ip: IpAddr, want: impl Fn(&str, u16) -> Want) -> Vec<(u8, String, Want)> {
    vec![
        (case, name("tcp", ip, 80), want("tcp", 80)),
        (case, name("tcp", ip, 443), want("tcp", 443)),
        (case, name("udp", ip, 53), want("udp", 53)),
        (case, format!("icmp:{ip}"), want("icmp", 0)),
    ]
}

/// Every line the guest must print, with what it must say.
fn expected_cases(
    profile: Profile,
    host: &[IpAddr],
    peer: &Sandbox,
    other: &Sandbox,
) -> Vec<(u8, String, Want)> {
    let mut out = Vec::new();
    for ip in [World::METADATA4.into(), World::METADATA6.into()] {
        out.extend(web(1, ip, |_, _| Want::Block));
    }
    for &ip in host {
        for port in HOST_PORTS {
            out.push((2, name("tcp", ip, port), Want::Block));
        }
    }
    for (sb, want) in [(peer, Want::Reach), (other, Want::Block)] {
        for ip in [IpAddr::V4(sb.ip4), IpAddr::V6(sb.ip6)] {
            out.push((3, name("tcp", ip, PEER_PORT), want));
            out.push((3, name("udp", ip, PEER_PORT), want));
            out.push((3, format!("icmp:{ip}"), want));
        }
    }
    for ip in [World::INTERNET4.into(), World::INTERNET6.into()] {
        out.extend(web(7, ip, |proto, port| {
            if profile.egress(proto, port) {
                Want::Reach
            } else {
                Want::Block
            }
        }));
    }
    for ip in [
        World::PRIVATE10.into(),
        World::PRIVATE172.into(),
        World::PRIVATE192.into(),
        World::CGNAT4.into(),
        World::ULA6.into(),
    ] {
        out.extend(web(7, ip, |_, _| Want::Block));
    }
    for fam in ["4", "6"] {
        for what in ["control", "peer", "other", "outside", "gateway", "mac"] {
            out.push((4, format!("spoof{fam}-{what}"), Want::Sent));
        }
    }
    for n in [
        "arp-reply-gateway",
        "arp-reply-peer",
        "arp-reply-other",
        "arp-request-gateway",
        "arp-request-peer",
        "arp-request-other",
        "arp-request-forged-mac",
        "na-gateway",
        "na-gateway-from-gateway",
        "na-peer",
        "na-other",
        "na-forged-mac",
        "ns-from-peer",
        "ns-from-other",
    ] {
        out.push((5, n.to_string(), Want::Sent));
    }
    for ip in [IpAddr::V4(peer.ip4), IpAddr::V6(peer.ip6)] {
        out.push((
            5,
            format!("after:{}", name("tcp", ip, PEER_PORT)),
            Want::Reach,
        ));
    }
    for n in [
        "ra",
        "ra-from-gateway",
        "dhcp4-offer",
        "dhcp4-offer-to-gateway",
        "dhcp6-advertise",
    ] {
        out.push((6, n.to_string(), Want::Sent));
    }
    out
}

/// Listeners and captures of one namespace, with marks for "since".
struct Watch {
    label: String,
    sets: Vec<ListenerSet>,
    capture: Option<Capture>,
}

#[derive(Default)]
struct Marks {
    listeners: Vec<Vec<usize>>,
    frames: usize,
}

impl Watch {
    fn mark(&self) -> Marks {
        Marks {
            listeners: self
                .sets
                .iter()
                .map(|s| s.iter().map(|l| l.arrivals().len()).collect())
                .collect(),
            frames: self.capture.as_ref().map_or(0, Capture::len),
        }
    }

    fn arrivals_since(&self, m: &Marks) -> Vec<Arrival> {
        self.sets
            .iter()
            .zip(&m.listeners)
            .flat_map(|(s, marks)| {
                s.iter()
                    .zip(marks)
                    .flat_map(|(l, &n)| l.arrivals().into_iter().skip(n))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Frames that arrived (not sent by the namespace itself) since `m`.
    fn frames_since(&self, m: &Marks) -> Vec<CapturedFrame> {
        self.capture.as_ref().map_or_else(Vec::new, |c| {
            c.frames()
                .into_iter()
                .skip(m.frames)
                .filter(|f| !f.outgoing)
                .collect()
        })
    }
}

/// The IP layer of a captured frame.
struct Packet {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: Vec<u8>,
}

fn ip_packet(f: &[u8]) -> Option<Packet> {
    let ethertype = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
    let ip = f.get(14..)?;
    match ethertype {
        0x0800 if ip.len() >= 20 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            Some(Packet {
                src: IpAddr::V4(Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15])),
                dst: IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])),
                proto: ip[9],
                payload: ip.get(ihl..)?.to_vec(),
            })
        }
        0x86dd if ip.len() >= 40 => {
            let a = |r: std::ops::Range<usize>| -> IpAddr {
                let mut o = [0u8; 16];
                o.copy_from_slice(&ip[r]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            Some(Packet {
                src: a(8..24),
                dst: a(24..40),
                proto: ip[6],
                payload: ip[40..].to_vec(),
            })
        }
        _ => None,
    }
}

impl Packet {
    fn is_echo_request(&self) -> bool {
        matches!(
            (self.proto, self.payload.first()),
            (1, Some(8)) | (58, Some(128))
        )
    }
    fn udp_dport(&self) -> Option<u16> {
        (self.proto == 17 && self.payload.len() >= 4)
            .then(|| u16::from_be_bytes([self.payload[2], self.payload[3]]))
    }
    fn icmpv6_type(&self) -> Option<u8> {
        (self.proto == 58)
            .then(|| self.payload.first().copied())
            .flatten()
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// `ip -j ARGS` in the lab, parsed.
fn ip_json(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut full = vec!["-j"];
    full.extend_from_slice(args);
    let out = env
        .lab
        .command(Path::new("ip"), &full, &[])
        .expect("run ip in the lab");
    assert!(
        out.status.success(),
        "ip {}: {}",
        full.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return serde_json::Value::Array(Vec::new());
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("ip {}: {e}: {text}", full.join(" ")))
}

fn is_link_local(ip: &str) -> bool {
    ip.starts_with("fe80")
}

/// Every address of the lab host (but loopback), as `(interface, address,
/// prefix)`.
fn host_addresses(env: &Env) -> Vec<(String, IpAddr, u64)> {
    let mut out = Vec::new();
    for link in ip_json(env, &["addr", "show"]).as_array().unwrap() {
        let ifname = link["ifname"].as_str().unwrap_or("").to_string();
        for a in link["addr_info"].as_array().into_iter().flatten() {
            let Some(ip) = a["local"].as_str().and_then(|s| s.parse::<IpAddr>().ok()) else {
                continue;
            };
            out.push((ifname.clone(), ip, a["prefixlen"].as_u64().unwrap_or(0)));
        }
    }
    out
}

/// The lab host's addresses and routes, minus what a tap gains by coming
/// up (link-local and multicast on `tap`): what a rogue router
/// advertisement or DHCP offer would change.
fn host_state(env: &Env, tap: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (ifname, ip, plen) in host_addresses(env) {
        if ifname == tap && is_link_local(&ip.to_string()) {
            continue;
        }
        out.insert(format!("address {ip}/{plen} dev {ifname}"));
    }
    for fam in ["-4", "-6"] {
        for r in ip_json(env, &[fam, "route", "show", "table", "all"])
            .as_array()
            .unwrap()
        {
            let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
            let dst = s("dst");
            if s("dev") == tap && (is_link_local(&dst) || dst.starts_with("ff00")) {
                continue;
            }
            out.insert(format!(
                "route {} {dst} via {} dev {} proto {} table {}",
                s("type"),
                s("gateway"),
                s("dev"),
                s("protocol"),
                s("table")
            ));
        }
    }
    out
}

/// Everything the lab needs to run boots against.
struct Rig<'a> {
    env: &'a Env,
    qemu: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
    peer: Sandbox,
    other: Sandbox,
    world: Watch,
    host: Watch,
    peer_watch: Watch,
    other_watch: Watch,
}

/// Boot the guest once on a fresh tap sandbox of `profile` and return
/// every way in which what happened differs from the policy.
fn boot(rig: &Rig<'_>, profile: Profile) -> Vec<String> {
    let env = rig.env;
    let name = env.name(profile.short());
    let mut create = vec![
        "sandbox", "create", &name, "--kind", "tap", "--tenant", "acme",
    ];
    create.extend_from_slice(profile.flags());
    env.ok(&create);
    let vm = show(env, &name);
    assert!(
        env.pal_links().contains(&vm.host_iface),
        "tap {} missing",
        vm.host_iface
    );
    // The gateway is the tap itself in routed mode, its bridge in bridge
    // mode.
    let gw_mac = link_mac(&env.lab.path(), vm.neighbour_dev()).expect("gateway MAC");
    let vm_ll = palisade_link::ipv6_link_local_from_mac(vm.mac);

    // Case 2's targets: every address of the lab host, including the
    // link-local address the tap gets once QEMU brings it up.
    let mut host: Vec<IpAddr> = host_addresses(env)
        .into_iter()
        .map(|(_, ip, _)| ip)
        .filter(|ip| !ip.is_loopback())
        .collect();
    host.push(palisade_link::ipv6_link_local_from_mac(gw_mac).into());
    host.sort();
    host.dedup();
    let host_list = host
        .iter()
        .map(|ip| ip.to_string())
        .collect::<Vec<_>>()
        .join(",");

    let append = [
        "console=ttyS0".to_string(),
        "quiet".into(),
        "panic=-1".into(),
        "pci=off".into(),
        // Under emulation the kernel's quick TSC calibration against the
        // PIT fails whenever the host is busy, and without a TSC frequency
        // the boot can hang; the guest's TSC is the host's, so say what it
        // is. No timer IRQ check either: it also measures emulated time.
        format!("tsc_early_khz={}", host_tsc_khz()),
        "tsc=reliable".into(),
        "no_timer_check".into(),
        format!("palisade.ip4={}", vm.ip4),
        format!("palisade.ip6={}", vm.ip6),
        format!("palisade.mac={}", fmt_mac(vm.mac)),
        format!("palisade.gwmac={}", fmt_mac(gw_mac)),
        format!("palisade.peer4={}", rig.peer.ip4),
        format!("palisade.peer6={}", rig.peer.ip6),
        format!("palisade.other4={}", rig.other.ip4),
        format!("palisade.other6={}", rig.other.ip6),
        format!("palisade.host={host_list}"),
        format!(
            "palisade.hostports={}",
            HOST_PORTS.map(|p| p.to_string()).join(",")
        ),
        format!("palisade.peerport={PEER_PORT}"),
        format!("palisade.timeout={GUEST_TIMEOUT_MS}"),
    ]
    .join(" ");
    assert!(
        append.len() < 2000,
        "kernel command line too long: {append}"
    );
    let args: Vec<String> = [
        "-M",
        "microvm",
        "-accel",
        "tcg",
        "-m",
        "256",
        "-smp",
        "1",
        "-nographic",
        "-no-reboot",
        "-nodefaults",
        "-no-user-config",
        "-serial",
        "stdio",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "-kernel".into(),
        rig.kernel.display().to_string(),
        "-initrd".into(),
        rig.initrd.display().to_string(),
        "-append".into(),
        append,
        "-netdev".into(),
        format!("tap,id=n0,ifname={},script=no,downscript=no", vm.host_iface),
        "-device".into(),
        format!("virtio-net-device,netdev=n0,mac={}", fmt_mac(vm.mac)),
    ])
    .collect();

    let state_before = host_state(env, &vm.host_iface);
    let watches = [&rig.world, &rig.host, &rig.peer_watch, &rig.other_watch];
    let marks: Vec<Marks> = watches.iter().map(|w| w.mark()).collect();
    eprintln!(
        "microvm: booting the guest on {} ({}, {:?})",
        vm.name, vm.host_iface, profile
    );
    let mut neighbours = BTreeSet::new();
    let mut states = BTreeSet::new();
    let mut states_common = state_before.clone();
    let mut snapshot = || {
        neighbours.extend(neighbour_entries(env));
        let now = host_state(env, &vm.host_iface);
        states_common = states_common.intersection(&now).cloned().collect();
        states.extend(now);
    };
    let run = run_qemu(env, &rig.qemu, args, &mut snapshot);
    snapshot();
    // Let listeners and captures take in the last packets.
    std::thread::sleep(Duration::from_millis(500));
    eprintln!(
        "microvm: {:?} guest finished in {:.1}s; its console:\n{}",
        profile,
        run.elapsed.as_secs_f64(),
        run.console
    );

    let mut bad = Vec::new();
    if run.timed_out {
        bad.push(format!(
            "QEMU did not finish within {}s and was killed",
            BOOT_LIMIT.as_secs()
        ));
    }
    if !run.qemu_stderr.trim().is_empty() {
        eprintln!("microvm: QEMU stderr:\n{}", run.qemu_stderr);
    }

    // What the guest saw.
    let (seen, done) = parse_console(&run.console);
    if !done {
        bad.push("the guest never printed PALISADE-DONE".into());
    }
    let expected = expected_cases(profile, &host, &rig.peer, &rig.other);
    let mut known = BTreeSet::new();
    for (case, n, want) in &expected {
        known.insert(n.clone());
        match seen.get(n) {
            None => bad.push(format!("case {case} {n}: the guest printed no result")),
            Some((c, outcome)) => {
                if c != case {
                    bad.push(format!("case {case} {n}: printed as case {c}"));
                }
                if !want.accepts(outcome) {
                    bad.push(format!(
                        "case {case} {n}: guest saw {outcome}, want {want:?}"
                    ));
                }
            }
        }
    }
    for (n, (c, outcome)) in &seen {
        if !known.contains(n) {
            bad.push(format!(
                "case {c} {n} ({outcome}): not expected by this test"
            ));
        }
    }

    // What arrived where.
    let world_arrivals = rig.world.arrivals_since(&marks[0]);
    let world_frames: Vec<Packet> = rig
        .world
        .frames_since(&marks[0])
        .iter()
        .filter_map(|f| ip_packet(&f.data))
        .collect();
    let forbidden: Vec<IpAddr> = World::forbidden();
    for a in &world_arrivals {
        let local = canonical(a.local.ip());
        if forbidden.contains(&local) {
            bad.push(format!(
                "world: {:?} from {} arrived at forbidden {}",
                a.l4, a.peer, a.local
            ));
        }
        let peer = canonical(a.peer.ip());
        if peer != IpAddr::from(World::LAB4) && peer != IpAddr::from(World::LAB6) {
            bad.push(format!(
                "world: {:?} to {} arrived from {} (not masqueraded)",
                a.l4, a.local, a.peer
            ));
        }
    }
    for p in &world_frames {
        if forbidden.contains(&p.dst) {
            bad.push(format!(
                "world: a packet (protocol {}) from {} to forbidden {} arrived",
                p.proto, p.src, p.dst
            ));
        }
    }
    for internet in [IpAddr::from(World::INTERNET4), World::INTERNET6.into()] {
        for (proto, port) in [("tcp", 80u16), ("tcp", 443), ("udp", 53), ("icmp", 0)] {
            let n = match proto {
                "tcp" => world_arrivals
                    .iter()
                    .filter(|a| {
                        a.l4 == L4::Tcp
                            && canonical(a.local.ip()) == internet
                            && a.local.port() == port
                    })
                    .count(),
                "udp" => world_arrivals
                    .iter()
                    .filter(|a| {
                        a.l4 == L4::Udp && a.local.ip() == internet && a.payload == PROBE_PAYLOAD
                    })
                    .count(),
                _ => world_frames
                    .iter()
                    .filter(|p| p.dst == internet && p.is_echo_request())
                    .count(),
            };
            let want = profile.egress(proto, port);
            if want && n == 0 {
                bad.push(format!(
                    "world: allowed {proto} {internet} port {port} never arrived (control)"
                ));
            }
            if !want && n > 0 {
                bad.push(format!(
                    "world: {proto} {internet} port {port} arrived {n} time(s) though not allowed"
                ));
            }
        }
    }
    let spoofs: BTreeSet<String> = world_arrivals
        .iter()
        .filter_map(|a| {
            std::str::from_utf8(&a.payload)
                .ok()?
                .strip_prefix(SPOOF_PREFIX)
                .map(str::to_string)
        })
        .collect();
    let control = profile.egress("udp", 53);
    for n in &spoofs {
        if !(control && (n == "spoof4-control" || n == "spoof6-control")) {
            bad.push(format!("world: forged frame {n} arrived"));
        }
    }
    if control {
        for n in ["spoof4-control", "spoof6-control"] {
            if !spoofs.contains(n) {
                bad.push(format!(
                    "world: {n} (own MAC and address) never arrived: forged frames prove nothing"
                ));
            }
        }
    }

    for a in rig.host.arrivals_since(&marks[1]) {
        bad.push(format!(
            "host: {:?} from {} arrived at {}",
            a.l4, a.peer, a.local
        ));
    }

    // The same-tenant sandbox: reached (controls), but nothing forged.
    let peer_arrivals = rig.peer_watch.arrivals_since(&marks[2]);
    for (l4, src) in [
        (L4::Tcp, IpAddr::V4(vm.ip4)),
        (L4::Tcp, IpAddr::V6(vm.ip6)),
        (L4::Udp, IpAddr::V4(vm.ip4)),
        (L4::Udp, IpAddr::V6(vm.ip6)),
    ] {
        let n = peer_arrivals
            .iter()
            .filter(|a| a.l4 == l4 && a.local.port() == PEER_PORT && canonical(a.peer.ip()) == src)
            .count();
        if n == 0 {
            bad.push(format!(
                "peer: no {l4:?} from {src} arrived (same tenant: must reach)"
            ));
        }
    }
    for a in &peer_arrivals {
        if a.local.port() != PEER_PORT {
            bad.push(format!(
                "peer: {:?} from {} arrived at {}",
                a.l4, a.peer, a.local
            ));
        }
    }
    let peer_frames = rig.peer_watch.frames_since(&marks[2]);
    for src in [IpAddr::V4(vm.ip4), IpAddr::V6(vm.ip6)] {
        let pings = peer_frames
            .iter()
            .filter_map(|f| ip_packet(&f.data))
            .filter(|p| p.src == src && p.is_echo_request())
            .count();
        if pings == 0 {
            bad.push(format!(
                "peer: no echo request from {src} arrived (same tenant: must reach)"
            ));
        }
    }

    // The other tenant's sandbox: nothing at all from the VM.
    for a in rig.other_watch.arrivals_since(&marks[3]) {
        bad.push(format!(
            "other tenant: {:?} from {} arrived at {}",
            a.l4, a.peer, a.local
        ));
    }
    let other_frames = rig.other_watch.frames_since(&marks[3]);

    // Neither sandbox sees the guest's frames (its MAC or the forged one),
    // forged sources, router advertisements or DHCP.
    let forged_sources: Vec<IpAddr> = vec![
        OUTSIDE4.into(),
        OUTSIDE6.into(),
        rig.peer.ip4.into(),
        rig.peer.ip6.into(),
        rig.other.ip4.into(),
        rig.other.ip6.into(),
    ];
    for (label, frames, own) in [
        ("peer", &peer_frames, &rig.peer),
        ("other tenant", &other_frames, &rig.other),
    ] {
        for f in frames.iter() {
            let d = &f.data;
            if contains(d, &vm.mac) || contains(d, &FORGED_MAC) {
                bad.push(format!(
                    "{label}: a frame carrying the guest's or the forged MAC arrived: {}",
                    hex(d)
                ));
                continue;
            }
            let Some(p) = ip_packet(d) else { continue };
            if label == "other tenant"
                && (p.src == IpAddr::V4(vm.ip4)
                    || p.src == IpAddr::V6(vm.ip6)
                    || p.src == IpAddr::V6(vm_ll))
            {
                bad.push(format!(
                    "{label}: a packet (protocol {}) from the guest {} arrived",
                    p.proto, p.src
                ));
            }
            let own_src = p.src == IpAddr::V4(own.ip4) || p.src == IpAddr::V6(own.ip6);
            if forged_sources.contains(&p.src) && !own_src {
                bad.push(format!(
                    "{label}: a packet with forged source {} arrived",
                    p.src
                ));
            }
            if p.icmpv6_type() == Some(134) {
                bad.push(format!(
                    "{label}: a router advertisement from {} arrived",
                    p.src
                ));
            }
            if p.udp_dport().is_some_and(|port| DHCP_PORTS.contains(&port)) {
                bad.push(format!("{label}: DHCP from {} arrived", p.src));
            }
        }
    }

    // The lab host's neighbour table, as it was at any time while the VM
    // ran: the guest's MAC only for the guest's own addresses, on its own
    // tap; the forged MAC nowhere; the other sandboxes' entries untouched.
    let own_ips: [IpAddr; 3] = [vm.ip4.into(), vm.ip6.into(), vm_ll.into()];
    // In bridge mode the bridge holds every sandbox's pinned entries.
    let pinned_on_dev: Vec<IpAddr> = [&vm, &rig.peer, &rig.other]
        .into_iter()
        .filter(|sb| sb.neighbour_dev() == vm.neighbour_dev())
        .flat_map(|sb| {
            [
                IpAddr::from(sb.ip4),
                sb.ip6.into(),
                palisade_link::ipv6_link_local_from_mac(sb.mac).into(),
            ]
        })
        .collect();
    for (dst, dev, lladdr) in &neighbours {
        let entry = format!(
            "{dst} dev {dev} lladdr {}",
            lladdr.map(fmt_mac).unwrap_or_default()
        );
        if *lladdr == Some(FORGED_MAC) {
            bad.push(format!("host neighbour table: forged MAC in {entry}"));
        }
        if *lladdr == Some(vm.mac) && !(dev == vm.neighbour_dev() && own_ips.contains(dst)) {
            bad.push(format!("host neighbour table poisoned: {entry}"));
        }
        if dev == vm.neighbour_dev() && lladdr.is_some() && !pinned_on_dev.contains(dst) {
            bad.push(format!(
                "host neighbour table: entry for a foreign address on the guest's link: {entry}"
            ));
        }
        for sb in [&rig.peer, &rig.other] {
            let theirs = *dst == IpAddr::V4(sb.ip4) || *dst == IpAddr::V6(sb.ip6);
            if theirs && lladdr.is_some_and(|m| m != sb.mac) {
                bad.push(format!(
                    "host neighbour table: {} is no longer at its own MAC: {entry}",
                    sb.name
                ));
            }
        }
    }

    // The lab host's addresses and routes did not change, at any time.
    for added in states.difference(&state_before) {
        bad.push(format!("host gained {added}"));
    }
    for removed in state_before.difference(&states_common) {
        bad.push(format!("host lost {removed}"));
    }

    let destroy = env.palisade(&["sandbox", "destroy", &name]);
    if !destroy.status.success() {
        bad.push(format!(
            "palisade sandbox destroy {name} failed: {}",
            String::from_utf8_lossy(&destroy.stderr).trim()
        ));
    }
    if env.pal_links().contains(&vm.host_iface) {
        bad.push(format!(
            "tap {} still exists after sandbox destroy",
            vm.host_iface
        ));
    }
    let mut bad = counted(bad);
    if !bad.is_empty() {
        bad.insert(
            0,
            format!(
                "{profile:?} ({} on {}), QEMU stderr: {}",
                vm.name,
                vm.host_iface,
                run.qemu_stderr.trim()
            ),
        );
    }
    bad
}

/// Findings in order of first appearance, repeated ones counted.
fn counted(findings: Vec<String>) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut n: BTreeMap<String, usize> = BTreeMap::new();
    for f in findings {
        let c = n.entry(f.clone()).or_default();
        if *c == 0 {
            order.push(f);
        }
        *c += 1;
    }
    order
        .into_iter()
        .map(|f| match n[&f] {
            1 => f,
            k => format!("{f} ({k} times)"),
        })
        .collect()
}

/// The lab host's neighbour entries: `(address, device, MAC)`.
fn neighbour_entries(env: &Env) -> Vec<(IpAddr, String, Option<[u8; 6]>)> {
    ip_json(env, &["neigh", "show"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| {
            Some((
                n["dst"].as_str()?.parse().ok()?,
                n["dev"].as_str().unwrap_or("").to_string(),
                n["lladdr"].as_str().map(parse_mac),
            ))
        })
        .collect()
}

fn hex(d: &[u8]) -> String {
    d.iter()
        .take(64)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join("")
}

/// One guest at a time: two under TCG on a two-core machine would slow
/// each towards its boot limit, and the guest image is built once.
static ONE_GUEST: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn microvm_guest_attacks_are_contained_routed() {
    guest_attacks_are_contained("routed");
}

/// Bridge mode, the default: the tap is an isolated port of a bridge that
/// carries the gateway and holds every sandbox's pinned neighbours.
#[test]
fn microvm_guest_attacks_are_contained_bridge() {
    guest_attacks_are_contained("bridge");
}

fn guest_attacks_are_contained(mode: &str) {
    let test = format!("microvm_guest_attacks_are_contained ({mode} mode)");
    if !palisade_lab::root_or_skip(&test) {
        return;
    }
    let _one_guest = ONE_GUEST.lock().unwrap_or_else(|e| e.into_inner());
    let Some(qemu) = find_in_path("qemu-system-x86_64") else {
        if std::env::var_os("CI").is_some() {
            panic!("qemu-system-x86_64 is not installed, but CI must run the microVM test (.ci/run installs qemu-system-x86)");
        }
        eprintln!("==================================================================");
        eprintln!("SKIPPED: qemu-system-x86_64 is not installed: {test}");
        eprintln!("         (apt-get install qemu-system-x86, or scripts/install-deps)");
        eprintln!("==================================================================");
        return;
    };
    let started = Instant::now();
    let attacks = guest_attacks_binary();
    let (kernel, initrd) = guest_image(&attacks);

    let env = Env::new(&test, &config(mode)).unwrap();
    let lab_ns = env.lab.path();
    let world_ns = {
        let world = env.lab.add_world().expect("world");
        env.ok(&["init"]);
        let peer_name = env.name("peer");
        env.ok(&[
            "sandbox",
            "create",
            &peer_name,
            "--tenant",
            "acme",
            "--internet",
        ]);
        let other_name = env.name("other");
        env.ok(&[
            "sandbox",
            "create",
            &other_name,
            "--tenant",
            "beta",
            "--internet",
        ]);
        let peer = show(&env, &peer_name);
        let other = show(&env, &other_name);
        wait_for_link_locals(&env, &[World::LAB_IFACE]);
        if let Some(bridge) = &peer.bridge {
            wait_for_local_link_local_route(&env, bridge);
        }
        // A namespace sandbox's host end carries no address (routed mode:
        // its gateway is a pinned neighbour inside the sandbox; bridge
        // mode: the bridge carries the gateway).
        let on_host_ends: Vec<_> = host_addresses(&env)
            .into_iter()
            .filter(|(n, _, _)| *n == peer.host_iface || *n == other.host_iface)
            .collect();
        assert!(on_host_ends.is_empty(), "{on_host_ends:?}");

        let any4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let world_udp: Vec<(L4, SocketAddr)> = World::destinations()
            .into_iter()
            .map(|ip| (L4::Udp, SocketAddr::new(ip, 53)))
            .collect();
        let world_watch = Watch {
            label: "world".into(),
            sets: vec![
                ListenerSet::start_grid(&world.path(), &[L4::Tcp], &[any4, any6], &[80, 443])
                    .unwrap(),
                ListenerSet::start(&world.path(), &world_udp).unwrap(),
            ],
            capture: Some(Capture::start(&world.path(), World::WORLD_IFACE).unwrap()),
        };
        let host_watch = Watch {
            label: "host".into(),
            sets: vec![
                ListenerSet::start_grid(&lab_ns, &[L4::Tcp], &[any4, any6], &HOST_PORTS).unwrap(),
                ListenerSet::start_grid(&lab_ns, &[L4::Udp], &[any4, any6], &DHCP_PORTS).unwrap(),
            ],
            capture: None,
        };
        let sandbox_watch = |sb: &Sandbox| {
            let ns = palisade_link::netns_path(&sb.name);
            Watch {
                label: sb.name.clone(),
                sets: vec![
                    ListenerSet::start_grid(&ns, &[L4::Tcp], &[any4, any6], &[PEER_PORT]).unwrap(),
                    ListenerSet::start(
                        &ns,
                        &[
                            (L4::Udp, SocketAddr::new(sb.ip4.into(), PEER_PORT)),
                            (L4::Udp, SocketAddr::new(sb.ip6.into(), PEER_PORT)),
                        ],
                    )
                    .unwrap(),
                    ListenerSet::start_grid(&ns, &[L4::Udp], &[any4, any6], &DHCP_PORTS).unwrap(),
                ],
                capture: Some(Capture::start(&ns, "eth0").unwrap()),
            }
        };
        let rig = Rig {
            env: &env,
            qemu,
            kernel,
            initrd,
            peer_watch: sandbox_watch(&peer),
            other_watch: sandbox_watch(&other),
            peer,
            other,
            world: world_watch,
            host: host_watch,
        };

        let mut bad = Vec::new();
        for profile in [Profile::Closed, Profile::Internet, Profile::Allow443] {
            bad.extend(boot(&rig, profile));
        }
        for w in [&rig.world, &rig.peer_watch, &rig.other_watch] {
            if let Some(c) = &w.capture {
                assert_eq!(c.dropped(), 0, "capture in {} overflowed", w.label);
            }
        }
        assert!(
            bad.is_empty(),
            "the microVM got through palisade ({} finding(s)):\n  {}",
            bad.len(),
            bad.join("\n  ")
        );

        drop(rig);
        env.ok(&["sandbox", "destroy", &peer_name]);
        env.ok(&["sandbox", "destroy", &other_name]);
        env.assert_empty();
        let world_ns = world.path();
        drop(world);
        world_ns
    };
    drop(env);
    for ns in [lab_ns, world_ns] {
        assert!(!ns.exists(), "{} was not removed", ns.display());
    }
    eprintln!(
        "microvm: all cases held in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
