//! Tenant rules: allow or deny rules an operator adds for every sandbox of
//! one tenant, by protocol, destination port range and CIDR.
//!
//! A **deny** rule drops matching egress even when the sandbox has internet
//! egress or an allowed port that would accept it. An **allow** rule accepts
//! matching egress to the internet (through the uplink, masqueraded) even
//! when the sandbox has no internet egress. Neither can reach what palisade
//! always denies: an allow rule whose CIDR overlaps one of those ranges is
//! refused here ([`TenantRule::validate`]), and in the ruleset the rule
//! lookups come after the always-denied drops anyway.
//!
//! A rule compiles to one element of an interval set keyed by
//! `tenant mark . protocol . port range . CIDR` ([`TenantRule::element`]), so
//! adding or removing one is a single element, whatever the number of
//! sandboxes.

use crate::config::Config;
use crate::element::{Element, Family, KeyPart};
use crate::exposure::PortRange;
use crate::policy::{self, Proto};
use ipnet::{IpNet, Ipv4Net};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// What a tenant rule does with matching traffic.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Allow,
    Deny,
}

impl fmt::Display for RuleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleAction::Allow => "allow",
            RuleAction::Deny => "deny",
        })
    }
}

impl FromStr for RuleAction {
    type Err = TenantRuleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(RuleAction::Allow),
            "deny" => Ok(RuleAction::Deny),
            _ => Err(TenantRuleError::Action {
                input: s.to_string(),
            }),
        }
    }
}

/// Why a tenant rule is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantRuleError {
    /// The action is neither `allow` nor `deny`.
    #[error("{input:?} is not a rule action (allow or deny)")]
    Action { input: String },
    /// The protocol is neither `tcp` nor `udp`.
    #[error("{input:?} is not a protocol (tcp or udp)")]
    Proto { input: String },
    /// The port is not `PORT`, `FIRST-LAST` (1 to 65535, first <= last) or
    /// `all`.
    #[error("port {input:?}: {why} (expected PORT, FIRST-LAST with ports 1 to 65535, or all)")]
    Ports { input: String, why: String },
    /// The CIDR does not parse.
    #[error(
        "{input:?} is not a CIDR or address (e.g. 203.0.113.0/24, 2001:db8::/32, 198.51.100.7)"
    )]
    Cidr { input: String },
    /// The CIDR has bits set beyond its prefix; palisade does not guess.
    #[error("{cidr} has host bits set; did you mean {network}?")]
    HostBits { cidr: IpNet, network: IpNet },
    /// An allow rule overlaps a range sandboxes never reach.
    #[error("allow {cidr} overlaps the always-denied {what} range {denied}: palisade never lets a rule re-open it{hint}")]
    AlwaysDenied {
        cidr: IpNet,
        denied: IpNet,
        what: String,
        hint: String,
    },
    /// An allow rule in a configuration without `network.uplink`: there is
    /// no internet to allow.
    #[error(
        "allow rules open egress through network.uplink, which the configuration does not set"
    )]
    NoUplink,
    /// The text form has the wrong number of words.
    #[error("{input:?} is not a tenant rule (expected ACTION PROTO PORTS CIDR, e.g. \"allow tcp 443 203.0.113.0/24\" or \"deny udp all 2001:db8::/32\")")]
    Text { input: String },
}

/// A validated tenant rule (see the module documentation).
///
/// Its text form is `ACTION PROTO PORTS CIDR`, e.g. `allow tcp 443
/// 203.0.113.0/24`, `deny udp 5000-5100 2001:db8::/32`, `deny tcp all
/// 198.51.100.7/32`. Its JSON form has the fields `action`, `proto`, `ports`
/// (`"443"`, `"5000-5100"` or `null` for all ports) and `cidr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct TenantRule {
    pub action: RuleAction,
    pub proto: Proto,
    /// Destination ports; `None` for all of them.
    pub ports: Option<PortRange>,
    /// Destination network; never has host bits set.
    pub cidr: IpNet,
}

/// The serde input of a [`TenantRule`], validated by [`TenantRule::parse`].
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenantRule {
    action: RuleAction,
    proto: Proto,
    #[serde(default)]
    ports: Option<String>,
    cidr: String,
}

impl<'de> serde::Deserialize<'de> for TenantRule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawTenantRule::deserialize(d)?;
        TenantRule::parse(raw.action, raw.proto, raw.ports.as_deref(), &raw.cidr)
            .map_err(serde::de::Error::custom)
    }
}

