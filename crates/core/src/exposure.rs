//! Port exposure: a host port (or range) forwarded to a sandbox's port.
//!
//! Exposures compile to elements of DNAT maps, one element per host port, so
//! exposing a port never adds a rule. Whether the translated packet may then
//! reach the sandbox is decided by the ordinary filter rules: a packet from
//! another sandbox is judged exactly as if it had been sent to the target
//! directly, which is what makes an exposure useless as a pivot.

use crate::policy::Proto;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The most ports one exposure may span. Each port is one map element per
/// address family, so this bounds the size of a single update.
pub const MAX_RANGE: u32 = 1024;

/// An inclusive range of ports, `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn single(port: u16) -> PortRange {
        PortRange {
            first: port,
            last: port,
        }
    }

    /// Number of ports in the range.
    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// Never true: a range holds at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn overlaps(&self, other: &PortRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

impl serde::Serialize for PortRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why a port, range or exposure is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExposureError {
    #[error("{input:?} is not a port or port range: {why} (expected PORT or FIRST-LAST, ports 1 to 65535)")]
    BadRange { input: String, why: &'static str },
    #[error("host ports {host} and sandbox ports {guest} differ in length ({host_len} and {guest_len} ports)")]
    LengthMismatch {
        host: PortRange,
        guest: PortRange,
        host_len: u32,
        guest_len: u32,
    },
    #[error("range {range} spans {len} ports; one exposure may span at most {MAX_RANGE}")]
    TooLong { range: PortRange, len: u32 },
    #[error("--host-ip {addr} cannot be exposed on: {why}")]
    BadHostIp { addr: IpAddr, why: &'static str },
}

impl FromStr for PortRange {
    type Err = ExposureError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| ExposureError::BadRange {
            input: s.to_string(),
            why,
        };
        let port = |p: &str| -> Result<u16, ExposureError> {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("a port must be a number"));
            }
            match p.parse::<u32>() {
                Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
                _ => Err(err("a port must be from 1 to 65535")),
            }
        };
        let range = match s.split_once('-') {
            None => PortRange::single(port(s)?),
            Some((a, b)) => PortRange {
                first: port(a)?,
                last: port(b)?,
            },
        };
        if range.first > range.last {
            return Err(err("the first port is above the last"));
        }
        Ok(range)
    }
}

/// One exposure of a sandbox: traffic to the host's `host_ports` (on
/// `host_ip`, or on any of the host's addresses) goes to the sandbox's
/// `guest_ports`, port by port in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Exposure {
    pub proto: Proto,
    /// `None`: every address of the host (IPv4 and IPv6).
    pub host_ip: Option<IpAddr>,
    pub host_ports: PortRange,
    pub guest_ports: PortRange,
}

impl Exposure {
    /// Validates an exposure as the user asked for it.
    pub fn new(
        proto: Proto,
        host_ip: Option<IpAddr>,
        host_ports: PortRange,
        guest_ports: PortRange,
    ) -> Result<Exposure, ExposureError> {
        if host_ports.len() != guest_ports.len() {
            return Err(ExposureError::LengthMismatch {
                host: host_ports,
                guest: guest_ports,
                host_len: host_ports.len(),
                guest_len: guest_ports.len(),
            });
        }
        if host_ports.len() > MAX_RANGE {
            return Err(ExposureError::TooLong {
                range: host_ports,
                len: host_ports.len(),
            });
        }
        if let Some(addr) = host_ip {
            check_host_ip(addr)?;
        }
        Ok(Exposure {
            proto,
            host_ip,
            host_ports,
            guest_ports,
        })
    }

    /// Whether both would claim some host port for the same protocol on a
    /// common address. An exposure on every address conflicts with any
    /// exposure of the same port; two specific addresses only if equal.
    pub fn conflicts_with(&self, other: &Exposure) -> bool {
        let same_address = match (self.host_ip, other.host_ip) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        self.proto == other.proto && same_address && self.host_ports.overlaps(&other.host_ports)
    }

    /// `(host port, sandbox port)` for every port of the exposure.
    pub fn port_pairs(&self) -> impl Iterator<Item = (u16, u16)> {
        let offset = self.guest_ports.first;
        let first = self.host_ports.first;
        (first..=self.host_ports.last).map(move |h| (h, offset + (h - first)))
    }

    /// Whether traffic to IPv4 (or IPv6) host addresses is forwarded.
    pub fn covers_v4(&self) -> bool {
        !matches!(self.host_ip, Some(IpAddr::V6(_)))
    }

