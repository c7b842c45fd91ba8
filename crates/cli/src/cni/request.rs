//! What a runtime hands the plugin: the `CNI_*` environment and the network
//! configuration on stdin, parsed and checked before anything else runs.

use super::error::{
    CniError, DECODE_FAILURE, INCOMPATIBLE_VERSION, INVALID_CONFIG, INVALID_ENVIRONMENT,
};
use super::version;
use palisade_core::exposure::{Exposure, PortRange};
use palisade_core::policy::Proto;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// The operation a runtime asks for (`CNI_COMMAND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

impl Command {
    pub fn parse(s: &str) -> Result<Command, CniError> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            other => {
                return Err(CniError::new(
                    INVALID_ENVIRONMENT,
                    "invalid CNI_COMMAND",
                    format!(
                        "CNI_COMMAND={other:?} is not one of ADD, DEL, CHECK, STATUS, GC, VERSION"
                    ),
                ))
            }
        })
    }
}

/// The `CNI_*` variables of one invocation.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub container_id: Option<String>,
    pub netns: Option<String>,
    pub ifname: Option<String>,
    pub args: Option<String>,
}

impl Environment {
    pub fn from_process() -> Environment {
        let var = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
        Environment {
            container_id: var("CNI_CONTAINERID"),
            netns: var("CNI_NETNS"),
            ifname: var("CNI_IFNAME"),
            args: var("CNI_ARGS"),
        }
    }

    /// `CNI_CONTAINERID`, required and checked against the spec's pattern.
    pub fn container_id(&self) -> Result<&str, CniError> {
        let id = required(&self.container_id, "CNI_CONTAINERID")?;
        let mut chars = id.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            && id.len() <= 256;
        if !ok {
            return Err(CniError::new(
                INVALID_ENVIRONMENT,
                "invalid CNI_CONTAINERID",
                format!("CNI_CONTAINERID={id:?}: must start with a letter or digit and hold only letters, digits, '_', '.' and '-' (at most 256)"),
            ));
        }
        Ok(id)
    }

    /// `CNI_IFNAME`, required and a valid Linux interface name.
    pub fn ifname(&self) -> Result<&str, CniError> {
        let name = required(&self.ifname, "CNI_IFNAME")?;
        check_ifname(name).map_err(|why| {
            CniError::new(
                INVALID_ENVIRONMENT,
                "invalid CNI_IFNAME",
                format!("CNI_IFNAME={name:?}: {why}"),
            )
        })?;
        Ok(name)
    }

    /// `CNI_NETNS`, required.
    pub fn netns(&self) -> Result<&str, CniError> {
        required(&self.netns, "CNI_NETNS")
    }

    /// `CNI_ARGS` as key/value pairs; malformed pairs are an error.
    pub fn args(&self) -> Result<BTreeMap<String, String>, CniError> {
        let mut out = BTreeMap::new();
        let Some(args) = &self.args else {
            return Ok(out);
        };
        for pair in args.split(';').filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(CniError::new(
                    INVALID_ENVIRONMENT,
                    "invalid CNI_ARGS",
                    format!("CNI_ARGS: {pair:?} is not KEY=VALUE"),
                ));
            };
            out.insert(k.to_string(), v.to_string());
        }
        Ok(out)
    }
}

fn required<'a>(v: &'a Option<String>, name: &str) -> Result<&'a str, CniError> {
    v.as_deref().ok_or_else(|| {
        CniError::new(
            INVALID_ENVIRONMENT,
            format!("{name} is required"),
            format!("the runtime did not set {name}"),
        )
    })
}

/// Interface names palisade accepts from a runtime or a result: what Linux
/// accepts, narrowed to characters that need no quoting anywhere.
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > palisade_core::names::IFNAME_MAX {
        return Err("an interface name has 1 to 15 characters".into());
    }
    if name == "." || name == ".." {
        return Err("not an interface name".into());
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(format!(
            "{c:?} is not allowed (letters, digits, '-', '_', '.')"
        )),
        None => Ok(()),
    }
}

/// The policy a request carries, from the network configuration, its
/// `args`, `CNI_ARGS` and the runtime's `portMappings`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub tenant: Option<String>,
    pub internet: Option<bool>,
    pub allow: Option<Vec<String>>,
    pub exposures: Vec<Exposure>,
}

