//! Hand-built packets for attack tests.
//!
//! Spoofing tests need packets the kernel would never emit on its own
//! (forged source addresses, unsolicited ARP replies and neighbour
//! advertisements), so they are assembled byte by byte here, with correct
//! checksums: a packet with a bad checksum is dropped by the receiver and
//! would make a broken filter look like a working one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{LabError, Result};

/// EtherType of IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;

const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;
/// Shortest Ethernet frame without the FCS; shorter ones are padded.
const ETH_MIN_FRAME: usize = 60;

/// The Internet checksum (RFC 1071) of `data`: one's complement of the
/// one's-complement sum of its 16-bit big-endian words.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Checksum of an upper-layer segment with the IPv4/IPv6 pseudo-header.
fn l4_checksum(src: IpAddr, dst: IpAddr, proto: u8, segment: &[u8]) -> u16 {
    let mut buf = Vec::with_capacity(40 + segment.len());
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            buf.extend_from_slice(&s.octets());
            buf.extend_from_slice(&d.octets());
            buf.extend_from_slice(&[0, proto]);
            buf.extend_from_slice(&(segment.len() as u16).to_be_bytes());
        }
        _ => {
            buf.extend_from_slice(&to_v6(src).octets());
            buf.extend_from_slice(&to_v6(dst).octets());
            buf.extend_from_slice(&(segment.len() as u32).to_be_bytes());
            buf.extend_from_slice(&[0, 0, 0, proto]);
        }
    }
    buf.extend_from_slice(segment);
    internet_checksum(&buf)
}

fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// An IPv4 header for a payload of `payload_len` bytes, checksum included.
fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload_len: usize) -> Vec<u8> {
    let total = (20 + payload_len) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0]); // id 0, don't fragment
    h.extend_from_slice(&[64, proto, 0, 0]); // ttl, protocol, checksum
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let sum = internet_checksum(&h);
    h[10..12].copy_from_slice(&sum.to_be_bytes());
    h
}

/// An IPv6 header.
fn ipv6_header(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    hop_limit: u8,
    payload_len: usize,
) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload_len as u16).to_be_bytes());
    h.extend_from_slice(&[next, hop_limit]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h
}

fn ethernet(dst_mac: [u8; 6], src_mac: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < ETH_MIN_FRAME {
        f.resize(ETH_MIN_FRAME, 0);
    }
    f
}