    pub fn covers_v6(&self) -> bool {
        !matches!(self.host_ip, Some(IpAddr::V4(_)))
    }
}

impl fmt::Display for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(a)) => write!(f, "[{a}]:")?,
            Some(IpAddr::V4(a)) => write!(f, "{a}:")?,
            None => f.write_str("*:")?,
        }
        write!(
            f,
            "{}/{} -> {}",
            self.host_ports, self.proto, self.guest_ports
        )
    }
}

/// Loopback, unspecified, multicast and link-local addresses are refused:
/// DNAT from them either cannot be routed to a sandbox or would listen
/// somewhere the user did not mean.
fn check_host_ip(addr: IpAddr) -> Result<(), ExposureError> {
    let bad = |why| Err(ExposureError::BadHostIp { addr, why });
    if addr.is_loopback() {
        return bad("loopback traffic is never routed to a sandbox; expose on a host address");
    }
    if addr.is_unspecified() {
        return bad("leave --host-ip out to expose on every host address");
    }
    if addr.is_multicast() {
        return bad("it is a multicast address");
    }
    match addr {
        IpAddr::V4(a) if a.is_broadcast() || a.is_link_local() => {
            bad("it is a broadcast or link-local address")
        }
        IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => bad("it is a link-local address"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(host_ip: Option<&str>, host: &str, guest: &str) -> Result<Exposure, ExposureError> {
        Exposure::new(
            Proto::Tcp,
            host_ip.map(|a| a.parse().unwrap()),
            host.parse()?,
            guest.parse()?,
        )
    }

    #[test]
    fn ranges_parse_and_refuse_nonsense() {
        assert_eq!("80".parse::<PortRange>().unwrap(), PortRange::single(80));
        let r: PortRange = "8000-8010".parse().unwrap();
        assert_eq!((r.first, r.last, r.len()), (8000, 8010, 11));
        for bad in [
            "", "0", "65536", "10-5", "a", "80-", "-80", "1-2-3", "+80", "080000",
        ] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn lengths_must_match_and_ranges_are_bounded() {
        assert!(matches!(
            exp(None, "8000-8001", "80"),
            Err(ExposureError::LengthMismatch { .. })
        ));
        assert!(matches!(
            exp(None, "1-2000", "1-2000"),
            Err(ExposureError::TooLong { .. })
        ));
        let e = exp(None, "8000-8002", "90-92").unwrap();
        let pairs: Vec<_> = e.port_pairs().collect();
        assert_eq!(pairs, vec![(8000, 90), (8001, 91), (8002, 92)]);
    }

    #[test]
    fn host_ip_must_be_a_routable_host_address() {
        for bad in [
            "127.0.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "224.0.0.1",
            "fe80::1",
            "169.254.1.1",
        ] {
            assert!(
                matches!(
                    exp(Some(bad), "80", "80"),
                    Err(ExposureError::BadHostIp { .. })
                ),
                "{bad} was accepted"
            );
        }
        assert!(exp(Some("198.51.100.1"), "80", "80").is_ok());
    }

    #[test]
    fn conflicts_need_protocol_address_and_port_overlap() {
        let any = exp(None, "8000-8010", "8000-8010").unwrap();
        let at = exp(Some("198.51.100.1"), "8010", "80").unwrap();
        let other_at = exp(Some("198.51.100.2"), "8010", "80").unwrap();
        let beside = exp(None, "8011", "80").unwrap();
        assert!(any.conflicts_with(&at));
        assert!(at.conflicts_with(&any));
        assert!(!at.conflicts_with(&other_at));
        assert!(!any.conflicts_with(&beside));
        let mut udp = any;
        udp.proto = Proto::Udp;
        assert!(!any.conflicts_with(&udp));
    }

    #[test]
    fn family_coverage_follows_the_host_ip() {
        let any = exp(None, "80", "80").unwrap();
        let v4 = exp(Some("198.51.100.1"), "80", "80").unwrap();
        let v6 = exp(Some("2001:db8::1"), "80", "80").unwrap();
        assert!(any.covers_v4() && any.covers_v6());
        assert!(v4.covers_v4() && !v4.covers_v6());
        assert!(!v6.covers_v4() && v6.covers_v6());
        assert_eq!(v6.to_string(), "[2001:db8::1]:80/tcp -> 80");
    }
}
