//! Harness for the integration tests: a throwaway lab host namespace running
//! the real `palisade` binary with its own config and state directory.

#![allow(dead_code)]

use palisade_lab::Lab;
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

    /// Names of the retired sandbox interfaces (down, in the graveyard
    /// group) waiting to be reaped.
    #[allow(dead_code)]
    pub fn retired_links(&self) -> Vec<String> {
        self.lab
            .run(|| palisade_link::Rtnl::open().and_then(|mut r| r.list_links()))
            .unwrap()
            .unwrap()
            .into_iter()
            .filter(|l| l.group == palisade::engine::RETIRED_LINK_GROUP)
            .map(|l| l.name)
            .collect()
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
        // Destroyed sandboxes' veths may wait retired (down, in the
        // graveyard group, policy gone) for a batch deletion; nothing else.
        let live: Vec<_> = self
            .lab
            .run(|| palisade_link::Rtnl::open().and_then(|mut r| r.list_links()))
            .unwrap()
            .unwrap()
            .into_iter()
            .filter(|l| l.name.starts_with("pal-"))
            .filter(|l| l.up || l.group != palisade::engine::RETIRED_LINK_GROUP)
            .map(|l| l.name)
            .collect();
        assert_eq!(live, Vec::<String>::new(), "interfaces remain, not retired");
        self.ok(&["reap"]);
        assert_eq!(
            self.pal_links(),
            Vec::<String>::new(),
            "interfaces remain after reap"
        );
        let text = self.table_text();
        for set in ["tenant4", "addrs4", "macs"] {
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
