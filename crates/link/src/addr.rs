//! Address helpers.

use std::net::Ipv6Addr;

/// The EUI-64 link-local address (`fe80::/64`) the kernel assigns by default
/// to an Ethernet interface with hardware address `mac`.
///
/// Knowing it in advance lets the host side use a sandbox's link-local
/// address (e.g. as an IPv6 gateway or neighbour) without asking the kernel.
pub fn ipv6_link_local_from_mac(mac: [u8; 6]) -> Ipv6Addr {
    let b = [
        mac[0] ^ 0x02, // flip the universal/local bit
        mac[1],
        mac[2],
        0xff,
        0xfe,
        mac[3],
        mac[4],
        mac[5],
    ];
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([b[0], b[1]]),
        u16::from_be_bytes([b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eui64() {
        assert_eq!(
            ipv6_link_local_from_mac([0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]),
            "fe80::5eff:fe10:2030".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            ipv6_link_local_from_mac([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap()
        );
    }
}