/// The network configuration (stdin), with palisade's own keys.
#[derive(Debug, Clone)]
pub struct NetConf {
    pub cni_version: String,
    /// The network's name.
    pub name: String,
    pub config_file: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    /// `tenant`, `internet`, `allow` as configured, before `args` and
    /// `CNI_ARGS` override them.
    pub policy: Policy,
    pub args_policy: Policy,
    /// Which of `tenant`, `internet` and `allow` a runtime may set per
    /// container (through `args` or `CNI_ARGS`): none unless the network
    /// configuration's `overridable` lists them, since whoever writes a
    /// job's or pod's arguments is not necessarily trusted with its tenant.
    pub overridable: Vec<String>,
    pub port_mappings: Vec<Exposure>,
    /// The previous plugin's result, passed through unchanged.
    pub prev_result: Option<Value>,
    /// `cni.dev/valid-attachments` (GC): `(container id, ifname)`.
    pub valid_attachments: Option<Vec<(String, String)>>,
}

impl NetConf {
    /// Parses stdin. Only `cniVersion` is needed for `VERSION`; the rest is
    /// checked by the commands that use it.
    pub fn parse(stdin: &[u8]) -> Result<NetConf, CniError> {
        let decode = |why: String| {
            CniError::new(
                DECODE_FAILURE,
                "cannot decode the network configuration",
                why,
            )
        };
        let invalid =
            |why: String| CniError::new(INVALID_CONFIG, "invalid network configuration", why);
        let v: Value = serde_json::from_slice(stdin).map_err(|e| decode(e.to_string()))?;
        let Value::Object(obj) = &v else {
            return Err(decode(
                "the network configuration is not a JSON object".into(),
            ));
        };
        let cni_version = match obj.get("cniVersion") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(decode(format!("cniVersion is {other}, not a string"))),
            None => return Err(invalid("cniVersion is missing".into())),
        };
        if !version::is_supported(&cni_version) {
            return Err(CniError::new(
                INCOMPATIBLE_VERSION,
                "incompatible CNI version",
                format!(
                    "cniVersion {cni_version:?} is not supported; palisade speaks {}",
                    version::SUPPORTED.join(", ")
                ),
            ));
        }
        let name = match obj.get("name") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(decode(format!("name is {other}, not a string"))),
            None => String::new(),
        };
        let path = |key: &str| -> Result<Option<PathBuf>, CniError> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.starts_with('/') => Ok(Some(PathBuf::from(s))),
                Some(other) => Err(invalid(format!(
                    "{key} must be an absolute path, not {other}"
                ))),
            }
        };
        let config_file = path("configFile")?;
        let state_dir = path("stateDir")?;
        let policy = policy_of(&v, "").map_err(invalid)?;
        let overridable = match obj.get("overridable") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|k| match k.as_str() {
                    Some(k @ ("tenant" | "internet" | "allow")) => Ok(k.to_string()),
                    _ => Err(invalid(format!(
                        "overridable holds {k}; it lists \"tenant\", \"internet\" and/or \"allow\""
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(invalid(format!("overridable must be a list, not {other}"))),
        };
        let args_policy = match v.pointer("/args/palisade") {
            None => Policy::default(),
            Some(a @ Value::Object(_)) => policy_of(a, "args.palisade.").map_err(invalid)?,
            Some(other) => {
                return Err(invalid(format!(
                    "args.palisade must be an object, not {other}"
                )))
            }
        };
        let port_mappings = match v.pointer("/runtimeConfig/portMappings") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .map(port_mapping)
                .collect::<Result<_, _>>()
                .map_err(invalid)?,
            Some(other) => {
                return Err(invalid(format!(
                    "runtimeConfig.portMappings must be a list, not {other}"
                )))
            }
        };
        let prev_result = match obj.get("prevResult") {
            None | Some(Value::Null) => None,
            Some(r @ Value::Object(_)) => Some(r.clone()),
            Some(other) => return Err(decode(format!("prevResult is {other}, not an object"))),
        };
        let valid_attachments = match obj.get("cni.dev/valid-attachments") {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) => Some(
                list.iter()
                    .map(|a| {
                        let field = |k| a.get(k).and_then(Value::as_str).map(str::to_string);
                        match (field("containerID"), field("ifname")) {
                            (Some(id), Some(ifname)) => Ok((id, ifname)),
                            _ => Err(decode(format!(
                                "cni.dev/valid-attachments: {a} lacks containerID or ifname"
                            ))),
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(other) => {
                return Err(decode(format!(
                    "cni.dev/valid-attachments is {other}, not a list"
                )))
            }
        };
        Ok(NetConf {
            cni_version,
            name,
            config_file,
            state_dir,
            policy,
            args_policy,
            overridable,
            port_mappings,
            prev_result,
            valid_attachments,
        })
    }

    /// The network name, required by every command but `VERSION`.
    pub fn network(&self) -> Result<&str, CniError> {
        let n = &self.name;
        let mut chars = n.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(CniError::new(
                INVALID_CONFIG,
                "invalid network name",
                format!("name {n:?} must start with a letter or digit and hold only letters, digits, '_', '.' and '-'"),
            ));
        }
        Ok(n)
    }

    /// The effective policy: `CNI_ARGS` over `args.palisade` over the
    /// network configuration (the palisade configuration's tenant defaults
    /// apply after that, in the engine).
    pub fn effective_policy(
        &self,
        cni_args: &BTreeMap<String, String>,
    ) -> Result<Policy, CniError> {
        let invalid = |why: String| CniError::new(INVALID_CONFIG, "invalid CNI_ARGS", why);
        let ignore_unknown = cni_args
            .get("IgnoreUnknown")
            .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        let mut from_env = Policy::default();
        for (k, v) in cni_args {
            match k.as_str() {
                "PALISADE_TENANT" => from_env.tenant = Some(v.clone()),
                "PALISADE_INTERNET" => {
                    from_env.internet = Some(match v.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(invalid(format!("PALISADE_INTERNET={v:?}: use true or false"))),
                    })
                }
                "PALISADE_ALLOW" => {
                    from_env.allow = Some(
                        v.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect(),
                    )
                }
                "IgnoreUnknown" => {}
                _ if ignore_unknown => {}
                _ => {
                    return Err(CniError::new(
                        INVALID_CONFIG,
                        "unknown CNI_ARGS key",
                        format!("CNI_ARGS key {k:?} is not one palisade knows (PALISADE_TENANT, PALISADE_INTERNET, PALISADE_ALLOW); pass IgnoreUnknown=1 to ignore it"),
                    ))
                }
            }
        }
        for (source, p) in [
            ("CNI_ARGS", &from_env),
            ("args.palisade", &self.args_policy),
        ] {
            let set = [
                ("tenant", p.tenant.is_some()),
                ("internet", p.internet.is_some()),
                ("allow", p.allow.is_some()),
            ];
            if let Some((key, _)) = set
                .iter()
                .find(|(key, given)| *given && !self.overridable.iter().any(|o| o == key))
            {
                return Err(CniError::new(
                    INVALID_CONFIG,
                    format!("{source} may not set {key}"),
                    format!("the network configuration does not let a runtime set {key} per container; list it in \"overridable\" to allow that"),
                ));
            }
        }
        let layers = [&from_env, &self.args_policy, &self.policy];
        Ok(Policy {
            tenant: layers.iter().find_map(|p| p.tenant.clone()),
            internet: layers.iter().find_map(|p| p.internet),
            allow: layers.iter().find_map(|p| p.allow.clone()),
            exposures: self.port_mappings.clone(),
        })
    }
}

/// `tenant`, `internet` and `allow` of one JSON object.
fn policy_of(v: &Value, prefix: &str) -> Result<Policy, String> {
    let mut p = Policy::default();
    match v.get("tenant") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => p.tenant = Some(s.clone()),
        Some(other) => return Err(format!("{prefix}tenant must be a string, not {other}")),
    }
    match v.get("internet") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => p.internet = Some(*b),
        Some(other) => {
            return Err(format!(
                "{prefix}internet must be true or false, not {other}"
            ))
        }
    }
    match v.get("allow") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            let mut rules = Vec::new();
            for r in list {
                match r {
                    Value::String(s) => rules.push(s.clone()),
                    other => {
                        return Err(format!(
                            "{prefix}allow holds {other}; use strings like \"tcp:443\""
                        ))
                    }
                }
            }
            p.allow = Some(rules);
        }
        Some(other) => return Err(format!("{prefix}allow must be a list, not {other}")),
    }
    Ok(p)
}

