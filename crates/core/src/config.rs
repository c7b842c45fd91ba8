//! The TOML configuration: parsed strictly (unknown keys are errors) and
//! validated as a whole, so a mistake is reported at load with the key, the
//! value and why, before anything touches the kernel.

use crate::names::{self, TenantName, IFNAME_MAX};
use crate::policy::{self, PortRule};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: {key} = {value:?}: {why}")]
    Invalid {
        file: String,
        key: String,
        value: String,
        why: String,
    },
}

/// How sandboxes are attached to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One tap/veth per sandbox, host routes, no shared L2.
    Routed,
    /// Isolated ports of bridges of `sandboxes_per_bridge`, filtered in the
    /// bridge family. The default: the host keeps one route per bridge
    /// rather than one per sandbox, so attaching stays flat at scale.
    Bridge,
}

impl Mode {
    /// The name the configuration file and the store use.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Routed => "routed",
            Mode::Bridge => "bridge",
        }
    }

    /// The mode named `name` ([`Mode::name`]).
    pub fn from_name(name: &str) -> Option<Mode> {
        [Mode::Routed, Mode::Bridge]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which sandboxes may talk to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InterSandbox {
    Deny,
    SameTenant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    pub subnet: Ipv4Net,
    pub subnet6: Ipv6Net,
    /// The mode in force. When the file does not name one
    /// (`mode_configured` false), the engine replaces it with the mode the
    /// store recorded for the sandboxes already there.
    pub mode: Mode,
    /// True when the configuration names the mode ([`Config::set_mode`]).
    pub mode_configured: bool,
    pub uplink: Option<String>,
    /// Bridge mode: sandboxes per bridge ([`crate::bridge_shard`]).
    pub sandboxes_per_bridge: u32,
    /// Veths and bridges pass packets of up to 512 KiB in one piece (the
    /// kernel's BIG TCP) instead of 64 KiB.
    pub big_tcp: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolationConfig {
    pub inter_sandbox: InterSandbox,
    pub blocked: Vec<IpNet>,
}

/// Defaults applied to the sandboxes of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantDefaults {
    pub internet: bool,
    pub allow: Vec<PortRule>,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub network: NetworkConfig,
    pub isolation: IsolationConfig,
    pub tenants: BTreeMap<TenantName, TenantDefaults>,
    /// The daemon's settings (`[server]`, `[security]`, `[audit]`).
    pub server: crate::server_config::ServerConfig,
}

pub const DEFAULT_SUBNET: &str = "10.200.0.0/16";
/// `fd` + the ASCII of "palis" as the ULA global id: fixed, so the default
/// does not change between hosts or runs.
pub const DEFAULT_SUBNET6: &str = "fd70:616c:6973::/48";

impl Config {
    /// Names the mode, as `network.mode` in the file does: it then
    /// overrides the mode the store recorded, which the engine allows only
    /// while no sandbox is attached.
    pub fn set_mode(&mut self, mode: Mode) {
        self.network.mode = mode;
        self.network.mode_configured = true;
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            network: NetworkConfig {
                subnet: DEFAULT_SUBNET.parse().expect("static"),
                subnet6: DEFAULT_SUBNET6.parse().expect("static"),
                mode: Mode::Bridge,
                mode_configured: false,
                uplink: None,
                sandboxes_per_bridge: crate::bridge_shard::DEFAULT_SANDBOXES_PER_BRIDGE,
                big_tcp: true,
            },
            isolation: IsolationConfig {
                inter_sandbox: InterSandbox::Deny,
                blocked: Vec::new(),
            },
            tenants: BTreeMap::new(),
            server: crate::server_config::ServerConfig::default(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    isolation: RawIsolation,
    #[serde(default)]
    tenants: BTreeMap<String, RawTenant>,
    #[serde(default)]
    server: crate::server_config::RawServer,
    #[serde(default)]
    security: crate::server_config::RawSecurity,
    #[serde(default)]
    audit: crate::server_config::RawAudit,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    subnet: Option<String>,
    subnet6: Option<String>,
    mode: Option<Mode>,
    uplink: Option<String>,
    sandboxes_per_bridge: Option<u32>,
    big_tcp: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIsolation {
    inter_sandbox: Option<InterSandbox>,
    #[serde(default)]
    blocked: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    #[serde(default)]
    internet: bool,
    #[serde(default)]
    allow: Vec<String>,
}

impl Config {
    /// Parses and validates TOML text. `file` names the source in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_string(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        Validator { file }.validate(raw)
    }

    /// Gateway address of the IPv4 pool (its first host address).
    pub fn gateway4(&self) -> std::net::Ipv4Addr {
        let n = u32::from(self.network.subnet.network());
        std::net::Ipv4Addr::from(n + 1)
    }

    /// Defaults of a tenant (empty when it has no `[tenants.NAME]` section).
    pub fn tenant_defaults(&self, tenant: &TenantName) -> TenantDefaults {
        self.tenants.get(tenant).cloned().unwrap_or_default()
    }
}

struct Validator<'a> {
    file: &'a str,
}

impl Validator<'_> {
    fn invalid(&self, key: &str, value: impl ToString, why: impl ToString) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            why: why.to_string(),
        }
    }

    fn validate(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let defaults = Config::default();
        let subnet = match raw.network.subnet {
            Some(s) => self.parse_v4_pool(&s)?,
            None => defaults.network.subnet,
        };
        let subnet6 = match raw.network.subnet6 {
            Some(s) => self.parse_v6_pool(&s, &subnet)?,
            None => defaults.network.subnet6,
        };
        let uplink = match raw.network.uplink {
            Some(u) => Some(self.check_uplink(&u)?),
            None => None,
        };
        let sandboxes_per_bridge = match raw.network.sandboxes_per_bridge {
            Some(n) => self.check_sandboxes_per_bridge(n)?,
            None => defaults.network.sandboxes_per_bridge,
        };
        let mut blocked = Vec::new();
        for (i, s) in raw.isolation.blocked.iter().enumerate() {
            let key = format!("isolation.blocked[{i}]");
            let net = self.parse_cidr(&key, s)?;
            if net.contains(&IpNet::V4(subnet)) || IpNet::V4(subnet).contains(&net) {
                return Err(self.invalid(
                    &key,
                    s,
                    format!(
                        "overlaps the sandbox pool network.subnet = {subnet}; sandboxes must reach their gateway and each other there"
                    ),
                ));
            }
            if net.contains(&IpNet::V6(subnet6)) || IpNet::V6(subnet6).contains(&net) {
                return Err(self.invalid(
                    &key,
                    s,
                    format!("overlaps the sandbox pool network.subnet6 = {subnet6}"),
                ));
            }
            blocked.push(net);
        }
        let mut tenants = BTreeMap::new();
        for (name, t) in raw.tenants {
            let tenant = TenantName::new(&name)
                .map_err(|e| self.invalid(&format!("tenants.{name}"), &name, e))?;
            let mut allow = Vec::new();
            for (i, a) in t.allow.iter().enumerate() {
                let rule: PortRule = a
                    .parse()
                    .map_err(|e| self.invalid(&format!("tenants.{name}.allow[{i}]"), a, e))?;
                if !allow.contains(&rule) {
                    allow.push(rule);
                }
            }
            if !allow.is_empty() && !t.internet {
                return Err(self.invalid(
                    &format!("tenants.{name}.allow"),
                    t.allow.join(","),
                    "allow narrows internet egress; set internet = true for this tenant too",
                ));
            }
            if t.internet && uplink.is_none() {
                return Err(self.invalid(
                    &format!("tenants.{name}.internet"),
                    "true",
                    "internet egress needs network.uplink (the host interface to masquerade through)",
                ));
            }
            tenants.insert(
                tenant,
                TenantDefaults {
                    internet: t.internet,
                    allow,
                },
            );
        }
        Ok(Config {
            network: NetworkConfig {
                subnet,
                subnet6,
                mode: raw.network.mode.unwrap_or(defaults.network.mode),
                mode_configured: raw.network.mode.is_some(),
                uplink,
                sandboxes_per_bridge,
                big_tcp: raw.network.big_tcp.unwrap_or(defaults.network.big_tcp),
            },
            isolation: IsolationConfig {
                inter_sandbox: raw
                    .isolation
                    .inter_sandbox
                    .unwrap_or(defaults.isolation.inter_sandbox),
                blocked,
            },
            tenants,
            server: crate::server_config::validate(raw.server, raw.security, raw.audit)
                .map_err(|(key, value, why)| self.invalid(&key, value, why))?,
        })
    }

    fn parse_cidr(&self, key: &str, s: &str) -> Result<IpNet, ConfigError> {
        let net: IpNet = s
            .parse()
            .map_err(|_| self.invalid(key, s, "not a CIDR (e.g. 10.0.0.0/8 or fd00::/8)"))?;
        if net.trunc() != net {
            return Err(self.invalid(
                key,
                s,
                format!("has host bits set; did you mean {}?", net.trunc()),
            ));
        }
        Ok(net)
    }

    fn parse_v4_pool(&self, s: &str) -> Result<Ipv4Net, ConfigError> {
        let key = "network.subnet";
        let net = match self.parse_cidr(key, s)? {
            IpNet::V4(n) => n,
            IpNet::V6(_) => return Err(self.invalid(key, s, "must be an IPv4 CIDR")),
        };
        if !(8..=29).contains(&net.prefix_len()) {
            return Err(self.invalid(
                key,
                s,
                "the prefix length must be from /8 to /29 (room for the network, gateway, broadcast and sandboxes)",
            ));
        }
        for reserved in reserved_v4() {
            if net.contains(&reserved.0) || reserved.0.contains(&net) {
                return Err(self.invalid(
                    key,
                    s,
                    format!(
                        "overlaps {} ({}), which sandboxes must never reach",
                        reserved.0, reserved.1
                    ),
                ));
            }
        }
        Ok(net)
    }

    fn parse_v6_pool(&self, s: &str, subnet: &Ipv4Net) -> Result<Ipv6Net, ConfigError> {
        let key = "network.subnet6";
        let net = match self.parse_cidr(key, s)? {
            IpNet::V6(n) => n,
            IpNet::V4(_) => return Err(self.invalid(key, s, "must be an IPv6 CIDR")),
        };
        let ula: Ipv6Net = "fc00::/7".parse().expect("static");
        if !ula.contains(&net) {
            return Err(self.invalid(key, s, "must be a unique local (ULA) range inside fc00::/7"));
        }
        if net.contains(&policy::METADATA_V6) {
            return Err(self.invalid(
                key,
                s,
                format!("contains the metadata address {}", policy::METADATA_V6),
            ));
        }
        // Sandbox n gets host n of both pools, so the IPv6 pool must have at
        // least as many host bits as the IPv4 pool.
        let v4_host_bits = 32 - subnet.prefix_len();
        if 128 - net.prefix_len() < v4_host_bits {
            return Err(self.invalid(
                key,
                s,
                format!(
                    "too small for network.subnet = {subnet}: needs a prefix of /{} or shorter",
                    128 - v4_host_bits
                ),
            ));
        }
        Ok(net)
    }

    fn check_sandboxes_per_bridge(&self, n: u32) -> Result<u32, ConfigError> {
        use crate::bridge_shard::{MAX_SANDBOXES_PER_BRIDGE, MIN_SANDBOXES_PER_BRIDGE};
        if !n.is_power_of_two()
            || !(MIN_SANDBOXES_PER_BRIDGE..=MAX_SANDBOXES_PER_BRIDGE).contains(&n)
        {
            return Err(self.invalid(
                "network.sandboxes_per_bridge",
                n,
                format!(
                    "must be a power of two from {MIN_SANDBOXES_PER_BRIDGE} to {MAX_SANDBOXES_PER_BRIDGE} \
                     (each bridge holds an aligned slice of the pools, and a Linux bridge takes at most 1023 ports)"
                ),
            ));
        }
        Ok(n)
    }

    fn check_uplink(&self, name: &str) -> Result<String, ConfigError> {
        let key = "network.uplink";
        let ok = !name.is_empty()
            && name.len() <= IFNAME_MAX
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(self.invalid(
                key,
                name,
                "not an interface name (1-15 characters of A-Z, a-z, 0-9, '-', '_', '.')",
            ));
        }
        if name.starts_with(names::IFACE_PREFIX) {
            return Err(self.invalid(
                key,
                name,
                "names starting with pal- belong to palisade's sandboxes",
            ));
        }
        if name.starts_with(names::BRIDGE_PREFIX) {
            return Err(self.invalid(
                key,
                name,
                "names starting with palisade belong to palisade's bridges",
            ));
        }
        Ok(name.to_string())
    }
}

