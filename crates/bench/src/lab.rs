//! The lab a benchmark child runs in: a new network namespace (the "lab
//! host", linked to nothing) and a new mount namespace, entered by the whole
//! process, so that every namespace, tmpfs and rule it makes dies with it.

use anyhow::{bail, Context, Result};
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// Scratch directory inside the lab's private /run.
pub const SCRATCH: &str = "/run/palisade-bench";

/// Moves this process into a fresh lab. Must run before any thread exists:
/// a new mount namespace cannot be entered by one thread of many.
pub fn enter() -> Result<()> {
    if std::fs::read_dir("/proc/self/task")?.count() != 1 {
        bail!("the lab must be entered before any thread is started");
    }
    unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
        .context("unshare(CLONE_NEWNET | CLONE_NEWNS): the benchmark needs root")?;
    // Nothing mounted from here on propagates back to the machine.
    mount::<str, str, str, str>(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)
        .context("make / private in the lab's mount namespace")?;
    // Private /run (named namespaces, xtables lock, state) and CNI's IPAM
    // directory: nothing the peers write there outlives the lab.
    for dir in ["/run", "/var/lib/cni"] {
        std::fs::create_dir_all(dir).with_context(|| format!("create {dir}"))?;
        mount::<str, str, str, str>(Some("tmpfs"), dir, Some("tmpfs"), MsFlags::empty(), None)
            .with_context(|| format!("mount a tmpfs on {dir} in the lab"))?;
    }
    std::fs::create_dir_all(SCRATCH)?;
    let mut rtnl = palisade_link::Rtnl::open().context("rtnetlink in the lab")?;
    if let Some(lo) = rtnl.link_index("lo")? {
        rtnl.set_up(lo)?;
    }
    for key in ["net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"] {
        palisade_link::set_sysctl(key, "1")?;
    }
    Ok(())
}

/// An interface `name` in the lab, up, with an address, standing in for
/// the uplink: one end of a veth pair whose other end stays in the lab
/// (the `dummy` module is not in every kernel).
pub fn add_uplink(name: &str) -> Result<()> {
    let mut rtnl = palisade_link::Rtnl::open()?;
    let index = rtnl.create_veth(&palisade_link::VethSpec {
        host_name: name.into(),
        host_mac: None,
        peer_name: format!("{name}-far"),
        peer_mac: None,
        peer_netns: None,
        big_packets: false,
    })?;
    rtnl.add_address(index, "198.51.100.1".parse()?, 24)?;
    rtnl.set_up(index)?;
    if let Some(far) = rtnl.link_index(&format!("{name}-far"))? {
        rtnl.set_up(far)?;
    }
    Ok(())
}