/// One `portMappings` entry (the CNI convention): `hostPort`,
/// `containerPort`, `protocol` (tcp, udp) and an optional `hostIP`.
fn port_mapping(v: &Value) -> Result<Exposure, String> {
    let port = |k: &str| -> Result<u16, String> {
        v.get(k)
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("portMappings entry {v}: {k} must be a port 1-65535"))
    };
    let host = port("hostPort")?;
    let guest = port("containerPort")?;
    let proto = match v.get("protocol").and_then(Value::as_str).unwrap_or("tcp") {
        p if p.eq_ignore_ascii_case("tcp") => Proto::Tcp,
        p if p.eq_ignore_ascii_case("udp") => Proto::Udp,
        p => {
            return Err(format!(
                "portMappings entry {v}: protocol {p:?} is not supported (tcp, udp)"
            ))
        }
    };
    let host_ip = match v.get("hostIP").and_then(Value::as_str) {
        None | Some("") | Some("0.0.0.0") | Some("::") => None,
        Some(a) => Some(
            a.parse::<IpAddr>()
                .map_err(|_| format!("portMappings entry {v}: hostIP {a:?} is not an address"))?,
        ),
    };
    let range = |p| PortRange { first: p, last: p };
    Exposure::new(proto, host_ip, range(host), range(guest))
        .map_err(|e| format!("portMappings entry {v}: {e}"))
}

