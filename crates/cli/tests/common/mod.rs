//! Harness for the integration tests: a throwaway lab host namespace running
//! the real `palisade` binary with its own config and state directory.

#![allow(dead_code)]

use palisade_lab::{Lab, World};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A recording TCP listener on `addr:port` inside the namespace at `netns`.
pub fn tcp_listener(
    netns: &std::path::Path,
    addr: impl Into<std::net::IpAddr>,
    port: u16,
) -> palisade_lab::traffic::Listener {
    let at = std::net::SocketAddr::new(addr.into(), port);
    palisade_lab::traffic::Listener::start(netns, palisade_lab::traffic::L4::Tcp, at).unwrap()
}

/// How long [`hold`] and [`send_and_read`] wait for a connection or a read.
const HOLD_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(700);

/// A connection from inside sandbox `name` to the internet host's `port`,
/// and the host's end of it, after one message each way.
pub fn hold(name: &str, listener: &TcpListener, port: u16) -> (TcpStream, TcpStream) {
    let mut inside = palisade_link::run_in_netns(&palisade_link::netns_path(name), move || {
        TcpStream::connect_timeout(
            &SocketAddr::new(World::INTERNET4.into(), port),
            HOLD_TIMEOUT,
        )
        .unwrap()
    })
    .unwrap();
    let (mut outside, _) = listener.accept().unwrap();
    for s in [&inside, &outside] {
        s.set_read_timeout(Some(HOLD_TIMEOUT)).unwrap();
    }
    assert_eq!(
        send_and_read(&mut inside, &mut outside, b"out"),
        Some(b"out".to_vec())
    );
    assert_eq!(
        send_and_read(&mut outside, &mut inside, b"in"),
        Some(b"in".to_vec())
    );
    (inside, outside)
}

/// Writes `msg` on `from` and returns what `to` reads within the timeout
/// (`None`: nothing arrived).
pub fn send_and_read(from: &mut TcpStream, to: &mut TcpStream, msg: &[u8]) -> Option<Vec<u8>> {
    let _ = from.write_all(msg);
    let mut buf = [0u8; 64];
    match to.read(&mut buf) {
        Ok(n) if n > 0 => Some(buf[..n].to_vec()),
        _ => None,
    }
}

pub struct Env {
    pub lab: Lab,
    pub dir: PathBuf,
    prefix: String,
}

impl Env {
    /// A fresh lab with this config; `None` (after a loud SKIPPED) without root.
    pub fn new(test: &str, config: &str) -> Option<Env> {
        if !palisade_lab::root_or_skip(test) {
            return None;
        }
        let lab = Lab::new().expect("create lab namespace");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("it{}x{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("palisade-test-{prefix}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("palisade.toml"), config).unwrap();
        Some(Env { lab, dir, prefix })
    }

    /// A sandbox name unique to this test run; its namespace is deleted with
    /// the lab even if the test fails.
    pub fn name(&self, short: &str) -> String {
        let name = format!("{}-{short}", self.prefix);
        self.lab.adopt_cleanup(&name);
        name
    }