/// An IPv4 or IPv6 packet carrying one UDP datagram, starting at the IP
/// header (what an `IP_HDRINCL` socket or a TUN device takes). Both
/// addresses must be of the same family.
pub fn build_udp_packet(
    src_ip: IpAddr,
    dst_ip: IpAddr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Result<Vec<u8>> {
    if src_ip.is_ipv4() != dst_ip.is_ipv4() {
        return Err(LabError::Invalid(format!(
            "UDP packet from {src_ip} to {dst_ip}: address families differ"
        )));
    }
    let udp_len = 8 + payload.len();
    let ip_overhead = if src_ip.is_ipv4() { 20 } else { 0 };
    if udp_len + ip_overhead > usize::from(u16::MAX) {
        return Err(LabError::Invalid(format!(
            "UDP payload of {} bytes is too large",
            payload.len()
        )));
    }
    let mut udp = Vec::with_capacity(udp_len);
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    // A computed 0 is sent as 0xffff: 0 means "no checksum" (and is not
    // allowed at all over IPv6).
    let sum = match l4_checksum(src_ip, dst_ip, IPPROTO_UDP, &udp) {
        0 => 0xffff,
        s => s,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    let mut packet = match (src_ip, dst_ip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4_header(s, d, IPPROTO_UDP, udp.len()),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6_header(s, d, IPPROTO_UDP, 64, udp.len()),
        _ => unreachable!("families checked above"),
    };
    packet.extend_from_slice(&udp);
    Ok(packet)
}

/// An Ethernet frame carrying one UDP datagram over IPv4 or IPv6, with
/// whatever (forged) addresses the caller likes; checksums are correct.
pub fn build_udp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: IpAddr,
    dst_ip: IpAddr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Result<Vec<u8>> {
    let packet = build_udp_packet(src_ip, dst_ip, sport, dport, payload)?;
    let ethertype = if src_ip.is_ipv4() {
        ETH_P_IP
    } else {
        ETH_P_IPV6
    };
    Ok(ethernet(dst_mac, src_mac, ethertype, &packet))
}

/// An ARP reply frame claiming "`sender_ip` is at `sender_mac`", sent to
/// `target_mac`/`target_ip`. The Ethernet source is `sender_mac` too, as in
/// a genuine reply; an ARP-spoofing sandbox would put someone else's IP in
/// `sender_ip`.
pub fn build_arp_reply(
    sender_mac: [u8; 6],
    sender_ip: Ipv4Addr,
    target_mac: [u8; 6],
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let mut arp = Vec::with_capacity(28);
    arp.extend_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
    arp.extend_from_slice(&ETH_P_IP.to_be_bytes()); // protocol: IPv4
    arp.extend_from_slice(&[6, 4]); // address lengths
    arp.extend_from_slice(&2u16.to_be_bytes()); // op: reply
    arp.extend_from_slice(&sender_mac);
    arp.extend_from_slice(&sender_ip.octets());
    arp.extend_from_slice(&target_mac);
    arp.extend_from_slice(&target_ip.octets());
    ethernet(target_mac, sender_mac, ETH_P_ARP, &arp)
}

/// An ARP request frame, broadcast: "who has `target_ip`? tell
/// `sender_ip` (at `sender_mac`)". A receiver that owns `target_ip` learns
/// `sender_ip` -> `sender_mac` from it, so forging `sender_ip` is the
/// other classic way to poison a neighbour table.
pub fn build_arp_request(sender_mac: [u8; 6], sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let mut frame = build_arp_reply(sender_mac, sender_ip, [0; 6], target_ip);
    frame[..6].copy_from_slice(&[0xff; 6]); // Ethernet destination: broadcast
    frame[20..22].copy_from_slice(&1u16.to_be_bytes()); // op: request
    frame
}

/// An Ethernet frame carrying one ICMPv6 message (`message` starts at the
/// ICMPv6 type; its checksum field is filled in here) from `src_ip` to
/// `dst_ip` with `hop_limit` (255 for neighbour discovery and router
/// advertisements, which receivers check).
pub fn build_icmpv6_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: Ipv6Addr,
    dst_ip: Ipv6Addr,
    hop_limit: u8,
    message: &[u8],
) -> Result<Vec<u8>> {
    if message.len() < 4 || message.len() > usize::from(u16::MAX) {
        return Err(LabError::Invalid(format!(
            "an ICMPv6 message of {} bytes",
            message.len()
        )));
    }
    let mut icmp = message.to_vec();
    icmp[2..4].copy_from_slice(&[0, 0]);
    let sum = l4_checksum(src_ip.into(), dst_ip.into(), IPPROTO_ICMPV6, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut packet = ipv6_header(src_ip, dst_ip, IPPROTO_ICMPV6, hop_limit, icmp.len());
    packet.extend_from_slice(&icmp);
    Ok(ethernet(dst_mac, src_mac, ETH_P_IPV6, &packet))
}

/// An unsolicited, overriding ICMPv6 neighbour advertisement frame
/// claiming "`target` is at `src_mac`": the IPv6 counterpart of an ARP
/// spoof. Sent from `src_ip` to `dst_ip` (e.g. ff02::1 with
/// `dst_mac` 33:33:00:00:00:01) with hop limit 255 as RFC 4861 requires.
pub fn build_neighbor_advert(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: Ipv6Addr,
    dst_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> Vec<u8> {
    let mut icmp = vec![136, 0, 0, 0]; // type NA, code, checksum
    icmp.extend_from_slice(&[0x20, 0, 0, 0]); // flags: Override
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[2, 1]); // option: target link-layer address, 8 bytes
    icmp.extend_from_slice(&src_mac);
    let sum = l4_checksum(src_ip.into(), dst_ip.into(), IPPROTO_ICMPV6, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut packet = ipv6_header(src_ip, dst_ip, IPPROTO_ICMPV6, 255, icmp.len());
    packet.extend_from_slice(&icmp);
    ethernet(dst_mac, src_mac, ETH_P_IPV6, &packet)
}

/// An ICMP (IPv4) or ICMPv6 echo request. The ICMPv6 checksum is left 0:
/// the kernel always fills it in on ICMPv6 raw sockets, since it depends
/// on the source address the kernel picks.
pub(crate) fn echo_request(v6: bool, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    if !v6 {
        let sum = internet_checksum(&m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: the sum of these words is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(&data), !0xddf2);
        // Odd length pads with a zero byte.
        assert_eq!(internet_checksum(&[0xab]), !0xab00);
    }

    #[test]
    fn ipv4_udp_frame_checksums_verify() {
        let src: IpAddr = "10.200.0.5".parse().unwrap();
        let dst: IpAddr = "203.0.113.10".parse().unwrap();
        let f = build_udp_frame(A, B, src, dst, 1234, 53, b"hello").unwrap();
        assert_eq!(&f[0..6], &B);
        assert_eq!(&f[6..12], &A);
        assert_eq!(&f[12..14], &ETH_P_IP.to_be_bytes());
        let ip = &f[14..];
        assert_eq!(ip[0], 0x45);
        assert_eq!(u16::from_be_bytes([ip[2], ip[3]]), 20 + 8 + 5);
        assert_eq!(internet_checksum(&ip[..20]), 0, "IPv4 header checksum");
        let udp = &ip[20..20 + 13];
        assert_eq!(&udp[8..], b"hello");
        assert_eq!(l4_checksum(src, dst, IPPROTO_UDP, udp), 0, "UDP checksum");
        assert_eq!(f.len(), ETH_MIN_FRAME, "short frames are padded");
    }

    #[test]
    fn ipv6_udp_frame_checksums_verify() {
        let src: IpAddr = "fd70:616c:6973::5".parse().unwrap();
        let dst: IpAddr = "2001:db8:ffff::10".parse().unwrap();
        let payload = [7u8; 101];
        let f = build_udp_frame(A, B, src, dst, 40000, 8080, &payload).unwrap();
        assert_eq!(&f[12..14], &ETH_P_IPV6.to_be_bytes());
        let ip = &f[14..];
        assert_eq!(ip[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 8 + 101);
        assert_eq!(ip[6], IPPROTO_UDP);
        let udp = &ip[40..];
        assert_eq!(udp.len(), 8 + 101);
        assert_ne!(&udp[6..8], &[0, 0]);
        assert_eq!(l4_checksum(src, dst, IPPROTO_UDP, udp), 0);
    }

    #[test]
    fn mixed_families_are_rejected() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert!(build_udp_packet(v4, v6, 1, 2, b"").is_err());
    }

    #[test]
    fn arp_reply_layout() {
        let f = build_arp_reply(A, Ipv4Addr::new(10, 0, 0, 1), B, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(&f[12..14], &ETH_P_ARP.to_be_bytes());
        let arp = &f[14..42];
        assert_eq!(&arp[6..8], &[0, 2]);
        assert_eq!(&arp[8..14], &A);
        assert_eq!(&arp[14..18], &[10, 0, 0, 1]);
        assert_eq!(&arp[18..24], &B);
        assert_eq!(&arp[24..28], &[10, 0, 0, 2]);
    }

    #[test]
    fn arp_request_layout() {
        let f = build_arp_request(A, Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &A);
        let arp = &f[14..42];
        assert_eq!(&arp[6..8], &[0, 1]);
        assert_eq!(&arp[8..14], &A);
        assert_eq!(&arp[14..18], &[10, 0, 0, 9]);
        assert_eq!(&arp[18..24], &[0; 6]);
        assert_eq!(&arp[24..28], &[10, 0, 0, 1]);
    }

    #[test]
    fn icmpv6_frame_checksum_verifies() {
        let src: Ipv6Addr = "fe80::2".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1".parse().unwrap();
        let msg = [134u8, 0, 0xaa, 0xbb, 64, 0, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0];
        let f = build_icmpv6_frame(A, B, src, dst, 255, &msg).unwrap();
        assert_eq!(&f[12..14], &ETH_P_IPV6.to_be_bytes());
        let ip = &f[14..];
        assert_eq!(ip[6], IPPROTO_ICMPV6);
        assert_eq!(ip[7], 255);
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 16);
        let icmp = &ip[40..56];
        assert_eq!(icmp[0], 134);
        assert_eq!(l4_checksum(src.into(), dst.into(), IPPROTO_ICMPV6, icmp), 0);
        assert!(build_icmpv6_frame(A, B, src, dst, 255, &[1, 2]).is_err());
    }

    #[test]
    fn neighbor_advert_checksum_verifies() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1".parse().unwrap();
        let f = build_neighbor_advert(
            A,
            [0x33, 0x33, 0, 0, 0, 1],
            src,
            dst,
            "fd00::1".parse().unwrap(),
        );
        let ip = &f[14..];
        assert_eq!(ip[7], 255, "hop limit");
        let icmp = &ip[40..40 + 32];
        assert_eq!(icmp[0], 136);
        assert_eq!(l4_checksum(src.into(), dst.into(), IPPROTO_ICMPV6, icmp), 0);
    }

    #[test]
    fn echo_request_v4_checksum() {
        let m = echo_request(false, 0x1234, 1, b"abc");
        assert_eq!(internet_checksum(&m), 0);
        assert_eq!(&m[4..6], &[0x12, 0x34]);
    }
}
