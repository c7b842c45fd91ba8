//! Data plane: one iperf3 TCP stream between two namespaces of the lab,
//! timed with and without a firewall in the same run.

use crate::series::median;
use anyhow::{bail, Context, Result};
use palisade_link::{RouteSpec, Rtnl, VethSpec};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PORT: &str = "5201";

/// Throughputs (Gbit/s) per run: with the firewall loaded, without any,
/// and (palisade only) with conntrack alone.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ratio {
    pub with: Vec<f64>,
    pub without: Vec<f64>,
    /// One `ct state established,related accept` rule and nothing else:
    /// what any stateful firewall pays before its own rules.
    #[serde(default)]
    pub conntrack: Vec<f64>,
}

impl Ratio {
    /// Medians (with, without) and their ratio.
    pub fn medians(&self) -> (f64, f64, f64) {
        let with = median(&mut self.with.clone());
        let without = median(&mut self.without.clone());
        (with, without, with / without)
    }

    /// The median over rounds of each round's ratio with ÷ without: the
    /// two runs of a round are minutes apart at most, so drift of the
    /// shared machine over the whole series cancels out.
    pub fn paired_median(&self) -> f64 {
        paired(&self.with, &self.without)
    }

    /// [`Ratio::paired_median`] for conntrack alone, when measured.
    pub fn conntrack_paired_median(&self) -> Option<f64> {
        (!self.conntrack.is_empty()).then(|| paired(&self.conntrack, &self.without))
    }

    /// Median with conntrack alone and its ratio to the median without a
    /// firewall, when that was measured.
    pub fn conntrack_medians(&self) -> Option<(f64, f64)> {
        if self.conntrack.is_empty() {
            return None;
        }
        let alone = median(&mut self.conntrack.clone());
        Some((alone, alone / median(&mut self.without.clone())))
    }

    fn runs_of(&mut self, state: Firewall) -> &mut Vec<f64> {
        match state {
            Firewall::Loaded => &mut self.with,
            Firewall::Off => &mut self.without,
            Firewall::ConntrackOnly => &mut self.conntrack,
        }
    }
}

/// Median of `a[i] / b[i]` over the rounds both have.
fn paired(a: &[f64], b: &[f64]) -> f64 {
    let mut q: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    median(&mut q)
}

/// What sits in the lab host's forwarding path during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firewall {
    Loaded,
    Off,
    ConntrackOnly,
}

/// Pause after the firewall is loaded or removed, before a timed run: the
/// kernel frees the old tables, or rehashes the new sets, in deferred work
/// that would otherwise share this 2-core machine with iperf3 and slow
/// whichever side always follows the same change.
const SETTLE: Duration = Duration::from_secs(1);

/// The order of the runs: each round runs every state once, odd rounds in
/// reverse (A B C, C B A, A B C, ...), so that no state is always measured
/// first or always right after the same change, and consecutive rounds
/// share their boundary state (one change fewer).
fn schedule(states: &[Firewall], rounds: usize) -> Vec<Firewall> {
    (0..rounds)
        .flat_map(|round| {
            let mut order = states.to_vec();
            if round % 2 == 1 {
                order.reverse();
            }
            order
        })
        .collect()
}

/// `rounds` rounds of one run in each of `states` (the first must be
/// [`Firewall::Loaded`], the state the lab is in on entry), ordered by
/// [`schedule`]; every change (`set_state`) is followed by [`SETTLE`].
/// Leaves the firewall loaded.
pub fn alternate(
    pair: &Pair,
    rounds: usize,
    seconds: u32,
    label: &str,
    states: &[Firewall],
    mut set_state: impl FnMut(Firewall) -> Result<()>,
) -> Result<Ratio> {
    let mut ratio = Ratio::default();
    let mut current = Firewall::Loaded;
    for (i, state) in schedule(states, rounds).into_iter().enumerate() {
        if state != current {
            set_state(state)?;
            current = state;
            std::thread::sleep(SETTLE);
        }
        let gbits = pair.gbits(seconds)?;
        ratio.runs_of(state).push(gbits);
        if (i + 1) % states.len() == 0 {
            let last = |v: &Vec<f64>| v.last().copied().unwrap_or_default();
            let alone = match ratio.conntrack.last() {
                Some(g) => format!(", {g:.2} with conntrack alone"),
                None => String::new(),
            };
            eprintln!(
                "[{label}] data plane round {}: {:.2} Gbit/s with the firewall, {:.2} without{alone}",
                (i + 1) / states.len(),
                last(&ratio.with),
                last(&ratio.without),
            );
        }
    }
    if current != Firewall::Loaded {
        set_state(Firewall::Loaded)?;
    }
    Ok(ratio)
}

/// An iperf3 server in one namespace and the client side in another.
pub struct Pair {
    server: Child,
    client_ns: PathBuf,
    server_ip: String,
}

