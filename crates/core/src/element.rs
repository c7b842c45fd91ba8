//! Set and map elements: the per-sandbox data of the ruleset.
//!
//! The compiler emits these; the nft text renderer prints them inside the
//! table and the netlink writer encodes them for incremental updates, so both
//! paths share one description of every element.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Name of every table palisade owns (one per nftables family it uses).
pub const TABLE: &str = "palisade";

/// nftables address family of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Inet,
    Arp,
    Bridge,
}

impl Family {
    /// Keyword used in nft syntax.
    pub fn keyword(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
        }
    }

    /// `NFPROTO_*` value used on the netlink wire.
    pub fn nfproto(self) -> u8 {
        match self {
            Family::Inet => 1,
            Family::Arp => 3,
            Family::Bridge => 7,
        }
    }
}

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::str::FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(format!("{s:?} is not a MAC address (six hex pairs)"));
        }
        for (slot, part) in out.iter_mut().zip(parts) {
            *slot = u8::from_str_radix(part, 16)
                .map_err(|_| format!("{s:?} is not a MAC address (six hex pairs)"))?;
        }
        Ok(MacAddr(out))
    }
}

/// One field of an element key (or a map value).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyPart {
    /// Interface name (`ifname`): 16 bytes on the wire, NUL padded.
    IfName(String),
    /// `ipv4_addr`, network byte order on the wire.
    Ipv4(Ipv4Addr),
    /// `ipv6_addr`, network byte order on the wire.
    Ipv6(Ipv6Addr),
    /// `ether_addr`: 6 bytes on the wire.
    Ether(MacAddr),
    /// `mark`: 4 bytes in host byte order on the wire.
    Mark(u32),
    /// `inet_proto`: 1 byte.
    L4Proto(u8),
    /// `inet_service`: 2 bytes, network byte order.
    Port(u16),
}

impl KeyPart {
    /// Raw bytes as nf_tables stores this field (before concatenation padding).
    pub fn wire_bytes(&self) -> Vec<u8> {
        match self {
            KeyPart::IfName(name) => {
                let mut b = vec![0u8; 16];
                let n = name.len().min(15);
                b[..n].copy_from_slice(&name.as_bytes()[..n]);
                b
            }
            KeyPart::Ipv4(a) => a.octets().to_vec(),
            KeyPart::Ipv6(a) => a.octets().to_vec(),
            KeyPart::Ether(m) => m.0.to_vec(),
            KeyPart::Mark(m) => m.to_ne_bytes().to_vec(),
            KeyPart::L4Proto(p) => vec![*p],
            KeyPart::Port(p) => p.to_be_bytes().to_vec(),
        }
    }

    /// nft text form of the value.
    pub fn to_nft(&self) -> String {
        match self {
            // Interface names are restricted to [a-z0-9-] by construction
            // (see `names`), quoting keeps them literal anyway.
            KeyPart::IfName(name) => format!("\"{name}\""),
            KeyPart::Ipv4(a) => a.to_string(),
            KeyPart::Ipv6(a) => a.to_string(),
            KeyPart::Ether(m) => m.to_string(),
            KeyPart::Mark(m) => format!("0x{m:08x}"),
            KeyPart::L4Proto(6) => "tcp".to_string(),
            KeyPart::L4Proto(17) => "udp".to_string(),
            KeyPart::L4Proto(p) => p.to_string(),
            KeyPart::Port(p) => p.to_string(),
        }
    }
}

/// Encodes a key the way nf_tables expects it: a single field as is, the
/// fields of a concatenation each padded to a multiple of 4 bytes.
pub fn encode_key(parts: &[KeyPart]) -> Vec<u8> {
    if parts.len() == 1 {
        return parts[0].wire_bytes();
    }
    let mut out = Vec::with_capacity(parts.len() * 16);
    for part in parts {
        let mut b = part.wire_bytes();
        b.resize(b.len().div_ceil(4) * 4, 0);
        out.extend_from_slice(&b);
    }
    out
}

/// Encodes a key of an interval set. nft stores fields that are in host
/// byte order (`mark`) in network byte order there, so that ranges compare
/// as bytes, and converts the packet's value the same way in the rule
/// (`byteorder`); the other fields are laid out as in [`encode_key`].
pub fn encode_interval_key(parts: &[KeyPart]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.len() * 16);
    for part in parts {
        let mut b = match part {
            KeyPart::Mark(m) => m.to_be_bytes().to_vec(),
            other => other.wire_bytes(),
        };
        if parts.len() > 1 {
            b.resize(b.len().div_ceil(4) * 4, 0);
        }
        out.extend_from_slice(&b);
    }
    out
}

/// One element of a named set or map in one of palisade's tables.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Element {
    pub family: Family,
    pub set: &'static str,
    pub key: Vec<KeyPart>,
    /// For an element of an interval set (`flags interval`): the last key
    /// of the range, field by field, so each field of a concatenation is a
    /// range from `key` to `key_end`. Empty for an element that is a
    /// single key. On the wire this is `NFTA_SET_ELEM_KEY_END`.
    pub key_end: Vec<KeyPart>,
    /// The mapped value, for maps (a concatenation when it has several
    /// parts); empty for plain sets.
    pub value: Vec<KeyPart>,
}

impl Element {
    /// Whether this is an element of an interval set (it has a range end).
    pub fn is_interval(&self) -> bool {
        !self.key_end.is_empty()
    }