/// A range sandboxes never reach, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedRange {
    pub net: IpNet,
    /// E.g. `private`, `sandbox pool (network.subnet)`.
    pub what: String,
}

/// Every range a sandbox never reaches under `config`: the built-in lists
/// (IPv4, IPv6, and the NAT64 forms of the IPv4 ones), `isolation.blocked`
/// and the sandbox pools. The same ranges the ruleset drops before any
/// accept.
pub fn always_denied(config: &Config) -> Vec<DeniedRange> {
    let mut out = Vec::new();
    let mut push = |net: IpNet, what: String| out.push(DeniedRange { net, what });
    let (user4, user6) = policy::split_nets(&config.isolation.blocked);
    let mut v4: Vec<(Ipv4Net, String)> = policy::builtin_blocked_v4_named()
        .into_iter()
        .map(|(n, w)| (n, w.to_string()))
        .collect();
    v4.extend(
        user4
            .iter()
            .map(|n| (*n, "configured (isolation.blocked)".to_string())),
    );
    v4.push((
        config.network.subnet,
        "sandbox pool (network.subnet)".into(),
    ));
    for (n, w) in &v4 {
        push(IpNet::V4(*n), w.clone());
    }
    for (n, w) in policy::builtin_blocked_v6_named() {
        push(IpNet::V6(n), w.to_string());
    }
    // NAT64 forms of every blocked IPv4 range (the pool's too: a NAT64
    // gateway would otherwise reach sandboxes from outside their rules).
    for (n, w) in &v4 {
        for n64 in policy::nat64_forms(std::slice::from_ref(n)) {
            push(IpNet::V6(n64), format!("NAT64 form of the {w} range {n}"));
        }
    }
    for n in &user6 {
        push(IpNet::V6(*n), "configured (isolation.blocked)".into());
    }
    push(
        IpNet::V6(config.network.subnet6),
        "sandbox pool (network.subnet6)".into(),
    );
    out
}

fn nets_overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Parses `PORT`, `FIRST-LAST` or `all` (`None`).
fn parse_ports(s: &str) -> Result<Option<PortRange>, TenantRuleError> {
    if s == "all" {
        return Ok(None);
    }
    s.parse::<PortRange>()
        .map(Some)
        .map_err(|e| TenantRuleError::Ports {
            input: s.to_string(),
            why: match e {
                crate::exposure::ExposureError::BadRange { why, .. } => why.to_string(),
                other => other.to_string(),
            },
        })
}

/// Parses a CIDR, or a bare address as a host prefix (/32, /128). Host bits
/// are an error, not silently cleared: `10.1.2.3/8` is probably a typo.
fn parse_cidr(s: &str) -> Result<IpNet, TenantRuleError> {
    let net = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => match s.parse::<IpAddr>() {
            Ok(a) => IpNet::from(a),
            Err(_) => {
                return Err(TenantRuleError::Cidr {
                    input: s.to_string(),
                })
            }
        },
    };
    if net.trunc() != net {
        return Err(TenantRuleError::HostBits {
            cidr: net,
            network: net.trunc(),
        });
    }
    Ok(net)
}

impl TenantRule {
    /// Builds a rule from its parts as a user typed them: `ports` is
    /// `PORT`, `FIRST-LAST`, `all` or absent (all ports).
    pub fn parse(
        action: RuleAction,
        proto: Proto,
        ports: Option<&str>,
        cidr: &str,
    ) -> Result<TenantRule, TenantRuleError> {
        Ok(TenantRule {
            action,
            proto,
            ports: match ports {
                Some(p) => parse_ports(p)?,
                None => None,
            },
            cidr: parse_cidr(cidr)?,
        })
    }

    /// Checks the rule against the configuration: an allow rule must not
    /// overlap any range palisade always denies, and needs an uplink. Deny
    /// rules may cover anything.
    pub fn validate(&self, config: &Config) -> Result<(), TenantRuleError> {
        if self.action == RuleAction::Deny {
            return Ok(());
        }
        // Name the range that explains the refusal best: the narrowest one
        // holding the whole CIDR (the pool rather than 10.0.0.0/8 for a
        // CIDR in the pool), else the widest one it overlaps.
        let overlapped: Vec<DeniedRange> = always_denied(config)
            .into_iter()
            .filter(|d| nets_overlap(&self.cidr, &d.net))
            .collect();
        let holder = overlapped
            .iter()
            .filter(|d| d.net.contains(&self.cidr))
            .max_by_key(|d| d.net.prefix_len());
        let widest = overlapped.iter().min_by_key(|d| d.net.prefix_len());
        if let Some(d) = holder.or(widest).cloned() {
            let hint = if self.cidr.prefix_len() == 0 {
                "; to let sandboxes reach the whole internet, use their internet setting (sandbox create/update --internet)".to_string()
            } else if self.cidr.contains(&d.net) && self.cidr != d.net {
                format!("; use narrower CIDRs that leave {} out", d.net)
            } else {
                String::new()
            };
            return Err(TenantRuleError::AlwaysDenied {
                cidr: self.cidr,
                denied: d.net,
                what: d.what,
                hint,
            });
        }
        if config.network.uplink.is_none() {
            return Err(TenantRuleError::NoUplink);
        }
        Ok(())
    }