impl Pair {
    pub fn start(client_ns: PathBuf, server_ns: PathBuf, server_ip: String) -> Result<Pair> {
        let server = Command::new("nsenter")
            .arg(format!("--net={}", server_ns.display()))
            .args(["iperf3", "-s", "-p", PORT])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start iperf3 -s (is iperf3 installed?)")?;
        let pair = Pair {
            server,
            client_ns,
            server_ip,
        };
        // Wait until the server listens, read from its namespace's socket
        // table: a probe connection would be a client to iperf3, which
        // can still be busy with it when the first real client comes (and
        // then resets that one).
        let addr: SocketAddr = format!("{}:{PORT}", pair.server_ip).parse()?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let up = palisade_link::run_in_netns(&server_ns, listening)??;
            if up {
                break;
            }
            if Instant::now() > deadline {
                bail!("iperf3 server on {addr} did not start listening");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(pair)
    }

    /// One run of `seconds`; the receiver's throughput in Gbit/s. A run
    /// that fails is tried once more (and said so): on a shared machine a
    /// lone failure is not worth losing every other figure of the run.
    pub fn gbits(&self, seconds: u32) -> Result<f64> {
        self.run_once(seconds).or_else(|first| {
            eprintln!("data plane: {first:#}; trying that run once more");
            std::thread::sleep(Duration::from_millis(500));
            self.run_once(seconds)
        })
    }

    fn run_once(&self, seconds: u32) -> Result<f64> {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.client_ns.display()))
            .args(["iperf3", "-c", &self.server_ip, "-p", PORT, "-J", "-t"])
            .arg(seconds.to_string())
            .output()
            .context("run iperf3 -c")?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "iperf3 -c printed no JSON: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            bail!("iperf3 -c {}: {e}", self.server_ip);
        }
        v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .map(|b| b / 1e9)
            .context("iperf3 JSON without end.sum_received.bits_per_second")
    }
}

/// Whether something listens on TCP port [`PORT`] in the calling thread's
/// network namespace (`/proc/thread-self/net/tcp` and `tcp6`, state 0A).
fn listening() -> Result<bool> {
    let port = format!(":{:04X}", PORT.parse::<u16>()?);
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/thread-self/net/{table}"))?;
        let found = text.lines().skip(1).any(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1).unwrap_or_default();
            let state = fields.nth(1).unwrap_or_default();
            local.ends_with(&port) && state == "0A"
        });
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// Two plain namespaces routed through the lab host with a veth each and
/// no firewall of palisade's: the pair the iptables peer's rules sit in
/// front of. Returns (client netns, server netns, server address).
pub fn plain_pair() -> Result<(PathBuf, PathBuf, String)> {
    let mut host = Rtnl::open()?;
    let mut paths = Vec::new();
    for (n, (name, host_if)) in [("pa", "vpa"), ("pb", "vpb")].into_iter().enumerate() {
        palisade_link::create_named_netns(name)?;
        let path = palisade_link::netns_path(name);
        let ns = palisade_link::open_netns(&path)?;
        let index = host.create_veth(&VethSpec {
            host_name: host_if.into(),
            host_mac: None,
            peer_name: "eth0".into(),
            peer_mac: None,
            peer_netns: Some(ns.as_fd()),
            big_packets: false,
        })?;
        let gw = Ipv4Addr::new(10, 77, n as u8, 1);
        let me = Ipv4Addr::new(10, 77, n as u8, 2);
        host.add_address(index, IpAddr::V4(gw), 24)?;
        host.set_up(index)?;
        let mut inner = Rtnl::open_in(&path)?;
        if let Some(lo) = inner.link_index("lo")? {
            inner.set_up(lo)?;
        }
        let eth = inner
            .link_index("eth0")?
            .context("eth0 in the pair namespace")?;
        inner.add_address(eth, IpAddr::V4(me), 24)?;
        inner.set_up(eth)?;
        inner.add_route(&RouteSpec {
            dest: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix_len: 0,
            oif: eth,
            gateway: Some(IpAddr::V4(gw)),
            onlink: false,
            source: None,
        })?;
        paths.push(path);
    }
    let server = paths.pop().expect("two");
    let client = paths.pop().expect("two");
    Ok((client, server, "10.77.1.2".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Firewall::*;

    #[test]
    fn rounds_run_every_state_once_and_alternate_direction() {
        assert_eq!(
            schedule(&[Loaded, Off, ConntrackOnly], 3),
            [
                Loaded,
                Off,
                ConntrackOnly,
                ConntrackOnly,
                Off,
                Loaded,
                Loaded,
                Off,
                ConntrackOnly
            ]
        );
        assert_eq!(schedule(&[Loaded, Off], 2), [Loaded, Off, Off, Loaded]);
    }

    #[test]
    fn the_conntrack_ratio_is_against_the_runs_without_a_firewall() {
        let r = Ratio {
            with: vec![9.0, 8.0, 10.0],
            without: vec![10.0, 12.0, 11.0],
            conntrack: vec![],
        };
        assert_eq!(r.conntrack_medians(), None);
        let r = Ratio {
            conntrack: vec![10.0, 9.9, 10.1],
            ..r
        };
        let (alone, q) = r.conntrack_medians().expect("measured");
        assert_eq!(alone, 10.0);
        assert!((q - 10.0 / 11.0).abs() < 1e-12);
    }

    #[test]
    fn paired_ratios_are_taken_round_by_round() {
        // Drift: every run of round 2 is twice as fast. The ratio of the
        // medians mixes rounds; the per-round ratios do not.
        let r = Ratio {
            with: vec![9.0, 18.0, 9.5],
            without: vec![10.0, 20.0, 10.0],
            conntrack: vec![10.0, 20.0, 9.0],
        };
        assert!((r.paired_median() - 0.9).abs() < 1e-12);
        assert!((r.conntrack_paired_median().unwrap() - 1.0).abs() < 1e-12);
        assert!((r.medians().2 - 0.95).abs() < 1e-12);
    }
}
