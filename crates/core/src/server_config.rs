//! The daemon's settings (`[server]`, `[security]` and `[audit]` in the
//! configuration file): where it listens, the security policy it starts
//! with, and how long audit records are kept. Parsing and validation only.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the API listens and how it logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The Unix socket; `None` means `<state dir>/palisade.sock`.
    pub socket: Option<PathBuf>,
    /// Permission bits of the Unix socket.
    pub socket_mode: u32,
    /// Optional TCP listener.
    pub listen: Option<SocketAddr>,
    /// Certificate chain and key (PEM) for the TCP listener.
    pub tls: Option<TlsFiles>,
    /// Plain HTTP on TCP: only on a loopback address, and only when set.
    pub allow_plain_tcp: bool,
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    pub security: SecurityPolicy,
    pub audit: AuditSettings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// How long audit records are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditSettings {
    /// Records older than this many days are pruned (behind a signed
    /// checkpoint); `None` keeps every record.
    pub retention_days: Option<u32>,
}

/// The security policy: password rules, session lifetimes, lockout and
/// rate limit. The file gives the starting values; an admin may change
/// them through the API, and the store then holds the policy in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityPolicy {
    /// Shortest password accepted, in characters.
    pub password_min_length: u32,
    /// How many of the classes lower case, upper case, digit and other a
    /// password must use.
    pub password_min_classes: u32,
    /// Lifetime of an access token.
    pub access_token_minutes: u32,
    /// Lifetime of a refresh token.
    pub refresh_token_hours: u32,
    /// Failed logins in a row that lock an account name.
    pub lockout_threshold: u32,
    /// How long a locked account name stays locked.
    pub lockout_minutes: u32,
    /// Requests per minute one client (an IP address, or a local user on the
    /// Unix socket) may make.
    pub rate_limit_per_minute: u32,
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        SecurityPolicy {
            password_min_length: 12,
            password_min_classes: 3,
            access_token_minutes: 15,
            refresh_token_hours: 24,
            lockout_threshold: 5,
            lockout_minutes: 15,
            rate_limit_per_minute: 600,
        }
    }
}

/// A policy value out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value}: {why}")]
pub struct PolicyError {
    pub field: &'static str,
    pub value: u64,
    pub why: String,
}

/// A password the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is {length} characters long; the policy asks for at least {min}")]
    TooShort { length: usize, min: u32 },
    #[error("the password uses {used} of the classes lower case, upper case, digit and other; the policy asks for {min}")]
    TooFewClasses { used: u32, min: u32 },
    #[error("the password is longer than 1024 characters")]
    TooLong,
}

impl SecurityPolicy {
    /// Every field within its range.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let check = |field: &'static str, value: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&value) {
                Ok(())
            } else {
                Err(PolicyError {
                    field,
                    value: value.into(),
                    why: format!("must be between {lo} and {hi}"),
                })
            }
        };
        check("password_min_length", self.password_min_length, 8, 128)?;
        check("password_min_classes", self.password_min_classes, 1, 4)?;
        check("access_token_minutes", self.access_token_minutes, 1, 1440)?;
        check("refresh_token_hours", self.refresh_token_hours, 1, 24 * 90)?;
        check("lockout_threshold", self.lockout_threshold, 1, 100)?;
        check("lockout_minutes", self.lockout_minutes, 1, 24 * 60)?;
        check(
            "rate_limit_per_minute",
            self.rate_limit_per_minute,
            1,
            1_000_000,
        )?;
        Ok(())
    }

    /// Checks a new password against the length and class rules.
    pub fn check_password(&self, password: &str) -> Result<(), PasswordError> {
        let length = password.chars().count();
        if length > 1024 {
            return Err(PasswordError::TooLong);
        }
        if length < self.password_min_length as usize {
            return Err(PasswordError::TooShort {
                length,
                min: self.password_min_length,
            });
        }
        let classes = [
            password.chars().any(|c| c.is_lowercase()),
            password.chars().any(|c| c.is_uppercase()),
            password.chars().any(|c| c.is_ascii_digit()),
            password.chars().any(|c| !c.is_alphanumeric()),
        ];
        let used = classes.iter().filter(|&&b| b).count() as u32;
        if used < self.password_min_classes {
            return Err(PasswordError::TooFewClasses {
                used,
                min: self.password_min_classes,
            });
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            socket: None,
            socket_mode: 0o660,
            listen: None,
            tls: None,
            allow_plain_tcp: false,
            log_format: LogFormat::Text,
            max_body_bytes: 64 * 1024,
            security: SecurityPolicy::default(),
            audit: AuditSettings::default(),
        }
    }
}

