//! Sending forged frames from inside a namespace.
//!
//! Attack tests must show that a sandbox *cannot* get forged packets past
//! palisade, which first needs a way to forge them that certainly works
//! when nothing filters. `AF_PACKET` sockets are that way for both IPv4
//! and IPv6: the frame is handed to the interface as built, so neither the
//! routing table nor the kernel's own source-address selection interferes.

use std::net::SocketAddr;
use std::path::Path;

use palisade_link::{run_in_netns, Rtnl};

use super::packet::build_udp_frame;
use crate::error::{Context, LabError, Result};
use crate::sys;

/// Send `frame` (a complete Ethernet frame, without FCS) out of `iface` in
/// the namespace at `netns` through an `AF_PACKET` socket (needs root).
pub fn send_frame(netns: &Path, iface: &str, frame: &[u8]) -> Result<()> {
    let iface_owned = iface.to_string();
    let frame = frame.to_vec();
    run_in_netns(netns, move || -> std::io::Result<()> {
        let index = sys::if_index(&iface_owned)?;
        sys::packet_send(index, &frame)
    })
    .ctx(|| format!("enter {} to send a frame", netns.display()))?
    .ctx(|| format!("send raw frame on {iface} in {}", netns.display()))
}

/// The MAC address of `iface` in the namespace at `netns`: the source MAC
/// for forged frames, or the destination MAC when forging towards a
/// gateway.
pub fn link_mac(netns: &Path, iface: &str) -> Result<[u8; 6]> {
    let mut rtnl = Rtnl::open_in(netns).ctx(|| format!("open rtnetlink in {}", netns.display()))?;
    rtnl.list_links()
        .ctx(|| format!("list links in {}", netns.display()))?
        .into_iter()
        .find(|l| l.name == iface)
        .and_then(|l| l.mac)
        .ok_or_else(|| {
            LabError::Invalid(format!(
                "no interface {iface} with a MAC in {}",
                netns.display()
            ))
        })
}

/// Send one UDP datagram with a forged source `src` to `dst`, out of
/// `iface` in the namespace at `netns`, as an Ethernet frame addressed to
/// `dst_mac` (normally the gateway's MAC; see [`link_mac`]). The source
/// MAC is `iface`'s own, so only the IP source is forged.
pub fn send_udp_spoofed(
    netns: &Path,
    iface: &str,
    dst_mac: [u8; 6],
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
) -> Result<()> {
    let src_mac = link_mac(netns, iface)?;
    let frame = build_udp_frame(
        src_mac,
        dst_mac,
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port(),
        payload,
    )?;
    send_frame(netns, iface, &frame)
}