    /// The ports matched, as an inclusive range (all ports: 0-65535).
    pub fn port_span(&self) -> (u16, u16) {
        self.ports.map_or((0, u16::MAX), |p| (p.first, p.last))
    }

    /// Whether both rules could match one packet and land in the same set
    /// (same action, protocol and address family). nf_tables interval sets
    /// with concatenations cannot hold overlapping elements, so a tenant's
    /// rules may not overlap this way.
    pub fn overlaps(&self, other: &TenantRule) -> bool {
        let (a1, a2) = self.port_span();
        let (b1, b2) = other.port_span();
        self.action == other.action
            && self.proto == other.proto
            && self.cidr.network().is_ipv4() == other.cidr.network().is_ipv4()
            && a1 <= b2
            && b1 <= a2
            && nets_overlap(&self.cidr, &other.cidr)
    }

    /// The set the rule's element belongs to.
    pub fn set(&self) -> &'static str {
        match (self.action, &self.cidr) {
            (RuleAction::Allow, IpNet::V4(_)) => "rule_allow4",
            (RuleAction::Allow, IpNet::V6(_)) => "rule_allow6",
            (RuleAction::Deny, IpNet::V4(_)) => "rule_deny4",
            (RuleAction::Deny, IpNet::V6(_)) => "rule_deny6",
        }
    }

    /// The rule's one element for the tenant with mark `tenant_id`: the
    /// range from `mark . proto . first port . network address` to `mark .
    /// proto . last port . last address`.
    pub fn element(&self, tenant_id: u32) -> Element {
        let (first, last) = self.port_span();
        let (lo, hi) = match self.cidr {
            IpNet::V4(n) => (KeyPart::Ipv4(n.network()), KeyPart::Ipv4(n.broadcast())),
            IpNet::V6(n) => (KeyPart::Ipv6(n.network()), KeyPart::Ipv6(n.broadcast())),
        };
        let head = [
            KeyPart::Mark(tenant_id),
            KeyPart::L4Proto(self.proto.number()),
        ];
        let mut key = head.to_vec();
        key.extend([KeyPart::Port(first), lo]);
        let mut key_end = head.to_vec();
        key_end.extend([KeyPart::Port(last), hi]);
        Element {
            family: Family::Inet,
            set: self.set(),
            key,
            key_end,
            value: Vec::new(),
        }
    }
}

impl fmt::Display for TenantRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ports = self
            .ports
            .map_or_else(|| "all".to_string(), |p| p.to_string());
        write!(f, "{} {} {ports} {}", self.action, self.proto, self.cidr)
    }
}