/// The gateways the previous result gives the container interface.
pub fn gateways_for(prev: &Value, ifname: &str) -> Vec<IpAddr> {
    ips_for(prev, ifname)
        .filter_map(|ip| ip.get("gateway")?.as_str()?.parse().ok())
        .collect()
}

/// The `ips` entries of a previous result that belong to `ifname`.
fn ips_for<'a>(prev: &'a Value, ifname: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    let interfaces = prev.get("interfaces").and_then(Value::as_array);
    let ours = move |index: u64| -> bool {
        interfaces
            .and_then(|l| l.get(index as usize))
            .is_some_and(|i| {
                i.get("name").and_then(Value::as_str) == Some(ifname)
                    && i.get("sandbox")
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty())
            })
    };
    prev.get("ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |ip| match ip.get("interface") {
            None | Some(Value::Null) => true,
            Some(i) => i.as_u64().is_some_and(ours),
        })
}

/// The container interface's addresses in a previous result: the `ips`
/// whose `interface` is the entry named `ifname` inside the sandbox (or
/// that name no interface, as results before 0.3.0 did not).
pub fn addresses_for(prev: &Value, ifname: &str) -> Result<Vec<IpAddr>, CniError> {
    let invalid = |why: String| CniError::new(INVALID_CONFIG, "invalid prevResult", why);
    let mut out = Vec::new();
    for ip in ips_for(prev, ifname) {
        let Some(cidr) = ip.get("address").and_then(Value::as_str) else {
            return Err(invalid(format!("ips entry {ip} has no address")));
        };
        let addr = cidr.split('/').next().unwrap_or_default();
        out.push(addr.parse().map_err(|_| {
            invalid(format!(
                "ips entry {ip}: {cidr:?} is not an address in CIDR form"
            ))
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: &str) -> Result<NetConf, CniError> {
        NetConf::parse(
            format!(r#"{{"cniVersion":"1.0.0","name":"net1","type":"palisade"{extra}}}"#)
                .as_bytes(),
        )
    }

    #[test]
    fn versions_and_decoding_map_to_the_spec_codes() {
        assert_eq!(NetConf::parse(b"{").unwrap_err().code, DECODE_FAILURE);
        assert_eq!(NetConf::parse(b"[]").unwrap_err().code, DECODE_FAILURE);
        assert_eq!(
            NetConf::parse(b"{\"name\":\"n\"}").unwrap_err().code,
            INVALID_CONFIG
        );
        let old = NetConf::parse(br#"{"cniVersion":"0.2.0","name":"n"}"#).unwrap_err();
        assert_eq!(old.code, INCOMPATIBLE_VERSION);
        assert!(old.details.contains("1.1.0"));
        assert_eq!(
            conf(r#","internet":"yes""#).unwrap_err().code,
            INVALID_CONFIG
        );
        assert_eq!(
            conf(r#","configFile":"relative.toml""#).unwrap_err().code,
            INVALID_CONFIG
        );
    }

    #[test]
    fn cni_args_override_args_which_override_the_network_configuration() {
        let c = conf(
            r#","tenant":"base","internet":false,"allow":["tcp:80"],"overridable":["tenant","internet","allow"],"args":{"palisade":{"tenant":"fromargs","internet":true}}"#,
        )
        .unwrap();
        let none = BTreeMap::new();
        let p = c.effective_policy(&none).unwrap();
        assert_eq!(p.tenant.as_deref(), Some("fromargs"));
        assert_eq!(p.internet, Some(true));
        assert_eq!(p.allow, Some(vec!["tcp:80".to_string()]));
        let env: BTreeMap<String, String> = [
            ("PALISADE_TENANT", "fromenv"),
            ("PALISADE_ALLOW", "tcp:443,udp:53"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = c.effective_policy(&env).unwrap();
        assert_eq!(p.tenant.as_deref(), Some("fromenv"));
        assert_eq!(
            p.allow,
            Some(vec!["tcp:443".to_string(), "udp:53".to_string()])
        );
    }

    #[test]
    fn overrides_need_the_network_configuration_to_allow_them() {
        let env: BTreeMap<String, String> = [("PALISADE_TENANT", "victim")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let closed = conf(r#","tenant":"base""#).unwrap();
        let e = closed.effective_policy(&env).unwrap_err();
        assert_eq!(e.code, INVALID_CONFIG);
        assert!(e.details.contains("overridable"), "{e}");
        let by_args = conf(r#","tenant":"base","args":{"palisade":{"internet":true}}"#).unwrap();
        assert!(by_args.effective_policy(&BTreeMap::new()).is_err());
        let open = conf(r#","tenant":"base","overridable":["tenant"]"#).unwrap();
        assert_eq!(
            open.effective_policy(&env).unwrap().tenant.as_deref(),
            Some("victim")
        );
        assert_eq!(
            conf(r#","overridable":["mac"]"#).unwrap_err().code,
            INVALID_CONFIG
        );
    }

    #[test]
    fn unknown_cni_args_need_ignore_unknown() {
        let c = conf("").unwrap();
        let env = |s: &str| Environment {
            args: Some(s.into()),
            ..Default::default()
        };
        let args = env("K8S_POD_NAME=web").args().unwrap();
        assert_eq!(c.effective_policy(&args).unwrap_err().code, INVALID_CONFIG);
        let args = env("IgnoreUnknown=1;K8S_POD_NAME=web").args().unwrap();
        assert!(c.effective_policy(&args).is_ok());
        assert_eq!(env("novalue").args().unwrap_err().code, INVALID_ENVIRONMENT);
    }

    #[test]
    fn port_mappings_become_exposures() {
        let c = conf(
            r#","runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},{"hostPort":53,"containerPort":5353,"protocol":"UDP","hostIP":"192.0.2.1"}]}"#,
        )
        .unwrap();
        let shown: Vec<String> = c.port_mappings.iter().map(|e| e.to_string()).collect();
        assert_eq!(shown.len(), 2);
        assert!(shown[0].contains("8080"), "{shown:?}");
        assert!(shown[1].contains("192.0.2.1"), "{shown:?}");
        let bad = conf(r#","runtimeConfig":{"portMappings":[{"hostPort":0,"containerPort":80}]}"#);
        assert_eq!(bad.unwrap_err().code, INVALID_CONFIG);
        let sctp = conf(
            r#","runtimeConfig":{"portMappings":[{"hostPort":1,"containerPort":1,"protocol":"sctp"}]}"#,
        );
        assert!(sctp.unwrap_err().details.contains("sctp"));
    }

    #[test]
    fn addresses_are_those_of_the_container_interface() {
        let prev: Value = serde_json::from_str(
            r#"{"interfaces":[{"name":"cni0","mac":"aa:bb:cc:dd:ee:ff"},{"name":"veth1"},{"name":"eth0","sandbox":"/run/netns/x"}],
                "ips":[{"address":"10.89.0.5/24","gateway":"10.89.0.1","interface":2},
                       {"address":"fd89::5/64","interface":2},
                       {"address":"10.99.0.1/24","interface":0}]}"#,
        )
        .unwrap();
        let got = addresses_for(&prev, "eth0").unwrap();
        assert_eq!(
            gateways_for(&prev, "eth0"),
            vec!["10.89.0.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            got,
            vec![
                "10.89.0.5".parse::<IpAddr>().unwrap(),
                "fd89::5".parse().unwrap()
            ]
        );
        assert!(addresses_for(&prev, "eth1").unwrap().is_empty());
        let broken: Value = serde_json::from_str(r#"{"ips":[{"address":"nonsense"}]}"#).unwrap();
        assert_eq!(
            addresses_for(&broken, "eth0").unwrap_err().code,
            INVALID_CONFIG
        );
    }

    #[test]
    fn environment_is_checked() {
        let e = Environment {
            container_id: Some("-bad".into()),
            ifname: Some("way-too-long-name0".into()),
            ..Default::default()
        };
        assert_eq!(e.container_id().unwrap_err().code, INVALID_ENVIRONMENT);
        assert_eq!(e.ifname().unwrap_err().code, INVALID_ENVIRONMENT);
        assert!(e.netns().unwrap_err().msg.contains("CNI_NETNS"));
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("a\"b").is_err());
        assert_eq!(Command::parse("FOO").unwrap_err().code, INVALID_ENVIRONMENT);
    }
}
