//! The lab host: a namespace that plays the machine palisade runs on.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use palisade_link::{run_in_netns, set_sysctl, Rtnl};

use crate::error::{Context, LabError, Result};
use crate::netns::NetnsGuard;

/// A throwaway "lab host" network namespace.
///
/// Palisade under test is run *inside* it (see [`Lab::command`]), so its
/// bridges, sandboxes and nftables rules land here and vanish with the lab;
/// the real root namespace of the machine is never touched. Forwarding is
/// on, as on a real host that routes for its sandboxes.
///
/// Dropping the lab deletes its namespace, its [`crate::World`] and every
/// namespace registered with [`Lab::adopt_cleanup`].
#[derive(Debug)]
pub struct Lab {
    /// Deleted in `Drop`, newest first, before `ns`.
    extras: Mutex<Vec<Arc<NetnsGuard>>>,
    ns: NetnsGuard,
}

impl Lab {
    /// Create the lab namespace, bring `lo` up and enable IPv4 and IPv6
    /// forwarding in it.
    pub fn new() -> Result<Lab> {
        // The guard exists before any further step, so a failure below
        // deletes the half-built namespace again.
        let ns = NetnsGuard::create_unique('x')?;
        let path = ns.path();
        let mut rtnl =
            Rtnl::open_in(&path).ctx(|| format!("open rtnetlink in lab {}", ns.name()))?;
        bring_up_lo(&mut rtnl, ns.name())?;
        let name = ns.name().to_string();
        run_in_netns(&path, || -> palisade_link::Result<()> {
            set_sysctl("net/ipv4/ip_forward", "1")?;
            set_sysctl("net/ipv6/conf/all/forwarding", "1")
        })
        .and_then(|r| r)
        .ctx(|| format!("enable forwarding in lab {name}"))?;
        Ok(Lab {
            extras: Mutex::new(Vec::new()),
            ns,
        })
    }

    /// The namespace's name (as in `ip netns list`).
    pub fn name(&self) -> &str {
        self.ns.name()
    }

    /// `/run/netns/NAME`.
    pub fn path(&self) -> PathBuf {
        self.ns.path()
    }

    /// Run `f` on a thread inside the lab namespace. Sockets it opens stay
    /// in the lab for their whole life.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        run_in_netns(&self.path(), f).ctx(|| format!("enter lab {}", self.name()))
    }

    /// Run `program` inside the lab namespace and wait for it, capturing
    /// stdout and stderr (stdin is `/dev/null`). `env` is added to the
    /// inherited environment.
    ///
    /// This is how tests run the `palisade` binary "on" the lab host: the
    /// process starts in the lab's network namespace, so everything it
    /// does to the network happens there.
    pub fn command(&self, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        let context = format!(
            "run {} {} in lab {}",
            program.display(),
            args.join(" "),
            self.name()
        );
        self.run(move || cmd.output())?.ctx(|| context)
    }

    /// Run a prepared [`Command`] inside the lab namespace and collect its
    /// output, for callers that need more control (working directory,
    /// cleared environment...).
    pub fn output(&self, mut cmd: Command) -> Result<Output> {
        let program = format!("{:?}", cmd.get_program());
        self.run(move || cmd.output())?
            .ctx(|| format!("run {program} in lab {}", self.name()))
    }

    /// Delete the named namespace `netns_name` when the lab is dropped, if
    /// it exists by then. For namespaces that palisade itself creates for
    /// a sandbox during a test: they must not outlive the test even if
    /// palisade's own cleanup is what is being tested and fails.
    pub fn adopt_cleanup(&self, netns_name: &str) {
        self.register(Arc::new(NetnsGuard::adopt(netns_name)));
    }

    /// Keep `guard` alive until the lab is dropped, then delete it.
    pub(crate) fn register(&self, guard: Arc<NetnsGuard>) {
        self.extras
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(guard);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let extras = std::mem::take(self.extras.get_mut().unwrap_or_else(|p| p.into_inner()));
        for guard in extras.iter().rev() {
            if let Err(e) = guard.delete() {
                eprintln!("palisade-lab: LEAK: {e}");
            }
        }
        // `self.ns` is dropped (and deleted) right after this.
    }
}

/// Set `lo` up in the namespace `rtnl` talks to: without it, even
/// traffic to the namespace's own addresses fails.
pub(crate) fn bring_up_lo(rtnl: &mut Rtnl, ns_name: &str) -> Result<()> {
    let lo = rtnl
        .link_index("lo")
        .ctx(|| format!("look up lo in {ns_name}"))?
        .ok_or_else(|| LabError::Invalid(format!("netns {ns_name} has no lo")))?;
    rtnl.set_up(lo).ctx(|| format!("set lo up in {ns_name}"))
}
