//! Link-level kernel I/O for palisade, all in-process.
//!
//! Creating a sandbox's network must take a few milliseconds, so nothing
//! here spawns `ip`: named network namespaces are made with
//! `unshare`/bind mounts ([`create_named_netns`]), links, addresses and
//! routes over a synchronous rtnetlink socket ([`Rtnl`]), taps through
//! `/dev/net/tun` ([`create_tap`]) and sysctls through `/proc/sys`
//! ([`set_sysctl`]).
//!
//! Namespaces are per thread. Work that must happen *inside* a namespace
//! runs on a helper thread via [`run_in_netns`]; an [`Rtnl`] opened with
//! [`Rtnl::open_in`] stays bound to its namespace whichever thread uses it.

mod addr;
mod error;
mod ifnames;
mod netns;
mod rtnl;
mod sysctl;
mod tap;

pub use addr::ipv6_link_local_from_mac;
pub use error::{LinkError, Result};
pub use ifnames::interface_names;
pub use netns::{
    create_named_netns, delete_named_netns, delete_named_netns_releasing_elsewhere,
    named_netns_exists, netns_path, open_netns, run_in_netns, NetnsCreated, NETNS_RUN_DIR,
};
pub use rtnl::{
    BridgeEntry, BridgePort, LinkSummary, RouteSpec, Rtnl, VethSpec, BIG_PACKET_SIZE,
    DEFAULT_PACKET_SIZE,
};
pub use sysctl::{get_sysctl, set_sysctl, sysctl_path};
pub use tap::{attach_tap, create_tap};