    pub fn palisade_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let config = self.dir.join("palisade.toml");
        let state = self.dir.join("state");
        let mut full = vec![
            "--config",
            config.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ];
        full.extend_from_slice(args);
        self.lab
            .command(
                std::path::Path::new(env!("CARGO_BIN_EXE_palisade")),
                &full,
                env,
            )
            .expect("run palisade in the lab")
    }

    pub fn palisade(&self, args: &[&str]) -> Output {
        self.palisade_env(args, &[])
    }

    /// Runs palisade and returns stdout; panics with its output on failure.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.palisade(args);
        assert!(
            out.status.success(),
            "palisade {} failed:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("palisade printed JSON")
    }

    /// Names of palisade's interfaces (`pal-*`) on the lab host.
    pub fn pal_links(&self) -> Vec<String> {
        self.lab
            .run(|| palisade_link::Rtnl::open().and_then(|mut r| r.list_links()))
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .filter(|n| n.starts_with("pal-"))
            .collect()
    }

    /// Names of the retired sandbox interfaces waiting to be reaped: the
    /// `pal-*` links of no sandbox in the store (routed mode leaves them up
    /// until the reap, bridge mode sets them down into the graveyard group).
    #[allow(dead_code)]
    pub fn retired_links(&self) -> Vec<String> {
        let live = self.live_host_ends();
        self.pal_links()
            .into_iter()
            .filter(|n| !live.contains(n))
            .collect()
    }

    /// How many routes (any table) go through interface `name` on the lab
    /// host; 0 if it is gone.
    #[allow(dead_code)]
    pub fn route_count_via(&self, name: &str, v6: bool) -> usize {
        let family = if v6 { "-6" } else { "-4" };
        let out = self
            .lab
            .command(
                std::path::Path::new("ip"),
                &[family, "route", "show", "table", "all", "dev", name],
                &[],
            )
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && stderr.contains("Cannot find device") {
            return 0;
        }
        assert!(out.status.success(), "ip route show dev {name}: {stderr}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    }

    /// The host ends of the sandboxes in the store.
    fn live_host_ends(&self) -> Vec<String> {
        self.json(&["sandbox", "list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["network"]["host_interface"].as_str().map(String::from))
            .collect()
    }

    /// Runs `program args` (`ip`, `nft`, `bridge`...) in the lab host, which
    /// must succeed; its standard output.
    pub fn lab_ok(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .lab
            .command(std::path::Path::new(program), args, &[])
            .unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Every element in palisade's inet and arp tables, as nft prints them.
    pub fn table_text(&self) -> String {
        let out = self
            .lab
            .command(std::path::Path::new("nft"), &["list", "ruleset"], &[])
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The sandbox's addresses from `sandbox show --json`.
    pub fn addresses(&self, name: &str) -> (String, String) {
        let v = self.json(&["sandbox", "show", name, "--json"]);
        let strip = |s: &str| s.split('/').next().unwrap().to_string();
        (
            strip(v["network"]["ipv4"].as_str().unwrap()),
            strip(v["network"]["ipv6"].as_str().unwrap()),
        )
    }

    /// Asserts that nothing of any sandbox remains: no record, no `pal-*`
    /// interface, no per-sandbox element, and verify agrees.
    pub fn assert_empty(&self) {
        let list = self.json(&["sandbox", "list", "--json"]);
        assert_eq!(list.as_array().unwrap().len(), 0, "records remain: {list}");
        // Destroyed sandboxes' veths may wait retired (policy and routes
        // gone; down in the graveyard group, or in routed mode still up)
        // for a batch deletion, as many as the store counts; nothing else.
        let waiting = self.json(&["status", "--json"])["retired_interfaces"]
            .as_u64()
            .unwrap();
        let left = self.pal_links();
        assert!(
            left.len() as u64 <= waiting,
            "interfaces remain, more than the {waiting} retired: {left:?}"
        );
        for name in &left {
            for v6 in [false, true] {
                let routes = self.route_count_via(name, v6);
                assert_eq!(routes, 0, "a retired {name} keeps routes");
            }
        }
        self.ok(&["reap"]);
        assert_eq!(
            self.pal_links(),
            Vec::<String>::new(),
            "interfaces remain after reap"
        );
        let text = self.table_text();
        for set in ["tenant4", "sources4", "macs"] {
            let block = text
                .split(&format!("set {set} {{"))
                .nth(1)
                .or_else(|| text.split(&format!("map {set} {{")).nth(1));
            let block = block.unwrap_or_else(|| panic!("set {set} missing:\n{text}"));
            let body = block.split('}').next().unwrap();
            assert!(
                !body.contains("elements"),
                "set {set} still has elements: {body}"
            );
        }
        self.ok(&["verify"]);
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