/// IPv4 ranges a pool may never overlap: sandboxes must never reach these,
/// yet must reach their own pool.
fn reserved_v4() -> Vec<(Ipv4Net, &'static str)> {
    vec![
        ("0.0.0.0/8".parse().expect("static"), "this network"),
        ("127.0.0.0/8".parse().expect("static"), "loopback"),
        (
            "169.254.0.0/16".parse().expect("static"),
            "link-local and the metadata service",
        ),
        ("224.0.0.0/4".parse().expect("static"), "multicast"),
        (
            "240.0.0.0/4".parse().expect("static"),
            "reserved and broadcast",
        ),
    ]
}

/// True if `addr` is one of the always-denied destinations or in `blocked`.
pub fn is_blocked(config: &Config, addr: IpAddr) -> bool {
    let user = config.isolation.blocked.iter().any(|n| n.contains(&addr));
    user || match addr {
        IpAddr::V4(a) => policy::builtin_blocked_v4().iter().any(|n| n.contains(&a)),
        IpAddr::V6(a) => {
            policy::builtin_blocked_v6().iter().any(|n| n.contains(&a))
                || policy::nat64_forms(&policy::builtin_blocked_v4())
                    .iter()
                    .any(|n| n.contains(&a))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::from_toml("test.toml", text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::from_toml("x", "").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.gateway4().to_string(), "10.200.0.1");
        assert_eq!(c.network.mode, Mode::Bridge);
        assert!(!c.network.mode_configured);
    }

    #[test]
    fn a_named_mode_is_marked_as_configured() {
        let c = Config::from_toml("x", "[network]\nmode = \"routed\"").unwrap();
        assert_eq!(c.network.mode, Mode::Routed);
        assert!(c.network.mode_configured);
        let c = Config::from_toml("x", "[network]\nmode = \"bridge\"").unwrap();
        assert_eq!(c.network.mode, Mode::Bridge);
        assert!(c.network.mode_configured);
        let mut set = Config::default();
        set.set_mode(Mode::Routed);
        assert_eq!(
            (set.network.mode, set.network.mode_configured),
            (Mode::Routed, true)
        );
    }

    #[test]
    fn mode_names_round_trip() {
        for mode in [Mode::Routed, Mode::Bridge] {
            assert_eq!(Mode::from_name(mode.name()), Some(mode));
            assert_eq!(mode.to_string(), mode.name());
        }
        assert_eq!(Mode::from_name("mesh"), None);
    }

    #[test]
    fn full_file_parses() {
        let c = Config::from_toml(
            "x",
            r#"
            [network]
            subnet = "10.50.0.0/24"
            subnet6 = "fd12:3456::/64"
            mode = "bridge"
            uplink = "eth0"
            sandboxes_per_bridge = 64
            big_tcp = false
            [isolation]
            inter_sandbox = "same-tenant"
            blocked = ["203.0.113.0/24", "2001:db8:dead::/48"]
            [tenants.acme]
            internet = true
            allow = ["tcp:443", "udp:53"]
            "#,
        )
        .unwrap();
        assert_eq!(c.network.mode, Mode::Bridge);
        assert_eq!(c.network.sandboxes_per_bridge, 64);
        assert!(!c.network.big_tcp);
        assert!(Config::default().network.big_tcp);
        assert_eq!(c.isolation.inter_sandbox, InterSandbox::SameTenant);
        assert_eq!(c.isolation.blocked.len(), 2);
        let acme = c.tenant_defaults(&TenantName::new("acme").unwrap());
        assert!(acme.internet);
        assert_eq!(acme.allow.len(), 2);
    }

    #[test]
    fn mistakes_name_key_value_and_reason() {
        let cases = [
            ("[network]\nsubnett = \"10.0.0.0/8\"", "subnett"),
            ("[nework]\n", "nework"),
            (
                "[network]\nsubnet = \"10.0.0.0/33\"",
                "network.subnet = \"10.0.0.0/33\": not a CIDR",
            ),
            ("[network]\nsubnet = \"10.0.0.1/8\"", "host bits"),
            ("[network]\nsubnet = \"169.254.0.0/16\"", "metadata"),
            ("[network]\nsubnet = \"127.0.0.0/16\"", "loopback"),
            ("[network]\nsubnet = \"10.0.0.0/30\"", "prefix length"),
            ("[network]\nsubnet = \"fd00::/8\"", "must be an IPv4"),
            ("[network]\nsubnet6 = \"2001:db8::/48\"", "unique local"),
            ("[network]\nsubnet6 = \"fd00::/8\"", "metadata"),
            ("[network]\nsubnet6 = \"fd00:1::/120\"", "too small"),
            ("[network]\nmode = \"mesh\"", "mode"),
            ("[network]\nuplink = \"eth0; rm\"", "not an interface name"),
            ("[network]\nuplink = \"pal-1\"", "belong to palisade"),
            ("[network]\nuplink = \"palisade3\"", "palisade's bridges"),
            (
                "[network]\nsandboxes_per_bridge = 100",
                "network.sandboxes_per_bridge = \"100\": must be a power of two",
            ),
            ("[network]\nsandboxes_per_bridge = 1024", "1023 ports"),
            ("[network]\nsandboxes_per_bridge = 2", "from 4 to 512"),
            ("[isolation]\ninter_sandbox = \"all\"", "inter_sandbox"),
            (
                "[isolation]\nblocked = [\"10.200.0.0/24\"]",
                "overlaps the sandbox pool",
            ),
            (
                "[isolation]\nblocked = [\"10.0.0.0/8\"]",
                "overlaps the sandbox pool",
            ),
            (
                "[isolation]\nblocked = [\"nope\"]",
                "isolation.blocked[0] = \"nope\"",
            ),
            ("[tenants.Acme]\n", "tenants.Acme"),
            (
                "[tenants.acme]\nallow = [\"tcp:443\"]",
                "set internet = true",
            ),
            ("[tenants.acme]\ninternet = true", "needs network.uplink"),
            (
                "[network]\nuplink=\"e\"\n[tenants.acme]\ninternet = true\nallow = [\"tcp:0\"]",
                "tenants.acme.allow[0]",
            ),
            ("[tenants.acme]\ncolour = 1", "colour"),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(e.contains(want), "{text:?} gave {e:?}, wanted {want:?}");
            assert!(e.starts_with("test.toml"), "{e}");
        }
    }

    #[test]
    fn example_file_parses_to_the_defaults() {
        let text = include_str!("../../../palisade.example.toml");
        assert_eq!(
            Config::from_toml("palisade.example.toml", text).unwrap(),
            Config::default()
        );
        // Its commented examples are valid too.
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.contains(" = ") || r.starts_with('['))
                    .unwrap_or(l)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let c = Config::from_toml("uncommented", &uncommented).unwrap();
        assert_eq!(c.network.uplink.as_deref(), Some("eth0"));
        assert_eq!(c.isolation.blocked.len(), 2);
        assert_eq!(c.tenants.len(), 1);
    }

    #[test]
    fn blocked_lookup() {
        let c = Config::default();
        for a in [
            "169.254.169.254",
            "10.1.2.3",
            "::1",
            "fd00:ec2::254",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "ff02::1",
        ] {
            assert!(is_blocked(&c, a.parse().unwrap()), "{a}");
        }
        for a in ["203.0.113.10", "2001:db8::10", "8.8.8.8"] {
            assert!(!is_blocked(&c, a.parse().unwrap()), "{a}");
        }
    }
}
