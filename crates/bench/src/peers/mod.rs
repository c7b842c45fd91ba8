//! The peers, each driven the way its runtime drives it, on a namespace
//! that already exists (made untimed in `prepare`).

pub mod cni;
pub mod iptables;
pub mod netavark;

use std::net::Ipv4Addr;

/// Address number `i` of a /16 pool starting at `base` (host part i + 2;
/// .1 is the gateway).
pub fn pool_addr(base: [u8; 2], i: usize) -> Ipv4Addr {
    let host = i as u32 + 2;
    Ipv4Addr::new(base[0], base[1], (host >> 8) as u8, (host & 0xff) as u8)
}

/// Host port of attachment `i` for the peers' one port mapping each.
pub fn host_port(i: usize) -> u16 {
    20000 + (i % 40000) as u16
}

/// Creates the named namespace the runtime would hand over.
pub fn make_netns(name: &str) -> anyhow::Result<()> {
    palisade_link::create_named_netns(name)?;
    Ok(())
}

pub fn remove_netns(name: &str) -> anyhow::Result<()> {
    palisade_link::delete_named_netns(name)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_addresses_skip_network_and_gateway() {
        assert_eq!(pool_addr([10, 88], 0), Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(pool_addr([10, 88], 254), Ipv4Addr::new(10, 88, 1, 0));
        assert_eq!(pool_addr([10, 88], 9999), Ipv4Addr::new(10, 88, 39, 17));
    }
}
