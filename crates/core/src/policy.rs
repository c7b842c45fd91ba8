//! Egress policy values shared by the configuration and the CLI: port rules
//! and the built-in list of always-denied destinations.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Transport protocol of a port rule.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// IANA protocol number, as nftables' `meta l4proto` sees it.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

impl FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            _ => Err(format!("{s:?} is not a protocol (tcp or udp)")),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// `PROTO:PORT`, e.g. `tcp:443`: a destination a sandbox may reach on the
/// internet when its egress is narrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRule {
    pub proto: Proto,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a port rule: {why} (expected PROTO:PORT, e.g. tcp:443 or udp:53)")]
pub struct PortRuleError {
    pub input: String,
    pub why: &'static str,
}

impl FromStr for PortRule {
    type Err = PortRuleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| PortRuleError {
            input: s.to_string(),
            why,
        };
        let (proto, port) = s.split_once(':').ok_or_else(|| err("no ':'"))?;
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => return Err(err("the protocol must be tcp or udp")),
        };
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
            return Err(err("the port must be a number from 1 to 65535"));
        }
        let port: u32 = port.parse().map_err(|_| err("bad port"))?;
        if port == 0 || port > 65535 {
            return Err(err("the port must be a number from 1 to 65535"));
        }
        Ok(PortRule {
            proto,
            port: port as u16,
        })
    }
}

impl fmt::Display for PortRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.proto, self.port)
    }
}

impl serde::Serialize for PortRule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The cloud metadata service's addresses.
pub const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
pub const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

fn v4(a: [u8; 4], len: u8) -> Ipv4Net {
    Ipv4Net::new(Ipv4Addr::from(a), len).expect("static prefix")
}

fn v6(s: &str) -> Ipv6Net {
    s.parse().expect("static prefix")
}

/// IPv4 destinations a sandbox never reaches, whatever its policy says.
pub fn builtin_blocked_v4() -> Vec<Ipv4Net> {
    builtin_blocked_v4_named()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// [`builtin_blocked_v4`] with what each range is, for messages.
pub fn builtin_blocked_v4_named() -> Vec<(Ipv4Net, &'static str)> {
    vec![
        (v4([0, 0, 0, 0], 8), "\"this network\""),
        (v4([10, 0, 0, 0], 8), "private"),
        (v4([100, 64, 0, 0], 10), "carrier-grade NAT"),
        (v4([127, 0, 0, 0], 8), "loopback"),
        (
            v4([169, 254, 0, 0], 16),
            "link-local and metadata (169.254.169.254)",
        ),
        (v4([172, 16, 0, 0], 12), "private"),
        (v4([192, 0, 0, 0], 24), "IETF protocol assignments"),
        (v4([192, 168, 0, 0], 16), "private"),
        (v4([198, 18, 0, 0], 15), "benchmarking"),
        (v4([224, 0, 0, 0], 4), "multicast"),
        (v4([240, 0, 0, 0], 4), "reserved and limited broadcast"),
    ]
}

/// IPv6 destinations a sandbox never reaches. IPv4-mapped (`::ffff:0:0/96`)
/// and IPv4-compatible forms are blocked whole: they never belong on the
/// wire. NAT64 forms of the blocked IPv4 ranges are added by
/// [`nat64_forms`].
pub fn builtin_blocked_v6() -> Vec<Ipv6Net> {
    builtin_blocked_v6_named()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// [`builtin_blocked_v6`] with what each range is, for messages.
pub fn builtin_blocked_v6_named() -> Vec<(Ipv6Net, &'static str)> {
    vec![
        (
            v6("::/96"),
            "unspecified, loopback (::1) and IPv4-compatible",
        ),
        (v6("::ffff:0:0/96"), "IPv4-mapped"),
        (v6("100::/64"), "discard-only"),
        (v6("fc00::/7"), "unique local and metadata (fd00:ec2::254)"),
        // NDP with the gateway is let through before the blocked drops.
        (v6("fe80::/10"), "link-local"),
        (v6("fec0::/10"), "site-local"),
        (v6("ff00::/8"), "multicast"),
    ]
}

/// The NAT64 well-known-prefix (64:ff9b::/96) forms of IPv4 ranges, so a
/// NAT64 gateway cannot be used to reach a blocked IPv4 range.
pub fn nat64_forms(nets: &[Ipv4Net]) -> Vec<Ipv6Net> {
    nets.iter()
        .map(|n| {
            let o = n.network().octets();
            let addr = Ipv6Addr::new(
                0x64,
                0xff9b,
                0,
                0,
                0,
                0,
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([o[2], o[3]]),
            );
            Ipv6Net::new(addr, 96 + n.prefix_len()).expect("prefix <= 128")
        })
        .collect()
}

/// Splits user `blocked` CIDRs by family.
pub fn split_nets(nets: &[IpNet]) -> (Vec<Ipv4Net>, Vec<Ipv6Net>) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for n in nets {
        match n {
            IpNet::V4(n) => a.push(*n),
            IpNet::V6(n) => b.push(*n),
        }
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_port_rules() {
        assert_eq!(
            "tcp:443".parse::<PortRule>().unwrap(),
            PortRule {
                proto: Proto::Tcp,
                port: 443
            }
        );
        assert_eq!("udp:53".parse::<PortRule>().unwrap().to_string(), "udp:53");
        for bad in [
            "tcp",
            "tcp:",
            "tcp:0",
            "tcp:65536",
            "icmp:1",
            "tcp:+1",
            "tcp:1-2",
            ":80",
        ] {
            assert!(bad.parse::<PortRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn builtin_lists_cover_metadata() {
        assert!(builtin_blocked_v4()
            .iter()
            .any(|n| n.contains(&METADATA_V4)));
        assert!(builtin_blocked_v6()
            .iter()
            .any(|n| n.contains(&METADATA_V6)));
        let mapped: Ipv6Addr = "::ffff:169.254.169.254".parse().unwrap();
        assert!(builtin_blocked_v6().iter().any(|n| n.contains(&mapped)));
        let nat64 = nat64_forms(&builtin_blocked_v4());
        let md64: Ipv6Addr = "64:ff9b::a9fe:a9fe".parse().unwrap();
        assert!(nat64.iter().any(|n| n.contains(&md64)));
        assert!(builtin_blocked_v6()
            .iter()
            .any(|n| n.contains(&Ipv6Addr::LOCALHOST)));
    }
}