/// `[server]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    socket: Option<PathBuf>,
    socket_mode: Option<String>,
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    allow_plain_tcp: bool,
    log_format: Option<LogFormat>,
    max_body_bytes: Option<u64>,
}

/// `[security]` as written in the file: any field may be left out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecurity {
    password_min_length: Option<u32>,
    password_min_classes: Option<u32>,
    access_token_minutes: Option<u32>,
    refresh_token_hours: Option<u32>,
    lockout_threshold: Option<u32>,
    lockout_minutes: Option<u32>,
    rate_limit_per_minute: Option<u32>,
}

/// `[audit]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    retention_days: Option<u32>,
}

/// A problem with one key: (key, value, why).
pub(crate) type Invalid = (String, String, String);

fn invalid(key: &str, value: impl ToString, why: impl ToString) -> Invalid {
    (key.to_string(), value.to_string(), why.to_string())
}

pub(crate) fn validate(
    server: RawServer,
    security: RawSecurity,
    audit: RawAudit,
) -> Result<ServerConfig, Invalid> {
    let defaults = ServerConfig::default();
    let socket_mode = match server.socket_mode {
        None => defaults.socket_mode,
        Some(s) => {
            let mode = u32::from_str_radix(s.trim_start_matches("0o"), 8)
                .map_err(|_| invalid("server.socket_mode", &s, "an octal mode, e.g. \"0660\""))?;
            if mode & !0o777 != 0 || mode & 0o007 != 0 {
                return Err(invalid(
                    "server.socket_mode",
                    &s,
                    "permission bits only, and none for others: the socket lets its users reach the API",
                ));
            }
            mode
        }
    };
    let listen = match &server.listen {
        None => None,
        Some(s) => Some(s.parse::<SocketAddr>().map_err(|_| {
            invalid(
                "server.listen",
                s,
                "an address and port, e.g. \"0.0.0.0:8443\" or \"[::1]:8443\"",
            )
        })?),
    };
    let tls = match (server.tls_cert, server.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        (Some(c), None) => {
            return Err(invalid(
                "server.tls_cert",
                c.display(),
                "needs server.tls_key too",
            ))
        }
        (None, Some(k)) => {
            return Err(invalid(
                "server.tls_key",
                k.display(),
                "needs server.tls_cert too",
            ))
        }
    };
    if let Some(addr) = listen {
        if tls.is_none() {
            if !server.allow_plain_tcp {
                return Err(invalid(
                    "server.listen",
                    addr,
                    "TCP needs TLS (server.tls_cert and server.tls_key); plain HTTP only with server.allow_plain_tcp = true on a loopback address",
                ));
            }
            if !addr.ip().is_loopback() {
                return Err(invalid(
                    "server.listen",
                    addr,
                    "plain HTTP is only allowed on a loopback address; configure TLS for any other",
                ));
            }
        }
    } else if tls.is_some() {
        return Err(invalid(
            "server.tls_cert",
            "set",
            "TLS files are given but server.listen is not",
        ));
    }
    let max_body_bytes = match server.max_body_bytes {
        None => defaults.max_body_bytes,
        Some(n) if (1024..=16 * 1024 * 1024).contains(&n) => n as usize,
        Some(n) => {
            return Err(invalid(
                "server.max_body_bytes",
                n,
                "must be between 1024 and 16777216",
            ))
        }
    };
    let d = SecurityPolicy::default();
    let security = SecurityPolicy {
        password_min_length: security
            .password_min_length
            .unwrap_or(d.password_min_length),
        password_min_classes: security
            .password_min_classes
            .unwrap_or(d.password_min_classes),
        access_token_minutes: security
            .access_token_minutes
            .unwrap_or(d.access_token_minutes),
        refresh_token_hours: security
            .refresh_token_hours
            .unwrap_or(d.refresh_token_hours),
        lockout_threshold: security.lockout_threshold.unwrap_or(d.lockout_threshold),
        lockout_minutes: security.lockout_minutes.unwrap_or(d.lockout_minutes),
        rate_limit_per_minute: security
            .rate_limit_per_minute
            .unwrap_or(d.rate_limit_per_minute),
    };
    security
        .validate()
        .map_err(|e| invalid(&format!("security.{}", e.field), e.value, e.why))?;
    if let Some(days) = audit.retention_days {
        if !(1..=36_500).contains(&days) {
            return Err(invalid(
                "audit.retention_days",
                days,
                "must be between 1 and 36500",
            ));
        }
    }
    Ok(ServerConfig {
        socket: server.socket,
        socket_mode,
        listen,
        tls,
        allow_plain_tcp: server.allow_plain_tcp,
        log_format: server.log_format.unwrap_or(LogFormat::Text),
        max_body_bytes,
        security,
        audit: AuditSettings {
            retention_days: audit.retention_days,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, Invalid> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            server: RawServer,
            #[serde(default)]
            security: RawSecurity,
            #[serde(default)]
            audit: RawAudit,
        }
        let raw: Raw = toml::from_str(text).unwrap();
        validate(raw.server, raw.security, raw.audit)
    }

    #[test]
    fn defaults_listen_on_the_socket_only() {
        let c = parse("").unwrap();
        assert_eq!(c, ServerConfig::default());
        assert!(c.listen.is_none());
    }

    #[test]
    fn plain_tcp_needs_loopback_and_consent() {
        let e = parse("[server]\nlisten = \"127.0.0.1:8080\"").unwrap_err();
        assert!(e.2.contains("needs TLS"), "{e:?}");
        let e = parse("[server]\nlisten = \"0.0.0.0:8080\"\nallow_plain_tcp = true").unwrap_err();
        assert!(e.2.contains("loopback"), "{e:?}");
        let c = parse("[server]\nlisten = \"[::1]:8080\"\nallow_plain_tcp = true").unwrap();
        assert_eq!(c.listen.unwrap().port(), 8080);
        let c = parse("[server]\nlisten = \"0.0.0.0:8443\"\ntls_cert = \"c\"\ntls_key = \"k\"")
            .unwrap();
        assert!(c.tls.is_some());
        assert!(parse("[server]\ntls_cert = \"c\"\ntls_key = \"k\"").is_err());
        assert!(parse("[server]\nlisten = \"0.0.0.0:1\"\ntls_cert = \"c\"").is_err());
    }

    #[test]
    fn socket_mode_never_opens_to_others() {
        assert_eq!(
            parse("[server]\nsocket_mode = \"0600\"")
                .unwrap()
                .socket_mode,
            0o600
        );
        assert!(parse("[server]\nsocket_mode = \"0666\"").is_err());
        assert!(parse("[server]\nsocket_mode = \"rw\"").is_err());
    }

    #[test]
    fn policy_ranges_are_checked() {
        let e = parse("[security]\npassword_min_length = 4").unwrap_err();
        assert_eq!(e.0, "security.password_min_length");
        let c = parse("[security]\nlockout_threshold = 3\nlockout_minutes = 1").unwrap();
        assert_eq!(c.security.lockout_threshold, 3);
        assert!(parse("[audit]\nretention_days = 0").is_err());
    }

    #[test]
    fn passwords_follow_the_policy() {
        let p = SecurityPolicy::default();
        assert!(matches!(
            p.check_password("Short1!"),
            Err(PasswordError::TooShort { .. })
        ));
        assert!(matches!(
            p.check_password("alllowercaseletters"),
            Err(PasswordError::TooFewClasses { used: 1, min: 3 })
        ));
        assert!(p.check_password("Correct-horse-42").is_ok());
        assert!(p.check_password(&"aA1!".repeat(300)).is_err());
    }
}
