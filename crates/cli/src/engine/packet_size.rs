//! BIG TCP (`network.big_tcp`): veths are made passing IPv4 packets of up
//! to 512 KiB in one piece, and a bridge passes them once it has a port.
//! A bridge's ceiling is its ports' lowest, and a tap's is 64 KiB: a veth
//! whose big packets met a 64 KiB bridge would have them cut into
//! MTU-sized ones there (a 24 MiB stream arrived as 13,000 frames instead
//! of 400), so a sandbox's end follows its bridge.

use super::plumbing::host_err;
use super::{Engine, EngineError};
use palisade_core::bridge_shard::BridgeShard;
use palisade_core::model::SandboxKind;
use palisade_core::names::SANDBOX_IFACE;
use palisade_link::{LinkError, Rtnl, DEFAULT_PACKET_SIZE};

impl Engine {
    /// Lets bridge `index` pass big packets, now that the sandbox's veth
    /// is a port of it; returns whether it does. One link lookup when it
    /// already does (every attach after its bridge's first).
    pub(super) fn let_bridge_pass_big_packets(
        &mut self,
        index: u32,
        shard: &BridgeShard,
    ) -> Result<bool, EngineError> {
        self.rtnl.allow_big_packets(index).map_err(host_err(format!(
            "let bridge {} pass big packets",
            shard.iface
        )))
    }

    /// Whether bridge `index` passes big packets (before a tap joins it).
    pub(super) fn bridge_passes_big_packets(
        &mut self,
        index: u32,
        shard: &BridgeShard,
    ) -> Result<bool, EngineError> {
        self.rtnl
            .passes_big_packets(index)
            .map_err(host_err(format!(
                "read the packet size of bridge {}",
                shard.iface
            )))
    }

    /// A tap has just made bridge `shard` pass 64 KiB: the ends inside the
    /// veth sandboxes on it go back to 64 KiB too. Once per bridge (its
    /// first tap: later veths follow it as they come); a read of the store
    /// and one request per sandbox on the bridge. Best effort: a sandbox
    /// whose end cannot be lowered (its namespace is going away, say) is
    /// slower, not less isolated. Returns how many were lowered.
    pub(super) fn lower_veths_on_bridge(
        &mut self,
        shard: &BridgeShard,
    ) -> Result<usize, EngineError> {
        let mut lowered = 0;
        for record in self.store.sandboxes()? {
            if record.kind != SandboxKind::Netns {
                continue;
            }
            let sb = self.model(&record);
            let on_bridge = sb.attachment.as_ref().is_some_and(|a| {
                self.config
                    .network
                    .bridge_shard(a.ipv4)
                    .is_some_and(|s| s.iface == shard.iface)
            });
            if on_bridge && lower_sandbox_end(&palisade_link::netns_path(sb.name.as_str())).is_ok()
            {
                lowered += 1;
            }
        }
        Ok(lowered)
    }
}

/// Sets `eth0` in the namespace at `netns` back to the kernel's default
/// packet size, as the sender of a sandbox's packets it is what decides
/// their size.
pub(super) fn lower_sandbox_end(netns: &std::path::Path) -> Result<(), LinkError> {
    let mut rtnl = Rtnl::open_in(netns)?;
    if let Some(eth) = rtnl.link_index(SANDBOX_IFACE)? {
        rtnl.set_ipv4_packet_size(eth, DEFAULT_PACKET_SIZE)?;
    }
    Ok(())
}