impl FromStr for TenantRule {
    type Err = TenantRuleError;
    /// The text form, `ACTION PROTO PORTS CIDR`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let [action, proto, ports, cidr] = words[..] else {
            return Err(TenantRuleError::Text {
                input: s.to_string(),
            });
        };
        let proto = proto.parse::<Proto>().map_err(|_| TenantRuleError::Proto {
            input: proto.to_string(),
        })?;
        TenantRule::parse(action.parse()?, proto, Some(ports), cidr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::Ipv6Net;
    use proptest::prelude::*;

    fn rule(s: &str) -> TenantRule {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn uplinked() -> Config {
        Config::from_toml("t", "[network]\nuplink = \"up0\"\n").unwrap()
    }

    #[test]
    fn text_and_json_forms_round_trip() {
        for s in [
            "allow tcp 443 203.0.113.0/24",
            "deny udp 5000-5100 2001:db8::/32",
            "deny tcp all 198.51.100.7/32",
        ] {
            let r = rule(s);
            assert_eq!(r.to_string(), s);
            let json = serde_json::to_string(&r).unwrap();
            let back: TenantRule = serde_json::from_str(&json).unwrap();
            assert_eq!(back, r, "{json}");
        }
        let r = rule("deny tcp all 198.51.100.7");
        assert_eq!(r.cidr.to_string(), "198.51.100.7/32");
        assert_eq!(r.ports, None);
        let json = serde_json::to_value(rule("allow udp 53 2001:db8::1")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"action": "allow", "proto": "udp", "ports": "53", "cidr": "2001:db8::1/128"})
        );
        let none: TenantRule = serde_json::from_str(
            r#"{"action":"deny","proto":"tcp","ports":null,"cidr":"192.0.2.0/24"}"#,
        )
        .unwrap();
        assert_eq!(none.ports, None);
        assert!(serde_json::from_str::<TenantRule>(
            r#"{"action":"deny","proto":"tcp","cidr":"192.0.2.1/24"}"#
        )
        .unwrap_err()
        .to_string()
        .contains("host bits"));
    }

    #[test]
    fn bad_rules_say_why() {
        let cases = [
            ("permit tcp 443 203.0.113.0/24", "not a rule action"),
            ("allow icmp 443 203.0.113.0/24", "not a protocol"),
            ("allow tcp 0 203.0.113.0/24", "1 to 65535"),
            ("allow tcp 65536 203.0.113.0/24", "1 to 65535"),
            (
                "allow tcp 90-80 203.0.113.0/24",
                "first port is above the last",
            ),
            ("allow tcp x 203.0.113.0/24", "must be a number"),
            ("allow tcp 443 203.0.113.0/33", "not a CIDR"),
            (
                "allow tcp 443 203.0.113.1/24",
                "did you mean 203.0.113.0/24",
            ),
            ("allow tcp 443", "expected ACTION PROTO PORTS CIDR"),
        ];
        for (text, want) in cases {
            let e = text.parse::<TenantRule>().unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn allow_rules_never_overlap_what_is_always_denied() {
        let c = Config::from_toml(
            "t",
            "[network]\nuplink = \"up0\"\n[isolation]\nblocked = [\"203.0.113.128/25\", \"2001:db8:dead::/48\"]\n",
        )
        .unwrap();
        let cases = [
            ("allow tcp 80 10.0.0.0/7", "overlaps the always-denied private range 10.0.0.0/8: palisade never lets a rule re-open it"),
            ("allow tcp 80 169.254.169.254/32", "link-local and metadata (169.254.169.254) range 169.254.0.0/16"),
            ("allow tcp 80 127.0.0.1/32", "loopback range 127.0.0.0/8"),
            ("allow tcp 80 fd00:ec2::254/128", "fc00::/7"),
            ("allow tcp 80 ::1/128", "::/96"),
            ("allow tcp 80 ::ffff:203.0.113.10/128", "IPv4-mapped"),
            ("allow tcp 80 64:ff9b::a9fe:a9fe/128", "NAT64 form of the link-local"),
            ("allow tcp 80 10.0.0.0/8", "private range 10.0.0.0/8"),
            ("allow tcp 80 10.200.0.0/24", "sandbox pool (network.subnet) range 10.200.0.0/16"),
            ("allow tcp 80 fd70:616c:6973::5/128", "sandbox pool (network.subnet6) range fd70:616c:6973::/48"),
            ("allow tcp 80 203.0.113.200/32", "configured (isolation.blocked) range 203.0.113.128/25"),
            ("allow tcp 80 2001:db8:dead::1/128", "configured (isolation.blocked)"),
            ("allow tcp 80 0.0.0.0/0", "use their internet setting"),
            ("allow tcp 80 ::/0", "use their internet setting"),
            ("allow tcp 80 192.0.0.0/2", "leave"),
        ];
        for (text, want) in cases {
            let e = rule(text).validate(&c).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            assert!(e.starts_with("allow "), "{e}");
        }
        // A pool outside the built-in private ranges is denied by name.
        let pool = Config::from_toml(
            "t",
            "[network]\nuplink = \"up0\"\nsubnet = \"100.127.0.0/16\"\nsubnet6 = \"fd12::/64\"\n",
        )
        .unwrap();
        let e = rule("allow tcp 80 100.127.0.0/24")
            .validate(&pool)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("carrier-grade NAT") || e.contains("network.subnet"),
            "{e}"
        );
        // Public addresses are fine; deny rules may cover anything.
        rule("allow tcp 8080 203.0.113.10/32").validate(&c).unwrap();
        rule("allow udp all 2001:db8:1::/48").validate(&c).unwrap();
        rule("deny tcp all 0.0.0.0/0").validate(&c).unwrap();
        rule("deny udp 53 169.254.169.254/32").validate(&c).unwrap();
        // Without an uplink there is nothing to allow.
        let e = rule("allow tcp 443 203.0.113.10/32")
            .validate(&Config::default())
            .unwrap_err();
        assert_eq!(e, TenantRuleError::NoUplink);
        rule("deny tcp 443 203.0.113.10/32")
            .validate(&Config::default())
            .unwrap();
    }

    #[test]
    fn elements_are_ranges_keyed_by_the_tenant_mark() {
        let e = rule("allow tcp 443 203.0.113.0/24").element(5);
        assert_eq!(e.set, "rule_allow4");
        assert_eq!(e.to_nft(), "0x00000005 . tcp . 443 . 203.0.113.0/24");
        let e = rule("deny udp all 2001:db8::/32").element(7);
        assert_eq!(e.set, "rule_deny6");
        assert_eq!(e.to_nft(), "0x00000007 . udp . 0-65535 . 2001:db8::/32");
        let e = rule("deny tcp 8000-8080 198.51.100.7").element(1);
        assert_eq!(e.to_nft(), "0x00000001 . tcp . 8000-8080 . 198.51.100.7");
    }

    #[test]
    fn overlap_needs_same_action_proto_family_ports_and_addresses() {
        let a = rule("deny tcp 400-500 10.0.0.0/16");
        assert!(a.overlaps(&rule("deny tcp 443 10.0.5.0/24")));
        assert!(a.overlaps(&rule("deny tcp all 0.0.0.0/0")));
        assert!(!a.overlaps(&rule("deny tcp 501-600 10.0.0.0/16")));
        assert!(!a.overlaps(&rule("deny udp 443 10.0.0.0/16")));
        assert!(!a.overlaps(&rule("allow tcp 443 10.0.0.0/16")));
        assert!(!a.overlaps(&rule("deny tcp 443 10.1.0.0/16")));
        assert!(!a.overlaps(&rule("deny tcp 443 ::/0")));
    }

    fn any_net() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (any::<u32>(), 0u8..=32)
                .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(a.into(), l).unwrap().trunc())),
            // Bias towards the interesting low and ULA/NAT64 corners too.
            (any::<u128>(), 0u8..=128)
                .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(a.into(), l).unwrap().trunc())),
            (any::<u32>(), 96u8..=128).prop_map(|(a, l)| IpNet::V6(
                Ipv6Net::new(
                    (u128::from(0x0064_ff9b_u32) << 96 | u128::from(a)).into(),
                    l
                )
                .unwrap()
                .trunc()
            )),
            (any::<u32>(), 96u8..=128).prop_map(|(a, l)| IpNet::V6(
                Ipv6Net::new((0xffff_u128 << 32 | u128::from(a)).into(), l)
                    .unwrap()
                    .trunc()
            )),
        ]
    }

    proptest! {
        /// No allow rule that validates overlaps any always-denied range:
        /// neither its first nor its last address is blocked, and no
        /// blocked range starts inside it.
        #[test]
        fn validated_allow_rules_reach_nothing_always_denied(net in any_net(), port in 1u16..) {
            let c = uplinked();
            let r = TenantRule {
                action: RuleAction::Allow,
                proto: Proto::Tcp,
                ports: Some(PortRange::single(port)),
                cidr: net,
            };
            if r.validate(&c).is_ok() {
                prop_assert!(!crate::config::is_blocked(&c, net.network()));
                prop_assert!(!crate::config::is_blocked(&c, net.broadcast()));
                for d in always_denied(&c) {
                    prop_assert!(!net.contains(&d.net.network()), "{} contains {}", net, d.net);
                    prop_assert!(!d.net.contains(&net.network()), "{} in {}", net, d.net);
                }
                prop_assert!(!net.contains(&IpAddr::from(c.network.subnet.network())));
                prop_assert!(!net.contains(&IpAddr::from(c.network.subnet6.network())));
            }
        }

        /// The text form round-trips.
        #[test]
        fn text_form_round_trips(net in any_net(), a in 1u16.., b in 1u16.., all in any::<bool>(), deny in any::<bool>()) {
            let r = TenantRule {
                action: if deny { RuleAction::Deny } else { RuleAction::Allow },
                proto: Proto::Udp,
                ports: (!all).then(|| PortRange { first: a.min(b), last: a.max(b) }),
                cidr: net,
            };
            prop_assert_eq!(r.to_string().parse::<TenantRule>().unwrap(), r);
        }
    }
}