    /// The key as nf_tables stores it in this element's set.
    pub fn wire_key(&self) -> Vec<u8> {
        if self.is_interval() {
            encode_interval_key(&self.key)
        } else {
            encode_key(&self.key)
        }
    }

    /// The range end as nf_tables stores it (`NFTA_SET_ELEM_KEY_END`);
    /// empty for an element that is a single key.
    pub fn wire_key_end(&self) -> Vec<u8> {
        if self.is_interval() {
            encode_interval_key(&self.key_end)
        } else {
            Vec::new()
        }
    }

    /// nft text of this element as it appears inside `elements = { ... }`.
    pub fn to_nft(&self) -> String {
        let key = if !self.is_interval() {
            concat_nft(&self.key)
        } else {
            self.key
                .iter()
                .zip(&self.key_end)
                .map(|(first, last)| range_nft(first, last))
                .collect::<Vec<_>>()
                .join(" . ")
        };
        if self.value.is_empty() {
            key
        } else {
            format!("{key} : {}", concat_nft(&self.value))
        }
    }
}

/// nft text of one field of an interval element: a single value, an
/// address prefix (`203.0.113.0/24`) when the range is one, else
/// `FIRST-LAST`.
fn range_nft(first: &KeyPart, last: &KeyPart) -> String {
    if first == last {
        return first.to_nft();
    }
    let prefix = match (first, last) {
        (KeyPart::Ipv4(a), KeyPart::Ipv4(b)) => {
            prefix_len(u128::from(u32::from(*a)), u128::from(u32::from(*b)), 32)
        }
        (KeyPart::Ipv6(a), KeyPart::Ipv6(b)) => prefix_len(u128::from(*a), u128::from(*b), 128),
        _ => None,
    };
    match prefix {
        Some(len) => format!("{}/{len}", first.to_nft()),
        None => format!("{}-{}", first.to_nft(), last.to_nft()),
    }
}

/// The prefix length of the range `first..=last` of `bits`-bit numbers, if
/// the range is exactly one prefix.
fn prefix_len(first: u128, last: u128, bits: u32) -> Option<u32> {
    let host = first ^ last;
    // The differing bits must be a block of low ones (host part), all zero
    // in `first` and all one in `last`.
    if host & host.wrapping_add(1) != 0 || first & host != 0 {
        return None;
    }
    Some(bits - (128 - host.leading_zeros()))
}

fn concat_nft(parts: &[KeyPart]) -> String {
    parts
        .iter()
        .map(KeyPart::to_nft)
        .collect::<Vec<_>>()
        .join(" . ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenation_pads_each_field_to_four_bytes() {
        let key = encode_key(&[
            KeyPart::IfName("pal1".into()),
            KeyPart::L4Proto(6),
            KeyPart::Port(443),
        ]);
        assert_eq!(key.len(), 16 + 4 + 4);
        assert_eq!(&key[..4], b"pal1");
        assert_eq!(key[16], 6);
        assert_eq!(&key[20..22], &443u16.to_be_bytes());
    }

    #[test]
    fn single_field_is_not_padded() {
        assert_eq!(encode_key(&[KeyPart::Port(80)]), vec![0, 80]);
        assert_eq!(encode_key(&[KeyPart::Ether(MacAddr([1; 6]))]).len(), 6);
    }

    #[test]
    fn interval_elements_print_prefixes_and_ranges() {
        let e = Element {
            family: Family::Inet,
            set: "rule_allow4",
            key: vec![
                KeyPart::Mark(5),
                KeyPart::L4Proto(6),
                KeyPart::Port(443),
                KeyPart::Ipv4("203.0.113.0".parse().unwrap()),
            ],
            key_end: vec![
                KeyPart::Mark(5),
                KeyPart::L4Proto(6),
                KeyPart::Port(443),
                KeyPart::Ipv4("203.0.113.255".parse().unwrap()),
            ],
            value: Vec::new(),
        };
        assert_eq!(e.to_nft(), "0x00000005 . tcp . 443 . 203.0.113.0/24");
        // The mark in network byte order, each field padded to 4 bytes.
        let key = e.wire_key();
        assert_eq!(&key[..4], &[0, 0, 0, 5]);
        assert_eq!(&key[4..8], &[6, 0, 0, 0]);
        assert_eq!(&key[8..12], &[1, 187, 0, 0]);
        assert_eq!(&e.wire_key_end()[12..], &[203, 0, 113, 255]);
        let mut e6 = e.clone();
        e6.key[2] = KeyPart::Port(0);
        e6.key_end[2] = KeyPart::Port(65535);
        e6.key[3] = KeyPart::Ipv6("2001:db8::".parse().unwrap());
        e6.key_end[3] = KeyPart::Ipv6("2001:db8::ffff".parse().unwrap());
        assert_eq!(e6.to_nft(), "0x00000005 . tcp . 0-65535 . 2001:db8::/112");
        e6.key_end[3] = KeyPart::Ipv6("2001:db8::fffe".parse().unwrap());
        assert!(e6.to_nft().ends_with("2001:db8::-2001:db8::fffe"));
        assert_eq!(prefix_len(0, u128::from(u32::MAX), 32), Some(0));
        assert_eq!(prefix_len(7, 7, 32), Some(32));
        assert_eq!(prefix_len(1, 2, 32), None);
    }

    #[test]
    fn mac_round_trips() {
        let m: MacAddr = "02:aa:0b:00:00:01".parse().unwrap();
        assert_eq!(m.to_string(), "02:aa:0b:00:00:01");
        assert!("02:aa".parse::<MacAddr>().is_err());
    }
}
